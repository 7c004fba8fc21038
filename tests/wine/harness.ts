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
 * @module
 */

import { fileUrlToPath } from "../_helpers.ts";
import { DEADLINE_EXIT_CODE } from "../../experiments/_deadline.ts";

const ROOT = fileUrlToPath(new URL("../../", import.meta.url));
/** The pinned Windows Deno. */
export const WINDOWS_DENO_VERSION = "2.9.6";
/** Where everything is cached (git-ignored). */
export const CACHE_DIR = `${ROOT}.tools/wine`;
const BIN = `${CACHE_DIR}/bin`;
const PREFIX = `${CACHE_DIR}/prefix`;
/** Where the C oracles are built (`<name>.exe` for `tests/native/<name>.c`). */
export const ORACLE_DIR = `${CACHE_DIR}/oracles`;

/** Lines Wine prints on every run that mean nothing for us. Anything else is shown. */
const WINE_NOISE = [
  /wine32 is missing/i,
  /it looks like wine32/i,
  /multiarch/i,
  /dpkg --add-architecture/i,
  /apt-get install wine32/i,
  /nodrv_CreateWindow/,
  /Make sure that your X server is running/,
  /systray/i,
  /rpcss/i,
  /wine: configuration in .* has been updated/,
  /^\s*$/,
];

/** True for a Wine stderr line that is known noise. */
export function isWineNoise(line: string): boolean {
  return WINE_NOISE.some((re) => re.test(line));
}

function say(msg: string): void {
  console.error(`[wine] ${msg}`);
}

