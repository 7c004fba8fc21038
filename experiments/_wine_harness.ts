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

import { fileUrlToPath } from "../tests/_helpers.ts";
import { DEADLINE_EXIT_CODE, INTERRUPTED_EXIT_CODE } from "./_deadline.ts";

const ROOT = fileUrlToPath(new URL("../", import.meta.url));
/** The pinned Windows Deno. */
export const WINDOWS_DENO_VERSION = "2.9.6";
/** The Linux Deno and the Wine cache (git-ignored). */
export const TOOLS_DIR = `${ROOT}.tools`;
/** Where everything is cached (git-ignored). */
export const CACHE_DIR = `${TOOLS_DIR}/wine`;
/**
 * What a run of the Wine suite may add to {@link TOOLS_DIR} once a first run has filled the caches
 * (issue 12: the `node` shim's copies added 93 MB per Windows Deno started).
 */
export const GROWTH_LIMIT_MB = 5;
const BIN = `${CACHE_DIR}/bin`;
const PREFIX = `${CACHE_DIR}/prefix`;
/**
 * Where the Windows Deno keeps its `node` shim, for each user of the prefix
 * (`%LOCALAPPDATA%\\deno\\node_compat_bin\\node.exe`, a hard link to `deno.exe` made when no `node`
 * is on PATH; Deno 2.9's `cli/node_compat_shim.rs`). Under Wine, once the link existed, every
 * Windows Deno left a 93 MB copy `node.exe.tmp-<pid>` there (65 copies, 6.3 GB, in one suite run):
 * the shim check compares the volume serial and the file index, and Wine gives `Z:` (deno.exe) and
 * `C:` (the shim) different serials, so the valid link looks stale; removing it is refused (it is
 * the image of the running process), so Deno copies itself to the temp name, and the rename onto
 * `node.exe` is refused too, leaving the copy.
 * {@link wineEnv} turns the shim off (`DENO_DISABLE_NODE_SHIM`: nothing here runs `node`), and
 * {@link prepareWine} removes what older runs left.
 */
