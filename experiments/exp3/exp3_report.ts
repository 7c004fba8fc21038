/**
 * Experiment 3 in the lab report: its diagram (the attach, each injected thread's events, the
 * freeze), its observations, and its evidence for question 3 (a debugger stops the whole process).
 *
 * @module
 */

import type { Exp3Run } from "./exp3_document.ts";
import { TRANSPORT_LABEL } from "../_transport.ts";
import {
  countsText,
  eventText,
  exitCodeText,
  type Exp3Event,
  exp3Phases,
} from "./exp3_analysis.ts";
import type { Diagram, Step } from "../lab/lab_diagram.ts";
import type { Outcomes } from "../lab/report_schema.ts";
import { type ExperimentPart, experimentPart, type Rows } from "../lab/report_view.ts";
import { sameReasonAs, withoutTableHint } from "../lab/report_outcomes.ts";

type Injected = ReturnType<typeof exp3Phases>["injected"][number];

/** Events drawn one by one per injected thread; the rest are counted. */
const SHOWN = 6;

const BREAK_IN = {
  attach: "the attach's break-in",
  break: "DebugBreakProcess's break-in",
  "remote-thread": "runs Sleep",
} as const;

/** One event the debugger received, and (for an exception) the freeze it caused and its answer. */
function eventSteps(doc: Exp3Run, e: Exp3Event): Step[] {
  const steps: Step[] = [{
    from: "K",
    to: "D",
    label: `${eventText(e)} tid ${e.tid}${
      e.exception ? (e.exception.firstChance ? ", first chance" : ", second chance") : ""
    }${e.exitCode !== undefined ? `, exit code ${exitCodeText(e.exitCode)}` : ""}`,
    kind: "message",
  }];
  if (e.kind !== "EXCEPTION") return steps;
  const f = (doc.freeze ?? []).findLast((f) => f.tid === e.tid);
  if (f && e.heldMs) {
    steps.push({
      note: `held ${f.heldMs} ms: client silent ${f.observedGapMs} ms`,
      over: ["C", "D"],
    });
  }
  steps.push({ from: "D", to: "K", label: `ContinueDebugEvent(${e.continued})`, kind: "reply" });
  return steps;
}

/** An injected thread: how it came, and its events. */
function threadSteps(doc: Exp3Run, { thread: t, events }: Injected): Step[] {
  const steps: Step[] = [];
  if (t.how === "remote-thread") {
    steps.push({
      from: "D",
      to: "K",
      label: `CreateRemoteThread(${t.startAddress}) kernel32!Sleep`,
      kind: "call",
    });
  } else if (t.how === "break") {
    steps.push({ from: "D", to: "K", label: "DebugBreakProcess", kind: "call" });
  }
  steps.push(
    { from: "K", to: "C", label: `new thread ${t.tid} (${BREAK_IN[t.how]})`, kind: "message" },
    ...events.slice(0, SHOWN).flatMap((e) => eventSteps(doc, e)),
  );
  if (events.length > SHOWN) {
    steps.push({
      note: `and ${countsText(events.slice(SHOWN))} more on thread ${t.tid}`,
      over: ["D"],
    });
  }
  return steps;
}

