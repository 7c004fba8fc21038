#!/usr/bin/env -S deno run --allow-run --allow-read --allow-write --allow-env
/**
 * Runs the Windows build of Deno under Wine 8.0 (prepared and cached by `harness.ts`).
 *
 * ```sh
 * deno task test:wine     # the test suite, with the flags of `deno task test`
 * deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts test FILE…
 * deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts exec run --allow-ffi experiments/list_ports.ts --json
 * deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts prepare
 * ```
 *
 * `test FILE…` runs some test files only; `prepare` only prepares the cache.
 *
 * Exit code: the Windows Deno's, or 1 if preparing Wine failed.
 *
 * @module
 */

import { prepareWine, runUnderWine } from "./harness.ts";

const USAGE =
  `Usage: deno run --allow-run --allow-read --allow-write --allow-env tests/wine/run.ts \\
         test [FILE…] | exec DENO_ARGS… | prepare | --help
  test     run the test suite under Wine, with the permissions of \`deno task test\`
  exec     run the Windows Deno with these arguments (e.g. run --allow-ffi script.ts)
  prepare  install and build what Wine needs (cached in .tools/wine) and stop`;

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
  if (verb === undefined || !["test", "exec", "prepare"].includes(verb)) {
    // One line, as every script's usage error (experiments/_cli.ts).
    console.error(
      `run.ts: ${
        verb === undefined ? "a command is needed" : `unknown command ${JSON.stringify(verb)}`
      }: test, exec or prepare (see --help)`,
    );
    return 2;
  }
  const started = performance.now();
  let wine;
  try {
    wine = await prepareWine();
  } catch (e) {
    console.error(`run.ts: could not prepare Wine: ${e instanceof Error ? e.message : e}`);
    return 1;
  }
  console.error(`[wine] ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (verb === "prepare") return 0;
  const denoArgs = verb === "test"
    ? ["test", ...(await testFlags()), ...(rest.length ? rest : ["tests/"])]
    : rest;
  const { code } = await runUnderWine(wine, denoArgs);
  return code;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
