#!/usr/bin/env -S deno run --allow-ffi --allow-read --allow-run --allow-sys=osRelease
/**
 * `deno task conformance`: runs every conformance case against the fake kernel or the real one and
 * says, for each, what the Windows 11 kernel's code made us expect and what the kernel did.
 *
 * ```sh
 * deno task conformance                    # windows where LPC works, else the fake
 * deno task conformance --kernel fake --filter PORT_CLOSED
 * deno task conformance --json > conformance.json
 * ```
 *
 * Permissions: `--allow-ffi` (the calls; the fake reads native pointers too), `--allow-read`
 * (Workers from local files, `Deno.execPath()`), `--allow-run` (the cases' child processes),
 * `--allow-sys=osRelease` (the Windows build in the JSON document). Exit code: 0 when every case
 * passed, 1 when one failed (or none ran), 2 on bad usage.
 *
 * @module
 */

import { equal } from "jsr:@std/assert@^1.0.19/equal";
import { alpcUnavailable, lpcUnavailable } from "../../ffi/nt/capabilities.ts";
import { CASES } from "./cases.ts";
import { createFakeKernel } from "./fake_driver.ts";
import type { Case, Json, Kernel } from "./types.ts";
import { createWindowsKernel } from "./windows_driver.ts";
import {
  type Cli,
  describeFailure,
  helpText,
  parseOptions,
  UsageError,
} from "../../experiments/_cli.ts";

/** The document's schema name. */
export const SCHEMA = "deno-lpc/conformance@2";

/** Which kernel. */
export type KernelName = Kernel["name"];

/** One case's result. */
export interface CaseResult {
  name: string;
  /** The transport the case drives: `"alpc"` when it needs ALPC (`Case.needs`), else `"lpc"`. */
  transport: "lpc" | "alpc";
  sources: string[];
  kernel: KernelName;
  /** What the kernel's code says (null when the case threw before it said). */
  expected: Json;
  observed: Json;
  passed: boolean;
  /** Why the case could not finish (it threw, or timed out). */
  error?: string;
  /** Why the case did not run on this kernel (it is neither passed nor failed). */
  skipped?: string;
  ms: number;
}

/** The `--json` document. */
export interface ConformanceDocument {
  schema: typeof SCHEMA;
  kernel: KernelName;
  system: { os: string; build?: string };
  cases: CaseResult[];
  passed: number;
  /** Cases that ran and did not pass. */
  failed: number;
  /** Cases that could not run here (present when there are any). */
  skipped?: number;
}

/** Why `c` cannot run on `kernelName` here, or null (an ALPC case where ntdll has no ALPC). */
export function whySkipped(c: Case, kernelName: KernelName): string | null {
  if (kernelName !== "windows" || !(c.needs ?? []).includes("alpc")) return null;
  return alpcUnavailable();
}

/** Makes a fresh kernel for one case. */
export type KernelFactory = () => Promise<Kernel>;

