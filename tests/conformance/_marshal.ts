/**
 * Turns a case's {@link Arg} descriptors into the real arguments of an ntdll call, the same way
 * for the fake kernel and for the real one: buffers are named and live in the calling thread's
 * process, handle cells are remembered by name after the call.
 *
 * @module
 */

import { LAYOUTS } from "../../ffi/layouts.ts";
import { ntdllSymbols } from "../../ffi/ntdll.ts";
import { ObjectAttributes, UnicodeString } from "../../ffi/nt/object_attributes.ts";
import type { Arg, CallName } from "./types.ts";

const QOS = LAYOUTS.SECURITY_QUALITY_OF_SERVICE;

/** What a process keeps between calls: its named buffers and handle values. */
export interface ProcessMemory {
  buffers: Map<string, Uint8Array<ArrayBuffer>>;
  handles: Map<string, bigint>;
}

/** A fresh, empty process memory. */
export function processMemory(): ProcessMemory {
  return { buffers: new Map(), handles: new Map() };
}

/** The native arguments of one call, the buffers they pin, and what to remember afterwards. */
export interface Marshalled {
  args: unknown[];
  /** Reads every `out` cell into the process's handle map (call after the call returned). */
  collect(): void;
}

/** The FFI parameter kinds of an ntdll function (from the one symbol table). */
export function parameterKinds(name: CallName): readonly string[] {
  return ntdllSymbols[name].parameters;
}

/** A SECURITY_QUALITY_OF_SERVICE with these fields (Length defaults to 12). */
export function qosBytes(
  level: number,
  dynamic: boolean,
  length: number = QOS.size as number,
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(QOS.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(QOS.offsets.Length, length ?? QOS.size, true);
  dv.setUint32(QOS.offsets.ImpersonationLevel, level, true);
  dv.setUint8(QOS.offsets.ContextTrackingMode, dynamic ? 1 : 0);
  return b;
}

/** A relative timeout in 100 ns units, as a LARGE_INTEGER. */
export function timeoutBytes(ms: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(-Math.round(ms * 10_000)), true);
  return b;
}

function u64(value: bigint): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  return b;
}

/**
 * Builds the arguments of `name` from `args` in `memory`. Buffers named by `buffer` are created
 * (from a size or bytes) or reused; `out` cells are fresh 8-byte cells.
 */
export function marshal(name: CallName, args: readonly Arg[], memory: ProcessMemory): Marshalled {
  const kinds = parameterKinds(name);
  if (args.length !== kinds.length) {
    throw new TypeError(`${name} takes ${kinds.length} arguments, the case gave ${args.length}`);
  }
  const pins: unknown[] = [];
  const outs: [string, Uint8Array][] = [];
  const memories: [string, Uint8Array][] = [];
  const handle = (h: string): bigint => {
    const v = memory.handles.get(h);
    if (v === undefined) {
      throw new Error(`${name}: no handle named ${JSON.stringify(h)} in this process`);
    }
    return v;
  };
  const out = args.map((a, i): unknown => {
    const kind = kinds[i]!;
    let value: Uint8Array | bigint | number | null;
    if (a === null) value = null;
    else if (typeof a === "number") value = a;
    else {
      switch (a.kind) {
        case "out": {
          const cell = new Uint8Array(8);
          outs.push([a.name, cell]);
          value = cell;
          break;
        }
        case "handle":
          value = handle(a.name);
          break;
        case "handleValue":
          value = u64(handle(a.name));
          break;
        case "buffer": {
          let b = memory.buffers.get(a.name);
          if (a.init !== undefined) {
            b = typeof a.init === "number" ? new Uint8Array(a.init) : new Uint8Array(a.init);
            memory.buffers.set(a.name, b);
          }
          if (!b) throw new Error(`${name}: no buffer named ${JSON.stringify(a.name)}`);
          value = b;
          break;
        }
        case "objectAttributes": {
          const oa = new ObjectAttributes(
            a.objectName,
            a.attributes === undefined ? {} : { attributes: a.attributes },
          );
          pins.push(oa);
          value = oa.struct;
          break;
        }
        case "unicodeString": {
          const us = new UnicodeString(a.value);
          pins.push(us);
          value = us.struct;
          break;
        }
        case "qos":
          value = qosBytes(a.level, a.dynamic, a.length);
          break;
        case "timeout":
          value = timeoutBytes(a.ms);
          break;
        case "pointer":
          value = a.value;
          break;
        case "currentThread":
          value = 0xfffffffffffffffen;
          break;
        case "memory": {
          const p = Deno.UnsafePointer.create(a.address);
          if (p === null || a.length <= 0) {
            throw new Error(`${name}: memory ${JSON.stringify(a.name)} at 0 or of no length`);
          }
          const live = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, a.length));
          if (a.init !== undefined) live.set(a.init.subarray(0, a.length));
          memories.push([a.name, live]);
          value = live;
          break;
        }
      }
    }
    pins.push(value);
    return convert(value, kind, name, i);
  });
  return {
    args: out,
    collect() {
      void pins;
      for (const [h, cell] of outs) {
        memory.handles.set(h, new DataView(cell.buffer, cell.byteOffset).getBigUint64(0, true));
      }
      // A memory argument's bytes as they are after the call, into the buffer of its name (the
      // process's shared buffer when the call ran on a Worker: attachMemory made it).
      for (const [n, live] of memories) {
        const dst = memory.buffers.get(n);
        if (dst && dst.byteLength === live.byteLength) dst.set(live);
        else memory.buffers.set(n, live.slice());
      }
    },
  };
}

/** Converts a marshalled value to what Deno's FFI takes for a parameter of `kind`. */
function convert(
  value: Uint8Array | bigint | number | null,
  kind: string,
  name: string,
  i: number,
): unknown {
  if (kind === "buffer") {
    if (value === null || value instanceof Uint8Array) return value;
    throw new TypeError(`${name} argument ${i} is a buffer; the case gave ${typeof value}`);
  }
  if (kind === "pointer") {
    if (value === null) return null;
    if (typeof value === "bigint") return Deno.UnsafePointer.create(value);
    if (value instanceof Uint8Array) return Deno.UnsafePointer.of(value);
    throw new TypeError(`${name} argument ${i} is a pointer; the case gave a number`);
  }
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return value;
  throw new TypeError(`${name} argument ${i} is ${kind}; the case gave a buffer`);
}
