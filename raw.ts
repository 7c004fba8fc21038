/**
 * deno-lpc/raw: what you need to call the DLLs directly. The symbol tables (`ntdll`,
 * `kernel32`, `advapi32`: lazy, loaded on first use, on Windows only), the compiler-checked
 * structure `LAYOUTS`, the NTSTATUS and Win32 error tables, the access and flag constants, the
 * kernel-message and debug-event codecs, and the seams a fake kernel plugs into (`LpcSymbols`,
 * `DirectorySource`, `RaiseSystem`). The concepts built on them are in the main entry point.
 *
 * Importing this module loads no library and has no side effect on any OS.
 *
 * @example Statuses, layouts and strings are plain data: this runs anywhere
 * ```ts
 * import { decodeUtf16, encodeUtf16, LAYOUTS, NTSTATUS, statusName } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * assertEquals(statusName(NTSTATUS.STATUS_ACCESS_DENIED), "STATUS_ACCESS_DENIED");
 * assertEquals(LAYOUTS.PORT_MESSAGE.size, 40);
 * assertEquals(decodeUtf16(encodeUtf16("LPC")), "LPC");
 * ```
 *
 * @module
 */

export { advapi32, type Advapi32Symbols, advapi32Symbols } from "./ffi/advapi32.ts";
export { kernel32, type Kernel32Symbols, kernel32Symbols } from "./ffi/kernel32.ts";
export { ntdll, type NtdllSymbols, ntdllSymbols, wineProbeSymbols } from "./ffi/ntdll.ts";
export { type Layout, LAYOUTS } from "./ffi/layouts.ts";
export {
  check,
  describeStatus,
  formatHex,
  NTSTATUS,
  type NtStatusName,
  ntSuccess,
  statusName,
  toUnsigned,
  WIN32_ERRORS,
  type Win32ErrorName,
  win32ErrorName,
} from "./ffi/status.ts";
export { decodeUtf16, encodeUtf16, readWideZ, wideString } from "./ffi/strings.ts";
export {
  checkPortMessageHeader,
  type ClientDiedMessage,
  decodeClientDied,
  decodeExceptionMessage,
  decodeExceptionRecord,
  decodeHardErrorMessage,
  decodePortMessageHeader,
  EXCEPTION_MAXIMUM_PARAMETERS,
  type ExceptionMessage,
  type ExceptionRecordInfo,
  type HardErrorMessage,
  HardErrorResponse,
  KERNEL_MESSAGE_LENGTH,
  LARGEST_KERNEL_MESSAGE,
  LPC_LEGACY_MAX_MESSAGE_LENGTH,
  LPC_MAX_CONNECTION_INFO_SIZE,
  LpcMessageFlag,
  messageFlagNames,
  messageTypeName,
  PORT_MAXIMUM_MESSAGE_LENGTH,
  PORT_MESSAGE_HEADER_SIZE,
  PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH,
  type PortMessageFault,
  PortMessageHeaderView,
  type PortMessageLimits,
  rewriteAsReply,
  setHardErrorResponse,
  setReturnedStatus,
  writePortMessage,
} from "./ffi/port_message.ts";
export type {
  ExceptionEventFields,
  HardErrorEventFields,
  ServerEvent,
} from "./ffi/server_events.ts";
export {
  type DebugEvent,
  DebugEventCode,
  type DebugEventKind,
  decodeDebugEvent,
} from "./ffi/debug_events.ts";
export {
  addressOf,
  checkWin32,
  checkWin32Pointer,
  currentProcess,
  currentThread,
  handleCell,
  type HandleCloser,
  pointerFrom,
} from "./ffi/nt/handle.ts";
export {
  ImpersonationLevel,
  type ImpersonationLevelName,
  OBJ_CASE_INSENSITIVE,
  OBJ_DONT_REPARSE,
  ObjectAttributes,
  type ObjectAttributesOptions,
  readCountedUnicodeString,
  securityQos,
  UNICODE_STRING_MAX_CHARS,
  UnicodeString,
} from "./ffi/nt/object_attributes.ts";
export {
  decodeDirectoryBuffer,
  type DirectoryEntry,
  type DirectorySource,
  kernelDirectorySource,
  PORT_TYPES,
} from "./ffi/nt/namespace.ts";
export {
  CREATE_NO_WINDOW,
  decodeProcessList,
  decodeThreadList,
  listProcessesAndThreads,
  openThread,
  ProcessAccess,
  type ProcessEntry,
  ProcessInfoClass,
  processProtection,
  PS_PROTECTED_TYPE_MASK,
  SystemProcessInformation,
  THREAD_STATE_WAITING,
  type ThreadEntry,
  WAIT_REASON_WR_LPC_REPLY,
} from "./ffi/nt/processes.ts";
export {
  decodeSystemHandles,
  SystemExtendedHandleInformation,
  type SystemHandle,
  systemHandles,
} from "./ffi/nt/system_handles.ts";
export {
  duplicatePortHandle,
  dupOpenRefusal,
  enableDebugPrivilege,
  objectName,
  portTypeIndex,
  SYSTEM_PROCESS_ID,
  SYSTEM_PROCESS_SKIPPED,
} from "./ffi/lpc/port_servers.ts";
export {
  PRIVILEGE_LUIDS,
  sidFromString,
  sidToString,
  TokenAccess,
  TokenInformationClass,
  WellKnownSid,
} from "./ffi/nt/tokens.ts";
export { Disposition, FileAccess, FileOptions } from "./ffi/nt/files.ts";
export {
  accessCheck,
  type AccessCheckResult,
  createLowBoxToken,
  decodeObjectTypeInformation,
  encodeGenericMapping,
  GenericAccess,
  type GenericMapping,
  mapGenericMask,
  type ObjectTypeFacts,
  objectTypeInformation,
  querySecurityDescriptor,
  READ_CONTROL_INFORMATION,
  sddlToSecurityDescriptor,
  securityDescriptorToSddl,
  SecurityInformation,
} from "./ffi/nt/security.ts";
export { type LpcSymbols } from "./ffi/lpc/port.ts";
export {
  ALPC_BASIC_INFORMATION_FLAG_MASK,
  ALPC_QUERY_PORT_ACCESS,
  ALPC_SERVER_INFORMATION_SIZES,
  ALPC_SERVER_INFORMATION_THREAD_ACCESS,
  AlpcAttributeFlags,
  AlpcInformationClass,
  AlpcMessageFlags,
  AlpcPortFlags,
  AlpcViewFlags,
} from "./ffi/alpc/constants.ts";
export {
  ALPC_ATTRIBUTE_FLAGS_ALL,
  alpcAttributeBufferSize,
  type AlpcAttributeName,
  alpcAttributeOffset,
  type ContextAttribute,
  type HandleAttribute,
  MessageAttributes,
  type SecurityAttribute,
  type TokenAttribute,
  type ViewAttribute,
} from "./ffi/alpc/attributes.ts";
export {
  ALPC_DEFAULT_MAX_MESSAGE_LENGTH,
  ALPC_MESSAGE_LENGTH_LIMITS,
  type AlpcMessageInit,
  alpcPortFlagNames,
  type AlpcServerInformation,
  type AlpcServerSession,
  type AlpcSymbols,
  decodeAlpcBasicInformation,
  decodeAlpcServerInformation,
  decodeAlpcServerSessionInformation,
  encodeAlpcMessage,
  encodeAlpcPortAttributes,
  queryAlpcServerInformation,
  queryAlpcServerSession,
} from "./ffi/alpc/port.ts";
export { ALPC_SERVER_RECEIVE_ATTRIBUTES } from "./ffi/alpc/server.ts";
export { type AlpcViewSymbols } from "./ffi/alpc/view.ts";
export { type AlpcSecuritySymbols } from "./ffi/alpc/security.ts";
export { RAISE_STUB, type RaiseSystem, type RaiseThread } from "./ffi/debug/raise_exception.ts";
export {
  PAGE_SIZE,
  Section,
  type SectionOptions,
  type SectionSymbols,
  viewRangeProblem,
} from "./ffi/nt/sections.ts";
export { PortView, type ViewOwner } from "./ffi/lpc/port_view.ts";
