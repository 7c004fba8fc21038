/**
 * `deno task bench` as a user runs it where there is no LPC (Linux): by default (`--part auto`)
 * the loop part prints and the transport part's reason is said, exit 0; asked for by name
 * (`--part transport`), the transport part that cannot run is exit 3 with the reason.
 */

import { assert, assertMatch, assertStrictEquals } from "@std/assert";
import { conditionalTest, ON_LINUX, run } from "../_helpers.ts";
import { BENCH_SCHEMA, type BenchDocument } from "../../experiments/bench/bench_table.ts";

const SCRIPT = new URL("../../experiments/bench/bench.ts", import.meta.url).pathname;
const FLAGS = ["run", "--allow-ffi", "--allow-read", "--allow-write", "--allow-run"];
const LINUX_ONLY = ON_LINUX ? null : "the no-LPC exit codes are Linux's (Windows runs the part)";

conditionalTest(
  [
    "bench on Linux: --part auto (the default) prints the loop rows and says why the transport part did not run, exit 0; --part transport is exit 3 (Linux only)",
    "bench on Linux: auto is exit 0, transport is exit 3",
  ],
  LINUX_ONLY,
  async () => {
    const auto = await run(Deno.execPath(), [...FLAGS, SCRIPT, "--messages", "200", "--json"]);
    assertStrictEquals(auto.code, 0, auto.stderr);
    const doc = JSON.parse(auto.stdout) as BenchDocument;
    assertStrictEquals(doc.schema, BENCH_SCHEMA);
    assertStrictEquals(doc.part, "auto");
    assert(doc.loop?.ran === true && doc.loop.rows.length > 0, "the loop part ran");
    assert(doc.transport !== null && !doc.transport.ran, "the transport part did not run");
    assertMatch(auto.stderr, /the transport part did not run here: /);

    const named = await run(Deno.execPath(), [...FLAGS, SCRIPT, "--part", "transport"]);
    assertStrictEquals(named.code, 3, named.stderr);
    assertMatch(named.stderr, /not supported here: the transport part: /);
  },
);
