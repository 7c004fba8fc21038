/**
 * ALPC ports: the symbols the ALPC code calls, `ALPC_PORT_ATTRIBUTES`, the ALPC message codec,
 * creating a connection port (`NtAlpcCreatePort`) and reading a port's basic information
 * (`NtAlpcQueryInformation`), which works on legacy LPC ports too: since Vista they are ALPC
 * ports (one object type, `ALPC Port`).
 *
 * Every function takes the ntdll symbols it calls as `options.nt` ({@link AlpcSymbols}, by
 * default the real ntdll), so the same code runs against Windows and against the fake kernel.
 *
 * @module
 */

import { handleCell, type HandleCloser, NtHandle } from "../nt/handle.ts";
import { requireSymbol } from "../_loader.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll, type NtdllSymbols } from "../ntdll.ts";
import {
  type ImpersonationLevelName,
  ObjectAttributes,
  type SecurityDescriptor,
  securityQos,
} from "../nt/object_attributes.ts";
import { type ClientId, writePortMessage } from "../port_message.ts";
export { relativeTimeout } from "../port_message.ts";
import { check, NtError, NTSTATUS, toUnsigned } from "../status.ts";
import { decodeUtf16 } from "../strings.ts";
import {
  ALPC_BASIC_INFORMATION_FLAG_MASK,
  ALPC_SERVER_INFORMATION_SIZES,
  AlpcInformationClass,
  AlpcPortFlags,
} from "./constants.ts";

const PA = LAYOUTS.ALPC_PORT_ATTRIBUTES;
const BI = LAYOUTS.ALPC_BASIC_INFORMATION;
const SI = LAYOUTS.ALPC_SERVER_INFORMATION;
const SSI = LAYOUTS.ALPC_SERVER_SESSION_INFORMATION;
const US = LAYOUTS.UNICODE_STRING;

/** The ntdll functions the ALPC code calls (the real table, or a fake with the same signatures). */
export type AlpcSymbols = Pick<
  NtdllSymbols,
  | "NtAlpcCreatePort"
  | "NtAlpcConnectPort"
  | "NtAlpcAcceptConnectPort"
  | "NtAlpcSendWaitReceivePort"
  | "NtAlpcDisconnectPort"
  | "NtAlpcQueryInformation"
  | "NtAlpcImpersonateClientOfPort"
  | "NtAlpcCreatePortSection"
  | "NtAlpcDeletePortSection"
  | "NtAlpcCreateSectionView"
  | "NtAlpcDeleteSectionView"
  | "NtAlpcCreateSecurityContext"
  | "NtAlpcDeleteSecurityContext"
  | "NtRegisterThreadTerminatePort"
  | "NtSetInformationThread"
  | "NtOpenThreadToken"
  | "NtClose"
>;

/** How to close handles the ALPC code opened through `nt`. */
export function alpcCloser(nt: Pick<AlpcSymbols, "NtClose">): HandleCloser {
  return (h) => nt.NtClose(h);
}

/**
 * The smallest and largest `MaxMessageLength` a port may have (AlpcpValidateAndSetPortAttributes.c
 * refuses below 0x28, the header, and above 0xFFFF with STATUS_INVALID_PARAMETER).
 */
export const ALPC_MESSAGE_LENGTH_LIMITS = { min: LAYOUTS.PORT_MESSAGE.size, max: 0xffff } as const;

/** The `MaxMessageLength` the toolkit asks for unless told otherwise. */
export const ALPC_DEFAULT_MAX_MESSAGE_LENGTH = 0x1000;

/** The port flags a user-mode caller may set (AlpcpValidateAndSetPortAttributes.c). */
const USER_PORT_FLAGS = ALPC_BASIC_INFORMATION_FLAG_MASK & ~AlpcPortFlags.SYSTEM_PROCESS;

