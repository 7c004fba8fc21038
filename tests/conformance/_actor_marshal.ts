/**
 * How a conformance {@link Arg} becomes a real argument of a real ntdll call, in three steps, each
 * done where its fact lives:
 *
 * 1. {@link resolveHandles}, in the test process (which keeps every process's handle table):
 *    handle names become values; the result ({@link HostArg}) is JSON, so it can cross to a child.
 * 2. {@link attachMemory}, in the process that owns the buffers: a buffer name becomes that
 *    process's `SharedArrayBuffer` of that name (created on first use), shared by all its Workers.
 * 3. {@link buildCall}, on the Worker that makes the call: structs are built next to the call
 *    (`OBJECT_ATTRIBUTES`, `UNICODE_STRING`, `SECURITY_QUALITY_OF_SERVICE` with the toolkit's
 *    builders in `ffi/objects.ts`; a relative `LARGE_INTEGER` timeout), and every value is given
 *    the FFI type the symbol table declares for its parameter.
 *
 * @module
 */

import { pointerFrom } from "../../ffi/handle.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { ObjectAttributes, securityQos, UnicodeString } from "../../ffi/objects.ts";
import type { Arg } from "./types.ts";

const QOS = LAYOUTS.SECURITY_QUALITY_OF_SERVICE;

/** An argument once its handle names are resolved (JSON: bigints are decimal strings). */
export type HostArg =
  | number
  | null
  | { kind: "out"; name: string } // an 8-byte cell; its value comes back as `name`
  | { kind: "value"; value: string } // a handle or pointer passed by value
  | { kind: "cell"; value: string } // a pointer to 8 bytes holding `value`
  | { kind: "buffer"; name: string; size?: number; bytes?: string } // bytes: base64
  | { kind: "objectAttributes"; objectName: string | null; attributes?: number }
  | { kind: "unicodeString"; value: string }
  | { kind: "qos"; level: number; dynamic: boolean; length?: number }
  | { kind: "timeout"; ms: number };

/** An argument as the Worker receives it: buffers are the process's shared memory. */
export type WireArg =
  | Exclude<HostArg, { kind: "buffer" }>
  | { kind: "memory"; name: string; memory: SharedArrayBuffer };

/** Base64 of bytes (for buffers crossing a pipe). */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.byteLength; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Bytes of base64. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** `NtCurrentThread()` as a value. */
const CURRENT_THREAD = (-2n & 0xffff_ffff_ffff_ffffn).toString();

/**
 * Step 1: replaces handle names by their values in `handles` (the calling thread's process).
 * Throws when a case names a handle its process never received.
 */
export function resolveHandles(
  args: readonly Arg[],
  handles: ReadonlyMap<string, bigint>,
): HostArg[] {
  const value = (name: string): string => {
    const v = handles.get(name);
    if (v === undefined) {
      throw new Error(
        `no handle named ${JSON.stringify(name)} in this process (no \`out\` made it)`,
      );
    }
    return v.toString();
  };
  return args.map((a): HostArg => {
    if (a === null || typeof a === "number") return a;
    switch (a.kind) {
      case "out":
        return { kind: "out", name: a.name };
      case "handle":
        return { kind: "value", value: value(a.name) };
      case "handleValue":
        return { kind: "cell", value: value(a.name) };
      case "pointer":
        return { kind: "value", value: BigInt.asUintN(64, a.value).toString() };
      case "currentThread":
        return { kind: "value", value: CURRENT_THREAD };
      case "buffer":
        if (a.init === undefined) return { kind: "buffer", name: a.name };
        return typeof a.init === "number"
          ? { kind: "buffer", name: a.name, size: a.init }
          : { kind: "buffer", name: a.name, bytes: toBase64(a.init) };
      case "objectAttributes":
        return a.attributes === undefined
          ? { kind: "objectAttributes", objectName: a.objectName }
          : { kind: "objectAttributes", objectName: a.objectName, attributes: a.attributes };
      case "unicodeString":
        return { kind: "unicodeString", value: a.value };
      case "qos":
        return a.length === undefined
          ? { kind: "qos", level: a.level, dynamic: a.dynamic }
          : { kind: "qos", level: a.level, dynamic: a.dynamic, length: a.length };
      case "timeout":
        return { kind: "timeout", ms: a.ms };
    }
  });
}

