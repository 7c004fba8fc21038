/**
 * The system handle table (`NtQuerySystemInformation(SystemExtendedHandleInformation)`): every
 * open handle of every process, with its owner, value, object address, access and type index.
 *
 * @module
 */

import type { NtHandle } from "./handle.ts";
import { ntdll } from "../ntdll.ts";
import { LAYOUTS } from "../layouts.ts";
import { currentProcessId } from "./processes.ts";
import { check, NTSTATUS, toUnsigned } from "../status.ts";

const INFO = LAYOUTS.SYSTEM_HANDLE_INFORMATION_EX;
const ENTRY = LAYOUTS.SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX;

/** `SystemExtendedHandleInformation`. */
export const SystemExtendedHandleInformation = 64;

/** One open handle, as the kernel lists it. */
export interface SystemHandle {
  /** The owning process id. */
  pid: number;
  /** The handle value in that process. */
  handle: bigint;
  /** The kernel address of the object (0 when hidden from the caller). */
  object: bigint;
  /** The granted access mask. */
  access: number;
  /** The object type index (the same type has the same index system-wide). */
  typeIndex: number;
  /** `OBJ_*` handle attributes. */
  attributes: number;
}

/**
 * Decodes a `SYSTEM_HANDLE_INFORMATION_EX` buffer; the count is clamped to what the buffer holds.
 *
 * @param buf the bytes the kernel returned
 */
export function decodeSystemHandles(buf: Uint8Array): SystemHandle[] {
  if (buf.byteLength < INFO.offsets.Handles) return [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const claimed = dv.getBigUint64(INFO.offsets.NumberOfHandles, true);
  const fits = Math.floor((buf.byteLength - INFO.offsets.Handles) / ENTRY.size);
  const count = Number(claimed < BigInt(fits) ? claimed : BigInt(fits));
  const out: SystemHandle[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const at = INFO.offsets.Handles + i * ENTRY.size;
    const o = ENTRY.offsets;
    out[i] = {
      pid: Number(dv.getBigUint64(at + o.UniqueProcessId, true)),
      handle: dv.getBigUint64(at + o.HandleValue, true),
      object: dv.getBigUint64(at + o.Object, true),
      access: dv.getUint32(at + o.GrantedAccess, true),
      typeIndex: dv.getUint16(at + o.ObjectTypeIndex, true),
      attributes: dv.getUint32(at + o.HandleAttributes, true),
    };
  }
  return out;
}

/**
 * Lists every handle in the system, growing the buffer while the kernel answers
 * `STATUS_INFO_LENGTH_MISMATCH` (the table changes between calls, so slack is added).
 *
 * @example
 * ```ts ignore
 * import { systemHandles } from "./system_handles.ts";
 * const mine = systemHandles().filter((h) => h.pid === Deno.pid);
 * ```
 */
export function systemHandles(): SystemHandle[] {
  let size = 1 << 16;
  const needed = new Uint32Array(1);
  for (let attempt = 0; attempt < 12; attempt++) {
    const buf = new Uint8Array(size);
    const status = ntdll().NtQuerySystemInformation(
      SystemExtendedHandleInformation,
      buf,
      size,
      needed,
    );
    if (toUnsigned(status) === NTSTATUS.STATUS_INFO_LENGTH_MISMATCH) {
      size = Math.max(size * 2, needed[0]! + 64 * ENTRY.size);
      continue;
    }
    check(status, "NtQuerySystemInformation", "SystemExtendedHandleInformation");
    return decodeSystemHandles(buf);
  }
  check(
    NTSTATUS.STATUS_INFO_LENGTH_MISMATCH,
    "NtQuerySystemInformation",
    "SystemExtendedHandleInformation",
  );
  return [];
}

/**
 * This process's own entries in the system handle table: all of them, or those of one object type
 * (a type index, as {@link handleTypeIndex} reads it). Counting one type tells the handles of the
 * kind a caller opened from those the runtime's threads open and close on their own.
 *
 * @param typeIndex keep only handles of this type
 */
export function ownHandles(typeIndex?: number): SystemHandle[] {
  const me = currentProcessId();
  return systemHandles().filter((h) =>
    h.pid === me && (typeIndex === undefined || h.typeIndex === typeIndex)
  );
}

/**
 * The object type index of one of this process's handles, read from its own table entry (so the
 * index of "Directory", "Process", "Port"... is learned from a handle of that type, not assumed:
 * it differs between Windows builds and Wine).
 *
 * @param handle an open handle of this process
 */
export function handleTypeIndex(handle: NtHandle): number {
  const entry = ownHandles().find((h) => h.handle === handle.unsafeValue);
  if (!entry) throw new Error(`${handle.what} is not in the system handle table`);
  return entry.typeIndex;
}
