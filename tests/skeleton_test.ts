/**
 * The experiment skeleton stays small (issue 13, item 4): no file in experiments/ is over
 * {@link MAX_FILE_LINES} lines, and a runnable script's (first line `#!`) `if (import.meta.main)`
 * block is at most {@link MAX_MAIN_LINES} lines: the shared runner does the rest. A failure names
 * the file.
 */

import { assert, assertEquals } from "@std/assert";
import { REPO_ROOT } from "./_helpers.ts";

/** The longest a file in experiments/ may be. */
const MAX_FILE_LINES = 300;
/** The longest a runnable script's `if (import.meta.main)` block may be, both braces included. */
const MAX_MAIN_LINES = 15;

/** A text's line count (a last newline ends the last line, it does not start one). */
function lineCount(text: string): number {
  if (text === "") return 0;
  return text.replace(/\r?\n$/, "").split(/\r?\n/).length;
}

/**
 * The length in lines of each top-level `if (import.meta.main)` block of `text`: one line when it
 * is a single statement on that line, else up to the first line that is `}` at the start.
 * `Infinity` when the block never closes.
 */
function mainBlocks(text: string): number[] {
  const lines = text.split(/\r?\n/);
  const out: number[] = [];
  for (const [i, l] of lines.entries()) {
    if (!/^if \(import\.meta\.main\)/.test(l)) continue;
    if (!/\{\s*$/.test(l)) {
      out.push(1);
      continue;
    }
    const end = lines.findIndex((m, j) => j > i && /^\}/.test(m));
    out.push(end === -1 ? Infinity : end - i + 1);
  }
  return out;
}

/** Every file under `dir` (relative to the repository), sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${REPO_ROOT}${dir}`)) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...filesUnder(rel));
    else if (e.isFile) out.push(rel);
  }
  return out.sort();
}

const FILES = filesUnder("experiments");

Deno.test("lineCount() and mainBlocks() measure what the guards below limit", () => {
  assertEquals([lineCount(""), lineCount("a"), lineCount("a\n"), lineCount("a\r\nb\n")], [
    0,
    1,
    1,
    2,
  ]);
  const script = [
    "#!/usr/bin/env -S deno run",
    "export const x = 1;",
    "if (import.meta.main) {",
    "  if (x) {",
    "    console.log(x);",
    "  }",
    "}",
    "if (import.meta.main) await main();",
    "",
  ].join("\n");
  assertEquals(mainBlocks(script), [5, 1]);
  assertEquals(mainBlocks("if (import.meta.main) {\n  run();\n"), [Infinity]);
  assertEquals(mainBlocks("  if (import.meta.main) {}\n"), [], "only top-level blocks");
});

Deno.test(`no file in experiments/ is over ${MAX_FILE_LINES} lines`, () => {
  assert(FILES.some((f) => f.endsWith(".ts")), "experiments/ has files");
  const over = FILES.flatMap((f) => {
    const n = lineCount(Deno.readTextFileSync(`${REPO_ROOT}${f}`));
    return n > MAX_FILE_LINES ? [`${f}: ${n} lines`] : [];
  });
  assertEquals(over, [], `files over ${MAX_FILE_LINES} lines`);
});

Deno.test(`a runnable script's if (import.meta.main) block is at most ${MAX_MAIN_LINES} lines`, () => {
  const runnable = FILES.filter((f) =>
    f.endsWith(".ts") && Deno.readTextFileSync(`${REPO_ROOT}${f}`).startsWith("#!")
  );
  assert(runnable.length >= 5, `runnable scripts found: ${runnable}`);
  const over = runnable.flatMap((f) => {
    const blocks = mainBlocks(Deno.readTextFileSync(`${REPO_ROOT}${f}`));
    return blocks.filter((n) => n > MAX_MAIN_LINES).map((n) => `${f}: ${n} lines`);
  });
  assertEquals(over, [], `import.meta.main blocks over ${MAX_MAIN_LINES} lines`);
  const without = runnable.filter((f) =>
    mainBlocks(Deno.readTextFileSync(`${REPO_ROOT}${f}`)).length === 0
  );
  assertEquals(without, [], "runnable scripts without an if (import.meta.main) block");
});
