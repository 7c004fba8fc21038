/**
 * Builders for the structs almost every NT call takes: `UNICODE_STRING`, `OBJECT_ATTRIBUTES` and
 * `SECURITY_QUALITY_OF_SERVICE`, plus a security descriptor made from SDDL. Each builder keeps
 * every buffer its struct points to alive for as long as the builder itself.
 *
 * @module
 */

import { advapi32 } from "../advapi32.ts";
import { addressOf, checkWin32, type NtHandle } from "./handle.ts";
import { kernel32 } from "../kernel32.ts";
import { LAYOUTS } from "../layouts.ts";
import { decodeUtf16, encodeUtf16, wideString } from "../strings.ts";

const US = LAYOUTS.UNICODE_STRING;
const OA = LAYOUTS.OBJECT_ATTRIBUTES;
const QOS = LAYOUTS.SECURITY_QUALITY_OF_SERVICE;

/** `OBJ_CASE_INSENSITIVE`: object names compare without case (the only valid port attribute). */
export const OBJ_CASE_INSENSITIVE = 0x40;

/**
 * `OBJ_DONT_REPARSE`: the open fails with `STATUS_REPARSE_POINT_ENCOUNTERED` instead of following
 * a reparse point (a junction, a symbolic link) on any component of the name (Windows 10 1703+;
 * Microsoft Learn, OBJECT_ATTRIBUTES). Older systems reject the unknown bit.
 */
export const OBJ_DONT_REPARSE = 0x1000;

/** The longest string a `UNICODE_STRING` can count (its lengths are 16-bit byte counts). */
export const UNICODE_STRING_MAX_CHARS = 0x7fff;

/**
 * A `UNICODE_STRING` and the UTF-16 buffer it points to, pinned together.
 *
 * @example
 * ```ts
 * import { UnicodeString } from "./object_attributes.ts";
 * const name = new UnicodeString("\\RPC Control");
 * name.byteLength; // 24
 * ```
 */
export class UnicodeString {
  /** The 16-byte struct, for a `PUNICODE_STRING` parameter. */
  readonly struct: Uint8Array<ArrayBuffer>;
  readonly #chars: Uint8Array<ArrayBuffer>;
  readonly #value: string;

