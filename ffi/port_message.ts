/**
 * The LPC `PORT_MESSAGE` codec (x64: a 40-byte header, then the payload), and the decoders for
 * the messages the kernel itself sends: `LPC_CLIENT_DIED` / `LPC_PORT_CLOSED`
 * (`LPC_CLIENT_DIED_MSG`) and `LPC_EXCEPTION` (`DBGKM_APIMSG`).
 *
 * Decoding never trusts the buffer: every length is checked before it is used, a malformed
 * message throws {@link PortMessageError}, and nothing is read outside the given bytes.
 * Message types are compared after `& 0xFF`; the flag bits above are kept apart.
 *
 * @module
 */

import { LAYOUTS } from "./layouts.ts";

const PM = LAYOUTS.PORT_MESSAGE;
const CID = LAYOUTS.CLIENT_ID;
const DIED = LAYOUTS.LPC_CLIENT_DIED_MSG;
const DBGKM = LAYOUTS.DBGKM_APIMSG;
const HEM = LAYOUTS.HARDERROR_MSG;
const ER = LAYOUTS.EXCEPTION_RECORD;
const PDI = LAYOUTS.PORT_DATA_INFORMATION;
const PDE = LAYOUTS.PORT_DATA_ENTRY;

/** `sizeof(PORT_MESSAGE)` on x64. */
export const PORT_MESSAGE_HEADER_SIZE: number = PM.size;
/**
 * `PORT_MAXIMUM_MESSAGE_LENGTH` on x64 (512): the header constant, and the toolkit's default
 * `MaxMessageLength` (it holds every kernel message). It is not the kernel's limit: see
 * {@link LPC_LEGACY_MAX_MESSAGE_LENGTH}.
 */
export const PORT_MAXIMUM_MESSAGE_LENGTH = 512;
/**
 * `LpcLegacyMaxMessageLength` on x64 (648): the largest `MaxMessageLength` `NtCreatePort` accepts;
 * above it the call fails with `STATUS_INVALID_PARAMETER` (Windows 11: NtCreatePort.c,
 * AlpcpValidateAndSetPortAttributes.c; the value is set in Phase1InitializationDiscard.c).
 */
export const LPC_LEGACY_MAX_MESSAGE_LENGTH = 648;
/** `LPC_MAX_CONNECTION_INFO_SIZE` on x64 (16 pointers). */
export const LPC_MAX_CONNECTION_INFO_SIZE = 128;
/**
 * `PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH` on x64 (0x2B0): the receive-buffer size that holds any
 * legacy message, connection requests included.
 */
export const PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH =
  (PORT_MAXIMUM_MESSAGE_LENGTH + PM.size + LPC_MAX_CONNECTION_INFO_SIZE + 0xf) & ~0xf;
// It must also hold the largest message a port may be created for.
const _holdsLegacyMax: true =
  (PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH >= LPC_LEGACY_MAX_MESSAGE_LENGTH) as true;
/**
 * The `TotalLength` of each message the kernel sends to an exception or termination port on x64:
 * `LPC_CLIENT_DIED` and `LPC_PORT_CLOSED` 0x30 (PspExitThread.c, AlpcpSendCloseMessage.c),
 * `LPC_ERROR_EVENT` 0x70 (ExpRaiseHardError.c), `LPC_EXCEPTION` 0xD0 (DbgkForwardException.c;
 * 0x110, `sizeof(DBGKM_APIMSG)`, goes only to the WER error port: DbgkpSendErrorMessage.c). A port
 * whose `MaxMessageLength` is smaller drops the message (AlpcpSendMessage.c).
 */
export const KERNEL_MESSAGE_LENGTH = {
  LPC_CLIENT_DIED: 0x30,
  LPC_PORT_CLOSED: 0x30,
  LPC_ERROR_EVENT: 0x70,
  LPC_EXCEPTION: 0xd0,
} as const;
/** The largest message the kernel sends to an exception port (0xD0, `LPC_EXCEPTION`). */
export const LARGEST_KERNEL_MESSAGE: number = KERNEL_MESSAGE_LENGTH.LPC_EXCEPTION;

