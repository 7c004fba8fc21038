/**
 * The `kernel32.dll` symbol table (Windows x64) and its lazy loader: processes, threads, waits and
 * the Win32 debug API, where Win32 is the right tool.
 *
 * Widths: `BOOL` i32 (4 bytes, not `BOOLEAN`), `DWORD`/`UINT` u32, `SIZE_T` u64, `HANDLE` and
 * pointers pointer/buffer. A failing call is read with `GetLastError` right after it.
 *
 * @module
 */

import { lazyLibrary } from "./_loader.ts";

/**
 * The kernel32 symbols the toolkit binds.
 *
 * @example
 * ```ts
 * import { kernel32Symbols } from "./kernel32.ts";
 * kernel32Symbols.CreateProcessW.parameters.length; // 10
 * ```
 */
export const kernel32Symbols = {
  // BOOL CreateProcessW(LPCWSTR lpApplicationName, LPWSTR lpCommandLine,
  //   LPSECURITY_ATTRIBUTES lpProcessAttributes, LPSECURITY_ATTRIBUTES lpThreadAttributes,
  //   BOOL bInheritHandles, DWORD dwCreationFlags, LPVOID lpEnvironment,
  //   LPCWSTR lpCurrentDirectory, LPSTARTUPINFOW lpStartupInfo,
  //   LPPROCESS_INFORMATION lpProcessInformation);
  CreateProcessW: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  // HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId);
  OpenProcess: { parameters: ["u32", "i32", "u32"], result: "pointer" },
  // BOOL TerminateProcess(HANDLE hProcess, UINT uExitCode);
  TerminateProcess: { parameters: ["pointer", "u32"], result: "i32" },
  // DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32" },
  // DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);  -- on a pool thread
  WaitForSingleObjectAsync: {
    name: "WaitForSingleObject",
    parameters: ["pointer", "u32"],
    result: "u32",
    nonblocking: true,
  },
  // BOOL GetExitCodeProcess(HANDLE hProcess, LPDWORD lpExitCode);
  GetExitCodeProcess: { parameters: ["pointer", "buffer"], result: "i32" },
  // DWORD GetProcessId(HANDLE Process);
  GetProcessId: { parameters: ["pointer"], result: "u32" },
  // BOOL QueryFullProcessImageNameW(HANDLE hProcess, DWORD dwFlags, LPWSTR lpExeName,
  //   PDWORD lpdwSize);
  QueryFullProcessImageNameW: { parameters: ["pointer", "u32", "buffer", "buffer"], result: "i32" },
  // DWORD GetCurrentProcessId(void);
  GetCurrentProcessId: { parameters: [], result: "u32" },
  // DWORD GetCurrentThreadId(void);
  GetCurrentThreadId: { parameters: [], result: "u32" },

  // ---- debugging (debugapi.h; events belong to the thread that attached) ----

  // BOOL DebugActiveProcess(DWORD dwProcessId);
  DebugActiveProcess: { parameters: ["u32"], result: "i32" },
  // BOOL WaitForDebugEvent(LPDEBUG_EVENT lpDebugEvent, DWORD dwMilliseconds);
  WaitForDebugEvent: { parameters: ["buffer", "u32"], result: "i32" },
  // BOOL ContinueDebugEvent(DWORD dwProcessId, DWORD dwThreadId, DWORD dwContinueStatus);
  ContinueDebugEvent: { parameters: ["u32", "u32", "u32"], result: "i32" },
  // BOOL DebugActiveProcessStop(DWORD dwProcessId);
  DebugActiveProcessStop: { parameters: ["u32"], result: "i32" },
  // BOOL DebugBreakProcess(HANDLE Process);
  DebugBreakProcess: { parameters: ["pointer"], result: "i32" },
  // BOOL DebugSetProcessKillOnExit(BOOL KillOnExit);
  DebugSetProcessKillOnExit: { parameters: ["i32"], result: "i32" },

  // ---- threads ----

  // HANDLE CreateRemoteThread(HANDLE hProcess, LPSECURITY_ATTRIBUTES lpThreadAttributes,
  //   SIZE_T dwStackSize, LPTHREAD_START_ROUTINE lpStartAddress, LPVOID lpParameter,
  //   DWORD dwCreationFlags, LPDWORD lpThreadId);
  CreateRemoteThread: {
    parameters: ["pointer", "buffer", "u64", "pointer", "pointer", "u32", "buffer"],
    result: "pointer",
  },
  // HANDLE CreateThread(LPSECURITY_ATTRIBUTES lpThreadAttributes, SIZE_T dwStackSize,
  //   LPTHREAD_START_ROUTINE lpStartAddress, LPVOID lpParameter, DWORD dwCreationFlags,
  //   LPDWORD lpThreadId);
  CreateThread: {
    parameters: ["buffer", "u64", "pointer", "pointer", "u32", "buffer"],
    result: "pointer",
  },
  // BOOL GetThreadContext(HANDLE hThread, LPCONTEXT lpContext);
  GetThreadContext: { parameters: ["pointer", "buffer"], result: "i32" },
  // BOOL SetThreadContext(HANDLE hThread, const CONTEXT *lpContext);
  SetThreadContext: { parameters: ["pointer", "buffer"], result: "i32" },
  // DWORD ResumeThread(HANDLE hThread);
  ResumeThread: { parameters: ["pointer"], result: "u32" },
  // BOOL GetExitCodeThread(HANDLE hThread, LPDWORD lpExitCode);
  GetExitCodeThread: { parameters: ["pointer", "buffer"], result: "i32" },
  // DWORD GetThreadId(HANDLE Thread);
  GetThreadId: { parameters: ["pointer"], result: "u32" },

  // ---- what a child inherits, and a job that ends the children with us ----

  // BOOL InitializeProcThreadAttributeList(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList,
  //   DWORD dwAttributeCount, DWORD dwFlags, PSIZE_T lpSize);
  InitializeProcThreadAttributeList: {
    parameters: ["buffer", "u32", "u32", "buffer"],
    result: "i32",
  },
  // BOOL UpdateProcThreadAttribute(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList, DWORD dwFlags,
  //   DWORD_PTR Attribute, PVOID lpValue, SIZE_T cbSize, PVOID lpPreviousValue,
  //   PSIZE_T lpReturnSize);
  UpdateProcThreadAttribute: {
    parameters: ["buffer", "u32", "u64", "buffer", "u64", "pointer", "pointer"],
    result: "i32",
  },
  // VOID DeleteProcThreadAttributeList(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList);
  DeleteProcThreadAttributeList: { parameters: ["buffer"], result: "void" },
  // HANDLE CreateJobObjectW(LPSECURITY_ATTRIBUTES lpJobAttributes, LPCWSTR lpName);
  CreateJobObjectW: { parameters: ["pointer", "pointer"], result: "pointer" },
  // BOOL SetInformationJobObject(HANDLE hJob, JOBOBJECTINFOCLASS JobObjectInformationClass,
  //   LPVOID lpJobObjectInformation, DWORD cbJobObjectInformationLength);
  SetInformationJobObject: { parameters: ["pointer", "u32", "buffer", "u32"], result: "i32" },
  // BOOL AssignProcessToJobObject(HANDLE hJob, HANDLE hProcess);
  AssignProcessToJobObject: { parameters: ["pointer", "pointer"], result: "i32" },
  // BOOL TerminateJobObject(HANDLE hJob, UINT uExitCode);
  TerminateJobObject: { parameters: ["pointer", "u32"], result: "i32" },

  // ---- modules (addresses of harmless thread start routines) ----

  // HMODULE GetModuleHandleW(LPCWSTR lpModuleName);
  GetModuleHandleW: { parameters: ["buffer"], result: "pointer" },
  // FARPROC GetProcAddress(HMODULE hModule, LPCSTR lpProcName);
  GetProcAddress: { parameters: ["pointer", "buffer"], result: "pointer" },

  // ---- pipes, files ----

  // BOOL CreatePipe(PHANDLE hReadPipe, PHANDLE hWritePipe, LPSECURITY_ATTRIBUTES lpPipeAttributes,
  //   DWORD nSize);
  CreatePipe: { parameters: ["buffer", "buffer", "buffer", "u32"], result: "i32" },
  // BOOL SetHandleInformation(HANDLE hObject, DWORD dwMask, DWORD dwFlags);
  SetHandleInformation: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  // BOOL ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
  //   LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped);
  ReadFile: { parameters: ["pointer", "buffer", "u32", "buffer", "pointer"], result: "i32" },
  // BOOL ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
  //   LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped);  -- a pipe read, on a pool thread
  ReadFileAsync: {
    name: "ReadFile",
    parameters: ["pointer", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  // DWORD GetFinalPathNameByHandleW(HANDLE hFile, LPWSTR lpszFilePath, DWORD cchFilePath,
  //   DWORD dwFlags);
  GetFinalPathNameByHandleW: { parameters: ["pointer", "buffer", "u32", "u32"], result: "u32" },
  // DWORD GetTempPathW(DWORD nBufferLength, LPWSTR lpBuffer);
  GetTempPathW: { parameters: ["u32", "buffer"], result: "u32" },

  // ---- memory and errors ----

  // LPVOID VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType, DWORD flProtect);
  VirtualAlloc: { parameters: ["pointer", "u64", "u32", "u32"], result: "pointer" },
  // BOOL VirtualFree(LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType);
  VirtualFree: { parameters: ["pointer", "u64", "u32"], result: "i32" },
  // HLOCAL LocalFree(HLOCAL hMem);
  LocalFree: { parameters: ["pointer"], result: "pointer" },
  // DWORD GetLastError(void);
  GetLastError: { parameters: [], result: "u32" },
  // BOOL CloseHandle(HANDLE hObject);
  CloseHandle: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded kernel32 symbols. */
export type Kernel32Symbols = Deno.DynamicLibrary<typeof kernel32Symbols>["symbols"];

/**
 * Opens `kernel32.dll` on first use (Windows only; elsewhere throws `UnsupportedError`).
 *
 * @example
 * ```ts ignore
 * import { kernel32 } from "./kernel32.ts";
 * const pid = kernel32().GetCurrentProcessId();
 * ```
 */
export const kernel32: () => Kernel32Symbols = lazyLibrary("kernel32.dll", kernel32Symbols);
