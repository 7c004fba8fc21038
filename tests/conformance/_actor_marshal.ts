/**
 * How a case's call crosses from the test process to the Worker that makes it on the real
 * kernel. The arguments themselves are built by `_marshal.ts` (the one marshaller, shared with the
 * fake driver) on that Worker; this file only moves them, in two steps, each done where its fact
 * lives:
 *
 * 1. {@link toHostCall}, in the test process, which keeps every process's handle table: the
 *    handles the call names are looked up, and the call becomes JSON ({@link HostCall}: bigints as
 *    decimal strings, bytes as base64), so it can also cross a pipe to a child process.
 * 2. {@link attachMemory}, in the process that owns the buffers: each named buffer becomes that
 *    process's `SharedArrayBuffer` of that name ({@link Memory}), shared by all its Workers; the
 *    Worker sees it through `_marshal.ts`'s `ProcessMemory` ({@link workerMemory}).
 *
 * @module
 */

import type { ProcessMemory } from "./_marshal.ts";
import type { Arg } from "./types.ts";

/** An argument in JSON: as {@link Arg}, with a pointer's value and a buffer's bytes as text. */
export type HostArg =
  | Exclude<Arg, { kind: "pointer" } | { kind: "buffer" } | { kind: "memory" }>
  | { kind: "pointer"; value: string }
  | { kind: "buffer"; name: string; size?: number; bytes?: string }
  | { kind: "memory"; name: string; address: string; length: number; bytes?: string };

/** A call in JSON, with the values of the handles it names (decimal strings). */
export interface HostCall {
  name: string;
  args: HostArg[];
  handles: Record<string, string>;
}

/** A call as its Worker receives it: buffers given without `init`, their memory beside. */
export interface WireCall extends HostCall {
  memory: Record<string, SharedArrayBuffer>;
}

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

/**
 * Step 1: the call in JSON, with the values of the handles it names from `handles` (the calling
 * thread's process). Throws when a case names a handle its process never received.
 */
export function toHostCall(
  name: string,
  args: readonly Arg[],
  handles: ReadonlyMap<string, bigint>,
): HostCall {
  const used: Record<string, string> = {};
  const host = args.map((a): HostArg => {
    if (a === null || typeof a === "number") return a;
    if (a.kind === "handle" || a.kind === "handleValue") {
      const v = handles.get(a.name);
      if (v === undefined) {
        throw new Error(`${name}: no handle named ${JSON.stringify(a.name)} in this process`);
      }
      used[a.name] = v.toString();
    }
    if (a.kind === "pointer") {
      return { kind: "pointer", value: BigInt.asUintN(64, a.value).toString() };
    }
    if (a.kind === "buffer") {
      if (a.init === undefined) return { kind: "buffer", name: a.name };
      return typeof a.init === "number"
        ? { kind: "buffer", name: a.name, size: a.init }
        : { kind: "buffer", name: a.name, bytes: toBase64(a.init) };
    }
    if (a.kind === "memory") {
      const m = { kind: "memory", name: a.name, address: a.address.toString(), length: a.length };
      return a.init === undefined ? m as HostArg : { ...m, bytes: toBase64(a.init) } as HostArg;
    }
    return a;
  });
  return { name, args: host, handles: used };
}

/**
 * A process's named buffers, with `_marshal.ts`'s rule: a use with `init` (a size or bytes) makes
 * a new buffer of that name; a use without reuses the one there is (an error if none).
 */
export class Memory {
  readonly #buffers = new Map<string, SharedArrayBuffer>();

  /** The buffer `name` for this use. */
  get(name: string, init?: { size: number } | { bytes: Uint8Array }): SharedArrayBuffer {
    if (init === undefined) {
      const sab = this.#buffers.get(name);
      if (sab === undefined) throw new Error(`no buffer named ${JSON.stringify(name)}`);
      return sab;
    }
    const sab = new SharedArrayBuffer("size" in init ? init.size : init.bytes.byteLength);
    if ("bytes" in init) new Uint8Array(sab).set(init.bytes);
    this.#buffers.set(name, sab);
    return sab;
  }

  /** A copy of the buffer as it is now; throws if there is none. */
  read(name: string): Uint8Array<ArrayBuffer> {
    const sab = this.#buffers.get(name);
    if (sab === undefined) throw new Error(`no buffer named ${JSON.stringify(name)}`);
    return new Uint8Array(sab).slice();
  }
}

/** Step 2: each buffer argument made or found in `memory`, given to the Worker without `init`. */
export function attachMemory(call: HostCall, memory: Memory): WireCall {
  const shared: Record<string, SharedArrayBuffer> = {};
  const args = call.args.map((a): HostArg => {
    if (a !== null && typeof a === "object" && a.kind === "memory") {
      // The copy the call leaves of the memory goes to a shared buffer of that name.
      shared[a.name] = memory.get(a.name, { size: a.length });
      return a;
    }
    if (a === null || typeof a === "number" || a.kind !== "buffer") return a;
    const init = a.bytes !== undefined
      ? { bytes: fromBase64(a.bytes) }
      : a.size !== undefined
      ? { size: a.size }
      : undefined;
    shared[a.name] = memory.get(a.name, init);
    return { kind: "buffer", name: a.name };
  });
  return { ...call, args, memory: shared };
}

/** On the Worker: the call's arguments as {@link Arg}s again, and the process memory they use. */
export function workerMemory(call: WireCall): { args: Arg[]; memory: ProcessMemory } {
  const args = call.args.map((a): Arg => {
    if (a === null || typeof a === "number") return a;
    if (a.kind === "pointer") return { kind: "pointer", value: BigInt(a.value) };
    if (a.kind === "buffer") return { kind: "buffer", name: a.name };
    if (a.kind === "memory") {
      const m = { kind: "memory", name: a.name, address: BigInt(a.address), length: a.length };
      return a.bytes === undefined ? m as Arg : { ...m, init: fromBase64(a.bytes) } as Arg;
    }
    return a;
  });
  const memory: ProcessMemory = {
    // The process's shared memory, as `_marshal.ts` takes it (it only reads and writes the bytes).
    buffers: new Map(
      Object.entries(call.memory).map((
        [n, sab],
      ) => [n, new Uint8Array(sab) as unknown as Uint8Array<ArrayBuffer>]),
    ),
    handles: new Map(Object.entries(call.handles).map(([n, v]) => [n, BigInt(v)])),
  };
  return { args, memory };
}

// ---------------- the protocol between a process's host and its thread Workers ----------------

/** What a thread is asked to do (JSON, so it can also cross to a child process). */
export type ThreadOp =
  | ({ op: "call" } & HostCall)
  | { op: "becomeSystem" }
  | { op: "openProcess"; pid: number; access: number }
  | { op: "openThread"; tid: number; access: number }
  | { op: "raise"; code: number; parameters: string[]; ms: number }
  | { op: "hardError"; status: number };

/** A {@link ThreadOp} as its Worker receives it (buffers attached). */
export type WorkerOp =
  | ({ op: "call" } & WireCall)
  | Exclude<ThreadOp, { op: "call" }>;

/** What a `call` answers: the status and the value of each `out` cell (decimal strings). */
export interface CallReply {
  status: number;
  outs: Record<string, string>;
}

/** What `openProcess` and `openThread` answer. */
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
