#!/usr/bin/env -S deno run --allow-run --allow-read --allow-write --allow-env
/**
 * The whole LPC lab in one command: checks the prerequisites, runs the port lister and
 * experiments 1, 2 and 3 (each in its own process, so one that cannot run or fails is recorded
 * and the lab goes on), and writes `lab-report/<UTC timestamp>/report.json` and `report.md`
 * (and `report.html` with `--html`).
 *
 * On Windows the experiments run with this Deno. On Linux they run with the Windows build of Deno
 * under Wine, prepared as `deno task test:wine` prepares it: LPC is missing there, so the port
 * lister and experiment 3's debugger half run, and experiments 1 and 2 are skipped with their reason.
 *
 * Ctrl-C (SIGINT) ends the running experiment and everything it started (under Wine: every process
 * of the private prefix), writes the report of what finished with the rest marked `interrupted`,
 * and exits 130.
 *
 * ```sh
 * deno task lab            # the same as the line below
 * deno run --allow-run --allow-read --allow-write --allow-env experiments/lab/lab.ts --html
 * ```
 *
 * @module
 */

import {
  answerQuestions,
  type ExperimentKey,
  EXPERIMENTS,
  type LabReport,
  type Outcome,
  toHtml,
  toMarkdown,
  validateLabReport,
} from "./lab_report.ts";
import type { ProbeDocument } from "./lab_probe.ts";
import { dirname } from "jsr:@std/path@^1.1.6/dirname";
import { resolve } from "jsr:@std/path@^1.1.6/resolve";
import { CLI as EXP3_CLI } from "../exp3/exp3.ts";
import { type Cli, type CliValues, EXIT, runCli, UsageError } from "../_cli.ts";
import { scriptFlags } from "../_permissions.ts";
import { INTERRUPTED_EXIT_CODE, outputWithDeadline } from "../_deadline.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "lab",
  usage: `lab: run the whole LPC lab and write a report.

Usage: deno task lab [options]
   or: deno run --allow-run --allow-read --allow-write --allow-env experiments/lab/lab.ts [options]

On Windows, run it from an elevated prompt (experiments 1 and 2 need it). On Linux it runs the
Windows build of Deno under Wine, preparing it first (as deno task test:wine does).`,
  options: {
    html: {
      kind: "flag",
      help: "also write a self-contained report.html (diagrams as inline SVG, no network)",
    },
    out: {
      kind: "text",
      value: "dir",
      default: "lab-report",
      help: "where to put the report folder, checked before anything runs: a folder we may " +
        "write in, or one we can create",
    },
    hold: { ...EXP3_CLI.options.hold, help: "experiment 3's hold at the attach breakpoint" },
    only: {
      kind: "text",
      value: "list",
      help: `run only these, comma-separated: ${EXPERIMENTS.join(",")}`,
    },
  },
  notes:
    `Exit: 0 when the report was written and no experiment failed (skipped ones are fine), 1 when an
experiment failed, 2 bad usage (also an --out where no report can be written), 130 after Ctrl-C
(the running experiment and its processes are ended, and the report of what finished is written,
the rest marked "interrupted").`,
} as const satisfies Cli;

/**
 * Checks that the report can be written under `out` before anything runs: `out` is a folder, or
 * the nearest existing folder above it is, and a file can be created there (the check file is
 * removed). Throws {@link UsageError} naming the place and the system's answer.
 */
export async function checkOutDir(out: string): Promise<void> {
  const bad = (why: string): never => {
    throw new UsageError(`--out ${JSON.stringify(out)}: ${why}`);
  };
  const reason = (e: unknown) =>
    e instanceof Deno.errors.NotCapable
      ? "Deno lets only --allow-all reach system places such as /proc, /sys and /dev: choose another folder"
      : (e instanceof Error ? e.message : String(e)).split("\n")[0];
  let dir = resolve(out);
  for (;;) {
    let info: Deno.FileInfo | undefined;
    try {
      info = await Deno.stat(dir);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) bad(`cannot use ${dir} (${reason(e)})`);
    }
    if (info) {
      if (!info.isDirectory) bad(`${dir} is not a folder`);
      break;
    }
    const parent = dirname(dir);
    if (parent === dir) bad("no existing folder above it");
    dir = parent;
  }
  try {
    await Deno.remove(await Deno.makeTempFile({ dir, prefix: ".lab-write-check-" }));
  } catch (e) {
    bad(`cannot write in ${dir} (${reason(e)})`);
  }
}

type Runner = (
  args: string[],
  signal: AbortSignal,
) => Promise<{ code: number; stdout: string; stderr: string; interrupted: boolean }>;

const rel = (p: string) => `experiments/${p}`;
const ROOT = new URL("../../", import.meta.url);

