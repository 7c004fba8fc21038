/**
 * Experiment 1's wire protocol: `READ { path, offset, length }` → `{ status, bytes }`, small
 * enough for one legacy LPC message (at most 472 bytes of payload on x64), versioned, and checked
 * field by field so that a malformed or hostile request gets a refusal, never a crash.
 *
 * ```
 * request  (24 + path bytes): "DLPC" | version u8 | op u8 | flags u16 | offset u64 | length u32
 *                             | pathBytes u16 | reserved u16 | path (UTF-16LE, relative to the root)
 * reply    (16 + data + reason): "DLPC" | version u8 | op u8 | stage u8 | replyFlags u8
 *                             | status u32 | dataLength u16 | reasonLength u16 | data | reason (UTF-8)
 * ```
 *
 * `stage` says which of the server's checks answered ({@link Stage}); `replyFlags` bit 0 says the
 * open ran while the server impersonated the client. (Both bytes were a zero `reserved` field.)
 *
 * The server confines itself to its root in three steps (nt-semantics.md E13): the path's text
 * ({@link validateRelativePath}: relative, no `..`, no `:`), an open relative to a handle on the
 * root with `OBJ_DONT_REPARSE` (no junction or symbolic link is followed), and the final path of
 * what it opened ({@link isUnderRoot}).
 *
 * @module
 */

import {
  decodeUtf16,
  encodeUtf16,
  NTSTATUS,
  PORT_MAXIMUM_MESSAGE_LENGTH,
  PORT_MESSAGE_HEADER_SIZE,
  statusName,
} from "../../raw.ts";

/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;
/** Operation codes: READ answers in the reply, READ_VIEW in the connection's view (exp1_view.ts). */
export const Op = { READ: 1, READ_VIEW: 2 } as const;

/** Every message of the protocol starts with these bytes: "DLPC". */
export const MAGIC: readonly number[] = [0x44, 0x4c, 0x50, 0x43];
/** The request header both operations share (READ_VIEW adds its fields after it). */
export const REQUEST_HEADER = {
  magic: 0,
  version: 4,
  op: 5,
  flags: 6,
  offset: 8,
  length: 16,
  pathBytes: 20,
  reserved: 22,
} as const;
const REQ = { ...REQUEST_HEADER, path: 24 } as const;
const REP = {
  magic: 0,
  version: 4,
  op: 5,
  stage: 6,
  flags: 7,
  status: 8,
  dataLength: 12,
  reasonLength: 14,
  data: 16,
} as const;

/** The most payload one legacy message carries. */
export const MAX_PAYLOAD: number = PORT_MAXIMUM_MESSAGE_LENGTH - PORT_MESSAGE_HEADER_SIZE;
/** The longest path a request can carry, in UTF-16 code units. */
export const MAX_PATH_CHARS: number = (MAX_PAYLOAD - REQ.path) / 2;
/** The most bytes one READ can return (the reply's fixed part and no reason). */
export const MAX_READ_LENGTH: number = MAX_PAYLOAD - REP.data;

/** Which step of the server answered a request (the reply's `stage` byte). */
export const Stage = {
  /** The bytes were read. */
  served: 0,
  /** The request's format: magic, version, operation, lengths. */
  request: 1,
  /** The path's text: absolute, `..`, `:`, device or UNC syntax ({@link validateRelativePath}). */
  path: 2,
  /** The open relative to the root with `OBJ_DONT_REPARSE` (the kernel's answer). */
  open: 3,
  /** The final path of the opened file lies outside the root ({@link isUnderRoot}). */
  finalPath: 4,
  /** Reading the opened file. */
  read: 5,
  /** Impersonating the client, or reverting (`NtImpersonateClientOfPort` and its revert). */
  impersonate: 6,
  /** The connection's view: none, or the range asked for lies outside it (exp1_view.ts). */
  view: 7,
} as const;

/** A {@link Stage} name. */
export type StageName = keyof typeof Stage;

/** `replyFlags` bit 0: the open ran while the server impersonated the client. */
export const REPLY_IMPERSONATED = 0x1;
/** `replyFlags` bit 1: the bytes are in the connection's view; the reply describes them. */
export const REPLY_IN_VIEW = 0x2;

