/**
 * The ALPC message-attribute layout, computed in TypeScript, against the kernel's rules
 * (AlpcGetHeaderSize.c, AlpcGetMessageAttribute.c, AlpcInitializeMessageAttribute.c) and, on
 * Windows, against ntdll's own AlpcInitializeMessageAttribute / AlpcGetMessageAttribute.
 */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import {
  ALPC_ATTRIBUTE_FLAGS_ALL,
  alpcAttributeBufferSize,
  type AlpcAttributeName,
  alpcAttributeOffset,
  MessageAttributes,
} from "../../../ffi/alpc/attributes.ts";
import { AlpcAttributeFlags } from "../../../ffi/alpc/constants.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import { ntdll } from "../../../ffi/ntdll.ts";
import { conditionalTest, ON_WINDOWS_BUILD } from "../../_helpers.ts";
import { FakeKernel } from "../../fake_kernel.ts";

const NAMES = Object.keys(AlpcAttributeFlags) as AlpcAttributeName[];
/** The struct sizes in the order AlpcGetHeaderSize.c adds them (read from the function). */
const KERNEL_SIZES: Record<AlpcAttributeName, number> = {
  SECURITY: 24,
  VIEW: 32,
  CONTEXT: 32,
  HANDLE: 24,
  TOKEN: 24,
  DIRECT: 8,
  WORK_ON_BEHALF: 8,
};

/** Every subset of the seven attribute flags. */
function subsets(): number[] {
  const flags = NAMES.map((n) => AlpcAttributeFlags[n]);
  const out: number[] = [];
  for (let m = 0; m < 1 << flags.length; m++) {
    out.push(flags.reduce((a, f, i) => ((m >> i) & 1 ? (a | f) >>> 0 : a), 0));
  }
  return out;
}

/** An independent reading of AlpcGetHeaderSize.c: walk the bits from the top. */
function headerSize(flags: number): number {
  let size = 8;
  for (let bit = 31; bit >= 0; bit--) {
    const f = 2 ** bit;
    const name = NAMES.find((n) => AlpcAttributeFlags[n] === f);
    if (name && Math.floor(flags / f) % 2 === 1) size += KERNEL_SIZES[name];
  }
  return size;
}

Deno.test("the attribute structs in LAYOUTS have the sizes AlpcGetHeaderSize.c adds", () => {
  const layouts: Record<AlpcAttributeName, number> = {
    SECURITY: LAYOUTS.ALPC_SECURITY_ATTR.size,
    VIEW: LAYOUTS.ALPC_DATA_VIEW_ATTR.size,
    CONTEXT: LAYOUTS.ALPC_CONTEXT_ATTR.size,
    HANDLE: LAYOUTS.ALPC_HANDLE_ATTR.size,
    TOKEN: LAYOUTS.ALPC_TOKEN_ATTR.size,
    DIRECT: LAYOUTS.ALPC_DIRECT_ATTR.size,
    WORK_ON_BEHALF: LAYOUTS.ALPC_WORK_ON_BEHALF_ATTR.size,
  };
  assertEquals(layouts, KERNEL_SIZES);
  assertStrictEquals(ALPC_ATTRIBUTE_FLAGS_ALL, 0xfe000000);
});

Deno.test("alpcAttributeBufferSize: the header plus each allocated struct, for all 128 subsets", () => {
  assertStrictEquals(alpcAttributeBufferSize(0), 8);
  assertStrictEquals(alpcAttributeBufferSize(ALPC_ATTRIBUTE_FLAGS_ALL), 8 + 152);
  for (const f of subsets()) {
    assertStrictEquals(alpcAttributeBufferSize(f), headerSize(f), `0x${f.toString(16)}`);
  }
  // Bits the kernel does not know add nothing (AlpcGetHeaderSize.c tests only these seven).
  assertStrictEquals(alpcAttributeBufferSize(0x20000000 | 0x00ffffff), 40);
  assertStrictEquals(alpcAttributeBufferSize(["CONTEXT", "VIEW"]), 72);
});

