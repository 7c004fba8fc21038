/**
 * Who serves a named port: the technique of NtObjectManager's `Get-NtAlpcServer`. A server holds
 * a handle to its named *connection* port; so list every handle in the system, keep those of the
 * port type, duplicate each into this process and ask its name (`NtQueryObject`, only for ports:
 * a name query on some other types, such as pipes, can hang).
 *
 * @module
 */

import { addressOf, currentProcess, handleCell, NtHandle } from "../nt/handle.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll } from "../ntdll.ts";
import {
  currentProcessId,
  openProcess,
  ProcessAccess,
  processImagePath,
  processProtection,
  PS_PROTECTED_TYPE_MASK,
} from "../nt/processes.ts";
import { NtError, ntSuccess } from "../status.ts";
import { readCountedUnicodeString } from "../nt/object_attributes.ts";
import { handleTypeIndex, type SystemHandle, systemHandles } from "../nt/system_handles.ts";
import { PRIVILEGE_LUIDS } from "../nt/tokens.ts";
import { PORT_MAXIMUM_MESSAGE_LENGTH } from "../port_message.ts";

const ONI = LAYOUTS.OBJECT_NAME_INFORMATION;

/** `ObjectNameInformation`. */
const ObjectNameInformation = 1;
/** `DUPLICATE_SAME_ACCESS`. */
const DUPLICATE_SAME_ACCESS = 0x2;

/** A process serving one or more named ports. */
export interface PortServer {
  /** The process id. */
  pid: number;
  /** The image file name (e.g. `csrss.exe`), when it could be read. */
  image: string | null;
}

/** What {@link findPortServers} found. */
export interface PortServerReport {
  /** Named port path → serving process. */
  servers: Map<string, PortServer>;
  /** Whether SeDebugPrivilege could be enabled. */
  debugPrivilege: boolean;
  /** Port handles examined (in other processes). */
  portHandles: number;
  /** Why some handles could not be examined: reason → count. */
  unattributed: Record<string, number>;
}

/** The handle-table type index of LPC/ALPC ports, learned from a port we create and close. */
export function portTypeIndex(): number {
  const cell = handleCell();
  const status = ntdll().NtCreatePort(cell, null, 0, PORT_MAXIMUM_MESSAGE_LENGTH, 0);
  if (!ntSuccess(status)) {
    throw new NtError("NtCreatePort", status, "ntstatus", "(probe for the port type index)");
  }
  using port = NtHandle.fromCell("connection-port", cell, "probe port");
  return handleTypeIndex(port);
}

/** `NtQueryObject(ObjectNameInformation)` on a handle of this process. */
export function objectName(handle: NtHandle): string {
  const buf = new Uint8Array(2048);
  const returned = new Uint32Array(1);
  const status = ntdll().NtQueryObject(
    handle.unsafePointer,
    ObjectNameInformation,
    buf,
    buf.byteLength,
    returned,
  );
  if (!ntSuccess(status)) {
    throw new NtError("NtQueryObject", status, "ntstatus", "ObjectNameInformation");
  }
  return readCountedUnicodeString(buf, ONI.offsets.Name, addressOf(buf));
}

/**
 * Enables SeDebugPrivilege in this process's token when the token holds it
 * (`RtlAdjustPrivilege`); nothing else is changed.
 *
 * @returns whether it is enabled now
 */
export function enableDebugPrivilege(): boolean {
  const was = new Uint8Array(1);
  return ntSuccess(ntdll().RtlAdjustPrivilege(PRIVILEGE_LUIDS.SeDebugPrivilege!, 1, 0, was));
}

/**
 * Duplicates a port handle of another process into this one (`NtDuplicateObject`, same access);
 * throws `NtError`.
 *
 * @param process that process, opened with `PROCESS_DUP_HANDLE`
 * @param handle the handle value in that process (from the system handle table)
 * @param pid its id, for the handle's description
 */
export function duplicatePortHandle(
  process: NtHandle<"process">,
  handle: bigint,
  pid: number,
): NtHandle<"port"> {
  const cell = handleCell();
  const status = ntdll().NtDuplicateObject(
    process.unsafePointer,
    Deno.UnsafePointer.create(handle),
    currentProcess(),
    cell,
    0,
    0,
    DUPLICATE_SAME_ACCESS,
  );
  if (!ntSuccess(status)) {
    throw new NtError("NtDuplicateObject", status, "ntstatus", `port handle of pid ${pid}`);
  }
  return NtHandle.fromCell("port", cell, `port handle of pid ${pid}`);
}

function reasonOf(e: unknown): string {
  if (e instanceof NtError) return e.symbol ?? e.hex;
  return e instanceof Error ? e.message : String(e);
}

/** The System process's id: its port handles are never duplicated ({@link SYSTEM_PROCESS_SKIPPED}). */
export const SYSTEM_PROCESS_ID = 4;

