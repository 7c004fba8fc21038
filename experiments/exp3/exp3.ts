#!/usr/bin/env -S deno run --allow-ffi --allow-read
/**
 * Experiment 3: attaching a debugger to the client injects threads. What does the LPC server see
 * while the client is broken in, and after it resumes?
 *
 * ```sh
 * deno run --allow-ffi --allow-read experiments/exp3/exp3.ts --hold 2000
 * deno run --allow-ffi --allow-read experiments/exp3/exp3.ts --end kill --json
 * ```
 *
 * Protocol: start the experiment-1/2 server (where LPC exists) and a client that beats every
 * 100 ms (an LPC request per beat, or a heartbeat line where LPC is missing); attach a debugger on
 * its own thread; hold the attach breakpoint; resume; break in again; inject a thread with
 * `CreateRemoteThread`; end by detaching or by kill-on-exit; compare what the debugger, the client
 * and the server saw.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { exceptionPortUnavailable, lpcUnavailable } from "../../ffi/nt/capabilities.ts";
import { Debugger, type HandledEvent } from "../../ffi/debug/debugger.ts";
import { type InjectedThread, injectedThreads } from "./injected_threads.ts";
import type { LpcEvent } from "../../ffi/lpc/port.ts";
import { ServerWorker } from "../../ffi/lpc/server_worker.ts";
import { assertWindows } from "../../ffi/status.ts";
import { wineVersion } from "../../ffi/ntdll.ts";
import { currentProcessId, spawnCaptured } from "../../ffi/nt/processes.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { openProcessToken, tokenIsElevated, tokenUserSid } from "../../ffi/nt/tokens.ts";
import type { Exp2HandlerOptions } from "../exp2/exp2_handler.ts";
import { connectionContexts, portClosedOn } from "../exp2/exp2_analysis.ts";
import { type ClientEnd, describeEnd, endClient, hex32 } from "../exp2/exp2_lifecycle.ts";
import { portSddl } from "../exp1/exp1_server.ts";
import {
  countsText,
  existingText,
  exitCodeText,
  exp3Phases,
  KILL_ON_EXIT_STATUS,
  sequenceText,
} from "./exp3_analysis.ts";
import { type Cli, type CliValues, EXIT, interruptible, runCli, toJson } from "../_cli.ts";

/** The command line, declared once (parser and `--help`; the lab's `--hold` is this one). */
export const CLI = {
  name: "exp3",
  usage: `exp3: a debugger attaches to the LPC client; what do the client and the server see?

Usage: deno run --allow-ffi --allow-read experiments/exp3/exp3.ts [options]`,
  options: {
    hold: {
      kind: "integer",
      value: "ms",
      min: 0,
      max: 60_000,
      default: 2000,
      help: "keep the client broken in at the attach breakpoint this long",
    },
    end: {
      kind: "choice",
      choices: ["detach", "kill"],
      default: "detach",
      help: "end by detaching (the client runs on) or with kill-on-exit (the client is " +
        "terminated with STATUS_DEBUGGER_INACTIVE 0xC0000354)",
    },
    json: { kind: "flag", help: "print one JSON document (schema deno-lpc/exp3@1)" },
  },
  notes:
    `Where LPC is missing (Wine) the debugger half still runs, against a client that writes a heartbeat
line every 100 ms instead of sending LPC requests; the document says "lpc": {"skipped": ...}.
Where the server cannot become the client's exception port (not elevated, SYSTEM not obtainable,
or setting it fails) it runs without it and says so ("notes" in the document, a line in the output).`,
  schema: "deno-lpc/exp3@1",
} as const satisfies Cli;

/** The `--json` document. */
export interface Exp3Document {
  /** Always `deno-lpc/exp3@1`. */
  schema: "deno-lpc/exp3@1";
  /** Whether it ran, or why not. */
  ran: boolean;
  /** Why it did not run. */
  reason?: string;
  /** Options. */
  options?: { holdMs: number; end: "detach" | "kill" };
  /** Where it ran. */
  environment?: { pid: number; mainThread: number; wine: string | null; elevated: boolean };
  /** The debugger: its thread, every event, the threads it injected. */
  debugger?: {
    thread: number;
    events: (Omit<HandledEvent, "at"> & { t: number })[];
    injectedThreads: InjectedThread[];
    ended: string | undefined;
  };
  /** The client: its pid, each beat's time (ms since the start), its exit code. */
  client?: {
    pid: number;
    heartbeats: number[];
    exitCode: number | undefined;
    exitCodeHex?: string;
    lpcReplies: number;
    /** Set when it had not exited by itself in time and was terminated (only while alive). */
    end?: ClientEnd;
  };
  /** Each held breakpoint and the longest silence of the client around it. */
  freeze?: { tid: number; heldMs: number; observedGapMs: number }[];
  /** The server's side. */
  server?: {
    pid: number;
    tid: number;
    exceptionPort: unknown;
    events: LpcEvent[];
    requestGapMs: number;
    clientDiedTids: number[];
    exceptions: number;
  };
  /** `ran`, or why the LPC half was skipped. */
  lpc?: "ran" | { skipped: string };
  /** What this run showed, in sentences. */
  observations?: string[];
  /** What this run had to do without (e.g. the exception port), in sentences. */
  notes?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number) => Math.round(n * 10) / 10;

