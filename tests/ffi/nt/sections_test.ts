/** Sections (ffi/nt/sections.ts) against the fake kernel, and the size rule before any call. */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import {
  PAGE_READWRITE,
  roundToPages,
  SEC_COMMIT,
  Section,
  SECTION_MAP_ACCESS,
  SECTION_MAX_SIZE,
} from "../../../ffi/nt/sections.ts";
import { NtError, NTSTATUS } from "../../../ffi/status.ts";
import { FakeKernel } from "../../fake_kernel.ts";

const ME = { pid: 100, tid: 101 };

Deno.test("Section.create: a page-file section with map access, closed at the end of its scope", () => {
  const k = new FakeKernel();
  k.as(ME, () => {
    {
      using s = Section.create(10_000, { nt: k.symbols });
      assertStrictEquals(s.handle.kind, "section");
      assertStrictEquals(s.size, 10_000);
      assertStrictEquals(k.openHandles(ME.pid), 1);
    }
    assertStrictEquals(k.openHandles(ME.pid), 0, "the handle is closed");
  });
  assertEquals(k.calls, ["NtCreateSection 0x0", "NtClose 0x0"]);
  assertStrictEquals(SECTION_MAP_ACCESS, 7, "query + map write + map read, nothing more");
  assertStrictEquals(PAGE_READWRITE, 4);
  assertStrictEquals(SEC_COMMIT, 0x8000000);
});

Deno.test("Section.create refuses 0, fractions and more than SECTION_MAX_SIZE before any call", () => {
  const k = new FakeKernel();
  for (const size of [0, -1, 1.5, SECTION_MAX_SIZE + 1, Number.NaN]) {
    assertThrows(() => Section.create(size, { nt: k.symbols }), RangeError);
  }
  assertEquals(k.calls, []);
});

Deno.test("the fake's NtCreateSection refuses MaximumSize 0 with STATUS_INVALID_PARAMETER_4 (MiCreatePagingFileMap.c)", () => {
  const k = new FakeKernel();
  const cell = new BigUint64Array(1);
  const status = k.as(
    ME,
    () => k.symbols.NtCreateSection(cell, 7, null, new BigInt64Array([0n]), 4, SEC_COMMIT, null),
  );
  assertStrictEquals(status >>> 0, NTSTATUS.STATUS_INVALID_PARAMETER_4);
  const e = new NtError("NtCreateSection", status);
  assert(e.is("STATUS_INVALID_PARAMETER_4"));
});

Deno.test("roundToPages rounds up to 4096", () => {
  assertEquals([1, 4096, 4097, 1048576].map(roundToPages), [4096, 4096, 8192, 1048576]);
});
