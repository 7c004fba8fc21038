/**
 * Experiment 2's control protocol between the client and the server, typed: the commands
 * (`HELLO`, `READY?`, `RAISE <code> <address>`, `DONE`), the announced raise, and each exchange
 * as the server's timeline records it (a `reply` event whose note the handler writes with
 * {@link exchangeNote}). The experiment waits on {@link ControlExchange}s, never on note text.
 *
 * @module
 */

import type { LpcEvent } from "../../mod.ts";
import { eventsOf } from "../_server_events.ts";

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

/** Whether an exception (code, address) is the one announced (the lab's own exception). */
export function isAnnounced(
  exception: { code: number; address: bigint },
  announced: AnnouncedRaise | undefined,
): boolean {
  return announced !== undefined && (exception.code >>> 0) === announced.code &&
    exception.address === announced.address;
}

/** The commands a client sends; `unknown` for anything else. */
export type ControlCommand = "HELLO" | "READY?" | "RAISE" | "DONE" | "unknown";

/** One request of the control protocol and the server's reply, from the timeline. */
export interface ControlExchange {
  /** What the client asked. */
  command: ControlCommand;
  /** The request's text (whole for an accepted RAISE, else its first 16 characters). */
  request: string;
  /** The server's reply (`WELCOME`, `GO`, `WAIT`, `OK`, `BYE`, `ERR ...`). */
  reply: string;
  /** The client process and thread. */
  pid: number | undefined;
  tid: number | undefined;
  /** When (ms since the server started). */
  t: number;
}

/** The command a request's text is. */
export function commandOf(text: string): ControlCommand {
  if (text === "HELLO" || text === "READY?") return text;
  if (text.startsWith("RAISE ")) return "RAISE";
  if (text.startsWith("DONE")) return "DONE";
  return "unknown";
}

const ARROW = " -> ";

/**
 * The note of the `reply` event for one exchange. The whole text of an accepted RAISE goes in
 * (the analysis matches exceptions against it); of anything else, its first 16 characters.
 */
export function exchangeNote(text: string, reply: string): string {
  return `${reply === "OK" ? text : text.slice(0, 16)}${ARROW}${reply}`;
}

/** The control exchanges in a timeline (the `reply` events, decoded; `pid` keeps one client's). */
export function controlExchanges(events: readonly LpcEvent[], pid?: number): ControlExchange[] {
  return eventsOf(events, "reply", pid).flatMap((e) => {
    const at = e.note?.lastIndexOf(ARROW) ?? -1;
    if (e.note === undefined || at < 0) return [];
    const request = e.note.slice(0, at);
    return [{
      command: commandOf(request),
      request,
      reply: e.note.slice(at + ARROW.length),
      pid: e.pid,
      tid: e.tid,
      t: e.t,
    }];
  });
}
