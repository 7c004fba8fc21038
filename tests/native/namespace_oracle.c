/*
 * Independent object-namespace lister (built by experiments/_wine_harness.ts with mingw-w64; run under
 * Wine or Windows by tests/ffi/nt/namespace_windows_test.ts).
 *
 *   namespace_oracle.exe [ROOT]
 *
 * Prints one `path<TAB>type[<TAB>link target]` line per object below ROOT (default `\`), recursing into directories
 * (symbolic links are not followed), `!error<TAB>path<TAB>0xSTATUS` for a directory it cannot read,
 * and last `#elapsed_us<TAB>N`: the walk's own time, without process start-up. Batch
 * NtQueryDirectoryObject first, single-entry mode where batch is not implemented (Wine).
 */
#include <windows.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

typedef struct {
  UNICODE_STRING Name;
  UNICODE_STRING TypeName;
} DIR_INFO;

NTSTATUS NTAPI NtOpenDirectoryObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQueryDirectoryObject(HANDLE, PVOID, ULONG, BOOLEAN, BOOLEAN, PULONG, PULONG);
NTSTATUS NTAPI NtOpenSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQuerySymbolicLinkObject(HANDLE, PUNICODE_STRING, PULONG);

/* Prints `\t<target>` for the symbolic link at `path` (nothing if it cannot be read). */
static void print_link_target(const wchar_t *path) {
  UNICODE_STRING name, target;
  OBJECT_ATTRIBUTES oa;
  HANDLE link;
  static wchar_t chars[4096];
  RtlInitUnicodeString(&name, path);
  InitializeObjectAttributes(&oa, &name, OBJ_CASE_INSENSITIVE, NULL, NULL);
  if (NtOpenSymbolicLinkObject(&link, 0x1, &oa) < 0) return;
  target.Buffer = chars;
  target.Length = 0;
  target.MaximumLength = sizeof chars - 2;
  ULONG returned = 0;
  if (NtQuerySymbolicLinkObject(link, &target, &returned) >= 0) {
    chars[target.Length / 2] = 0;
    putchar('\t');
    char utf8[8192];
    int n = WideCharToMultiByte(CP_UTF8, 0, chars, -1, utf8, sizeof utf8, NULL, NULL);
    fputs(n > 0 ? utf8 : "?", stdout);
  }
  CloseHandle(link);
}

#define S_NO_MORE_ENTRIES ((NTSTATUS)0x8000001AL)
#define S_NOT_IMPLEMENTED ((NTSTATUS)0xC0000002L)
#define S_BUFFER_TOO_SMALL ((NTSTATUS)0xC0000023L)

static BYTE buffer[64 * 1024];
static int single_entry = 0;

static void print_path(const wchar_t *path) {
  char utf8[4096];
  int n = WideCharToMultiByte(CP_UTF8, 0, path, -1, utf8, sizeof utf8, NULL, NULL);
  fputs(n > 0 ? utf8 : "?", stdout);
}

static void walk(const wchar_t *path, int depth) {
  UNICODE_STRING name;
  OBJECT_ATTRIBUTES oa;
  HANDLE dir;
  RtlInitUnicodeString(&name, path);
  InitializeObjectAttributes(&oa, &name, OBJ_CASE_INSENSITIVE, NULL, NULL);
  NTSTATUS status = NtOpenDirectoryObject(&dir, 0x3, &oa);
  if (status < 0) {
    fputs("!error\t", stdout);
    print_path(path);
    printf("\t0x%08lX\n", (unsigned long)status);
    return;
  }
  /* Subdirectories are walked after this directory's own entries. */
  int count = 0;
  wchar_t (*mine)[4096] = malloc(sizeof(wchar_t[4096]) * 1024);
  ULONG context = 0, returned = 0;
  BOOLEAN restart = TRUE;
  for (;;) {
    status = NtQueryDirectoryObject(dir, buffer, sizeof buffer, (BOOLEAN)single_entry, restart,
                                    &context, &returned);
    if (status == S_NOT_IMPLEMENTED && !single_entry) {
      single_entry = 1;
      restart = TRUE;
      context = 0;
      continue;
    }
    if (status == S_NO_MORE_ENTRIES) break;
    if (status < 0) {
      fputs("!error\t", stdout);
      print_path(path);
      printf("\t0x%08lX\n", (unsigned long)status);
      break;
    }
    restart = FALSE;
    DIR_INFO *info = (DIR_INFO *)buffer;
    int n = 0;
    for (; info->Name.Length || info->Name.Buffer; info++) {
      wchar_t child[4096];
      size_t len = wcslen(path);
      _snwprintf(child, 4096, L"%ls%ls%.*ls", path, (len && path[len - 1] == L'\\') ? L"" : L"\\",
                 (int)(info->Name.Length / 2), info->Name.Buffer);
      child[4095] = 0;
      print_path(child);
      printf("\t%.*ls", (int)(info->TypeName.Length / 2), info->TypeName.Buffer);
      if (info->TypeName.Length == 24 && wcsncmp(info->TypeName.Buffer, L"SymbolicLink", 12) == 0) {
        print_link_target(child);
      }
      putchar('\n');
      if (info->TypeName.Length == 18 && wcsncmp(info->TypeName.Buffer, L"Directory", 9) == 0 &&
          count < 1024) {
        wcscpy(mine[count++], child);
      }
      n++;
      if (single_entry) break;
    }
    if (!single_entry && n == 0) break;
  }
  CloseHandle(dir);
  if (depth < 64) {
    for (int i = 0; i < count; i++) walk(mine[i], depth + 1);
  }
  free(mine);
}

int wmain(int argc, wchar_t **argv) {
  LARGE_INTEGER f, t0, t1;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&t0);
  walk(argc > 1 ? argv[1] : L"\\", 0);
  QueryPerformanceCounter(&t1);
  printf("#elapsed_us\t%lld\n", (long long)((t1.QuadPart - t0.QuadPart) * 1000000 / f.QuadPart));
  return 0;
}