async function exec(
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

async function has(cmd: string): Promise<boolean> {
  return (await exec("sh", ["-c", `command -v ${cmd}`])).ok;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function ensureApt(): Promise<void> {
  const missing: string[] = [];
  if (!(await has("wine"))) missing.push("wine64", "wine");
  if (!(await has("x86_64-w64-mingw32-gcc"))) missing.push("gcc-mingw-w64-x86-64");
  if (missing.length === 0) return;
  say(`apt-get install ${missing.join(" ")}`);
  const root = (await exec("id", ["-u"])).out.trim() === "0";
  const apt = (
    args: string[],
  ) => (root ? exec("apt-get", args, APT_ENV) : exec("sudo", ["apt-get", ...args], APT_ENV));
  const update = await apt(["update", "-qq"]);
  if (!update.ok) throw new Error(`apt-get update failed:\n${update.out}`);
  const install = await apt(["install", "-y", "-qq", ...missing]);
  if (!install.ok) throw new Error(`apt-get install ${missing.join(" ")} failed:\n${install.out}`);
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };

/** Replaces the single `VirtualAlloc2\0` import-name string; returns the patched copy. */
export function patchVirtualAlloc2(exe: Uint8Array): Uint8Array<ArrayBuffer> {
  const needle = new TextEncoder().encode("VirtualAlloc2\0");
  const found: number[] = [];
  outer: for (let i = 0; i <= exe.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (exe[i + j] !== needle[j]) continue outer;
    found.push(i);
  }
  if (found.length !== 1) {
    throw new Error(`expected one "VirtualAlloc2\\0" in deno.exe, found ${found.length}`);
  }
  const out = new Uint8Array(exe);
  out[found[0]! + needle.length - 2] = "X".charCodeAt(0);
  return out;
}

interface Stamp {
  deno: string;
  exeSha: string;
  prngSha: string;
  oracles: Record<string, string>;
}

async function ensureDeno(stamp: Partial<Stamp>): Promise<Partial<Stamp>> {
  const tgz = `${CACHE_DIR}/deno-win32-x64-${WINDOWS_DENO_VERSION}.tgz`;
  if (stamp.deno === WINDOWS_DENO_VERSION && await exists(`${BIN}/deno.exe`)) return stamp;
  if (!(await exists(tgz))) {
    say(`npm pack @deno/win32-x64@${WINDOWS_DENO_VERSION}`);
    const r = await new Deno.Command("npm", {
      args: ["pack", "--silent", `@deno/win32-x64@${WINDOWS_DENO_VERSION}`],
      cwd: CACHE_DIR,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) throw new Error(`npm pack failed:\n${new TextDecoder().decode(r.stderr)}`);
  }
  const tmp = await Deno.makeTempDir({ dir: CACHE_DIR });
  try {
    const t = await exec("tar", ["xzf", tgz, "-C", tmp]);
    if (!t.ok) throw new Error(`tar failed: ${t.out}`);
    const exe = await Deno.readFile(`${tmp}/package/deno.exe`);
    const patched = patchVirtualAlloc2(exe);
    await Deno.mkdir(BIN, { recursive: true });
    await Deno.writeFile(`${BIN}/deno.exe`, patched);
    say(`deno.exe ${WINDOWS_DENO_VERSION} patched (VirtualAlloc2 -> VirtualAllocX)`);
    return { ...stamp, deno: WINDOWS_DENO_VERSION, exeSha: await sha256(patched) };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

async function compile(src: string, out: string, extra: string[]): Promise<void> {
  const r = await exec("x86_64-w64-mingw32-gcc", ["-O2", "-s", "-o", out, src, ...extra]);
  if (!r.ok) throw new Error(`x86_64-w64-mingw32-gcc ${src} failed:\n${r.out}`);
}

async function ensurePrng(stamp: Partial<Stamp>): Promise<Partial<Stamp>> {
  const src = `${ROOT}tests/wine/process_prng.c`;
  const sha = await sha256(await Deno.readFile(src));
  if (stamp.prngSha === sha && await exists(`${BIN}/bcryptprimitives.dll`)) return stamp;
  await compile(src, `${BIN}/bcryptprimitives.dll`, ["-shared", "-ladvapi32"]);
  say("bcryptprimitives.dll (ProcessPrng) built");
  return { ...stamp, prngSha: sha };
}

/** Each `tests/native/*_oracle.c` becomes `<name>.exe` in {@link ORACLE_DIR}. */
async function ensureOracles(stamp: Partial<Stamp>): Promise<Partial<Stamp>> {
  const oracles: Record<string, string> = { ...(stamp.oracles ?? {}) };
  await Deno.mkdir(ORACLE_DIR, { recursive: true });
  for await (const e of Deno.readDir(`${ROOT}tests/native`)) {
    if (!e.name.endsWith("_oracle.c")) continue;
    const src = `${ROOT}tests/native/${e.name}`;
    const exe = `${ORACLE_DIR}/${e.name.replace(/\.c$/, ".exe")}`;
    const sha = await sha256(await Deno.readFile(src));
    if (oracles[e.name] === sha && await exists(exe)) continue;
    await compile(src, exe, ["-municode", "-lntdll", "-ladvapi32"]);
    say(`oracle ${e.name} built`);
    oracles[e.name] = sha;
  }
  return { ...stamp, oracles };
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
    DENO_LPC_ORACLES: ORACLE_DIR,
  };
}

async function ensurePrefix(): Promise<void> {
  if (await exists(`${PREFIX}/system.reg`)) return;
  say("creating the Wine prefix (wineboot -i)");
  await Deno.mkdir(PREFIX, { recursive: true });
  const r = await exec("wineboot", ["-i"], { ...wineEnv() });
  if (!(await exists(`${PREFIX}/system.reg`))) throw new Error(`wineboot failed:\n${r.out}`);
}

/** What {@link prepareWine} returns. */
export interface WineDeno {
  /** The patched `deno.exe`. */
  exe: string;
  /** The environment for `wine`. */
  env: Record<string, string>;
}

/** Prepares (or reuses) Wine and the Windows Deno. */
export async function prepareWine(): Promise<WineDeno> {
  await ensureApt();
  await Deno.mkdir(CACHE_DIR, { recursive: true });
  const stampFile = `${CACHE_DIR}/stamp.json`;
  let stamp: Partial<Stamp> = {};
  try {
    stamp = JSON.parse(await Deno.readTextFile(stampFile));
  } catch { /* first run */ }
  const before = JSON.stringify(stamp);
  stamp = await ensureDeno(stamp);
  stamp = await ensurePrng(stamp);
  stamp = await ensureOracles(stamp);
  await ensurePrefix();
  if (JSON.stringify(stamp) !== before) await Deno.writeTextFile(stampFile, JSON.stringify(stamp));
  return { exe: `${BIN}/deno.exe`, env: wineEnv() };
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  write: (line: string) => void,
  filter: boolean,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    const lines = rest.split(/\r?\n/);
    rest = lines.pop() ?? "";
    for (const l of lines) if (!filter || !isWineNoise(l)) write(l);
  }
  if (rest && (!filter || !isWineNoise(rest))) write(rest);
}

/** Options for {@link runUnderWine}. */
export interface RunOptions {
  /** Working directory (default: the repository root). */
  cwd?: string | URL;
  /** Collect stdout instead of passing it through. */
  captureStdout?: boolean;
  /** Collect stderr (Wine's noise already filtered) instead of passing it through. */
  captureStderr?: boolean;
  /** Extra environment. */
  env?: Record<string, string>;
  /**
   * Kill the run after this many ms (every process of the prefix, with `wineserver -k`); the
   * result then has exit code 124 and a last stderr line naming the deadline. Default: none.
   */
  deadlineMs?: number;
}

/**
 * Runs the Windows Deno under Wine with `args`, streaming stderr without Wine's noise, and then
 * ends the prefix's processes and its wineserver, so no Wine process is left.
 */
export async function runUnderWine(
  wine: WineDeno,
  args: string[],
  options: RunOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command("wine", {
    args: [wine.exe, ...args],
    cwd: options.cwd ?? ROOT,
    env: { ...wine.env, ...(options.env ?? {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  let timedOut = false;
  const deadline = options.deadlineMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* it ended just now */ }
    // Its Windows children hold copies of the pipes: end every process of the prefix.
    void stopWineServer(wine);
  }, options.deadlineMs);
  const enc = new TextEncoder();
  const writeOut = options.captureStdout
    ? (l: string) => void (out += l + "\n")
    : (l: string) => Deno.stdout.writeSync(enc.encode(l + "\n"));
  await Promise.all([
    pump(child.stdout, writeOut, false),
    pump(
      child.stderr,
      options.captureStderr
        ? (l) => void (err += l + "\n")
        : (l) => Deno.stderr.writeSync(enc.encode(l + "\n")),
      true,
    ),
  ]);
  const { code } = await child.status;
  clearTimeout(deadline);
  await stopWineServer(wine);
  if (timedOut) {
    const line = `deadline: deno ${
      args.join(" ")
    } did not end within ${options.deadlineMs} ms; killed`;
    if (options.captureStderr) err += line + "\n";
    else console.error(line);
    return { code: DEADLINE_EXIT_CODE, stdout: out, stderr: err };
  }
  return { code, stdout: out, stderr: err };
}

/**
 * Ends every process of this private prefix (our Deno's children, and the services Wine starts on
 * its own) and waits for its wineserver to exit, so a run leaves no Wine process behind.
 */
export async function stopWineServer(wine: WineDeno): Promise<void> {
  await new Deno.Command("wineserver", { args: ["-k"], env: wine.env, stderr: "null" }).output();
  await new Deno.Command("wineserver", { args: ["-w"], env: wine.env, stderr: "null" }).output();
}
