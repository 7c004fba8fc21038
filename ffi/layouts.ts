/**
 * Windows x64 struct layouts, declared once as data.
 *
 * Every codec in this toolkit reads its offsets from {@link LAYOUTS}; no other file holds an
 * offset literal. Field names are those of phnt / the Windows SDK; a union member keeps its own
 * name, a nested struct's fields are flattened where the lab reads them directly (for example
 * `PORT_MESSAGE.DataLength` is `u1.s1.DataLength`). `tests/ffi/layouts_test.ts` compares every number
 * here with what `x86_64-w64-mingw32-gcc` computes from `tests/native/layouts.c`.
 *
 * Sources: the public headers (phnt, the ReactOS NDK, mingw-w64's user-mode headers), with natural
 * x64 alignment and no packing pragmas.
 *
 * @module
 */

/** The size and field offsets of one C struct. */
export interface Layout {
  /** `sizeof` the struct, in bytes. */
  readonly size: number;
  /** `offsetof` each field, in bytes from the start of the struct. */
  readonly offsets: Readonly<Record<string, number>>;
}

/**
 * The layouts the toolkit reads and writes, keyed by C struct name.
 *
 * @example Read a field offset
 * ```ts
 * import { LAYOUTS } from "./layouts.ts";
 * const at = LAYOUTS.PORT_MESSAGE.offsets.MessageId; // 24
 * ```
 */