Deno.test("alpcAttributeOffset: at the size of the allocated flags above it; null when not allocated or not one bit", () => {
  const all = ALPC_ATTRIBUTE_FLAGS_ALL;
  const at = (n: AlpcAttributeName) => alpcAttributeOffset(all, AlpcAttributeFlags[n]);
  assertEquals(NAMES.map(at), [8, 32, 64, 96, 120, 144, 152]);
  for (const allocated of subsets()) {
    for (const n of NAMES) {
      const f = AlpcAttributeFlags[n];
      const expected = (allocated & f) === 0 ? null : headerSize(
        NAMES.filter((m) => AlpcAttributeFlags[m] > f && (allocated & AlpcAttributeFlags[m]) !== 0)
          .reduce((a, m) => (a | AlpcAttributeFlags[m]) >>> 0, 0),
      );
      assertStrictEquals(
        alpcAttributeOffset(allocated, f),
        expected,
        `0x${allocated.toString(16)} ${n}`,
      );
    }
  }
  assertStrictEquals(alpcAttributeOffset(all, 0x60000000), null, "two bits");
  assertStrictEquals(alpcAttributeOffset(all, 0), null, "no bit");
});

Deno.test("MessageAttributes: Allocated = flags, Valid = 0; setters mark valid; getters answer only what is valid", () => {
  const attrs = new MessageAttributes(["SECURITY", "VIEW", "CONTEXT", "HANDLE", "TOKEN"]);
  const dv = new DataView(attrs.buffer.buffer);
  assertStrictEquals(attrs.buffer.byteLength, 8 + 24 + 32 + 32 + 24 + 24);
  assertStrictEquals(dv.getUint32(0, true), 0xf8000000);
  assertStrictEquals(dv.getUint32(4, true), 0);
  assertEquals([attrs.security, attrs.view, attrs.context, attrs.handle, attrs.token], [
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
  ]);
  attrs.setView({ flags: 0, sectionHandle: 0x44n, viewBase: 0x1230000n, viewSize: 0x10000n });
  const v = attrs.offsetOf("VIEW");
  assertStrictEquals(v, 32);
  assertStrictEquals(
    dv.getBigUint64(v + LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets.SectionHandle, true),
    0x44n,
  );
  assertStrictEquals(
    dv.getBigUint64(v + LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets.ViewBase, true),
    0x1230000n,
  );
  assertStrictEquals(attrs.valid, 0x40000000);
  const qos = new Uint8Array(12);
  attrs.setSecurity({ qos });
  assertStrictEquals(
    attrs.security?.qosAddress,
    Deno.UnsafePointer.value(Deno.UnsafePointer.of(qos)),
  );
  assertEquals(attrs.validNames, ["SECURITY", "VIEW"]);
  assertStrictEquals(
    attrs.security?.contextHandle,
    0xfffffffffffffffen,
    "ContextHandle -2 by default: the kernel captures the sender now",
  );
  attrs.setContext({ portContext: 7n, sequence: 3, messageId: 9, callbackId: 11 });
  assertEquals(attrs.context, {
    portContext: 7n,
    messageContext: 0n,
    sequence: 3,
    messageId: 9,
    callbackId: 11,
  });
  attrs.reset();
  assertStrictEquals(attrs.valid, 0);
  assertStrictEquals(attrs.allocated, 0xf8000000, "reset keeps the allocation");
  assertStrictEquals(attrs.view, undefined);
});

Deno.test("MessageAttributes: the context's fields read even when the kernel leaves it invalid (PortContext 0)", () => {
  const attrs = new MessageAttributes(["CONTEXT"]);
  const dv = new DataView(attrs.buffer.buffer);
  const at = attrs.offsetOf("CONTEXT");
  // What AlpcpExposeAttributes.c writes for a message with PortContext 0: fields, no valid bit.
  dv.setUint32(at + LAYOUTS.ALPC_CONTEXT_ATTR.offsets.MessageId, 5, true);
  assertStrictEquals(attrs.context, undefined);
  assertStrictEquals(attrs.rawContext?.messageId, 5);
  assertStrictEquals(new MessageAttributes(["VIEW"]).rawContext, undefined);
});

