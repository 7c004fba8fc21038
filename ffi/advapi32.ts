/**
 * The `advapi32.dll` symbol table (Windows x64) and its lazy loader: tokens, privileges,
 * impersonation, SDDL and SIDs.
 *
 * Widths: `BOOL` i32, `DWORD` u32, enums (`SECURITY_IMPERSONATION_LEVEL`, `TOKEN_TYPE`,
 * `TOKEN_INFORMATION_CLASS`) u32, handles and pointers pointer/buffer.
 *
 * @module
 */

import { lazyLibrary } from "./_loader.ts";

/**
 * The advapi32 symbols the toolkit binds.
 *
 * @example
 * ```ts
 * import { advapi32Symbols } from "./advapi32.ts";
 * advapi32Symbols.CreateRestrictedToken.parameters.length; // 9
 * ```
 */
export const advapi32Symbols = {
  // BOOL CreateProcessAsUserW(HANDLE hToken, LPCWSTR lpApplicationName, LPWSTR lpCommandLine,
  //   LPSECURITY_ATTRIBUTES lpProcessAttributes, LPSECURITY_ATTRIBUTES lpThreadAttributes,
  //   BOOL bInheritHandles, DWORD dwCreationFlags, LPVOID lpEnvironment,
  //   LPCWSTR lpCurrentDirectory, LPSTARTUPINFOW lpStartupInfo,
  //   LPPROCESS_INFORMATION lpProcessInformation);
  CreateProcessAsUserW: {
    parameters: [
      "pointer",
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
  // BOOL OpenProcessToken(HANDLE ProcessHandle, DWORD DesiredAccess, PHANDLE TokenHandle);
  OpenProcessToken: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // BOOL DuplicateTokenEx(HANDLE hExistingToken, DWORD dwDesiredAccess,
  //   LPSECURITY_ATTRIBUTES lpTokenAttributes, SECURITY_IMPERSONATION_LEVEL ImpersonationLevel,
  //   TOKEN_TYPE TokenType, PHANDLE phNewToken);
  DuplicateTokenEx: {
    parameters: ["pointer", "u32", "buffer", "u32", "u32", "buffer"],
    result: "i32",
  },
  // BOOL CreateRestrictedToken(HANDLE ExistingTokenHandle, DWORD Flags, DWORD DisableSidCount,
  //   PSID_AND_ATTRIBUTES SidsToDisable, DWORD DeletePrivilegeCount,
  //   PLUID_AND_ATTRIBUTES PrivilegesToDelete, DWORD RestrictedSidCount,
  //   PSID_AND_ATTRIBUTES SidsToRestrict, PHANDLE NewTokenHandle);
  CreateRestrictedToken: {
    parameters: ["pointer", "u32", "u32", "buffer", "u32", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  // BOOL SetTokenInformation(HANDLE TokenHandle, TOKEN_INFORMATION_CLASS TokenInformationClass,
  //   LPVOID TokenInformation, DWORD TokenInformationLength);
  SetTokenInformation: { parameters: ["pointer", "u32", "buffer", "u32"], result: "i32" },
  // BOOL GetTokenInformation(HANDLE TokenHandle, TOKEN_INFORMATION_CLASS TokenInformationClass,
  //   LPVOID TokenInformation, DWORD TokenInformationLength, PDWORD ReturnLength);
  GetTokenInformation: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // BOOL ImpersonateLoggedOnUser(HANDLE hToken);
  ImpersonateLoggedOnUser: { parameters: ["pointer"], result: "i32" },
  // BOOL RevertToSelf(void);
  RevertToSelf: { parameters: [], result: "i32" },
  // BOOL SetThreadToken(PHANDLE Thread, HANDLE Token);
  SetThreadToken: { parameters: ["buffer", "pointer"], result: "i32" },
  // BOOL LookupPrivilegeValueW(LPCWSTR lpSystemName, LPCWSTR lpName, PLUID lpLuid);
  LookupPrivilegeValueW: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  // BOOL AdjustTokenPrivileges(HANDLE TokenHandle, BOOL DisableAllPrivileges,
  //   PTOKEN_PRIVILEGES NewState, DWORD BufferLength, PTOKEN_PRIVILEGES PreviousState,
  //   PDWORD ReturnLength);
  AdjustTokenPrivileges: {
    parameters: ["pointer", "i32", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  // BOOL ConvertStringSecurityDescriptorToSecurityDescriptorW(LPCWSTR StringSecurityDescriptor,
  //   DWORD StringSDRevision, PSECURITY_DESCRIPTOR *SecurityDescriptor,
  //   PULONG SecurityDescriptorSize);
  ConvertStringSecurityDescriptorToSecurityDescriptorW: {
    parameters: ["buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  // BOOL ConvertSecurityDescriptorToStringSecurityDescriptorW(
  //   PSECURITY_DESCRIPTOR SecurityDescriptor, DWORD RequestedStringSDRevision,
  //   SECURITY_INFORMATION SecurityInformation, LPWSTR *StringSecurityDescriptor,
  //   PULONG StringSecurityDescriptorLen);
  ConvertSecurityDescriptorToStringSecurityDescriptorW: {
    parameters: ["buffer", "u32", "u32", "buffer", "buffer"],
    result: "i32",
  },
  // BOOL ConvertSidToStringSidW(PSID Sid, LPWSTR *StringSid);
  ConvertSidToStringSidW: { parameters: ["pointer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded advapi32 symbols. */
export type Advapi32Symbols = Deno.DynamicLibrary<typeof advapi32Symbols>["symbols"];

/**
 * Opens `advapi32.dll` on first use (Windows only; elsewhere throws `UnsupportedError`).
 *
 * @example
 * ```ts ignore
 * import { advapi32 } from "./advapi32.ts";
 * advapi32().RevertToSelf();
 * ```
 */
export const advapi32: () => Advapi32Symbols = lazyLibrary("advapi32.dll", advapi32Symbols);
