/**
 * Experiment 1's wire protocol: `READ { path, offset, length }` → `{ status, bytes }`, small
 * enough for one legacy LPC message (at most 472 bytes of payload on x64), versioned, and checked
 * field by field so that a malformed or hostile request gets a refusal, never a crash.
 *
 * ```
 * request  (24 + path bytes): "DLPC" | version u8 | op u8 | flags u16 | offset u64 | length u32
 *                             | pathBytes u16 | reserved u16 | path (UTF-16LE)
 * reply    (16 + data + reason): "DLPC" | version u8 | op u8 | reserved u16 | status u32
 *                             | dataLength u16 | reasonLength u16 | data | reason (UTF-8)
 * ```
 *
 * @module
 */

import { win32 } from "node:path";
import { PORT_MAXIMUM_MESSAGE_LENGTH, PORT_MESSAGE_HEADER_SIZE } from "../ffi/port_message.ts";
import { NtError, NTSTATUS, statusName } from "../ffi/status.ts";
import { decodeUtf16, encodeUtf16 } from "../ffi/strings.ts";

/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;
/** Operation codes. */
export const Op = { READ: 1 } as const;

const MAGIC = [0x44, 0x4c, 0x50, 0x43]; // "DLPC"
const REQ = {
  magic: 0,
  version: 4,
  op: 5,
  flags: 6,
  offset: 8,
  length: 16,
  pathBytes: 20,
  reserved: 22,
  path: 24,
} as const;
const REP = {
  magic: 0,
  version: 4,
  op: 5,
  reserved: 6,
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

/** A READ request. */
export interface ReadRequest {
  /** The file, absolute or relative to the server's root. */
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

  /**
   * Builds a refusal.
   *
   * @param status the NTSTATUS for the reply
   * @param reason why
   */
  constructor(status: number, reason: string) {
    super(reason);
    this.status = status;
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
  return {
    status,
    statusName: statusName(status),
    bytes: buf.slice(REP.data, REP.data + dataLength),
    reason: new TextDecoder().decode(
      buf.subarray(REP.data + dataLength, REP.data + dataLength + reasonLength),
    ),
  };
}

/**
 * Resolves a requested path inside `root`, or throws {@link Refusal}: no `..` segment, no device,
 * UNC or NT-namespace prefix, no alternate data stream, nothing outside the root.
 */
export function resolveInsideRoot(root: string, requested: string): string {
  if (requested.length === 0 || requested.length > MAX_PATH_CHARS || requested.includes("\0")) {
    throw new Refusal(
      NTSTATUS.STATUS_OBJECT_NAME_INVALID,
      "empty, over-long or NUL-containing path",
    );
  }
  if (/^[\\/]{2}|^\\\?\?\\/.test(requested)) {
    throw new Refusal(
      NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD,
      "device, UNC and NT-namespace paths are refused",
    );
  }
  if (requested.split(/[\\/]/).some((part) => part === "..")) {
    throw new Refusal(NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD, "'..' segments are refused");
  }
  if (requested.indexOf(":", /^[A-Za-z]:/.test(requested) ? 2 : 0) !== -1) {
    throw new Refusal(
      NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD,
      "alternate data streams and stray ':' are refused",
    );
  }
  const base = win32.resolve(root);
  const full = win32.resolve(base, requested);
  const inside = full.toLowerCase().startsWith(base.toLowerCase().replace(/\\?$/, "\\"));
  if (!inside) {
    throw new Refusal(NTSTATUS.STATUS_ACCESS_DENIED, `outside the server's root ${base}`);
  }
  return full;
}

/** What the server's READ handler needs from the system. */
export interface ReadContext {
  /** The root the server was started with. */
  root: string;
  /** Reads the bytes (as whoever the calling thread is); throws `NtError` on failure. */
  read(path: string, offset: bigint, length: number): Uint8Array;
  /** Runs `fn` impersonating the client, when the server is in safe mode. */
  impersonate?: <T>(fn: () => T) => T;
}

/** The server side: a request's bytes in, the reply's bytes out. Never throws. */
export function serveRead(request: Uint8Array, ctx: ReadContext): Uint8Array<ArrayBuffer> {
  let req: ReadRequest;
  let path: string;
  try {
    req = decodeReadRequest(request);
    path = resolveInsideRoot(ctx.root, req.path);
  } catch (e) {
    if (e instanceof Refusal) return encodeReadReply(e.status, undefined, e.message);
    return encodeReadReply(NTSTATUS.STATUS_INVALID_PARAMETER, undefined, String(e));
  }
  const read = () => ctx.read(path, req.offset, req.length);
  try {
    const bytes = ctx.impersonate ? ctx.impersonate(read) : read();
    return encodeReadReply(NTSTATUS.STATUS_SUCCESS, bytes.subarray(0, MAX_READ_LENGTH));
  } catch (e) {
    if (e instanceof NtError) {
      return encodeReadReply(e.code, undefined, `${e.call}: ${e.symbol ?? e.hex}`);
    }
    return encodeReadReply(
      NTSTATUS.STATUS_UNSUCCESSFUL,
      undefined,
      e instanceof Error ? e.message : String(e),
    );
  }
}
