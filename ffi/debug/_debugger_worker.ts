/**
 * Worker entry: a debugger that owns one OS thread. Debug events belong to the thread that called
 * `DebugActiveProcess` (a `nonblocking` `WaitForDebugEvent` on a pool thread receives nothing), so
 * attach, wait, continue, break in, inject, detach and kill all run synchronously here. Started by
 * `debugger.ts`; never imported directly.
 *
 * @module
 */

import { decodeDebugEvent } from "../debug_events.ts";
import type { HandledEvent } from "./debugger.ts";
import { ProcessAccess } from "../nt/processes.ts";
import { serializeError } from "../_errors_wire.ts";
import { checkWin32, checkWin32Pointer, NtHandle, procAddress } from "../nt/handle.ts";
import { kernel32 } from "../kernel32.ts";
import { LAYOUTS } from "../layouts.ts";
import { guardMailbox, serviceMailbox } from "../_mailbox.ts";
import { ntdll } from "../ntdll.ts";
import { NtError, NTSTATUS, WIN32_ERRORS } from "../status.ts";
import { decodeUtf16 } from "../strings.ts";
import { workerScope } from "../_worker_scope.ts";

/** What the host sends to start the debugger. */
export interface DebuggerInit {
  /** The process to attach to. */
  pid: number;
  /** Hold the attach breakpoint this long (ms) before continuing it. */
  holdAttachMs: number;
  /** The command mailbox (`mailbox.ts`). */
  control: SharedArrayBuffer;
  /** How long each `WaitForDebugEvent` waits (ms) before the mailbox is checked again. */
  pollMs: number;
  /** Keep each event's raw 176 bytes (hex) in `raw`, for recording test fixtures. */
  recordRaw?: boolean;
}

/**
 * How close to its timeout a failed wait must have lasted to count as timed out (ms): Windows
 * timer waits may end up to one clock tick (15.625 ms by default) early.
 */
export const WAIT_TICK_TOLERANCE_MS = 20;

/**
 * Reads a `WaitForDebugEvent` that returned FALSE: `"timeout"` when the wait lasted (about) the
 * whole `timeoutMs`, else `"error"`. The clock decides, not `GetLastError`: the last error is read
 * by a second FFI call, after the runtime may have made Win32 calls of its own on this thread, and
 * under Wine it was seen clobbered after a plain timeout. `lastError` (ERROR_SEM_TIMEOUT is what
 * the documented timeout sets) only goes into the error's text.
 */
export function waitFailure(
  elapsedMs: number,
  timeoutMs: number,
  lastError: number,
): { kind: "timeout" } | { kind: "error"; detail: string } {
  if (elapsedMs + WAIT_TICK_TOLERANCE_MS >= timeoutMs) return { kind: "timeout" };
  const hint =
    lastError === WIN32_ERRORS.ERROR_SEM_TIMEOUT || lastError === WIN32_ERRORS.WAIT_TIMEOUT
      ? "; it names a timeout, but the wait ended early, so it is stale"
      : "";
  return {
    kind: "error",
    detail: `returned FALSE after ${
      Math.round(elapsedMs)
    } ms of a ${timeoutMs} ms wait (GetLastError ${lastError}${hint})`,
  };
}

const now = () => Math.round((performance.timeOrigin + performance.now()) * 10) / 10;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function pathOf(file: bigint): string | undefined {
  if (file === 0n) return undefined;
  const buf = new Uint8Array(2 * 1024);
  const n = kernel32().GetFinalPathNameByHandleW(Deno.UnsafePointer.create(file), buf, 1024, 0);
  return n > 0 && n < 1024
    ? decodeUtf16(buf.subarray(0, n * 2)).replace(/^\\\\\?\\/, "")
    : undefined;
}

