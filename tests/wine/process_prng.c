/*
 * bcryptprimitives.dll!ProcessPrng for Wine 8.0, which lacks it.
 *
 * Rust's standard library (and so deno.exe) imports ProcessPrng statically; without it the Windows
 * Deno does not load under Wine 8.0. This DLL is built by tests/wine/run.ts with mingw-w64, placed
 * next to a private copy of deno.exe, and never committed as a binary.
 *
 * ProcessPrng fills the buffer from advapi32!SystemFunction036 (RtlGenRandom), whose length is a
 * ULONG, in chunks of at most 2^28 bytes.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID RandomBuffer, ULONG RandomBufferLength);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData) {
  const SIZE_T chunk = (SIZE_T)1 << 28;
  while (cbData > 0) {
    ULONG n = (ULONG)(cbData > chunk ? chunk : cbData);
    if (!SystemFunction036(pbData, n)) return FALSE;
    pbData += n;
    cbData -= n;
  }
  return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved) {
  (void)instance;
  (void)reason;
  (void)reserved;
  return TRUE;
}
