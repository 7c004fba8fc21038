/**
 * Object security: an object's security descriptor (its bytes and its SDDL), an object type's
 * generic mapping, the access check of a token against a descriptor, and AppContainer (lowbox)
 * tokens. Nothing here writes a descriptor or widens an access: the calls read, check and copy.
 *
 * Kernel rules encoded here (Windows 11 ntoskrnl, decompiled):
 * - `SeAccessCheckByType.c` (what `NtAccessCheck.c` calls): the desired access must hold no
 *   generic bits (`STATUS_GENERIC_NOT_MAPPED`: the caller maps them with the type's mapping); the
 *   token handle needs `TOKEN_QUERY` and must be an impersonation token
 *   (`STATUS_NO_IMPERSONATION_TOKEN`) of at least identification level
 *   (`STATUS_BAD_IMPERSONATION_LEVEL`); the descriptor must have an owner and a group
 *   (`STATUS_INVALID_SECURITY_DESCR`); the privilege-set buffer must hold at least 20 bytes. The
 *   mandatory integrity check (`SepMandatoryIntegrityCheck.c`) runs inside the same call.
 * - `ObQueryTypeInfo.c`: `NtQueryObject(ObjectTypeInformation)` copies the type's
 *   `GENERIC_MAPPING` and `ValidAccessMask` (offsets in `LAYOUTS.OBJECT_TYPE_INFORMATION`).
 * - `NtCreateLowBoxToken.c`: the existing token is referenced with `TOKEN_DUPLICATE`; the package
 *   SID must be an `S-1-15-2-...` SID (`RtlIsPackageSid.c`) with 8 or 12 sub-authorities; the new
 *   token's integrity is set to Low.
 *
 * @module
 */

import { advapi32 } from "../advapi32.ts";
import { kernel32 } from "../kernel32.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll } from "../ntdll.ts";
import { check, formatHex, NTSTATUS, statusName, toUnsigned, UnsupportedError } from "../status.ts";
import { readWideZ } from "../strings.ts";
import { addressOf, checkWin32, handleCell, type NtHandle } from "./handle.ts";
import { readCountedUnicodeString, SecurityDescriptor } from "./object_attributes.ts";
import { sidFromString, Token, TokenAccess } from "./tokens.ts";

const GM = LAYOUTS.GENERIC_MAPPING;
const OTI = LAYOUTS.OBJECT_TYPE_INFORMATION;

/** `SECURITY_INFORMATION` bits (winnt.h). */
export const SecurityInformation = {
  OWNER_SECURITY_INFORMATION: 0x1,
  GROUP_SECURITY_INFORMATION: 0x2,
  DACL_SECURITY_INFORMATION: 0x4,
  SACL_SECURITY_INFORMATION: 0x8,
  LABEL_SECURITY_INFORMATION: 0x10,
} as const;

/** Owner, group, DACL and mandatory label: what `READ_CONTROL` lets a handle read. */
export const READ_CONTROL_INFORMATION = SecurityInformation.OWNER_SECURITY_INFORMATION |
  SecurityInformation.GROUP_SECURITY_INFORMATION |
  SecurityInformation.DACL_SECURITY_INFORMATION |
  SecurityInformation.LABEL_SECURITY_INFORMATION;

/** An object type's `GENERIC_MAPPING`: what each generic right means for it. */
export interface GenericMapping {
  /** `GENERIC_READ` maps to this. */
  read: number;
  /** `GENERIC_WRITE` maps to this. */
  write: number;
  /** `GENERIC_EXECUTE` maps to this. */
  execute: number;
  /** `GENERIC_ALL` maps to this. */
  all: number;
}

/** The generic rights (winnt.h). */
export const GenericAccess = {
  GENERIC_READ: 0x80000000,
  GENERIC_WRITE: 0x40000000,
  GENERIC_EXECUTE: 0x20000000,
  GENERIC_ALL: 0x10000000,
} as const;

/**
 * `MapGenericMask`: replaces the generic bits of `access` by what `mapping` says they mean.
 *
 * @example
 * ```ts
 * import { mapGenericMask } from "./security.ts";
 * mapGenericMask(0x80000000, { read: 0x20001, write: 0x10001, execute: 0, all: 0x1f0001 }); // 0x20001
 * ```
 */
export function mapGenericMask(access: number, mapping: GenericMapping): number {
  let out = access & 0x0fffffff;
  if (access & GenericAccess.GENERIC_READ) out |= mapping.read;
  if (access & GenericAccess.GENERIC_WRITE) out |= mapping.write;
  if (access & GenericAccess.GENERIC_EXECUTE) out |= mapping.execute;
  if (access & GenericAccess.GENERIC_ALL) out |= mapping.all;
  return out >>> 0;
}

