/**
 * `DEBUG_EVENT` (what `WaitForDebugEvent` fills) decoded into plain data. Pure: tested on Linux
 * from recorded buffers; handles inside an event are reported, never closed, here.
 *
 * @module
 */

import { LAYOUTS } from "./layouts.ts";
import { decodeExceptionRecord } from "./port_message.ts";
import { describeStatus } from "./status.ts";

const DE = LAYOUTS.DEBUG_EVENT;
const EXC = LAYOUTS.EXCEPTION_DEBUG_INFO;
const CT = LAYOUTS.CREATE_THREAD_DEBUG_INFO;
const CP = LAYOUTS.CREATE_PROCESS_DEBUG_INFO;
const ET = LAYOUTS.EXIT_THREAD_DEBUG_INFO;
const EP = LAYOUTS.EXIT_PROCESS_DEBUG_INFO;
const LD = LAYOUTS.LOAD_DLL_DEBUG_INFO;
const UD = LAYOUTS.UNLOAD_DLL_DEBUG_INFO;
const OD = LAYOUTS.OUTPUT_DEBUG_STRING_INFO;

/** `dwDebugEventCode` values. */
export const DebugEventCode = {
  EXCEPTION: 1,
  CREATE_THREAD: 2,
  CREATE_PROCESS: 3,
  EXIT_THREAD: 4,
  EXIT_PROCESS: 5,
  LOAD_DLL: 6,
  UNLOAD_DLL: 7,
  OUTPUT_DEBUG_STRING: 8,
  RIP: 9,
} as const;

/** The name of a debug event kind. */
export type DebugEventKind = keyof typeof DebugEventCode | `UNKNOWN_${number}`;

const KINDS = new Map<number, DebugEventKind>(
  Object.entries(DebugEventCode).map(([k, v]) => [v, k as DebugEventKind]),
);

/** A decoded debug event. Addresses are hex strings; handles are raw values for the caller to close. */
export interface DebugEvent {
  /** The kind. */
  kind: DebugEventKind;
  /** `dwProcessId`. */
  pid: number;
  /** `dwThreadId`. */
  tid: number;
  /** CREATE_THREAD / CREATE_PROCESS: the start address (NULL for the fake events of an attach). */
  startAddress?: string;
  /** EXIT_THREAD / EXIT_PROCESS: the exit code. */
  exitCode?: number;
  /** EXCEPTION: the exception. */
  exception?: {
    code: number;
    name: string;
    address: string;
    firstChance: boolean;
    parameters: string[];
  };
  /** LOAD_DLL / UNLOAD_DLL / CREATE_PROCESS: the image base. */
  base?: string;
  /** CREATE_PROCESS / LOAD_DLL: a file handle the debugger must close (raw value, 0 if none). */
  fileHandle?: bigint;
  /** OUTPUT_DEBUG_STRING: where the string is in the debuggee, its length and width. */
  debugString?: { address: string; length: number; unicode: boolean };
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/**
 * Decodes one `DEBUG_EVENT` (176 bytes on x64).
 *
 * @example
 * ```ts ignore
 * import { decodeDebugEvent } from "./debug_events.ts";
 * const e = decodeDebugEvent(buffer); // { kind: "CREATE_THREAD", pid, tid, startAddress }
 * ```
 */
export function decodeDebugEvent(buf: Uint8Array): DebugEvent {
  if (buf.byteLength < DE.size) {
    throw new RangeError(`a DEBUG_EVENT needs ${DE.size} bytes, got ${buf.byteLength}`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const code = dv.getUint32(DE.offsets.dwDebugEventCode, true);
  const u = DE.offsets.u;
  const e: DebugEvent = {
    kind: KINDS.get(code) ?? `UNKNOWN_${code}`,
    pid: dv.getUint32(DE.offsets.dwProcessId, true),
    tid: dv.getUint32(DE.offsets.dwThreadId, true),
  };
  const q = (off: number) => dv.getBigUint64(u + off, true);
  switch (code) {
    case DebugEventCode.EXCEPTION: {
      const r = decodeExceptionRecord(buf, u + EXC.offsets.ExceptionRecord);
      e.exception = {
        code: r.code,
        name: describeStatus(r.code),
        address: hex(r.address),
        firstChance: dv.getUint32(u + EXC.offsets.dwFirstChance, true) !== 0,
        parameters: r.parameters.map(hex),
      };
      break;
    }
    case DebugEventCode.CREATE_THREAD:
      e.startAddress = hex(q(CT.offsets.lpStartAddress));
      break;
    case DebugEventCode.CREATE_PROCESS:
      e.startAddress = hex(q(CP.offsets.lpStartAddress));
      e.base = hex(q(CP.offsets.lpBaseOfImage));
      e.fileHandle = q(CP.offsets.hFile);
      break;
    case DebugEventCode.EXIT_THREAD:
      e.exitCode = dv.getUint32(u + ET.offsets.dwExitCode, true);
      break;
    case DebugEventCode.EXIT_PROCESS:
      e.exitCode = dv.getUint32(u + EP.offsets.dwExitCode, true);
      break;
    case DebugEventCode.LOAD_DLL:
      e.base = hex(q(LD.offsets.lpBaseOfDll));
      e.fileHandle = q(LD.offsets.hFile);
      break;
    case DebugEventCode.UNLOAD_DLL:
      e.base = hex(q(UD.offsets.lpBaseOfDll));
      break;
    case DebugEventCode.OUTPUT_DEBUG_STRING:
      e.debugString = {
        address: hex(q(OD.offsets.lpDebugStringData)),
        unicode: dv.getUint16(u + OD.offsets.fUnicode, true) !== 0,
        length: dv.getUint16(u + OD.offsets.nDebugStringLength, true),
      };
      break;
  }
  return e;
}