export async function nodeShimDirs(): Promise<string[]> {
  const dirs: string[] = [];
  try {
    for await (const u of Deno.readDir(`${PREFIX}/drive_c/users`)) {
      const d = `${PREFIX}/drive_c/users/${u.name}/AppData/Local/deno/node_compat_bin`;
      if (u.isDirectory && await exists(d)) dirs.push(d);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return dirs;
}

/**
 * The Windows Deno caches the JavaScript it emits for every module it loads, also for the modules
 * the tests write into `%TEMP%` under random names and remove: about 70 kB a suite run that nothing
 * reads again. Removed before each run, so the cache does not grow run after run.
 */
async function removeTempEmits(): Promise<void> {
  try {
    for await (const u of Deno.readDir(`${PREFIX}/drive_c/users`)) {
      const deno = `${PREFIX}/drive_c/users/${u.name}/AppData/Local/deno`;
      const temp = `${deno}/gen/file/C/users/${u.name}/Temp`;
      if (u.isDirectory && await exists(temp)) await Deno.remove(temp, { recursive: true });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

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
    // No `node` shim: see nodeShimDirs.
    DENO_DISABLE_NODE_SHIM: "1",
    DENO_LPC_ORACLES: ORACLE_DIR,
  };
}

async function ensurePrefix(): Promise<void> {
  if (await exists(`${PREFIX}/system.reg`)) return;
  say("creating the Wine prefix (wineboot -i)");
  await Deno.mkdir(PREFIX, { recursive: true });
  const r = await exec("wineboot", ["-i"], { ...wineEnv() });
  await stopWineServer({ env: wineEnv() }); // wineboot leaves the services and the server running
  if (!(await exists(`${PREFIX}/system.reg`))) throw new Error(`wineboot failed:\n${r.out}`);
}

/** What {@link prepareWine} returns. */
export interface WineDeno {
  /** The patched `deno.exe`. */
  exe: string;
  /** The environment for `wine`. */
  env: Record<string, string>;
  /** The program that runs {@link exe} (default `wine`; a test may put a stand-in here). */
  loader?: string;
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
  for (const d of await nodeShimDirs()) {
    await Deno.remove(d, { recursive: true });
    say(`removed ${d.slice(ROOT.length)} (a \`node\` shim and its copies; the shim is off now)`);
  }
  await removeTempEmits();
  if (JSON.stringify(stamp) !== before) await Deno.writeTextFile(stampFile, JSON.stringify(stamp));
  return { exe: `${BIN}/deno.exe`, env: wineEnv() };
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  write: (line: string) => void,
  filter: boolean,
  signal: AbortSignal,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream(), { signal }).getReader();
  let rest = "";
  for (;;) {
    let chunk: ReadableStreamReadResult<string>;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (signal.aborted) break; // reading given up (see runUnderWine); keep what came
      throw e;
    }
    if (chunk.done) break;
    rest += chunk.value;
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
  /**
   * Ctrl-C: when it aborts, every process of the prefix is ended at once (as at the deadline) and
   * the result has exit code 130 and `interrupted`. An aborted signal starts nothing.
   */
  signal?: AbortSignal;
}

/** What {@link runUnderWine} returns. */
export interface WineRun {
  /** The Windows Deno's exit code; 124 at the deadline, 130 when interrupted. */
  code: number;
  /** Its stdout, when captured. */
  stdout: string;
  /** Its stderr without Wine's noise, when captured. */
  stderr: string;
  /** True when the signal ended the run. */
  interrupted: boolean;
}

/**
 * Runs the Windows Deno under Wine with `args`, streaming stderr without Wine's noise, and then
 * ends the prefix's processes and its wineserver, so no Wine process is left.
 */
export async function runUnderWine(
  wine: WineDeno,
  args: string[],
  options: RunOptions = {},
): Promise<WineRun> {
  const note = (line: string) => {
    if (options.captureStderr) err += line + "\n";
    else console.error(line);
  };
  let out = "";
  let err = "";
  if (options.signal?.aborted) {
    note(`interrupted: deno ${args.join(" ")} not started`);
    return { code: INTERRUPTED_EXIT_CODE, stdout: out, stderr: err, interrupted: true };
  }
  const child = new Deno.Command(wine.loader ?? "wine", {
    args: [wine.exe, ...args],
    cwd: options.cwd ?? ROOT,
    env: { ...wine.env, ...(options.env ?? {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ended: "deadline" | "interrupted" | undefined;
  let exited = false;
  void child.status.then(() => (exited = true));
  let stopping: Promise<void> | undefined;
  const end = (why: "deadline" | "interrupted") => {
    if (ended || exited) return;
    ended = why;
    try {
      child.kill("SIGKILL");
    } catch { /* it ended just now */ }
    // Its Windows children hold copies of the pipes: end every process of the prefix.
    stopping = stopWineServer(wine);
  };
  const deadline = options.deadlineMs === undefined
    ? undefined
    : setTimeout(() => end("deadline"), options.deadlineMs);
  const onAbort = () => end("interrupted");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const enc = new TextEncoder();
  const writeOut = options.captureStdout
    ? (l: string) => void (out += l + "\n")
    : (l: string) => Deno.stdout.writeSync(enc.encode(l + "\n"));
  try {
    const giveUp = new AbortController();
    const pumps = Promise.all([
      pump(child.stdout, writeOut, false, giveUp.signal),
      pump(
        child.stderr,
        options.captureStderr
          ? (l) => void (err += l + "\n")
          : (l) => Deno.stderr.writeSync(enc.encode(l + "\n")),
        true,
        giveUp.signal,
      ),
    ]);
    const { code } = await child.status;
    // The Windows Deno has exited, but a process it left in the prefix (a `conhost.exe` that
    // outlived a console child, a child that inherited stdio) may hold copies of the pipes: after
    // a grace period end the prefix, which closes them; what was written stays readable.
    if (!(await settlesWithin(pumps, PIPE_GRACE_MS))) {
      note(
        `[wine] deno ${args[0] ?? ""} ended, but a process of the prefix held its output pipes ` +
          `${PIPE_GRACE_MS} ms later; ending the prefix`,
      );
      stopping ??= stopWineServer(wine);
      await stopping;
      if (!(await settlesWithin(pumps, PIPE_GRACE_MS))) {
        // Not a process of the prefix, then: stop reading rather than wait for ever.
        giveUp.abort();
        note(`[wine] the pipes stayed open after the prefix ended; reading stopped`);
      }
    }
    await pumps;
    await stopping;
    await stopWineServer(wine);
    if (ended === "deadline") {
      note(`deadline: deno ${args.join(" ")} did not end within ${options.deadlineMs} ms; killed`);
      return { code: DEADLINE_EXIT_CODE, stdout: out, stderr: err, interrupted: false };
    }
    if (ended === "interrupted") {
      note(`interrupted: deno ${args.join(" ")} and every process of the Wine prefix ended`);
      return { code: INTERRUPTED_EXIT_CODE, stdout: out, stderr: err, interrupted: true };
    }
    return { code, stdout: out, stderr: err, interrupted: false };
  } finally {
    clearTimeout(deadline);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** How long {@link runUnderWine} waits for the output pipes to close after the Windows Deno exits. */
export const PIPE_GRACE_MS = 5_000;

/** True when `p` settles within `ms` (it keeps running either way). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ends every process of this private prefix (our Deno's children, and the services Wine starts on
 * its own) and waits for its wineserver to exit, so a run leaves no Wine process behind.
 */
export async function stopWineServer(wine: Pick<WineDeno, "env">): Promise<void> {
  await new Deno.Command("wineserver", { args: ["-k"], env: wine.env, stderr: "null" }).output();
  await new Deno.Command("wineserver", { args: ["-w"], env: wine.env, stderr: "null" }).output();
  // `-w` may return while killed processes are still exiting; a run started at that moment was
  // seen to die with exit 137 and no output (under load). Wait, bounded, until none is left.
  if (wine.env.WINEPREFIX === PREFIX) {
    const until = performance.now() + STOP_WAIT_MS;
    while (performance.now() < until && (await prefixProcesses()).length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** How long {@link stopWineServer} waits for the prefix's last processes to be gone. */
const STOP_WAIT_MS = 5_000;

/**
 * The Linux processes of this private prefix: those whose environment has our `WINEPREFIX` (the
 * wineserver, Wine's services, every Windows Deno and its children; their command lines need not
 * name the prefix), and those whose command line names the cache (`.tools/wine`, either slash).
 * Deno lets only `--allow-all` read `/proc`, so `grep` reads the environments and `ps` the
 * command lines.
 */
export async function prefixProcesses(): Promise<{ pid: number; cmd: string }[]> {
  // The pattern goes in on stdin (printf is a shell builtin): were it an argument, this grep's own
  // command line would name the prefix, and a `pgrep -f` running meanwhile would count it.
  const withPrefix = await exec("sh", [
    "-c",
    'printf "%s" "$DENO_LPC_NEEDLE" | grep -lzxF -f - /proc/[0-9]*/environ 2>/dev/null; [ $? -le 2 ]',
  ], { DENO_LPC_NEEDLE: `WINEPREFIX=${PREFIX}` });
  if (!withPrefix.ok) throw new Error(`grep over /proc/*/environ failed: ${withPrefix.out}`);
  const pids = new Set([...withPrefix.out.matchAll(/\/proc\/(\d+)\/environ/g)].map((m) => m[1]!));
  const ps = await exec("ps", ["-e", "-ww", "-o", "pid=,args="]);
  if (!ps.ok) throw new Error(`ps -e failed: ${ps.out}`);
  const names = [CACHE_DIR, CACHE_DIR.replaceAll("/", "\\")];
  const found: { pid: number; cmd: string }[] = [];
  for (const line of ps.out.split("\n")) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m || Number(m[1]) === Deno.pid) continue;
    const cmd = m[2]!.trim();
    if (pids.has(m[1]!) || names.some((n) => cmd.includes(n))) {
      found.push({ pid: Number(m[1]), cmd });
    }
  }
  return found;
}

/** Bytes in a tree, each file once however many hard links it has (as `du -sb` counts). */
export async function treeBytes(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      let st: Deno.FileInfo;
      try {
        st = await Deno.lstat(p);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue; // removed while we walk
        throw e;
      }
      const id = `${st.dev}:${st.ino}`;
      if (!seen.has(id)) {
        seen.add(id);
        total += st.size;
      }
      if (st.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return total;
}