/** `ALPC_PORT_ATTRIBUTES`, as options (the kernel's own defaults apply to what is left out). */
export interface AlpcPortAttributes {
  /**
   * `Flags` (`AlpcPortFlags`). Only bits of `0x3FF0000` are kept by the kernel and
   * `SYSTEM_PROCESS` is refused from user mode (AlpcpValidateAndSetPortAttributes.c): both are
   * refused here with a `RangeError`.
   */
  flags?: number;
  /** `SecurityQos.ImpersonationLevel` (default `Impersonation`, dynamic tracking). */
  impersonationLevel?: ImpersonationLevelName;
  /** `SecurityQos.EffectiveOnly` (default false). */
  effectiveOnly?: boolean;
  /** The largest `TotalLength`, header included: 0x28..0xFFFF (default 0x1000). */
  maxMessageLength?: number;
  /** `MemoryBandwidth` (default 0). */
  memoryBandwidth?: number;
  /** `MaxPoolUsage` (default 0x4000 as the kernel's). */
  maxPoolUsage?: number;
  /** `MaxSectionSize` (default 0x4000, the kernel's default for a port made without attributes). */
  maxSectionSize?: number;
  /**
   * `MaxViewSize` (default 0: no limit, the kernel's default for a port made without attributes,
   * AlpcpValidateAndSetPortAttributes.c). A non-zero one bounds every view made for the port:
   * AlpcpCreateView.c refuses a larger one with STATUS_QUOTA_EXCEEDED, for `NtAlpcCreateSectionView`
   * and for a view a message delivers to it (which then arrives without its view).
   */
  maxViewSize?: number;
  /** `MaxTotalSectionSize` (default 0x20000 as the kernel's). */
  maxTotalSectionSize?: number;
  /** `DupObjectTypes` (`ALPC_PORFLG_OBJECT_TYPE_*`; the kernel clears bit 0x2). */
  dupObjectTypes?: number;
}

/**
 * Encodes `ALPC_PORT_ATTRIBUTES` (72 bytes), refusing what the kernel would refuse.
 *
 * @param attrs the options
 * @returns the struct, for a `PALPC_PORT_ATTRIBUTES` parameter
 * @example A port for 8 KiB messages whose clients may be impersonated
 * ```ts
 * import { AlpcPortFlags, encodeAlpcPortAttributes, LAYOUTS } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * const pa = encodeAlpcPortAttributes({
 *   flags: AlpcPortFlags.ALLOW_IMPERSONATION,
 *   maxMessageLength: 8192,
 * });
 * const dv = new DataView(pa.buffer);
 * assertEquals(dv.getUint32(LAYOUTS.ALPC_PORT_ATTRIBUTES.offsets.Flags, true), 0x10000);
 * assertThrows(() => encodeAlpcPortAttributes({ maxMessageLength: 0x10000 }), RangeError);
 * ```
 */
