/**
 * Experiment 3's set-up and its document: the experiment-1/2 server where LPC exists (also the
 * client's exception port when it can be), the beating client, and what the run saw gathered
 * into the `--json` document.
 *
 * @module
 */

import {
  type CapturedChild,
  ChildProcess,
  currentThreadId,
  type Debugger,
  type HandledEvent,
  unavailable,
  wineVersion,
} from "../../mod.ts";
import { injectedThreads } from "./injected_threads.ts";
import type { Exp2HandlerOptions } from "../exp2/exp2_handler.ts";
import type { ClientEnd } from "../exp2/exp2_lifecycle.ts";
import type { Log } from "../_runner.ts";
import { until } from "../_runner.ts";
import { connected, eventsOf } from "../_server_events.ts";
import { clientCommand, portSddl, processIdentity, runPortName } from "../_setup.ts";
import type { Exp3Run } from "./exp3_document.ts";
import { type Exp2Server, exp2Transport } from "../exp2/exp2_transport.ts";
import type { Transport } from "../_transport.ts";

/** What {@link setUpExp3} made. */
export interface Exp3SetUp {
  environment: NonNullable<Exp3Run["environment"]>;
  /** Why the server half is skipped, or null. */
  lpcWhy: string | null;
  server: Exp2Server | undefined;
  exceptionPort: unknown;
  notes: string[];
  client: CapturedChild;
  pid: number;
  /** How long the client beats. */
  seconds: number;
}

/** What the debugger half gave. */
export interface Exp3Acted {
  dbg: Debugger;
  first: HandledEvent;
  end: ClientEnd | undefined;
  exit: { exitCode: number | undefined; exitCodeHex?: string };
  beats: { at: number; reply?: string }[];
}

const round = (n: number) => Math.round(n * 10) / 10;

/** The longest gap between consecutive beats that overlaps [from, to] (all epoch ms). */
export function longestGap(beats: number[], from: number, to: number): number {
  let gap = 0;
  for (let i = 1; i < beats.length; i++) {
    const a = beats[i - 1] ?? 0;
    const b = beats[i] ?? 0;
    if (b >= from && a <= to) gap = Math.max(gap, b - a);
  }
  return round(gap);
}

/** 1. The server, where LPC exists (as the exception port too, when it can be); 2. the client. */
export async function setUpExp3(
  cleanup: AsyncDisposableStack,
  o: { holdMs: number; transport: Transport; log: Log },
): Promise<Exp3SetUp> {
  const { user, elevated } = processIdentity();
  const environment = {
    pid: Deno.pid,
    mainThread: currentThreadId(),
    wine: wineVersion(),
    elevated,
  };
  const lpcWhy = unavailable(o.transport);
  const notes: string[] = [];
  let server: Exp2Server | undefined;
  let exceptionPort: unknown = null;
  const portName = runPortName(`exp3-${o.transport}`);
  const exceptionWhy = lpcWhy !== null
    ? null // the whole LPC half is skipped, and said so
    : !elevated
    ? "not elevated (SYSTEM, for SeTcbPrivilege, is taken only from an elevated prompt)"
    : unavailable("exception-port");
  let canException = lpcWhy === null && exceptionWhy === null;
  if (exceptionWhy) notes.push(`ran without the exception port: ${exceptionWhy}`);
  if (lpcWhy === null) {
    // SYSTEM is optional here: without it the server runs without the exception port.
    const handlerOptions: Exp2HandlerOptions = {
      system: canException,
      systemOptional: true,
      reply: "continue", // only for an announced exception; this client announces none
    };
    server = cleanup.use(
      await exp2Transport(o.transport).startServer({
        portName,
        sddl: portSddl(user, false),
        handlerOptions,
      }),
    );
  } else o.log(`the server half skipped: ${lpcWhy}; the client writes heartbeats instead`);

  const seconds = Math.ceil(o.holdMs / 1000) + 9;
  const args = ["--seconds", String(seconds)];
  if (server) args.push("--port", portName, "--register", "--transport", o.transport);
  const client = cleanup.use(
    ChildProcess.spawnCaptured(
      await clientCommand(new URL("./exp3_client.ts", import.meta.url), args),
    ),
  );
  const pid = client.child.pid;
  o.log(`client pid ${pid}`);
  if (server) {
    const { events } = server;
    await until("the client's connection", () => connected(events, pid), 60_000);
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
        const failed = e instanceof Error ? e.message : String(e);
        exceptionPort = { failed };
        notes.push(`ran without the exception port: setting it failed (${failed})`);
      }
    }
  }
  return { environment, lpcWhy, server, exceptionPort, notes, client, pid, seconds };
}

/** The document of a run (without its observations). */
export function observeExp3(
  s: Exp3SetUp,
  a: Exp3Acted,
  o: { t0: number; holdMs: number; end: "detach" | "kill"; transport: Transport },
): Exp3Run {
  const { dbg, first, pid } = { ...a, pid: s.pid };
  const beatTimes = a.beats.map((b) => b.at);
  const freeze = dbg.events.flatMap((e) =>
    e.kind === "EXCEPTION" && e.heldMs !== undefined && e.heldMs > 0
      ? [{
        tid: e.tid,
        heldMs: e.heldMs,
        observedGapMs: longestGap(beatTimes, e.at, e.at + e.heldMs),
      }]
      : []
  );
  const doc: Exp3Run = {
    transport: o.transport,
    options: { holdMs: o.holdMs, end: o.end },
    environment: s.environment,
    debugger: {
      thread: dbg.debuggerTid,
      events: dbg.events.map(({ at, ...rest }) => ({ t: round(at - o.t0), ...rest })),
      injectedThreads: injectedThreads(dbg.events, dbg.remoteThreads),
      ended: dbg.ended,
    },
    client: {
      pid,
      heartbeats: beatTimes.map((t) => round(t - o.t0)),
      ...a.exit,
      lpcReplies: a.beats.filter((b) => b.reply !== undefined).length,
      ...(a.end ? { end: a.end } : {}),
    },
    freeze,
    serverHalf: s.lpcWhy === null ? "ran" : { skipped: s.lpcWhy },
    notes: s.notes,
  };
  if (s.server) {
    const { events } = s.server;
    const requests = eventsOf(events, "LPC_REQUEST", pid).map((e) => e.at);
    const hold = freeze[0];
    doc.server = {
      pid: s.server.processId,
      tid: s.server.threadId,
      exceptionPort: s.exceptionPort,
      events,
      requestGapMs: hold ? longestGap(requests, first.at, first.at + hold.heldMs) : 0,
      clientDiedTids: eventsOf(events, "LPC_CLIENT_DIED", pid).flatMap((e) =>
        e.tid === undefined ? [] : [e.tid]
      ),
      exceptions: eventsOf(events, "LPC_EXCEPTION", pid).length,
    };
  }
  return doc;
}
