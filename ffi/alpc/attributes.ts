/**
 * ALPC message attributes: the `ALPC_MESSAGE_ATTRIBUTES` buffer a send or a receive passes beside
 * its message, laid out in TypeScript exactly as the kernel lays it out (no ntdll helper needed).
 *
 * The buffer is an 8-byte header (`AllocatedAttributes`, `ValidAttributes`) followed by one struct
 * per allocated attribute, highest flag bit first: security (24 bytes), view (32), context (32),
 * handle (24), token (24), direct (8), work-on-behalf (8). AlpcGetHeaderSize.c sums those sizes
 * for a set of flags; AlpcGetMessageAttribute.c finds one attribute at the header size of the
 * allocated flags above it (`Allocated & -2 * flag`) and answers NULL for a flag that is not
 * allocated or not a single bit; AlpcInitializeMessageAttribute.c writes `Allocated = flags`,
 * `Valid = 0` and fails with STATUS_BUFFER_TOO_SMALL when the buffer is shorter than the size.
 * The kernel reads the same layout when it captures a send's attributes (AlpcpCaptureAttributes.c:
 * `Valid` must be a subset of `Allocated`, else STATUS_INVALID_PARAMETER) and writes it when it
 * exposes a receive's (AlpcpExposeAttributes.c: `Valid` is cleared, then set per attribute).
 *
 * @module
 */

import { LAYOUTS } from "../layouts.ts";
import { addressOf } from "../nt/handle.ts";
import { AlpcAttributeFlags } from "./constants.ts";

const MA = LAYOUTS.ALPC_MESSAGE_ATTRIBUTES;
const SEC = LAYOUTS.ALPC_SECURITY_ATTR;
const VIEW = LAYOUTS.ALPC_DATA_VIEW_ATTR;
const CTX = LAYOUTS.ALPC_CONTEXT_ATTR;
const HND = LAYOUTS.ALPC_HANDLE_ATTR;
const TOK = LAYOUTS.ALPC_TOKEN_ATTR;

/** A message attribute's name (a key of `AlpcAttributeFlags`). */
export type AlpcAttributeName = keyof typeof AlpcAttributeFlags;

/** The attributes in layout order (highest flag first) with their struct sizes. */
const ORDER: readonly { name: AlpcAttributeName; flag: number; size: number }[] = [
  { name: "SECURITY", flag: AlpcAttributeFlags.SECURITY, size: SEC.size },
  { name: "VIEW", flag: AlpcAttributeFlags.VIEW, size: VIEW.size },
  { name: "CONTEXT", flag: AlpcAttributeFlags.CONTEXT, size: CTX.size },
  { name: "HANDLE", flag: AlpcAttributeFlags.HANDLE, size: HND.size },
  { name: "TOKEN", flag: AlpcAttributeFlags.TOKEN, size: TOK.size },
  { name: "DIRECT", flag: AlpcAttributeFlags.DIRECT, size: LAYOUTS.ALPC_DIRECT_ATTR.size },
  {
    name: "WORK_ON_BEHALF",
    flag: AlpcAttributeFlags.WORK_ON_BEHALF,
    size: LAYOUTS.ALPC_WORK_ON_BEHALF_ATTR.size,
  },
];

/** Every attribute flag the layout knows (`0xFE000000`). */
export const ALPC_ATTRIBUTE_FLAGS_ALL: number = ORDER.reduce((a, e) => (a | e.flag) >>> 0, 0);

/** Flags from names or a number, as an unsigned 32-bit value. */
function flagsOf(flags: number | readonly AlpcAttributeName[]): number {
  if (typeof flags === "number") return flags >>> 0;
  return flags.reduce((a, n) => (a | AlpcAttributeFlags[n]) >>> 0, 0);
}

/**
 * The size of an attribute buffer for these flags: the 8-byte header plus each known attribute's
 * struct (AlpcGetHeaderSize.c; bits it does not know add nothing).
 *
 * @param flags attribute flags, or their names
 * @returns the size in bytes
 * @example The context attribute alone needs 8 + 32 bytes
 * ```ts
 * import { alpcAttributeBufferSize } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * assertEquals(alpcAttributeBufferSize(["CONTEXT"]), 40);
 * assertEquals(alpcAttributeBufferSize(["SECURITY", "VIEW", "CONTEXT"]), 96);
 * ```
 */
export function alpcAttributeBufferSize(flags: number | readonly AlpcAttributeName[]): number {
  const f = flagsOf(flags);
  return ORDER.reduce<number>((size, e) => ((f & e.flag) !== 0 ? size + e.size : size), MA.size);
}