export function encodeAlpcPortAttributes(attrs: AlpcPortAttributes = {}): Uint8Array<ArrayBuffer> {
  const flags = (attrs.flags ?? 0) >>> 0;
  if ((flags & ~USER_PORT_FLAGS) !== 0) {
    throw new RangeError(
      `port flags 0x${flags.toString(16)}: only bits of 0x${
        USER_PORT_FLAGS.toString(16)
      } are allowed from user mode (the kernel drops others, and refuses SYSTEM_PROCESS 0x100000)`,
    );
  }
  const max = attrs.maxMessageLength ?? ALPC_DEFAULT_MAX_MESSAGE_LENGTH;
  const { min, max: most } = ALPC_MESSAGE_LENGTH_LIMITS;
  if (!Number.isInteger(max) || max < min || max > most) {
    throw new RangeError(
      `maxMessageLength ${max} outside 0x${min.toString(16)}..0x${most.toString(16)}`,
    );
  }
  const sizes: [keyof typeof PA.offsets, number | undefined, number][] = [
    ["MemoryBandwidth", attrs.memoryBandwidth, 0],
    ["MaxPoolUsage", attrs.maxPoolUsage, 0x4000],
    ["MaxSectionSize", attrs.maxSectionSize, 0x4000],
    ["MaxViewSize", attrs.maxViewSize, 0],
    ["MaxTotalSectionSize", attrs.maxTotalSectionSize, 0x20000],
  ];
  const b = new Uint8Array(PA.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(PA.offsets.Flags, flags, true);
  b.set(
    securityQos(attrs.impersonationLevel ?? "Impersonation", true, attrs.effectiveOnly ?? false),
    PA.offsets.SecurityQos,
  );
  dv.setBigUint64(PA.offsets.MaxMessageLength, BigInt(max), true);
  for (const [field, value, fallback] of sizes) {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${field} ${v} is not a size`);
    dv.setBigUint64(PA.offsets[field], BigInt(v), true);
  }
  dv.setUint32(PA.offsets.DupObjectTypes, attrs.dupObjectTypes ?? 0, true);
  return b;
}

/** The `MaxMessageLength` of encoded port attributes. */
export function portAttributesMaxMessage(pa: Uint8Array): number {
  return Number(
    new DataView(pa.buffer, pa.byteOffset).getBigUint64(PA.offsets.MaxMessageLength, true),
  );
}

/** Options for {@link createAlpcPort}. */
export interface AlpcPortOptions extends AlpcPortAttributes {
  /** Who may connect (`PORT_CONNECT` = 0x1 in the DACL). */
  securityDescriptor?: SecurityDescriptor;
  /** The ntdll symbols (default: the real ones; a fake kernel passes its own). */
  nt?: AlpcSymbols;
}

/**
 * Creates an ALPC connection port (`NtAlpcCreatePort` with `ALPC_PORT_ATTRIBUTES`).
 *
 * @param name the port's path (e.g. `\RPC Control\my-port`), or `null` for an unnamed port
 * @param options port attributes, who may connect, and `nt`
 * @returns the connection port, to give to an {@link AlpcServer} (which then owns it)
 * @example Bad attributes are refused before any call (the call itself needs Windows: not run here)
 * ```ts ignore
 * import { createAlpcPort } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * assertThrows(() => createAlpcPort(null, { maxMessageLength: 0x27 }), RangeError);
 * using port = createAlpcPort("\\RPC Control\\demo-alpc");
 * assertEquals(port.kind, "connection-port");
 * ```
 */
export function createAlpcPort(
  name: string | null,
  options: AlpcPortOptions = {},
): NtHandle<"connection-port"> {
  const nt = options.nt ?? ntdll();
  const pa = encodeAlpcPortAttributes(options);
  const create = requireSymbol(nt.NtAlpcCreatePort, "ntdll!NtAlpcCreatePort");
  const oa = new ObjectAttributes(
    name,
    options.securityDescriptor ? { securityDescriptor: options.securityDescriptor } : {},
  );
  const cell = handleCell();
  check(create(cell, oa.struct, pa), "NtAlpcCreatePort", name ?? "(unnamed)");
  return NtHandle.fromCell(
    "connection-port",
    cell,
    `ALPC port ${name ?? "(unnamed)"}`,
    alpcCloser(nt),
  );
}

/** `ALPC_BASIC_INFORMATION`, decoded. */
export interface AlpcBasicInformation {
  /** The port's flags as the kernel shows them (masked with `0x3FF0000`). */
  flags: number;
  /** The names of the `AlpcPortFlags` bits set in `flags`, and `0x…` for unnamed bits. */
  flagNames: string[];
  /** `SequenceNo`. */
  sequenceNo: number;
  /**
   * `PortContext`: on a server communication port, the context given at accept (or, when none
   * was given, the port's own handle value: AlpcpAcceptConnectPort.c).
   */
  portContext: bigint;
}

/** Names the `AlpcPortFlags` bits of a flag word (unnamed bits as hex). */
export function alpcPortFlagNames(flags: number): string[] {
  const names: string[] = [];
  let rest = flags >>> 0;
  for (const [name, bit] of Object.entries(AlpcPortFlags)) {
    if ((rest & bit) !== 0) {
      names.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  for (let bit = 1; rest !== 0; bit = (bit * 2) >>> 0) {
    if ((rest & bit) !== 0) {
      names.push(`0x${bit.toString(16)}`);
      rest = (rest & ~bit) >>> 0;
    }
  }
  return names;
}

/** Decodes a 16-byte `ALPC_BASIC_INFORMATION`. */
export function decodeAlpcBasicInformation(buf: Uint8Array): AlpcBasicInformation {
  if (buf.byteLength < BI.size) {
    throw new RangeError(`ALPC_BASIC_INFORMATION needs ${BI.size} bytes, got ${buf.byteLength}`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const flags = dv.getUint32(BI.offsets.Flags, true);
  return {
    flags,
    flagNames: alpcPortFlagNames(flags),
    sequenceNo: dv.getUint32(BI.offsets.SequenceNo, true),
    portContext: dv.getBigUint64(BI.offsets.PortContext, true),
  };
}

/**
 * A port's basic information (`NtAlpcQueryInformation`, `AlpcBasicInformation`), for an ALPC
 * port or a legacy LPC one (the same object type). What a connection port shows: the kernel sets
 * `ALLOW_LPC_REQUESTS` (0x20000) on every connection port, legacy or not, and on a client port
 * only for a legacy connect (AlpcpValidateAndSetPortAttributes.c), and masks the flags with
 * `0x3FF0000` (AlpcpPortQueryBasicInfo.c), so the kernel-only LPC-mode bit 0x1000 never shows.
 *
 * @param port any port handle (it needs `READ_CONTROL`, which a creator's handle has)
 * @param options `nt`, the symbols
 * @returns the decoded information
 * @example The decoder runs anywhere (the call needs Windows)
 * ```ts
 * import { decodeAlpcBasicInformation } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const buf = new Uint8Array(16);
 * new DataView(buf.buffer).setUint32(0, 0x30000, true);
 * assertEquals(decodeAlpcBasicInformation(buf).flagNames, [
 *   "ALLOW_IMPERSONATION",
 *   "ALLOW_LPC_REQUESTS",
 * ]);
 * ```
 */
export function queryAlpcBasicInformation(
  port: NtHandle<"port" | "connection-port">,
  options: { nt?: Pick<AlpcSymbols, "NtAlpcQueryInformation"> } = {},
): AlpcBasicInformation {
  const nt = options.nt ?? ntdll();
  const query = requireSymbol(nt.NtAlpcQueryInformation, "ntdll!NtAlpcQueryInformation");
  const buf = new Uint8Array(BI.size);
  const returned = new Uint32Array(1);
  check(
    query(
      port.unsafePointer,
      AlpcInformationClass.AlpcBasicInformation,
      buf,
      buf.byteLength,
      returned,
    ),
    "NtAlpcQueryInformation",
    `AlpcBasicInformation of ${port.what}`,
  );
  return decodeAlpcBasicInformation(buf);
}

/** `ALPC_SERVER_SESSION_INFORMATION`, decoded: who owns the port a port is connected to. */
export interface AlpcServerSession {
  /** `SessionId`: the owner process's session. */
  sessionId: number;
  /** `ProcessId`: the owner process's id. */
  processId: number;
}

/** Decodes an 8-byte `ALPC_SERVER_SESSION_INFORMATION`. */
export function decodeAlpcServerSessionInformation(buf: Uint8Array): AlpcServerSession {
  if (buf.byteLength < SSI.size) {
    throw new RangeError(
      `ALPC_SERVER_SESSION_INFORMATION needs ${SSI.size} bytes, got ${buf.byteLength}`,
    );
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    sessionId: dv.getUint32(SSI.offsets.SessionId, true),
    processId: dv.getUint32(SSI.offsets.ProcessId, true),
  };
}

/**
 * The session and process of the owner of the port `port` is connected to
 * (`NtAlpcQueryInformation(port, AlpcServerSessionInformation)`, Windows 10 19H2 and later), with
 * no handle duplicated. What it names (AlpcpPortQueryServerSessionInfo.c through
 * AlpcpReferenceConnectedPort.c): for a client communication port, the server's process (the
 * owner of its server communication port); for a server communication port, the client's; for a
 * connection port, the port itself, so its creator, the server.
 *
 * Throws `NtError` otherwise: `STATUS_INVALID_PARAMETER` when there is no connected port (the
 * other end was never accepted or is gone) or its owner has let it go (AlpcpDoPortCleanup.c marks
 * the owner released), and the same status on a Windows that does not know class 12
 * (NtAlpcQueryInformation.c refuses an unknown class so); `STATUS_ACCESS_DENIED` without
 * `READ_CONTROL` on the handle.
 *
 * @param port any port handle with `READ_CONTROL` (a creator's or connector's handle has it)
 * @param options `nt`, the symbols
 * @returns the owner's session and process id
 * @example The decoder runs anywhere (the call needs Windows)
 * ```ts
 * import { decodeAlpcServerSessionInformation } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const buf = new Uint8Array(8);
 * new DataView(buf.buffer).setUint32(0, 1, true); // SessionId
 * new DataView(buf.buffer).setUint32(4, 4242, true); // ProcessId
 * assertEquals(decodeAlpcServerSessionInformation(buf), { sessionId: 1, processId: 4242 });
 * ```
 * @example Who serves the port a client is connected to (Windows only: not run here)
 * ```ts ignore
 * import { AlpcClient } from "@deno-lpc/deno-lpc";
 * import { queryAlpcServerSession } from "@deno-lpc/deno-lpc/raw";
 *
 * using client = AlpcClient.connect("\\RPC Control\\some-alpc-server");
 * console.log(queryAlpcServerSession(client.port).processId); // the server's pid
 * ```
 */
export function queryAlpcServerSession(
  port: NtHandle<"port" | "connection-port">,
  options: { nt?: Pick<AlpcSymbols, "NtAlpcQueryInformation"> } = {},
): AlpcServerSession {
  const nt = options.nt ?? ntdll();
  const query = requireSymbol(nt.NtAlpcQueryInformation, "ntdll!NtAlpcQueryInformation");
  const buf = new Uint8Array(SSI.size);
  const returned = new Uint32Array(1);
  const status = query(
    port.unsafePointer,
    AlpcInformationClass.AlpcServerSessionInformation,
    buf,
    buf.byteLength,
    returned,
  );
  const context = `AlpcServerSessionInformation of ${port.what}`;
  if (toUnsigned(status) === NTSTATUS.STATUS_INVALID_PARAMETER) {
    throw new NtError(
      "NtAlpcQueryInformation",
      status,
      "ntstatus",
      `${context} (no connected port with a live owner, or a Windows before 10 19H2)`,
    );
  }
  check(status, "NtAlpcQueryInformation", context);
  return decodeAlpcServerSessionInformation(buf);
}

/**
 * `ALPC_SERVER_INFORMATION`, decoded: whether a thread waits for a reply on a port, and if so the
 * process at the port's other end and the connection port's name.
 */
export type AlpcServerInformation =
  | { blocked: false }
  | {
    blocked: true;
    /**
     * `ConnectedProcessId`: for a thread whose request went out on a client port, the server
     * (the connection port's owner); for a server thread waiting on its own request to a client,
     * that client (AlpcpPortQueryServerInfo.c).
     */
    connectedProcessId: number;
    /** `ConnectionPortName`: the connection port's full object name (`""` for an unnamed port). */
    connectionPortName: string;
  };

/**
 * Decodes the `ALPC_SERVER_INFORMATION` output of `AlpcServerInformation`: the 32-byte structure
 * and the name the kernel copies right after it (AlpcpPortQueryServerInfo.c points
 * `ConnectionPortName.Buffer` at offset 32 of the caller's buffer, so the name is read from there).
 * A `ThreadBlocked` of 0 decodes as `{ blocked: false }`.
 */
export function decodeAlpcServerInformation(buf: Uint8Array): AlpcServerInformation {
  if (buf.byteLength < SI.size) {
    throw new RangeError(`ALPC_SERVER_INFORMATION needs ${SI.size} bytes, got ${buf.byteLength}`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint8(SI.offsets.ThreadBlocked) === 0) return { blocked: false };
  const name = SI.offsets.ConnectionPortName;
  const length = dv.getUint16(name + US.offsets.Length, true);
  if (length % 2 !== 0 || SI.size + length > buf.byteLength) {
    throw new RangeError(
      `ALPC_SERVER_INFORMATION: a ${length}-byte ConnectionPortName does not fit after the ` +
        `structure in ${buf.byteLength} bytes`,
    );
  }
  return {
    blocked: true,
    connectedProcessId: Number(dv.getBigUint64(SI.offsets.ConnectedProcessId, true)),
    connectionPortName: decodeUtf16(buf.subarray(SI.size, SI.size + length)),
  };
}

/** The name room `queryAlpcServerInformation` starts with (the kernel says when it needs more). */
const SERVER_INFORMATION_FIRST_SIZE = ALPC_SERVER_INFORMATION_SIZES.fixed + 512;

/**
 * Which port a thread is blocked on (`NtAlpcQueryInformation(NULL, AlpcServerInformation,
 * {ThreadHandle})`; AlpcpPortQueryServerInfo.c): the kernel looks for a message the thread waits
 * on in every port's queues (AlpcpReferenceMessageByWaitingThread.c) and, when it is the message
 * the thread is waiting for a reply to, answers with the process at the other end and the
 * connection port's name. A thread that waits on no port (the search's `STATUS_NOT_FOUND` is
 * turned into success) gives `{ blocked: false }`.
 *
 * The buffer is retried with the size the kernel asks for when the name does not fit
 * (`STATUS_INFO_LENGTH_MISMATCH` with the size in `ReturnLength`). Throws `NtError` otherwise:
 * `STATUS_ACCESS_DENIED` when the handle lacks `THREAD_QUERY_INFORMATION`
 * (`ALPC_SERVER_INFORMATION_THREAD_ACCESS`), `STATUS_OBJECT_TYPE_MISMATCH` for a handle that is
 * not a thread.
 *
 * @param thread a thread handle with `THREAD_QUERY_INFORMATION`
 * @param options `nt`, the symbols
 * @returns whether it is blocked, and on what
 * @example The decoder runs anywhere (the call needs Windows)
 * ```ts
 * import { decodeAlpcServerInformation, encodeUtf16 } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const name = encodeUtf16("\\RPC Control\\demo");
 * const buf = new Uint8Array(32 + name.byteLength);
 * const dv = new DataView(buf.buffer);
 * dv.setUint8(0, 1); // ThreadBlocked
 * dv.setBigUint64(8, 4242n, true); // ConnectedProcessId
 * dv.setUint16(16, name.byteLength, true); // ConnectionPortName.Length
 * buf.set(name, 32); // where the kernel copies the name
 * assertEquals(decodeAlpcServerInformation(buf), {
 *   blocked: true,
 *   connectedProcessId: 4242,
 *   connectionPortName: "\\RPC Control\\demo",
 * });
 * assertEquals(decodeAlpcServerInformation(new Uint8Array(32)), { blocked: false });
 * ```
 */
export function queryAlpcServerInformation(
  thread: NtHandle<"thread">,
  options: { nt?: Pick<AlpcSymbols, "NtAlpcQueryInformation"> } = {},
): AlpcServerInformation {
  const nt = options.nt ?? ntdll();
  const query = requireSymbol(nt.NtAlpcQueryInformation, "ntdll!NtAlpcQueryInformation");
  const context = `AlpcServerInformation of ${thread.what}`;
  let size: number = SERVER_INFORMATION_FIRST_SIZE;
  // The name can change between two calls (the thread moves on): a few tries, then the error.
  for (let attempt = 0;; attempt++) {
    const buf = new Uint8Array(size);
    new DataView(buf.buffer).setBigUint64(SI.offsets.ThreadHandle, thread.unsafeValue, true);
    const returned = new Uint32Array(1);
    const status = query(null, AlpcInformationClass.AlpcServerInformation, buf, size, returned);
    const needed = returned[0]!;
    if (
      toUnsigned(status) === NTSTATUS.STATUS_INFO_LENGTH_MISMATCH && needed > size && attempt < 3
    ) {
      size = needed;
      continue;
    }
    check(status, "NtAlpcQueryInformation", context);
    return decodeAlpcServerInformation(buf);
  }
}

/** What {@link encodeAlpcMessage} writes. */
export interface AlpcMessageInit {
  /** The payload. */
  data?: Uint8Array;
  /** `MessageId`: 0 for a new message, the request's for a reply. */
  messageId?: number;
  /** `CallbackId` (a reply echoes the request's). */
  callbackId?: number;
  /**
   * `ClientId`: only a reply may carry one (a new message with a non-zero ClientId is refused
   * with STATUS_INVALID_MESSAGE: AlpcpSendMessage.c).
   */
  clientId?: ClientId;
  /** The largest `TotalLength` allowed (the port's `MaxMessageLength`; at most 0xFFFF). */
  maxTotalLength?: number;
  /** The buffer's size, at least the message (default: exactly the message). */
  capacity?: number;
}

/**
 * Encodes a `PORT_MESSAGE` for ALPC: `TotalLength = DataLength + 40` exactly, as
 * AlpcpValidateMessage.c wants for a non-LPC port, `Type` 0 (the kernel sets it from the flags and
 * MessageId: AlpcpSendMessage.c), up to 0xFFFF bytes in all.
 *
 * @param init the payload and header fields
 * @returns the message (a `capacity`-byte buffer when given, e.g. to receive a reply into)
 * @example
 * ```ts
 * import { encodeAlpcMessage } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * const m = encodeAlpcMessage({ data: new Uint8Array(1000) });
 * assertEquals(new DataView(m.buffer).getUint16(2, true), 1040); // TotalLength
 * assertThrows(() => encodeAlpcMessage({ data: new Uint8Array(100), maxTotalLength: 128 }));
 * ```
 */
export function encodeAlpcMessage(init: AlpcMessageInit): Uint8Array<ArrayBuffer> {
  const ceiling = ALPC_MESSAGE_LENGTH_LIMITS.max;
  const max = Math.min(init.maxTotalLength ?? ceiling, ceiling);
  return writePortMessage({ ...init, type: 0 }, { max, ceiling, capacity: init.capacity });
}
