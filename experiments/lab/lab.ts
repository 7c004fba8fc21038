#!/usr/bin/env -S deno run --allow-run --allow-read --allow-write --allow-env
/**
 * The whole LPC lab in one command: checks the prerequisites, runs the port lister and
 * experiments 1, 2 and 3 (each in its own process, so one that cannot run or fails is recorded
 * and the lab goes on; over LPC and ALPC both where the system has ALPC, else over LPC with the
 * reason ALPC was not observed), and writes `lab-report/<UTC timestamp>/report.json` and `report.md`
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
  EXPERIMENTS,
  LAB_SCHEMA,
  type LabReport,
  toHtml,
  toMarkdown,
  validateLabReport,
} from "./lab_report.ts";
import { dirname } from "jsr:@std/path@^1.1.6/dirname";
import { resolve } from "jsr:@std/path@^1.1.6/resolve";
import { CLI as EXP3_CLI } from "../exp3/exp3.ts";
import { type Cli, type CliValues, EXIT, toJson, UsageError } from "../_cli.ts";
import { INTERRUPTED_EXIT_CODE } from "../_deadline.ts";
import { runScript } from "../_runner.ts";
import { BENCH_OPTION, labBench } from "./lab_bench.ts";
import {
  interruptOnSigint,
  NEEDS,
  prepareRunner,
  probePrerequisites,
  runExperiments,
  transportReasons,
} from "./lab_runner.ts";

export { outcomeOf } from "./lab_runner.ts";

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
    bench: BENCH_OPTION,
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

/** What a lab run produced: the report and the files written. */
interface LabRun {
  report: LabReport;
  written: string[];
  interrupted: boolean;
}

type Values = CliValues<typeof CLI.options>;

/** The experiments `--only` selects (all without it). */
function selected(v: Values): string[] {
  return v.only === undefined
    ? [...EXPERIMENTS]
    : v.only.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** Checked before anything runs: the selection, and that the report can be written. */
async function prerequisites(v: Values): Promise<void> {
  const only = selected(v);
  if (only.length === 0) throw new UsageError(`--only takes some of ${EXPERIMENTS.join(",")}`);
  for (const k of only) {
    if (!(EXPERIMENTS as readonly string[]).includes(k)) {
      throw new UsageError(`--only: unknown experiment ${k} (the list: ${EXPERIMENTS.join(",")})`);
    }
  }
  await checkOutDir(v.out);
}

async function runLab(v: Values): Promise<LabRun> {
  const only = selected(v);
  const t0 = performance.now();
  const elapsed = () => {
    const s = Math.round((performance.now() - t0) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  };
  const progress = (s: string) => console.error(`[lab ${elapsed()}] ${s}`);
  using interrupt = interruptOnSigint(progress);
  const { signal } = interrupt;
  const { run, how, beacon } = await prepareRunner(progress, signal);
  const probed = await probePrerequisites(run, signal, progress, only);
  const probe = probed.probe;
  const transports = transportReasons(probed);
  // Both transports where the system has ALPC; else LPC, and the report says why not ALPC.
  const transport = transports.alpc === null ? "both" : "lpc";
  progress(`transports: ${transport}${transports.alpc ? ` (ALPC: ${transports.alpc})` : ""}`);
  const experiments = await runExperiments(run, signal, progress, {
    only,
    ...(beacon ? { beacon } : {}),
    hold: v.hold,
    transport,
  });
  const report: LabReport = {
    schema: LAB_SCHEMA,
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
      needs: NEEDS,
      ...probed,
    },
    experiments,
    transports,
    answers: answerQuestions(experiments, transports),
  };
  const problems = validateLabReport(report);
  if (problems.length) {
    throw new Error(`the report does not match its schema: ${problems.join("; ")}`);
  }

  const stamp = report.generatedAt.replace(/[:.]/g, "-");
  const dir = `${v.out}/${stamp}`;
  await Deno.mkdir(dir, { recursive: true });
  const bench = v.bench === undefined ? undefined : await labBench(v.bench, dir);
  const files: [string, string][] = [
    [`${dir}/report.json`, toJson(report)],
    [`${dir}/report.md`, toMarkdown(report) + (bench?.markdown ?? "")],
    ...(bench?.files ?? []),
    ...(v.html ? [[`${dir}/report.html`, toHtml(report)] as [string, string]] : []),
  ];
  for (const [path, text] of files) await Deno.writeTextFile(path, text);
  const written = files.map(([path]) => path);
  progress(signal.aborted ? "interrupted: the report has what finished" : "done");
  return { report, written, interrupted: signal.aborted };
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    prerequisites,
    run: runLab,
    print: (r) => r.written.forEach((p) => console.log(p)),
    exitCode: (r) =>
      r.interrupted
        ? INTERRUPTED_EXIT_CODE
        : EXPERIMENTS.some((k) => r.report.experiments[k].status === "failed")
        ? EXIT.FAILURE
        : EXIT.OK,
  });
}
