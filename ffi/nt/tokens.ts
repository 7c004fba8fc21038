/**
 * Tokens, SIDs and privileges: the identity a call runs under.
 *
 * Thread affinity: impersonation and a thread's token belong to the calling thread. The helpers
 * that act on "the current thread" must be called on the thread that should carry the identity
 * (in the LPC server, its dedicated Worker), never through a `nonblocking` call.
 *
 * @module
 */

import { advapi32 } from "../advapi32.ts";
import {
  addressOf,
  checkWin32,
  currentProcess,
  currentThread,
  handleCell,
  type HandleCloser,
  NtHandle,
} from "./handle.ts";
import { kernel32 } from "../kernel32.ts";
import { ntdll } from "../ntdll.ts";
import { listProcesses, openProcess, ProcessAccess } from "./processes.ts";
import { LAYOUTS } from "../layouts.ts";
import { ImpersonationLevel, type ImpersonationLevelName } from "./object_attributes.ts";
import { NtError, NTSTATUS, toUnsigned, WIN32_ERRORS } from "../status.ts";
import { readWideZ, wideString } from "../strings.ts";

const SAA = LAYOUTS.SID_AND_ATTRIBUTES;
const LAA = LAYOUTS.LUID_AND_ATTRIBUTES;
const TP = LAYOUTS.TOKEN_PRIVILEGES;
const TML = LAYOUTS.TOKEN_MANDATORY_LABEL;
const TG = LAYOUTS.TOKEN_GROUPS;

/** Token access rights (winnt.h). */
export const TokenAccess = {
  TOKEN_ASSIGN_PRIMARY: 0x0001,
  TOKEN_DUPLICATE: 0x0002,
  TOKEN_IMPERSONATE: 0x0004,
  TOKEN_QUERY: 0x0008,
  TOKEN_ADJUST_PRIVILEGES: 0x0020,
  TOKEN_ADJUST_GROUPS: 0x0040,
  TOKEN_ADJUST_DEFAULT: 0x0080,
  TOKEN_ALL_ACCESS: 0x000f01ff,
} as const;

/** `TOKEN_INFORMATION_CLASS` values used here. */
export const TokenInformationClass = {
  TokenUser: 1,
  TokenGroups: 2,
  TokenPrivileges: 3,
  TokenType: 8,
  TokenImpersonationLevel: 9,
  TokenRestrictedSids: 11,
  TokenElevation: 20,
  TokenIntegrityLevel: 25,
} as const;

/** Well-known privilege LUIDs (`SE_*_PRIVILEGE`, fixed on every Windows). */
export const PRIVILEGE_LUIDS: Readonly<Record<string, number>> = {
  SeCreateTokenPrivilege: 2,
  SeAssignPrimaryTokenPrivilege: 3,
  SeLockMemoryPrivilege: 4,
  SeIncreaseQuotaPrivilege: 5,
  SeMachineAccountPrivilege: 6,
  SeTcbPrivilege: 7,
  SeSecurityPrivilege: 8,
  SeTakeOwnershipPrivilege: 9,
  SeLoadDriverPrivilege: 10,
  SeSystemProfilePrivilege: 11,
  SeSystemtimePrivilege: 12,
  SeProfileSingleProcessPrivilege: 13,
  SeIncreaseBasePriorityPrivilege: 14,
  SeCreatePagefilePrivilege: 15,
  SeCreatePermanentPrivilege: 16,
  SeBackupPrivilege: 17,
  SeRestorePrivilege: 18,
  SeShutdownPrivilege: 19,
  SeDebugPrivilege: 20,
  SeAuditPrivilege: 21,
  SeSystemEnvironmentPrivilege: 22,
  SeChangeNotifyPrivilege: 23,
  SeRemoteShutdownPrivilege: 24,
  SeUndockPrivilege: 25,
  SeSyncAgentPrivilege: 26,
  SeEnableDelegationPrivilege: 27,
  SeManageVolumePrivilege: 28,
  SeImpersonatePrivilege: 29,
  SeCreateGlobalPrivilege: 30,
  SeTrustedCredManAccessPrivilege: 31,
  SeRelabelPrivilege: 32,
  SeIncreaseWorkingSetPrivilege: 33,
  SeTimeZonePrivilege: 34,
  SeCreateSymbolicLinkPrivilege: 35,
  SeDelegateSessionUserImpersonatePrivilege: 36,
};