/** The longest gap between consecutive beats that overlaps [from, to] (all epoch ms). */
export function longestGap(beats: number[], from: number, to: number): number {
  let gap = 0;
  for (let i = 1; i < beats.length; i++) {
    const a = beats[i - 1]!;
    const b = beats[i]!;
    if (b >= from && a <= to) gap = Math.max(gap, b - a);
  }
  return round(gap);
}

/** Runs the experiment (Windows; the debugger half also under Wine). */
export async function runExp3(
  o: { holdMs: number; end: "detach" | "kill"; log: (s: string) => void },
): Promise<Exp3Document> {
  assertWindows("exp3");
  const t0 = performance.timeOrigin + performance.now();
  await using cleanup = interruptible();
  let user: string;
  let elevated: boolean;
  {
    using token = openProcessToken();
    user = tokenUserSid(token);
    elevated = tokenIsElevated(token);
  }
  const environment = {
    pid: currentProcessId(),
    mainThread: kernel32().GetCurrentThreadId(),
    wine: wineVersion(),
    elevated,
  };

  // 1. The server, where LPC exists (as the exception port too, when it can be).
  const lpcWhy = lpcUnavailable();
  const notes: string[] = [];
  let server: ServerWorker | undefined;
  let exceptionPort: unknown = null;
  const portName = `\\RPC Control\\deno-lpc-exp3-${currentProcessId()}-${Date.now().toString(36)}`;
  const exceptionWhy = lpcWhy !== null
    ? null // the whole LPC half is skipped, and said so
    : !elevated
    ? "not elevated (SYSTEM, for SeTcbPrivilege, is taken only from an elevated prompt)"
    : exceptionPortUnavailable();
  let canException = lpcWhy === null && exceptionWhy === null;
  if (exceptionWhy) notes.push(`ran without the exception port: ${exceptionWhy}`);
  if (lpcWhy === null) {
    // SYSTEM is optional here: without it the server runs without the exception port.
    const options: Exp2HandlerOptions = {
      system: canException,
      systemOptional: true,
      reply: "continue", // only for an announced exception; this client announces none
    };
    server = cleanup.use(
      await ServerWorker.start({
        portName,
        sddl: portSddl(user, false),
        handlerModule: new URL("../exp2/exp2_handler.ts", import.meta.url),
        handlerOptions: options,
      }),
    );
  } else o.log(`LPC skipped: ${lpcWhy}; the client writes heartbeats instead`);

  // 2. The client.
  const seconds = Math.ceil(o.holdMs / 1000) + 9;
  const args = [
    Deno.execPath(),
    "run",
    "--allow-ffi",
    fileURLToPath(new URL("./exp3_client.ts", import.meta.url)),
    "--seconds",
    String(seconds),
  ];
  if (server) args.push("--port", portName, "--register");
  const spawned = cleanup.use(spawnCaptured(args));
  const pid = spawned.child.pid;
  o.log(`client pid ${pid}`);
  if (server) {
    const deadline = Date.now() + 60_000;
    while (!server.events.some((e) => e.event === "accept" && e.pid === pid)) {
      if (Date.now() > deadline) throw new Error("the client did not connect");
      await sleep(50);
    }
    if (canException) {
      const system = await server.command({ op: "system" }) as { failed?: string } | null;
      if (system?.failed !== undefined) {
        canException = false;
        exceptionPort = { skipped: `SYSTEM not obtainable: ${system.failed}` };
        notes.push(`ran without the exception port: SYSTEM not obtainable (${system.failed})`);
      }
    } else if (exceptionWhy) exceptionPort = { skipped: exceptionWhy };
    if (canException) {
      try {
        exceptionPort = await server.command({ op: "set-exception-port", pid });
      } catch (e) {
        exceptionPort = { failed: e instanceof Error ? e.message : String(e) };
        notes.push(
          `ran without the exception port: setting it failed (${
            (exceptionPort as { failed: string }).failed
          })`,
        );
      }
    }
  }
  await sleep(2000); // let it beat for a while before the debugger arrives

  // 3. The debugger: attach (and hold), resume, break in again, inject a thread, end.
  const dbg = cleanup.use(
    await Debugger.attach(pid, {
      holdAttachMs: o.holdMs,
      onEvent: (e) =>
        e.kind !== "LOAD_DLL" &&
        o.log(
          `debugger ${e.kind} tid ${e.tid}${e.exception ? ` ${e.exception.name}` : ""}${
            e.heldMs ? ` held ${e.heldMs} ms` : ""
          }`,
        ),
    }),
  );
  const first = await dbg.until(
    "the attach breakpoint",
    (e) => e.kind === "EXCEPTION" && e.heldMs !== undefined,
    60_000,
  );
  await sleep(700);
  await dbg.breakIn(0);
  await dbg.until(
    "the second breakpoint",
    (e) => e.kind === "EXCEPTION" && e.heldMs !== undefined && e.tid !== first.tid,
    30_000,
  );
  await sleep(500);
  const remote = await dbg.inject("Sleep", 200);
  await dbg.until(
    "the remote thread's exit",
    (e) => e.kind === "EXIT_THREAD" && e.tid === remote.tid,
    30_000,
  );
  await sleep(500);
  if (o.end === "kill") await dbg.kill();
  else await dbg.detach();
  const exited = await spawned.child.waitAsync((seconds + 30) * 1000);
  let end: ClientEnd | undefined;
  if (!exited) {
    end = endClient(spawned.child, 1); // only while it is alive; a dead one is just reported
    o.log(`the client had not exited in time: ${describeEnd(end)}`);
  }
  const exitCode = spawned.child.wait(5_000) ? spawned.child.exitCode() : undefined;
  const { stdout } = await spawned.output;

  // 4. Observe. LPC_PORT_CLOSED carries ClientId {0, 0} (AlpcpSendCloseMessage.c): the client's
  // connection is known by the PortContext it was accepted with.
  if (server) {
    const contexts = connectionContexts(server.events, pid);
    const deadline = Date.now() + 15_000;
    while (portClosedOn(server.events, contexts) === undefined && Date.now() < deadline) {
      await sleep(100);
    }
    await server.stop();
  }
  const beats = stdout.split(/\r?\n/).filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as { at: number; reply?: string }
  );
  const beatTimes = beats.map((b) => b.at);
  const injected = injectedThreads(dbg.events, dbg.remoteThreads);
  const freeze = dbg.events.filter((e) => e.kind === "EXCEPTION" && (e.heldMs ?? 0) > 0).map((
    e,
  ) => ({
    tid: e.tid,
    heldMs: e.heldMs!,
    observedGapMs: longestGap(beatTimes, e.at, e.at + e.heldMs!),
  }));
  const doc: Exp3Document = {
    schema: "deno-lpc/exp3@1",
    ran: true,
    options: { holdMs: o.holdMs, end: o.end },
    environment,
    debugger: {
      thread: dbg.debuggerTid,
      events: dbg.events.map(({ at, ...rest }) => ({ t: round(at - t0), ...rest })),
      injectedThreads: injected,
      ended: dbg.ended,
    },
    client: {
      pid,
      heartbeats: beatTimes.map((t) => round(t - t0)),
      exitCode,
      ...(exitCode !== undefined ? { exitCodeHex: hex32(exitCode) } : {}),
      lpcReplies: beats.filter((b) => b.reply !== undefined).length,
      ...(end ? { end } : {}),
    },
    freeze,
    lpc: lpcWhy === null ? "ran" : { skipped: lpcWhy },
    notes,
  };
  if (server) {
    const requests = server.events.filter((e) => e.event === "LPC_REQUEST" && e.pid === pid).map((
      e,
    ) => e.at);
    const hold = freeze[0];
    doc.server = {
      pid: server.processId,
      tid: server.threadId,
      exceptionPort,
      events: server.events,
      requestGapMs: hold ? longestGap(requests, first.at, first.at + hold.heldMs) : 0,
      clientDiedTids: server.events.filter((e) => e.event === "LPC_CLIENT_DIED" && e.pid === pid)
        .map((e) => e.tid!),
      exceptions: server.events.filter((e) => e.event === "LPC_EXCEPTION" && e.pid === pid).length,
    };
  }
  doc.observations = observe(doc);
  return doc;
}

/** What a run showed, in sentences (pure; exported for tests). */
export function observe(doc: Exp3Document): string[] {
  const d = doc.debugger!;
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
    const injectedTids = new Set(d.injectedThreads.map((t) => t.tid));
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
  } else out.push(`The LPC half did not run: ${(doc.lpc as { skipped: string }).skipped}.`);
  for (const n of doc.notes ?? []) out.push(`Note: this run ${n}.`);
  const c = doc.client!;
  out.push(
    c.end
      ? `The client had not exited in time after the ${doc.options!.end}: ${describeEnd(c.end)}.`
      : doc.options!.end === "kill"
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

async function main(v: CliValues<typeof CLI.options>): Promise<number> {
  const doc = await runExp3({
    holdMs: v.hold,
    end: v.end,
    log: v.json ? () => {} : (s) => console.error(s),
  });
  if (v.json) console.log(toJson(doc));
  else console.log(`\nExperiment 3\n\n${doc.observations!.map((s) => `- ${s}`).join("\n")}`);
  return EXIT.OK;
}

if (import.meta.main) {
  await runCli(import.meta.url, CLI, main);
}
