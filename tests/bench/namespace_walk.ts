#!/usr/bin/env -S deno run --allow-ffi
/**
 * Times a walk of the whole object namespace through the toolkit, the way the C lister times
 * itself: in a fresh process, after one warm-up walk, the best of five, start-up excluded.
 * Prints `{"ms": <best>, "objects": <count>}`. Run by tests/ffi/nt/namespace_windows_test.ts:
 *
 * ```sh
 * deno run --allow-ffi tests/bench/namespace_walk.ts
 * ```
 *
 * @module
 */

import { walkNamespace } from "../../ffi/nt/namespace.ts";
import { type Cli, EXIT, runCli } from "../../experiments/_cli.ts";

function walk(): { ms: number; objects: number } {
  const t0 = performance.now();
  let objects = 0;
  for (const e of walkNamespace("\\")) if (e.kind === "object") objects++;
  return { ms: performance.now() - t0, objects };
}

/** The command line (no options). */
export const CLI = {
  name: "namespace_walk",
  usage: `namespace_walk: times a walk of the whole object namespace (best of five).

Usage: deno run --allow-ffi tests/bench/namespace_walk.ts`,
  options: {},
  notes: 'Prints {"ms": <best>, "objects": <count>}.',
} as const satisfies Cli;

function main(): number {
  walk();
  const runs = [1, 2, 3, 4, 5].map(walk);
  const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  console.log(JSON.stringify(best));
  return EXIT.OK;
}

if (import.meta.main) {
  await runCli(import.meta.url, CLI, main);
}
