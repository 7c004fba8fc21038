/**
 * The Windows build of Deno under Wine 8.0, prepared once and cached in `.tools/wine/`:
 *
 * - apt: `wine64`, `wine`, `gcc-mingw-w64-x86-64` (apt-get update first; skipped when installed);
 * - npm: `@deno/win32-x64@2.9.6`, fetched with `npm pack` (a tarball, no install scripts);
 * - fix 1: `bcryptprimitives.dll` exporting `ProcessPrng`, built from `process_prng.c`;
 * - fix 2: a private copy of `deno.exe` whose one `VirtualAlloc2\0` string reads `VirtualAllocX\0`,
 *   so V8 falls back from the placeholder reservations Wine 8.0 rejects;
 * - the C oracles in `tests/native/*.c` built as Windows programs;
 * - a private `WINEPREFIX`.
 *
 * Idempotent: a stamp records what was built from what; a second run reuses everything.
 * Used by `tests/wine/run.ts` (the `test:wine` task) and by the lab.
 *
 * This is the one entry; the harness itself is in `_wine/`: `env.ts` (where everything is, the
 * environment of a run), `prepare.ts` (preparing and caching), `run.ts` (the Windows Deno run with
 * a deadline and a signal) and `prefix.ts` (the prefix's processes and its wineserver).
 *
 * @module
 */

export {
  CACHE_DIR,
  ORACLE_DIR,
  TOOLS_DIR,
  WINDOWS_DENO_VERSION,
  type WineDeno,
  wineEnv,
} from "./_wine/env.ts";
export { GROWTH_LIMIT_MB, patchVirtualAlloc2, prepareWine, treeBytes } from "./_wine/prepare.ts";
export {
  isWineNoise,
  PIPE_GRACE_MS,
  type RunOptions,
  runUnderWine,
  type WineRun,
} from "./_wine/run.ts";
export { nodeShimDirs, prefixProcesses, stopWineServer } from "./_wine/prefix.ts";