/** Well-known SIDs the lab uses. */
export const WellKnownSid = {
  Everyone: "S-1-1-0",
  LocalSystem: "S-1-5-18",
  Administrators: "S-1-5-32-544",
  Users: "S-1-5-32-545",
  LowIntegrity: "S-1-16-4096",
  MediumIntegrity: "S-1-16-8192",
  HighIntegrity: "S-1-16-12288",
  SystemIntegrity: "S-1-16-16384",
} as const;

/** Integrity level names by RID. */
export const INTEGRITY_LEVELS: Readonly<Record<number, string>> = {
  0x0000: "Untrusted",
  0x1000: "Low",
  0x2000: "Medium",
  0x2100: "MediumPlus",
  0x3000: "High",
  0x4000: "System",
  0x5000: "Protected",
};

/**
 * Encodes a SID string (`S-1-5-32-544`) as binary SID bytes.
 *
 * @example
 * ```ts
 * import { sidFromString } from "./tokens.ts";
 * sidFromString("S-1-5-18").byteLength; // 12
 * ```
 */
export function sidFromString(sid: string): Uint8Array<ArrayBuffer> {
  const m = /^S-1-(\d+)((?:-\d+)*)$/i.exec(sid.trim());
  if (!m) throw new TypeError(`Not a SID string: ${JSON.stringify(sid)}`);
  const authority = BigInt(m[1]!);
  const subs = m[2] ? m[2].slice(1).split("-").map(Number) : [];
  if (authority >= 1n << 48n || subs.length > 15 || subs.some((s) => s > 0xffffffff)) {
    throw new RangeError(`SID out of range: ${sid}`);
  }
  const out = new Uint8Array(8 + 4 * subs.length);
  const dv = new DataView(out.buffer);
  out[0] = 1; // Revision
  out[1] = subs.length; // SubAuthorityCount
  for (let i = 0; i < 6; i++) out[2 + i] = Number((authority >> BigInt(8 * (5 - i))) & 0xffn);
  subs.forEach((s, i) => dv.setUint32(8 + 4 * i, s, true));
  return out;
}

/**
 * Decodes binary SID bytes to the `S-1-…` string.
 *
 * @example
 * ```ts
 * import { sidFromString, sidToString } from "./tokens.ts";
 * sidToString(sidFromString("S-1-16-8192")); // "S-1-16-8192"
 * ```
 */
export function sidToString(bytes: Uint8Array): string {
  if (bytes.byteLength < 8 || bytes[0] !== 1) throw new RangeError("Not a revision-1 SID");
  const count = bytes[1]!;
  if (bytes.byteLength < 8 + 4 * count) throw new RangeError("SID shorter than its count");
  let authority = 0n;
  for (let i = 0; i < 6; i++) authority = (authority << 8n) | BigInt(bytes[2 + i]!);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const subs = Array.from({ length: count }, (_, i) => dv.getUint32(8 + 4 * i, true));
  return ["S", "1", String(authority), ...subs.map(String)].join("-");
}

/** Opens a process's token (default: our own, `TOKEN_QUERY`). */
export function openProcessToken(
  access: number = TokenAccess.TOKEN_QUERY,
  process?: NtHandle<"process">,
): Token {
  const cell = handleCell();
  checkWin32(
    advapi32().OpenProcessToken(process?.unsafePointer ?? currentProcess(), access, cell),
    "OpenProcessToken",
    process?.what,
  );
  return new Token(cell[0] ?? 0n, process ? `token of ${process.what}` : "process token");
}

