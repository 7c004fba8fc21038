/**
 * Leak checks on handle counts that the runtime's own threads cannot make flaky: count the handles
 * of the type under test exactly, and ask of all our handles only that they do not grow with the
 * number of cycles. (Windows build only: the counts come from the system handle table.)
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { ownHandles } from "../ffi/nt/system_handles.ts";

/**
 * How many more handles this process may hold after a loop than before it, the loop opening none:
 * the runtime's own threads open and close handles meanwhile. Tokio's blocking pool (Deno's fs
 * calls, nonblocking FFI calls, child processes) holds one Thread handle per pool thread and closes
 * it when the thread has been idle for 10 s; an async file call closes its File handle on a pool
 * thread. A burst of such work in one test moves the total during a later one: the Wine suite's
 * flakes ("table 67 vs 68", "70 vs 69") were such moves, compared with a baseline.
 *
 * Measured under Wine 8.0 with the Windows Deno 2.9.6 on 2 cores, by repeating the 1,000 + 1,000
 * directory cycles 70 times (30 beside other work, load average ~2; 40 more beside two
 * `sha256sum /dev/zero`) while bursts of 0 to 6 nonblocking FFI calls and async file reads,
 * started before each repetition, ran during it: the total moved by -3 to 0 over the first 1,000
 * cycles (pool threads' handles closing) and by 0 over the next 1,000, all 70 times; inside two
 * Wine suite runs it moved by 0, and the Directory count was exact every time. Pool threads exiting
 * only lower the count; growth needs a new thread or handle in another thread, which a test's
 * synchronous loop does not start. The bound is the largest move seen (3), more than doubled: a
 * leak of one handle per cycle adds `n` (1,000 or 200), one per 10 cycles adds 100; both fail.
 */
export const RUNTIME_TRANSIENT_HANDLES = 8;

/** Our handle counts before a loop, after `n` cycles and after `2n`. */
export interface CycleHandleCounts {
  /** Cycles per half. */
  n: number;
  /** All our handles (the runtime's own included). */
  all: [number, number, number];
  /** Our handles of the object type under test. */
  typed: [number, number, number];
}

/**
 * Runs `cycle` `n` times, then `n` times more, and counts our handles before, between and after:
 * all of them, and those of `typeIndex` (learned with `handleTypeIndex` from a handle of that
 * type). With `settleMs` (a server in a Worker closes its end after the client), each count after
 * a half waits up to that long for the typed count to come back to its value before the loop.
 */
export async function handleCountsAcrossCycles(
  typeIndex: number,
  n: number,
  cycle: (i: number) => void,
  settleMs = 0,
): Promise<CycleHandleCounts> {
  const typed0 = ownHandles(typeIndex).length;
  const counts = async (): Promise<[number, number]> => {
    const until = Date.now() + settleMs;
    while (ownHandles(typeIndex).length !== typed0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const all = ownHandles();
    return [all.length, all.filter((h) => h.typeIndex === typeIndex).length];
  };
  const all0 = ownHandles().length;
  for (let i = 0; i < n; i++) cycle(i);
  const [allN, typedN] = await counts();
  for (let i = n; i < 2 * n; i++) cycle(i);
  const [all2N, typed2N] = await counts();
  return { n, all: [all0, allN, all2N], typed: [typed0, typedN, typed2N] };
}

/**
 * Asserts that the cycles left no handle behind: those of the type under test are exactly as many
 * after each half as before the loop (nothing else of ours opens that type meanwhile), and all our
 * handles grew from `n` to `2n` cycles by at most {@link RUNTIME_TRANSIENT_HANDLES} (a leak of any
 * type, one per cycle, adds `n`). The first `n` cycles warm up what the runtime opens only once.
 */
export function assertNoHandleGrowthPerCycle(c: CycleHandleCounts, what: string): void {
  assert(
    c.n > 2 * RUNTIME_TRANSIENT_HANDLES,
    `${c.n} cycles are too few: a leak of one per cycle must exceed the runtime's transient handles`,
  );
  const [before] = c.typed;
  assertEquals(c.typed, [before, before, before], `${what}: handles of its type ${c.typed}`);
  const growth = c.all[2] - c.all[1];
  assert(
    growth <= RUNTIME_TRANSIENT_HANDLES,
    `${what}: ${growth} more handles after ${2 * c.n} cycles than after ${c.n} (all: ${c.all}), ` +
      `more than the ${RUNTIME_TRANSIENT_HANDLES} the runtime's own threads account for`,
  );
}
