/**
 * LAYOUTS against an independent oracle: the offsets and sizes x86_64-w64-mingw32-gcc computes
 * for tests/native/layouts.c (MS x64 ABI, natural alignment).
 */

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { type Layout, LAYOUTS } from "../../ffi/layouts.ts";
import { conditionalTest, hasCommand, ON_LINUX, REPO_ROOT, run } from "../_helpers.ts";

const CC = "x86_64-w64-mingw32-gcc";
const HAVE_CC = ON_LINUX && await hasCommand(CC);
const WHY_NOT = ON_LINUX
  ? `${CC} not installed (apt-get install gcc-mingw-w64-x86-64)`
  : "the mingw cross compiler runs on the Linux build only";

/** Parses `layout__<STRUCT>__<FIELD>:` labels and their `.quad N` / `.space 8` (= 0) values. */
export function parseOracleAssembly(asm: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  const lines = asm.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const m = /^layout__(\w+?)__(\w+):\s*$/.exec(lines[i]!);
    if (!m) continue;
    const next = (lines[i + 1] ?? "").trim();
    let value: number;
    const quad = /^\.quad\s+(\d+)$/.exec(next);
    if (quad) value = Number(quad[1]);
    else if (/^\.space\s+8$/.test(next)) value = 0;
    else throw new Error(`Unexpected assembly after ${lines[i]}: ${next}`);
    const [, struct, field] = m as unknown as [string, string, string];
    if (!out.has(struct)) out.set(struct, new Map());
    out.get(struct)!.set(field, value);
  }
  return out;
}

/** Every difference between `layouts` and the oracle, as readable lines (empty = agree). */
export function compareLayouts(
  layouts: Record<string, Layout>,
  oracle: Map<string, Map<string, number>>,
): string[] {
  const problems: string[] = [];
  for (const [struct, layout] of Object.entries(layouts)) {
    const fields = oracle.get(struct);
    if (!fields) {
      problems.push(`${struct}: not in the C oracle`);
      continue;
    }
    if (fields.get("SIZE") !== layout.size) {
      problems.push(`${struct}: size ${layout.size}, C says ${fields.get("SIZE")}`);
    }
    for (const [field, offset] of Object.entries(layout.offsets)) {
      if (!fields.has(field)) problems.push(`${struct}.${field}: not in the C oracle`);
      else if (fields.get(field) !== offset) {
        problems.push(`${struct}.${field}: offset ${offset}, C says ${fields.get(field)}`);
      }
    }
    for (const field of fields.keys()) {
      if (field !== "SIZE" && !(field in layout.offsets)) {
        problems.push(`${struct}.${field}: in the C oracle but not in LAYOUTS`);
      }
    }
  }
  for (const struct of oracle.keys()) {
    if (!(struct in layouts)) problems.push(`${struct}: in the C oracle but not in LAYOUTS`);
  }
  return problems;
}

async function oracle(): Promise<Map<string, Map<string, number>>> {
  const r = await run(CC, ["-S", "-o", "-", `${REPO_ROOT}tests/native/layouts.c`]);
  assertStrictEquals(r.code, 0, `${CC} failed:\n${r.stderr}`);
  return parseOracleAssembly(r.stdout);
}

conditionalTest(
  [
    "LAYOUTS matches mingw-w64 gcc for every struct, size and offset",
    "LAYOUTS matches mingw-w64 gcc",
  ],
  HAVE_CC ? null : WHY_NOT,
  async () => {
    const c = await oracle();
    assert(c.size >= Object.keys(LAYOUTS).length, "the oracle covers every struct");
    assertEquals(compareLayouts(LAYOUTS, c), []);
    // The classic mistake stays caught: PORT_MESSAGE is 40 bytes on x64, not 36 or 24.
    assertStrictEquals(c.get("PORT_MESSAGE")!.get("SIZE"), 40);
    assertStrictEquals(c.get("PORT_MESSAGE")!.get("ClientViewSize"), 32);
  },
);

conditionalTest(
  [
    "altering any single offset or size in LAYOUTS makes the comparison fail",
    "altering any offset makes the layout test fail",
  ],
  HAVE_CC ? null : WHY_NOT,
  async () => {
    const c = await oracle();
    let mutants = 0;
    for (const [struct, layout] of Object.entries(LAYOUTS as Record<string, Layout>)) {
      const keys = ["SIZE", ...Object.keys(layout.offsets)];
      for (const key of keys) {
        const copy: Record<string, Layout> = structuredClone(LAYOUTS) as Record<string, Layout>;
        const target = copy[struct]!;
        if (key === "SIZE") (target as { size: number }).size += 8;
        else (target.offsets as Record<string, number>)[key]! += 4;
        const problems = compareLayouts(copy, c);
        assertStrictEquals(
          problems.length,
          1,
          `mutating ${struct}.${key} gave ${problems.join("; ")}`,
        );
        mutants++;
      }
    }
    assert(mutants > 150, `${mutants} mutants`);
  },
);

Deno.test("parseOracleAssembly reads .quad and .space 8 (zero) values", () => {
  const asm = [
    "layout__A__SIZE:",
    "\t.quad\t16",
    "layout__A__x:",
    "\t.space 8",
    "layout__A__y_z:",
    "\t.quad\t8",
  ].join("\n");
  const m = parseOracleAssembly(asm);
  assertEquals([...m.get("A")!], [["SIZE", 16], ["x", 0], ["y_z", 8]]);
});

Deno.test("every codec offset comes from LAYOUTS: no struct offset literal in ffi/", async () => {
  // A coarse guard: DataView accessors in ffi/ must index through a LAYOUTS-derived name.
  for await (const entry of Deno.readDir(`${REPO_ROOT}ffi`)) {
    if (!entry.name.endsWith(".ts") || entry.name === "layouts.ts") continue;
    const src = await Deno.readTextFile(`${REPO_ROOT}ffi/${entry.name}`);
    const literal = /\.(get|set)(Big)?(U?int|Int)(8|16|32|64)\(\s*\d+\s*[,)]/g;
    assertEquals(
      src.match(literal) ?? [],
      [],
      `${entry.name} reads a struct at a literal offset`,
    );
  }
});

Deno.test("parseOracleAssembly() reads CRLF assembly as it reads LF", () => {
  const lf = ["layout__A__SIZE:", "\t.quad\t16", "layout__A__x:", "\t.space\t8"].join("\n");
  const crlf = lf.replaceAll("\n", "\r\n");
  assertEquals([...parseOracleAssembly(crlf).get("A")!], [["SIZE", 16], ["x", 0]]);
  assertEquals(parseOracleAssembly(crlf), parseOracleAssembly(lf));
});
