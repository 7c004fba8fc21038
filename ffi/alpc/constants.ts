/**
 * ALPC's numbers: message flags, message-attribute flags, port flags and information classes
 * (phnt's names, ntlpcapi.h), each checked against the Windows 11 kernel function that tests it
 * (the `ntoskrnl/` pseudocode files named beside them).
 *
 * @module
 */

import { LAYOUTS } from "../layouts.ts";

/**
 * Flags of `NtAlpcSendWaitReceivePort` (and of `NtAlpcConnectPort`). NtAlpcSendWaitReceivePort.c
 * keeps only `Flags & 0xFFFF0000`. A synchronous request needs a send message (else `0xC00000F0`,
 * STATUS_INVALID_PARAMETER_2) and a receive buffer (else `0xC0000705`), and may not carry
 * {@link AlpcMessageFlags.RELEASE_MESSAGE} or `0x1000000` (`0xC00000F0`).
 */
export const AlpcMessageFlags = {
  /** Release the message just received (a reply-less datagram's id, or a view). */
  RELEASE_MESSAGE: 0x10000,
  /** Send a request and wait for its reply in one call (AlpcpProcessSynchronousRequest.c). */
  SYNC_REQUEST: 0x20000,
  /** Track port references (NtAlpcSendWaitReceivePort.c: AlpcpTrackPortReferences). */
  TRACK_PORT_REFERENCES: 0x40000,
  /** Wait in user mode (alertable waits can return `STATUS_USER_APC`). */
  WAIT_USER_MODE: 0x100000,
  /** Wait alertably. */
  WAIT_ALERTABLE: 0x200000,
} as const;

/**
 * Message attributes, in the order they are laid out after the `ALPC_MESSAGE_ATTRIBUTES` header
 * (AlpcGetHeaderSize.c adds their sizes in this order: 24, 32, 32, 24, 24, 8, 8 bytes;
 * AlpcGetMessageAttribute.c finds one by the sizes of the flags above it).
 */
export const AlpcAttributeFlags = {
  SECURITY: 0x80000000,
  VIEW: 0x40000000,
  CONTEXT: 0x20000000,
  HANDLE: 0x10000000,
  TOKEN: 0x08000000,
  DIRECT: 0x04000000,
  WORK_ON_BEHALF: 0x02000000,
} as const;

/** `ALPC_PORT_ATTRIBUTES.Flags` (phnt `ALPC_PORFLG_*`). */
export const AlpcPortFlags = {
  /** The server may impersonate its clients. */
  ALLOW_IMPERSONATION: 0x10000,
  /** The port accepts legacy LPC requests. */
  ALLOW_LPC_REQUESTS: 0x20000,
  /** The port can be waited on. */
  WAITABLE_PORT: 0x40000,
  /** Handles may be duplicated through the handle attribute. */
  ALLOW_DUP_OBJECT: 0x80000,
  /** The port belongs to a system process. */
  SYSTEM_PROCESS: 0x100000,
} as const;

/** `ALPC_DATA_VIEW_ATTR.Flags` (phnt `ALPC_VIEWFLG_*`), as a receiver sees them. */
export const AlpcViewFlags = {
  /**
   * A secure view: AlpcpExposeViewAttribute.c reports it for a view whose region is secure. The
   * kernel guards such a region's writes as it passes between the sides
   * (AlpcpExposeViewAttributeInSenderContext.c: MmSecureVirtualMemoryAgainstWrites on the other
   * mapping) and maps a secure section for a receiver with MmMapSecureViewOfSection
   * (AlpcpCreateView.c), not the read-write MmMapViewOfSection of any other view; the library
   * does not write one it received.
   */
  SECURE_VIEW: 0x40000,
} as const;

/**
 * `ALPC_PORT_INFORMATION_CLASS` values NtAlpcQueryInformation.c dispatches on: 0 basic
 * (AlpcpPortQueryBasicInfo.c), 3 the connected SID (AlpcpPortQueryConnectedSidInfo.c), 4 the
 * server of a thread's wait (AlpcpPortQueryServerInfo.c), 11 wait for port references
 * (AlpcpWaitForPortReferences.c), 12 the server session (AlpcpPortQueryServerSessionInfo.c);
 * anything else is `STATUS_INVALID_PARAMETER`.
 */
export const AlpcInformationClass = {
  AlpcBasicInformation: 0,
  AlpcConnectedSIDInformation: 3,
  /**
   * The port a thread waits on (AlpcpPortQueryServerInfo.c): the port handle must be NULL, the
   * buffer's first 8 bytes hold the thread's handle, and out comes `ALPC_SERVER_INFORMATION`.
   */
  AlpcServerInformation: 4,
  AlpcWaitForPortReferences: 11,
  /**
   * The session and process id of the owner of a port's connected port
   * (AlpcpPortQueryServerSessionInfo.c, AlpcpReferenceConnectedPort.c); `ALPC_SERVER_SESSION_INFORMATION`.
   */
  AlpcServerSessionInformation: 12,
} as const;

/**
 * The flag bits `NtAlpcQueryInformation(AlpcBasicInformation)` can show: AlpcpPortQueryBasicInfo.c
 * copies the port object's flags masked with `0x3FF0000`.
 */
export const ALPC_BASIC_INFORMATION_FLAG_MASK = 0x3FF0000;

/**
 * The access `NtAlpcQueryInformation` references a port handle with, for every class that takes
 * one: `READ_CONTROL` (NtAlpcQueryInformation.c, `ObReferenceObjectByHandle(Handle, 0x20000,
 * AlpcPortObjectType, ...)`).
 */
export const ALPC_QUERY_PORT_ACCESS = 0x20000;

/**
 * The access `AlpcServerInformation` references its thread handle with: `THREAD_QUERY_INFORMATION`
 * (0x40; AlpcpPortQueryServerInfo.c). `THREAD_QUERY_LIMITED_INFORMATION` (0x800) is not enough.
 */
export const ALPC_SERVER_INFORMATION_THREAD_ACCESS = 0x40;

/**
 * The sizes `AlpcServerInformation` (class 4) works with (AlpcpPortQueryServerInfo.c): fewer than
 * `minimum` bytes (room for the input's thread handle) is `STATUS_INVALID_PARAMETER`; the answer
 * needs `fixed` bytes (the x64 `ALPC_SERVER_INFORMATION`) plus the port name's `MaximumLength`,
 * which the kernel copies right after the structure and points `ConnectionPortName.Buffer` at;
 * fewer is `STATUS_INFO_LENGTH_MISMATCH` with the needed size in `ReturnLength`.
 */
export const ALPC_SERVER_INFORMATION_SIZES = {
  minimum: 8,
  fixed: LAYOUTS.ALPC_SERVER_INFORMATION.size,
} as const;
