/**
 * The benchmark in the lab report: with `--bench <file>` (a `deno task bench --json` document,
 * schema deno-lpc/bench@1) the report folder gets `bench.json` and `bench.md`, and `report.md`
 * ends with the tables. A missing or foreign file is said in the report, never fatal.
 *
 * @module
 */

import { BENCH_SCHEMA, type BenchDocument, benchMarkdown } from "../bench/bench_table.ts";

/** `--bench` of the lab. */
export const BENCH_OPTION = {
  kind: "text",
  value: "file",
  help: `a benchmark document (deno task bench --json, schema ${BENCH_SCHEMA}) to add to the ` +
    "report: its tables end report.md and it is copied as bench.json / bench.md",
} as const;

/** The benchmark's part of a report: the files to write and the text that ends report.md. */
export interface LabBench {
  /** Files for the report folder (none when the document could not be read). */
  files: [string, string][];
  /** Appended to report.md. */
  markdown: string;
}

/** Reads the document at `path` for the report folder `dir`. */
export async function labBench(path: string, dir: string): Promise<LabBench> {
  let doc: BenchDocument;
  try {
    // A PowerShell `Out-File -Encoding utf8` document starts with a byte-order mark.
    doc = JSON.parse((await Deno.readTextFile(path)).replace(/^\uFEFF/, "")) as BenchDocument;
    if (doc.schema !== BENCH_SCHEMA) throw new Error(`schema ${doc.schema}, not ${BENCH_SCHEMA}`);
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    return { files: [], markdown: `\n## Benchmark\n\nNot included: ${path}: ${why}\n` };
  }
  const md = benchMarkdown(doc);
  return {
    files: [[`${dir}/bench.json`, JSON.stringify(doc, null, 2)], [`${dir}/bench.md`, md]],
    markdown: `\n${md}`,
  };
}
