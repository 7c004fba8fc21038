/**
 * Experiment 2's reading of the server timeline (pure, so it is tested on Linux): which
 * `LPC_CLIENT_DIED` came through which registration, from which threads, and how the server
 * knew the client was gone. Liveness comes from `LPC_PORT_CLOSED` (or the process handle),
 * never from the first `LPC_CLIENT_DIED`.
 *
 * @module
 */

import type { LpcEvent } from "../ffi/lpc.ts";

/** One `LPC_CLIENT_DIED` as the server received it. */
export interface Death {
  /** The exiting thread. */
  tid: number;
  /** Its creation time (identifies it even if the TID is reused). */
  createTime?: string;
  /** Which registration delivered it: PortContext 0 = the exception port; else a termination port. */
  via: "exception port" | "termination port";
  /** The PortContext it arrived with. */
  context: string;
  /** Whether the server had seen this thread before (a connect, a request, an exception). */
  knownThread: boolean;
  /** When (ms since the server started). */
  t: number;
}

/** What the timeline shows. */
export interface Exp2Analysis {
  /** The client's pid. */
  pid: number;
  /** Connection requests from it. */
  connectionRequests: number;
  /** Requests from it. */
  requests: number;
  /** Threads the server saw send something. */
  knownThreads: number[];
  /** The exceptions received and the verdict replied. */
  exceptions: { tid: number; code: string; firstChance: boolean; verdict: string; t: number }[];
  /** Every CLIENT_DIED from it. */
  deaths: Death[];
  /** Threads reported twice (termination port and exception port). */
  duplicated: number[];
  /** Threads it never saw. */
  unknownThreads: number[];
  /** The final LPC_PORT_CLOSED. */
  portClosed: { t: number; tid: number } | null;
  /** Whether every CLIENT_DIED came before the PORT_CLOSED. */
  diedBeforeClosed: boolean;
}

/** Reads the server events for one client. */
export function analyzeTimeline(events: LpcEvent[], pid: number): Exp2Analysis {
  const mine = events.filter((e) => e.pid === pid);
  const known = new Set<number>();
  for (const e of mine) {
    if (
      ["accept", "refuse", "LPC_REQUEST", "LPC_DATAGRAM", "LPC_EXCEPTION"].includes(e.event) &&
      e.tid !== undefined
    ) known.add(e.tid);
  }
  const deaths: Death[] = mine.filter((e) => e.event === "LPC_CLIENT_DIED").map((e) => ({
    tid: e.tid!,
    ...(e.createTime ? { createTime: e.createTime } : {}),
    via: e.context === undefined || e.context === "0x0" ? "exception port" : "termination port",
    context: e.context ?? "0x0",
    knownThread: known.has(e.tid!),
    t: e.t,
  }));
  const perThread = new Map<number, Set<string>>();
  for (const d of deaths) {
    (perThread.get(d.tid) ?? perThread.set(d.tid, new Set()).get(d.tid)!).add(d.via);
  }
  const closed = mine.filter((e) => e.event === "LPC_PORT_CLOSED").at(-1);
  return {
    pid,
    connectionRequests: mine.filter((e) => e.event === "accept" || e.event === "refuse").length,
    requests: mine.filter((e) => e.event === "LPC_REQUEST").length,
    knownThreads: [...known].sort((a, b) => a - b),
    exceptions: mine.filter((e) => e.event === "LPC_EXCEPTION" && e.exception).map((e) => ({
      tid: e.tid!,
      code: e.exception!.code,
      firstChance: e.exception!.firstChance,
      verdict: e.exception!.verdict,
      t: e.t,
    })),
    deaths,
    duplicated: [...perThread].filter(([, s]) => s.size > 1).map(([tid]) => tid).sort((a, b) =>
      a - b
    ),
    unknownThreads: [...new Set(deaths.filter((d) => !d.knownThread).map((d) => d.tid))].sort((
      a,
      b,
    ) => a - b),
    portClosed: closed ? { t: closed.t, tid: closed.tid! } : null,
    diedBeforeClosed: closed ? deaths.every((d) => d.t <= closed.t) : false,
  };
}

/** Question 2, answered from what this run received. */
export function answerQuestion2(a: Exp2Analysis): string {
  if (a.connectionRequests === 0) {
    return `Not observed: the server received no connection request from pid ${a.pid}.`;
  }
  const viaExc = a.deaths.filter((d) => d.via === "exception port").length;
  const viaTerm = a.deaths.filter((d) => d.via === "termination port").length;
  const parts = [
    `The server received ${a.connectionRequests} connection request from pid ${a.pid} and ${a.requests} requests, ` +
    `then ${a.deaths.length} LPC_CLIENT_DIED message${
      a.deaths.length === 1 ? "" : "s"
    }. The client sent none of them: ` +
    "each was posted by the kernel (PspExitThread, running in the exiting thread) as a datagram to a port the kernel " +
    "already held a reference to for that thread, so no new connection was needed.",
  ];
  if (viaExc) {
    parts.push(
      `${viaExc} arrived with PortContext 0 on the connection port itself: that is the process's exception port, which ` +
        "the server set with NtSetInformationProcess(ProcessExceptionPort), and which the kernel notifies for every thread of the process.",
    );
  }
  if (viaTerm) {
    const ctx = [
      ...new Set(a.deaths.filter((d) => d.via === "termination port").map((d) => d.context)),
    ].join(", ");
    parts.push(
      `${viaTerm} arrived with the connection's PortContext (${ctx}): the client thread had registered its own communication ` +
        "port with NtRegisterThreadTerminatePort, so the kernel queued its death notice on that connection.",
    );
  }
  if (a.duplicated.length) {
    parts.push(
      `Thread${a.duplicated.length > 1 ? "s" : ""} ${
        a.duplicated.join(", ")
      } was reported twice, once per registration (Windows 10/11 notify both; XP/2003 used the exception port only when no termination port was registered).`,
    );
  }
  if (a.unknownThreads.length) {
    parts.push(
      `${a.unknownThreads.length} came from threads the server had never seen (${
        a.unknownThreads.slice(0, 8).join(", ")
      }${a.unknownThreads.length > 8 ? ", ..." : ""}): ` +
        "the client's other threads (the runtime's own threads, loader worker threads, the exception thread), each of which the kernel reports as it exits.",
    );
  }
  parts.push(
    a.portClosed
      ? `The client was known to be gone only at LPC_PORT_CLOSED (thread ${a.portClosed.tid}), when its handle table was run down; ` +
        (a.diedBeforeClosed
          ? "every LPC_CLIENT_DIED came before it."
          : "some LPC_CLIENT_DIED came after it.")
      : "No LPC_PORT_CLOSED was received, so this run cannot say when the client as a whole was gone.",
  );
  return parts.join(" ");
}