/** A `GENERIC_MAPPING` struct, as `NtAccessCheck` reads it. */
export function encodeGenericMapping(mapping: GenericMapping): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(GM.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(GM.offsets.GenericRead, mapping.read >>> 0, true);
  dv.setUint32(GM.offsets.GenericWrite, mapping.write >>> 0, true);
  dv.setUint32(GM.offsets.GenericExecute, mapping.execute >>> 0, true);
  dv.setUint32(GM.offsets.GenericAll, mapping.all >>> 0, true);
  return b;
}

/** What `NtQueryObject(ObjectTypeInformation)` says of a handle's type. */
export interface ObjectTypeFacts {
  /** The type's name, e.g. `ALPC Port`. */
  typeName: string;
  /** Its generic mapping. */
  mapping: GenericMapping;
  /** The rights that are valid for it. */
  validAccessMask: number;
}

/**
 * Decodes an `OBJECT_TYPE_INFORMATION` (its name's characters follow the struct; the
 * `UNICODE_STRING` points at them by absolute address).
 *
 * @param buf what the call wrote
 * @param base the buffer's address as native code saw it
 */
export function decodeObjectTypeInformation(buf: Uint8Array, base: bigint): ObjectTypeFacts {
  if (buf.byteLength < OTI.size) {
    throw new RangeError(`OBJECT_TYPE_INFORMATION needs ${OTI.size} bytes, got ${buf.byteLength}`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const m = OTI.offsets.GenericMapping;
  return {
    typeName: readCountedUnicodeString(buf, OTI.offsets.TypeName, base),
    mapping: {
      read: dv.getUint32(m + GM.offsets.GenericRead, true),
      write: dv.getUint32(m + GM.offsets.GenericWrite, true),
      execute: dv.getUint32(m + GM.offsets.GenericExecute, true),
      all: dv.getUint32(m + GM.offsets.GenericAll, true),
    },
    validAccessMask: dv.getUint32(OTI.offsets.ValidAccessMask, true),
  };
}

/** `ObjectTypeInformation`. */
const ObjectTypeInformation = 2;

/** `NtQueryObject(ObjectTypeInformation)` on a handle of this process. */
export function objectTypeInformation(handle: NtHandle): ObjectTypeFacts {
  let buf = new Uint8Array(OTI.size + 256);
  const returned = new Uint32Array(1);
  for (let attempt = 0; attempt < 3; attempt++) {
    const status = ntdll().NtQueryObject(
      handle.unsafePointer,
      ObjectTypeInformation,
      buf,
      buf.byteLength,
      returned,
    );
    if (
      toUnsigned(status) === NTSTATUS.STATUS_INFO_LENGTH_MISMATCH && returned[0]! > buf.byteLength
    ) {
      buf = new Uint8Array(returned[0]!);
      continue;
    }
    check(status, "NtQueryObject", `ObjectTypeInformation of ${handle.what}`);
    return decodeObjectTypeInformation(buf, addressOf(buf));
  }
  check(NTSTATUS.STATUS_INFO_LENGTH_MISMATCH, "NtQueryObject", "ObjectTypeInformation");
  throw new Error("unreachable");
}

/**
 * A handle's security descriptor, self-relative, as stored (`NtQuerySecurityObject`). Owner,
 * group, DACL and label need the handle to hold `READ_CONTROL`; the SACL needs more.
 *
 * @param handle the object
 * @param info which parts (default {@link READ_CONTROL_INFORMATION})
 */
export function querySecurityDescriptor(
  handle: NtHandle,
  info: number = READ_CONTROL_INFORMATION,
): Uint8Array<ArrayBuffer> {
  let sd = new Uint8Array(512);
  const needed = new Uint32Array(1);
  for (let attempt = 0; attempt < 4; attempt++) {
    const status = ntdll().NtQuerySecurityObject(
      handle.unsafePointer,
      info,
      sd,
      sd.byteLength,
      needed,
    );
    if (toUnsigned(status) === NTSTATUS.STATUS_BUFFER_TOO_SMALL && needed[0]! > sd.byteLength) {
      sd = new Uint8Array(needed[0]!);
      continue;
    }
    check(status, "NtQuerySecurityObject", handle.what);
    return sd.subarray(0, needed[0]! || sd.byteLength);
  }
  check(NTSTATUS.STATUS_BUFFER_TOO_SMALL, "NtQuerySecurityObject", handle.what);
  throw new Error("unreachable");
}

/**
 * SDDL text of a self-relative descriptor (`ConvertSecurityDescriptorToStringSecurityDescriptorW`;
 * the string is freed with `LocalFree`).
 *
 * @param sd the descriptor's bytes
 * @param info which parts to write (default {@link READ_CONTROL_INFORMATION})
 */
export function securityDescriptorToSddl(
  sd: Uint8Array<ArrayBuffer>,
  info: number = READ_CONTROL_INFORMATION,
): string {
  const out = new BigUint64Array(1);
  checkWin32(
    advapi32().ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, 1, info, out, null),
    "ConvertSecurityDescriptorToStringSecurityDescriptorW",
  );
  const p = Deno.UnsafePointer.create(out[0]!);
  try {
    return readWideZ(p);
  } finally {
    kernel32().LocalFree(p);
  }
}

/**
 * A self-relative descriptor's bytes from SDDL
 * (`SecurityDescriptor.fromSddl`, copied out and freed).
 */
export function sddlToSecurityDescriptor(sddl: string): Uint8Array<ArrayBuffer> {
  using sd = SecurityDescriptor.fromSddl(sddl);
  const p = Deno.UnsafePointer.create(sd.unsafeAddress)!;
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, sd.size).slice(0));
}

