/**
 * The timeline event fields the LPC and the ALPC servers share, and the decoding of the kernel
 * messages both receive (`LPC_CLIENT_DIED` / `LPC_PORT_CLOSED`, `LPC_EXCEPTION`,
 * `LPC_ERROR_EVENT`) into those fields: one definition below `ffi/lpc/` and `ffi/alpc/`, so that
 * a reader of either timeline reads typed fields, never the text of a note.
 *
 * @module
 */

import {
  decodeClientDied,
  decodeExceptionMessage,
  decodeHardErrorMessage,
  type ExceptionMessage,
  type HardErrorMessage,
  HardErrorResponse,
  type PortMessageHeader,
  setHardErrorResponse,
  setReturnedStatus,
} from "./port_message.ts";
import { describeStatus, NTSTATUS } from "./status.ts";

/** An `LPC_EXCEPTION` as a timeline records it: the decoded DBGKM_APIMSG and the verdict. */
export interface ExceptionEventFields {
  /** The DBGKM_APIMSG's ApiNumber (0 = DbgKmExceptionApi). */
  apiNumber: number;
  /** The ReturnedStatus the message arrived with, described. */
  returnedStatus: string;
  /** The exception code, described. */
  code: string;
  /** The exception address, hex. */
  address: string;
  /** The exception parameters, hex. */
  parameters: string[];
  /** Whether the kernel says first chance. */
  firstChance: boolean;
  /** The verdict replied, described. */
  verdict: string;
}

/** An `LPC_ERROR_EVENT` as a timeline records it: the decoded hard error and the Response. */
export interface HardErrorEventFields {
  /** The hard error's status, described. */
  status: string;
  /** How many parameters it carries. */
  numberOfParameters: number;
  /** The parameters, hex. */
  parameters: string[];
  /** The `HARDERROR_RESPONSE` replied, by name. */
  response: string;
}

/** An event of a server's timeline: the fields both the LPC and the ALPC server record. */
export interface ServerEvent {
  /** Milliseconds since the server started. */
  t: number;
  /** When it happened, as Unix epoch milliseconds (to merge timelines of several processes). */
  at: number;
  /** What happened: the message type name, or `accept`, `refuse`, `reply`, `reply-failed`, `error`. */
  event: string;
  /** The sender (for messages). */
  pid?: number;
  /** The sending thread. */
  tid?: number;
  /** The raw `Type`, flags included. */
  rawType?: number;
  /** `MessageId`. */
  messageId?: number;
  /** `DataLength`. */
  dataLength?: number;
  /** `TotalLength`. */
  totalLength?: number;
  /** The PortContext the message arrived with, hex (`0x0` = none: the connection port's own). */
  context?: string;
  /** Extra detail, for people: nothing reads it back. */
  note?: string;
  /**
   * The client of the connection this message's PortContext names (as recorded at accept). The
   * only way to attribute `LPC_PORT_CLOSED`, whose ClientId the kernel zeroes
   * (AlpcpSendCloseMessage.c).
   */
  client?: { pid: number; tid: number };
  /**
   * For LPC_CLIENT_DIED: the dying thread's creation time, ISO 8601. For LPC_PORT_CLOSED: the
   * creation time of whatever process was current when the client port was deleted (possibly
   * this server's), not the client's (AlpcpSendCloseMessage.c writes the current process's).
   */
  createTime?: string;
  /** For LPC_ERROR_EVENT: the decoded hard error and the Response replied. */
  hardError?: HardErrorEventFields;
  /** For LPC_EXCEPTION: the decoded DBGKM_APIMSG and the verdict replied. */
  exception?: ExceptionEventFields;
}

/** The fields a message's header gives an event (the PortContext is the server's to say). */
export function headerEventFields(
  header: PortMessageHeader,
): Pick<ServerEvent, "pid" | "tid" | "rawType" | "messageId" | "dataLength" | "totalLength"> {
  return {
    pid: header.clientId.process,
    tid: header.clientId.thread,
    rawType: header.rawType,
    messageId: header.messageId,
    dataLength: header.dataLength,
    totalLength: header.totalLength,
  };
}

/** The message of a caught value, for an event's note. */
export function errorNote(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The fields of an `LPC_CLIENT_DIED` or `LPC_PORT_CLOSED` in `receive` (both an
 * LPC_CLIENT_DIED_MSG: PspExitThread.c, AlpcpSendCloseMessage.c): its `createTime`, or a note
 * when it cannot be decoded.
 */
export function clientDiedEventFields(receive: Uint8Array): Partial<ServerEvent> {
  try {
    const died = decodeClientDied(receive);
    const iso = Number.isFinite(died.createdAt.getTime())
      ? died.createdAt.toISOString()
      : `FILETIME ${died.createTime}`;
    return { createTime: iso, note: `CreateTime ${iso}` };
  } catch (e) {
    return { note: errorNote(e) };
  }
}

/**
 * Answers the `LPC_EXCEPTION` in `receive`: decodes it, asks `decide` for the verdict (default
 * `DBG_EXCEPTION_NOT_HANDLED`, also when decoding or `decide` fails: DbgkForwardException.c
 * counts any other status >= 0 as handled), writes it into `reply` as ReturnedStatus, and gives
 * the event's fields (`exception`, or a note).
 */
export function answerException(
  receive: Uint8Array,
  reply: Uint8Array,
  decide: ((m: ExceptionMessage) => number | undefined) | undefined,
): Partial<ServerEvent> {
  let verdict: number = NTSTATUS.DBG_EXCEPTION_NOT_HANDLED;
  let fields: Partial<ServerEvent>;
  try {
    const m = decodeExceptionMessage(receive);
    verdict = decide?.(m) ?? NTSTATUS.DBG_EXCEPTION_NOT_HANDLED;
    fields = {
      exception: {
        apiNumber: m.apiNumber,
        returnedStatus: describeStatus(m.returnedStatus),
        code: describeStatus(m.record.code),
        address: hex(m.record.address),
        parameters: m.record.parameters.map(hex),
        firstChance: m.firstChance,
        verdict: describeStatus(verdict),
      },
    };
  } catch (e) {
    fields = { note: errorNote(e) };
  }
  try {
    setReturnedStatus(reply, verdict);
  } catch { /* malformed: reply unchanged */ }
  return fields;
}

/**
 * Answers the `LPC_ERROR_EVENT` (a hard error, ExpRaiseHardError.c) in `receive`: decodes it,
 * asks `decide` for the Response (default `ResponseReturnToCaller`), writes it into `reply`, and
 * gives the event's fields (`hardError`, or a note; then `reply` is left unchanged).
 */
export function answerHardError(
  receive: Uint8Array,
  reply: Uint8Array,
  decide: ((m: HardErrorMessage) => number | undefined) | undefined,
): Partial<ServerEvent> {
  try {
    const he = decodeHardErrorMessage(receive);
    const response = decide?.(he) ?? HardErrorResponse.ResponseReturnToCaller;
    setHardErrorResponse(reply, response);
    return {
      hardError: {
        status: describeStatus(he.status),
        numberOfParameters: he.parameters.length,
        parameters: he.parameters.map(hex),
        response: hardErrorResponseName(response),
      },
    };
  } catch (e) {
    return { note: errorNote(e) };
  }
}

/** The name of a `HARDERROR_RESPONSE` value. */
export function hardErrorResponseName(response: number): string {
  const e = Object.entries(HardErrorResponse).find(([, v]) => v === response);
  return e ? e[0] : `0x${response.toString(16)}`;
}

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}