/** `GetTokenInformation` into a buffer grown to the size the call asks for. */
export function tokenInformation(token: NtHandle<"token">, cls: number): Uint8Array<ArrayBuffer> {
  const needed = new Uint32Array(1);
  let buf = new Uint8Array(64);
  for (let attempt = 0; attempt < 4; attempt++) {
    if (advapi32().GetTokenInformation(token.unsafePointer, cls, buf, buf.byteLength, needed)) {
      return buf.subarray(0, needed[0]!);
    }
    const err = kernel32().GetLastError();
    // The size the call asks for decides, not only the last error (which the runtime may have
    // overwritten between the two FFI calls: seen under Wine as ERROR_SUCCESS after a failure).
    const tooSmall = needed[0]! > buf.byteLength ||
      err === WIN32_ERRORS.ERROR_INSUFFICIENT_BUFFER ||
      err === WIN32_ERRORS.ERROR_BAD_LENGTH;
    if (!tooSmall) throw new NtError("GetTokenInformation", err, "win32", `class ${cls}`);
    buf = new Uint8Array(Math.max(needed[0]!, buf.byteLength * 2));
  }
  throw new NtError("GetTokenInformation", WIN32_ERRORS.ERROR_INSUFFICIENT_BUFFER, "win32");
}

/** A SID that the kernel wrote into `buf` as an absolute pointer, as a string. */
function sidAt(buf: Uint8Array, pointerOffset: number): string {
  const p = new DataView(buf.buffer, buf.byteOffset).getBigUint64(pointerOffset, true);
  return sidStringViaApi(Deno.UnsafePointer.create(p));
}

/** `ConvertSidToStringSidW` on a native SID pointer (the string is freed with `LocalFree`). */
export function sidStringViaApi(sid: Deno.PointerValue): string {
  const out = new BigUint64Array(1);
  checkWin32(advapi32().ConvertSidToStringSidW(sid, out), "ConvertSidToStringSidW");
  const p = Deno.UnsafePointer.create(out[0]!);
  try {
    return readWideZ(p, 256);
  } finally {
    kernel32().LocalFree(p);
  }
}

/** The token's user SID as a string (`TokenUser`). */
export function tokenUserSid(token: NtHandle<"token">): string {
  return sidAt(tokenInformation(token, TokenInformationClass.TokenUser), SAA.offsets.Sid);
}

/** `SE_GROUP_*` attribute bits reported by {@link tokenGroups}. */
export const SE_GROUP_ENABLED = 0x4;
/** The group is only used to deny access (a restricted token's "deny-only" SID). */
export const SE_GROUP_USE_FOR_DENY_ONLY = 0x10;

/** The token's groups with their attributes (`TokenGroups`). */
export function tokenGroups(
  token: NtHandle<"token">,
): { sid: string; enabled: boolean; denyOnly: boolean }[] {
  const b = tokenInformation(token, TokenInformationClass.TokenGroups);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = dv.getUint32(TG.offsets.GroupCount, true);
  const out = [];
  for (let i = 0; i < count; i++) {
    const at = TG.offsets.Groups + i * SAA.size;
    if (at + SAA.size > b.byteLength) break;
    const attrs = dv.getUint32(at + SAA.offsets.Attributes, true);
    out.push({
      sid: sidAt(b, at + SAA.offsets.Sid),
      enabled: (attrs & SE_GROUP_ENABLED) !== 0,
      denyOnly: (attrs & SE_GROUP_USE_FOR_DENY_ONLY) !== 0,
    });
  }
  return out;
}

/** The token's integrity level: RID and name (`TokenIntegrityLevel`). */
export function tokenIntegrity(
  token: NtHandle<"token">,
): { rid: number; name: string; sid: string } {
  const sid = sidAt(
    tokenInformation(token, TokenInformationClass.TokenIntegrityLevel),
    TML.offsets.Label + SAA.offsets.Sid,
  );
  const rid = Number(sid.split("-").at(-1));
  return { rid, name: INTEGRITY_LEVELS[rid] ?? `0x${rid.toString(16)}`, sid };
}

