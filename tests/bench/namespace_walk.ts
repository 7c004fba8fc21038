/**
 * Times a walk of the whole object namespace through the toolkit, the way the C lister times
 * itself: in a fresh process, after one warm-up walk, the best of five, start-up excluded.
 * Prints `{"ms": <best>, "objects": <count>}`. Run by tests/namespace_windows_test.ts.
 *
 * @module
 */

import { walkNamespace } from "../../ffi/namespace.ts";

function walk(): { ms: number; objects: number } {
  const t0 = performance.now();
  let objects = 0;
  for (const e of walkNamespace("\\")) if (e.kind === "object") objects++;
  return { ms: performance.now() - t0, objects };
}

if (import.meta.main) {
  walk();
  const runs = [1, 2, 3, 4, 5].map(walk);
  const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  console.log(JSON.stringify(best));
}