/**
 * LPC message types (the low byte of `PORT_MESSAGE.Type`): what `header.type` says a message is.
 *
 * @example
 * ```ts
 * import { decodePortMessage, encodePortMessage, LpcMessageType } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const wire = encodePortMessage({ data: new Uint8Array(4), type: LpcMessageType.LPC_DATAGRAM });
 * assertEquals(decodePortMessage(wire).header.type & 0xff, LpcMessageType.LPC_DATAGRAM);
 * ```
 */
export const LpcMessageType = {
  LPC_NEW_MESSAGE: 0,
  LPC_REQUEST: 1,
  LPC_REPLY: 2,
  LPC_DATAGRAM: 3,
  LPC_LOST_REPLY: 4,
  LPC_PORT_CLOSED: 5,
  LPC_CLIENT_DIED: 6,
  LPC_EXCEPTION: 7,
  LPC_DEBUG_EVENT: 8,
  LPC_ERROR_EVENT: 9,
  LPC_CONNECTION_REQUEST: 10,
  LPC_CONNECTION_REPLY: 11,
  LPC_CANCELED: 12,
  LPC_UNREGISTER_PROCESS: 13,
} as const;

/** Flag bits above the type byte. */
export const LpcMessageFlag = {
  LPC_CONTINUATION_REQUIRED: 0x2000,
  LPC_NO_IMPERSONATE: 0x4000,
  LPC_KERNELMODE_MESSAGE: 0x8000,
} as const;

const TYPE_NAMES = new Map<number, string>(
  Object.entries(LpcMessageType).map(([k, v]) => [v, k]),
);

/**
 * The name of a message type, masked with `0xFF` first (`LPC_UNKNOWN_<n>` when unknown).
 *
 * @example
 * ```ts
 * import { messageTypeName } from "./port_message.ts";
 * messageTypeName(0x2001); // "LPC_REQUEST"
 * ```
 */
export function messageTypeName(type: number): string {
  const t = type & 0xff;
  return TYPE_NAMES.get(t) ?? `LPC_UNKNOWN_${t}`;
}

/** Names of the flag bits set in a raw `Type`. */
export function messageFlagNames(type: number): string[] {
  return Object.entries(LpcMessageFlag).filter(([, bit]) => (type & bit) !== 0).map(([k]) => k);
}

/** A `CLIENT_ID`: the sending process and thread. */
export interface ClientId {
  /** `UniqueProcess`: the process id. */
  process: number;
  /** `UniqueThread`: the thread id. */
  thread: number;
}

/** A decoded `PORT_MESSAGE` header. */
export interface PortMessageHeader {
  /** Payload bytes after the 40-byte header. */
  dataLength: number;
  /** Header + payload. */
  totalLength: number;
  /** The raw 16-bit `Type`, flags included. */
  rawType: number;
  /** `Type & 0xFF`: compare this with {@link LpcMessageType}. */
  type: number;
  /** `Type & 0xFF00`: the flag bits. */
  flags: number;
  /** `DataInfoOffset` (0 unless the message carries a `PORT_DATA_INFORMATION`). */
  dataInfoOffset: number;
  /** The sender, stamped by the kernel. */
  clientId: ClientId;
  /** The kernel-assigned message id (a reply must echo it). */
  messageId: number;
  /** `ClientViewSize` (union with `CallbackId`): meaningful for connection requests. */
  clientViewSize: bigint;
  /** `CallbackId` (the low 32 bits of the same union): meaningful for requests. */
  callbackId: number;
}

/** A decoded message: the header and a copy of its payload. */
export interface PortMessage {
  /** The header. */
  header: PortMessageHeader;
  /** A copy of the `dataLength` payload bytes. */
  data: Uint8Array<ArrayBuffer>;
}

/** What was wrong with a message that failed to decode or encode. */
export type PortMessageFault =
  | "short-buffer"
  | "total-below-header"
  | "total-beyond-buffer"
  | "data-beyond-total"
  | "bad-data-info-offset"
  | "too-long"
  | "wrong-type"
  | "short-payload"
  | "bad-parameter-count";

