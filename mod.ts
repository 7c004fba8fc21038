/**
 * deno-lpc: Windows NT LPC (Local Procedure Call) from Deno, for people who study Windows
 * internals and audit its attack surface.
 *
 * The toolkit binds `ntdll.dll` (plus `kernel32.dll` and `advapi32.dll` where Win32 is the right
 * tool) through `Deno.dlopen`, with exact Windows x64 widths and layouts, and wraps the calls in
 * small typed helpers: disposable handles, NTSTATUS errors with names and hints, UTF-16 strings,
 * object attributes, security descriptors from SDDL and the `PORT_MESSAGE` codec.
 *
 * Importing this module loads no library and has no side effect on any OS; each DLL is opened on
 * first use, on Windows only. Run scripts with `--allow-ffi` (unscoped: a scoped grant cannot load
 * a DLL by bare name, and FFI is full access in any case).
 *
 * ```ts
 * import { decodePortMessage, encodePortMessage, LpcMessageType, NtError } from "./mod.ts";
 *
 * const wire = encodePortMessage({ data: new TextEncoder().encode("hello") });
 * const { header, data } = decodePortMessage(wire);
 * console.log(header.totalLength, new TextDecoder().decode(data)); // 45 "hello"
 * console.log(LpcMessageType.LPC_CLIENT_DIED); // 6
 * console.log(new NtError("NtConnectPort", 0xC0000041).message);
 * ```
 *
 * @module
 */

