/**
 * The server loops allocate nothing per message in steady state: `LpcServer` and `AlpcServer`
 * with a `requestInto` handler and `logRequests: false`, against the zero-cost kernel, inline
 * requests of 0, 256 and the largest payload. Measured in a child Deno (experiments/bench/
 * server_loop.ts): V8 heap bytes over rounds of 20 000 messages after 20 000 of warm-up, each round
 * between two full collections and valid only if V8 (--trace-gc) collected nothing inside it.
 * Counts, not times: a loaded machine changes nothing here.
 *
 * The bound is one byte per message, amortised over a round (the smallest V8 object is 16 bytes,
 * so one allocation every 16 messages would fail it), and at least 4 of the 5 rounds must be under
 * it (one round may carry a stray cost of the runtime's); the same measure must catch a handler
 * that keeps one small array per message. Every reply must have gone out whole: the stand-in's
 * count of reply bytes is the replies times the header and the echoed payload. The stand-in is
 * JavaScript, so this measures the toolkit's JS side only, not the FFI boundary's.
 */

import { assert, assertEquals, assertGreaterOrEqual } from "@std/assert";
import { PORT_MESSAGE_HEADER_SIZE } from "../../raw.ts";
import {
  collectionsInRounds,
  type LoopCase,
  loopPayloads,
  type LoopPlan,
  type LoopResult,
  measureLoop,
} from "../../experiments/bench/server_loop.ts";

const PLAN: LoopPlan = { warmup: 20_000, messages: 20_000, rounds: 5 };
/** Under this many heap bytes per message, nothing is allocated per message. */
const ZERO = 1;
/** Rounds that must be under {@link ZERO} (of {@link PLAN}'s 5). */
const UNDER = 4;

const show = (r: LoopResult) =>
  `${r.transport} ${r.path} ${r.payload} B: ${r.heapBytesPerMessage} heap bytes/message, rounds ${
    JSON.stringify(r.heapBytesPerRound)
  }, ${r.gcInRounds} collections inside rounds, ${r.replies} replies of ${r.replyBytes} bytes`;

Deno.test("the server loops allocate nothing per message (requestInto, logRequests: false), and an allocating handler is caught", async () => {
  const cases: LoopCase[] = [];
  for (const transport of ["lpc", "alpc"] as const) {
    for (const payload of loopPayloads(transport)) {
      cases.push({ transport, path: "requestInto", payload });
    }
    cases.push({ transport, path: "allocating", payload: 256 });
  }
  const results = await measureLoop(cases, PLAN);
  assertEquals(results.length, cases.length);
  const steps = PLAN.warmup + PLAN.rounds * PLAN.messages;
  for (const r of results) {
    assertEquals(r.gcInRounds, 0, `a collection inside a round hides bytes: ${show(r)}`);
    assertEquals(r.heapBytesPerRound.length, PLAN.rounds, show(r));
    // Every message was answered (LPC sends each reply with the next receive: one fewer), each
    // reply the whole echo: both transports' PORT_MESSAGE header is 40 bytes on x64.
    assertEquals(r.replies, r.transport === "lpc" ? steps - 1 : steps, show(r));
    assertEquals(r.replyBytes, r.replies * (PORT_MESSAGE_HEADER_SIZE + r.payload), show(r));
    if (r.path === "requestInto") {
      const under = r.heapBytesPerRound.filter((b) => b / PLAN.messages < ZERO).length;
      assertGreaterOrEqual(under, UNDER, `${under} of ${PLAN.rounds} rounds under: ${show(r)}`);
    } else {
      // One small array per message: at least 16 bytes each, and every round shows it.
      assertGreaterOrEqual(r.heapBytesPerMessage, 16, show(r));
      for (const b of r.heapBytesPerRound) assertGreaterOrEqual(b / PLAN.messages, ZERO, show(r));
    }
  }
});

Deno.test("collectionsInRounds counts V8's collections between each pair of gc() lines", () => {
  const t = (what: string, reason: string) =>
    `[1:0x1]   10 ms: ${what} 2.3 (2.8) -> 2.2 (2.8) MB, 3.10 / 0.00 ms ${reason}`;
  const trace = [
    t("Scavenge", "allocation failure;"), // warm-up: outside every round
    t("Mark-Compact", "testing; GC in old space requested"),
    t("Mark-Compact", "testing; GC in old space requested"),
    "not a trace line",
    t("Mark-Compact", "testing; GC in old space requested"),
    t("Scavenge", "allocation failure;"),
    t("Scavenge", "task;"),
    t("Mark-Compact", "testing; GC in old space requested"),
  ].join("\n");
  assertEquals(collectionsInRounds(trace), [0, 2]);
  assert(collectionsInRounds("").length === 0);
});
