/**
 * Where the Wine setup lives (everything cached in `.tools/wine/`, git-ignored), the environment
 * every Wine run gets, and what {@link WineDeno} a prepared setup is; with the few shell helpers
 * the harness uses.
 *
 * @module
 */

import { fromFileUrl } from "jsr:@std/path@^1.1.6/from-file-url";

/** The repository root, ending with `/`. */
export const ROOT: string = fromFileUrl(new URL("../../", import.meta.url));
/** The pinned Windows Deno. */
export const WINDOWS_DENO_VERSION = "2.9.6";
/** The Linux Deno and the Wine cache (git-ignored). */
export const TOOLS_DIR = `${ROOT}.tools`;
/** Where everything is cached (git-ignored). */
export const CACHE_DIR = `${TOOLS_DIR}/wine`;
/** The patched `deno.exe` and its `bcryptprimitives.dll`. */
export const BIN = `${CACHE_DIR}/bin`;
/** The private `WINEPREFIX`. */
export const PREFIX = `${CACHE_DIR}/prefix`;
/** Where the C oracles are built (`<name>.exe` for `tests/native/<name>.c`). */
export const ORACLE_DIR = `${CACHE_DIR}/oracles`;

/** What `prepareWine` returns: a prepared Windows Deno. */
export interface WineDeno {
  /** The patched `deno.exe`. */
  exe: string;
  /** The environment for `wine`. */
  env: Record<string, string>;
  /** The program that runs {@link exe} (default `wine`; a test may put a stand-in here). */
  loader?: string;
}

/** The environment every Wine run gets. */
export function wineEnv(): Record<string, string> {
  return {
    WINEPREFIX: PREFIX,
    WINEDEBUG: "-all",
    // Our ProcessPrng DLL next to deno.exe, not a builtin one.
    WINEDLLOVERRIDES: "bcryptprimitives=n,b;mscoree=;mshtml=",
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    // No `node` shim: see nodeShimDirs.
    DENO_DISABLE_NODE_SHIM: "1",
    DENO_LPC_ORACLES: ORACLE_DIR,
  };
}

/** A line of the harness's own on stderr. */
export function say(msg: string): void {
  console.error(`[wine] ${msg}`);
}

/** Runs a command to its end; `ok` false (not a throw) when it fails or is not installed. */
export async function exec(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      ...(env ? { env } : {}),
    }).output();
    const td = new TextDecoder();
    return { ok: r.success, out: td.decode(r.stdout) + td.decode(r.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { ok: false, out: `${cmd}: not found` };
    throw e;
  }
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
