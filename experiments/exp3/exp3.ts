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

import { assertWindows, Debugger, type HandledEvent, type LpcEvent } from "../../mod.ts";
import type { InjectedThread } from "./injected_threads.ts";
import { connectionContexts, portClosedOn } from "../exp2/exp2_analysis.ts";
import { type ClientEnd, describeEnd, endClient, finalExit } from "../exp2/exp2_lifecycle.ts";
import type { Cli } from "../_cli.ts";
import { jsonLines, type Log, runPhases, runScript, sleep, until } from "../_runner.ts";
import { observe } from "./exp3_explain.ts";
import { observeExp3, setUpExp3 } from "./exp3_setup.ts";

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

export { longestGap } from "./exp3_setup.ts";
export { observe } from "./exp3_explain.ts";

/** Runs the experiment (Windows; the debugger half also under Wine). */
export async function runExp3(
  o: { holdMs: number; end: "detach" | "kill"; log: Log },
): Promise<Exp3Document> {
  assertWindows("exp3");
  const t0 = performance.timeOrigin + performance.now();
  return await runPhases({
    setUp: (cleanup) => setUpExp3(cleanup, o),
    act: async (s, cleanup) => {
      await sleep(2000); // let it beat for a while before the debugger arrives
      // 3. The debugger: attach (and hold), resume, break in again, inject a thread, end.
      const dbg = cleanup.use(
        await Debugger.attach(s.pid, {
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
      const exited = await s.client.child.waitAsync((s.seconds + 30) * 1000);
      let end: ClientEnd | undefined;
      if (!exited) {
        end = endClient(s.client.child, 1); // only while it is alive; a dead one is just reported
        o.log(`the client had not exited in time: ${describeEnd(end)}`);
      }
      const exit = finalExit(s.client.child);
      const { stdout } = await s.client.output;
      // 4. Observe. LPC_PORT_CLOSED carries ClientId {0, 0} (AlpcpSendCloseMessage.c): the
      // client's connection is known by the PortContext it was accepted with.
      if (s.server) {
        const { server } = s;
        const contexts = connectionContexts(server.events, s.pid);
        await until(
          "LPC_PORT_CLOSED",
          () => portClosedOn(server.events, contexts) !== undefined,
          15_000,
          100,
        )
          .catch(() => {});
        await server.stop();
      }
      return { dbg, first, end, exit, beats: jsonLines<{ at: number; reply?: string }>(stdout) };
    },
    observe: (s, a) => observeExp3(s, a, { t0, holdMs: o.holdMs, end: o.end }),
    explain: (doc) => ({ ...doc, observations: observe(doc) }),
  });
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    run: (v, log) => runExp3({ holdMs: v.hold, end: v.end, log }),
    print: (doc) =>
      console.log(`\nExperiment 3\n\n${(doc.observations ?? []).map((s) => `- ${s}`).join("\n")}`),
  });
}