/** The default per-case deadline (ms). */
export const CASE_TIMEOUT_MS = 20_000;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Races `p` with a deadline; the timer never outlives the race. */
async function timed<T>(p: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A case's transport, as its document reports it. */
function transportOf(c: Case): "lpc" | "alpc" {
  return (c.needs ?? []).includes("alpc") ? "alpc" : "lpc";
}

/**
 * Runs one case on a fresh kernel, within `timeoutMs`, and disposes the kernel on every path
 * (also after a timeout: disposing ends the threads the case left waiting).
 */
export async function runCase(
  c: Case,
  kernelName: KernelName,
  makeKernel: KernelFactory,
  timeoutMs: number = CASE_TIMEOUT_MS,
): Promise<CaseResult> {
  const started = performance.now();
  const skip = whySkipped(c, kernelName);
  if (skip !== null) {
    return {
      name: c.name,
      transport: transportOf(c),
      sources: [...c.sources],
      kernel: kernelName,
      expected: null,
      observed: null,
      passed: false,
      skipped: skip,
      ms: 0,
    };
  }
  let expected: Json = null;
  let observed: Json = null;
  let error: string | undefined;
  let kernel: Kernel | undefined;
  try {
    const k = await timed(makeKernel(), timeoutMs, "starting the kernel");
    kernel = k;
    const run = c.run(k);
    run.catch(() => {}); // after a timeout it may still reject; that is not news
    const outcome = await timed(run, timeoutMs, "the case");
    expected = outcome.expected;
    observed = outcome.observed;
  } catch (e) {
    error = message(e);
  } finally {
    if (kernel) {
      try {
        await timed(
          Promise.resolve(kernel[Symbol.asyncDispose]()),
          timeoutMs,
          "disposing the kernel",
        );
      } catch (e) {
        error ??= message(e);
      }
    }
  }
  const result: CaseResult = {
    name: c.name,
    transport: transportOf(c),
    sources: [...c.sources],
    kernel: kernelName,
    expected,
    observed,
    passed: error === undefined && equal(expected, observed),
    ms: Math.round(performance.now() - started),
  };
  if (error !== undefined) result.error = error;
  return result;
}

/** What this system is (the Windows build from `Deno.osRelease()`, when allowed). */
export function systemInfo(): ConformanceDocument["system"] {
  const system: ConformanceDocument["system"] = { os: Deno.build.os };
  if (Deno.build.os === "windows") {
    try {
      const build = Deno.osRelease().split(".")[2];
      if (build) system.build = build;
    } catch {
      // --allow-sys=osRelease not granted: the build is left out
    }
  }
  return system;
}

/** Runs `cases` one after the other, each on a fresh kernel. */
export async function runSuite(
  cases: readonly Case[],
  kernelName: KernelName,
  makeKernel: KernelFactory,
  options: { timeoutMs?: number; onResult?: (r: CaseResult) => void } = {},
): Promise<ConformanceDocument> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const r = await runCase(c, kernelName, makeKernel, options.timeoutMs);
    options.onResult?.(r);
    results.push(r);
  }
  const passed = results.filter((r) => r.passed).length;
  const skipped = results.filter((r) => r.skipped !== undefined).length;
  return {
    schema: SCHEMA,
    kernel: kernelName,
    system: systemInfo(),
    cases: results,
    passed,
    failed: results.length - passed - skipped,
    ...(skipped > 0 ? { skipped } : {}),
  };
}

/** Why a case failed, with the rule's sources and who is to blame. */
export function explainFailure(r: CaseResult): string {
  const sources = r.sources.join(", ");
  const blame = r.kernel === "windows"
    ? `the real kernel disagrees: our reading of ${sources} is wrong (and so is the fake built on it), or the case drives the kernel wrongly`
    : `the fake disagrees with the case: our reading of ${sources} is wrong, or the fake is`;
  const lines = [`FAILED (${r.kernel}): ${r.name}`, `  rule from: ${sources}`];
  if (r.error !== undefined) lines.push(`  error: ${r.error}`);
  else {
    lines.push(`  expected: ${JSON.stringify(r.expected)}`);
    lines.push(`  observed: ${JSON.stringify(r.observed)}`);
  }
  lines.push(`  ${blame}`);
  return lines.join("\n");
}

/** The results as a table (name, kernel, passed) and a summary line. */
export function formatTable(doc: ConformanceDocument): string {
  const width = Math.min(90, Math.max(4, ...doc.cases.map((c) => c.name.length)));
  const cut = (s: string) => (s.length > width ? s.slice(0, width - 1) + "…" : s.padEnd(width));
  const lines = [`${"case".padEnd(width)}  kernel   passed`];
  for (const c of doc.cases) {
    const verdict = c.skipped !== undefined ? `skipped: ${c.skipped}` : c.passed ? "yes" : "NO";
    lines.push(`${cut(c.name)}  ${c.kernel.padEnd(7)}  ${verdict}`);
  }
  lines.push(summary(doc));
  return lines.join("\n");
}