Deno.test("MessageAttributes: unknown flags and attributes that are not allocated are refused", () => {
  assertThrows(
    () => new MessageAttributes(0x01000000),
    RangeError,
    "unknown ALPC attribute flags 0x1000000",
  );
  const attrs = new MessageAttributes(["CONTEXT"]);
  assertThrows(() => attrs.offsetOf("VIEW"), RangeError, "VIEW attribute is not allocated");
  assertThrows(
    () => attrs.setView({ flags: 0, sectionHandle: 0n, viewBase: 0n, viewSize: 0n }),
    RangeError,
  );
  assertStrictEquals(attrs.valid, 0, "a refused setter marks nothing");
});

/** Why ntdll's helpers cannot be compared here, or null. */
function ntdllHelpersWhyNot(): string | null {
  if (!ON_WINDOWS_BUILD) return "needs Windows (ntdll's AlpcInitializeMessageAttribute)";
  const { AlpcInitializeMessageAttribute, AlpcGetMessageAttribute } = ntdll();
  if (AlpcInitializeMessageAttribute === null || AlpcGetMessageAttribute === null) {
    return "this ntdll lacks AlpcInitializeMessageAttribute / AlpcGetMessageAttribute (Wine 8.0)";
  }
  return null;
}

conditionalTest(
  "the layout agrees with ntdll's AlpcInitializeMessageAttribute and AlpcGetMessageAttribute for all 128 subsets",
  ntdllHelpersWhyNot(),
  () => {
    const nt = ntdll();
    const init = nt.AlpcInitializeMessageAttribute!;
    const get = nt.AlpcGetMessageAttribute!;
    for (const flags of subsets()) {
      const required = new BigUint64Array(1);
      const small = new Uint8Array(4);
      const status = init(flags, small, BigInt(alpcAttributeBufferSize(flags) - 1), required);
      assertStrictEquals(status >>> 0, 0xc0000023, "STATUS_BUFFER_TOO_SMALL one byte short");
      assertStrictEquals(Number(required[0]), alpcAttributeBufferSize(flags));
      const ours = new MessageAttributes(flags);
      const theirs = new Uint8Array(ours.buffer.byteLength);
      assertStrictEquals(init(flags, theirs, BigInt(theirs.byteLength), required), 0);
      assertEquals(theirs, ours.buffer, "the same header, the rest zero");
      const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(theirs));
      for (const n of NAMES) {
        const p = get(theirs, AlpcAttributeFlags[n]);
        const offset = alpcAttributeOffset(flags, AlpcAttributeFlags[n]);
        assertStrictEquals(p === null ? null : Number(Deno.UnsafePointer.value(p) - base), offset);
      }
    }
    assert(true);
  },
);

Deno.test("the layout agrees with the fake kernel's AlpcInitializeMessageAttribute / AlpcGetMessageAttribute (an independent reading) for all 128 subsets", () => {
  const nt = new FakeKernel().symbols;
  for (const flags of subsets()) {
    const required = new BigUint64Array(1);
    const ours = new MessageAttributes(flags);
    const theirs = new Uint8Array(ours.buffer.byteLength);
    assertStrictEquals(
      nt.AlpcInitializeMessageAttribute(flags, theirs, BigInt(theirs.byteLength), required),
      0,
    );
    assertStrictEquals(Number(required[0]), ours.buffer.byteLength);
    assertEquals(theirs, ours.buffer);
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(theirs));
    for (const n of NAMES) {
      const p = nt.AlpcGetMessageAttribute(theirs, AlpcAttributeFlags[n]);
      assertStrictEquals(
        p === null ? null : Number(Deno.UnsafePointer.value(p) - base),
        alpcAttributeOffset(flags, AlpcAttributeFlags[n]),
      );
    }
  }
});