/**
 * Where one attribute lies in a buffer allocated for `allocated` (AlpcGetMessageAttribute.c):
 * the header size of the allocated flags above it, or `null` when `flag` is not allocated or not
 * a single bit.
 *
 * @param allocated the buffer's `AllocatedAttributes`
 * @param flag one attribute flag
 * @returns the byte offset from the start of the buffer, or `null`
 * @example The view comes after the security attribute when both are allocated
 * ```ts
 * import { alpcAttributeOffset } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * assertEquals(alpcAttributeOffset(0xC0000000, 0x40000000), 8 + 24);
 * assertEquals(alpcAttributeOffset(0x40000000, 0x40000000), 8);
 * assertEquals(alpcAttributeOffset(0x40000000, 0x20000000), null); // not allocated
 * ```
 */
export function alpcAttributeOffset(allocated: number, flag: number): number | null {
  const a = allocated >>> 0;
  const f = flag >>> 0;
  if ((a & f) === 0 || ((f - 1) & f) !== 0) return null;
  // `-2 * flag` as a 32-bit mask: every bit above `flag`.
  const above = (a & Number(BigInt.asUintN(32, -2n * BigInt(f)))) >>> 0;
  return alpcAttributeBufferSize(above);
}

/** The security attribute (`ALPC_SECURITY_ATTR`). */
export interface SecurityAttribute {
  /** `Flags` (e.g. `ALPC_SECFLG_CREATE_HANDLE` 0x20000). */
  flags: number;
  /** The `SECURITY_QUALITY_OF_SERVICE` address the kernel reads (0 on a receive). */
  qosAddress: bigint;
  /**
   * The security context's ALPC handle: one from `NtAlpcCreateSecurityContext`, or -2 (all bits)
   * to have the kernel capture the sending thread now (AlpcpCaptureSecurityAttributeInternal.c).
   */
  contextHandle: bigint;
}

/** The view attribute (`ALPC_DATA_VIEW_ATTR`). */
export interface ViewAttribute {
  /** `Flags` (the receiver sees 0x40000 for a secure view: AlpcpExposeViewAttribute.c). */
  flags: number;
  /** The section's ALPC handle (from `NtAlpcCreatePortSection`; 0 on a receive). */
  sectionHandle: bigint;
  /** Where the view is mapped in this process. */
  viewBase: bigint;
  /** Its size in bytes. */
  viewSize: bigint;
}

/** The context attribute (`ALPC_CONTEXT_ATTR`), written by the kernel on a receive. */
export interface ContextAttribute {
  /** The PortContext the server gave `NtAlpcAcceptConnectPort` for this connection. */
  portContext: bigint;
  /** The sender's message context. */
  messageContext: bigint;
  /** The message's sequence number. */
  sequence: number;
  /** Its MessageId. */
  messageId: number;
  /** Its CallbackId. */
  callbackId: number;
}

/** The handle attribute (`ALPC_HANDLE_ATTR`). */
export interface HandleAttribute {
  /** `Flags`. */
  flags: number;
  /** The handle (on a receive, a handle duplicated into this process: close it). */
  handle: bigint;
  /** The object type bits (`ALPC_PORFLG_OBJECT_TYPE_*`). */
  objectType: number;
  /** The access asked for the duplicate. */
  desiredAccess: number;
}

/** The token attribute (`ALPC_TOKEN_ATTR`): who sent the message, as token identifiers. */
export interface TokenAttribute {
  /** The sender token's `TokenId` (a LUID as 64 bits). */
  tokenId: bigint;
  /** Its logon session (`AuthenticationId`). */
  authenticationId: bigint;
  /** Its `ModifiedId`. */
  modifiedId: bigint;
}

/**
 * An `ALPC_MESSAGE_ATTRIBUTES` buffer, allocated for a set of attributes and laid out as the
 * kernel expects (see the module doc). Pass {@link MessageAttributes.buffer} to
 * `NtAlpcSendWaitReceivePort` / `NtAlpcConnectPort`; on a send, fill attributes with the setters
 * (each marks its attribute valid); after a receive, read them with the getters, which answer
 * `undefined` for an attribute the kernel did not mark valid.
 *
 * @example Lay out a buffer for the context and view attributes and read it back
 * ```ts
 * import { MessageAttributes } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const attrs = new MessageAttributes(["VIEW", "CONTEXT"]);
 * assertEquals(attrs.buffer.byteLength, 8 + 32 + 32);
 * assertEquals(attrs.view, undefined); // nothing valid yet
 * attrs.setView({ flags: 0, sectionHandle: 0x10n, viewBase: 0x7000n, viewSize: 4096n });
 * assertEquals(attrs.validNames, ["VIEW"]);
 * assertEquals(attrs.view?.viewSize, 4096n);
 * ```
 */