function diagram(doc: Exp3Run): Diagram {
  const d = doc.debugger!;
  // Every count and arrow is of the events themselves, grouped by what caused them.
  const phases = exp3Phases(doc);
  const steps: Step[] = [
    { from: "D", to: "K", label: `DebugActiveProcess(${doc.client!.pid})`, kind: "call" },
    {
      from: "K",
      to: "D",
      label: `${countsText(phases.existing)}: the client as it already was (each continued)`,
      kind: "message",
    },
    ...phases.injected.flatMap((t) => threadSteps(doc, t)),
  ];
  if (phases.other.length) {
    steps.push({
      from: "K",
      to: "D",
      label: `${countsText(phases.other)} from the client's own threads (each continued)`,
      kind: "message",
    });
  }
  if (doc.server) {
    steps.push({
      note:
        `server: requests paused ${doc.server.requestGapMs} ms, ${doc.server.exceptions} LPC_EXCEPTION`,
      over: ["S"],
    });
    for (const tid of doc.server.clientDiedTids.slice(0, 6)) {
      steps.push({ from: "K", to: "S", label: `LPC_CLIENT_DIED tid ${tid}`, kind: "message" });
    }
  }
  steps.push({
    from: "D",
    to: "K",
    label: d.ended === "kill"
      ? "close the debug object (kill on exit)"
      : "DebugActiveProcessStop (detach)",
    kind: "call",
  }, { note: `client exit code ${exitCodeText(doc.client!.exitCode)}`, over: ["C"] });
  const participants = [{ id: "C", label: `client (pid ${doc.client!.pid})` }, {
    id: "K",
    label: "kernel",
  }];
  if (doc.server) participants.push({ id: "S", label: `server (pid ${doc.server.pid})` });
  participants.push({ id: "D", label: `debugger (thread ${d.thread})` });
  return {
    title: `Experiment 3: a debugger attaches to the client (its server over ${
      TRANSPORT_LABEL[doc.transport]
    })`,
    participants,
    steps,
  };
}

function observations(x3: Exp3Run, e: Outcomes): Rows {
  const dbg = x3.debugger!;
  const phases = exp3Phases(x3);
  const half = x3.serverHalf;
  const lpcSkipped = half === undefined || half === "ran" ? undefined : half.skipped;
  const sameAs = lpcSkipped === undefined ? undefined : sameReasonAs(e, "exp3", lpcSkipped);
  // After the burst: a partition, so the parts add up to the number of events.
  const inBurst = new Set(phases.burst);
  const after = (how: string) =>
    phases.injected.filter((t) => t.thread.how === how).flatMap((t) => t.events).filter((x) =>
      !inBurst.has(x)
    ).length;
  return [
    ["injected threads", dbg.injectedThreads.map((t) => `${t.tid} (${t.how})`).join(", ")],
    [
      `debug events (${dbg.events.length})`,
      `${phases.burst.length} up to the first breakpoint, then ${
        after("attach")
      } of the attach's break-in thread, ${after("break")} from DebugBreakProcess, ${
        after("remote-thread")
      } from CreateRemoteThread, ${phases.other.length} from the client's own threads`,
    ],
    ...(x3.freeze ?? []).map((f): [string, string] => [
      `freeze at thread ${f.tid}`,
      `held ${f.heldMs} ms, client silent ${f.observedGapMs} ms`,
    ]),
    ["debugger thread (all events)", String(dbg.thread)],
    [
      `${TRANSPORT_LABEL[x3.transport]} half`,
      lpcSkipped === undefined
        ? "ran"
        : sameAs
        ? `skipped, for the same reason as ${sameAs}`
        : `skipped: ${withoutTableHint(e, lpcSkipped)}`,
    ],
    ["end", `${dbg.ended}, client exit code ${exitCodeText(x3.client!.exitCode)}`],
  ];
}

/** Experiment 3's part of the report. */
export const EXP3_PART: ExperimentPart = experimentPart<Exp3Run>({
  key: "exp3",
  title: "Experiment 3: a debugger attaches to the client",
  perTransport: true,
  diagram: (x3) => x3.debugger && x3.client ? diagram(x3) : undefined,
  observations: (x3, e) => x3.debugger && observations(x3, e),
  q3: {
    about: "debugger evidence",
    evidence: (x3) =>
      x3.debugger && [
        ...(x3.freeze ?? []).map((f) =>
          `exp3: a breakpoint delivered to the debugger froze the whole client: ${f.observedGapMs} ms of silence for a ${f.heldMs} ms hold`
        ),
        `exp3: every break-in injected a new thread (${
          x3.debugger.injectedThreads.filter((t) => t.how !== "remote-thread").map((t) => t.tid)
            .join(", ")
        }) and was handled by the debugger, not by any LPC server`,
      ],
  },
});
