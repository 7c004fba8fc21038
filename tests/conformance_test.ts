/**
 * The conformance suite inside `deno task test`: every case against the fake kernel, and against
 * the real one where this is Windows and LPC works (under Wine, LPC is stubbed: those are
 * ignored, with the reason in their names). Plus the suite's own shape: unique names, sources
 * named like the kernel's function files.
 */

import { assert, assertMatch } from "@std/assert";
import { lpcUnavailable } from "../ffi/nt/capabilities.ts";
import { CASES } from "./conformance/cases.ts";
import { createFakeKernel } from "./conformance/fake_driver.ts";
import { explainFailure, runCase, whySkipped } from "./conformance/run.ts";
import { createWindowsKernel } from "./conformance/windows_driver.ts";
import { ON_WINDOWS_BUILD } from "./_helpers.ts";

const WHY_NOT_WINDOWS = ON_WINDOWS_BUILD
  ? lpcUnavailable()
  : "needs Windows: the real ntdll (deno task test on Windows)";

for (const c of CASES) {
  Deno.test(`conformance (fake): ${c.name}`, async () => {
    const r = await runCase(c, "fake", createFakeKernel);
    assert(r.passed, explainFailure(r));
  });
  const whyNot = WHY_NOT_WINDOWS ?? whySkipped(c, "windows");
  Deno.test({
    name: whyNot === null
      ? `conformance (windows): ${c.name}`
      : `conformance (windows): ${c.name} (ignored: ${whyNot})`,
    ignore: whyNot !== null,
    async fn() {
      const r = await runCase(c, "windows", () => createWindowsKernel());
      assert(r.passed, explainFailure(r));
    },
  });
}

/** A kernel function file of the pseudocode repository (the citation script checks it exists). */
const SOURCE = /^[A-Z][A-Za-z0-9_]+\.c$/;

Deno.test("conformance: case names are unique and every case cites a kernel function file", () => {
  const seen = new Set<string>();
  for (const c of CASES) {
    assert(c.name.trim().length > 0, "a case has a name");
    assert(!seen.has(c.name), `duplicate case name: ${c.name}`);
    seen.add(c.name);
    assert(c.sources.length >= 1, `${c.name}: cites no source`);
    for (const s of c.sources) assertMatch(s, SOURCE, `${c.name}: source ${s}`);
  }
});
