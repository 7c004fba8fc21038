/**
 * The fake kernel's shared memory (tests/fake_shared_memory.ts): two mappings of one object are
 * two addresses over the same bytes, a mapping at an offset sees that part, and sizes the fake
 * does not model are refused.
 */

import { assert, assertStrictEquals, assertThrows } from "@std/assert";
import { createSharedMemory } from "./fake_shared_memory.ts";
import { conditionalTest } from "./_helpers.ts";

const WHY = ["linux", "windows"].includes(Deno.build.os)
  ? null
  : `not modelled on ${Deno.build.os}`;

conditionalTest(
  "fake shared memory: two mappings, two addresses, one set of bytes; an offset maps that part",
  WHY,
  () => {
    const m = createSharedMemory(0x20000);
    const a = m.map(0, 0x20000);
    const b = m.map(0, 0x1000);
    const c = m.map(0x10000, 0x1000);
    assert(a !== b && b !== c && a !== c, "each mapping has its own address");
    const at = (base: bigint, n: number) =>
      new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(base)!, n));
    assertStrictEquals(at(b, 1)[0], 0, "zero-filled");
    at(a, 0x20000)[5] = 0x42;
    at(a, 0x20000)[0x10007] = 0x43;
    assertStrictEquals(at(b, 8)[5], 0x42);
    assertStrictEquals(at(c, 8)[7], 0x43);
    m.close();
    at(c, 8)[0] = 1; // a mapping outlives the closed object
    assertStrictEquals(at(a, 0x20000)[0x10000], 1);
    for (const base of [a, b, c]) m.unmap(base, base === a ? 0x20000 : 0x1000);
    assertThrows(() => createSharedMemory(0x1000), RangeError, "not modelled");
    assertThrows(() => createSharedMemory(0x800_0000), RangeError);
  },
);
