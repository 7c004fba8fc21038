/**
 * The benchmark's document (`deno-lpc/bench@1`) and its tables, as Markdown: the server loop's
 * per-message cost (Linux and Windows) and the transport rows (Windows). Used by bench.ts and by
 * the lab report (experiments/lab/lab_bench.ts).
 *
 * @module
 */

import type { LoopResult } from "./server_loop.ts";
import type { SideResult, TransportPart, TransportRow } from "./transport_bench.ts";

/** The schema of the benchmark's JSON document. */
export const BENCH_SCHEMA = "deno-lpc/bench@1";

/** The machine a run was on. */
export interface BenchMachine {
  /** `Deno.build.os` / `arch`. */
  os: string;
  arch: string;
  /** `Deno.version.deno` and V8. */
  deno: string;
  v8: string;
  /** Logical processors (`navigator.hardwareConcurrency`). */
  cpus: number;
  /** The CPU's model name where the system tells (Linux: /proc/cpuinfo), else null. */
  cpu: string | null;
}

/** The server loop part. */
export type LoopPart =
  | { ran: false; reason: string }
  | { ran: true; method: string; rows: LoopResult[] };

/** The whole document. */
export interface BenchDocument {
  schema: typeof BENCH_SCHEMA;
  ran: true;
  /** When it ran (ISO 8601). */
  at: string;
  machine: BenchMachine;
  /** The parts asked for (`--part`). */
  part: "loop" | "transport" | "all" | "auto";
  loop: LoopPart | null;
  transport: TransportPart | null;
}

/** How the loop part measures (the document's `loop.method`). */
export const LOOP_METHOD =
  "ns: best of 5 rounds, performance.now(); heap bytes: V8 heapUsed after - before a round, " +
  "each round right after gc(), in a child Deno with --expose-gc, a 64 MB young generation, " +
  "--single-threaded and --trace-gc (a round with a collection inside is counted in gcInRounds and its bytes are a " +
  "lower bound); against the zero-cost ntdll stand-in (experiments/bench/_standin.ts)";

const num = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** The loop part as a Markdown table (ns and heap bytes per message, and over the baseline). */
export function loopTable(rows: readonly LoopResult[]): string {
  const base = new Map<string, LoopResult>();
  for (const r of rows) if (r.path === "baseline") base.set(`${r.transport} ${r.payload}`, r);
  const lines = [
    "| transport | payload B | path | ns/message | over the stand-in, ns | heap B/message | collections in rounds |",
    "|---|---:|---|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const b = base.get(`${r.transport} ${r.payload}`);
    const over = r.path === "baseline" || !b ? "" : num(r.nsPerMessage - b.nsPerMessage);
    lines.push(
      `| ${r.transport} | ${r.payload} | ${r.path} | ${num(r.nsPerMessage)} | ${over} | ${
        num(r.heapBytesPerMessage, 3)
      } | ${r.gcInRounds} |`,
    );
  }
  return lines.join("\n");
}

const cell = (s: SideResult | { error: string } | null, f: (s: SideResult) => string) =>
  s === null ? "–" : "error" in s ? `not run: ${s.error.replaceAll("|", "/")}` : f(s);

/** The transport part's rows as a Markdown table. */
export function transportTable(rows: readonly TransportRow[]): string {
  const lines = [
    "| transport | kind | bytes | Deno ns/round trip | Deno MB/s | C ns/round trip | C MB/s | Deno / C | goal (≤ 1.2x, inline) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const goal = r.goalMet === null ? "" : r.goalMet ? "met" : "missed";
    lines.push(
      `| ${r.transport} | ${r.kind} | ${r.bytes} | ${
        cell(r.deno, (s) => num(s.nsPerRoundTrip))
      } | ${cell(r.deno, (s) => num(s.mbPerSecond))} | ${
        cell(r.c, (s) => num(s.nsPerRoundTrip))
      } | ${cell(r.c, (s) => num(s.mbPerSecond))} | ${r.ratio ?? ""} | ${goal} |`,
    );
  }
  return lines.join("\n");
}

/** The whole document as Markdown: the machine, each part's table or why it did not run. */
export function benchMarkdown(doc: BenchDocument): string {
  const m = doc.machine;
  const out = [
    `## Benchmark (${doc.at})`,
    "",
    `Machine: ${
      m.cpu ?? "CPU model not reported"
    }, ${m.cpus} logical processors, ${m.os}/${m.arch}; Deno ${m.deno} (V8 ${m.v8}).`,
  ];
  if (doc.loop) {
    out.push("", "### The server loop, per message (zero-cost kernel)", "");
    if (doc.loop.ran) out.push(loopTable(doc.loop.rows), "", `Method: ${doc.loop.method}.`);
    else out.push(`Not run: ${doc.loop.reason}`);
  }
  if (doc.transport) {
    out.push("", "### The transports, round trips (Deno and C)", "");
    if (doc.transport.ran) {
      const t = doc.transport;
      out.push(
        transportTable(t.rows),
        "",
        `Server: ${t.server}. Client: ${t.client}. C: ${
          t.c.ran ? t.c.compiler : `no C column: ${t.c.reason}`
        }. Goal: ${t.goal}.`,
      );
    } else out.push(`Not run: ${doc.transport.reason}`);
  }
  return out.join("\n") + "\n";
}
