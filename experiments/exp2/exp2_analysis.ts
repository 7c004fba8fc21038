/**
 * Experiment 2's reading of the server timeline (pure, so it is tested on Linux): which
 * `LPC_CLIENT_DIED` came through which registration, from which threads, which exception was the
 * lab's own, which hard errors arrived, and how the server knew the client's connection was gone.
 *
 * Attribution: messages a thread sends (requests, `LPC_EXCEPTION`, `LPC_ERROR_EVENT`,
 * `LPC_CLIENT_DIED`) carry that thread's ClientId. `LPC_PORT_CLOSED` does not: the kernel zeroes
 * its ClientId (AlpcpSendCloseMessage.c), so it is matched to the client through the PortContext
 * of the connection, recorded at accept, never by pid.
 *
 * @module
 */

import type { LpcEvent } from "../../ffi/lpc/port.ts";

/**
 * The decoded `LPC_ERROR_EVENT` (a hard error; ExpRaiseHardError.c) as the LPC server logs it,
 * with the Response it replied.
 */
export type HardErrorEvent = NonNullable<LpcEvent["hardError"]>;

/** A timeline event (the LPC server's). */
export type Exp2Event = LpcEvent;

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

/** An exception the client announced before raising it on purpose (`RAISE <code> <address>`). */
export interface AnnouncedRaise {
  /** The exception code. */
  code: number;
  /** Its `ExceptionAddress`. */
  address: bigint;
}

/** The control request a client sends before it raises the lab's exception. */
export function raiseRequest(raise: AnnouncedRaise): string {
  return `RAISE 0x${(raise.code >>> 0).toString(16)} 0x${raise.address.toString(16)}`;
}

/** Parses {@link raiseRequest}'s text (null for anything else). */
export function parseRaiseRequest(text: string): AnnouncedRaise | null {
  const m = /^RAISE 0x([0-9a-f]{1,8}) 0x([0-9a-f]{1,16})$/.exec(text);
  return m ? { code: parseInt(m[1]!, 16) >>> 0, address: BigInt(`0x${m[2]}`) } : null;
}

/** The last 0x-number in a described status such as `STATUS_BREAKPOINT (0x80000003)`. */
function statusValue(described: string): number | undefined {
  const all = described.match(/0x[0-9a-fA-F]+/g);
  return all ? Number(all.at(-1)) >>> 0 : undefined;
}

/** Whether an exception (code, address) is the one announced (the lab's own exception). */
export function isAnnounced(
  exception: { code: number; address: bigint },
  announced: AnnouncedRaise | undefined,
): boolean {
  return announced !== undefined && (exception.code >>> 0) === announced.code &&
    exception.address === announced.address;
}

/** One `LPC_EXCEPTION` and its verdict. */
export interface ExceptionSeen {
  /** The faulting thread. */
  tid: number;
  /** The code, described. */
  code: string;
  /** `ExceptionAddress`. */
  address: string;
  /** `FirstChance`. */
  firstChance: boolean;
  /** The verdict replied. */
  verdict: string;
  /** Whether it was the lab's own exception (its code and address announced by the client). */
  ours: boolean;
  /** When. */
  t: number;
}

/** What the timeline shows. */
export interface Exp2Analysis {
  /** The client's pid. */
  pid: number;
  /** The PortContexts of its connections (recorded at accept). */
  contexts: string[];
  /** Connection requests from it. */
  connectionRequests: number;
  /** Requests from it. */
  requests: number;
  /** Threads the server saw send something. */
  knownThreads: number[];
  /** The exceptions received, the verdict replied, and whether each was the lab's own. */
  exceptions: ExceptionSeen[];
  /** Hard errors (`LPC_ERROR_EVENT`) from the client and the Response replied. */
  hardErrors: {
    tid: number;
    status: string;
    parameters: string[];
    response: string;
    t: number;
  }[];
  /** Every CLIENT_DIED from it. */
  deaths: Death[];
  /** Threads reported twice (termination port and exception port). */
  duplicated: number[];
  /** Threads it never saw. */
  unknownThreads: number[];
  /**
   * The `LPC_PORT_CLOSED` of its connection (matched by PortContext): the ClientId it carried
   * (the kernel sends {0, 0}) and its 8 data bytes read as a CreateTime, which is that of whatever
   * process was current when the client port was deleted, not the client's.
   */
  portClosed: {
    t: number;
    context: string;
    clientId: { pid: number; tid: number };
    closerCreateTime?: string;
  } | null;
  /** Whether every CLIENT_DIED came before the PORT_CLOSED. */
  diedBeforeClosed: boolean;
}

/** The PortContexts the server gave the connections of `pid` (its `accept` events). */
export function connectionContexts(events: LpcEvent[], pid: number): Set<string> {
  return new Set(
    events.filter((e) => e.event === "accept" && e.pid === pid && e.context !== undefined)
      .map((e) => e.context!),
  );
}

/**
 * The last `LPC_PORT_CLOSED` on one of `contexts`. Matched by PortContext only: the kernel sends
 * it with ClientId {0, 0} (AlpcpSendCloseMessage.c zeroes the message), so a pid never matches.
 */
export function portClosedOn(events: LpcEvent[], contexts: Set<string>): LpcEvent | undefined {
  return events.filter((e) =>
    e.event === "LPC_PORT_CLOSED" && e.context !== undefined && contexts.has(e.context)
  ).at(-1);
}

