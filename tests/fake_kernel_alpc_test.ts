/**
 * The ALPC fake's ntdll-side helpers, which no conformance case can reach (the Windows driver
 * only calls functions returning an NTSTATUS): `AlpcGetMessageAttribute` finds an attribute by the
 * sizes of the allocated ones above it (AlpcGetMessageAttribute.c, AlpcGetHeaderSize.c).
 */

import { assertStrictEquals } from "@std/assert";
import { AlpcAttributeFlags as A } from "../ffi/alpc/constants.ts";
import { LAYOUTS } from "../ffi/layouts.ts";
import { attributeOffset, attributesSize, messageAttributes } from "./conformance/_alpc.ts";
import { FakeKernel } from "./fake_kernel.ts";

const address = (b: Uint8Array) => Deno.UnsafePointer.value(Deno.UnsafePointer.of(b));

Deno.test("fake ALPC: AlpcGetMessageAttribute points past the allocated attributes above the flag, NULL when not allocated or not one bit", () => {
  const k = new FakeKernel();
  const allocated = (A.SECURITY | A.CONTEXT | A.TOKEN) >>> 0;
  const buf = messageAttributes(allocated);
  const get = (flag: number) => {
    const p = k.symbols.AlpcGetMessageAttribute(buf, flag >>> 0);
    return p === null ? null : Number(Deno.UnsafePointer.value(p) - address(buf));
  };
  const header = LAYOUTS.ALPC_MESSAGE_ATTRIBUTES.size;
  const security = LAYOUTS.ALPC_SECURITY_ATTR.size;
  const context = LAYOUTS.ALPC_CONTEXT_ATTR.size;
  assertStrictEquals(get(A.SECURITY), header);
  assertStrictEquals(get(A.CONTEXT), header + security);
  assertStrictEquals(get(A.TOKEN), header + security + context);
  assertStrictEquals(get(A.VIEW), null);
  assertStrictEquals(get(A.CONTEXT | A.TOKEN), null);
  assertStrictEquals(attributeOffset(allocated, A.TOKEN), header + security + context);
  assertStrictEquals(attributesSize(allocated), header + security + context + 24);
});

Deno.test("fake ALPC: AlpcInitializeMessageAttribute with a NULL buffer still reports the required size", () => {
  const k = new FakeKernel();
  const required = new Uint8Array(8);
  const status = k.symbols.AlpcInitializeMessageAttribute(A.VIEW >>> 0, null, 1000n, required);
  assertStrictEquals(status, 0);
  assertStrictEquals(new DataView(required.buffer).getBigUint64(0, true), 40n);
});
