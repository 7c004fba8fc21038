/**
 * Experiment 3's explanation: what a run showed, in sentences, from its document alone (pure, so
 * it is tested on Linux against recorded runs).
 *
 * @module
 */

import { describeEnd } from "../exp2/exp2_lifecycle.ts";
import {
  countsText,
  existingText,
  exitCodeText,
  exp3Phases,
  KILL_ON_EXIT_STATUS,
  sequenceText,
} from "./exp3_analysis.ts";
import type { Exp3Run } from "./exp3_document.ts";
import { TRANSPORT_LABEL } from "../_transport.ts";

/** What a run showed, in sentences (pure; exported for tests). */
export function observe(doc: Exp3Run): string[] {
  const out: string[] = [];
  // Every count below is of the events themselves, grouped by what caused them.
  const phases = exp3Phases(doc);
  const attach = phases.injected.find((t) => t.thread.how === "attach");
  const inBurst = new Set(phases.burst);
  out.push(
    `Up to the first breakpoint the attach produced ${phases.burst.length} events (${
      countsText(phases.burst)
    }): ${existingText(phases.existing)} as they already were${
      attach
        ? `, then thread ${attach.thread.tid}, which the attach injected: ${
          sequenceText(attach.events.filter((e) => inBurst.has(e)))
        }`
        : ""
    }; each was continued, or the client's threads would have stayed suspended.`,
  );
  for (const { thread: t, events } of phases.injected) {
    const later = events.filter((e) => !inBurst.has(e));
    if (t.how === "attach") {
      if (later.length) {
        out.push(`Once continued, thread ${t.tid} produced ${sequenceText(later)}.`);
      }
      continue;
    }
    const cause = t.how === "remote-thread"
      ? `CreateRemoteThread (thread ${t.tid}, started at kernel32!Sleep, ${t.startAddress})`
      : `DebugBreakProcess (thread ${t.tid}, which it injected)`;
    out.push(
      `${cause} caused ${events.length} event${events.length === 1 ? "" : "s"}: ${
        sequenceText(events)
      }.`,
    );
  }
  if (phases.other.length) {
    out.push(
      `The client's own threads and modules produced ${phases.other.length} more: ${
        countsText(phases.other)
      }.`,
    );
  }
  for (const f of doc.freeze ?? []) {
    out.push(
      `Held ${f.heldMs} ms at the breakpoint of thread ${f.tid}: the client's longest silence around it was ${f.observedGapMs} ms; the whole process was frozen.`,
    );
  }
  if (doc.server) {
    const s = doc.server;
    out.push(
      `The server saw a ${s.requestGapMs} ms gap in the client's requests during the hold, then the requests resumed from the client's own thread.`,
    );
    const injectedTids = new Set((doc.debugger?.injectedThreads ?? []).map((t) => t.tid));
    const fromInjected = s.clientDiedTids.filter((t) => injectedTids.has(t));
    out.push(
      fromInjected.length
        ? `LPC_CLIENT_DIED arrived for the injected threads ${
          fromInjected.join(", ")
        }: threads that never sent the server anything, reported by the kernel as they exited (through the exception port).`
        : s.exceptionPort && typeof s.exceptionPort === "object" &&
            ("skipped" in s.exceptionPort || "failed" in s.exceptionPort)
        ? "No LPC_CLIENT_DIED arrived for the injected threads: this run had no exception port (see the notes), so only the registered main thread could be reported."
        : "No LPC_CLIENT_DIED arrived for the injected threads.",
    );
    out.push(
      `LPC_EXCEPTION messages: ${s.exceptions} (a breakpoint goes to the debugger, never to the exception port).`,
    );
  } else if (typeof doc.serverHalf === "object") {
    out.push(`The ${TRANSPORT_LABEL[doc.transport]} half did not run: ${doc.serverHalf.skipped}.`);
  }
  for (const n of doc.notes ?? []) out.push(`Note: this run ${n}.`);
  const c = doc.client;
  const how = doc.options?.end;
  if (c === undefined) return out;
  out.push(
    c.end
      ? `The client had not exited in time after the ${how}: ${describeEnd(c.end)}.`
      : how === "kill"
      ? `Ending with kill-on-exit terminated the client with exit code ${exitCodeText(c.exitCode)}${
        c.exitCode === KILL_ON_EXIT_STATUS
          ? ", as closing the debug object does"
          : `, where Windows gives ${exitCodeText(KILL_ON_EXIT_STATUS)}`
      }.`
      : `After detaching, the client ran on and exited by itself with code ${
        exitCodeText(c.exitCode)
      }.`,
  );
  return out;
}
