/**
 * Experiment 1's large reads: `READ_VIEW { path, offset, length, viewOffset }` asks the server to
 * put up to 1 MiB of the file into the client's view at `viewOffset` (a legacy message holds at
 * most 456 bytes of a reply), and the reply says where, how much, and the SHA-256 of what the
 * server read, so the client checks what it finds in its view. Over LPC the view is the
 * connection's port view; over ALPC it is a view of a section on the client's port, sent with the
 * request (the view attribute), which the server writes through its own mapping.
 *
 * ```
 * request (32 + path bytes): "DLPC" | version u8 | op u8 (2) | flags u16 | offset u64 | length u32
 *                            | pathBytes u16 | reserved u16 | viewOffset u32 | reserved u32 | path
 * reply: the READ reply with replyFlags bit 1 (in view) and 40 bytes of data:
 *                            viewOffset u32 | length u32 | SHA-256 (32 bytes)
 * ```
 *
 * The server refuses, with a reason and stage `view`, a connection without a view and a range
 * outside it, before it opens anything; the path goes through the same confinement as READ.
 *
 * @module
 */

import { decodeUtf16, encodeUtf16, NTSTATUS, viewRangeProblem } from "../../raw.ts";
import {
  encodeReadReply,
  MAGIC,
  MAX_PATH_CHARS,
  MAX_PAYLOAD,
  Op,
  PROTOCOL_VERSION,
  type ReadReply,
  Refusal,
  REQUEST_HEADER,
} from "./exp1_protocol.ts";
import { readConfined, type ReadContext, validateRelativePath } from "./exp1_confinement.ts";
import { sha256, toHex } from "./_sha256.ts";

/** The most bytes one READ_VIEW reads (1 MiB). */
export const MAX_VIEW_READ_LENGTH = 0x10_0000;

const REQ = { ...REQUEST_HEADER, viewOffset: 24, reserved2: 28, path: 32 } as const;
const DIGEST = 32;
const ANSWER = 8 + DIGEST;

/** A READ_VIEW request. */
export interface ViewReadRequest {
  /** The file, relative to the server's root. */
  path: string;
  /** Where to start reading in the file. */
  offset: bigint;
  /** How many bytes (1 .. {@link MAX_VIEW_READ_LENGTH}). */
  length: number;
  /** Where in the connection's view the server puts them. */
  viewOffset: number;
}

/** Encodes a READ_VIEW request (throws `RangeError` for a path too long for one message). */
export function encodeViewReadRequest(r: ViewReadRequest): Uint8Array<ArrayBuffer> {
  const path = encodeUtf16(r.path);
  if (path.byteLength > MAX_PAYLOAD - REQ.path) {
    throw new RangeError(`path of ${r.path.length} characters exceeds ${MAX_PATH_CHARS - 4}`);
  }
  const buf = new Uint8Array(REQ.path + path.byteLength);
  const dv = new DataView(buf.buffer);
  buf.set(MAGIC, REQ.magic);
  dv.setUint8(REQ.version, PROTOCOL_VERSION);
  dv.setUint8(REQ.op, Op.READ_VIEW);
  dv.setBigUint64(REQ.offset, r.offset, true);
  dv.setUint32(REQ.length, r.length >>> 0, true);
  dv.setUint16(REQ.pathBytes, path.byteLength, true);
  dv.setUint32(REQ.viewOffset, r.viewOffset >>> 0, true);
  buf.set(path, REQ.path);
  return buf;
}

/** Whether a request's operation byte says READ_VIEW (the handler dispatches on it). */
export function isViewRequest(buf: Uint8Array): boolean {
  return buf.byteLength > REQ.op && buf[REQ.op] === Op.READ_VIEW;
}

const invalid = (why: string) => new Refusal(NTSTATUS.STATUS_INVALID_PARAMETER, why);