/** Whether the token is elevated (`TokenElevation`). */
export function tokenIsElevated(token: NtHandle<"token">): boolean {
  const b = tokenInformation(token, TokenInformationClass.TokenElevation);
  return new DataView(b.buffer, b.byteOffset).getUint32(
    LAYOUTS.TOKEN_ELEVATION.offsets.TokenIsElevated,
    true,
  ) !== 0;
}

/** `SE_PRIVILEGE_*` attribute bits. */
export const SE_PRIVILEGE_ENABLED = 0x2;
/** The privilege is removed from the token. */
export const SE_PRIVILEGE_REMOVED = 0x4;

/** The token's privileges with their attributes (`TokenPrivileges`). */
export function tokenPrivileges(
  token: NtHandle<"token">,
): { name: string; luid: bigint; enabled: boolean }[] {
  const b = tokenInformation(token, TokenInformationClass.TokenPrivileges);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = dv.getUint32(TP.offsets.PrivilegeCount, true);
  const byLuid = new Map(Object.entries(PRIVILEGE_LUIDS).map(([k, v]) => [BigInt(v), k]));
  const out = [];
  for (let i = 0; i < count; i++) {
    const at = TP.offsets.Privileges + i * LAA.size;
    if (at + LAA.size > b.byteLength) break;
    const luid = dv.getBigUint64(at + LAA.offsets.Luid, true);
    const attrs = dv.getUint32(at + LAA.offsets.Attributes, true);
    out.push({
      name: byLuid.get(luid) ?? `LUID ${luid}`,
      luid,
      enabled: (attrs & SE_PRIVILEGE_ENABLED) !== 0,
    });
  }
  return out;
}

/** `LookupPrivilegeValueW(NULL, name)`: the privilege's LUID on this system. */
export function lookupPrivilege(name: string): bigint {
  const luid = new BigUint64Array(1);
  checkWin32(
    advapi32().LookupPrivilegeValueW(null, wideString(name), luid),
    "LookupPrivilegeValueW",
    name,
  );
  return luid[0]!;
}

/**
 * Enables (or disables) one privilege in a token opened with `TOKEN_ADJUST_PRIVILEGES`.
 * Returns false when the token does not hold the privilege at all (`ERROR_NOT_ALL_ASSIGNED`).
 */
export function setPrivilege(token: NtHandle<"token">, name: string, enable = true): boolean {
  const tp = new Uint8Array(TP.size);
  const dv = new DataView(tp.buffer);
  dv.setUint32(TP.offsets.PrivilegeCount, 1, true);
  dv.setBigUint64(TP.offsets.Privileges + LAA.offsets.Luid, lookupPrivilege(name), true);
  dv.setUint32(
    TP.offsets.Privileges + LAA.offsets.Attributes,
    enable ? SE_PRIVILEGE_ENABLED : 0,
    true,
  );
  checkWin32(
    advapi32().AdjustTokenPrivileges(token.unsafePointer, 0, tp, 0, null, null),
    "AdjustTokenPrivileges",
    name,
  );
  return kernel32().GetLastError() !== WIN32_ERRORS.ERROR_NOT_ALL_ASSIGNED;
}

/** `DuplicateTokenEx`: a primary or impersonation copy of a token. */
export function duplicateToken(
  token: NtHandle<"token">,
  options: { access?: number; level?: ImpersonationLevelName; primary?: boolean } = {},
): Token {
  const cell = handleCell();
  checkWin32(
    advapi32().DuplicateTokenEx(
      token.unsafePointer,
      options.access ?? TokenAccess.TOKEN_ALL_ACCESS,
      null,
      ImpersonationLevel[options.level ?? "Impersonation"],
      options.primary === false ? 2 : 1, // TokenPrimary = 1, TokenImpersonation = 2
      cell,
    ),
    "DuplicateTokenEx",
  );
  return new Token(
    cell[0] ?? 0n,
    options.primary === false ? "impersonation token" : "primary token",
  );
}