/**
 * A malformed or oversized `PORT_MESSAGE`.
 *
 * @example
 * ```ts
 * import { decodePortMessage, PortMessageError } from "./port_message.ts";
 * try {
 *   decodePortMessage(new Uint8Array(8));
 * } catch (e) {
 *   (e as PortMessageError).fault; // "short-buffer"
 * }
 * ```
 */
export class PortMessageError extends RangeError {
  /** Always `"PortMessageError"`. */
  override name = "PortMessageError";
  /** What was wrong. */
  readonly fault: PortMessageFault;

  /**
   * Builds the error.
   *
   * @param fault what was wrong
   * @param message the details
   */
  constructor(fault: PortMessageFault, message: string) {
    super(`Malformed PORT_MESSAGE (${fault}): ${message}`);
    this.fault = fault;
  }
}

function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Decodes and validates a header: `TotalLength` ≥ 40 and within the buffer, `DataLength` ≤
 * `TotalLength` − 40, `DataInfoOffset` either 0 or an 8-aligned offset whose data-entry table lies
 * inside the message.
 *
 * @param buf the received bytes (at least the header)
 */
export function decodePortMessageHeader(buf: Uint8Array): PortMessageHeader {
  const dv = checkPortMessageHeader(buf);
  const cid = PM.offsets.ClientId;
  return {
    dataLength: dv.getUint16(PM.offsets.DataLength, true),
    totalLength: dv.getUint16(PM.offsets.TotalLength, true),
    rawType: dv.getUint16(PM.offsets.Type, true),
    type: dv.getUint16(PM.offsets.Type, true) & 0xff,
    flags: dv.getUint16(PM.offsets.Type, true) & 0xff00,
    dataInfoOffset: dv.getUint16(PM.offsets.DataInfoOffset, true),
    clientId: {
      process: Number(dv.getBigUint64(cid + CID.offsets.UniqueProcess, true)),
      thread: Number(dv.getBigUint64(cid + CID.offsets.UniqueThread, true)),
    },
    messageId: dv.getUint32(PM.offsets.MessageId, true),
    clientViewSize: dv.getBigUint64(PM.offsets.ClientViewSize, true),
    callbackId: dv.getUint32(PM.offsets.CallbackId, true),
  };
}

/**
 * The checks of {@link decodePortMessageHeader}, building nothing (a server's per-message path
 * calls it on every receive): throws {@link PortMessageError}, else returns a view of `buf`.
 *
 * @param buf the received bytes (at least the header)
 * @param dv a DataView of `buf` to reuse (one is made otherwise)
 */
export function checkPortMessageHeader(buf: Uint8Array, dv?: DataView): DataView {
  if (buf.byteLength < PM.size) {
    throw new PortMessageError(
      "short-buffer",
      `${buf.byteLength} bytes, a header needs ${PM.size}`,
    );
  }
  const view = dv ?? viewOf(buf);
  const dataLength = view.getUint16(PM.offsets.DataLength, true);
  const totalLength = view.getUint16(PM.offsets.TotalLength, true);
  const dataInfoOffset = view.getUint16(PM.offsets.DataInfoOffset, true);
  if (totalLength < PM.size) {
    throw new PortMessageError(
      "total-below-header",
      `TotalLength ${totalLength} < ${PM.size}`,
    );
  }
  if (totalLength > buf.byteLength) {
    throw new PortMessageError(
      "total-beyond-buffer",
      `TotalLength ${totalLength} > ${buf.byteLength} received bytes`,
    );
  }
  if (dataLength > totalLength - PM.size) {
    throw new PortMessageError(
      "data-beyond-total",
      `DataLength ${dataLength} > TotalLength ${totalLength} - ${PM.size}`,
    );
  }
  if (dataInfoOffset !== 0) {
    const tableEnd = dataInfoOffset + PDI.offsets.DataEntries;
    if (dataInfoOffset < PM.size || dataInfoOffset % 8 !== 0 || tableEnd > totalLength) {
      throw new PortMessageError(
        "bad-data-info-offset",
        `DataInfoOffset ${dataInfoOffset} (must be 0, or 8-aligned, >= ${PM.size} and inside TotalLength ${totalLength})`,
      );
    }
    const count = view.getUint32(dataInfoOffset + PDI.offsets.CountDataEntries, true);
    if (tableEnd + count * PDE.size > totalLength) {
      throw new PortMessageError(
        "bad-data-info-offset",
        `${count} data entries at ${dataInfoOffset} overrun TotalLength ${totalLength}`,
      );
    }
  }
  return view;
}

