/**
 * Raising a **second-chance** exception (`NtRaiseException(record, context, FirstChance = FALSE)`)
 * on a dedicated native thread, so that the exception port (or a debugger) sees it and the client
 * lives on.
 *
 * `NtRaiseException` does not return when the exception is "handled": the thread continues at the
 * supplied CONTEXT. So the thread is a small stub in executable memory, not a JS thread, and its
 * continue context points at `kernel32!ExitThread(0)` on a private stack: a `DBG_CONTINUE` reply
 * ends that one thread cleanly (exit code 0), never a re-raise loop and never the client. If the
 * raise itself fails, the stub returns the NTSTATUS, which becomes the thread's exit code.
 *
 * Lifetimes: the native thread reads the pointer block, the record and the context, and runs on the
 * private stack, on its own schedule. All of them (and the stub) stay referenced until that thread
 * has ended, also when the wait for it times out (see {@link raiseSecondChance}).
 *
 * @module
 */

import { addressOf, checkWin32, checkWin32Pointer, NtHandle, procAddress } from "../nt/handle.ts";
import { kernel32 } from "../kernel32.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll } from "../ntdll.ts";
import { EXCEPTION_MAXIMUM_PARAMETERS } from "../port_message.ts";

const ER = LAYOUTS.EXCEPTION_RECORD;
const CTX = LAYOUTS.CONTEXT;

/**
 * The x64 stub: `rcx` points at { record, context, NtRaiseException }.
 *
 * ```
 * sub rsp, 0x28 ; mov rax, [rcx+16] ; mov rdx, [rcx+8] ; mov rcx, [rcx] ; xor r8d, r8d
 * call rax ; add rsp, 0x28 ; ret
 * ```
 */
export const RAISE_STUB: Uint8Array = new Uint8Array([
  0x48,
  0x83,
  0xec,
  0x28,
  0x48,
  0x8b,
  0x41,
  0x10,
  0x48,
  0x8b,
  0x51,
  0x08,
  0x48,
  0x8b,
  0x09,
  0x45,
  0x31,
  0xc0,
  0xff,
  0xd0,
  0x48,
  0x83,
  0xc4,
  0x28,
  0xc3,
]);

/** Builds an `EXCEPTION_RECORD` (non-continuable flag off). */
export function buildExceptionRecord(
  code: number,
  parameters: bigint[] = [],
  address = 0n,
): Uint8Array<ArrayBuffer> {
  if (parameters.length > EXCEPTION_MAXIMUM_PARAMETERS) {
    throw new RangeError(`at most ${EXCEPTION_MAXIMUM_PARAMETERS} parameters`);
  }
  const rec = new Uint8Array(ER.size);
  const dv = new DataView(rec.buffer);
  dv.setUint32(ER.offsets.ExceptionCode, code >>> 0, true);
  dv.setUint32(ER.offsets.ExceptionFlags, 0, true);
  dv.setBigUint64(ER.offsets.ExceptionAddress, address, true);
  dv.setUint32(ER.offsets.NumberParameters, parameters.length, true);
  parameters.forEach((p, i) => dv.setBigUint64(ER.offsets.ExceptionInformation + 8 * i, p, true));
  return rec;
}

/** A 16-byte-aligned view of `size` bytes inside a fresh buffer (CONTEXT must be aligned). */
export function aligned16(size: number): Uint8Array<ArrayBuffer> {
  const raw = new Uint8Array(size + 16);
  const skew = Number(addressOf(raw) % 16n);
  return raw.subarray(skew === 0 ? 0 : 16 - skew, (skew === 0 ? 0 : 16 - skew) + size);
}

/**
 * Writes the continue context: a CONTEXT captured on this thread (valid segments, flags, MXCSR),
 * with `Rip` = `continueAt`, `Rcx` = `argument`, and `Rsp` just below `stackTop` the way a call
 * leaves it (8 mod 16) with shadow space.
 */
export function continueContext(
  ctx: Uint8Array,
  continueAt: bigint,
  argument: bigint,
  stackTop: bigint,
  capture: (ctx: Uint8Array) => void = (c) => ntdll().RtlCaptureContext(c),
): void {
  capture(ctx);
  const dv = new DataView(ctx.buffer, ctx.byteOffset, ctx.byteLength);
  const rsp = ((stackTop - 0x40n) & ~0xfn) - 8n;
  dv.setBigUint64(CTX.offsets.Rip, continueAt, true);
  dv.setBigUint64(CTX.offsets.Rcx, argument, true);
  dv.setBigUint64(CTX.offsets.Rsp, rsp, true);
}