/** `CreateRestrictedToken` flag: remove every privilege but SeChangeNotifyPrivilege. */
export const DISABLE_MAX_PRIVILEGE = 0x1;
/** `SE_GROUP_INTEGRITY`, the attribute of an integrity label. */
const SE_GROUP_INTEGRITY = 0x20;

/**
 * `CreateRestrictedToken`: a copy of `token` with the given SIDs made deny-only and (by default)
 * every privilege removed. A restricted copy of one's own token needs no extra privilege to be
 * used with `CreateProcessAsUserW`.
 */
export function createRestrictedToken(
  token: NtHandle<"token">,
  options: { denyOnly?: string[]; removePrivileges?: boolean } = {},
): Token {
  const sids = (options.denyOnly ?? []).map(sidFromString);
  const table = new Uint8Array(Math.max(1, sids.length) * SAA.size);
  const dv = new DataView(table.buffer);
  sids.forEach((sid, i) => {
    dv.setBigUint64(i * SAA.size + SAA.offsets.Sid, addressOf(sid), true);
  });
  const cell = handleCell();
  checkWin32(
    advapi32().CreateRestrictedToken(
      token.unsafePointer,
      options.removePrivileges === false ? 0 : DISABLE_MAX_PRIVILEGE,
      sids.length,
      sids.length ? table : null,
      0,
      null,
      0,
      null,
      cell,
    ),
    "CreateRestrictedToken",
  );
  void sids; // the SIDs stay referenced until the call has returned
  return new Token(cell[0] ?? 0n, "restricted token");
}

/** Lowers (never raises) a token's integrity level (`SetTokenInformation(TokenIntegrityLevel)`). */
export function setTokenIntegrity(token: NtHandle<"token">, level: "Low" | "Medium"): void {
  const sid = sidFromString(
    level === "Low" ? WellKnownSid.LowIntegrity : WellKnownSid.MediumIntegrity,
  );
  const label = new Uint8Array(TML.size);
  const dv = new DataView(label.buffer);
  dv.setBigUint64(TML.offsets.Label + SAA.offsets.Sid, addressOf(sid), true);
  dv.setUint32(TML.offsets.Label + SAA.offsets.Attributes, SE_GROUP_INTEGRITY, true);
  checkWin32(
    advapi32().SetTokenInformation(
      token.unsafePointer,
      TokenInformationClass.TokenIntegrityLevel,
      label,
      label.byteLength + sid.byteLength,
    ),
    "SetTokenInformation",
    `TokenIntegrityLevel ${level}`,
  );
  void sid;
}

/** A process that did not lend its token to {@link impersonateSystem}, and why. */
export interface SystemTokenAttempt {
  /** The process id. */
  pid: number;
  /** Its image. */
  image: string;
  /** Why its token could not be used. */
  error: string;
}

/** What {@link impersonateSystem} did, step by step. */
export interface SystemImpersonation extends Disposable {
  /** The process whose token was borrowed. */
  fromPid: number;
  /** Its image. */
  fromImage: string;
  /** The processes tried before it, each with why it did not lend its token. */
  refused: SystemTokenAttempt[];
  /** The token's user (S-1-5-18 for SYSTEM). */
  user: string;
  /** Whether SeTcbPrivilege is now enabled in the thread's token. */
  tcbEnabled: boolean;
}

/** A failed step of {@link impersonateSystem}: which step, the cause, what to do. */
export class StepError extends Error {
  /** Always `"StepError"`. */
  override name = "StepError";
}

function step<T>(what: string, fn: () => T, hint: string): T {
  try {
    return fn();
  } catch (e) {
    throw new StepError(`${what} failed: ${e instanceof Error ? e.message : String(e)}; ${hint}`, {
      cause: e,
    });
  }
}

/** The SID of LocalSystem. */
const SYSTEM_SID = "S-1-5-18";

