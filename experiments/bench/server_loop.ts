/**
 * The toolkit's own per-message work, measured: the server loops' receive, dispatch and reply
 * (`LpcServer.step`, `AlpcServer.step`) against the zero-cost kernel of `_standin.ts`, beside the
 * stand-in alone (the baseline), so what shows is the toolkit's cost.
 *
 * Two measures, per case (transport, handler path, payload):
 * - time: nanoseconds per message, the best of several rounds of `messages` steps each
 *   (`performance.now()`; a loaded machine makes it larger, never smaller);
 * - allocation: V8 heap bytes allocated per message. Each round starts right after a full `gc()`
 *   and reads `Deno.memoryUsage().heapUsed` before and after its steps; with nothing collected in
 *   between the difference is every byte allocated on the V8 heap (young and old), including the
 *   compiler's and the round's own fixed cost of a few kB, so a case that allocates nothing per
 *   message reads well under one byte per message (a JS object is at least 16 bytes). A collection
 *   inside a round would hide bytes: the child runs with a 64 MB young generation (no scavenge
 *   before that much is allocated) and `--trace-gc`, and the parent counts every collection V8
 *   reports between a round's two `gc()` calls (`gcInRounds`, which must be 0). The warm-up runs
 *   as rounds of the same loop ({@link WARMUP_ROUNDS}), so that the compilers, which allocate on
 *   the heap too, are done with it and with the server's code before the measured rounds. The
 *   result is amortised over a round: a single allocation now and then is under a byte a message.
 * - what was answered: the stand-in's count of replies and of their bytes.
 *
 * The stand-in is JavaScript: the FFI boundary (a real ntdll call through Deno's FFI) is not
 * measured here.
 *
 * The allocation half needs V8 flags, so it runs in a child Deno ({@link measureLoop}); that child
 * is this module (`import.meta.main`), given its cases as JSON. Buffers outside the V8 heap
 * (ArrayBuffer backing stores) are not counted by `heapUsed`; the server loop allocates none per
 * message either (every typed array it uses is made once).
 *
 * @module
 */

import { defaultLoopCases, type LoopCase, openCase, type Stepper } from "./_loop_cases.ts";

export {
  allocationSink,
  defaultLoopCases,
  LOOP_MAX_PAYLOAD,
  type LoopCase,
  type LoopPath,
  loopPayloads,
  type LoopTransport,
  openCase,
} from "./_loop_cases.ts";

/** How much to run. */
export interface LoopPlan {
  /** Steps before anything is measured (the compilers settle). */
  warmup: number;
  /** Steps per round. */
  messages: number;
  /** Rounds (the best time and the smallest allocation are kept). */
  rounds: number;
}

/** The default plan: enough to be stable on a loaded 2-core machine, a few seconds in all. */
export const DEFAULT_LOOP_PLAN: LoopPlan = { warmup: 20_000, messages: 20_000, rounds: 5 };

/** What one case measured. */
export interface LoopResult extends LoopCase {
  /** Steps per round. */
  messages: number;
  /** Nanoseconds per message, the best round. */
  nsPerMessage: number;
  /** V8 heap bytes allocated per message, the smallest round (see the module's notes). */
  heapBytesPerMessage: number;
  /** The heap bytes of each round (before dividing). */
  heapBytesPerRound: number[];
  /** Collections V8 reported inside the rounds (counted by the parent from --trace-gc; must be 0). */
  gcInRounds: number;
  /** Replies the stand-in received in all (one per message for a server). */
  replies: number;
  /**
   * The sum of those replies' TotalLengths: with the echo handlers, `replies` times the header
   * (40 bytes) plus the payload, which shows the measured path answered every message in full.
   */
  replyBytes: number;
}

type Gc = () => void;

/** One round's measure: the heap bytes and milliseconds of `messages` steps. */
const measured = { heap: 0, ms: 0 };

/**
 * Runs `messages` steps between two `gc()` calls into {@link measured}. The warm-up runs through
 * here too, so that the compilers have settled this loop as well as the server's code: a loop
 * first run (or first optimised on the stack) inside a round would add its compilation there.
 */
function round(s: Stepper, messages: number, gc: Gc): void {
  gc();
  const h0 = Deno.memoryUsage().heapUsed;
  const t0 = performance.now();
  for (let i = 0; i < messages; i++) s.step();
  const t1 = performance.now();
  const h1 = Deno.memoryUsage().heapUsed;
  gc();
  measured.heap = h1 - h0;
  measured.ms = t1 - t0;
}

/**
 * The warm-up's rounds: {@link round} itself is optimised (first on the stack, then as a whole)
 * over several calls, and its compilations must be over before the measured rounds.
 */
const WARMUP_ROUNDS = 4;