/** Decodes and validates a READ_VIEW request; throws {@link Refusal} for anything malformed. */
export function decodeViewReadRequest(buf: Uint8Array): ViewReadRequest {
  if (buf.byteLength < REQ.path) {
    throw invalid(`request of ${buf.byteLength} bytes is shorter than its ${REQ.path}-byte header`);
  }
  if (MAGIC.some((b, i) => buf[REQ.magic + i] !== b)) {
    throw invalid("bad magic (not a DLPC request)");
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint8(REQ.version);
  if (version !== PROTOCOL_VERSION) {
    throw new Refusal(
      NTSTATUS.STATUS_REVISION_MISMATCH,
      `protocol version ${version} (this server speaks ${PROTOCOL_VERSION})`,
    );
  }
  if (
    dv.getUint16(REQ.flags, true) !== 0 || dv.getUint16(REQ.reserved, true) !== 0 ||
    dv.getUint32(REQ.reserved2, true) !== 0
  ) {
    throw invalid("reserved fields must be zero");
  }
  const pathBytes = dv.getUint16(REQ.pathBytes, true);
  if (pathBytes === 0 || pathBytes % 2 !== 0 || REQ.path + pathBytes !== buf.byteLength) {
    throw invalid(`path length ${pathBytes} does not match the ${buf.byteLength - REQ.path} sent`);
  }
  const length = dv.getUint32(REQ.length, true);
  if (length === 0 || length > MAX_VIEW_READ_LENGTH) {
    throw invalid(`length ${length} must be 1..${MAX_VIEW_READ_LENGTH}`);
  }
  const offset = dv.getBigUint64(REQ.offset, true);
  if (offset > (1n << 62n)) throw invalid(`offset ${offset} out of range`);
  return {
    path: decodeUtf16(buf.subarray(REQ.path, REQ.path + pathBytes)),
    offset,
    length,
    viewOffset: dv.getUint32(REQ.viewOffset, true),
  };
}

/** The connection's view as the server writes it (a `PortView`, or a fake). */
export interface ViewWindow {
  /** Its size in bytes. */
  readonly size: number;
  /** Writes `bytes` at `offset`. */
  write(offset: number, bytes: Uint8Array): void;
}

/**
 * A view an ALPC request carried (`ReceivedView`: the server's mapping of the client's view) as
 * the window READ_VIEW writes into.
 */
export function receivedWindow(
  v: { readonly size: number; write(bytes: Uint8Array, offset: number): void },
): ViewWindow {
  return { size: v.size, write: (offset, bytes) => v.write(bytes, offset) };
}

/**
 * The server side of READ_VIEW: the request in, the reply out; the bytes go to `view`. Never
 * throws. The view's range is checked before anything is opened.
 */
export function serveViewRead(
  request: Uint8Array,
  ctx: ReadContext & { view: ViewWindow | null },
): Uint8Array<ArrayBuffer> {
  let req: ViewReadRequest;
  let relative: string;
  try {
    req = decodeViewReadRequest(request);
    relative = validateRelativePath(req.path);
    if (ctx.view === null) {
      throw new Refusal(
        NTSTATUS.STATUS_INVALID_PARAMETER,
        "no view: neither a port view of the connection (LPC) nor a view sent with the request " +
          "(ALPC), which a read of more than one reply holds needs",
        "view",
      );
    }
    const problem = viewRangeProblem(req.viewOffset, req.length, ctx.view.size);
    if (problem) {
      throw new Refusal(
        NTSTATUS.STATUS_INVALID_VIEW_SIZE,
        `view range refused: ${problem}`,
        "view",
      );
    }
  } catch (e) {
    if (e instanceof Refusal) return encodeReadReply(e.status, undefined, e.message, e.stage);
    return encodeReadReply(NTSTATUS.STATUS_INVALID_PARAMETER, undefined, String(e));
  }
  const r = readConfined(relative, req.offset, req.length, ctx);
  if (!r.ok) return encodeReadReply(r.status, undefined, r.reason, r.stage, r.impersonated);
  const bytes = r.bytes.subarray(0, req.length);
  try {
    ctx.view.write(req.viewOffset, bytes);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return encodeReadReply(
      NTSTATUS.STATUS_INVALID_VIEW_SIZE,
      undefined,
      why,
      "view",
      r.impersonated,
    );
  }
  const answer = new Uint8Array(ANSWER);
  const dv = new DataView(answer.buffer);
  dv.setUint32(0, req.viewOffset, true);
  dv.setUint32(4, bytes.byteLength, true);
  answer.set(sha256(bytes), 8);
  return encodeReadReply(NTSTATUS.STATUS_SUCCESS, answer, "", "served", r.impersonated, true);
}

/** Where the server put the bytes, and their SHA-256 (hex), from a successful READ_VIEW reply. */
export function viewAnswer(
  reply: ReadReply,
): { viewOffset: number; length: number; sha256: string } {
  if (!reply.inView || reply.bytes.byteLength !== ANSWER) {
    throw new RangeError("not a READ_VIEW answer (no in-view flag or not 40 bytes)");
  }
  const dv = new DataView(reply.bytes.buffer, reply.bytes.byteOffset, ANSWER);
  return {
    viewOffset: dv.getUint32(0, true),
    length: dv.getUint32(4, true),
    sha256: toHex(reply.bytes.subarray(8)),
  };
}

/** The client's check: the SHA-256 of what its view holds where the reply says, against the reply's. */
export function checkView(
  reply: ReadReply,
  read: (offset: number, length: number) => Uint8Array,
): { viewOffset: number; length: number; sha256: string; matches: boolean; bytes: Uint8Array } {
  const a = viewAnswer(reply);
  const bytes = read(a.viewOffset, a.length);
  return { ...a, matches: toHex(sha256(bytes)) === a.sha256, bytes };
}
