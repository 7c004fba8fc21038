/**
 * Making an LPC connection port a process's **exception port**
 * (`NtSetInformationProcess(ProcessExceptionPort)`): the kernel then sends that port an
 * `LPC_EXCEPTION` request (always TotalLength 0xD0: DbgkForwardException.c) for each
 * second-chance exception of the process, an `LPC_ERROR_EVENT` request for each hard error
 * (ExpRaiseHardError.c), and an `LPC_CLIENT_DIED` datagram for each of its threads that exits.
 * The port's MaxMessageLength must be at least 0xD0: the kernel drops a kernel message longer than
 * the receiving port's maximum, and an exception that cannot be delivered ends the process
 * (KiDispatchException.c). The 0x110-byte message goes only to the WER error port
 * (DbgkpSendErrorMessage.c), never to an exception port.
 *
 * Needs SeTcbPrivilege **enabled** in the caller's effective token (the server thread impersonating
 * SYSTEM) and a process handle with `PROCESS_SUSPEND_RESUME` (0x800). Windows 10/11 accept an 8-byte
 * handle or a 16-byte `PROCESS_EXCEPTION_PORT`; setting ours **replaces** the port csrss set, and
 * the old port is told so (NtSetInformationProcess.c). `STATUS_PORT_ALREADY_SET` is what XP/2003
 * answered; Windows 11 has no such refusal.
 *
 * @module
 */

import type { NtHandle } from "../nt/handle.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll } from "../ntdll.ts";
import { ProcessInfoClass } from "../nt/processes.ts";
import { describeStatus, NtError, NTSTATUS, ntSuccess, toUnsigned } from "../status.ts";

const PEP = LAYOUTS.PROCESS_EXCEPTION_PORT;

/** What {@link setExceptionPort} did. */
export interface ExceptionPortResult {
  /** Which form was accepted: the 8-byte handle, or the 16-byte `PROCESS_EXCEPTION_PORT`. */
  form: 8 | 16;
  /** The 8-byte form's answer, when the 16-byte form had to be used. */
  firstTry?: string;
  /** With the 16-byte form: the previous owner's state flags (written back by the kernel). */
  previousStateFlags?: number;
}

const HINTS: Record<number, string> = {
  [NTSTATUS.STATUS_PRIVILEGE_NOT_HELD]:
    "SeTcbPrivilege must be enabled in the calling thread's token: an elevated administrator does not hold it, SYSTEM does",
  [NTSTATUS.STATUS_PORT_ALREADY_SET]:
    "this Windows sets the exception port once per process (XP/2003 semantics; Windows 10/11 replace it); csrss set it at process creation",
  [NTSTATUS.STATUS_ACCESS_DENIED]: "the process handle needs PROCESS_SUSPEND_RESUME (0x800)",
};

/**
 * Sets `port` as the exception port of `process`. The kernel takes any port object
 * (NtSetInformationProcess.c references the handle as `LpcPortObjectType`; the conformance case
 * "Any kind of port can be a process's exception port" checks it), so the type allows any port;
 * the lab passes its **connection** port, since a communication port would send to the client. Tries the 8-byte form, then on `STATUS_INVALID_PARAMETER` (the
 * previous owner used state flags) the 16-byte form. Needs SeTcbPrivilege in the calling thread's
 * token (see {@link impersonateSystem}); the error names the missing right.
 *
 * @param process the process, opened with `PROCESS_SET_PORT` (`PROCESS_SUSPEND_RESUME`, 0x800)
 * @param port any port; the lab passes the server's connection port (`LpcServer.port`)
 * @returns which form the kernel accepted
 * @example As an administrator without SYSTEM, the kernel refuses (Windows only, not run here)
 * ```ts ignore
 * import { createConnectionPort, NtError, openProcess, setExceptionPort } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * using port = createConnectionPort(null, { kernelMessages: true, maxMessageLength: 0xd0 });
 * using me = openProcess(Deno.pid, 0x800);
 * const e = assertThrows(() => setExceptionPort(me, port), NtError);
 * assertEquals(e.symbol, "STATUS_PRIVILEGE_NOT_HELD");
 * ```
 */
export function setExceptionPort(
  process: NtHandle<"process">,
  port: NtHandle<"connection-port" | "port">,
): ExceptionPortResult {
  const nt = ntdll();
  const eight = new BigUint64Array([port.unsafeValue]);
  const first = nt.NtSetInformationProcess(
    process.unsafePointer,
    ProcessInfoClass.ProcessExceptionPort,
    eight,
    8,
  );
  if (ntSuccess(first)) return { form: 8 };
  if (toUnsigned(first) === NTSTATUS.STATUS_INVALID_PARAMETER) {
    const sixteen = new Uint8Array(PEP.size);
    const dv = new DataView(sixteen.buffer);
    dv.setBigUint64(PEP.offsets.ExceptionPortHandle, port.unsafeValue, true);
    dv.setUint32(PEP.offsets.StateFlags, 0, true);
    const second = nt.NtSetInformationProcess(
      process.unsafePointer,
      ProcessInfoClass.ProcessExceptionPort,
      sixteen,
      PEP.size,
    );
    if (ntSuccess(second)) {
      return {
        form: 16,
        firstTry: describeStatus(first),
        previousStateFlags: dv.getUint32(PEP.offsets.StateFlags, true),
      };
    }
    throw withHint(second);
  }
  throw withHint(first);
}

function withHint(status: number): NtError {
  const hint = HINTS[toUnsigned(status)];
  return new NtError(
    "NtSetInformationProcess",
    status,
    "ntstatus",
    `ProcessExceptionPort${hint ? ` (${hint})` : ""}`,
  );
}