/** Runs the cases in this process (needs `gc`: --expose-gc); each round between two `gc()` calls. */
function runHere(cases: LoopCase[], plan: LoopPlan, gc: Gc): Omit<LoopResult, "gcInRounds">[] {
  const out: Omit<LoopResult, "gcInRounds">[] = [];
  for (const c of cases) {
    using s = openCase(c);
    for (let w = 0; w < WARMUP_ROUNDS; w++) {
      // plan.warmup steps in all, the remainder spread over the first rounds.
      const n = Math.floor(plan.warmup / WARMUP_ROUNDS) + (w < plan.warmup % WARMUP_ROUNDS ? 1 : 0);
      round(s, n, gc);
    }
    let best = Infinity;
    const heap: number[] = [];
    for (let r = 0; r < plan.rounds; r++) {
      round(s, plan.messages, gc);
      heap.push(measured.heap);
      best = Math.min(best, (measured.ms * 1e6) / plan.messages);
    }
    out.push({
      ...c,
      messages: plan.messages,
      nsPerMessage: Math.round(best * 10) / 10,
      heapBytesPerMessage: Math.round((Math.min(...heap) / plan.messages) * 1000) / 1000,
      heapBytesPerRound: heap,
      replies: s.stats.replies,
      replyBytes: s.stats.replyBytes,
    });
  }
  return out;
}

/** Collections the child makes at its end: their ~150-byte lines are more than a stdio buffer. */
const FLUSH_GCS = 64;

/**
 * The V8 flags of the child: gc(), a 64 MB young generation, no background threads (compiles then
 * run on the measuring thread, before they are needed, not finished inside a round), and a line
 * per collection.
 */
export const LOOP_V8_FLAGS =
  "--expose-gc,--trace-gc,--min-semi-space-size=64,--max-semi-space-size=64,--single-threaded";

/**
 * Counts, per round, the collections V8 reported between the round's two `gc()` calls (the
 * "testing" lines): rounds are the lines between testing lines 2k and 2k+1.
 */
export function collectionsInRounds(traceGc: string): number[] {
  const lines = traceGc.split(/\r?\n/).filter((l) => /\bms: [A-Z][\w-]+/.test(l));
  const rounds: number[] = [];
  let testing = 0;
  for (const l of lines) {
    if (/\btesting\b/.test(l)) {
      testing++;
      if (testing % 2 === 1) rounds.push(0);
    } else if (testing % 2 === 1) rounds[rounds.length - 1]!++;
  }
  return rounds;
}

/**
 * Measures `cases` in a child Deno with {@link LOOP_V8_FLAGS} (this module as its main): the
 * results, with each case's collections inside its rounds.
 */
export async function measureLoop(
  cases: LoopCase[] = defaultLoopCases(),
  plan: LoopPlan = DEFAULT_LOOP_PLAN,
): Promise<LoopResult[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-ffi", // Deno.UnsafePointer.create (the port handle as a pointer); nothing is loaded
      `--v8-flags=${LOOP_V8_FLAGS}`,
      new URL(import.meta.url).href,
      JSON.stringify({ cases, plan }),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const td = new TextDecoder();
  const stdout = td.decode(out.stdout);
  const stderr = td.decode(out.stderr);
  const line = stderr.split(/\r?\n/).findLast((l) => l.startsWith("{"));
  if (out.code !== 0 || line === undefined) {
    throw new Error(`the server-loop child exited ${out.code}: ${stderr.trim().slice(-2000)}`);
  }
  const results = (JSON.parse(line) as { results: Omit<LoopResult, "gcInRounds">[] }).results;
  // Each case's warm-up rounds are pairs of gc() calls too (not measured), before its rounds.
  const rounds = results.reduce((n, r) => n + WARMUP_ROUNDS + r.heapBytesPerRound.length, 0);
  // The child's flush calls (FLUSH_GCS) pair into rounds of their own, after the real ones.
  const gcs = collectionsInRounds(stdout).slice(0, rounds);
  if (gcs.length !== rounds) {
    throw new Error(`--trace-gc showed ${gcs.length} rounds, the child ran ${rounds}`);
  }
  let at = 0;
  return results.map((r) => {
    at += WARMUP_ROUNDS;
    const mine = gcs.slice(at, at += r.heapBytesPerRound.length);
    return { ...r, gcInRounds: mine.reduce((a, b) => a + b, 0) };
  });
}

if (import.meta.main) {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) throw new Error(`run with --v8-flags=${LOOP_V8_FLAGS}`);
  const { cases, plan } = JSON.parse(Deno.args[0] ?? "{}") as { cases: LoopCase[]; plan: LoopPlan };
  const results = runHere(cases, plan, gc);
  // V8 prints --trace-gc through the C runtime's buffered stdout, which Windows does not flush at
  // exit: lines of collections after the rounds push the rounds' lines out.
  for (let i = 0; i < FLUSH_GCS; i++) gc();
  console.error(JSON.stringify({ results }));
}
