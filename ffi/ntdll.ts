/**
 * The `ntdll.dll` symbol table (Windows x64) and its lazy loader.
 *
 * Every entry carries its C prototype (phnt names) as a comment; `tests/ffi/symbols_test.ts` checks
 * each against the reference prototypes in `tests/fixtures/nt-signatures.json`. Widths: `ULONG`/`ACCESS_MASK`/enums u32,
 * `BOOLEAN` u8, `HANDLE`/`PVOID` pointer, `SIZE_T` u64, pointers to memory we own `buffer`,
 * `NTSTATUS` i32. `optional: true` marks exactly the exports Wine 8.0 lacks.
 *
 * @module
 */

import { lazyLibrary } from "./_loader.ts";

/**
 * The ntdll symbols the toolkit binds.
 *
 * @example Inspect a parameter list (no DLL is loaded)
 * ```ts
 * import { ntdllSymbols } from "./ntdll.ts";
 * ntdllSymbols.NtCreatePort.parameters.length; // 5
 * ```
 */
export const ntdllSymbols = {
  // ---------------- legacy LPC (phnt ntlpcapi.h) ----------------

  // NTSTATUS NtCreatePort(PHANDLE PortHandle, POBJECT_ATTRIBUTES ObjectAttributes,
  //   ULONG MaxConnectionInfoLength, ULONG MaxMessageLength, ULONG MaxPoolUsage);
  NtCreatePort: { parameters: ["buffer", "buffer", "u32", "u32", "u32"], result: "i32" },
  // NTSTATUS NtCreateWaitablePort(PHANDLE PortHandle, POBJECT_ATTRIBUTES ObjectAttributes,
  //   ULONG MaxConnectionInfoLength, ULONG MaxMessageLength, ULONG MaxPoolUsage);
  NtCreateWaitablePort: {
    parameters: ["buffer", "buffer", "u32", "u32", "u32"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtConnectPort(PHANDLE PortHandle, PUNICODE_STRING PortName,
  //   PSECURITY_QUALITY_OF_SERVICE SecurityQos, PPORT_VIEW ClientView,
  //   PREMOTE_PORT_VIEW ServerView, PULONG MaxMessageLength, PVOID ConnectionInformation,
  //   PULONG ConnectionInformationLength);
  NtConnectPort: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtSecureConnectPort(PHANDLE PortHandle, PUNICODE_STRING PortName,
  //   PSECURITY_QUALITY_OF_SERVICE SecurityQos, PPORT_VIEW ClientView, PSID RequiredServerSid,
  //   PREMOTE_PORT_VIEW ServerView, PULONG MaxMessageLength, PVOID ConnectionInformation,
  //   PULONG ConnectionInformationLength);
  NtSecureConnectPort: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  // NTSTATUS NtListenPort(HANDLE PortHandle, PPORT_MESSAGE ConnectionRequest);
  NtListenPort: { parameters: ["pointer", "buffer"], result: "i32" },
  // NTSTATUS NtAcceptConnectPort(PHANDLE PortHandle, PVOID PortContext,
  //   PPORT_MESSAGE ConnectionRequest, BOOLEAN AcceptConnection, PPORT_VIEW ServerView,
  //   PREMOTE_PORT_VIEW ClientView);
  NtAcceptConnectPort: {
    parameters: ["buffer", "pointer", "buffer", "u8", "buffer", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtCompleteConnectPort(HANDLE PortHandle);
  NtCompleteConnectPort: { parameters: ["pointer"], result: "i32" },
  // NTSTATUS NtRequestPort(HANDLE PortHandle, PPORT_MESSAGE RequestMessage);
  NtRequestPort: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  // NTSTATUS NtRequestWaitReplyPort(HANDLE PortHandle, PPORT_MESSAGE RequestMessage,
  //   PPORT_MESSAGE ReplyMessage);
  NtRequestWaitReplyPort: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // NTSTATUS NtReplyPort(HANDLE PortHandle, PPORT_MESSAGE ReplyMessage);
  NtReplyPort: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  // NTSTATUS NtReplyWaitReplyPort(HANDLE PortHandle, PPORT_MESSAGE ReplyMessage);
  NtReplyWaitReplyPort: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  // NTSTATUS NtReplyWaitReceivePort(HANDLE PortHandle, PVOID *PortContext,
  //   PPORT_MESSAGE ReplyMessage, PPORT_MESSAGE ReceiveMessage);
  NtReplyWaitReceivePort: {
    parameters: ["pointer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtReplyWaitReceivePortEx(HANDLE PortHandle, PVOID *PortContext,
  //   PPORT_MESSAGE ReplyMessage, PPORT_MESSAGE ReceiveMessage, PLARGE_INTEGER Timeout);
  NtReplyWaitReceivePortEx: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtImpersonateClientOfPort(HANDLE PortHandle, PPORT_MESSAGE Message);
  NtImpersonateClientOfPort: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  // NTSTATUS NtReadRequestData(HANDLE PortHandle, PPORT_MESSAGE Message, ULONG DataEntryIndex,
  //   PVOID Buffer, SIZE_T BufferSize, PSIZE_T NumberOfBytesRead);
  NtReadRequestData: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u64", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtWriteRequestData(HANDLE PortHandle, PPORT_MESSAGE Message, ULONG DataEntryIndex,
  //   PVOID Buffer, SIZE_T BufferSize, PSIZE_T NumberOfBytesWritten);
  NtWriteRequestData: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u64", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtQueryInformationPort(HANDLE PortHandle,
  //   PORT_INFORMATION_CLASS PortInformationClass, PVOID PortInformation, ULONG Length,
  //   PULONG ReturnLength);
  NtQueryInformationPort: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtRegisterThreadTerminatePort(HANDLE PortHandle);
  NtRegisterThreadTerminatePort: { parameters: ["pointer"], result: "i32" },

  // ---------------- ALPC (phnt ntlpcapi.h; none exported by Wine 8.0) ----------------

  // NTSTATUS NtAlpcCreatePort(PHANDLE PortHandle, POBJECT_ATTRIBUTES ObjectAttributes,
  //   PALPC_PORT_ATTRIBUTES PortAttributes);
  NtAlpcCreatePort: { parameters: ["buffer", "buffer", "buffer"], result: "i32", optional: true },
  // NTSTATUS NtAlpcConnectPort(PHANDLE PortHandle, PUNICODE_STRING PortName,
  //   POBJECT_ATTRIBUTES ObjectAttributes, PALPC_PORT_ATTRIBUTES PortAttributes, ULONG Flags,
  //   PSID RequiredServerSid, PPORT_MESSAGE ConnectionMessage, PSIZE_T BufferLength,
  //   PALPC_MESSAGE_ATTRIBUTES OutMessageAttributes,
  //   PALPC_MESSAGE_ATTRIBUTES InMessageAttributes, PLARGE_INTEGER Timeout);
  NtAlpcConnectPort: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "u32",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcAcceptConnectPort(PHANDLE PortHandle, HANDLE ConnectionPortHandle,
  //   ULONG Flags, POBJECT_ATTRIBUTES ObjectAttributes, PALPC_PORT_ATTRIBUTES PortAttributes,
  //   PVOID PortContext, PPORT_MESSAGE ConnectionRequest,
  //   PALPC_MESSAGE_ATTRIBUTES ConnectionMessageAttributes, BOOLEAN AcceptConnection);
  NtAlpcAcceptConnectPort: {
    parameters: [
      "buffer",
      "pointer",
      "u32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "u8",
    ],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcSendWaitReceivePort(HANDLE PortHandle, ULONG Flags,
  //   PPORT_MESSAGE SendMessage, PALPC_MESSAGE_ATTRIBUTES SendMessageAttributes,
  //   PPORT_MESSAGE ReceiveMessage, PSIZE_T BufferLength,
  //   PALPC_MESSAGE_ATTRIBUTES ReceiveMessageAttributes, PLARGE_INTEGER Timeout);
  NtAlpcSendWaitReceivePort: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcDisconnectPort(HANDLE PortHandle, ULONG Flags);
  NtAlpcDisconnectPort: { parameters: ["pointer", "u32"], result: "i32", optional: true },
  // NTSTATUS NtAlpcQueryInformation(HANDLE PortHandle,
  //   ALPC_PORT_INFORMATION_CLASS PortInformationClass, PVOID PortInformation, ULONG Length,
  //   PULONG ReturnLength);
  NtAlpcQueryInformation: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcImpersonateClientOfPort(HANDLE PortHandle, PPORT_MESSAGE Message,
  //   PVOID Flags);
  NtAlpcImpersonateClientOfPort: {
    parameters: ["pointer", "buffer", "pointer"],
    result: "i32",
    optional: true,
  },

  // NTSTATUS NtAlpcCreatePortSection(HANDLE PortHandle, ULONG Flags, HANDLE SectionHandle,
  //   SIZE_T SectionSize, PALPC_HANDLE AlpcSectionHandle, PSIZE_T ActualSectionSize);
  NtAlpcCreatePortSection: {
    parameters: ["pointer", "u32", "pointer", "u64", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcDeletePortSection(HANDLE PortHandle, ULONG Flags, ALPC_HANDLE SectionHandle);
  NtAlpcDeletePortSection: {
    parameters: ["pointer", "u32", "pointer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcCreateSectionView(HANDLE PortHandle, ULONG Flags,
  //   PALPC_DATA_VIEW_ATTR ViewAttributes);
  NtAlpcCreateSectionView: {
    parameters: ["pointer", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcDeleteSectionView(HANDLE PortHandle, ULONG Flags, PVOID ViewBase);
  NtAlpcDeleteSectionView: {
    parameters: ["pointer", "u32", "pointer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcCreateSecurityContext(HANDLE PortHandle, ULONG Flags,
  //   PALPC_SECURITY_ATTR SecurityAttribute);
  NtAlpcCreateSecurityContext: {
    parameters: ["pointer", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS NtAlpcDeleteSecurityContext(HANDLE PortHandle, ULONG Flags,
  //   ALPC_HANDLE ContextHandle);
  NtAlpcDeleteSecurityContext: {
    parameters: ["pointer", "u32", "pointer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS AlpcInitializeMessageAttribute(ULONG AttributeFlags,
  //   PALPC_MESSAGE_ATTRIBUTES Buffer, SIZE_T BufferSize, PSIZE_T RequiredBufferSize);
  AlpcInitializeMessageAttribute: {
    parameters: ["u32", "buffer", "u64", "buffer"],
    result: "i32",
    optional: true,
  },
  // PVOID AlpcGetMessageAttribute(PALPC_MESSAGE_ATTRIBUTES Buffer, ULONG AttributeFlag);
  AlpcGetMessageAttribute: {
    parameters: ["buffer", "u32"],
    result: "pointer",
    optional: true,
  },

  // ---------------- sections (phnt ntmmapi.h) ----------------

  // NTSTATUS NtCreateSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess,
  //   POBJECT_ATTRIBUTES ObjectAttributes, PLARGE_INTEGER MaximumSize,
  //   ULONG SectionPageProtection, ULONG AllocationAttributes, HANDLE FileHandle);
  NtCreateSection: {
    parameters: ["buffer", "u32", "buffer", "buffer", "u32", "u32", "pointer"],
    result: "i32",
  },

  // ---------------- object manager (phnt ntobapi.h) ----------------

  // NTSTATUS NtOpenDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
  //   POBJECT_ATTRIBUTES ObjectAttributes);
  NtOpenDirectoryObject: { parameters: ["buffer", "u32", "buffer"], result: "i32" },
  // NTSTATUS NtQueryDirectoryObject(HANDLE DirectoryHandle, PVOID Buffer, ULONG Length,
  //   BOOLEAN ReturnSingleEntry, BOOLEAN RestartScan, PULONG Context, PULONG ReturnLength);
  NtQueryDirectoryObject: {
    parameters: ["pointer", "buffer", "u32", "u8", "u8", "buffer", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtOpenSymbolicLinkObject(PHANDLE LinkHandle, ACCESS_MASK DesiredAccess,
  //   POBJECT_ATTRIBUTES ObjectAttributes);
  NtOpenSymbolicLinkObject: { parameters: ["buffer", "u32", "buffer"], result: "i32" },
  // NTSTATUS NtQuerySymbolicLinkObject(HANDLE LinkHandle, PUNICODE_STRING LinkTarget,
  //   PULONG ReturnedLength);
  NtQuerySymbolicLinkObject: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // NTSTATUS NtQueryObject(HANDLE Handle, OBJECT_INFORMATION_CLASS ObjectInformationClass,
  //   PVOID ObjectInformation, ULONG ObjectInformationLength, PULONG ReturnLength);
  NtQueryObject: { parameters: ["pointer", "u32", "buffer", "u32", "buffer"], result: "i32" },
  // NTSTATUS NtDuplicateObject(HANDLE SourceProcessHandle, HANDLE SourceHandle,
  //   HANDLE TargetProcessHandle, PHANDLE TargetHandle, ACCESS_MASK DesiredAccess,
  //   ULONG HandleAttributes, ULONG Options);
  NtDuplicateObject: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "u32", "u32", "u32"],
    result: "i32",
  },
  // NTSTATUS NtClose(HANDLE Handle);
  NtClose: { parameters: ["pointer"], result: "i32" },

  // ---------------- processes, threads, tokens (phnt ntpsapi.h, ntseapi.h) ----------------

  // NTSTATUS NtSetInformationProcess(HANDLE ProcessHandle,
  //   PROCESSINFOCLASS ProcessInformationClass, PVOID ProcessInformation,
  //   ULONG ProcessInformationLength);
  NtSetInformationProcess: { parameters: ["pointer", "u32", "buffer", "u32"], result: "i32" },
  // NTSTATUS NtQueryInformationProcess(HANDLE ProcessHandle,
  //   PROCESSINFOCLASS ProcessInformationClass, PVOID ProcessInformation,
  //   ULONG ProcessInformationLength, PULONG ReturnLength);
  NtQueryInformationProcess: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtQuerySystemInformation(SYSTEM_INFORMATION_CLASS SystemInformationClass,
  //   PVOID SystemInformation, ULONG SystemInformationLength, PULONG ReturnLength);
  NtQuerySystemInformation: { parameters: ["u32", "buffer", "u32", "buffer"], result: "i32" },
  // NTSTATUS NtOpenProcess(PHANDLE ProcessHandle, ACCESS_MASK DesiredAccess,
  //   PCOBJECT_ATTRIBUTES ObjectAttributes, PCLIENT_ID ClientId);
  NtOpenProcess: { parameters: ["buffer", "u32", "buffer", "buffer"], result: "i32" },
  // NTSTATUS NtOpenProcessToken(HANDLE ProcessHandle, ACCESS_MASK DesiredAccess,
  //   PHANDLE TokenHandle);
  NtOpenProcessToken: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // NTSTATUS NtTerminateProcess(HANDLE ProcessHandle, NTSTATUS ExitStatus);
  NtTerminateProcess: { parameters: ["pointer", "i32"], result: "i32" },
  // NTSTATUS NtOpenThread(PHANDLE ThreadHandle, ACCESS_MASK DesiredAccess,
  //   PCOBJECT_ATTRIBUTES ObjectAttributes, PCLIENT_ID ClientId);
  NtOpenThread: { parameters: ["buffer", "u32", "buffer", "buffer"], result: "i32" },
  // NTSTATUS NtQueryInformationThread(HANDLE ThreadHandle,
  //   THREADINFOCLASS ThreadInformationClass, PVOID ThreadInformation,
  //   ULONG ThreadInformationLength, PULONG ReturnLength);
  NtQueryInformationThread: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtSetInformationThread(HANDLE ThreadHandle, THREADINFOCLASS ThreadInformationClass,
  //   PVOID ThreadInformation, ULONG ThreadInformationLength);
  NtSetInformationThread: { parameters: ["pointer", "u32", "buffer", "u32"], result: "i32" },
  // NTSTATUS NtOpenThreadToken(HANDLE ThreadHandle, ACCESS_MASK DesiredAccess,
  //   BOOLEAN OpenAsSelf, PHANDLE TokenHandle);
  NtOpenThreadToken: { parameters: ["pointer", "u32", "u8", "buffer"], result: "i32" },
  // NTSTATUS NtImpersonateThread(HANDLE ServerThreadHandle, HANDLE ClientThreadHandle,
  //   PSECURITY_QUALITY_OF_SERVICE SecurityQos);
  NtImpersonateThread: {
    parameters: ["pointer", "pointer", "buffer"],
    result: "i32",
    optional: true,
  },
  // NTSTATUS RtlAdjustPrivilege(ULONG Privilege, BOOLEAN Enable, BOOLEAN Client,
  //   PBOOLEAN WasEnabled);
  RtlAdjustPrivilege: { parameters: ["u32", "u8", "u8", "buffer"], result: "i32" },

  // ---------------- files (phnt ntioapi.h) ----------------

  // NTSTATUS NtCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
  //   POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
  //   PLARGE_INTEGER AllocationSize, ULONG FileAttributes, ULONG ShareAccess,
  //   ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer, ULONG EaLength);
  NtCreateFile: {
    parameters: [
      "buffer",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "u32",
      "u32",
      "u32",
      "u32",
      "buffer",
      "u32",
    ],
    result: "i32",
  },
  // NTSTATUS NtReadFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine,
  //   PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length,
  //   PLARGE_INTEGER ByteOffset, PULONG Key);
  NtReadFile: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "buffer",
      "buffer",
      "u32",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },

  // NTSTATUS NtWriteFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine,
  //   PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length,
  //   PLARGE_INTEGER ByteOffset, PULONG Key);
  NtWriteFile: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "buffer",
      "buffer",
      "u32",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },

  // NTSTATUS NtFsControlFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine,
  //   PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock, ULONG FsControlCode, PVOID InputBuffer,
  //   ULONG InputBufferLength, PVOID OutputBuffer, ULONG OutputBufferLength);
  NtFsControlFile: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "buffer",
      "u32",
    ],
    result: "i32",
  },
  // NTSTATUS NtQuerySecurityObject(HANDLE Handle, SECURITY_INFORMATION SecurityInformation,
  //   PSECURITY_DESCRIPTOR SecurityDescriptor, ULONG Length, PULONG LengthNeeded);
  NtQuerySecurityObject: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtAccessCheck(PSECURITY_DESCRIPTOR SecurityDescriptor, HANDLE ClientToken,
  //   ACCESS_MASK DesiredAccess, PGENERIC_MAPPING GenericMapping, PPRIVILEGE_SET PrivilegeSet,
  //   PULONG PrivilegeSetLength, PACCESS_MASK GrantedAccess, PNTSTATUS AccessStatus);
  NtAccessCheck: {
    parameters: ["buffer", "pointer", "u32", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // NTSTATUS NtCreateLowBoxToken(PHANDLE TokenHandle, HANDLE ExistingTokenHandle,
  //   ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes, PSID PackageSid,
  //   ULONG CapabilityCount, PSID_AND_ATTRIBUTES Capabilities, ULONG HandleCount,
  //   HANDLE *Handles);
  NtCreateLowBoxToken: {
    parameters: ["buffer", "pointer", "u32", "buffer", "buffer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },

  // ---------------- exceptions and debugging (phnt ntxcapi.h, ntdbg.h, ntrtl.h) ----------------

  // NTSTATUS NtRaiseException(PEXCEPTION_RECORD ExceptionRecord, PCONTEXT ContextRecord,
  //   BOOLEAN FirstChance);
  NtRaiseException: { parameters: ["buffer", "buffer", "u8"], result: "i32" },
  // NTSTATUS NtRaiseHardError(NTSTATUS ErrorStatus, ULONG NumberOfParameters,
  //   ULONG UnicodeStringParameterMask, PULONG_PTR Parameters, ULONG ValidResponseOptions,
  //   PULONG Response);  -- blocks until the exception port (or csrss) answers
  NtRaiseHardError: {
    parameters: ["i32", "u32", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // VOID RtlCaptureContext(PCONTEXT ContextRecord);
  RtlCaptureContext: { parameters: ["buffer"], result: "void" },
  // HANDLE DbgUiGetThreadDebugObject(VOID);  -- the calling thread's debug object (TEB)
  DbgUiGetThreadDebugObject: { parameters: [], result: "pointer" },
  // VOID NTAPI DbgUiRemoteBreakin(PVOID Context);  -- a thread start routine: never call it here
  DbgUiRemoteBreakin: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded ntdll symbols (optional ones are `null` where the DLL lacks them). */
export type NtdllSymbols = Deno.DynamicLibrary<typeof ntdllSymbols>["symbols"];

/**
 * Opens `ntdll.dll` on first use (Windows only; elsewhere throws `UnsupportedError`).
 *
 * @example
 * ```ts ignore
 * import { ntdll } from "./ntdll.ts";
 * const status = ntdll().NtClose(null); // STATUS_INVALID_HANDLE
 * ```
 */
export const ntdll: () => NtdllSymbols = lazyLibrary("ntdll.dll", ntdllSymbols);

/** Wine's own export, used only to tell Wine from Windows. Never present on Windows. */
export const wineProbeSymbols = {
  // const char *wine_get_version(void);
  wine_get_version: { parameters: [], result: "pointer", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

const wineProbe = lazyLibrary("ntdll.dll", wineProbeSymbols);

/**
 * The Wine version when running under Wine (`"8.0"`), `null` on Windows, and `null` on other
 * operating systems without loading anything.
 *
 * @returns the version, or `null` when this is not Wine
 * @example Off Windows nothing is loaded and the answer is `null`
 * ```ts
 * import { wineVersion } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * if (Deno.build.os !== "windows") assertEquals(wineVersion(), null);
 * ```
 */
export function wineVersion(): string | null {
  if (Deno.build.os !== "windows") return null;
  const fn = wineProbe().wine_get_version;
  if (fn === null) return null;
  const p = fn();
  return p === null ? null : Deno.UnsafePointerView.getCString(p);
}
