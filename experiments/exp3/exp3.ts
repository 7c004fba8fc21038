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

import { Debugger } from "../../mod.ts";
import { EXP3_SCHEMA, type Exp3Document, type Exp3Run } from "./exp3_document.ts";
import { connectionContexts, portClosedOn } from "../exp2/exp2_analysis.ts";
import { type ClientEnd, describeEnd, endClient, finalExit } from "../exp2/exp2_lifecycle.ts";
import type { Cli } from "../_cli.ts";
import { jsonLines, type Log, runPhases, runScript, sleep, until } from "../_runner.ts";
import { observe } from "./exp3_explain.ts";
import { observeExp3, setUpExp3 } from "./exp3_setup.ts";
import {
  assertTransports,
  runsOf,
  runTransports,
  type Transport,
  TRANSPORT_OPTION,
  type TransportChoice,
} from "../_transport.ts";

export type { Exp3Document, Exp3Run } from "./exp3_document.ts";

/** The command line, declared once (parser and `--help`; the lab's `--hold` is this one). */
export const CLI = {
  name: "exp3",
  usage: `exp3: a debugger attaches to the LPC (or ALPC) client; what do it and the server see?

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
    transport: TRANSPORT_OPTION,
    json: { kind: "flag", help: `print one JSON document (schema ${EXP3_SCHEMA})` },
  },
  notes:
    `Where LPC is missing (Wine) the debugger half still runs, against a client that writes a heartbeat
line every 100 ms instead of sending LPC requests; the run says "serverHalf": {"skipped": ...}.
--transport alpc (or both) needs ALPC: without it (Wine) the run exits 3 before anything starts.
Where the server cannot become the client's exception port (not elevated, SYSTEM not obtainable,
or setting it fails) it runs without it and says so ("notes" in the document, a line in the output).`,
  schema: EXP3_SCHEMA,
} as const satisfies Cli;

export { longestGap } from "./exp3_setup.ts";
export { observe } from "./exp3_explain.ts";

/** The options of {@link runExp3}. */
export interface Exp3Options {
  holdMs: number;
  end: "detach" | "kill";
  transport: TransportChoice;
  log: Log;
}

/** Runs the experiment over each transport chosen (Windows; the debugger half also under Wine). */
export async function runExp3(o: Exp3Options): Promise<Exp3Document> {
  assertTransports("exp3", o.transport);
  const runs = await runTransports(o.transport, (t) => runOnce(t, o));
  return { schema: EXP3_SCHEMA, ran: true, ...runs };
}

/** One run, its server half over transport `t`. */
async function runOnce(t: Transport, o: Exp3Options): Promise<Exp3Run> {
  const t0 = performance.timeOrigin + performance.now();
  return await runPhases({
    setUp: (cleanup) => setUpExp3(cleanup, { ...o, transport: t }),
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
    observe: (s, a) => observeExp3(s, a, { t0, holdMs: o.holdMs, end: o.end, transport: t }),
    explain: (doc) => ({ ...doc, observations: observe(doc) }),
  });
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    run: (v, log) => runExp3({ holdMs: v.hold, end: v.end, transport: v.transport, log }),
    print: (doc) =>
      runsOf(doc).forEach(([t, r]) =>
        console.log(
          `\nExperiment 3 (${t})\n\n${(r.observations ?? []).map((s) => `- ${s}`).join("\n")}`,
        )
      ),
  });
}
