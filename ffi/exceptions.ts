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
 * @module
 */

import { addressOf, checkWin32, checkWin32Pointer, NtHandle, procAddress } from "./handle.ts";
import { kernel32 } from "./kernel32.ts";
import { LAYOUTS } from "./layouts.ts";
import { ntdll } from "./ntdll.ts";
import { EXCEPTION_MAXIMUM_PARAMETERS } from "./port_message.ts";

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
): void {
  ntdll().RtlCaptureContext(ctx);
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
}

/**
 * Raises `code` as a second-chance exception on a new native thread and waits (without blocking
 * the event loop) up to `timeoutMs` for that thread to end. The process goes on.
 */
export async function raiseSecondChance(
  code: number,
  parameters: bigint[] = [],
  timeoutMs = 60_000,
): Promise<RaiseResult> {
  const k32 = kernel32();
  const MEM_COMMIT_RESERVE = 0x3000;
  const MEM_RELEASE = 0x8000;
  const PAGE_EXECUTE_READWRITE = 0x40;
  const stub = checkWin32Pointer(
    k32.VirtualAlloc(null, 4096n, MEM_COMMIT_RESERVE, PAGE_EXECUTE_READWRITE),
    "VirtualAlloc",
  );
  let threadEnded = false;
  try {
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(stub, RAISE_STUB.byteLength)).set(
      RAISE_STUB,
    );
    const record = buildExceptionRecord(code, parameters, Deno.UnsafePointer.value(stub));
    const ctx = aligned16(CTX.size);
    const stack = new Uint8Array(64 * 1024);
    continueContext(
      ctx,
      Deno.UnsafePointer.value(procAddress("kernel32.dll", "ExitThread")),
      0n,
      addressOf(stack) + BigInt(stack.byteLength),
    );
    const block = new BigUint64Array([
      addressOf(record),
      addressOf(ctx),
      Deno.UnsafePointer.value(procAddress("ntdll.dll", "NtRaiseException")),
    ]);
    const tid = new Uint32Array(1);
    using thread = NtHandle.fromPointer(
      checkWin32Pointer(
        k32.CreateThread(null, 0n, stub, Deno.UnsafePointer.of(block), 0, tid),
        "CreateThread",
      ),
      "exception thread",
    );
    threadEnded = (await k32.WaitForSingleObjectAsync(thread.unsafePointer, timeoutMs >>> 0)) === 0;
    const exit = new Uint32Array(1);
    checkWin32(k32.GetExitCodeThread(thread.unsafePointer, exit), "GetExitCodeThread");
    // Every buffer the native thread used stays referenced until here.
    void [record, ctx, stack, block];
    return { tid: tid[0]!, exitCode: threadEnded ? exit[0]! : undefined };
  } finally {
    // A thread still blocked in the kernel keeps its stub; it is freed with the process.
    if (threadEnded) k32.VirtualFree(stub, 0n, MEM_RELEASE);
  }
}
