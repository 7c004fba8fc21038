/**
 * The benchmark's document and tables, from a document recorded on Linux
 * (tests/bench/fixtures/bench_linux.json: the loop part ran, the transport part could not) and
 * from made-up transport rows (the ratio, the 1.2x goal per inline row, a missing C column); and
 * the lab's `--bench`: the tables end report.md, a missing or foreign document is said, not fatal.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import { fromFileUrl } from "@std/path";
import {
  BENCH_SCHEMA,
  type BenchDocument,
  benchMarkdown,
  loopTable,
  transportTable,
} from "../../experiments/bench/bench_table.ts";
import { GOAL_RATIO, transportCases } from "../../experiments/bench/transport_bench.ts";
import { labBench } from "../../experiments/lab/lab_bench.ts";
import { defaultLoopCases } from "../../experiments/bench/server_loop.ts";

const FIXTURE = new URL("./fixtures/bench_linux.json", import.meta.url);
const RECORDED = JSON.parse(await Deno.readTextFile(FIXTURE)) as BenchDocument;

Deno.test("the recorded Linux document: every loop case, the allocation-free path at zero bytes, the transport's reason", () => {
  assertStrictEquals(RECORDED.schema, BENCH_SCHEMA);
  assert(RECORDED.loop?.ran);
  const rows = RECORDED.loop.rows;
  assertEquals(
    rows.map((r) => `${r.transport} ${r.path} ${r.payload}`),
    defaultLoopCases().map((c) => `${c.transport} ${c.path} ${c.payload}`),
  );
  for (const r of rows.filter((r) => r.path === "requestInto")) {
    assertEquals(r.gcInRounds, 0);
    assert(r.heapBytesPerMessage < 1, `${r.transport} ${r.payload}: ${r.heapBytesPerMessage}`);
  }
  for (const r of rows.filter((r) => r.path === "request" && r.gcInRounds === 0)) {
    assert(r.heapBytesPerMessage > 100, "the general path allocates (events, copies)");
  }
  assert(RECORDED.transport && !RECORDED.transport.ran);
  assertMatch(RECORDED.transport.reason, /needs Windows/);
  const md = benchMarkdown(RECORDED);
  assertMatch(md, /Machine: AMD EPYC, 2 logical processors, linux\/x86_64/);
  assertEquals(loopTable(rows).split("\n").length, rows.length + 2);
  assertMatch(md, /### The transports[\s\S]*Not run: LPC: needs Windows/);
});

Deno.test("transport rows: the ratio, the goal on inline rows only, a missing C column", () => {
  const cases = transportCases();
  assertEquals(cases.length, 10);
  assertEquals(cases.filter((c) => c.kind === "inline").map((c) => c.bytes), [
    0,
    256,
    608,
    0,
    256,
    65495,
  ]);
  assertEquals(cases.filter((c) => c.kind === "view").map((c) => c.bytes), [
    65536,
    1048576,
    65536,
    1048576,
  ]);
  const side = (ns: number) => ({
    nsPerRoundTrip: ns,
    roundTripsPerSecond: 1e9 / ns,
    mbPerSecond: 0,
  });
  const table = transportTable([
    { ...cases[0]!, roundTrips: 10, deno: side(1100), c: side(1000), ratio: 1.1, goalMet: true },
    { ...cases[1]!, roundTrips: 10, deno: side(1300), c: side(1000), ratio: 1.3, goalMet: false },
    { ...cases[3]!, roundTrips: 10, deno: side(9000), c: null, ratio: null, goalMet: null },
    {
      ...cases[4]!,
      roundTrips: 10,
      deno: { error: "a | b" },
      c: side(1000),
      ratio: null,
      goalMet: null,
    },
  ]).split("\n");
  assertEquals(table.length, 6);
  assertMatch(table[2]!, /\| 1,100 \|.*\| 1,000 \|.*\| 1\.1 \| met \|$/);
  assertMatch(table[3]!, /\| 1\.3 \| missed \|$/);
  assertMatch(table[4]!, / – \| – \| {2}\| {2}\|$/);
  assertMatch(table[5]!, /not run: a \/ b/);
  assertStrictEquals(GOAL_RATIO, 1.2);
});

Deno.test("the lab's --bench: the tables end report.md; a missing or foreign file is said", async () => {
  const ok = await labBench(fromFileUrl(FIXTURE), "/r");
  assertEquals(ok.files.map(([p]) => p), ["/r/bench.json", "/r/bench.md"]);
  assertMatch(ok.markdown, /## Benchmark \(/);
  const missing = await labBench("/no/such/bench.json", "/r");
  assertEquals(missing.files, []);
  assertMatch(missing.markdown, /Not included: \/no\/such\/bench\.json: /);
  const dir = await Deno.makeTempDir({ prefix: "deno-lpc-bench-test-" });
  try {
    const foreign = `${dir}/other.json`;
    // With the byte-order mark PowerShell's Out-File writes.
    await Deno.writeTextFile(foreign, '\uFEFF{"schema":"deno-lpc/lab@2"}');
    const r = await labBench(foreign, "/r");
    assertEquals(r.files, []);
    assertMatch(r.markdown, /schema deno-lpc\/lab@2, not deno-lpc\/bench@1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
