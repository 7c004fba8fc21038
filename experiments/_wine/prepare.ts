/**
 * Preparing the Windows Deno under Wine, once, and reusing it: the apt packages, the npm tarball,
 * the two fixes (a `ProcessPrng` DLL, the `VirtualAlloc2` patch), the C oracles and the prefix;
 * a stamp records what was built from what. And how big the cache is.
 *
 * @module
 */

import {
  BIN,
  CACHE_DIR,
  exec,
  exists,
  ORACLE_DIR,
  ROOT,
  say,
  WINDOWS_DENO_VERSION,
  type WineDeno,
  wineEnv,
} from "./env.ts";
import { cleanPrefix, ensurePrefix } from "./prefix.ts";

/**
 * What a run of the Wine suite may add to `.tools/` once a first run has filled the caches
 * (issue 12: the `node` shim's copies added 93 MB per Windows Deno started).
 */
export const GROWTH_LIMIT_MB = 5;

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };

async function has(cmd: string): Promise<boolean> {
  return (await exec("sh", ["-c", `command -v ${cmd}`])).ok;
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
  await cleanPrefix();
  if (JSON.stringify(stamp) !== before) await Deno.writeTextFile(stampFile, JSON.stringify(stamp));
  return { exe: `${BIN}/deno.exe`, env: wineEnv() };
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
