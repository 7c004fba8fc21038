/**
 * The layers, checked from the imports: a module may import only from its own layer or below.
 *
 * 1. `ffi/*.ts`: symbol tables, the loader, layouts, statuses, strings, codecs, private plumbing;
 * 2. `ffi/nt/`: the NT concepts every other concept builds on (handles, objects, processes...);
 * 3. `ffi/lpc/`, `ffi/alpc/`, `ffi/debug/`: LPC, ALPC and debugging (no one imports another:
 *    what two of them share lives below them);
 * 4. `mod.ts`, `raw.ts`: the entry points;
 * 5. `experiments/`: the lab, which imports the library only through the entry points;
 * 6. `tests/`.
 *
 * Every specifier counts: static and dynamic imports, re-exports, and `new URL("…", import.meta.url)`
 * (Worker entries, handler modules).
 */

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { REPO_ROOT } from "./_helpers.ts";

/** Every `.ts` file of the repository below `dir` (relative to the root). */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(`${REPO_ROOT}${rel}`)) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".ts")) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The local files a module refers to (repository-relative), with the line of each. */
export function localImports(file: string, text: string): { target: string; line: number }[] {
  const found: { target: string; line: number }[] = [];
  const patterns = [
    /(?:^|\n)\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/g,
    /(?:^|\n)\s*import\s*["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /\bnew URL\(\s*["']([^"']+\.ts)["']\s*,\s*import\.meta\.url\s*\)/g,
  ];
  const base = new URL(file, "file:///repo/");
  // Comments (doc examples) are blanked out character for character, so every position in `code`
  // is the same position in `text`: line numbers stay right, and nothing after a comment is lost.
  const blank = (c: string) => c.replace(/[^\n]/g, " ");
  const code = text.replace(/\/\*[\s\S]*?\*\//g, blank).replace(/^\s*\/\/.*$/gm, blank);
  for (const re of patterns) {
    for (const m of code.matchAll(re)) {
      const spec = m[1]!;
      // A package (jsr:, npm:, a bare name from deno.json's imports...), not a file of ours.
      if (!/^(\.|\/|file:)/.test(spec)) continue;
      // A line inside a doc example that is not in a block comment (a string in a test).
      const at = m.index + m[0].search(/\S/);
      const lineText = code.slice(code.lastIndexOf("\n", at - 1) + 1, at + 1);
      if (/^\s*(\*|\/\/)/.test(lineText)) continue;
      const line = code.slice(0, at).split("\n").length;
      // Absolute and file: specifiers point anywhere: reported as such, never skipped.
      if (!spec.startsWith(".")) found.push({ target: `(not relative) ${spec}`, line });
      else found.push({ target: new URL(spec, base).pathname.slice("/repo/".length), line });
    }
  }
  return found;
}

/** The layer of a repository file (see the module comment). */
export function layerOf(path: string): number {
  if (!path.endsWith(".ts")) return 0; // data: deno.json, fixtures
  if (path === "mod.ts" || path === "raw.ts") return 4;
  if (path.startsWith("experiments/")) return 5;
  if (path.startsWith("tests/")) return 6;
  if (/^ffi\/[^/]+\.ts$/.test(path)) return 1;
  if (path.startsWith("ffi/nt/")) return 2;
  if (/^ffi\/(lpc|alpc|debug)\//.test(path)) return 3;
  throw new Error(`${path}: in no layer (add its folder to layerOf)`);
}

const LIBRARY = ["mod.ts", ...(exists("raw.ts") ? ["raw.ts"] : []), ...sources("ffi")];

function exists(rel: string): boolean {
  try {
    Deno.statSync(`${REPO_ROOT}${rel}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test("layers: no module imports from a layer above its own", () => {
  const problems: string[] = [];
  let checked = 0;
  // This file is left out: its parser test holds import statements as strings.
  const files = [...LIBRARY, ...sources("experiments"), ...sources("tests")];
  for (const file of files.filter((f) => f !== "tests/layering_test.ts")) {
    const text = Deno.readTextFileSync(`${REPO_ROOT}${file}`);
    for (const { target, line } of localImports(file, text)) {
      checked++;
      if (target.startsWith("(not relative)")) problems.push(`${file}:${line}: ${target}`);
      else if (!exists(target)) problems.push(`${file}:${line}: ${target} does not exist`);
      else if (layerOf(target) > layerOf(file)) {
        problems.push(
          `${file}:${line} (layer ${layerOf(file)}) imports ${target} (layer ${layerOf(target)})`,
        );
      }
    }
  }
  assert(checked > 200, `imports found: ${checked}`);
  assertEquals(problems, []);
});

Deno.test("layers: LPC, ALPC and debugging do not import each other; the library never imports experiments/ or tests/", () => {
  const problems: string[] = [];
  for (const file of LIBRARY) {
    const text = Deno.readTextFileSync(`${REPO_ROOT}${file}`);
    for (const { target, line } of localImports(file, text)) {
      const concept = (p: string) => p.match(/^ffi\/(lpc|alpc|debug)\//)?.[1];
      if (/^(experiments|tests)\//.test(target)) problems.push(`${file}:${line} imports ${target}`);
      else if (concept(file) && concept(target) && concept(file) !== concept(target)) {
        problems.push(`${file}:${line} (${concept(file)}) imports ${target}`);
      }
    }
  }
  assertEquals(problems, []);
});

Deno.test("experiments import the library only through mod.ts and raw.ts", () => {
  const problems: string[] = [];
  let outside = 0;
  for (const file of sources("experiments")) {
    const text = Deno.readTextFileSync(`${REPO_ROOT}${file}`);
    for (const { target, line } of localImports(file, text)) {
      if (target.startsWith("experiments/")) continue; // experiments may import each other
      // Data is not the library: _cli.ts reads the Wine task's flags from deno.json.
      if (layerOf(target) === 0) continue;
      outside++;
      if (target !== "mod.ts" && target !== "raw.ts") {
        problems.push(`${file}:${line} imports ${target}`);
      }
    }
  }
  assert(outside > 20, `imports of the library found: ${outside}`);
  assertEquals(problems, []);
});

Deno.test("layers: the import parser sees every form (static, re-export, dynamic, new URL)", () => {
  const text = [
    'import { a } from "../ffi/status.ts";',
    "import type {",
    "  B,",
    '} from "./nt/handle.ts";',
    'export { c } from "../mod.ts";',
    'const m = await import("../tests/_helpers.ts");',
    'new Worker(new URL("./_entry.ts", import.meta.url));',
    'import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";',
    '/** new URL("./in_a_doc_example.ts", import.meta.url) */',
    '// import { x } from "./commented_out.ts";',
    ' *   handlerModule: new URL("./doc_example.ts", import.meta.url),',
    '// const m2 = await import("../commented_out.ts");',
    "",
    "/**",
    " * A block comment of several lines, then imports after it (the review's hole: positions after",
    " * a comment pointed at the wrong line, and the import was skipped).",
    " */",
    'export type { Debugger as _Z } from "./debug/debugger.ts";',
    'import { y } from "file:///elsewhere/y.ts";',
  ].join("\n");
  assertEquals(
    localImports("ffi/x.ts", text).map((i) => `${i.line} ${i.target}`).sort(),
    [
      "1 ffi/status.ts",
      "2 ffi/nt/handle.ts",
      "5 mod.ts",
      "6 tests/_helpers.ts",
      "7 ffi/_entry.ts",
      "18 ffi/debug/debugger.ts",
      "19 (not relative) file:///elsewhere/y.ts",
    ].sort(),
  );
  assertStrictEquals(layerOf("ffi/status.ts"), 1);
  assertStrictEquals(layerOf("ffi/nt/handle.ts"), 2);
  assertStrictEquals(layerOf("ffi/lpc/port.ts"), 3);
  assertStrictEquals(layerOf("experiments/exp1/exp1.ts"), 5);
});