/**
 * A process's named buffers. A buffer is created on first use (zeroed to `size`, or a copy of
 * `bytes`); a later use with `bytes` writes them over it (a new buffer when the length differs);
 * a later use with a size or nothing reuses it as it is.
 */
export class Memory {
  readonly #buffers = new Map<string, SharedArrayBuffer>();

  /** The buffer `name` for this use. */
  get(name: string, init?: { size?: number; bytes?: Uint8Array }): SharedArrayBuffer {
    let sab = this.#buffers.get(name);
    const bytes = init?.bytes;
    if (bytes !== undefined) {
      if (sab === undefined || sab.byteLength !== bytes.byteLength) {
        sab = new SharedArrayBuffer(bytes.byteLength);
        this.#buffers.set(name, sab);
      }
      new Uint8Array(sab).set(bytes);
    } else if (sab === undefined) {
      if (init?.size === undefined) {
        throw new Error(`no buffer named ${JSON.stringify(name)} yet: give its size or bytes`);
      }
      sab = new SharedArrayBuffer(init.size);
      this.#buffers.set(name, sab);
    }
    return sab;
  }

  /** A copy of the buffer as it is now; throws if there is none. */
  read(name: string): Uint8Array<ArrayBuffer> {
    const sab = this.#buffers.get(name);
    if (sab === undefined) {
      throw new Error(`no buffer named ${JSON.stringify(name)} in this process`);
    }
    return new Uint8Array(sab).slice();
  }
}

/** Step 2: gives each buffer argument its shared memory in `memory`. */
export function attachMemory(args: readonly HostArg[], memory: Memory): WireArg[] {
  return args.map((a): WireArg => {
    if (a === null || typeof a === "number" || a.kind !== "buffer") return a;
    const init = a.bytes !== undefined
      ? { bytes: fromBase64(a.bytes) }
      : a.size !== undefined
      ? { size: a.size }
      : undefined;
    return { kind: "memory", name: a.name, memory: memory.get(a.name, init) };
  });
}

/** A relative timeout: a negative count of 100 ns units (`-ms * 10_000`), as a LARGE_INTEGER. */
export function relativeTimeout(ms: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, -BigInt(Math.round(ms)) * 10_000n, true);
  return b;
}

/**
 * A `SECURITY_QUALITY_OF_SERVICE` with a raw level (a case may pass an invalid one) and, when
 * given, a `Length` other than 12.
 */
export function rawQos(level: number, dynamic: boolean, length?: number): Uint8Array<ArrayBuffer> {
  const b = securityQos("Anonymous", dynamic);
  const dv = new DataView(b.buffer);
  dv.setUint32(QOS.offsets.ImpersonationLevel, level >>> 0, true);
  if (length !== undefined) dv.setUint32(QOS.offsets.Length, length >>> 0, true);
  return b;
}

/** What {@link buildCall} made: the FFI arguments, the out-cells, what must stay alive. */
export interface BuiltCall {
  /** The arguments, typed as the symbol table declares each parameter. */
  values: unknown[];
  /** The `out` cells, read after the call. */
  outs: { name: string; cell: BigUint64Array<ArrayBuffer> }[];
  /** Everything the arguments point to (kept referenced until the call returned). */
  pins: unknown[];
}

