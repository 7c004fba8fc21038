#!/usr/bin/env -S deno run --allow-run --allow-read --allow-write --allow-env
/**
 * Runs the Windows build of Deno under Wine 8.0 (prepared and cached by `experiments/_wine_harness.ts`).
 *
 * ```sh
 * deno task test:wine     # the test suite, with the flags of `deno task test`
 * deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts test FILE…
 * deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts exec run --allow-ffi experiments/ports/list_ports.ts --json
 * deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts prepare
 * ```
 *
 * `test FILE…` runs some test files only; `prepare` only prepares the cache; `growth [RUNS]` runs
 * the whole suite RUNS times (default 3) and prints how much `.tools/` grew after the first run
 * (exit 1 from 5 MB on, or when a run failed).
 *
 * Ctrl-C (SIGINT) ends the Windows Deno and every process of the private prefix at once, and the
 * exit code is 130.
 *
 * Exit code: the Windows Deno's, 130 when interrupted, or 1 if preparing Wine failed.
 *
 * @module
 */

import { format as bytes } from "jsr:@std/fmt@^1.0.10/bytes";
import { format as duration } from "jsr:@std/fmt@^1.0.10/duration";
import { INTERRUPTED_EXIT_CODE } from "../../experiments/_deadline.ts";
import {
  GROWTH_LIMIT_MB,
  prepareWine,
  runUnderWine,
  TOOLS_DIR,
  treeBytes,
  type WineDeno,
} from "../../experiments/_wine_harness.ts";

const USAGE =
  `Usage: deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts \\
         test [FILE…] | exec DENO_ARGS… | prepare | growth [RUNS] | --help
  test     run the test suite under Wine, with the permissions of \`deno task test\`
  exec     run the Windows Deno with these arguments (e.g. run --allow-ffi script.ts)
  prepare  install and build what Wine needs (cached in .tools/wine) and stop
  growth   run the suite RUNS times (2..20, default 3) and print how much .tools/ grew after
           the first run; exit 1 from ${GROWTH_LIMIT_MB} MB on
Ctrl-C ends the Windows Deno and every process of the prefix; the exit code is then 130.`;

/** A size as `93.4 MB` (SI units, as {@link GROWTH_LIMIT_MB}). */
const size = (n: number) => bytes(n, { maximumFractionDigits: 1 });

/** The flags `deno task test` passes, read from deno.json so the two suites cannot drift. */
async function testFlags(): Promise<string[]> {
  const cfg = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { tasks: { test: { command: string } } };
  const words = cfg.tasks.test.command.split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "test") {
    throw new Error(`tasks.test is not a deno test command: ${cfg.tasks.test.command}`);
  }
  return words.slice(2).filter((w) => w.startsWith("--"));
}

async function main(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === "--help" || verb === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (verb === undefined || !["test", "exec", "prepare", "growth"].includes(verb)) {
    // One line, as every script's usage error (experiments/_cli.ts).
    console.error(
      `run.ts: ${
        verb === undefined ? "a command is needed" : `unknown command ${JSON.stringify(verb)}`
      }: test, exec, prepare or growth (see --help)`,
    );
    return 2;
  }
  const runs = verb === "growth" ? Number(rest[0] ?? "3") : 1;
  if (verb === "growth" && (rest.length > 1 || !Number.isInteger(runs) || runs < 2 || runs > 20)) {
    console.error(`run.ts: growth takes one number of runs, 2..20 (see --help)`);
    return 2;
  }
  // Ctrl-C: the run below ends the prefix's processes; we exit 130 once they are gone.
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const started = performance.now();
    let wine;
    try {
      wine = await prepareWine();
    } catch (e) {
      if (interrupt.signal.aborted) return INTERRUPTED_EXIT_CODE;
      console.error(`run.ts: could not prepare Wine: ${e instanceof Error ? e.message : e}`);
      return 1;
    }
    console.error(
      `[wine] ready in ${duration(Math.round(performance.now() - started), { ignoreZero: true })}`,
    );
    if (interrupt.signal.aborted) return INTERRUPTED_EXIT_CODE;
    if (verb === "prepare") return 0;
    const suite = [
      "test",
      ...(await testFlags()),
      ...(verb === "test" && rest.length ? rest : ["tests/"]),
    ];
    if (verb === "growth") return await growth(wine, suite, runs, interrupt.signal);
    const r = await runUnderWine(wine, verb === "test" ? suite : rest, {
      signal: interrupt.signal,
    });
    return r.interrupted ? INTERRUPTED_EXIT_CODE : r.code;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

/** `growth`: the suite `runs` times, with the size of `.tools/` before and after each run. */
async function growth(
  wine: WineDeno,
  suite: string[],
  runs: number,
  signal: AbortSignal,
): Promise<number> {
  const sizes = [await treeBytes(TOOLS_DIR)];
  let failed = 0;
  console.error(`[wine] growth: .tools/ is ${size(sizes[0]!)} before run 1`);
  for (let i = 1; i <= runs; i++) {
    const r = await runUnderWine(wine, suite, { signal });
    if (r.interrupted) return INTERRUPTED_EXIT_CODE;
    if (r.code !== 0) failed++;
    sizes.push(await treeBytes(TOOLS_DIR));
    console.error(
      `[wine] growth: run ${i} exited ${r.code}; .tools/ is ${size(sizes[i]!)} (${
        size(sizes[i]! - sizes[i - 1]!)
      })`,
    );
  }
  const after = sizes.at(-1)! - sizes[1]!;
  const ok = after < GROWTH_LIMIT_MB * 1e6;
  console.log(
    `growth: .tools/ ${size(sizes[0]!)} before, ${size(sizes[1]!)} after run 1, ${
      size(sizes.at(-1)!)
    } after run ${runs}: ${size(after)} after the first run (limit ${GROWTH_LIMIT_MB} MB); ${
      ok ? "ok" : "TOO MUCH"
    }; ${failed} of ${runs} runs failed`,
  );
  return ok && failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