export const LAYOUTS = {
  // ---- LPC (phnt ntlpcapi.h; x64 natural alignment) ----
  PORT_MESSAGE: {
    size: 40,
    offsets: {
      Length: 0, // u1.Length = (TotalLength << 16) | DataLength
      DataLength: 0, // u1.s1.DataLength (CSHORT)
      TotalLength: 2, // u1.s1.TotalLength (CSHORT)
      ZeroInit: 4, // u2.ZeroInit
      Type: 4, // u2.s2.Type (CSHORT)
      DataInfoOffset: 6, // u2.s2.DataInfoOffset (CSHORT)
      ClientId: 8, // CLIENT_ID
      DoNotUseThisField: 8, // double, alignment only
      MessageId: 24, // ULONG, then 4 bytes of padding
      ClientViewSize: 32, // SIZE_T (union)
      CallbackId: 32, // ULONG (union)
    },
  },
  LPC_CLIENT_DIED_MSG: {
    size: 48,
    offsets: { PortMsg: 0, CreateTime: 40 },
  },
  PORT_VIEW: {
    size: 48,
    offsets: {
      Length: 0,
      SectionHandle: 8,
      SectionOffset: 16,
      ViewSize: 24,
      ViewBase: 32,
      ViewRemoteBase: 40,
    },
  },
  REMOTE_PORT_VIEW: {
    size: 24,
    offsets: { Length: 0, ViewSize: 8, ViewBase: 16 },
  },
  PORT_DATA_ENTRY: {
    size: 16,
    offsets: { Base: 0, Size: 8 },
  },
  PORT_DATA_INFORMATION: {
    size: 24, // with one entry
    offsets: { CountDataEntries: 0, DataEntries: 8 },
  },
  // ---- Debug / exception-port messages (ReactOS dbgktypes.h, PDB-derived Win7+ size) ----
  DBGKM_APIMSG: {
    size: 272, // 0x110, the struct (its union includes DBGKM_ERROR_MSG); LPC_EXCEPTION on an exception port is 0xD0 (DbgkForwardException.c)
    offsets: {
      h: 0,
      ApiNumber: 40,
      ReturnedStatus: 44,
      u: 48,
      ExceptionRecord: 48, // u.Exception.ExceptionRecord
      FirstChance: 200, // u.Exception.FirstChance
    },
  },
  // LPC_ERROR_EVENT (type 9), the hard error sent to the exception port (ExpRaiseHardError.c).
  HARDERROR_MSG: {
    size: 112, // 0x70 = TotalLength; DataLength 0x48
    offsets: {
      Status: 40,
      ErrorTime: 48,
      ValidResponseOptions: 56,
      Response: 60,
      NumberOfParameters: 64,
      UnicodeStringParameterMask: 68,
      Parameters: 72,
    },
  },
  // ---- Object manager, security, processes (phnt / mingw-w64 user-mode headers) ----
  UNICODE_STRING: {
    size: 16,
    offsets: { Length: 0, MaximumLength: 2, Buffer: 8 },
  },
  OBJECT_ATTRIBUTES: {
    size: 48,
    offsets: {
      Length: 0,
      RootDirectory: 8,
      ObjectName: 16,
      Attributes: 24,
      SecurityDescriptor: 32,
      SecurityQualityOfService: 40,
    },
  },
  SECURITY_QUALITY_OF_SERVICE: {
    size: 12,
    offsets: { Length: 0, ImpersonationLevel: 4, ContextTrackingMode: 8, EffectiveOnly: 9 },
  },
  CLIENT_ID: {
    size: 16,
    offsets: { UniqueProcess: 0, UniqueThread: 8 },
  },
  KERNEL_USER_TIMES: {
    size: 32, // NtQueryInformationThread(ThreadTimes = 1)
    offsets: { CreateTime: 0, ExitTime: 8, KernelTime: 16, UserTime: 24 },
  },
  OBJECT_DIRECTORY_INFORMATION: {
    size: 32,
    offsets: { Name: 0, TypeName: 16 },
  },
  OBJECT_NAME_INFORMATION: {
    size: 16,
    offsets: { Name: 0 },
  },
  IO_STATUS_BLOCK: {
    size: 16,
    offsets: { Status: 0, Pointer: 0, Information: 8 },
  },
  // ntifs.h REPARSE_DATA_BUFFER; the mount-point (junction) member's fields are flattened. Its
  // header (tag, length, reserved) is REPARSE_DATA_BUFFER_HEADER_SIZE = 8 bytes; `size` is the
  // whole union with a one-character PathBuffer (the symbolic-link member is the largest).
  REPARSE_DATA_BUFFER: {
    size: 24,
    offsets: {
      ReparseTag: 0,
      ReparseDataLength: 4,
      Reserved: 6,
      MountPointReparseBuffer: 8,
      SubstituteNameOffset: 8,
      SubstituteNameLength: 10,
      PrintNameOffset: 12,
      PrintNameLength: 14,
      PathBuffer: 16,
    },
  },
  EXCEPTION_RECORD: {
    size: 152,
    offsets: {
      ExceptionCode: 0,
      ExceptionFlags: 4,
      ExceptionRecord: 8,
      ExceptionAddress: 16,
      NumberParameters: 24,
      ExceptionInformation: 32, // ULONG_PTR[15]
    },
  },
  CONTEXT: {
    size: 1232, // align 16
    offsets: { ContextFlags: 0x30, Rcx: 0x80, Rsp: 0x98, Rip: 0xf8 },
  },
  PROCESS_EXCEPTION_PORT: {
    size: 16,
    offsets: { ExceptionPortHandle: 0, StateFlags: 8 },
  },
  SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX: {
    size: 40,
    offsets: {
      Object: 0,
      UniqueProcessId: 8,
      HandleValue: 16,
      GrantedAccess: 24,
      CreatorBackTraceIndex: 28,
      ObjectTypeIndex: 30,
      HandleAttributes: 32,
      Reserved: 36,
    },
  },
  SYSTEM_PROCESS_INFORMATION: {
    size: 256, // followed by NumberOfThreads SYSTEM_THREAD_INFORMATION entries
    offsets: {
      NextEntryOffset: 0,
      NumberOfThreads: 4,
      CreateTime: 32,
      ImageName: 56,
      BasePriority: 72,
      UniqueProcessId: 80,
      InheritedFromUniqueProcessId: 88,
      HandleCount: 96,
      SessionId: 100,
    },
  },
  SYSTEM_THREAD_INFORMATION: {
    size: 80, // NumberOfThreads of these follow each SYSTEM_PROCESS_INFORMATION
    offsets: {
      KernelTime: 0,
      UserTime: 8,
      CreateTime: 16,
      WaitTime: 24,
      StartAddress: 32,
      ClientId: 40, // CLIENT_ID
      Priority: 56,
      BasePriority: 60,
      ContextSwitches: 64,
      ThreadState: 68, // KTHREAD_STATE
      WaitReason: 72, // KWAIT_REASON
    },
  },
  SYSTEM_HANDLE_INFORMATION_EX: {
    size: 56, // with one entry
    offsets: { NumberOfHandles: 0, Reserved: 8, Handles: 16 },
  },
  // ---- Win32 (mingw-w64 winnt.h, minwinbase.h, processthreadsapi.h) ----
  DEBUG_EVENT: {
    size: 176,
    offsets: { dwDebugEventCode: 0, dwProcessId: 4, dwThreadId: 8, u: 16 },
  },
  EXCEPTION_DEBUG_INFO: {
    size: 160,
    offsets: { ExceptionRecord: 0, dwFirstChance: 152 },
  },
  CREATE_THREAD_DEBUG_INFO: {
    size: 24,
    offsets: { hThread: 0, lpThreadLocalBase: 8, lpStartAddress: 16 },
  },
  CREATE_PROCESS_DEBUG_INFO: {
    size: 72,
    offsets: {
      hFile: 0,
      hProcess: 8,
      hThread: 16,
      lpBaseOfImage: 24,
      dwDebugInfoFileOffset: 32,
      nDebugInfoSize: 36,
      lpThreadLocalBase: 40,
      lpStartAddress: 48,
      lpImageName: 56,
      fUnicode: 64,
    },
  },
  EXIT_THREAD_DEBUG_INFO: {
    size: 4,
    offsets: { dwExitCode: 0 },
  },
  EXIT_PROCESS_DEBUG_INFO: {
    size: 4,
    offsets: { dwExitCode: 0 },
  },
  LOAD_DLL_DEBUG_INFO: {
    size: 40,
    offsets: {
      hFile: 0,
      lpBaseOfDll: 8,
      dwDebugInfoFileOffset: 16,
      nDebugInfoSize: 20,
      lpImageName: 24,
      fUnicode: 32,
    },
  },
  UNLOAD_DLL_DEBUG_INFO: {
    size: 8,
    offsets: { lpBaseOfDll: 0 },
  },
  OUTPUT_DEBUG_STRING_INFO: {
    size: 16,
    offsets: { lpDebugStringData: 0, fUnicode: 8, nDebugStringLength: 10 },
  },
  STARTUPINFOW: {
    size: 104,
    offsets: {
      cb: 0,
      lpReserved: 8,
      lpDesktop: 16,
      lpTitle: 24,
      dwX: 32,
      dwY: 36,
      dwXSize: 40,
      dwYSize: 44,
      dwXCountChars: 48,
      dwYCountChars: 52,
      dwFillAttribute: 56,
      dwFlags: 60,
      wShowWindow: 64,
      cbReserved2: 66,
      lpReserved2: 72,
      hStdInput: 80,
      hStdOutput: 88,
      hStdError: 96,
    },
  },
  STARTUPINFOEXW: {
    size: 112,
    offsets: { StartupInfo: 0, lpAttributeList: 104 },
  },
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION: {
    size: 144,
    offsets: {
      BasicLimitInformation: 0,
      LimitFlags: 16, // BasicLimitInformation.LimitFlags
      IoInfo: 64,
      ProcessMemoryLimit: 112,
      JobMemoryLimit: 120,
      PeakProcessMemoryUsed: 128,
      PeakJobMemoryUsed: 136,
    },
  },
  PROCESS_INFORMATION: {
    size: 24,
    offsets: { hProcess: 0, hThread: 8, dwProcessId: 16, dwThreadId: 20 },
  },
  SECURITY_ATTRIBUTES: {
    size: 24,
    offsets: { nLength: 0, lpSecurityDescriptor: 8, bInheritHandle: 16 },
  },
  LUID: {
    size: 8,
    offsets: { LowPart: 0, HighPart: 4 },
  },
  LUID_AND_ATTRIBUTES: {
    size: 12,
    offsets: { Luid: 0, Attributes: 8 },
  },
  TOKEN_PRIVILEGES: {
    size: 16, // with one entry
    offsets: { PrivilegeCount: 0, Privileges: 4 },
  },
  SID_AND_ATTRIBUTES: {
    size: 16,
    offsets: { Sid: 0, Attributes: 8 },
  },
  TOKEN_GROUPS: {
    size: 24, // with one entry
    offsets: { GroupCount: 0, Groups: 8 },
  },
  TOKEN_ELEVATION: {
    size: 4,
    offsets: { TokenIsElevated: 0 },
  },
  TOKEN_MANDATORY_LABEL: {
    size: 16,
    offsets: { Label: 0 },
  },
  // ---- ALPC (phnt ntlpcapi.h) ----
  ALPC_PORT_ATTRIBUTES: {
    size: 72,
    offsets: {
      Flags: 0,
      SecurityQos: 4,
      MaxMessageLength: 16,
      MemoryBandwidth: 24,
      MaxPoolUsage: 32,
      MaxSectionSize: 40,
      MaxViewSize: 48,
      MaxTotalSectionSize: 56,
      DupObjectTypes: 64,
      Reserved: 68,
    },
  },
  ALPC_MESSAGE_ATTRIBUTES: {
    // The attributes follow this header, present ones in flag order (security, view, context,
    // handle, token, direct, work-on-behalf): AlpcGetHeaderSize.c sums their sizes.
    size: 8,
    offsets: { AllocatedAttributes: 0, ValidAttributes: 4 },
  },
  ALPC_SECURITY_ATTR: {
    size: 24,
    offsets: { Flags: 0, QoS: 8, ContextHandle: 16 },
  },
  ALPC_DATA_VIEW_ATTR: {
    size: 32,
    offsets: { Flags: 0, SectionHandle: 8, ViewBase: 16, ViewSize: 24 },
  },
  ALPC_CONTEXT_ATTR: {
    size: 32,
    offsets: { PortContext: 0, MessageContext: 8, Sequence: 16, MessageId: 20, CallbackId: 24 },
  },
  ALPC_HANDLE_ATTR: {
    size: 24,
    offsets: { Flags: 0, Handle: 8, ObjectType: 16, DesiredAccess: 20 },
  },
  ALPC_TOKEN_ATTR: {
    size: 24,
    offsets: { TokenId: 0, AuthenticationId: 8, ModifiedId: 16 },
  },
  ALPC_DIRECT_ATTR: {
    size: 8,
    offsets: { Event: 0 },
  },
  ALPC_WORK_ON_BEHALF_ATTR: {
    size: 8,
    offsets: { Ticket: 0 },
  },
  ALPC_BASIC_INFORMATION: {
    size: 16, // AlpcpPortQueryBasicInfo.c: needs 0x10 bytes, writes Flags, SequenceNo, PortContext
    offsets: { Flags: 0, SequenceNo: 4, PortContext: 8 },
  },
  ALPC_SERVER_INFORMATION: {
    // A union: In.ThreadHandle, or Out.{ThreadBlocked, ConnectedProcessId, ConnectionPortName}.
    // AlpcpPortQueryServerInfo.c reads the handle at 0 and writes the BOOLEAN at 0, the id at 8,
    // the UNICODE_STRING at 16 (its Buffer at 24 points at the name it copies to offset 32).
    size: 32,
    offsets: {
      ThreadHandle: 0, // In.ThreadHandle
      ThreadBlocked: 0, // Out.ThreadBlocked
      ConnectedProcessId: 8, // Out.ConnectedProcessId (HANDLE)
      ConnectionPortName: 16, // Out.ConnectionPortName (UNICODE_STRING)
    },
  },
  ALPC_SERVER_SESSION_INFORMATION: {
    size: 8, // AlpcpPortQueryServerSessionInfo.c: needs 8 bytes, writes SessionId at 0, ProcessId at 4
    offsets: { SessionId: 0, ProcessId: 4 },
  },
  // ---- object types and access masks (winnt.h, winternl.h) ----
  GENERIC_MAPPING: {
    size: 16,
    offsets: { GenericRead: 0, GenericWrite: 4, GenericExecute: 8, GenericAll: 12 },
  },
  OBJECT_TYPE_INFORMATION: {
    // ObQueryTypeInfo.c writes these offsets (the name's characters follow at 104).
    size: 104,
    offsets: {
      TypeName: 0,
      TotalNumberOfObjects: 16,
      TotalNumberOfHandles: 20,
      InvalidAttributes: 64,
      GenericMapping: 68,
      ValidAccessMask: 84,
      SecurityRequired: 88,
      MaintainHandleCount: 89,
      PoolType: 92,
      DefaultPagedPoolCharge: 96,
      DefaultNonPagedPoolCharge: 100,
    },
  },
} as const satisfies Record<string, Layout>;

/** The C struct names that have a layout. */
export type StructName = keyof typeof LAYOUTS;
