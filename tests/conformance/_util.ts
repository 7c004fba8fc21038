/**
 * Small helpers the cases share: status names, message headers and payloads, 32- and 64-bit cells.
 *
 * @module
 */

import { LAYOUTS } from "../../ffi/layouts.ts";
import { formatHex, statusName } from "../../ffi/status.ts";
import type { Json, Pending } from "./types.ts";

const PM = LAYOUTS.PORT_MESSAGE;
const CID = LAYOUTS.CLIENT_ID;

/** The 40-byte x64 PORT_MESSAGE header size. */
export const HEADER = PM.size;

/** A status as it is reported: its symbolic name, or its hex when unnamed. */
export function st(status: number | "blocked" | "killed"): string {
  if (typeof status === "string") return status;
  return statusName(status) ?? formatHex(status);
}

/** Waits for a pending call and names what it came to. */
export async function outcome(p: Pending, ms: number): Promise<string> {
  return st(await p.result(ms));
}

/** The header fields of a received message, raw (no validation), for observations. */
export interface RawHeader {
  dataLength: number;
  totalLength: number;
  type: number;
  dataInfoOffset: number;
  pid: number;
  tid: number;
  messageId: number;
  callbackId: number;
  clientViewSize: bigint;
}

/**
 * Reads the header of a message buffer without judging it (at least 40 bytes). The fake kernel
 * reads callers' buffers with it too: `decodePortMessageHeader` (ffi/port_message.ts) validates
 * and throws, and both must see malformed headers as they are.
 */
export function rawHeader(buf: Uint8Array): RawHeader {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    dataLength: dv.getUint16(PM.offsets.DataLength, true),
    totalLength: dv.getUint16(PM.offsets.TotalLength, true),
    type: dv.getUint16(PM.offsets.Type, true),
    dataInfoOffset: dv.getUint16(PM.offsets.DataInfoOffset, true),
    pid: Number(dv.getBigUint64(PM.offsets.ClientId + CID.offsets.UniqueProcess, true)),
    tid: Number(dv.getBigUint64(PM.offsets.ClientId + CID.offsets.UniqueThread, true)),
    messageId: dv.getUint32(PM.offsets.MessageId, true),
    callbackId: dv.getUint32(PM.offsets.CallbackId, true),
    clientViewSize: dv.getBigUint64(PM.offsets.ClientViewSize, true),
  };
}

/**
 * A message to send: a 40-byte header with DataLength/TotalLength/Type (and optionally MessageId,
 * CallbackId, ClientId) followed by `data`, in a buffer of `size` bytes (default: just enough).
 * Lengths are written as given (`encodePortMessage` in ffi/port_message.ts computes and checks
 * them), so a case can send a malformed header; the fake kernel builds its own messages with it.
 */
export function message(init: {
  data?: Uint8Array;
  type?: number;
  totalLength?: number;
  dataLength?: number;
  messageId?: number;
  callbackId?: number;
  pid?: number;
  tid?: number;
  size?: number;
}): Uint8Array {
  const data = init.data ?? new Uint8Array(0);
  const size = init.size ?? HEADER + data.byteLength;
  const buf = new Uint8Array(Math.max(size, HEADER + data.byteLength));
  const dv = new DataView(buf.buffer);
  dv.setUint16(PM.offsets.DataLength, init.dataLength ?? data.byteLength, true);
  dv.setUint16(PM.offsets.TotalLength, init.totalLength ?? HEADER + data.byteLength, true);
  dv.setUint16(PM.offsets.Type, init.type ?? 0, true);
  dv.setBigUint64(PM.offsets.ClientId + CID.offsets.UniqueProcess, BigInt(init.pid ?? 0), true);
  dv.setBigUint64(PM.offsets.ClientId + CID.offsets.UniqueThread, BigInt(init.tid ?? 0), true);
  dv.setUint32(PM.offsets.MessageId, init.messageId ?? 0, true);
  dv.setUint32(PM.offsets.CallbackId, init.callbackId ?? 0, true);
  buf.set(data, HEADER);
  return buf;
}

/**
 * A reply built from a received message: its header (MessageId, CallbackId, ClientId kept), the
 * new payload and lengths. Mirrors what a server does with the buffer it received.
 */
export function replyTo(received: Uint8Array, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const buf = new Uint8Array(HEADER + data.byteLength);
  buf.set(received.subarray(0, HEADER));
  const dv = new DataView(buf.buffer);
  dv.setUint16(PM.offsets.DataLength, data.byteLength, true);
  dv.setUint16(PM.offsets.TotalLength, HEADER + data.byteLength, true);
  buf.set(data, HEADER);
  return buf;
}

/** A little-endian ULONG cell (a length in or out). */
export function u32(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return b;
}

/** A little-endian 64-bit cell (e.g. a handle value or a pointer for NtSetInformationProcess). */
export function u64(...values: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * values.length);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setBigUint64(8 * i, v, true));
  return b;
}

/** Reads a little-endian integer of `bytes` (4 or 8) at `offset`. */
export function readUint(buf: Uint8Array, offset: number, bytes: 4 | 8): number | bigint {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return bytes === 4 ? dv.getUint32(offset, true) : dv.getBigUint64(offset, true);
}

/** Bytes `seed`, `seed + 1`, ... (mod 256) of length `n` (a recognisable payload). */
export function pattern(n: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i + seed) & 0xff);
}

/** Text to bytes. */
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A JSON-safe hex of a bigint or number. */
export const hex = (v: bigint | number): Json => `0x${v.toString(16)}`;
