/*
 * Independent oracle for the port access check (built by experiments/_wine/prepare.ts with
 * mingw-w64, run under Wine by tests/ffi/nt/security_windows_test.ts). For each SDDL argument and
 * each of two tokens it asks Win32 AccessCheck (not our NtAccessCheck binding) for PORT_CONNECT
 * (1) with the ALPC Port mapping, and prints one line:
 *   <index>\t<token>\t<granted 0|1>\t<granted mask in hex>     or     <index>\t<token>\terror <code>
 * Tokens: "process" (this process's, an identification-level copy by DuplicateToken) and
 * "restricted" (CreateRestrictedToken with DISABLE_MAX_PRIVILEGE and Administrators deny-only,
 * then the same copy).
 */
#include <windows.h>
#include <sddl.h>
#include <stdio.h>

static void check(int index, const char *name, HANDLE token, PSECURITY_DESCRIPTOR sd) {
  GENERIC_MAPPING mapping = {0x20001, 0x10001, 0, 0x1f0001};
  BYTE privileges[256];
  DWORD length = sizeof privileges, granted = 0;
  BOOL status = FALSE;
  if (!AccessCheck(sd, token, 1, &mapping, (PPRIVILEGE_SET)privileges, &length, &granted,
                   &status)) {
    printf("%d\t%s\terror %lu\n", index, name, GetLastError());
    return;
  }
  printf("%d\t%s\t%d\t0x%08lx\n", index, name, status ? 1 : 0, granted);
}

int wmain(int argc, wchar_t **argv) {
  HANDLE primary, process, restricted, restrictedCopy;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY | TOKEN_DUPLICATE, &primary)) {
    printf("error=OpenProcessToken %lu\n", GetLastError());
    return 1;
  }
  BYTE admins[SECURITY_MAX_SID_SIZE];
  DWORD adminsSize = sizeof admins;
  SID_AND_ATTRIBUTES deny = {admins, 0};
  if (!DuplicateToken(primary, SecurityIdentification, &process) ||
      !CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins, &adminsSize) ||
      !CreateRestrictedToken(primary, DISABLE_MAX_PRIVILEGE, 1, &deny, 0, NULL, 0, NULL,
                             &restricted) ||
      !DuplicateToken(restricted, SecurityIdentification, &restrictedCopy)) {
    printf("error=tokens %lu\n", GetLastError());
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(argv[i], SDDL_REVISION_1, &sd,
                                                              NULL)) {
      printf("%d\tsddl\terror %lu\n", i - 1, GetLastError());
      continue;
    }
    check(i - 1, "process", process, sd);
    check(i - 1, "restricted", restrictedCopy, sd);
    LocalFree(sd);
  }
  CloseHandle(restrictedCopy);
  CloseHandle(restricted);
  CloseHandle(process);
  CloseHandle(primary);
  return 0;
}
