/**
 * The C column of the transport benchmark: finds MinGW gcc, builds native/bench_c.c into a
 * folder the caller removes, and runs it once per row (its one JSON line: ns per round trip, or
 * the call that failed).
 *
 * @module
 */

import { fromFileUrl } from "jsr:@std/path@^1.1.6/from-file-url";
import { join } from "jsr:@std/path@^1.1.6/join";
import type { SideResult, TransportCase } from "./transport_bench.ts";

/** A side's numbers from its ns per round trip and the row's bytes. */
export function side(ns: number, bytes: number): SideResult {
  return {
    nsPerRoundTrip: Math.round(ns * 10) / 10,
    roundTripsPerSecond: Math.round(1e9 / ns),
    mbPerSecond: Math.round((bytes / ns) * 1e9 / 1e6 * 10) / 10,
  };
}

/** Where MinGW gcc may be: PATH first, then the runner images' and MSYS2's folders. */
export const GCC_CANDIDATES = [
  "gcc",
  "x86_64-w64-mingw32-gcc",
  "C:\\mingw64\\bin\\gcc.exe",
  "C:\\msys64\\mingw64\\bin\\gcc.exe",
  "C:\\msys64\\ucrt64\\bin\\gcc.exe",
] as const;

/** The first compiler that answers `--version`: its path and first line, or why none did. */
async function findGcc(): Promise<{ cc: string; version: string } | { reason: string }> {
  const tried: string[] = [];
  for (const cc of GCC_CANDIDATES) {
    try {
      const out = await new Deno.Command(cc, {
        args: ["--version"],
        stdout: "piped",
        stderr: "null",
      })
        .output();
      if (out.success) {
        return { cc, version: new TextDecoder().decode(out.stdout).split(/\r?\n/)[0]!.trim() };
      }
      tried.push(`${cc} (exit ${out.code})`);
    } catch (e) {
      tried.push(`${cc} (${e instanceof Deno.errors.NotFound ? "not found" : String(e)})`);
    }
  }
  return { reason: `no MinGW gcc found: tried ${tried.join(", ")}` };
}

/** What the C side is: the compiler used, or why there is no C column. */
export type CSide = { ran: true; compiler: string } | { ran: false; reason: string };

/** One run of the C program for a row. */
export async function cRow(
  exe: string,
  c: TransportCase,
  trips: number,
  warmup: number,
): Promise<SideResult | { error: string }> {
  const out = await new Deno.Command(exe, {
    args: [c.transport, c.kind, String(c.bytes), String(trips), String(warmup)],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split(/\r?\n/).at(-1) ?? "";
  try {
    const r = JSON.parse(line) as { ok: boolean; ns?: number; call?: string; status?: string };
    if (r.ok && typeof r.ns === "number") return side(r.ns, c.bytes);
    return { error: `${r.call}: ${r.status ?? "missing"}` };
  } catch {
    return { error: `exit ${out.code}: ${line || new TextDecoder().decode(out.stderr).trim()}` };
  }
}

/**
 * Builds the C program into `dir` (`gcc -O2 -o bench_c.exe bench_c.c -lntdll`): the compiler
 * used and the program, or why there is no C column.
 */
export async function buildC(dir: string): Promise<{ side: CSide; exe: string }> {
  const gcc = await findGcc();
  if ("reason" in gcc) return { side: { ran: false, reason: gcc.reason }, exe: "" };
  const exe = join(dir, "bench_c.exe");
  const src = fromFileUrl(new URL("./native/bench_c.c", import.meta.url));
  const built = await new Deno.Command(gcc.cc, {
    args: ["-O2", "-o", exe, src, "-lntdll"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (built.success) return { side: { ran: true, compiler: `${gcc.cc}: ${gcc.version}` }, exe };
  const why = new TextDecoder().decode(built.stderr).trim().slice(0, 500);
  return { side: { ran: false, reason: `${gcc.cc} failed: ${why}` }, exe: "" };
}