const scope = workerScope<DebuggerInit>();
scope.onmessage = (ev) => {
  const init = ev.data;
  guardMailbox(init.control); // dying mid-command rejects the host's command (mailbox.ts)
  const k32 = kernel32();
  const me = k32.GetCurrentThreadId();
  let process: NtHandle<"process"> | undefined;
  let attached = false;
  let ended: string | undefined;
  let nextHold = init.holdAttachMs;
  try {
    checkWin32(k32.DebugActiveProcess(init.pid), "DebugActiveProcess", `pid ${init.pid}`);
    attached = true;
    // Ending the session is a decision (detach or kill), never an accident of this thread's end.
    checkWin32(k32.DebugSetProcessKillOnExit(0), "DebugSetProcessKillOnExit");
    process = NtHandle.fromPointer(
      "process",
      checkWin32Pointer(
        k32.OpenProcess(
          ProcessAccess.PROCESS_CREATE_THREAD | ProcessAccess.PROCESS_VM_OPERATION |
            ProcessAccess.PROCESS_VM_READ |
            ProcessAccess.PROCESS_VM_WRITE | ProcessAccess.PROCESS_QUERY_INFORMATION |
            ProcessAccess.PROCESS_SUSPEND_RESUME,
          0,
          init.pid,
        ),
        "OpenProcess",
        `pid ${init.pid}`,
      ),
      `debuggee ${init.pid}`,
    );
    scope.postMessage({ kind: "attached", debuggerTid: me });

    const command = (
      request: { op: string; ms?: number; start?: string; arg?: number },
    ): unknown => {
      switch (request.op) {
        case "thread":
          return { tid: k32.GetCurrentThreadId() };
        case "break":
          nextHold = request.ms ?? 0;
          checkWin32(k32.DebugBreakProcess(process!.unsafePointer), "DebugBreakProcess");
          return { at: now(), tid: k32.GetCurrentThreadId() };
        case "inject": {
          const start = request.start === "ExitThread"
            ? procAddress("kernel32.dll", "ExitThread")
            : procAddress("kernel32.dll", "Sleep");
          const tid = new Uint32Array(1);
          const thread = NtHandle.fromPointer(
            "thread",
            checkWin32Pointer(
              k32.CreateRemoteThread(
                process!.unsafePointer,
                null,
                0n,
                start,
                Deno.UnsafePointer.create(BigInt(request.arg ?? 0)),
                0,
                tid,
              ),
              "CreateRemoteThread",
            ),
            "remote thread",
          );
          thread.close();
          return {
            tid: tid[0],
            startAddress: `0x${Deno.UnsafePointer.value(start).toString(16)}`,
            routine: `kernel32!${request.start === "ExitThread" ? "ExitThread" : "Sleep"}`,
            at: now(),
          };
        }
        case "detach":
          checkWin32(k32.DebugActiveProcessStop(init.pid), "DebugActiveProcessStop");
          ended = "detach";
          return { at: now() };
        case "kill": {
          // Kill-on-exit acts when the debug object's last handle closes: close it now.
          checkWin32(k32.DebugSetProcessKillOnExit(1), "DebugSetProcessKillOnExit");
          const debugObject = ntdll().DbgUiGetThreadDebugObject();
          if (debugObject === null) throw new Error("this thread has no debug object");
          const status = ntdll().NtClose(debugObject);
          if (status < 0) throw new NtError("NtClose", status, "ntstatus", "debug object");
          ended = "kill";
          return { at: now() };
        }
        default:
          throw new Error(`unknown debugger command ${JSON.stringify(request)}`);
      }
    };

    const buf = new Uint8Array(LAYOUTS.DEBUG_EVENT.size);
    while (ended === undefined) {
      serviceMailbox(init.control, (r) => command(r as { op: string }));
      if (ended !== undefined) break;
      const waitStart = performance.now();
      if (!k32.WaitForDebugEvent(buf, init.pollMs)) {
        const elapsed = performance.now() - waitStart;
        const err = k32.GetLastError();
        const failure = waitFailure(elapsed, init.pollMs, err);
        if (failure.kind === "timeout") continue;
        throw new NtError("WaitForDebugEvent", err, "win32", failure.detail);
      }
      const at = now();
      const e = decodeDebugEvent(buf) as HandledEvent;
      e.at = at;
      e.debuggerTid = k32.GetCurrentThreadId();
      if (init.recordRaw) e.raw = [...buf].map((b) => b.toString(16).padStart(2, "0")).join("");
      if (e.fileHandle) {
        const image = pathOf(e.fileHandle);
        if (image) e.image = image;
        k32.CloseHandle(Deno.UnsafePointer.create(e.fileHandle)); // ours to close
        delete e.fileHandle;
      }
      let status: number = NTSTATUS.DBG_CONTINUE;
      if (e.exception) {
        const breakpoint = e.exception.code === NTSTATUS.STATUS_BREAKPOINT ||
          e.exception.code === NTSTATUS.STATUS_WX86_BREAKPOINT;
        if (breakpoint) {
          if (nextHold > 0) {
            sleepSync(nextHold); // the whole process stays frozen meanwhile
            e.heldMs = nextHold;
            nextHold = 0;
          } else e.heldMs = 0;
        } else status = NTSTATUS.DBG_EXCEPTION_NOT_HANDLED;
      }
      e.continued = status === NTSTATUS.DBG_CONTINUE ? "DBG_CONTINUE" : "DBG_EXCEPTION_NOT_HANDLED";
      scope.postMessage({ kind: "event", event: e });
      checkWin32(k32.ContinueDebugEvent(e.pid, e.tid, status), "ContinueDebugEvent");
      if (e.kind === "EXIT_PROCESS") ended = "exited";
    }
    scope.postMessage({ kind: "ended", how: ended });
  } catch (e) {
    if (attached && ended === undefined) k32.DebugActiveProcessStop(init.pid); // never leave it frozen
    scope.postMessage({ kind: "error", error: serializeError(e) });
  } finally {
    process?.close();
    scope.postMessage({ kind: "stopped" });
  }
};