/** A READ request. */
export interface ReadRequest {
  /** The file, relative to the server's root. */
  path: string;
  /** Where to start reading. */
  offset: bigint;
  /** How many bytes (1 .. {@link MAX_READ_LENGTH}). */
  length: number;
}

/** A decoded reply. */
export interface ReadReply {
  /** The NTSTATUS of the server's work (unsigned). */
  status: number;
  /** Its name, when known. */
  statusName: string | undefined;
  /** The bytes read (empty on failure). */
  bytes: Uint8Array;
  /** Why the server refused, when it did. */
  reason: string;
  /** Which step answered (`undefined` for an unknown stage byte). */
  stage: StageName | undefined;
  /** The open ran while the server impersonated the client. */
  impersonated: boolean;
  /** The bytes went to the connection's view ({@link REPLY_IN_VIEW}); `bytes` describes them. */
  inView: boolean;
}

/** Encodes a READ request (throws `RangeError` when it cannot fit one message). */
export function encodeReadRequest(
  r: ReadRequest,
  version = PROTOCOL_VERSION,
  op: number = Op.READ,
): Uint8Array<ArrayBuffer> {
  const path = encodeUtf16(r.path);
  if (path.byteLength > MAX_PAYLOAD - REQ.path) {
    throw new RangeError(`path of ${r.path.length} characters exceeds ${MAX_PATH_CHARS}`);
  }
  const buf = new Uint8Array(REQ.path + path.byteLength);
  const dv = new DataView(buf.buffer);
  buf.set(MAGIC, REQ.magic);
  dv.setUint8(REQ.version, version);
  dv.setUint8(REQ.op, op);
  dv.setBigUint64(REQ.offset, r.offset, true);
  dv.setUint32(REQ.length, r.length >>> 0, true);
  dv.setUint16(REQ.pathBytes, path.byteLength, true);
  buf.set(path, REQ.path);
  return buf;
}

/** Why a request was refused: the status to reply with and a reason. */
export class Refusal extends Error {
  /** Always `"Refusal"`. */
  override name = "Refusal";
  /** The NTSTATUS to reply with. */
  readonly status: number;
  /** Which check refused. */
  readonly stage: StageName;

  /**
   * Builds a refusal.
   *
   * @param status the NTSTATUS for the reply
   * @param reason why
   * @param stage which check refused (default: the request's format)
   */
  constructor(status: number, reason: string, stage: StageName = "request") {
    super(reason);
    this.status = status;
    this.stage = stage;
  }
}