/** What each experiment runs; its permissions are its shebang's (`_permissions.ts`). */
const COMMANDS: Record<ExperimentKey, { script: string; args: (o: { hold: number }) => string[] }> =
  {
    ports: { script: "ports/list_ports.ts", args: () => ["--all", "--servers", "--json"] },
    exp1: { script: "exp1/exp1.ts", args: () => ["--json"] },
    exp2: { script: "exp2/exp2.ts", args: () => ["--json"] },
    exp3: { script: "exp3/exp3.ts", args: (o) => ["--json", "--hold", String(o.hold)] },
  };

/** `deno run` arguments for one of our scripts: exactly its shebang's flags, then the script. */
async function runArgs(script: string, args: string[]): Promise<string[]> {
  return ["run", ...(await scriptFlags(new URL(rel(script), ROOT))), rel(script), ...args];
}

/** Each child of the lab (the probe, each experiment) is killed after this long; the lab goes on. */
const CHILD_DEADLINE_MS = 300_000;

function windowsRunner(): { run: Runner; how: string } {
  const run: Runner = (args, signal) =>
    outputWithDeadline(Deno.execPath(), args, {
      cwd: ROOT,
      deadlineMs: CHILD_DEADLINE_MS,
      signal,
    });
  return { run, how: `Windows, Deno ${Deno.version.deno}` };
}

async function wineRunner(progress: (s: string) => void): Promise<{ run: Runner; how: string }> {
  progress(
    "Linux: running the lab with the Windows build of Deno under Wine (preparing it as `deno task test:wine` does)",
  );
  const { prepareWine, runUnderWine } = await import("../_wine_harness.ts");
  const wine = await prepareWine();
  const run: Runner = (args, signal) =>
    runUnderWine(wine, args, {
      captureStdout: true,
      captureStderr: true,
      cwd: ROOT,
      deadlineMs: CHILD_DEADLINE_MS,
      signal,
    });
  return { run, how: "Linux, the Windows Deno under Wine" };
}

function lastLine(s: string): string {
  return s.trim().split(/\r?\n/).filter((l) => l.trim()).at(-1) ?? "";
}

/** Classifies one experiment's run by its exit code and its JSON. */
export function outcomeOf(code: number, stdout: string, stderr: string, seconds: number): Outcome {
  let doc: Record<string, unknown> | undefined;
  try {
    doc = JSON.parse(stdout);
  } catch { /* no document */ }
  const reason = (doc?.reason as string | undefined) ?? lastLine(stderr) ?? `exit ${code}`;
  if (code === 0 && doc && doc.ran !== false) return { status: "ran", result: doc, seconds };
  if (code === 3) {
    return {
      status: "skipped",
      reason: reason || "not supported on this system",
      ...(doc ? { result: doc } : {}),
      seconds,
    };
  }
  return {
    status: "failed",
    reason: reason || `exit code ${code}`,
    ...(doc ? { result: doc } : {}),
    seconds,
  };
}

/**
 * Ctrl-C for the whole lab: the first SIGINT aborts the signal (the running child and, under Wine,
 * every process of the prefix are ended); more SIGINTs change nothing (`deno task` passes one on,
 * and a terminal's Ctrl-C reaches the lab too). Dispose to stop listening.
 */