/** Reads the server events for one client. */
export function analyzeTimeline(events: Exp2Event[], pid: number): Exp2Analysis {
  const mine = events.filter((e) => e.pid === pid);
  const contexts = connectionContexts(events, pid);
  const known = new Set<number>();
  for (const e of mine) {
    if (
      ["accept", "refuse", "LPC_REQUEST", "LPC_DATAGRAM", "LPC_EXCEPTION", "LPC_ERROR_EVENT"]
        .includes(e.event) &&
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
  // Announced raises, in order, each matching one exception (the handler consumes them the same way).
  const announced = mine.filter((e) => e.event === "reply" && e.note?.endsWith(" -> OK"))
    .map((e) => parseRaiseRequest(e.note!.slice(0, -" -> OK".length)))
    .filter((r): r is AnnouncedRaise => r !== null);
  const exceptions: ExceptionSeen[] = mine.filter((e) => e.event === "LPC_EXCEPTION" && e.exception)
    .map((e) => {
      const x = e.exception!;
      const code = statusValue(x.code);
      let ours = false;
      if (code !== undefined && /^0x[0-9a-f]+$/i.test(x.address)) {
        const i = announced.findIndex((a) => isAnnounced({ code, address: BigInt(x.address) }, a));
        if (i >= 0) {
          ours = true;
          announced.splice(i, 1);
        }
      }
      return {
        tid: e.tid!,
        code: x.code,
        address: x.address,
        firstChance: x.firstChance,
        verdict: x.verdict,
        ours,
        t: e.t,
      };
    });
  const closed = portClosedOn(events, contexts);
  return {
    pid,
    contexts: [...contexts],
    connectionRequests: mine.filter((e) => e.event === "accept" || e.event === "refuse").length,
    requests: mine.filter((e) => e.event === "LPC_REQUEST").length,
    knownThreads: [...known].sort((a, b) => a - b),
    exceptions,
    hardErrors: mine.filter((e) => e.event === "LPC_ERROR_EVENT" && e.hardError).map((e) => ({
      tid: e.tid!,
      status: e.hardError!.status,
      parameters: e.hardError!.parameters,
      response: e.hardError!.response,
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
    portClosed: closed
      ? {
        t: closed.t,
        context: closed.context!,
        clientId: { pid: closed.pid ?? 0, tid: closed.tid ?? 0 },
        ...(closed.createTime ? { closerCreateTime: closed.createTime } : {}),
      }
      : null,
    diedBeforeClosed: closed ? deaths.every((d) => d.t <= closed.t) : false,
  };
}

/** One line per exception for the timeline: the verdict and why. */
export function describeException(x: ExceptionSeen): string {
  return `LPC_EXCEPTION from thread ${x.tid}: ${x.code} at ${x.address}, FirstChance ${
    x.firstChance ? 1 : 0
  }, replied ${x.verdict} (${
    x.ours
      ? "the lab's own exception: its code and address were announced by the client"
      : "not the lab's exception: any other gets DBG_EXCEPTION_NOT_HANDLED"
  })`;
}

/** A hard error's fields in words (for the live log and the summary). */
export function hardErrorText(
  h: Pick<HardErrorEvent, "status" | "parameters" | "response">,
): string {
  return `${h.status}, ${h.parameters.length} parameter${h.parameters.length === 1 ? "" : "s"}${
    h.parameters.length ? ` [${h.parameters.join(", ")}]` : ""
  }, replied Response ${h.response}`;
}

/** One line per hard error for the timeline. */
export function describeHardError(h: Exp2Analysis["hardErrors"][number]): string {
  return `LPC_ERROR_EVENT (hard error) from thread ${h.tid}: ${hardErrorText(h)}`;
}

/** The line for the connection's `LPC_PORT_CLOSED`. */
export function describePortClosed(a: Exp2Analysis): string {
  if (!a.portClosed) {
    return `no LPC_PORT_CLOSED for the client's connection (PortContext ${
      a.contexts.join(", ") || "none"
    })`;
  }
  const p = a.portClosed;
  return `LPC_PORT_CLOSED on PortContext ${p.context} (the client's connection), ClientId ${p.clientId.pid}.${p.clientId.tid}${
    p.closerCreateTime
      ? `, data ${p.closerCreateTime} (the CreateTime of the process current at deletion)`
      : ""
  }`;
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
  if (a.hardErrors.length) {
    parts.push(
      `${a.hardErrors.length} hard error${
        a.hardErrors.length === 1 ? "" : "s"
      } (LPC_ERROR_EVENT) came through the same exception port as requests the raising thread waited on; the server replied ResponseReturnToCaller.`,
    );
  }
  if (a.portClosed) {
    const p = a.portClosed;
    const zero = p.clientId.pid === 0 && p.clientId.tid === 0;
    parts.push(
      `The client's connection was known to be gone at LPC_PORT_CLOSED, which the kernel sends when the client's port object is deleted. ` +
        `It names no sender (ClientId ${p.clientId.pid}.${p.clientId.tid}${
          zero ? ": the kernel zeroes it" : ""
        }); the server knew it was this client's by its PortContext ${p.context}, the context it gave that connection at accept. ` +
        "Its 8 data bytes are the CreateTime of whatever process was current when the port was deleted, not the client's. " +
        (a.diedBeforeClosed
          ? "Every LPC_CLIENT_DIED came before it."
          : "Some LPC_CLIENT_DIED came after it: the close can be late, once the last reference to the port goes."),
    );
  } else {
    parts.push(
      "No LPC_PORT_CLOSED arrived on the client's connection (its PortContext recorded at accept) within the wait: " +
        "the kernel sends it only when the client's port object is deleted, which can be later than the process's death.",
    );
  }
  return parts.join(" ");
}
