/**
 * Experiment 2's explanation: the timeline's reading (`exp2_analysis.ts`) in sentences, one line
 * per exception, hard error and closed connection, and the answer to question 2 from this run.
 *
 * @module
 */

import type { ExceptionSeen, Exp2Analysis, HardErrorEvent } from "./exp2_analysis.ts";

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