/** Decodes and validates a request; throws {@link Refusal} for anything malformed or unknown. */
export function decodeReadRequest(buf: Uint8Array): ReadRequest {
  if (buf.byteLength < REQ.path) {
    throw new Refusal(
      NTSTATUS.STATUS_INVALID_PARAMETER,
      `request of ${buf.byteLength} bytes is shorter than its ${REQ.path}-byte header`,
    );
  }
  if (MAGIC.some((b, i) => buf[REQ.magic + i] !== b)) {
    throw new Refusal(NTSTATUS.STATUS_INVALID_PARAMETER, "bad magic (not a DLPC request)");
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint8(REQ.version);
  if (version !== PROTOCOL_VERSION) {
    throw new Refusal(
      NTSTATUS.STATUS_REVISION_MISMATCH,
      `protocol version ${version} (this server speaks ${PROTOCOL_VERSION})`,
    );
  }
  const op = dv.getUint8(REQ.op);
  if (op !== Op.READ) throw new Refusal(NTSTATUS.STATUS_NOT_SUPPORTED, `unknown operation ${op}`);
  if (dv.getUint16(REQ.flags, true) !== 0 || dv.getUint16(REQ.reserved, true) !== 0) {
    throw new Refusal(NTSTATUS.STATUS_INVALID_PARAMETER, "reserved fields must be zero");
  }
  const pathBytes = dv.getUint16(REQ.pathBytes, true);
  if (pathBytes === 0 || pathBytes % 2 !== 0) {
    throw new Refusal(NTSTATUS.STATUS_INVALID_PARAMETER, `path length ${pathBytes} bytes`);
  }
  if (REQ.path + pathBytes !== buf.byteLength) {
    throw new Refusal(
      NTSTATUS.STATUS_INVALID_PARAMETER,
      `path length ${pathBytes} does not match the ${
        buf.byteLength - REQ.path
      } bytes sent (truncated request?)`,
    );
  }
  const length = dv.getUint32(REQ.length, true);
  if (length === 0 || length > MAX_READ_LENGTH) {
    throw new Refusal(
      NTSTATUS.STATUS_INVALID_PARAMETER,
      `length ${length} must be 1..${MAX_READ_LENGTH} (what fits in one reply)`,
    );
  }
  const offset = dv.getBigUint64(REQ.offset, true);
  if (offset > (1n << 62n)) {
    throw new Refusal(NTSTATUS.STATUS_INVALID_PARAMETER, `offset ${offset} out of range`);
  }
  return { path: decodeUtf16(buf.subarray(REQ.path, REQ.path + pathBytes)), offset, length };
}

/** Encodes a reply; the reason is cut to fit. */
export function encodeReadReply(
  status: number,
  bytes: Uint8Array = new Uint8Array(0),
  reason = "",
  stage: StageName = status === 0 ? "served" : "request",
  impersonated = false,
  inView = false,
): Uint8Array<ArrayBuffer> {
  if (bytes.byteLength > MAX_READ_LENGTH) {
    throw new RangeError(`${bytes.byteLength} bytes exceed ${MAX_READ_LENGTH}`);
  }
  let why = new TextEncoder().encode(reason);
  const room = MAX_PAYLOAD - REP.data - bytes.byteLength;
  if (why.byteLength > room) why = why.subarray(0, room);
  const buf = new Uint8Array(REP.data + bytes.byteLength + why.byteLength);
  const dv = new DataView(buf.buffer);
  buf.set(MAGIC, REP.magic);
  dv.setUint8(REP.version, PROTOCOL_VERSION);
  dv.setUint8(REP.op, Op.READ);
  dv.setUint8(REP.stage, Stage[stage]);
  dv.setUint8(REP.flags, (impersonated ? REPLY_IMPERSONATED : 0) | (inView ? REPLY_IN_VIEW : 0));
  dv.setUint32(REP.status, status >>> 0, true);
  dv.setUint16(REP.dataLength, bytes.byteLength, true);
  dv.setUint16(REP.reasonLength, why.byteLength, true);
  buf.set(bytes, REP.data);
  buf.set(why, REP.data + bytes.byteLength);
  return buf;
}

/** Decodes a reply (throws `RangeError` when it is malformed). */
export function decodeReadReply(buf: Uint8Array): ReadReply {
  if (buf.byteLength < REP.data || MAGIC.some((b, i) => buf[REP.magic + i] !== b)) {
    throw new RangeError(`malformed reply (${buf.byteLength} bytes)`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dataLength = dv.getUint16(REP.dataLength, true);
  const reasonLength = dv.getUint16(REP.reasonLength, true);
  if (REP.data + dataLength + reasonLength > buf.byteLength) {
    throw new RangeError("reply lengths overrun the message");
  }
  const status = dv.getUint32(REP.status, true);
  const stage = dv.getUint8(REP.stage);
  return {
    status,
    statusName: statusName(status),
    stage: (Object.keys(Stage) as StageName[]).find((k) => Stage[k] === stage),
    impersonated: (dv.getUint8(REP.flags) & REPLY_IMPERSONATED) !== 0,
    inView: (dv.getUint8(REP.flags) & REPLY_IN_VIEW) !== 0,
    bytes: buf.slice(REP.data, REP.data + dataLength),
    reason: new TextDecoder().decode(
      buf.subarray(REP.data + dataLength, REP.data + dataLength + reasonLength),
    ),
  };
}

export {
  comparablePath,
  isUnderRoot,
  type OpenedFile,
  type ReadContext,
  serveRead,
  validateRelativePath,
} from "./exp1_confinement.ts";