/** One line: how many passed and failed, on which kernel, and how many cases drive ALPC. */
export function summary(doc: ConformanceDocument): string {
  return `conformance (${doc.kernel}, ${doc.system.os}${
    doc.system.build ? ` build ${doc.system.build}` : ""
  }): ${doc.passed} passed, ${doc.failed} failed, ${
    doc.skipped ? `${doc.skipped} skipped, ` : ""
  }${doc.cases.length} cases (${doc.cases.filter((c) => c.transport === "alpc").length} ALPC)`;
}

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "conformance",
  usage: `conformance: the kernel rules the lab depends on, against the fake or the real kernel.

Usage: deno task conformance [options]
   or: deno run --allow-ffi --allow-read --allow-run --allow-sys=osRelease tests/conformance/run.ts [options]

Runs the conformance cases (tests/conformance/cases*.ts), each a kernel behaviour the lab depends
on, read from the Windows 11 kernel's code (the function files each case names).`,
  options: {
    kernel: {
      kind: "choice",
      choices: ["fake", "windows"],
      help:
        "fake: tests/fake_kernel.ts (any system); windows: the real ntdll (Windows only; each " +
        "thread a Worker, each process a child). Default: windows when this is Windows and LPC " +
        "works (an unnamed NtCreatePort succeeds), else fake",
    },
    filter: {
      kind: "text",
      value: "text",
      help: "only the cases whose name contains this text (case-insensitive)",
    },
    json: {
      kind: "flag",
      help: `print one JSON document (schema ${SCHEMA}) on stdout, nothing else there`,
    },
    timeout: {
      kind: "integer",
      value: "ms",
      min: 1,
      max: 600_000,
      default: CASE_TIMEOUT_MS,
      help: "the deadline of each case",
    },
  },
  notes:
    `A failing case names its rule and sources: on windows, our reading of those files is wrong (and
the fake built on it); on the fake, our reading or the fake is.`,
  exitCodes: `Exit code: 0 every case passed, 1 a case failed or none ran, 2 bad usage (one line).`,
} as const satisfies Cli;

/** The usage text (`--help`). */
export const USAGE: string = helpText(CLI);

/** Parsed command line. */
export interface Options {
  kernel?: KernelName;
  filter?: string;
  json: boolean;
  timeoutMs: number;
  help: boolean;
}

/** Parses the arguments ({@link CLI}); a string is a usage error, in one line. */
export function parseArgs(args: readonly string[]): Options | string {
  try {
    const v = parseOptions(args, CLI.options);
    if (v.filter === "") throw new UsageError("--filter takes a text, not an empty one");
    return {
      json: v.json,
      timeoutMs: v.timeout,
      help: v.help,
      ...(v.kernel !== undefined ? { kernel: v.kernel } : {}),
      ...(v.filter !== undefined ? { filter: v.filter } : {}),
    };
  } catch (e) {
    if (e instanceof UsageError) return describeFailure(CLI.name, e).message;
    throw e;
  }
}

/** The kernel to use when none is named: windows when LPC works here, else the fake. */
export function defaultKernel(): KernelName {
  return Deno.build.os === "windows" && lpcUnavailable() === null ? "windows" : "fake";
}

/** What {@link conformance} runs and where it writes (tests replace them). */
export interface Deps {
  cases: readonly Case[];
  kernels: Record<KernelName, KernelFactory>;
  out: (text: string) => void;
  err: (text: string) => void;
}

const DEFAULT_DEPS: Deps = {
  cases: CASES,
  kernels: { fake: createFakeKernel, windows: () => createWindowsKernel() },
  out: (t) => console.log(t),
  err: (t) => console.error(t),
};

/** The command: returns its exit code. */
export async function conformance(
  args: readonly string[],
  deps: Deps = DEFAULT_DEPS,
): Promise<number> {
  const o = parseArgs(args);
  if (typeof o === "string") {
    deps.err(o);
    return 2;
  }
  if (o.help) {
    deps.out(USAGE);
    return 0;
  }
  const kernel = o.kernel ?? defaultKernel();
  if (kernel === "windows" && Deno.build.os !== "windows") {
    deps.err(`conformance: --kernel windows needs Windows (this Deno is ${Deno.build.os})`);
    return 2;
  }
  if (kernel === "windows" && o.kernel) {
    const why = lpcUnavailable();
    if (why) deps.err(`conformance: warning: ${why}; the LPC cases will fail`);
  }
  const needle = o.filter?.toLowerCase();
  const cases = needle
    ? deps.cases.filter((c) => c.name.toLowerCase().includes(needle))
    : deps.cases;
  if (needle && cases.length === 0) {
    deps.err(`conformance: no case matches ${JSON.stringify(o.filter)}`);
    return 2;
  }
  const doc = await runSuite(cases, kernel, deps.kernels[kernel], {
    timeoutMs: o.timeoutMs,
    onResult: (r) => {
      if (!r.passed && r.skipped === undefined) deps.err(explainFailure(r));
    },
  });
  if (o.json) deps.out(JSON.stringify(doc, null, 2));
  else deps.out(formatTable(doc));
  if (doc.cases.length === 0) {
    deps.err("conformance: no case ran (the suite is empty)");
    return 1;
  }
  return doc.failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await conformance(Deno.args));