export { assertWindows, isWindows, requireSymbol } from "./ffi/_loader.ts";
export {
  ntdll,
  type NtdllSymbols,
  ntdllSymbols,
  wineProbeSymbols,
  wineVersion,
} from "./ffi/ntdll.ts";
export { kernel32, type Kernel32Symbols, kernel32Symbols } from "./ffi/kernel32.ts";
export { advapi32, type Advapi32Symbols, advapi32Symbols } from "./ffi/advapi32.ts";
export { type Layout, LAYOUTS, type StructName } from "./ffi/layouts.ts";
export {
  check,
  describeStatus,
  type ErrorKind,
  formatHex,
  isUnsupported,
  NtError,
  NTSTATUS,
  type NtStatusName,
  ntSuccess,
  statusName,
  toUnsigned,
  UnsupportedError,
  WIN32_ERRORS,
  type Win32ErrorName,
  win32ErrorName,
} from "./ffi/status.ts";
export { decodeUtf16, encodeUtf16, readWide, readWideZ, wideString } from "./ffi/strings.ts";
export {
  addressOf,
  checkWin32,
  checkWin32Pointer,
  currentProcess,
  currentThread,
  handleCell,
  NtHandle,
  pointerFrom,
  procAddress,
} from "./ffi/nt/handle.ts";
export {
  ImpersonationLevel,
  type ImpersonationLevelName,
  OBJ_CASE_INSENSITIVE,
  ObjectAttributes,
  type ObjectAttributesOptions,
  readCountedUnicodeString,
  SecurityDescriptor,
  securityQos,
  UNICODE_STRING_MAX_CHARS,
  UnicodeString,
} from "./ffi/nt/object_attributes.ts";
export {
  type ClientDiedMessage,
  type ClientId,
  decodeClientDied,
  decodeExceptionMessage,
  decodeExceptionRecord,
  decodeHardErrorMessage,
  decodePortMessage,
  decodePortMessageHeader,
  encodePortMessage,
  EXCEPTION_MAXIMUM_PARAMETERS,
  type ExceptionMessage,
  type ExceptionRecordInfo,
  fileTimeToDate,
  type HardErrorMessage,
  HardErrorResponse,
  KERNEL_MESSAGE_LENGTH,
  LARGEST_KERNEL_MESSAGE,
  LPC_LEGACY_MAX_MESSAGE_LENGTH,
  LPC_MAX_CONNECTION_INFO_SIZE,
  LpcMessageFlag,
  LpcMessageType,
  MAXIMUM_HARDERROR_PARAMETERS,
  messageFlagNames,
  messageTypeName,
  PORT_MAXIMUM_MESSAGE_LENGTH,
  PORT_MESSAGE_HEADER_SIZE,
  PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH,
  type PortMessage,
  PortMessageError,
  type PortMessageFault,
  type PortMessageHeader,
  type PortMessageInit,
  rewriteAsReply,
  setHardErrorResponse,
  setReturnedStatus,
} from "./ffi/port_message.ts";
export {
  alpcUnavailable,
  exceptionPortUnavailable,
  lpcUnavailable,
} from "./ffi/nt/capabilities.ts";
export {
  decodeDirectoryBuffer,
  DirectoryAccess,
  type DirectoryEntry,
  type DirectorySource,
  joinObjectPath,
  kernelDirectorySource,
  listDirectory,
  type NamespaceEntry,
  type NamespaceError,
  type NamespaceObject,
  openDirectory,
  PORT_TYPES,
  type QueryMode,
  readSymbolicLink,
  SYMBOLIC_LINK_QUERY,
  walkNamespace,
  type WalkOptions,
} from "./ffi/nt/namespace.ts";
export {
  findPortServers,
  objectName,
  type PortServer,
  type PortServerReport,
  portTypeIndex,
} from "./ffi/lpc/port_servers.ts";
export {
  ChildProcess,
  CREATE_NO_WINDOW,
  createProcess,
  type CreateProcessOptions,
  currentProcessId,
  exitCodeOf,
  hasDebugPort,
  INFINITE,
  openProcess,
  ProcessAccess,
  processHandleCount,
  processImagePath,
  ProcessInfoClass,
  quoteWindowsArg,
  STILL_ACTIVE,
  waitFor,
  windowsCommandLine,
} from "./ffi/nt/processes.ts";
export {
  decodeSystemHandles,
  handleTypeIndex,
  ownHandles,
  SystemExtendedHandleInformation,
  type SystemHandle,
  systemHandles,
} from "./ffi/nt/system_handles.ts";
export {
  createRestrictedToken,
  DISABLE_MAX_PRIVILEGE,
  duplicateToken,
  INTEGRITY_LEVELS,
  lookupPrivilege,
  openProcessToken,
  PRIVILEGE_LUIDS,
  SE_PRIVILEGE_ENABLED,
  SE_PRIVILEGE_REMOVED,
  setPrivilege,
  setTokenIntegrity,
  sidFromString,
  sidStringViaApi,
  sidToString,
  TokenAccess,
  tokenInformation,
  TokenInformationClass,
  tokenIntegrity,
  tokenIsElevated,
  tokenPrivileges,
  tokenUserSid,
  WellKnownSid,
} from "./ffi/nt/tokens.ts";
export {
  type Connection,
  type ConnectOptions,
  createConnectionPort,
  LpcClient,
  type LpcEvent,
  type LpcHandler,
  type LpcRequest,
  LpcServer,
  type LpcServerOptions,
  type LpcSymbols,
  type PortOptions,
} from "./ffi/lpc/port.ts";
export { ServerWorker, type ServerWorkerOptions } from "./ffi/lpc/server_worker.ts";
export {
  Disposition,
  FileAccess,
  FileOptions,
  LabFolder,
  ntPathOf,
  openFile,
  type OpenFileOptions,
  readFileRange,
  SHARE_ALL,
  tempFolder,
  writeFileAt,
} from "./ffi/nt/files.ts";
export { type CapturedRun, runCaptured } from "./ffi/nt/processes.ts";
export { SE_GROUP_ENABLED, SE_GROUP_USE_FOR_DENY_ONLY, tokenGroups } from "./ffi/nt/tokens.ts";
export { type HandleCloser } from "./ffi/nt/handle.ts";
export {
  aligned16,
  buildExceptionRecord,
  continueContext,
  RAISE_STUB,
  type RaiseOptions,
  type RaiseResult,
  raiseSecondChance,
  type RaiseSystem,
  type RaiseThread,
  SCRATCH_BYTES,
  sweepRaiseThreads,
} from "./ffi/debug/raise_exception.ts";
export { type ExceptionPortResult, setExceptionPort } from "./ffi/lpc/exception_port.ts";
export {
  type CapturedChild,
  decodeProcessList,
  listProcesses,
  type ProcessEntry,
  spawnCaptured,
  SystemProcessInformation,
} from "./ffi/nt/processes.ts";
export {
  impersonateSystem,
  StepError,
  type SystemImpersonation,
  type SystemTokenAttempt,
  systemTokenCandidates,
  threadIsImpersonating,
} from "./ffi/nt/tokens.ts";
export { type CommandContext } from "./ffi/lpc/_server_worker_entry.ts";
export {
  callMailbox,
  createMailbox,
  guardMailbox,
  MAILBOX,
  mailboxDeath,
  markMailboxDead,
  serviceMailbox,
  watchWorker,
} from "./ffi/_mailbox.ts";
export { deserializeError, type SerializedError, serializeError } from "./ffi/_errors_wire.ts";
export {
  type DebugEvent,
  DebugEventCode,
  type DebugEventKind,
  decodeDebugEvent,
} from "./ffi/debug_events.ts";
export {
  type AttachOptions,
  Debugger,
  type InjectedThread,
  injectedThreads,
} from "./ffi/debug/debugger.ts";
export type { DebuggerInit, HandledEvent } from "./ffi/debug/_debugger_worker.ts";