/** What {@link raiseSecondChance} observed. */
export interface RaiseResult {
  /** The native thread that raised. */
  tid: number;
  /** Its exit code: 0 = continued at ExitThread; an NTSTATUS = the raise failed; undefined = still blocked. */
  exitCode: number | undefined;
  /** The `ExceptionAddress` written into the record (the stub's address). */
  address: bigint;
}

/** The raise thread, as {@link RaiseSystem} started it. */
export interface RaiseThread {
  /** Its thread id. */
  readonly tid: number;
  /** Waits up to `ms` without blocking the event loop; true when it has ended. */
  waitAsync(ms: number): Promise<boolean>;
  /** Whether it has ended (a zero-timeout wait). */
  ended(): boolean;
  /** Its exit code (`GetExitCodeThread`). */
  exitCode(): number;
  /** Closes the thread handle (the thread itself runs on). */
  close(): void;
}

/** The native calls {@link raiseSecondChance} makes: the real kernel32/ntdll by default, a fake in tests. */
export interface RaiseSystem {
  /** `VirtualAlloc(NULL, size, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE)`. */
  allocExecutable(size: number): Deno.PointerObject;
  /** `VirtualFree(p, 0, MEM_RELEASE)`. */
  freeExecutable(p: Deno.PointerObject): void;
  /** `RtlCaptureContext`. */
  captureContext(ctx: Uint8Array): void;
  /** The address of `kernel32!ExitThread`. */
  exitThreadAddress(): bigint;
  /** The address of `ntdll!NtRaiseException`. */
  ntRaiseExceptionAddress(): bigint;
  /** `CreateThread(NULL, 0, start, &block, 0, &tid)`: the thread's parameter is the block's address. */
  startThread(start: Deno.PointerObject, block: BigUint64Array<ArrayBuffer>): RaiseThread;
}

/** Options for {@link raiseSecondChance}. */
export interface RaiseOptions {
  /**
   * Called with the exception's code and address (the stub's) just before the thread starts, e.g.
   * to tell the exception port which exception is the one raised on purpose.
   */
  beforeRaise?: (raise: { code: number; address: bigint }) => void | Promise<void>;
  /** The native calls (default: the real ones). */
  system?: RaiseSystem;
}

/** The real {@link RaiseSystem}. */
function windowsRaiseSystem(): RaiseSystem {
  const k32 = kernel32();
  const MEM_COMMIT_RESERVE = 0x3000;
  const MEM_RELEASE = 0x8000;
  const PAGE_EXECUTE_READWRITE = 0x40;
  return {
    allocExecutable: (size) =>
      checkWin32Pointer(
        k32.VirtualAlloc(null, BigInt(size), MEM_COMMIT_RESERVE, PAGE_EXECUTE_READWRITE),
        "VirtualAlloc",
      ),
    freeExecutable: (p) => void k32.VirtualFree(p, 0n, MEM_RELEASE),
    captureContext: (ctx) => ntdll().RtlCaptureContext(ctx),
    exitThreadAddress: () => Deno.UnsafePointer.value(procAddress("kernel32.dll", "ExitThread")),
    ntRaiseExceptionAddress: () =>
      Deno.UnsafePointer.value(procAddress("ntdll.dll", "NtRaiseException")),
    startThread: (start, block) => {
      const tid = new Uint32Array(new ArrayBuffer(SCRATCH_BYTES), 0, 1);
      const handle = NtHandle.fromPointer(
        "thread",
        checkWin32Pointer(
          k32.CreateThread(null, 0n, start, Deno.UnsafePointer.of(block), 0, tid),
          "CreateThread",
        ),
        "exception thread",
      );
      return {
        tid: tid[0]!,
        waitAsync: async (ms) =>
          (await k32.WaitForSingleObjectAsync(handle.unsafePointer, ms >>> 0)) === 0,
        ended: () => k32.WaitForSingleObject(handle.unsafePointer, 0) === 0,
        exitCode: () => {
          const exit = new Uint32Array(new ArrayBuffer(SCRATCH_BYTES), 0, 1);
          checkWin32(k32.GetExitCodeThread(handle.unsafePointer, exit), "GetExitCodeThread");
          return exit[0]!;
        },
        close: () => handle.close(),
      };
    },
  };
}

/**
 * Small buffers whose address native code keeps get a backing store of this many bytes: V8 keeps
 * typed arrays of up to 64 bytes (`V8_TYPED_ARRAY_MAX_SIZE_IN_HEAP`) inside the JS heap, where
 * they move, and the FFI may hand native code a temporary copy of such a buffer's bytes; a larger
 * buffer has a fixed off-heap backing store for as long as it is referenced.
 */