/** Step 3: builds the real arguments of a call whose parameters are `parameters`. */
export function buildCall(
  name: string,
  args: readonly WireArg[],
  parameters: readonly Deno.NativeType[],
): BuiltCall {
  if (args.length !== parameters.length) {
    throw new TypeError(
      `${name} takes ${parameters.length} arguments, the case gave ${args.length}`,
    );
  }
  const outs: BuiltCall["outs"] = [];
  const pins: unknown[] = [];
  const values = args.map((a, i) => {
    const type = parameters[i]!;
    const where = `${name} argument ${i + 1} (${type})`;
    // What the argument is, before it is given its parameter's type.
    let raw: number | bigint | Uint8Array | null;
    if (a === null || typeof a === "number") raw = a;
    else {
      switch (a.kind) {
        case "out": {
          const cell = new BigUint64Array(1);
          outs.push({ name: a.name, cell });
          raw = new Uint8Array(cell.buffer);
          break;
        }
        case "value":
          raw = BigInt(a.value);
          break;
        case "cell":
          raw = new Uint8Array(new BigUint64Array([BigInt(a.value)]).buffer);
          break;
        case "memory":
          raw = new Uint8Array(a.memory);
          break;
        case "objectAttributes": {
          const oa = new ObjectAttributes(
            a.objectName,
            a.attributes === undefined ? {} : { attributes: a.attributes },
          );
          pins.push(oa);
          raw = oa.struct;
          break;
        }
        case "unicodeString": {
          const us = new UnicodeString(a.value);
          pins.push(us);
          raw = us.struct;
          break;
        }
        case "qos":
          raw = rawQos(a.level, a.dynamic, a.length);
          break;
        case "timeout":
          raw = relativeTimeout(a.ms);
          break;
      }
    }
    if (raw instanceof Uint8Array) pins.push(raw);
    return typed(raw, type, where);
  });
  return { values, outs, pins };
}

function typed(
  raw: number | bigint | Uint8Array | null,
  type: Deno.NativeType,
  where: string,
): unknown {
  switch (type) {
    case "pointer":
      if (raw === null) return null;
      if (raw instanceof Uint8Array) return Deno.UnsafePointer.of(raw as Uint8Array<ArrayBuffer>);
      return pointerFrom(raw);
    case "buffer":
      if (raw === null || raw === 0n || raw === 0) return null;
      if (raw instanceof Uint8Array) return raw;
      throw new TypeError(`${where}: a pointer parameter needs a buffer, not the value ${raw}`);
    case "u8":
    case "u32":
    case "i32":
      if (typeof raw === "number") {
        return type === "i32" ? raw | 0 : type === "u8" ? raw & 0xff : raw >>> 0;
      }
      if (typeof raw === "bigint") return Number(BigInt.asUintN(32, raw));
      throw new TypeError(`${where}: an integer parameter needs a number`);
    case "u64":
    case "usize":
      if (typeof raw === "number") return BigInt(raw);
      if (typeof raw === "bigint") return raw;
      throw new TypeError(`${where}: an integer parameter needs a number`);
    default:
      throw new TypeError(`${where}: parameter type not supported by the conformance driver`);
  }
}

// ---------------- the protocol between a process's host and its thread Workers ----------------

/** What a thread is asked to do (JSON, so it can also cross to a child process). */
export type ThreadOp =
  | { op: "call"; name: string; args: HostArg[] }
  | { op: "becomeSystem" }
  | { op: "openProcess"; pid: number; access: number }
  | { op: "raise"; code: number; parameters: string[]; ms: number }
  | { op: "hardError"; status: number };

/** A {@link ThreadOp} as its Worker receives it (buffers attached). */
export type WorkerOp =
  | { op: "call"; name: string; args: WireArg[] }
  | Exclude<ThreadOp, { op: "call" }>;

/** What a `call` answers: the status and the value of each `out` cell (decimal strings). */
export interface CallReply {
  status: number;
  outs: Record<string, string>;
}

/** What `openProcess` answers. */
export interface OpenReply {
  status: number;
  handle: string;
}

/** What `raise` answers: the raising native thread's id and exit code (null: still blocked). */
export interface RaiseReply {
  tid: number;
  exitCode: number | null;
}

/** What `hardError` answers. */
export interface HardErrorReply {
  status: number;
  response: number;
}

/** What a Worker says when it has started. */
export interface ThreadHello {
  tid: number;
  pid: number;
  /** FILETIME, decimal. */
  createTime: string;
}
