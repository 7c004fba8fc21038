/**
 * The one skeleton of every runnable script: its options (`Cli`, checked by `runCli`), its
 * prerequisites (checked before anything is set up), the run (set up, act, observe, explain;
 * what it set up is cleaned up on every path, Ctrl-C included, by {@link runPhases}), and the
 * output: the JSON document with `--json` (or where the script prints nothing else), the
 * human-readable report otherwise, the exit code, and a failure as one line (`_cli.ts`).
 *
 * A script's `main` is then one call:
 *
 * ```ts ignore
 * if (import.meta.main) await runScript(import.meta.url, { cli: CLI, run, print });
 * ```
 *
 * @module
 */

import { assertWindows } from "../mod.ts";
import { type CliSpec, type CliValues, EXIT, interruptible, runCli, toJson } from "./_cli.ts";
import type { Cli } from "./_help.ts";

/** Where a run writes its progress: stderr, or nowhere with `--json`. */
export type Log = (line: string) => void;

/** A runnable script, by its parts. */
export interface Script<S extends CliSpec, D> {
  /** The command line. */
  readonly cli: Cli<S>;
  /**
   * Checked before anything is set up: what the declarations cannot say about the options (a
   * `UsageError`), and what the system must offer (`assertWindows`, an `UnsupportedError`).
   */
  readonly prerequisites?: (v: CliValues<S>) => void | Promise<void>;
  /** The run itself; its result is the script's document. */
  readonly run: (v: CliValues<S>, log: Log) => D | Promise<D>;
  /** The human-readable output (without `--json`); without it the document is printed. */
  readonly print?: (doc: D, v: CliValues<S>) => void;
  /** The exit code of a finished run (default {@link EXIT.OK}). */
  readonly exitCode?: (doc: D) => number;
}

/** Whether the parsed values ask for the JSON document. */
function wantsJson(v: object): boolean {
  return "json" in v && v.json === true;
}

/** Runs a {@link Script} as the main module: parses, checks, runs, prints, exits. */
export function runScript<S extends CliSpec, D>(
  script: URL | string,
  s: Script<S, D>,
): Promise<never> {
  return runCli(script, s.cli, async (v) => {
    await s.prerequisites?.(v);
    const json = wantsJson(v);
    const doc = await s.run(v, json ? () => {} : (line) => console.error(line));
    if (json || s.print === undefined) console.log(toJson(doc));
    else s.print(doc, v);
    return s.exitCode?.(doc) ?? EXIT.OK;
  });
}

/**
 * Runs a client script as the main module: Windows only (checked first), its output the JSON
 * lines `steps` writes as they happen (`writeJsonLine`), exit 0 when they are done.
 */
export function runSteps<S extends CliSpec>(
  script: URL | string,
  cli: Cli<S>,
  steps: (v: CliValues<S>) => Promise<void>,
): Promise<never> {
  return runScript(script, {
    cli,
    prerequisites: () => assertWindows(cli.name),
    run: steps,
    print: () => {},
  });
}

/** The phases of an experiment's run. `S`: what set-up made; `A`: what acting gave. */
export interface Phases<S, A, D> {
  /** Creates what the run needs; whatever must be undone goes on `cleanup`. */
  readonly setUp: (cleanup: AsyncDisposableStack) => S | Promise<S>;
  /** Does what the experiment is about. */
  readonly act: (s: S, cleanup: AsyncDisposableStack) => A | Promise<A>;
  /** Gathers what happened into the document (before anything is cleaned up). */
  readonly observe: (s: S, a: A) => D | Promise<D>;
  /** Adds the explanation, from the document's evidence. */
  readonly explain?: (doc: D) => D;
}

/**
 * Set up, act, observe, explain; then clean up (in reverse order of set-up), on every path: a
 * throw, a return, or Ctrl-C (SIGINT cleans up, then exits 130; see `interruptible`).
 */
export async function runPhases<S, A, D>(p: Phases<S, A, D>): Promise<D> {
  await using cleanup = interruptible();
  const s = await p.setUp(cleanup);
  const a = await p.act(s, cleanup);
  const doc = await p.observe(s, a);
  return p.explain ? p.explain(doc) : doc;
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `test` every `stepMs` until it holds; throws `timed out waiting for <what>` after
 * `timeoutMs` (catch it where a missing event is an observation, not a failure).
 */
export async function until(
  what: string,
  test: () => boolean,
  timeoutMs: number,
  stepMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Milliseconds since the epoch, to a tenth (the clock the timelines of all processes share). */
export const epochMs = (): number =>
  Math.round((performance.timeOrigin + performance.now()) * 10) / 10;

/** One JSON object per line, as a child writes its steps: the lines that are objects, parsed. */
export function jsonLines<T = Record<string, unknown>>(stdout: string): T[] {
  return stdout.split(/\r?\n/).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as T);
}

/**
 * Writes one JSON line with the time first (`at`, epoch ms to a tenth; now, or `at`): a child's
 * step, as {@link jsonLines} reads it.
 */
export function writeJsonLine(o: Record<string, unknown>, at?: number): void {
  const t = at === undefined ? epochMs() : Math.round(at * 10) / 10;
  console.log(JSON.stringify({ at: t, ...o }));
}