export class MessageAttributes {
  /** The buffer (header and attributes), for a `PALPC_MESSAGE_ATTRIBUTES` parameter. */
  readonly buffer: Uint8Array<ArrayBuffer>;
  readonly #dv: DataView;
  /** Buffers the attributes point to (a QoS), kept alive as long as this object. */
  readonly #pins: unknown[] = [];

  /**
   * Allocates a buffer for these attributes: `AllocatedAttributes = flags`, `ValidAttributes = 0`
   * (AlpcInitializeMessageAttribute.c).
   *
   * @param flags attribute flags, or their names; bits outside `0xFE000000` are refused
   */
  constructor(flags: number | readonly AlpcAttributeName[]) {
    const f = flagsOf(flags);
    if ((f & ~ALPC_ATTRIBUTE_FLAGS_ALL) !== 0) {
      throw new RangeError(
        `unknown ALPC attribute flags 0x${
          ((f & ~ALPC_ATTRIBUTE_FLAGS_ALL) >>> 0).toString(16)
        } (known: 0x${ALPC_ATTRIBUTE_FLAGS_ALL.toString(16)})`,
      );
    }
    this.buffer = new Uint8Array(alpcAttributeBufferSize(f));
    this.#dv = new DataView(this.buffer.buffer);
    this.#dv.setUint32(MA.offsets.AllocatedAttributes, f, true);
  }

  /** `AllocatedAttributes`: what this buffer has room for. */
  get allocated(): number {
    return this.#dv.getUint32(MA.offsets.AllocatedAttributes, true);
  }

  /** `ValidAttributes`: what the last receive filled in, or what the setters filled. */
  get valid(): number {
    return this.#dv.getUint32(MA.offsets.ValidAttributes, true);
  }

  /** The names of the valid attributes, in layout order. */
  get validNames(): AlpcAttributeName[] {
    const v = this.valid;
    return ORDER.filter((e) => (v & e.flag) !== 0).map((e) => e.name);
  }

  /** Clears `ValidAttributes` and every attribute's bytes (before reusing the buffer). */
  reset(): void {
    this.buffer.fill(0, MA.offsets.ValidAttributes);
    this.#pins.length = 0;
  }

  /** True when the attribute is allocated here and marked valid. */
  isValid(name: AlpcAttributeName): boolean {
    return (this.valid & AlpcAttributeFlags[name]) !== 0;
  }

  /** The byte offset of an allocated attribute (throws for one that is not allocated). */
  offsetOf(name: AlpcAttributeName): number {
    const at = alpcAttributeOffset(this.allocated, AlpcAttributeFlags[name]);
    if (at === null) {
      throw new RangeError(`the ${name} attribute is not allocated in this buffer`);
    }
    return at;
  }

