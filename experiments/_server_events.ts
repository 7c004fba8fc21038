/**
 * The LPC server's timeline, typed: the kinds of event it logs ({@link ServerEventKind}) and the
 * questions the experiments ask of it (has this client connected? sent this?). Waiting is on an
 * event's kind and sender, never on the text of its note.
 *
 * @module
 */

import type { LpcEvent } from "../mod.ts";

/**
 * What the server logs as `LpcEvent.event`: its own steps (a connection accepted or refused, a
 * reply sent or not delivered, an error) and the type of each message it received.
 */
export type ServerEventKind =
  | "accept"
  | "refuse"
  | "reply"
  | "reply-failed"
  | "error"
  | "LPC_REQUEST"
  | "LPC_DATAGRAM"
  | "LPC_EXCEPTION"
  | "LPC_ERROR_EVENT"
  | "LPC_CLIENT_DIED"
  | "LPC_PORT_CLOSED";

/** A server event of one kind. */
export type ServerEvent<K extends ServerEventKind = ServerEventKind> = LpcEvent & { event: K };

/** Whether `e` is of `kind` (and, with `pid`, sent by that process). */
export function isEvent<K extends ServerEventKind>(
  e: LpcEvent,
  kind: K,
  pid?: number,
): e is ServerEvent<K> {
  return e.event === kind && (pid === undefined || e.pid === pid);
}

/** The events of `kind` (and, with `pid`, from that process), in order. */
export function eventsOf<K extends ServerEventKind>(
  events: readonly LpcEvent[],
  kind: K,
  pid?: number,
): ServerEvent<K>[] {
  return events.filter((e): e is ServerEvent<K> => isEvent(e, kind, pid));
}

/** Whether the server has accepted a connection from `pid`. */
export function connected(events: readonly LpcEvent[], pid: number): boolean {
  return events.some((e) => isEvent(e, "accept", pid));
}

/** One line of the live log. */
export function formatEvent(e: LpcEvent): string {
  const who = e.pid !== undefined ? ` pid ${e.pid} tid ${e.tid}` : "";
  const ids = e.messageId !== undefined
    ? ` msg ${e.messageId} len ${e.dataLength}/${e.totalLength}`
    : "";
  return `${e.t.toFixed(1).padStart(9)} ms  ${e.event.padEnd(22)}${who}${ids}${
    e.context ? ` ctx ${e.context}` : ""
  }${e.note ? `  ${e.note}` : ""}`;
}
