/*
 * Independent oracle for the token queries (built by experiments/_wine_harness.ts with mingw-w64, run
 * under Wine or Windows by tests/windows_test.ts). Prints `key=value` lines:
 *   user_sid      the process token's user SID (ConvertSidToStringSidA)
 *   integrity     the integrity label SID
 *   elevated      TokenElevation (0 or 1)
 *   luid.<name>   LookupPrivilegeValueA for a few privileges
 */
#include <windows.h>
#include <sddl.h>
#include <stdio.h>

static void print_sid(const char *key, PSID sid) {
  char *s = NULL;
  if (ConvertSidToStringSidA(sid, &s)) {
    printf("%s=%s\n", key, s);
    LocalFree(s);
  } else {
    printf("%s=error %lu\n", key, GetLastError());
  }
}

int wmain(void) {
  HANDLE token;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    printf("error=OpenProcessToken %lu\n", GetLastError());
    return 1;
  }
  BYTE buf[1024];
  DWORD len = 0;
  if (GetTokenInformation(token, TokenUser, buf, sizeof buf, &len)) {
    print_sid("user_sid", ((TOKEN_USER *)buf)->User.Sid);
  }
  if (GetTokenInformation(token, TokenIntegrityLevel, buf, sizeof buf, &len)) {
    print_sid("integrity", ((TOKEN_MANDATORY_LABEL *)buf)->Label.Sid);
  }
  TOKEN_ELEVATION elevation;
  if (GetTokenInformation(token, TokenElevation, &elevation, sizeof elevation, &len)) {
    printf("elevated=%lu\n", elevation.TokenIsElevated ? 1UL : 0UL);
  }
  const char *privileges[] = {"SeDebugPrivilege", "SeTcbPrivilege", "SeChangeNotifyPrivilege"};
  for (int i = 0; i < 3; i++) {
    LUID luid;
    if (LookupPrivilegeValueA(NULL, privileges[i], &luid)) {
      printf("luid.%s=%lu\n", privileges[i], luid.LowPart);
    }
  }
  CloseHandle(token);
  return 0;
}
