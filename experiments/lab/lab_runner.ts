/**
 * How the lab runs its children: with this Deno on Windows, with the Windows Deno under Wine on
 * Linux; each with exactly its shebang's flags, a deadline, and Ctrl-C; the prerequisite probe
 * first, then each experiment isolated, its outcome classified by its exit code and document.
 *
 * @module
 */

import { type ExperimentKey, EXPERIMENTS, type Outcome } from "./lab_report.ts";
import type { ProbeDocument } from "./lab_probe.ts";
import { scriptFlags } from "../_permissions.ts";
import { INTERRUPTED_EXIT_CODE, outputWithDeadline } from "../_deadline.ts";
import type { TransportChoice } from "../_transport.ts";
import {
  type BeaconStarter,
  type BeaconStatus,
  runnerStarter,
  spawnStarter,
  withBeacon,
} from "./lab_beacon_run.ts";

/** Runs one child (`deno` arguments) until it ends, its deadline passes or `signal` aborts. */
export type Runner = (
  args: string[],
  signal: AbortSignal,
) => Promise<{ code: number; stdout: string; stderr: string; interrupted: boolean }>;

const rel = (p: string) => `experiments/${p}`;
const ROOT = new URL("../../", import.meta.url);

/** What each experiment runs; its permissions are its shebang's (`_permissions.ts`). */
const COMMANDS: Record<ExperimentKey, { script: string; args: (o: RunOptions) => string[] }> = {
  ports: {
    script: "ports/list_ports.ts",
    args: () => ["--all", "--servers", "--graph", "--waits", "--json"],
  },
  exp1: { script: "exp1/exp1.ts", args: (o) => ["--json", "--transport", o.transport] },
  exp2: { script: "exp2/exp2.ts", args: (o) => ["--json", "--transport", o.transport] },
  exp3: {
    script: "exp3/exp3.ts",
    args: (o) => ["--json", "--hold", String(o.hold), "--transport", o.transport],
  },
};

/** The beacon the lab starts around the ports walk (its ports and a connected client). */
const BEACON = { script: "ports/lab_beacon.ts", args: ["--seconds", "900"] };

/** What the lab passes its experiments. */
interface RunOptions {
  /** Experiment 3's hold. */
  hold: number;
  /** The transports (`both` where the system has ALPC). */
  transport: TransportChoice;
}

/**
 * Why each transport cannot be observed here, from the probe (its `unavailable()` reasons), or
 * the probe's failure when there is no probe.
 */
export function transportReasons(
  p: { probe?: ProbeDocument; probeError?: string },
): { lpc: string | null; alpc: string | null } {
  const none = `the prerequisite probe did not run (${p.probeError ?? "no document"})`;
  return p.probe
    ? { lpc: p.probe.missing.lpc, alpc: p.probe.missing.alpc }
    : { lpc: none, alpc: none };
}

/** `deno run` arguments for one of our scripts: exactly its shebang's flags, then the script. */
async function runArgs(script: string, args: string[]): Promise<string[]> {
  return ["run", ...(await scriptFlags(new URL(rel(script), ROOT))), rel(script), ...args];
}

/** Each child of the lab (the probe, each experiment) is killed after this long; the lab goes on. */
const CHILD_DEADLINE_MS = 300_000;

/** How the lab runs its children, and starts the beacon (a child that runs beside the walk). */
export interface LabRunner {
  run: Runner;
  how: string;
  /** Starts the beacon; without it the walk runs alone. */
  beacon?: BeaconStarter;
}

export function windowsRunner(): LabRunner {
  const run: Runner = (args, signal) =>
    outputWithDeadline(Deno.execPath(), args, {
      cwd: ROOT,
      deadlineMs: CHILD_DEADLINE_MS,
      signal,
    });
  return { run, how: `Windows, Deno ${Deno.version.deno}`, beacon: spawnStarter(ROOT) };
}

export async function wineRunner(
  progress: (s: string) => void,
): Promise<LabRunner> {
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
  // Each run ends the prefix's processes, so the beacon is run to its end (there is no LPC under
  // Wine: it exits 3 at once, with its reason).
  return { run, how: "Linux, the Windows Deno under Wine", beacon: runnerStarter(run) };
}

export function lastLine(s: string): string {
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
export function interruptOnSigint(progress: (s: string) => void): AbortController & Disposable {
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

/** What each experiment needs, as the report states it. */
export const NEEDS: Record<ExperimentKey, string> = {
  ports: "Windows (the namespace); --servers: elevation for SeDebugPrivilege",
  exp1: "Windows with LPC (and ALPC for its ALPC run); an elevated prompt",
  exp2: "Windows with LPC (and ALPC) and exception ports; an elevated prompt; SYSTEM obtainable",
  exp3: "Windows (the debug API); its server half needs LPC (and ALPC)",
};

/** The runner for this system; a stand-in that runs nothing when Ctrl-C came while preparing. */
export async function prepareRunner(
  progress: (s: string) => void,
  signal: AbortSignal,
): Promise<LabRunner> {
  let runner: LabRunner | undefined;
  try {
    runner = Deno.build.os === "windows" ? windowsRunner() : await wineRunner(progress);
  } catch (e) {
    if (!signal.aborted) throw e; // Ctrl-C while preparing Wine: report that nothing ran
  }
  if (runner) {
    progress(`running on ${runner.how}`);
    return runner;
  }
  return {
    how: "not prepared (interrupted)",
    run: () =>
      Promise.resolve({ code: INTERRUPTED_EXIT_CODE, stdout: "", stderr: "", interrupted: true }),
  };
}

/** The prerequisites, from the Windows side: the probe's document, or why there is none. */
export async function probePrerequisites(
  run: Runner,
  signal: AbortSignal,
  progress: (s: string) => void,
  only: readonly string[],
): Promise<{ probe?: ProbeDocument; probeError?: string }> {
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
    for (const k of only) progress(`  ${k} needs: ${NEEDS[k as ExperimentKey]}`);
  }

  return probe
    ? { probe }
    : { probeError: signal.aborted ? "interrupted" : lastLine(probeRun.stderr) };
}

/** Runs the selected experiments, each isolated; the others are marked skipped or interrupted. */
export async function runExperiments(
  run: Runner,
  signal: AbortSignal,
  progress: (s: string) => void,
  o: { only: readonly string[]; beacon?: BeaconStarter } & RunOptions,
): Promise<Record<ExperimentKey, Outcome>> {
  const experiments = {} as Record<ExperimentKey, Outcome>;
  for (const k of EXPERIMENTS) {
    if (!o.only.includes(k)) {
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
    let beacon: BeaconStatus | undefined;
    try {
      const args = await runArgs(c.script, c.args(o));
      // The ports walk runs with the beacon up (the lab's own ports), where it can start.
      const r = k === "ports" && o.beacon
        ? await withBeacon(o.beacon, await runArgs(BEACON.script, BEACON.args), {
          signal,
          progress,
        }, () => run(args, signal)).then((b) => ((beacon = b.beacon), b.value))
        : await run(args, signal);
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
    experiments[k] = beacon ? { ...outcome, beacon } : outcome;
    progress(
      `${k}: ${outcome.status}${outcome.reason ? ` (${outcome.reason})` : ""} in ${
        outcome.seconds ?? "?"
      } s`,
    );
  }

  return experiments;
}
