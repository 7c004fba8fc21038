/**
 * `deno bench` of the server loops' per-message work against the zero-cost kernel: one
 * `step()` (receive, dispatch, reply) per iteration, for LPC and ALPC, beside the stand-in alone
 * (the baseline), inline payloads of 0, 256 and the maximum. Times only; the allocations per
 * message are `deno task bench`'s (experiments/bench/server_loop.ts), and the zero-allocation
 * rule is tests/bench/server_loop_test.ts's.
 *
 * ```sh
 * deno bench --allow-ffi tests/bench/server_loop_bench.ts
 * ```
 *
 * @module
 */

import { defaultLoopCases, openCase } from "../../experiments/bench/server_loop.ts";

for (const c of defaultLoopCases()) {
  const s = openCase(c);
  Deno.bench({
    name: `${c.transport} ${c.path} ${c.payload} B`,
    group: `${c.transport} ${c.payload} B`,
    baseline: c.path === "baseline",
    fn: () => s.step(),
  });
}
