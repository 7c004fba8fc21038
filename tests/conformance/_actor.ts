/**
 * One thread of a conformance scenario on the real kernel: a Worker, so a real OS thread, that
 * makes each ntdll call **synchronously on itself** (never `nonblocking`: the thread identity is
 * what the kernel sees, and a call that blocks blocks this thread only). Started by
 * `_actor_process.ts`; never imported directly.
 *
 * In: `{op: "init"}` first, then `{id, ...WorkerOp}` and finally `{op: "exit"}`. Out: one
 * {@link ThreadHello}, then `{id, ok}` or `{id, error}` per request. On `exit` the Worker closes
 * itself: its event loop ends and Deno's worker thread returns, so the OS thread runs its exit path
 * (the host waits on the thread's handle to be sure).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { serializeError } from "../../ffi/_errors_wire.ts";
import { raiseSecondChance } from "../../ffi/debug/raise_exception.ts";
import { currentThread } from "../../ffi/nt/handle.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { requireSymbol } from "../../ffi/_loader.ts";
import { ntdll, ntdllSymbols } from "../../ffi/ntdll.ts";
import { ObjectAttributes } from "../../ffi/nt/object_attributes.ts";
import { check } from "../../ffi/status.ts";
import { impersonateSystem, type SystemImpersonation } from "../../ffi/nt/tokens.ts";
import { marshal } from "./_marshal.ts";
import type { CallName } from "./types.ts";
import {
  type CallReply,
  type HardErrorReply,
  type OpenReply,
  type RaiseReply,
  type ThreadHello,
  type WireCall,
  workerMemory,
  type WorkerOp,
} from "./_actor_marshal.ts";

const KUT = LAYOUTS.KERNEL_USER_TIMES;
const CID = LAYOUTS.CLIENT_ID;
/** THREADINFOCLASS ThreadTimes. */
const ThreadTimes = 1;
/** ValidResponseOptions OptionOk (NtRaiseHardError.c accepts 0..6 from user mode). */
const OptionOk = 1;

/** Kept for the thread's life: a thread that became SYSTEM stays SYSTEM until it exits. */
let system: SystemImpersonation | undefined;

function hello(): ThreadHello {
  const times = new Uint8Array(KUT.size);
  check(
    ntdll().NtQueryInformationThread(currentThread(), ThreadTimes, times, times.byteLength, null),
    "NtQueryInformationThread",
    "ThreadTimes",
  );
  const createTime = new DataView(times.buffer).getBigInt64(KUT.offsets.CreateTime, true);
  return {
    tid: kernel32().GetCurrentThreadId(),
    pid: kernel32().GetCurrentProcessId(),
    createTime: createTime.toString(),
  };
}

type Fn = (...args: unknown[]) => unknown;

function call(wire: WireCall): CallReply {
  const name = wire.name;
  if (!Object.hasOwn(ntdllSymbols, name)) throw new TypeError(`ntdll!${name} is not bound`);
  if (ntdllSymbols[name as keyof typeof ntdllSymbols].result !== "i32") {
    throw new TypeError(`ntdll!${name} does not return an NTSTATUS`);
  }
  const fn = requireSymbol(
    (ntdll() as unknown as Record<string, Fn | null>)[name] ?? null,
    `ntdll!${name}`,
  );
  const { args, memory } = workerMemory(wire);
  // The one marshaller (shared with the fake driver); it pins what the arguments point to.
  const m = marshal(name as CallName, args, memory);
  const status = fn(...m.args) as number;
  m.collect();
  const outs: Record<string, string> = {};
  for (const a of args) {
    if (a !== null && typeof a === "object" && a.kind === "out") {
      outs[a.name] = (memory.handles.get(a.name) ?? 0n).toString();
    }
  }
  return { status, outs };
}

function openProcess(pid: number, access: number): OpenReply {
  const cell = new BigUint64Array(1);
  const oa = new ObjectAttributes(null, { attributes: 0 });
  const cid = new Uint8Array(CID.size);
  new DataView(cid.buffer).setBigUint64(CID.offsets.UniqueProcess, BigInt(pid), true);
  const status = ntdll().NtOpenProcess(cell, access >>> 0, oa.struct, cid);
  return { status, handle: (cell[0] ?? 0n).toString() };
}

function openThread(tid: number, access: number): OpenReply {
  const cell = new BigUint64Array(1);
  const oa = new ObjectAttributes(null, { attributes: 0 });
  const cid = new Uint8Array(CID.size);
  new DataView(cid.buffer).setBigUint64(CID.offsets.UniqueThread, BigInt(tid), true);
  const status = ntdll().NtOpenThread(cell, access >>> 0, oa.struct, cid);
  return { status, handle: (cell[0] ?? 0n).toString() };
}

function hardError(errorStatus: number): HardErrorReply {
  const response = new Uint32Array(1);
  const status = ntdll().NtRaiseHardError(errorStatus | 0, 0, 0, null, OptionOk, response);
  return { status, response: response[0]! };
}

async function run(m: WorkerOp): Promise<unknown> {
  switch (m.op) {
    case "call":
      return call(m);
    case "openProcess":
      return openProcess(m.pid, m.access);
    case "openThread":
      return openThread(m.tid, m.access);
    case "hardError":
      return hardError(m.status);
    case "becomeSystem": {
      system ??= impersonateSystem();
      return { user: system.user, fromPid: system.fromPid };
    }
    case "raise": {
      // ffi/debug/raise_exception.ts: the raise runs on a fresh native thread of this process, whose
      // continue context is ExitThread(0); this Worker waits for that thread (up to ms).
      const r = await raiseSecondChance(m.code >>> 0, m.parameters.map(BigInt), m.ms);
      return { tid: r.tid, exitCode: r.exitCode ?? null } satisfies RaiseReply;
    }
  }
}

self.onmessage = async (
  ev: MessageEvent<{ op: "init" } | { op: "exit" } | (WorkerOp & { id: number })>,
) => {
  const m = ev.data;
  if (m.op === "init") {
    try {
      self.postMessage({ hello: hello() });
    } catch (e) {
      self.postMessage({ helloError: serializeError(e) });
    }
    return;
  }
  if (m.op === "exit") {
    self.close();
    return;
  }
  try {
    self.postMessage({ id: m.id, ok: (await run(m)) ?? null });
  } catch (e) {
    self.postMessage({ id: m.id, error: serializeError(e) });
  }
};
