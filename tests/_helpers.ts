/**
 * Shared test helpers: where a test can run, and why not when it cannot.
 *
 * @module
 */

import { fromFileUrl } from "@std/path/from-file-url";
import { isUnsupported } from "../ffi/status.ts";
import { outputWithDeadline } from "../experiments/_deadline.ts";
import { shebangFlags } from "../experiments/_permissions.ts";

/** The Linux build of Deno (pure tests and the mingw oracles). */
export const ON_LINUX: boolean = Deno.build.os === "linux";
/** The Windows build of Deno (on Windows or under Wine). */
export const ON_WINDOWS_BUILD: boolean = Deno.build.os === "windows";

/** Why a test cannot run here, or `null` when it can (a probe's answer). */
export type WhyNot = string | null;

/** Why a Windows-only test cannot run on the Linux build. */
export const NOT_WINDOWS = "needs the Windows build of Deno (deno task test:wine, or Windows)";

/** `null` on the Windows build of Deno (Windows, or under Wine), else {@link NOT_WINDOWS}. */
export const WINDOWS_ONLY: WhyNot = ON_WINDOWS_BUILD ? null : NOT_WINDOWS;

/**
 * A test that runs only where `whyNot` is `null` (the Windows build, LPC, an elevated prompt, Wine
 * prepared, a tool on PATH...); elsewhere it is ignored and its name ends with
 * `(ignored: <whyNot>)`, so the report says why. `name` is its name either way, or
 * `[name when it runs, shorter name when ignored]`.
 *
 * ```ts
 * conditionalTest("the harness runs a child", WINE_WHY, async () => { ... });
 * conditionalTest(["a long name when it runs", "a short one"], ON_LINUX ? null : "Linux only", () => {});
 * ```
 */
export function conditionalTest(
  name: string | readonly [string, string],
  whyNot: WhyNot,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void {
  const [runs, ignored] = typeof name === "string" ? [name, name] : name;
  Deno.test({
    name: whyNot === null ? runs : `${ignored} (ignored: ${whyNot})`,
    ignore: whyNot !== null,
    fn,
  });
}

/**
 * A Windows-only test: {@link conditionalTest} with `whyNot` {@link WINDOWS_ONLY} when not given,
 * or a narrower reason (`LPC_WHY`, an elevated prompt...).
 *
 * ```ts
 * windowsTest("a directory object opens", () => { ... });
 * windowsTest("a real round trip", LPC_WHY, async () => { ... });
 * ```
 */
export function windowsTest(
  name: string | readonly [string, string],
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void;
export function windowsTest(
  name: string | readonly [string, string],
  whyNot: WhyNot,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void;
export function windowsTest(
  name: string | readonly [string, string],
  whyNotOrFn: WhyNot | ((t: Deno.TestContext) => void | Promise<void>),
  fn?: (t: Deno.TestContext) => void | Promise<void>,
): void {
  if (typeof whyNotOrFn === "function") conditionalTest(name, WINDOWS_ONLY, whyNotOrFn);
  else conditionalTest(name, whyNotOrFn, fn!);
}

/** The deadline of a test's child run unless the test gives its own. */
export const CHILD_DEADLINE_MS = 120_000;

/**
 * Runs a command and returns its exit code and output (never throws for a missing binary). A
 * child still running after `deadlineMs` (default {@link CHILD_DEADLINE_MS}) is killed, and the
 * test fails with an error naming the command and what it wrote until then.
 */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; deadlineMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string; missing: boolean }> {
  const deadlineMs = options.deadlineMs ?? CHILD_DEADLINE_MS;
  let out;
  try {
    out = await outputWithDeadline(cmd, args, {
      deadlineMs,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { code: -1, stdout: "", stderr: "", missing: true };
    }
    throw e;
  }
  if (out.timedOut) {
    throw new Error(
      `${cmd} ${args.join(" ")}: no exit within ${deadlineMs} ms (killed).\n` +
        `stdout: ${out.stdout.slice(-2000)}\nstderr: ${out.stderr.slice(-2000)}`,
    );
  }
  return { code: out.code, stdout: out.stdout, stderr: out.stderr, missing: false };
}

/**
 * Runs one of the experiments (`exp1`, `exp2`, `exp3`) with `--json` and these arguments, in a
 * child Deno with the flags the Windows tests have always given it, and parses its document.
 */
export async function runExperimentJson<T>(
  name: "exp1" | "exp2" | "exp3",
  args: string[],
): Promise<{ code: number; doc: T; stderr: string }> {
  const r = await run(Deno.execPath(), [
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-run",
    `${REPO_ROOT}experiments/${name}/${name}.ts`,
    "--json",
    ...args,
  ]);
  let doc: T;
  try {
    doc = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${name}.ts --json exited ${r.code} with no JSON document:\n${r.stderr}`);
  }
  return { code: r.code, doc, stderr: r.stderr };
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

/**
 * The repository root, ending with `/` (tests/ is one level down): decoded by `fromFileUrl`, so a
 * checkout under `a b/` is found (`URL.pathname` stays percent-encoded), with forward slashes on
 * Windows too.
 */
export const REPO_ROOT: string = Deno.build.os === "windows"
  ? fromFileUrl(new URL("..", import.meta.url)).replaceAll("\\", "/")
  : fromFileUrl(new URL("..", import.meta.url));

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

/** True when `path` exists (a file or a folder). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * On Linux, whether the Wine harness has prepared the Windows Deno and its prefix here
 * (`deno task test:wine` does), so a test may run it.
 */
export const WINE_PREPARED: boolean = ON_LINUX && exists(`${REPO_ROOT}.tools/wine/bin/deno.exe`) &&
  exists(`${REPO_ROOT}.tools/wine/prefix/system.reg`);

/**
 * `null` where a test may drive the Wine harness from Linux ({@link WINE_PREPARED}), else why
 * not: Wine is not prepared, or this is the Windows build.
 */
export const WINE_WHY: WhyNot = WINE_PREPARED
  ? null
  : ON_LINUX
  ? "Wine is not prepared here; deno task test:wine prepares it"
  : "the Wine harness runs from the Linux Deno";

/**
 * The runnable scripts: every `.ts` file under experiments/ and tests/ whose first line is `#!`,
 * by path relative to the repository (sorted), with its shebang's permission flags.
 */
export function runnableScripts(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(`${REPO_ROOT}${dir}`)) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory) walk(rel);
      else if (e.name.endsWith(".ts")) {
        const text = Deno.readTextFileSync(`${REPO_ROOT}${rel}`);
        if (text.startsWith("#!")) out.set(rel, shebangFlags(text));
      }
    }
  };
  walk("experiments");
  walk("tests");
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}