  /**
   * Encodes `value` and points the struct at it.
   *
   * @param value the text (at most 32767 UTF-16 code units)
   */
  constructor(value: string) {
    if (value.length > UNICODE_STRING_MAX_CHARS) {
      throw new RangeError(
        `String too long for a UNICODE_STRING: ${value.length} code units (max ${UNICODE_STRING_MAX_CHARS})`,
      );
    }
    this.#value = value;
    // One spare NUL: not counted in Length, harmless, and useful to readers that expect it.
    this.#chars = encodeUtf16(value, true);
    this.struct = new Uint8Array(US.size);
    const dv = new DataView(this.struct.buffer);
    dv.setUint16(US.offsets.Length, value.length * 2, true);
    dv.setUint16(US.offsets.MaximumLength, this.#chars.byteLength, true);
    dv.setBigUint64(US.offsets.Buffer, addressOf(this.#chars), true);
  }

  /** The text. */
  get value(): string {
    return this.#value;
  }

  /** `Length`: the text's size in bytes, without a NUL. */
  get byteLength(): number {
    return this.#value.length * 2;
  }
}

/**
 * Reads a `UNICODE_STRING` at `at` in a buffer the kernel filled, whose `Buffer` is an absolute
 * address inside that same buffer (`base` = the buffer's address as native code saw it). Throws
 * `RangeError` when the string would lie outside the buffer; never follows the pointer.
 */
export function readCountedUnicodeString(buf: Uint8Array, at: number, base: bigint): string {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const length = dv.getUint16(at + US.offsets.Length, true);
  if (length === 0) return "";
  const offset = dv.getBigUint64(at + US.offsets.Buffer, true) - base;
  if (offset < 0n || offset + BigInt(length) > BigInt(buf.byteLength) || length % 2 !== 0) {
    throw new RangeError(
      `A UNICODE_STRING points outside its buffer (offset ${offset}, ${length} bytes)`,
    );
  }
  return decodeUtf16(buf.subarray(Number(offset), Number(offset) + length));
}

/** Options for {@link ObjectAttributes}. */
export interface ObjectAttributesOptions {
  /** A directory the name is relative to (`RootDirectory`). */
  root?: NtHandle<"file" | "directory">;
  /** `OBJ_*` flags; default {@link OBJ_CASE_INSENSITIVE}. */
  attributes?: number;
  /** A security descriptor for a new object. */
  securityDescriptor?: SecurityDescriptor;
  /** A `SECURITY_QUALITY_OF_SERVICE` (see {@link securityQos}). */
  qos?: Uint8Array<ArrayBuffer>;
}

/**
 * An `OBJECT_ATTRIBUTES` (48 bytes, `Length` = 48) that pins its name, descriptor and QoS.
 *
 * @example
 * ```ts
 * import { ObjectAttributes } from "./object_attributes.ts";
 * const oa = new ObjectAttributes("\\BaseNamedObjects");
 * oa.struct.byteLength; // 48
 * ```
 */
export class ObjectAttributes {
  /** The struct, for a `POBJECT_ATTRIBUTES` parameter. */
  readonly struct: Uint8Array<ArrayBuffer>;
  readonly #pins: unknown[];

  /**
   * Fills the struct and pins what it points to.
   *
   * @param name the object name (absolute, or relative to `options.root`); `null` for none
   * @param options root, attributes, security descriptor, QoS
   */
  constructor(name: string | UnicodeString | null, options: ObjectAttributesOptions = {}) {
    const us = typeof name === "string" ? new UnicodeString(name) : name;
    this.struct = new Uint8Array(OA.size);
    const dv = new DataView(this.struct.buffer);
    dv.setUint32(OA.offsets.Length, OA.size, true);
    if (options.root) dv.setBigUint64(OA.offsets.RootDirectory, options.root.unsafeValue, true);
    if (us) dv.setBigUint64(OA.offsets.ObjectName, addressOf(us.struct), true);
    dv.setUint32(OA.offsets.Attributes, options.attributes ?? OBJ_CASE_INSENSITIVE, true);
    if (options.securityDescriptor) {
      dv.setBigUint64(
        OA.offsets.SecurityDescriptor,
        options.securityDescriptor.unsafeAddress,
        true,
      );
    }
    if (options.qos) {
      dv.setBigUint64(OA.offsets.SecurityQualityOfService, addressOf(options.qos), true);
    }
    this.#pins = [us, options.root, options.securityDescriptor, options.qos];
  }

  /** How many buffers this struct keeps alive (for tests). */
  get pinned(): number {
    return this.#pins.filter((p) => p !== undefined && p !== null).length;
  }
}

/** `SECURITY_IMPERSONATION_LEVEL` values. */
export const ImpersonationLevel = {
  Anonymous: 0,
  Identification: 1,
  Impersonation: 2,
  Delegation: 3,
} as const;

/** A `SECURITY_IMPERSONATION_LEVEL` name. */
export type ImpersonationLevelName = keyof typeof ImpersonationLevel;

/**
 * Builds a `SECURITY_QUALITY_OF_SERVICE` (12 bytes, `Length` = 12).
 *
 * @param level how far the server may impersonate the client
 * @param dynamic `ContextTrackingMode`: TRUE = dynamic tracking
 * @param effectiveOnly `EffectiveOnly`
 *
 * @example
 * ```ts
 * import { securityQos } from "./object_attributes.ts";
 * securityQos("Impersonation").byteLength; // 12
 * ```
 */
export function securityQos(
  level: ImpersonationLevelName,
  dynamic = true,
  effectiveOnly = false,
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(QOS.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(QOS.offsets.Length, QOS.size, true);
  dv.setUint32(QOS.offsets.ImpersonationLevel, ImpersonationLevel[level], true);
  dv.setUint8(QOS.offsets.ContextTrackingMode, dynamic ? 1 : 0);
  dv.setUint8(QOS.offsets.EffectiveOnly, effectiveOnly ? 1 : 0);
  return b;
}

/** `SDDL_REVISION_1`. */
const SDDL_REVISION_1 = 1;

/**
 * A self-relative security descriptor made from SDDL by
 * `ConvertStringSecurityDescriptorToSecurityDescriptorW`, freed with `LocalFree` on dispose.
 *
 * @example Let Everyone connect to a port (PORT_CONNECT = 0x1), SYSTEM and Administrators all
 * ```ts ignore
 * import { SecurityDescriptor } from "./object_attributes.ts";
 * using sd = SecurityDescriptor.fromSddl("D:(A;;0x1;;;WD)(A;;GA;;;SY)(A;;GA;;;BA)");
 * ```
 */
export class SecurityDescriptor implements Disposable {
  #address: bigint;
  /** The SDDL text it was made from. */
  readonly sddl: string;
  /** Its size in bytes. */
  readonly size: number;

  private constructor(address: bigint, sddl: string, size: number) {
    this.#address = address;
    this.sddl = sddl;
    this.size = size;
  }

  /** Converts SDDL text (Windows only). */
  static fromSddl(sddl: string): SecurityDescriptor {
    const out = new BigUint64Array(1);
    const size = new Uint32Array(1);
    checkWin32(
      advapi32().ConvertStringSecurityDescriptorToSecurityDescriptorW(
        wideString(sddl),
        SDDL_REVISION_1,
        out,
        size,
      ),
      "ConvertStringSecurityDescriptorToSecurityDescriptorW",
      JSON.stringify(sddl),
    );
    return new SecurityDescriptor(out[0] ?? 0n, sddl, size[0] ?? 0);
  }

  /** **UNSAFE**: the descriptor's native address; valid until disposed. */
  get unsafeAddress(): bigint {
    if (this.#address === 0n) throw new TypeError("Security descriptor already freed");
    return this.#address;
  }

  /** Frees the descriptor (idempotent). */
  [Symbol.dispose](): void {
    if (this.#address === 0n) return;
    kernel32().LocalFree(Deno.UnsafePointer.create(this.#address));
    this.#address = 0n;
  }
}
