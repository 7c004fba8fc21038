#!/usr/bin/env -S deno run --allow-ffi --allow-read --allow-write --allow-run
/**
 * `deno task bench`: the toolkit's cost per message, and the kernel transports against C.
 *
 * Two parts (`--part`, default both):
 * - loop (everywhere): the server loops' receive, dispatch and reply against a zero-cost ntdll
 *   stand-in, beside the stand-in alone: nanoseconds and V8 heap bytes per message
 *   (experiments/bench/server_loop.ts);
 * - transport (Windows): LPC and ALPC round trips, inline and through views, by the toolkit and
 *   by a small C program, with the ratio Deno / C (experiments/bench/transport_bench.ts).
 *
 * By default (`--part auto`) the loop part runs, and the transport part where the system has LPC
 * or ALPC; where it has neither (Linux, Wine 8.0) the tables say why and the exit code is 0. Asked
 * for by name (`--part all` or `transport`), a transport part that cannot run is exit 3.
 *
 * @module
 */

import type { Cli, CliValues } from "../_cli.ts";
import { EXIT } from "../_cli.ts";
import { type Log, runScript } from "../_runner.ts";
import { DEFAULT_LOOP_PLAN, measureLoop } from "./server_loop.ts";
import { runTransportBench } from "./transport_bench.ts";
import {
  BENCH_SCHEMA,
  type BenchDocument,
  type BenchMachine,
  benchMarkdown,
  LOOP_METHOD,
} from "./bench_table.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "bench",
  usage: `bench: the toolkit's per-message cost, and LPC/ALPC round trips against C.

Usage: deno run --allow-ffi --allow-read --allow-write --allow-run experiments/bench/bench.ts [options]
(or: deno task bench [options])`,
  options: {
    part: {
      kind: "choice",
      choices: ["auto", "all", "loop", "transport"],
      default: "auto",
      help: "loop: the server loops' ns and V8 heap bytes per message against a zero-cost " +
        "ntdll stand-in (any system); transport: LPC and ALPC round trips, inline 0/256/max and " +
        "64 KiB / 1 MiB views, Deno beside C (Windows; the C program is built with MinGW gcc); " +
        "all: both; auto: the loop, and the transport where there is LPC or ALPC (on Linux " +
        "and Wine 8.0 the table says why it did not run; exit 0)",
    },
    messages: {
      kind: "integer",
      value: "n",
      min: 100,
      max: 10_000_000,
      default: DEFAULT_LOOP_PLAN.messages,
      help: "loop part: messages per round (5 rounds, after as many of warm-up)",
    },
    "round-trips": {
      kind: "integer",
      value: "n",
      min: 10,
      max: 10_000_000,
      default: 10_000,
      help: "transport part: round trips per row (after a tenth as many of warm-up)",
    },
    markdown: {
      kind: "text",
      value: "file",
      help: "also write the tables as Markdown to this file",
    },
    json: { kind: "flag", help: `print one JSON document (schema ${BENCH_SCHEMA})` },
  },
  notes: "The loop part's heap bytes are V8 heap bytes allocated per message (heapUsed over a " +
    "round that starts right after gc(), in a child Deno with --expose-gc and --trace-gc); a " +
    "steady-state server loop allocates none (tests/bench/server_loop_test.ts keeps it so).",
  schema: BENCH_SCHEMA,
  exitCodes: `Exit codes:
  0  success: every part asked for ran (a missing C column is said in the table, not an error)
  1  failure (the message names what failed)
  2  bad usage (one line: the option and what it accepts)
  3  the transport part was asked for by name (--part all or transport) and this system has
     neither LPC nor ALPC (Linux, Wine 8.0): the loop part was printed first, then this reason`,
} as const satisfies Cli;

type Values = CliValues<typeof CLI.options>;

/**
 * The CPU's model name, or null: Linux's /proc/cpuinfo (read by `cat`: Deno wants --allow-all to
 * read /proc itself), Windows' Win32_Processor.
 */
async function cpuModel(): Promise<string | null> {
  const [cmd, ...args] = Deno.build.os === "windows"
    ? ["powershell", "-NoProfile", "-Command", "(Get-CimInstance Win32_Processor).Name"]
    : ["cat", "/proc/cpuinfo"];
  try {
    const out = await new Deno.Command(cmd!, { args, stdout: "piped", stderr: "null" }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (Deno.build.os === "windows") return text.trim().split(/\r?\n/)[0]?.trim() || null;
    return /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? null;
  } catch {
    return null;
  }
}

async function machine(): Promise<BenchMachine> {
  return {
    os: Deno.build.os,
    arch: Deno.build.arch,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    cpus: navigator.hardwareConcurrency,
    cpu: await cpuModel(),
  };
}

/** Runs the parts asked for; writes the Markdown file if asked. */
export async function runBench(v: Values, log: Log): Promise<BenchDocument> {
  const part = v.part as BenchDocument["part"];
  const doc: BenchDocument = {
    schema: BENCH_SCHEMA,
    ran: true,
    at: new Date().toISOString(),
    machine: await machine(),
    part,
    loop: null,
    transport: null,
  };
  if (part !== "transport") {
    log("bench: the server loop against the zero-cost kernel");
    const rows = await measureLoop(undefined, {
      ...DEFAULT_LOOP_PLAN,
      warmup: v.messages,
      messages: v.messages,
    });
    doc.loop = { ran: true, method: LOOP_METHOD, rows };
  }
  if (part !== "loop") {
    doc.transport = await runTransportBench({ roundTrips: v["round-trips"], log });
  }
  if (v.markdown !== undefined) await Deno.writeTextFile(v.markdown, benchMarkdown(doc));
  return doc;
}

/**
 * Exit 3 when the transport part was asked for by name and could not run (its reason on stderr);
 * with `--part auto` the reason is one stderr line and the exit code stands.
 */
function exitCode(doc: BenchDocument): number {
  if (doc.transport && !doc.transport.ran) {
    if (doc.part === "auto") {
      console.error(`bench: the transport part did not run here: ${doc.transport.reason}`);
      return EXIT.OK;
    }
    console.error(`bench: not supported here: the transport part: ${doc.transport.reason}`);
    return EXIT.UNSUPPORTED;
  }
  return EXIT.OK;
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    run: runBench,
    print: (doc) => console.log(benchMarkdown(doc)),
    exitCode,
  });
}