/**
 * Why the System process's port handles are not duplicated: `AlpcpClosePort.c` runs
 * `AlpcpDoPortCleanup` and `AlpcpSendCloseMessage` when the closing process's last handle goes and
 * the closer owns the port or its flags have 0x100000 (settable only from kernel mode:
 * `AlpcpValidateAndSetPortAttributes.c`). Closing our duplicate of such a port could clean up a
 * kernel component's port.
 */
export const SYSTEM_PROCESS_SKIPPED: string =
  "System process: not duplicated (closing a duplicate may " +
  "clean up a kernel port: AlpcpClosePort.c)";

/**
 * Why opening a process for `PROCESS_DUP_HANDLE` was refused, in the reports' words: "protected
 * process" only when its PS_PROTECTION byte's type bits say so (`PsIsProtectedProcess.c`), read on
 * a `PROCESS_QUERY_LIMITED_INFORMATION` handle; else "access denied" with the status (a
 * non-elevated run against an elevated process of the same user is refused too, and is not
 * protected), or the open's failure.
 *
 * @param pid the process
 * @param e what the open threw
 * @param open opens a process (`openProcess`; the port graph passes its source's)
 * @param protection the PS_PROTECTION byte of an open process (`processProtection`)
 */
export function dupOpenRefusal<P extends Disposable>(
  pid: number,
  e: unknown,
  open: (pid: number, access: number) => P,
  protection: (process: P) => number,
): string {
  const why = reasonOf(e);
  if (!(e instanceof NtError) || !/ACCESS_DENIED/.test(e.symbol ?? "")) {
    return `open process: ${why}`;
  }
  let limited: P;
  try {
    limited = open(pid, ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION);
  } catch {
    return `access denied (${why})`;
  }
  using _limited = limited;
  try {
    return (protection(limited) & PS_PROTECTED_TYPE_MASK) !== 0
      ? "protected process"
      : `access denied (${why}, not protected)`;
  } catch (q) {
    return `access denied (${why}; ProcessProtectionInformation: ${reasonOf(q)})`;
  }
}

/**
 * Attributes named ports to the processes that hold their connection port handles. Enables
 * SeDebugPrivilege when the token holds it. Protected processes (csrss, lsass with PPL, ...) refuse
 * `PROCESS_DUP_HANDLE` even then; they are counted under "protected process" when their
 * PS_PROTECTION byte says so (`PsIsProtectedProcess.c`), else under "access denied" with why.
 * The System process (pid 4) is never duplicated from: see `SYSTEM_PROCESS_SKIPPED`.
 *
 * @returns named port path → serving process, with what could not be attributed and why
 * @example Who serves the ports (Windows only, not run here: it reads every process's handles)
 * ```ts ignore
 * import { findPortServers } from "@deno-lpc/deno-lpc";
 * import { assert } from "jsr:@std/assert@^1.0.19";
 *
 * const report = findPortServers();
 * assert(report.portHandles >= report.servers.size);
 * ```
 */
export function findPortServers(
  options: {
    /**
     * Called with each named port handle while its duplicate is open in this process (the handle
     * is closed when the call returns; do not keep it). `--security` reads descriptors here.
     */
    visit?: (name: string, port: NtHandle<"port">, server: PortServer) => void;
  } = {},
): PortServerReport {
  const debugPrivilege = enableDebugPrivilege();
  const typeIndex = portTypeIndex();
  const handles = systemHandles();
  const me = currentProcessId();
  const byPid = new Map<number, SystemHandle[]>();
  for (const h of handles) {
    if (h.typeIndex !== typeIndex || h.pid === me) continue;
    (byPid.get(h.pid) ?? byPid.set(h.pid, []).get(h.pid)!).push(h);
  }
  const servers = new Map<string, PortServer>();
  const unattributed: Record<string, number> = {};
  const miss = (why: string, n = 1) => void (unattributed[why] = (unattributed[why] ?? 0) + n);
  let portHandles = 0;
  for (const [pid, list] of byPid) {
    portHandles += list.length;
    if (pid === SYSTEM_PROCESS_ID) {
      miss(SYSTEM_PROCESS_SKIPPED, list.length);
      continue;
    }
    let process: NtHandle<"process">;
    try {
      process = openProcess(
        pid,
        ProcessAccess.PROCESS_DUP_HANDLE | ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION,
      );
    } catch (e) {
      miss(dupOpenRefusal(pid, e, openProcess, processProtection), list.length);
      continue;
    }
    using _process = process;
    let image: string | null = null;
    try {
      image = processImagePath(process).split("\\").at(-1) ?? null;
    } catch { /* image unknown */ }
    for (const h of list) {
      let dup: NtHandle<"port">;
      try {
        dup = duplicatePortHandle(process, h.handle, pid);
      } catch (e) {
        miss(`duplicate: ${reasonOf(e)}`);
        continue;
      }
      using _dup = dup;
      let name: string;
      try {
        name = objectName(dup);
      } catch (e) {
        miss(`name query: ${reasonOf(e)}`);
        continue;
      }
      if (!name) continue;
      servers.set(name.toLowerCase(), { pid, image });
      options.visit?.(name, dup, { pid, image });
    }
  }
  return { servers, debugPrivilege, portHandles, unattributed };
}
