import { assertEquals, assertNotStrictEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { decodeUtf16, encodeUtf16, wideString } from "../../ffi/strings.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { ObjectAttributes, securityQos, UnicodeString } from "../../ffi/nt/object_attributes.ts";
import { addressOf } from "../../ffi/nt/handle.ts";

Deno.test("encodeUtf16() writes little-endian code units and keeps surrogate pairs", () => {
  const bytes = encodeUtf16("A\u00e9\u{1F600}");
  assertEquals([...bytes], [0x41, 0, 0xe9, 0, 0x3d, 0xd8, 0x00, 0xde]);
  assertStrictEquals(decodeUtf16(bytes), "A\u00e9\u{1F600}");
});

Deno.test("UTF-16 round trips for names a namespace can hold", () => {
  for (
    const s of [
      "",
      "\\RPC Control\\LabPort",
      "\\Sessions\\1\\Windows\\ApiPort",
      "Ünïcödé\u4E2D\u6587",
      "\u{10FFFF}\u{1D11E}",
      "a\u0000b",
    ]
  ) {
    assertStrictEquals(decodeUtf16(encodeUtf16(s)), s);
  }
});

Deno.test("decodeUtf16() rejects odd byte counts and replaces lone surrogates", () => {
  assertThrows(() => decodeUtf16(new Uint8Array(3)), RangeError);
  assertStrictEquals(decodeUtf16(new Uint8Array([0x00, 0xd8])), "\ufffd");
});

Deno.test("wideString() is NUL-terminated and refuses embedded NULs", () => {
  const w = wideString("ab");
  assertEquals([...w], [0x61, 0, 0x62, 0, 0, 0]);
  assertThrows(() => wideString("a\0b"), TypeError);
});

Deno.test("UnicodeString fills Length, MaximumLength and Buffer from LAYOUTS", () => {
  const us = new UnicodeString("\\RPC Control");
  const dv = new DataView(us.struct.buffer);
  const o = LAYOUTS.UNICODE_STRING.offsets;
  assertStrictEquals(us.struct.byteLength, LAYOUTS.UNICODE_STRING.size);
  assertStrictEquals(dv.getUint16(o.Length, true), 24);
  assertStrictEquals(dv.getUint16(o.MaximumLength, true), 26);
  assertNotStrictEquals(dv.getBigUint64(o.Buffer, true), 0n);
  assertThrows(() => new UnicodeString("x".repeat(0x8000)), RangeError);
});

Deno.test("ObjectAttributes sets Length 48, the name pointer, attributes and QoS", () => {
  const name = new UnicodeString("\\BaseNamedObjects");
  const qos = securityQos("Impersonation", true, false);
  const oa = new ObjectAttributes(name, { qos });
  const dv = new DataView(oa.struct.buffer);
  const o = LAYOUTS.OBJECT_ATTRIBUTES.offsets;
  assertStrictEquals(dv.getUint32(o.Length, true), 48);
  assertStrictEquals(dv.getBigUint64(o.ObjectName, true), addressOf(name.struct));
  assertStrictEquals(dv.getUint32(o.Attributes, true), 0x40);
  assertStrictEquals(dv.getBigUint64(o.RootDirectory, true), 0n);
  assertStrictEquals(dv.getBigUint64(o.SecurityQualityOfService, true), addressOf(qos));
  assertStrictEquals(oa.pinned, 2);
});

Deno.test("securityQos() writes Length 12 and the level", () => {
  const q = new DataView(securityQos("Identification", false, true).buffer);
  const o = LAYOUTS.SECURITY_QUALITY_OF_SERVICE.offsets;
  assertStrictEquals(q.getUint32(o.Length, true), 12);
  assertStrictEquals(q.getUint32(o.ImpersonationLevel, true), 1);
  assertStrictEquals(q.getUint8(o.ContextTrackingMode), 0);
  assertStrictEquals(q.getUint8(o.EffectiveOnly), 1);
});
