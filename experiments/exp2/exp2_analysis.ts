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

import type { LpcEvent } from "../../mod.ts";
import {
  type AnnouncedRaise,
  controlExchanges,
  isAnnounced,
  parseRaiseRequest,
} from "./exp2_control.ts";

export { type AnnouncedRaise, parseRaiseRequest, raiseRequest } from "./exp2_control.ts";
export {
  answerQuestion2,
  describeException,
  describeHardError,
  describePortClosed,
  hardErrorText,
} from "./exp2_explain.ts";

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

/** The last 0x-number in a described status such as `STATUS_BREAKPOINT (0x80000003)`. */
function statusValue(described: string): number | undefined {
  const all = described.match(/0x[0-9a-fA-F]+/g);
  return all ? Number(all.at(-1)) >>> 0 : undefined;
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
  const announced = controlExchanges(mine)
    .filter((x) => x.command === "RAISE" && x.reply === "OK")
    .map((x) => parseRaiseRequest(x.request))
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
