/**
 * Shared test helpers: where a test can run, and why not when it cannot.
 *
 * @module
 */

import { isUnsupported } from "../ffi/status.ts";

/** The Linux build of Deno (pure tests and the mingw oracles). */
export const ON_LINUX: boolean = Deno.build.os === "linux";
/** The Windows build of Deno (on Windows or under Wine). */
export const ON_WINDOWS_BUILD: boolean = Deno.build.os === "windows";

/** Runs a command and returns its exit code and output (never throws for a missing binary). */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string; missing: boolean }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: options.env } : {}),
    }).output();
    const td = new TextDecoder();
    return {
      code: out.code,
      stdout: td.decode(out.stdout),
      stderr: td.decode(out.stderr),
      missing: false,
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { code: -1, stdout: "", stderr: "", missing: true };
    }
    throw e;
  }
}

/** True if `cmd` can be started here (checked once per name). */
const found = new Map<string, boolean>();
export async function hasCommand(cmd: string): Promise<boolean> {
  if (!found.has(cmd)) found.set(cmd, !(await run(cmd, ["--version"])).missing);
  return found.get(cmd)!;
}

/**
 * Whether real LPC works on this system: tries the cheapest LPC call and reports why not.
 * Returns `null` when LPC is available, otherwise the reason (for an `ignore`d test's name).
 */
export function lpcUnavailableReason(probe: () => void): string | null {
  if (!ON_WINDOWS_BUILD) return "needs Windows";
  try {
    probe();
    return null;
  } catch (e) {
    if (isUnsupported(e)) return (e as Error).message.split(":")[0] ?? "LPC unsupported";
    throw e;
  }
}

/** The repository root (tests/ is one level down). */
export const REPO_ROOT: string = new URL("..", import.meta.url).pathname.replace(
  /^\/([A-Za-z]:)/,
  "$1",
);

/** wine-harness.md: the ntdll exports Wine 8.0 lacks. Exactly these are optional. */
export const WINE_MISSING_NTDLL = [
  "NtCreateWaitablePort",
  "NtRequestPort",
  "NtReplyPort",
  "NtReplyWaitReplyPort",
  "NtReplyWaitReceivePortEx",
  "NtImpersonateClientOfPort",
  "NtReadRequestData",
  "NtWriteRequestData",
  "NtQueryInformationPort",
  "NtImpersonateThread",
];
