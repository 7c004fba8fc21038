/**
 * The private Wine prefix and its processes: creating it, what the Windows Deno leaves in it, and
 * ending every process of it (the wineserver included) so a run leaves no Wine process behind.
 *
 * @module
 */

import { CACHE_DIR, exec, exists, PREFIX, ROOT, say, type WineDeno, wineEnv } from "./env.ts";

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
 * {@link cleanPrefix} removes what older runs left.
 */
export async function nodeShimDirs(): Promise<string[]> {
  const dirs: string[] = [];
  for (const u of await prefixUsers()) {
    const d = `${PREFIX}/drive_c/users/${u}/AppData/Local/deno/node_compat_bin`;
    if (await exists(d)) dirs.push(d);
  }
  return dirs;
}

/** The users' folders of the prefix (none before it exists). */
async function prefixUsers(): Promise<string[]> {
  const users: string[] = [];
  try {
    for await (const u of Deno.readDir(`${PREFIX}/drive_c/users`)) {
      if (u.isDirectory) users.push(u.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return users;
}

/**
 * Removes what older runs left in the prefix: the `node` shims ({@link nodeShimDirs}), and the
 * JavaScript the Windows Deno emitted for the modules the tests write into `%TEMP%` under random
 * names and remove (about 70 kB a suite run that nothing reads again), so the cache does not grow
 * run after run.
 */
export async function cleanPrefix(): Promise<void> {
  for (const d of await nodeShimDirs()) {
    await Deno.remove(d, { recursive: true });
    say(`removed ${d.slice(ROOT.length)} (a \`node\` shim and its copies; the shim is off now)`);
  }
  for (const u of await prefixUsers()) {
    const temp = `${PREFIX}/drive_c/users/${u}/AppData/Local/deno/gen/file/C/users/${u}/Temp`;
    if (await exists(temp)) await Deno.remove(temp, { recursive: true });
  }
}

/** Creates the prefix (`wineboot -i`) unless it exists. */
export async function ensurePrefix(): Promise<void> {
  if (await exists(`${PREFIX}/system.reg`)) return;
  say("creating the Wine prefix (wineboot -i)");
  await Deno.mkdir(PREFIX, { recursive: true });
  const r = await exec("wineboot", ["-i"], { ...wineEnv() });
  await stopWineServer({ env: wineEnv() }); // wineboot leaves the services and the server running
  if (!(await exists(`${PREFIX}/system.reg`))) throw new Error(`wineboot failed:\n${r.out}`);
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