/**
 * Where {@link impersonateSystem} looks for a SYSTEM token, in order: winlogon.exe (its token's
 * DACL lets administrators duplicate it), then the other well-known SYSTEM processes, then every
 * other process (one whose token is SYSTEM's and opens for us will do). The idle process (pid 0)
 * is left out.
 */
export function systemTokenCandidates(
  processes: readonly { pid: number; image: string }[],
): { pid: number; image: string }[] {
  const preferred = ["winlogon.exe", "wininit.exe", "services.exe", "lsass.exe", "smss.exe"];
  const rank = (image: string) => {
    const i = preferred.indexOf(image.toLowerCase());
    return i < 0 ? preferred.length : i;
  };
  return processes
    .filter((p) => p.pid !== 0)
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p.image) - rank(b.p.image) || a.i - b.i)
    .map(({ p }) => ({ pid: p.pid, image: p.image }));
}

/**
 * Opens a SYSTEM token to duplicate: the first candidate whose process opens with
 * `PROCESS_QUERY_LIMITED_INFORMATION`, whose token opens with `TOKEN_DUPLICATE | TOKEN_QUERY`, is
 * SYSTEM's (S-1-5-18) and holds SeTcbPrivilege. Throws naming every candidate and why it failed.
 */
function openSystemToken(
  candidates: { pid: number; image: string }[],
  refused: SystemTokenAttempt[],
): { token: Token; pid: number; image: string } {
  for (const c of candidates) {
    try {
      using process = openProcess(c.pid, ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION);
      const token = openProcessToken(
        TokenAccess.TOKEN_DUPLICATE | TokenAccess.TOKEN_QUERY,
        process,
      );
      try {
        const user = tokenUserSid(token);
        if (user !== SYSTEM_SID) throw new Error(`its token's user is ${user}, not SYSTEM`);
        if (!tokenPrivileges(token).some((p) => p.name === "SeTcbPrivilege")) {
          throw new Error("its SYSTEM token does not hold SeTcbPrivilege");
        }
        return { token, pid: c.pid, image: c.image };
      } catch (e) {
        token.close();
        throw e;
      }
    } catch (e) {
      refused.push({ ...c, error: e instanceof Error ? e.message : String(e) });
    }
  }
  const tried = refused.slice(0, 4).map((r) => `${r.image} (pid ${r.pid}): ${r.error}`);
  throw new Error(
    refused.length === 0
      ? "no process to try"
      : `none of ${refused.length} processes lent a SYSTEM token (${tried.join("; ")}${
        refused.length > 4 ? "; ..." : ""
      })`,
  );
}

/** The calling thread's impersonation token (`NtOpenThreadToken`), or null when it has none. */
function threadTokenOrNull(): Token | null {
  const cell = handleCell();
  const status = ntdll().NtOpenThreadToken(
    currentThread(),
    TokenAccess.TOKEN_IMPERSONATE | TokenAccess.TOKEN_QUERY,
    1, // OpenAsSelf: our own identity opens it, not the one it grants
    cell,
  );
  if (toUnsigned(status) === NTSTATUS.STATUS_NO_TOKEN) return null;
  if (status < 0) throw new NtError("NtOpenThreadToken", status, "ntstatus", "the thread's token");
  return new Token(cell[0] ?? 0n, "thread token");
}

/**
 * Makes the **calling thread** run as SYSTEM with SeTcbPrivilege enabled: enables SeDebugPrivilege
 * in our token, borrows the token of a SYSTEM process (winlogon.exe first, then the others:
 * {@link systemTokenCandidates}), duplicates it for impersonation, sets it on this thread
 * (`SetThreadToken`) and enables SeTcbPrivilege in it. Each step that fails throws a
 * {@link StepError} naming the step; the result says which process lent its token. Disposing
 * puts back the token the thread had before (none: it reverts to itself).
 *
 * Thread-bound: call it on the thread that needs SYSTEM (the server's Worker), never nonblocking.
 *
 * @param options `candidates`: the processes to try, in order (a test seam)
 * @returns what was done; dispose it to revert
 * @example Where SYSTEM cannot be borrowed, the failing step is named (Windows only: not run)
 * ```ts ignore
 * import { impersonateSystem } from "@deno-lpc/deno-lpc";
 * import { assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * assertThrows(() => impersonateSystem({ candidates: () => [] }), Error, "step ");
 * ```
 */
