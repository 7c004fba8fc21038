/** The pure parts of ffi/nt/security.ts (runs everywhere): generic masks and OBJECT_TYPE_INFORMATION. */

import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import {
  decodeObjectTypeInformation,
  encodeGenericMapping,
  GenericAccess,
  mapGenericMask,
} from "../../../ffi/nt/security.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import { encodeUtf16 } from "../../../ffi/strings.ts";

const PORT = { read: 0x20001, write: 0x10001, execute: 0, all: 0x1f0001 };

Deno.test("mapGenericMask(): each generic bit becomes its mapping, other bits stay, no generic bit is left", () => {
  assertStrictEquals(mapGenericMask(0x1, PORT), 0x1);
  assertStrictEquals(mapGenericMask(GenericAccess.GENERIC_READ, PORT), 0x20001);
  assertStrictEquals(mapGenericMask(GenericAccess.GENERIC_WRITE | 0x100000, PORT), 0x110001);
  assertStrictEquals(mapGenericMask(GenericAccess.GENERIC_EXECUTE, PORT), 0);
  assertStrictEquals(mapGenericMask(GenericAccess.GENERIC_ALL, PORT), 0x1f0001);
  assertStrictEquals(mapGenericMask(0xf0000000, PORT), 0x1f0001);
});

Deno.test("encodeGenericMapping() writes the four masks at LAYOUTS.GENERIC_MAPPING's offsets", () => {
  const b = encodeGenericMapping({ read: 0x80000001, write: 2, execute: 3, all: 0xffffffff });
  const dv = new DataView(b.buffer);
  const o = LAYOUTS.GENERIC_MAPPING.offsets;
  assertStrictEquals(b.byteLength, 16);
  assertEquals(
    [o.GenericRead, o.GenericWrite, o.GenericExecute, o.GenericAll].map((at) =>
      dv.getUint32(at, true)
    ),
    [0x80000001, 2, 3, 0xffffffff],
  );
});

Deno.test("decodeObjectTypeInformation() reads the name, the mapping and the valid mask as ObQueryTypeInfo.c writes them", () => {
  const T = LAYOUTS.OBJECT_TYPE_INFORMATION;
  const name = encodeUtf16("ALPC Port");
  const buf = new Uint8Array(T.size + name.byteLength + 2);
  const base = 0x10000n;
  const dv = new DataView(buf.buffer);
  const U = LAYOUTS.UNICODE_STRING.offsets;
  dv.setUint16(T.offsets.TypeName + U.Length, name.byteLength, true);
  dv.setUint16(T.offsets.TypeName + U.MaximumLength, name.byteLength + 2, true);
  dv.setBigUint64(T.offsets.TypeName + U.Buffer, base + BigInt(T.size), true);
  buf.set(name, T.size);
  buf.set(encodeGenericMapping(PORT), T.offsets.GenericMapping);
  dv.setUint32(T.offsets.ValidAccessMask, 0x1f0001, true);
  assertEquals(decodeObjectTypeInformation(buf, base), {
    typeName: "ALPC Port",
    mapping: PORT,
    validAccessMask: 0x1f0001,
  });
  assertThrows(() => decodeObjectTypeInformation(buf.subarray(0, 50), base), RangeError);
  // A name pointer outside the buffer is refused, not followed.
  assertThrows(() => decodeObjectTypeInformation(buf, base + 0x100000n), RangeError);
});