  #markValid(name: AlpcAttributeName): void {
    this.#dv.setUint32(
      MA.offsets.ValidAttributes,
      (this.valid | AlpcAttributeFlags[name]) >>> 0,
      true,
    );
  }

  /** The security attribute, when valid. */
  get security(): SecurityAttribute | undefined {
    if (!this.isValid("SECURITY")) return undefined;
    const at = this.offsetOf("SECURITY");
    return {
      flags: this.#dv.getUint32(at + SEC.offsets.Flags, true),
      qosAddress: this.#dv.getBigUint64(at + SEC.offsets.QoS, true),
      contextHandle: this.#dv.getBigUint64(at + SEC.offsets.ContextHandle, true),
    };
  }

  /**
   * Fills the security attribute and marks it valid.
   *
   * @param attr `flags`; `qos`, a `SECURITY_QUALITY_OF_SERVICE` (kept alive by this object); and
   *   `contextHandle` (default -2: the kernel captures the sending thread's security now)
   */
  setSecurity(attr: { flags?: number; qos?: Uint8Array; contextHandle?: bigint }): void {
    const at = this.offsetOf("SECURITY");
    this.#dv.setUint32(at + SEC.offsets.Flags, attr.flags ?? 0, true);
    this.#dv.setBigUint64(at + SEC.offsets.QoS, attr.qos ? addressOf(attr.qos) : 0n, true);
    this.#dv.setBigUint64(
      at + SEC.offsets.ContextHandle,
      BigInt.asUintN(64, attr.contextHandle ?? -2n),
      true,
    );
    if (attr.qos) this.#pins.push(attr.qos);
    this.#markValid("SECURITY");
  }

  /** The view attribute, when valid. */
  get view(): ViewAttribute | undefined {
    if (!this.isValid("VIEW")) return undefined;
    const at = this.offsetOf("VIEW");
    return {
      flags: this.#dv.getUint32(at + VIEW.offsets.Flags, true),
      sectionHandle: this.#dv.getBigUint64(at + VIEW.offsets.SectionHandle, true),
      viewBase: this.#dv.getBigUint64(at + VIEW.offsets.ViewBase, true),
      viewSize: this.#dv.getBigUint64(at + VIEW.offsets.ViewSize, true),
    };
  }

  /** Fills the view attribute and marks it valid. */
  setView(attr: ViewAttribute): void {
    const at = this.offsetOf("VIEW");
    this.#dv.setUint32(at + VIEW.offsets.Flags, attr.flags, true);
    this.#dv.setBigUint64(at + VIEW.offsets.SectionHandle, attr.sectionHandle, true);
    this.#dv.setBigUint64(at + VIEW.offsets.ViewBase, attr.viewBase, true);
    this.#dv.setBigUint64(at + VIEW.offsets.ViewSize, attr.viewSize, true);
    this.#markValid("VIEW");
  }

  /**
   * The context attribute, when valid. The kernel writes its fields whenever it is allocated but
   * marks it valid only for a non-zero PortContext (AlpcpExposeAttributes.c); see
   * {@link MessageAttributes.rawContext} for the fields regardless.
   */
  get context(): ContextAttribute | undefined {
    return this.isValid("CONTEXT") ? this.rawContext : undefined;
  }

  /** The context attribute's fields as they are, valid or not (allocated only). */
  get rawContext(): ContextAttribute | undefined {
    const at = alpcAttributeOffset(this.allocated, AlpcAttributeFlags.CONTEXT);
    if (at === null) return undefined;
    return {
      portContext: this.#dv.getBigUint64(at + CTX.offsets.PortContext, true),
      messageContext: this.#dv.getBigUint64(at + CTX.offsets.MessageContext, true),
      sequence: this.#dv.getUint32(at + CTX.offsets.Sequence, true),
      messageId: this.#dv.getUint32(at + CTX.offsets.MessageId, true),
      callbackId: this.#dv.getUint32(at + CTX.offsets.CallbackId, true),
    };
  }

  /** Fills the context attribute and marks it valid (a sender's message context). */
  setContext(attr: Partial<ContextAttribute>): void {
    const at = this.offsetOf("CONTEXT");
    this.#dv.setBigUint64(at + CTX.offsets.PortContext, attr.portContext ?? 0n, true);
    this.#dv.setBigUint64(at + CTX.offsets.MessageContext, attr.messageContext ?? 0n, true);
    this.#dv.setUint32(at + CTX.offsets.Sequence, attr.sequence ?? 0, true);
    this.#dv.setUint32(at + CTX.offsets.MessageId, attr.messageId ?? 0, true);
    this.#dv.setUint32(at + CTX.offsets.CallbackId, attr.callbackId ?? 0, true);
    this.#markValid("CONTEXT");
  }

  /** The handle attribute, when valid. */
  get handle(): HandleAttribute | undefined {
    if (!this.isValid("HANDLE")) return undefined;
    const at = this.offsetOf("HANDLE");
    return {
      flags: this.#dv.getUint32(at + HND.offsets.Flags, true),
      handle: this.#dv.getBigUint64(at + HND.offsets.Handle, true),
      objectType: this.#dv.getUint32(at + HND.offsets.ObjectType, true),
      desiredAccess: this.#dv.getUint32(at + HND.offsets.DesiredAccess, true),
    };
  }

  /** Fills the handle attribute and marks it valid (a handle to send). */
  setHandle(attr: HandleAttribute): void {
    const at = this.offsetOf("HANDLE");
    this.#dv.setUint32(at + HND.offsets.Flags, attr.flags, true);
    this.#dv.setBigUint64(at + HND.offsets.Handle, attr.handle, true);
    this.#dv.setUint32(at + HND.offsets.ObjectType, attr.objectType, true);
    this.#dv.setUint32(at + HND.offsets.DesiredAccess, attr.desiredAccess, true);
    this.#markValid("HANDLE");
  }

  /** The token attribute, when valid. */
  get token(): TokenAttribute | undefined {
    if (!this.isValid("TOKEN")) return undefined;
    const at = this.offsetOf("TOKEN");
    return {
      tokenId: this.#dv.getBigUint64(at + TOK.offsets.TokenId, true),
      authenticationId: this.#dv.getBigUint64(at + TOK.offsets.AuthenticationId, true),
      modifiedId: this.#dv.getBigUint64(at + TOK.offsets.ModifiedId, true),
    };
  }
}
