/**
 * ALPC byte layouts the cases and the fake kernel share: where each message attribute sits in an
 * `ALPC_MESSAGE_ATTRIBUTES` buffer, and the buffers a case passes (port attributes, message
 * attributes, a security attribute, a SID). Offsets come only from `LAYOUTS`.
 *
 * @module
 */

import { LAYOUTS } from "../../ffi/layouts.ts";
import { AlpcAttributeFlags as A } from "../../ffi/alpc/constants.ts";

const MA = LAYOUTS.ALPC_MESSAGE_ATTRIBUTES;
const PA = LAYOUTS.ALPC_PORT_ATTRIBUTES;
const QOS = LAYOUTS.SECURITY_QUALITY_OF_SERVICE;

/** Each attribute flag with its structure's size, in the order they follow the header. */
export const ATTRIBUTE_ORDER: readonly (readonly [number, number])[] = [
  [A.SECURITY, LAYOUTS.ALPC_SECURITY_ATTR.size],
  [A.VIEW, LAYOUTS.ALPC_DATA_VIEW_ATTR.size],
  [A.CONTEXT, LAYOUTS.ALPC_CONTEXT_ATTR.size],
  [A.HANDLE, LAYOUTS.ALPC_HANDLE_ATTR.size],
  [A.TOKEN, LAYOUTS.ALPC_TOKEN_ATTR.size],
  [A.DIRECT, LAYOUTS.ALPC_DIRECT_ATTR.size],
  [A.WORK_ON_BEHALF, LAYOUTS.ALPC_WORK_ON_BEHALF_ATTR.size],
];

/**
 * The size of an attributes buffer holding `flags` (AlpcGetHeaderSize.c: the 8-byte header plus
 * each present attribute's size; other bits add nothing).
 */
export function attributesSize(flags: number): number {
  let n = MA.size as number;
  for (const [flag, size] of ATTRIBUTE_ORDER) if ((flags & flag) !== 0) n += size;
  return n;
}

/**
 * Where attribute `flag` starts in a buffer allocated for `allocated` (AlpcGetMessageAttribute.c:
 * the header size of the allocated flags above it), or null when it is not allocated or `flag` is
 * not a single bit.
 */
export function attributeOffset(allocated: number, flag: number): number | null {
  if ((allocated & flag) === 0 || ((flag - 1) & flag) !== 0) return null;
  return attributesSize((allocated >>> 0) & ((-2 * flag) >>> 0));
}

/** Fields of an `ALPC_PORT_ATTRIBUTES` a case sets (the rest are 0). */
export interface PortAttributesInit {
  flags?: number;
  maxMessageLength?: number | bigint;
  /** SecurityQos.ImpersonationLevel (default SecurityImpersonation, 2). */
  level?: number;
  /** SecurityQos.ContextTrackingMode dynamic (default static). */
  dynamic?: boolean;
  maxSectionSize?: bigint;
  maxViewSize?: bigint;
  maxTotalSectionSize?: bigint;
}

/** An `ALPC_PORT_ATTRIBUTES` (72 bytes), MaxMessageLength 0x1000 unless told. */
export function portAttributes(init: PortAttributesInit = {}): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(PA.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(PA.offsets.Flags, init.flags ?? 0, true);
  dv.setUint32(PA.offsets.SecurityQos + QOS.offsets.Length, QOS.size, true);
  dv.setUint32(PA.offsets.SecurityQos + QOS.offsets.ImpersonationLevel, init.level ?? 2, true);
  dv.setUint8(PA.offsets.SecurityQos + QOS.offsets.ContextTrackingMode, init.dynamic ? 1 : 0);
  dv.setBigUint64(PA.offsets.MaxMessageLength, BigInt(init.maxMessageLength ?? 0x1000), true);
  dv.setBigUint64(PA.offsets.MaxSectionSize, init.maxSectionSize ?? 0n, true);
  dv.setBigUint64(PA.offsets.MaxViewSize, init.maxViewSize ?? 0n, true);
  dv.setBigUint64(PA.offsets.MaxTotalSectionSize, init.maxTotalSectionSize ?? 0n, true);
  return b;
}

/** An attribute's bytes to place in a message-attributes buffer. */
export interface AttributeBytes {
  flag: number;
  bytes: Uint8Array;
}

/**
 * A message-attributes buffer for `allocated`, with ValidAttributes `valid` (default 0) and the
 * given attributes' bytes at their places (what `AlpcInitializeMessageAttribute` prepares, plus
 * what a sender fills in).
 */
export function messageAttributes(
  allocated: number,
  valid = 0,
  attributes: AttributeBytes[] = [],
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(attributesSize(allocated));
  const dv = new DataView(b.buffer);
  dv.setUint32(MA.offsets.AllocatedAttributes, allocated >>> 0, true);
  dv.setUint32(MA.offsets.ValidAttributes, valid >>> 0, true);
  for (const a of attributes) {
    const at = attributeOffset(allocated, a.flag);
    if (at === null) throw new Error(`attribute 0x${a.flag.toString(16)} is not allocated`);
    b.set(a.bytes, at);
  }
  return b;
}

/** An `ALPC_SECURITY_ATTR`: Flags, a NULL QoS (the port's is used), ContextHandle. */
export function securityAttr(contextHandle = 0n, flags = 0): Uint8Array<ArrayBuffer> {
  const S = LAYOUTS.ALPC_SECURITY_ATTR;
  const b = new Uint8Array(S.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(S.offsets.Flags, flags >>> 0, true);
  dv.setBigUint64(S.offsets.ContextHandle, contextHandle, true);
  return b;
}

/** An `ALPC_DATA_VIEW_ATTR`. */
export function viewAttr(
  f: { flags?: number; section?: bigint; base?: bigint; size?: bigint } = {},
): Uint8Array<ArrayBuffer> {
  const V = LAYOUTS.ALPC_DATA_VIEW_ATTR;
  const b = new Uint8Array(V.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(V.offsets.Flags, f.flags ?? 0, true);
  dv.setBigUint64(V.offsets.SectionHandle, f.section ?? 0n, true);
  dv.setBigUint64(V.offsets.ViewBase, f.base ?? 0n, true);
  dv.setBigUint64(V.offsets.ViewSize, f.size ?? 0n, true);
  return b;
}

/** Reads a message attribute's 32- or 64-bit field of `layout` at `field`, or null if absent. */
export function attributeField(
  buf: Uint8Array,
  flag: number,
  offset: number,
  bytes: 4 | 8,
): number | bigint | null {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const at = attributeOffset(dv.getUint32(MA.offsets.AllocatedAttributes, true), flag);
  if (at === null) return null;
  return bytes === 4 ? dv.getUint32(at + offset, true) : dv.getBigUint64(at + offset, true);
}

/** ValidAttributes of a message-attributes buffer. */
export function validAttributes(buf: Uint8Array): number {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(
    MA.offsets.ValidAttributes,
    true,
  );
}