export function impersonateSystem(
  options: {
    /** The processes to try, in order (default: {@link systemTokenCandidates} of every process). */
    candidates?: () => { pid: number; image: string }[];
  } = {},
): SystemImpersonation {
  const candidates = options.candidates ?? (() => systemTokenCandidates(listProcesses()));
  const SE_DEBUG = PRIVILEGE_LUIDS.SeDebugPrivilege!;
  const SE_TCB = PRIVILEGE_LUIDS.SeTcbPrivilege!;
  const was = new Uint8Array(1);
  step("step 1, enabling SeDebugPrivilege", () => {
    const status = ntdll().RtlAdjustPrivilege(SE_DEBUG, 1, 0, was);
    if (status < 0) throw new NtError("RtlAdjustPrivilege", status, "ntstatus", "SeDebugPrivilege");
  }, "run from an elevated (Administrator) prompt");
  const list = step("step 2, listing the processes that may lend a SYSTEM token", () => {
    const l = candidates();
    if (l.length === 0) throw new Error("no process to borrow a token from");
    return l;
  }, "SYSTEM's token is borrowed from a process that runs as SYSTEM (winlogon.exe first)");
  const refused: SystemTokenAttempt[] = [];
  const lender = step(
    `step 3, opening a SYSTEM process's token (${list[0]!.image} first)`,
    () => openSystemToken(list, refused),
    "an elevated administrator can duplicate the token of winlogon.exe in an interactive session",
  );
  let dup: Token;
  try {
    dup = step(
      `step 4, duplicating the token of ${lender.image} for impersonation`,
      () =>
        duplicateToken(lender.token, {
          primary: false,
          level: "Impersonation",
          access: TokenAccess.TOKEN_IMPERSONATE | TokenAccess.TOKEN_QUERY |
            TokenAccess.TOKEN_ADJUST_PRIVILEGES,
        }),
      "the token may be protected on this Windows build",
    );
  } finally {
    lender.token.close();
  }
  using _dup = dup;
  const user = tokenUserSid(dup);
  const previous = step(
    "step 5, saving the thread's own token",
    threadTokenOrNull,
    "NtOpenThreadToken on this thread must succeed or say STATUS_NO_TOKEN",
  );
  const restore = () => {
    try {
      // If the saved token cannot be put back, at least SYSTEM's is dropped.
      if (!previous || !advapi32().SetThreadToken(null, previous.unsafePointer)) {
        advapi32().RevertToSelf();
      }
    } finally {
      previous?.close();
    }
  };
  try {
    step("step 6, impersonating it on this thread (SetThreadToken)", () => {
      checkWin32(advapi32().SetThreadToken(null, dup.unsafePointer), "SetThreadToken");
    }, "SeImpersonatePrivilege is needed (administrators hold it)");
  } catch (e) {
    previous?.close();
    throw e;
  }
  try {
    step("step 7, enabling SeTcbPrivilege in the SYSTEM token", () => {
      const status = ntdll().RtlAdjustPrivilege(SE_TCB, 1, 1, was); // Client = TRUE: the thread's token
      if (status < 0) {
        throw new NtError(
          "RtlAdjustPrivilege",
          status,
          "ntstatus",
          "SeTcbPrivilege (thread token)",
        );
      }
    }, "the borrowed token must be SYSTEM's, which holds SeTcbPrivilege");
  } catch (e) {
    restore();
    throw e;
  }
  return {
    fromPid: lender.pid,
    fromImage: lender.image,
    refused,
    user,
    tcbEnabled: true,
    [Symbol.dispose]: restore,
  };
}