export const SCRATCH_BYTES = 128;

/** A raise thread still running after its wait timed out, with everything it may still touch. */
interface Lingering {
  thread: RaiseThread;
  stub: Deno.PointerObject;
  free: (p: Deno.PointerObject) => void;
  /** The record, context, stack and pointer block: referenced here so GC cannot take them. */
  buffers: readonly ArrayBufferView[];
}

const lingering = new Set<Lingering>();
let sweeper: ReturnType<typeof setInterval> | undefined;

/**
 * Releases every lingering raise thread that has ended (frees its stub, closes its handle, drops
 * its buffers) and returns how many are still running. Runs on a timer (unref'd, so it never keeps
 * the process alive; a process that exits takes its threads and memory with it).
 */
export function sweepRaiseThreads(): number {
  for (const l of lingering) {
    if (!l.thread.ended()) continue;
    lingering.delete(l);
    l.thread.close();
    l.free(l.stub);
  }
  if (lingering.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
  return lingering.size;
}

/**
 * Raises `code` as a second-chance exception on a new native thread and waits (without blocking
 * the event loop) up to `timeoutMs` for that thread to end. The process goes on.
 *
 * If the thread is still running at the timeout (its exception message still unanswered, or the
 * process suspended by WER), it may later continue: onto the private stack when the exception is
 * continued, back into the stub when the raise fails. Freeing anything then would let it run on
 * freed memory, and terminating a thread blocked in a kernel wait is neither prompt nor safe. So
 * its stub, stack, record, context and pointer block are kept in a module-level set and released
 * by {@link sweepRaiseThreads} only once the thread has ended.
 *
 * @param code the exception code to raise (e.g. `0xE0000001`)
 * @param parameters the `ExceptionInformation` words (at most 15)
 * @param timeoutMs how long to wait for the raising thread to end (default 60 s)
 * @param options `beforeRaise` (announce the raise), `system` (the native calls; a fake in tests)
 * @example With no exception port or debugger, the thread dies and the process goes on (Windows
 * only, not run here: it runs machine code)
 * ```ts ignore
 * import { raiseSecondChance } from "@deno-lpc/deno-lpc";
 * import { assert } from "jsr:@std/assert@^1.0.19";
 *
 * const r = await raiseSecondChance(0xe0000001, [], 10_000);
 * assert(r.tid > 0);
 * ```
 */
export async function raiseSecondChance(
  code: number,
  parameters: bigint[] = [],
  timeoutMs = 60_000,
  options: RaiseOptions = {},
): Promise<RaiseResult> {
  const sys = options.system ?? windowsRaiseSystem();
  const stub = sys.allocExecutable(4096);
  let owner: "here" | "thread" = "here";
  try {
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(stub, RAISE_STUB.byteLength)).set(
      RAISE_STUB,
    );
    const address = Deno.UnsafePointer.value(stub);
    const record = buildExceptionRecord(code, parameters, address);
    const ctx = aligned16(CTX.size);
    const stack = new Uint8Array(64 * 1024);
    continueContext(
      ctx,
      sys.exitThreadAddress(),
      0n,
      addressOf(stack) + BigInt(stack.byteLength),
      (c) => sys.captureContext(c),
    );
    // { record, context, NtRaiseException }, read by the stub on the new thread: > 64 bytes.
    const block = new BigUint64Array(new ArrayBuffer(SCRATCH_BYTES), 0, 3);
    block.set([addressOf(record), addressOf(ctx), sys.ntRaiseExceptionAddress()]);
    await options.beforeRaise?.({ code: code >>> 0, address });
    const thread = sys.startThread(stub, block);
    owner = "thread";
    const linger = () => {
      lingering.add({
        thread,
        stub,
        free: (p) => sys.freeExecutable(p),
        buffers: [record, ctx, stack, block],
      });
      if (sweeper === undefined) {
        const timer = setInterval(sweepRaiseThreads, 250);
        Deno.unrefTimer(timer);
        sweeper = timer;
      }
    };
    let ended: boolean;
    try {
      ended = await thread.waitAsync(timeoutMs);
    } catch (e) {
      linger(); // we cannot tell whether it still runs
      throw e;
    }
    if (!ended) {
      linger();
      return { tid: thread.tid, exitCode: undefined, address };
    }
    owner = "here"; // it has ended: nothing runs on the stub or the buffers any more
    try {
      return { tid: thread.tid, exitCode: thread.exitCode(), address };
    } finally {
      thread.close();
    }
  } finally {
    if (owner === "here") sys.freeExecutable(stub);
  }
}