/** What {@link accessCheck} found. */
export interface AccessCheckResult {
  /** Whether every right asked for was granted. */
  granted: boolean;
  /** The rights granted (`GrantedAccess`). */
  grantedAccess: number;
  /** The check's own status (`AccessStatus`) in hex: `0x00000000`, or `0xC0000022` when denied. */
  status: string;
  /** Its name, e.g. `STATUS_ACCESS_DENIED`. */
  name: string;
}

/**
 * `NtAccessCheck`: may `token` have `desired` on an object with descriptor `sd`? Generic bits of
 * `desired` are mapped with `mapping` first (the kernel refuses them unmapped). The token must be
 * an impersonation token of identification level or above, opened with `TOKEN_QUERY`; the
 * descriptor must carry an owner and a group. A failing call (as opposed to a denial) throws
 * `NtError`.
 *
 * Not thread-bound: the token is passed, the calling thread's identity is not used.
 */
export function accessCheck(
  sd: Uint8Array<ArrayBuffer>,
  token: NtHandle<"token">,
  desired: number,
  mapping: GenericMapping,
): AccessCheckResult {
  const privileges = new Uint8Array(256);
  const privilegesLength = new Uint32Array([privileges.byteLength]);
  const granted = new Uint32Array(1);
  const accessStatus = new Int32Array(1);
  const want = mapGenericMask(desired, mapping);
  check(
    ntdll().NtAccessCheck(
      sd,
      token.unsafePointer,
      want,
      encodeGenericMapping(mapping),
      privileges,
      privilegesLength,
      granted,
      accessStatus,
    ),
    "NtAccessCheck",
    token.what,
  );
  const s = toUnsigned(accessStatus[0]!);
  return {
    granted: s === 0 && (granted[0]! & want) === want,
    grantedAccess: granted[0]!,
    status: formatHex(s),
    name: statusName(s) ?? formatHex(s),
  };
}

/**
 * `NtCreateLowBoxToken`: an AppContainer (lowbox) copy of `token` for `packageSid`, with no
 * capabilities and no handles; its integrity is Low. `token` needs `TOKEN_DUPLICATE` and must be
 * a primary token or an impersonation token of impersonation level. A system that answers
 * success without a handle (Wine 8.0's stub) is {@link UnsupportedError}.
 *
 * @param token the token to copy
 * @param packageSid an `S-1-15-2-...` SID with 8 (or 12) sub-authorities
 * @param access the new handle's access (default `TOKEN_ALL_ACCESS`)
 */
export function createLowBoxToken(
  token: NtHandle<"token">,
  packageSid: string,
  access: number = TokenAccess.TOKEN_ALL_ACCESS,
): Token {
  const sid = sidFromString(packageSid);
  const cell = handleCell();
  check(
    ntdll().NtCreateLowBoxToken(cell, token.unsafePointer, access, null, sid, 0, null, 0, null),
    "NtCreateLowBoxToken",
    packageSid,
  );
  if (!cell[0]) {
    throw new UnsupportedError(
      "ntdll!NtCreateLowBoxToken returned STATUS_SUCCESS and no token handle (a stub of this " +
        "system, as Wine's): no AppContainer token can be made here",
    );
  }
  return new Token(cell[0], `lowbox token ${packageSid}`);
}