/** A 64-bit little-endian field as a number (ids and lengths; no BigInt is made). */
function u64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x1_0000_0000;
}

/**
 * A {@link PortMessageHeader} read from a buffer on each access, for a server's per-message path:
 * one object for every message received into that buffer, so reading a field allocates nothing
 * (but `clientViewSize`, a BigInt). It says what the buffer holds now: after the next receive it
 * describes the next message. {@link snapshot} makes a copy that stays.
 */
export class PortMessageHeaderView implements PortMessageHeader {
  readonly #buf: Uint8Array;
  readonly #dv: DataView;
  readonly #clientId: ClientId = { process: 0, thread: 0 };

  /**
   * Reads headers out of `buf` (check each with {@link checkPortMessageHeader} first).
   *
   * @param buf the receive buffer
   */
  constructor(buf: Uint8Array) {
    this.#buf = buf;
    this.#dv = viewOf(buf);
  }

  /** The DataView of the buffer (for {@link checkPortMessageHeader}). */
  get dataView(): DataView {
    return this.#dv;
  }
  /**
   * Whether the buffer holds a well-formed `LPC_REQUEST` ({@link checkPortMessageHeader} passes
   * and the type is a request): the only message a server's allocation-free path takes.
   */
  isWellFormedRequest(): boolean {
    try {
      checkPortMessageHeader(this.#buf, this.#dv);
    } catch {
      return false;
    }
    return this.type === LpcMessageType.LPC_REQUEST;
  }
  /** `DataLength`. */
  get dataLength(): number {
    return this.#dv.getUint16(PM.offsets.DataLength, true);
  }
  /** `TotalLength`. */
  get totalLength(): number {
    return this.#dv.getUint16(PM.offsets.TotalLength, true);
  }
  /** The raw `Type`. */
  get rawType(): number {
    return this.#dv.getUint16(PM.offsets.Type, true);
  }
  /** `Type & 0xFF`. */
  get type(): number {
    return this.rawType & 0xff;
  }
  /** `Type & 0xFF00`. */
  get flags(): number {
    return this.rawType & 0xff00;
  }
  /** `DataInfoOffset`. */
  get dataInfoOffset(): number {
    return this.#dv.getUint16(PM.offsets.DataInfoOffset, true);
  }
  /** The sender: one object, updated on each read. */
  get clientId(): ClientId {
    const cid = PM.offsets.ClientId;
    this.#clientId.process = u64(this.#dv, cid + CID.offsets.UniqueProcess);
    this.#clientId.thread = u64(this.#dv, cid + CID.offsets.UniqueThread);
    return this.#clientId;
  }
  /** `MessageId`. */
  get messageId(): number {
    return this.#dv.getUint32(PM.offsets.MessageId, true);
  }
  /** `ClientViewSize` (a new BigInt on each read). */
  get clientViewSize(): bigint {
    return this.#dv.getBigUint64(PM.offsets.ClientViewSize, true);
  }
  /** `CallbackId`. */
  get callbackId(): number {
    return this.#dv.getUint32(PM.offsets.CallbackId, true);
  }
  /** A plain copy of the header as it is now (for a timeline event, or to keep). */
  snapshot(): PortMessageHeader {
    return decodePortMessageHeader(this.#buf);
  }
}

/**
 * Decodes a whole message: the validated header and a copy of its payload.
 *
 * @example
 * ```ts
 * import { decodePortMessage, encodePortMessage } from "./port_message.ts";
 * const msg = decodePortMessage(encodePortMessage({ data: new Uint8Array([1, 2, 3]) }));
 * msg.header.dataLength; // 3
 * ```
 */
export function decodePortMessage(buf: Uint8Array): PortMessage {
  const header = decodePortMessageHeader(buf);
  return { header, data: buf.slice(PM.size, PM.size + header.dataLength) };
}

/** What {@link encodePortMessage} writes. */
export interface PortMessageInit {
  /** The payload. */
  data?: Uint8Array;
  /** The raw `Type` (user-mode senders leave it 0). */
  type?: number;
  /** `ClientId` (a reply must echo the request's). */
  clientId?: ClientId;
  /** `MessageId` (a reply must echo the request's). */
  messageId?: number;
  /** `CallbackId` / low half of `ClientViewSize`. */
  callbackId?: number;
  /** The largest `TotalLength` allowed (default {@link PORT_MAXIMUM_MESSAGE_LENGTH}). */
  maxTotalLength?: number;
}

/**
 * Encodes a message: header with `DataLength` = payload size, `TotalLength` = 40 + payload,
 * `DataInfoOffset` 0. Throws {@link PortMessageError} (`too-long`) when it would exceed
 * `maxTotalLength`.
 *
 * @param init the fields
 * @param into an existing buffer to write into (at least `TotalLength` bytes); a new one otherwise
 *
 * @example
 * ```ts
 * import { encodePortMessage } from "./port_message.ts";
 * encodePortMessage({ data: new TextEncoder().encode("hi") }).byteLength; // 42
 * ```
 */
export function encodePortMessage(
  init: PortMessageInit,
  into?: Uint8Array<ArrayBuffer>,
): Uint8Array<ArrayBuffer> {
  const max = init.maxTotalLength ?? PORT_MAXIMUM_MESSAGE_LENGTH;
  return writePortMessage(init, { max, ceiling: 0x7fff, into });
}

/** How {@link writePortMessage} bounds a message and where it writes it. */
export interface PortMessageLimits {
  /** The largest `TotalLength` allowed (the one the error names). */
  max: number;
  /** The transport's own ceiling on `TotalLength` (LPC 0x7FFF, ALPC 0xFFFF). */
  ceiling: number;
  /** The buffer to write into (at least `TotalLength` bytes). */
  into?: Uint8Array<ArrayBuffer> | undefined;
  /** Without `into`: the new buffer's size, when larger than the message (default: the message). */
  capacity?: number | undefined;
}

/**
 * The one `PORT_MESSAGE` encoder, behind {@link encodePortMessage} and ALPC's
 * `encodeAlpcMessage`: `DataLength` = payload size, `TotalLength` = 40 + payload,
 * `DataInfoOffset` 0, then `Type`, `ClientId`, `MessageId`, `CallbackId` and the payload. Throws
 * {@link PortMessageError} (`too-long`) past `limits.max` or `limits.ceiling`, (`short-buffer`)
 * when `limits.into` cannot hold the message. `init.maxTotalLength` is not read: the caller turns
 * it into `limits.max`.
 *
 * @param init the fields
 * @param limits the bounds, and the buffer (or its size)
 */
export function writePortMessage(
  init: PortMessageInit,
  limits: PortMessageLimits,
): Uint8Array<ArrayBuffer> {
  const data = init.data ?? new Uint8Array(0);
  const { max, ceiling } = limits;
  const total = PM.size + data.byteLength;
  if (total > max || total > ceiling) {
    throw new PortMessageError(
      "too-long",
      `TotalLength ${total} (40 + ${data.byteLength} bytes of data) exceeds the maximum ${max}`,
    );
  }
  const buf = limits.into ?? new Uint8Array(Math.max(total, limits.capacity ?? 0));
  if (buf.byteLength < total) {
    throw new PortMessageError(
      "short-buffer",
      `${buf.byteLength}-byte buffer for a ${total}-byte message`,
    );
  }
  buf.fill(0, 0, PM.size);
  const dv = viewOf(buf);
  dv.setUint16(PM.offsets.DataLength, data.byteLength, true);
  dv.setUint16(PM.offsets.TotalLength, total, true);
  dv.setUint16(PM.offsets.Type, init.type ?? 0, true);
  if (init.clientId) {
    dv.setBigUint64(
      PM.offsets.ClientId + CID.offsets.UniqueProcess,
      BigInt(init.clientId.process),
      true,
    );
    dv.setBigUint64(
      PM.offsets.ClientId + CID.offsets.UniqueThread,
      BigInt(init.clientId.thread),
      true,
    );
  }
  dv.setUint32(PM.offsets.MessageId, init.messageId ?? 0, true);
  dv.setUint32(PM.offsets.CallbackId, init.callbackId ?? 0, true);
  buf.set(data, PM.size);
  return buf;
}

/**
 * Turns a received message into its reply, in place: keeps `MessageId` and `CallbackId` (the
 * kernel finds the waiting request by both: AlpcpLookupMessage.c), `ClientId` and `Type` (the
 * kernel stamps `LPC_REPLY` and the replying thread's ClientId itself), replaces the payload and
 * both lengths, zeroes `DataInfoOffset`. Returns `buf`.
 *
 * @param buf the buffer the request was received into
 * @param data the reply payload
 * @param maxTotalLength the port's maximum message length
 */
export function rewriteAsReply(
  buf: Uint8Array<ArrayBuffer>,
  data: Uint8Array,
  maxTotalLength: number = PORT_MAXIMUM_MESSAGE_LENGTH,
): Uint8Array<ArrayBuffer> {
  const total = PM.size + data.byteLength;
  if (total > maxTotalLength || total > buf.byteLength) {
    throw new PortMessageError(
      "too-long",
      `reply TotalLength ${total} exceeds ${Math.min(maxTotalLength, buf.byteLength)}`,
    );
  }
  const dv = viewOf(buf);
  dv.setUint16(PM.offsets.DataLength, data.byteLength, true);
  dv.setUint16(PM.offsets.TotalLength, total, true);
  dv.setUint16(PM.offsets.DataInfoOffset, 0, true);
  buf.set(data, PM.size);
  return buf;
}

/** A relative NT timeout (`LARGE_INTEGER`, 100 ns units, negative) for `ms` milliseconds. */
export function relativeTimeout(ms: number): BigInt64Array<ArrayBuffer> {
  return new BigInt64Array([BigInt(-Math.max(0, Math.round(ms * 10_000)))]);
}

/** Converts a FILETIME (100 ns since 1601-01-01 UTC) to a `Date`. */
export function fileTimeToDate(fileTime: bigint): Date {
  return new Date(Number((fileTime - 116444736000000000n) / 10000n));
}

/** A decoded `LPC_CLIENT_DIED` or `LPC_PORT_CLOSED` message. */
export interface ClientDiedMessage {
  /** The header (ClientId = the exiting thread, or the closing process's last thread). */
  header: PortMessageHeader;
  /** The exiting thread's creation time (FILETIME), not an exit time. */
  createTime: bigint;
  /** `createTime` as a date. */
  createdAt: Date;
}

function requireType(header: PortMessageHeader, allowed: number[]): void {
  if (!allowed.includes(header.type)) {
    throw new PortMessageError(
      "wrong-type",
      `${messageTypeName(header.type)} where ${
        allowed.map(messageTypeName).join(" or ")
      } was expected`,
    );
  }
}

/**
 * Decodes an `LPC_CLIENT_DIED_MSG` (type 6, or type 5 `LPC_PORT_CLOSED` with the same layout).
 *
 * @example
 * ```ts ignore
 * import { decodeClientDied } from "./port_message.ts";
 * const died = decodeClientDied(receiveBuffer);
 * console.log(died.header.clientId.thread, died.createdAt.toISOString());
 * ```
 */
export function decodeClientDied(buf: Uint8Array): ClientDiedMessage {
  const header = decodePortMessageHeader(buf);
  requireType(header, [LpcMessageType.LPC_CLIENT_DIED, LpcMessageType.LPC_PORT_CLOSED]);
  const payload = DIED.size - DIED.offsets.CreateTime;
  if (header.dataLength < payload) {
    throw new PortMessageError(
      "short-payload",
      `DataLength ${header.dataLength} < ${payload} (CreateTime)`,
    );
  }
  const createTime = viewOf(buf).getBigInt64(DIED.offsets.CreateTime, true);
  return { header, createTime, createdAt: fileTimeToDate(createTime) };
}

/** A decoded `EXCEPTION_RECORD`. */
export interface ExceptionRecordInfo {
  /** `ExceptionCode` (unsigned). */
  code: number;
  /** `ExceptionFlags` (1 = non-continuable). */
  flags: number;
  /** `ExceptionRecord`: a chained record's address in the faulting process (0 if none). */
  nested: bigint;
  /** `ExceptionAddress`. */
  address: bigint;
  /** `ExceptionInformation[0 .. NumberParameters)`. */
  parameters: bigint[];
}

/** `EXCEPTION_MAXIMUM_PARAMETERS`. */
export const EXCEPTION_MAXIMUM_PARAMETERS = 15;

/**
 * Decodes an `EXCEPTION_RECORD` at `offset` of `buf` (152 bytes must fit).
 *
 * @param buf the bytes
 * @param offset where the record starts
 */
export function decodeExceptionRecord(buf: Uint8Array, offset = 0): ExceptionRecordInfo {
  if (offset < 0 || offset + ER.size > buf.byteLength) {
    throw new PortMessageError(
      "short-payload",
      `an EXCEPTION_RECORD at ${offset} needs ${ER.size} bytes, ${buf.byteLength - offset} left`,
    );
  }
  const dv = viewOf(buf);
  const count = dv.getUint32(offset + ER.offsets.NumberParameters, true);
  if (count > EXCEPTION_MAXIMUM_PARAMETERS) {
    throw new PortMessageError(
      "bad-parameter-count",
      `NumberParameters ${count} > ${EXCEPTION_MAXIMUM_PARAMETERS}`,
    );
  }
  const parameters: bigint[] = [];
  for (let i = 0; i < count; i++) {
    parameters.push(dv.getBigUint64(offset + ER.offsets.ExceptionInformation + 8 * i, true));
  }
  return {
    code: dv.getUint32(offset + ER.offsets.ExceptionCode, true),
    flags: dv.getUint32(offset + ER.offsets.ExceptionFlags, true),
    nested: dv.getBigUint64(offset + ER.offsets.ExceptionRecord, true),
    address: dv.getBigUint64(offset + ER.offsets.ExceptionAddress, true),
    parameters,
  };
}

/** A decoded `LPC_EXCEPTION` (`DBGKM_APIMSG` with the exception member). */
export interface ExceptionMessage {
  /** The header (ClientId = the faulting thread). */
  header: PortMessageHeader;
  /** `ApiNumber` (0 = DbgKmExceptionApi). */
  apiNumber: number;
  /** `ReturnedStatus` as received (STATUS_PENDING on arrival). */
  returnedStatus: number;
  /** The exception. */
  record: ExceptionRecordInfo;
  /** `FirstChance` (always 0 on the exception-port path). */
  firstChance: boolean;
}

/**
 * Decodes an `LPC_EXCEPTION` message. On the exception port it is 0xA8 data bytes, TotalLength
 * 0xD0 (DbgkForwardException.c); only the bytes up to `FirstChance` are required.
 */
export function decodeExceptionMessage(buf: Uint8Array): ExceptionMessage {
  const header = decodePortMessageHeader(buf);
  requireType(header, [LpcMessageType.LPC_EXCEPTION]);
  const needed = DBGKM.offsets.FirstChance + 4 - PM.size;
  if (header.dataLength < needed) {
    throw new PortMessageError(
      "short-payload",
      `DataLength ${header.dataLength} < ${needed} (DBGKM_APIMSG up to FirstChance)`,
    );
  }
  const dv = viewOf(buf);
  return {
    header,
    apiNumber: dv.getUint32(DBGKM.offsets.ApiNumber, true),
    returnedStatus: dv.getUint32(DBGKM.offsets.ReturnedStatus, true),
    record: decodeExceptionRecord(buf, DBGKM.offsets.ExceptionRecord),
    firstChance: dv.getUint32(DBGKM.offsets.FirstChance, true) !== 0,
  };
}

/** `MAXIMUM_HARDERROR_PARAMETERS`: the parameters a hard-error message carries. */
export const MAXIMUM_HARDERROR_PARAMETERS = 5;

/** `HARDERROR_RESPONSE` values a server may reply with (`ResponseReturnToCaller` = 0). */
export const HardErrorResponse = {
  ResponseReturnToCaller: 0,
  ResponseNotHandled: 1,
  ResponseAbort: 2,
  ResponseCancel: 3,
  ResponseIgnore: 4,
  ResponseNo: 5,
  ResponseOk: 6,
  ResponseRetry: 7,
  ResponseYes: 8,
  ResponseTryAgain: 9,
  ResponseContinue: 10,
} as const;

/** A decoded `LPC_ERROR_EVENT` (type 9, a hard error sent to the exception port). */
export interface HardErrorMessage {
  /** The header (ClientId = the raising thread). */
  header: PortMessageHeader;
  /** The hard error's status (without HARDERROR_OVERRIDE_ERRORMODE). */
  status: number;
  /** When it was raised (FILETIME). */
  errorTime: bigint;
  /** `ValidResponseOptions` (OptionOk = 1, ...). */
  validResponseOptions: number;
  /** `Response` as received. */
  response: number;
  /** `UnicodeStringParameterMask`. */
  parameterMask: number;
  /** The first `NumberOfParameters` parameters (at most 5). */
  parameters: bigint[];
}

/**
 * Decodes an `LPC_ERROR_EVENT`: x64 layout `HARDERROR_MSG` (0x48 data bytes, TotalLength 0x70),
 * as ExpRaiseHardError.c fills it. The sender waits for a reply with `Response` set.
 */
export function decodeHardErrorMessage(buf: Uint8Array): HardErrorMessage {
  const header = decodePortMessageHeader(buf);
  requireType(header, [LpcMessageType.LPC_ERROR_EVENT]);
  const needed = HEM.offsets.Parameters - PM.size;
  if (header.dataLength < needed) {
    throw new PortMessageError(
      "short-payload",
      `DataLength ${header.dataLength} < ${needed} (HARDERROR_MSG up to Parameters)`,
    );
  }
  const dv = viewOf(buf);
  const count = dv.getUint32(HEM.offsets.NumberOfParameters, true);
  const available = Math.floor((PM.size + header.dataLength - HEM.offsets.Parameters) / 8);
  const parameters: bigint[] = [];
  for (let i = 0; i < Math.min(count, MAXIMUM_HARDERROR_PARAMETERS, available); i++) {
    parameters.push(dv.getBigUint64(HEM.offsets.Parameters + 8 * i, true));
  }
  return {
    header,
    status: dv.getUint32(HEM.offsets.Status, true),
    errorTime: dv.getBigUint64(HEM.offsets.ErrorTime, true),
    validResponseOptions: dv.getUint32(HEM.offsets.ValidResponseOptions, true),
    response: dv.getUint32(HEM.offsets.Response, true),
    parameterMask: dv.getUint32(HEM.offsets.UnicodeStringParameterMask, true),
    parameters,
  };
}

/** Writes `Response` into a received `LPC_ERROR_EVENT`, in place, so it can be sent back as the reply. */
export function setHardErrorResponse(buf: Uint8Array, response: number): void {
  decodeHardErrorMessage(buf);
  viewOf(buf).setUint32(HEM.offsets.Response, response >>> 0, true);
}

/**
 * Writes the verdict (`DBG_CONTINUE`, `DBG_EXCEPTION_NOT_HANDLED`) into a received exception
 * message's `ReturnedStatus`, in place, so the buffer can be sent back as the reply.
 */
export function setReturnedStatus(buf: Uint8Array, status: number): void {
  decodeExceptionMessage(buf);
  viewOf(buf).setUint32(DBGKM.offsets.ReturnedStatus, status >>> 0, true);
}