function interruptOnSigint(progress: (s: string) => void): AbortController & Disposable {
  const c = new AbortController();
  const onSigint = () => {
    if (c.signal.aborted) return;
    progress("interrupted (Ctrl-C): ending the running experiment, then writing the report");
    c.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  return Object.assign(c, {
    [Symbol.dispose]: () => Deno.removeSignalListener("SIGINT", onSigint),
  });
}

async function main(v: CliValues<typeof CLI.options>): Promise<number> {
  const hold = v.hold;
  const only = v.only === undefined
    ? [...EXPERIMENTS]
    : v.only.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (only.length === 0) throw new UsageError(`--only takes some of ${EXPERIMENTS.join(",")}`);
  for (const k of only) {
    if (!(EXPERIMENTS as readonly string[]).includes(k)) {
      throw new UsageError(`--only: unknown experiment ${k} (the list: ${EXPERIMENTS.join(",")})`);
    }
  }
  await checkOutDir(v.out);

  const t0 = performance.now();
  const elapsed = () => {
    const s = Math.round((performance.now() - t0) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  };
  const progress = (s: string) => console.error(`[lab ${elapsed()}] ${s}`);
  using interrupt = interruptOnSigint(progress);
  const { signal } = interrupt;

  let runner: { run: Runner; how: string } | undefined;
  try {
    runner = Deno.build.os === "windows" ? windowsRunner() : await wineRunner(progress);
  } catch (e) {
    if (!signal.aborted) throw e; // Ctrl-C while preparing Wine: report that nothing ran
  }
  const how = runner?.how ?? "not prepared (interrupted)";
  const run: Runner = runner?.run ??
    (() =>
      Promise.resolve({ code: INTERRUPTED_EXIT_CODE, stdout: "", stderr: "", interrupted: true }));
  if (runner) progress(`running on ${how}`);

  // Prerequisites, from the Windows side.
  const probeRun = await run(await runArgs("lab/lab_probe.ts", ["--json"]), signal);
  let probe: ProbeDocument | undefined;
  try {
    const doc = JSON.parse(probeRun.stdout);
    // A failed probe prints its failure document ({ ran: false, reason }), not a probe.
    if (doc.ran !== false) probe = doc;
  } catch { /* no document */ }
  if (!probe && !signal.aborted) {
    progress(`the prerequisite probe failed: ${lastLine(probeRun.stderr)}`);
  }
  const needs: Record<ExperimentKey, string> = {
    ports: "Windows (the namespace); --servers: elevation for SeDebugPrivilege",
    exp1: "Windows with LPC; an elevated prompt",
    exp2: "Windows with LPC and exception ports; an elevated prompt; SYSTEM obtainable",
    exp3: "Windows (the debug API); its server half needs LPC",
  };
  if (probe) {
    const m = probe.missing;
    progress(
      `prerequisites: ${probe.os} ${probe.build}${probe.wine ? `, Wine ${probe.wine}` : ""}, ${
        probe.elevated ? "elevated" : "not elevated"
      }`,
    );
    progress(`  LPC: ${m.lpc ?? "yes"}`);
    progress(`  exception ports: ${m.exceptionPort ?? "yes"}`);
    progress(
      `  SYSTEM for the server thread: ${
        m.system ?? `obtained and reverted (${probe.systemFrom})`
      }`,
    );
    for (const k of only) progress(`  ${k} needs: ${needs[k as ExperimentKey]}`);
  }

  // The experiments, each isolated.
  const experiments = {} as Record<ExperimentKey, Outcome>;
  for (const k of EXPERIMENTS) {
    if (!only.includes(k)) {
      experiments[k] = { status: "skipped", reason: "not selected (--only)" };
      continue;
    }
    if (signal.aborted) {
      experiments[k] = { status: "interrupted", reason: "not started: Ctrl-C came first" };
      continue;
    }
    const c = COMMANDS[k];
    progress(`${k}: running ${c.script}`);
    const started = performance.now();
    const ticker = setInterval(() => progress(`${k}: still running`), 10_000);
    let outcome: Outcome;
    try {
      const r = await run(await runArgs(c.script, c.args({ hold })), signal);
      const seconds = Math.round((performance.now() - started) / 100) / 10;
      outcome = r.interrupted
        ? {
          status: "interrupted",
          reason: `Ctrl-C after ${seconds} s; its processes were ended`,
          seconds,
        }
        : outcomeOf(r.code, r.stdout, r.stderr, seconds);
    } catch (e) {
      outcome = { status: "failed", reason: e instanceof Error ? e.message : String(e) };
    } finally {
      clearInterval(ticker);
    }
    experiments[k] = outcome;
    progress(
      `${k}: ${outcome.status}${outcome.reason ? ` (${outcome.reason})` : ""} in ${
        outcome.seconds ?? "?"
      } s`,
    );
  }

  const report: LabReport = {
    schema: "deno-lpc/lab@1",
    generatedAt: new Date().toISOString(),
    environment: {
      os: probe?.os ?? Deno.build.os,
      build: probe?.build ?? "unknown",
      deno: probe?.deno ?? Deno.version.deno,
      elevated: probe?.elevated ?? null,
      wine: probe?.wine ?? null,
    },
    prerequisites: {
      runner: how,
      needs,
      ...(probe
        ? { probe }
        : { probeError: signal.aborted ? "interrupted" : lastLine(probeRun.stderr) }),
    },
    experiments,
    answers: answerQuestions(experiments),
  };
  const problems = validateLabReport(report);
  if (problems.length) {
    throw new Error(`the report does not match its schema: ${problems.join("; ")}`);
  }

  const stamp = report.generatedAt.replace(/[:.]/g, "-");
  const dir = `${v.out}/${stamp}`;
  await Deno.mkdir(dir, { recursive: true });
  const written = [`${dir}/report.json`, `${dir}/report.md`];
  await Deno.writeTextFile(
    written[0]!,
    JSON.stringify(report, (_k, x) => (typeof x === "bigint" ? x.toString() : x), 2),
  );
  await Deno.writeTextFile(written[1]!, toMarkdown(report));
  if (v.html) {
    written.push(`${dir}/report.html`);
    await Deno.writeTextFile(written[2]!, toHtml(report));
  }
  progress(signal.aborted ? "interrupted: the report has what finished" : "done");
  for (const p of written) console.log(p);
  if (signal.aborted) return INTERRUPTED_EXIT_CODE;
  return EXPERIMENTS.some((k) => experiments[k].status === "failed") ? EXIT.FAILURE : EXIT.OK;
}

if (import.meta.main) {
  await runCli(import.meta.url, CLI, main);
}