/**
 * Whether the calling thread has an impersonation token now (`NtOpenThreadToken`): false after
 * {@link impersonateSystem}'s result was disposed on a thread that had none before.
 */
export function threadIsImpersonating(): boolean {
  using t = threadTokenOrNull() ?? undefined;
  return t !== undefined;
}

/**
 * A token handle with what an experiment asks of a token: who it is, its groups, integrity,
 * elevation and privileges, and restricted copies. A `Token` is an `NtHandle<"token">`, so it goes
 * wherever a token handle is wanted (`ChildProcess.spawnCaptured({ token })`) and nowhere else.
 *
 * @example Our own identity (Windows only: not run here, the calls need advapi32)
 * ```ts ignore
 * import { Token } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertMatch } from "jsr:@std/assert@^1.0.19";
 *
 * using me = Token.open();
 * assertMatch(me.user(), /^S-1-5-/);
 * assertEquals(me.kind, "token");
 * using low = me.restricted({ removePrivileges: true });
 * low.setIntegrity("Low");
 * assertEquals(low.integrity().name, "Low");
 * ```
 */
export class Token extends NtHandle<"token"> {
  /**
   * Adopts a raw token handle (the new `Token` closes it).
   *
   * @param value the raw handle value
   * @param what a short description for messages
   * @param closer how to close it (default `NtClose`)
   */
  constructor(value: bigint, what: string, closer?: HandleCloser) {
    super("token", value, what, closer);
  }

  /**
   * Opens a process's token (`OpenProcessToken`).
   *
   * @param access the access wanted (default `TOKEN_QUERY`; see `TokenAccess` in `./raw`)
   * @param process whose token (default: this process)
   */
  static open(access: number = TokenAccess.TOKEN_QUERY, process?: NtHandle<"process">): Token {
    return openProcessToken(access, process);
  }

  /**
   * The calling thread's impersonation token (`NtOpenThreadToken`, opened as self), or
   * `undefined` when the thread is not impersonating. Thread-bound.
   */
  static openThread(): Token | undefined {
    return threadTokenOrNull() ?? undefined;
  }

  /** The user SID as a string (`TokenUser`), e.g. `S-1-5-18` for SYSTEM. */
  user(): string {
    return tokenUserSid(this);
  }

  /** The groups with their attributes (`TokenGroups`). */
  groups(): { sid: string; enabled: boolean; denyOnly: boolean }[] {
    return tokenGroups(this);
  }

  /** The integrity level: RID, name (`Low`, `Medium`, `High`, `System`...) and SID. */
  integrity(): { rid: number; name: string; sid: string } {
    return tokenIntegrity(this);
  }

  /** Whether the token is elevated (`TokenElevation`). */
  elevated(): boolean {
    return tokenIsElevated(this);
  }

  /** The privileges with whether each is enabled (`TokenPrivileges`). */
  privileges(): { name: string; luid: bigint; enabled: boolean }[] {
    return tokenPrivileges(this);
  }

  /**
   * A restricted copy (`CreateRestrictedToken`): the given SIDs deny-only and, by default, every
   * privilege removed. The copy needs no extra privilege to start a process with.
   *
   * @param options `denyOnly`: SIDs to make deny-only; `removePrivileges` (default true)
   */
  restricted(options: { denyOnly?: string[]; removePrivileges?: boolean } = {}): Token {
    return createRestrictedToken(this, options);
  }

  /**
   * A primary or impersonation copy (`DuplicateTokenEx`).
   *
   * @param options `access` (default all), `level` (default `Impersonation`), `primary` (default true)
   */
  duplicate(
    options: { access?: number; level?: ImpersonationLevelName; primary?: boolean } = {},
  ): Token {
    return duplicateToken(this, options);
  }

  /** Lowers (never raises) the integrity level (`SetTokenInformation(TokenIntegrityLevel)`). */
  setIntegrity(level: "Low" | "Medium"): void {
    setTokenIntegrity(this, level);
  }
}
