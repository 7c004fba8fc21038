/**
 * Experiment 1's server, confined to its root (nt-semantics.md E13) in three steps: the path's
 * text ({@link validateRelativePath}: relative, no `..`, no `:`), an open relative to a handle on
 * the root with `OBJ_DONT_REPARSE` (no junction or symbolic link is followed), and the final path
 * of what it opened ({@link isUnderRoot}); and {@link serveRead}, which answers a READ request
 * with those checks, a refusal naming the check that refused.
 *
 * @module
 */

import { NtError } from "../../mod.ts";
import { NTSTATUS } from "../../raw.ts";
import {
  decodeReadRequest,
  encodeReadReply,
  MAX_PATH_CHARS,
  MAX_READ_LENGTH,
  type ReadRequest,
  Refusal,
  type StageName,
} from "./exp1_protocol.ts";

/** Whether a name holds a character no NTFS name may hold: `< > " | ? *` or a control character. */
function hasBadNameChar(name: string): boolean {
  return [...name].some((c) => c.charCodeAt(0) < 0x20 || '<>"|?*'.includes(c));
}

/**
 * Checks the text of a requested path and returns it as a relative NT name (components joined by
 * `\`; `/` is accepted as a separator), or throws {@link Refusal} (stage `path`): empty, over-long
 * or NUL-containing; device, UNC and NT-namespace syntax (`\\?\`, `\\.\`, `\??\`, `\\server`);
 * absolute or rooted (`C:\x`, `C:x`, `\x`); any `:` (alternate data streams); `..`, `.` or empty
 * components; wildcard and other characters no file name may hold. This is the first of three
 * checks: the relative open with `OBJ_DONT_REPARSE` and the final-path check follow, because text
 * cannot see a junction.
 */
export function validateRelativePath(requested: string): string {
  const refuse = (status: number, why: string): never => {
    throw new Refusal(status, why, "path");
  };
  if (requested.length === 0 || requested.length > MAX_PATH_CHARS || requested.includes("\0")) {
    refuse(NTSTATUS.STATUS_OBJECT_NAME_INVALID, "empty, over-long or NUL-containing path");
  }
  if (/^[\\/]{2}|^\\\?\?\\/.test(requested)) {
    refuse(
      NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD,
      "device, UNC and NT-namespace paths are refused",
    );
  }
  if (/^[A-Za-z]:/.test(requested) || /^[\\/]/.test(requested)) {
    refuse(
      NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD,
      "absolute paths are refused: name the file relative to the server's root",
    );
  }
  if (requested.includes(":")) {
    refuse(
      NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD,
      "alternate data streams and stray ':' are refused",
    );
  }
  const parts = requested.split(/[\\/]/);
  if (parts.some((part) => part === "..")) {
    refuse(NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD, "'..' segments are refused");
  }
  if (parts.some((part) => part === "" || part === ".")) {
    refuse(NTSTATUS.STATUS_OBJECT_NAME_INVALID, "empty and '.' segments are refused");
  }
  const bad = parts.find(hasBadNameChar);
  if (bad !== undefined) {
    refuse(
      NTSTATUS.STATUS_OBJECT_NAME_INVALID,
      `${JSON.stringify(bad)} holds a character no file name may hold`,
    );
  }
  return parts.join("\\");
}

/** A final path without its `\\?\` (or `\\?\UNC\` → `\\`) prefix and trailing separators, upper-cased. */
export function comparablePath(finalPath: string): string {
  let p = finalPath.replaceAll("/", "\\");
  if (/^\\\\\?\\UNC\\/i.test(p)) p = `\\\\${p.slice(8)}`;
  else if (p.startsWith("\\\\?\\")) p = p.slice(4);
  return p.replace(/\\+$/, "").toUpperCase();
}

/**
 * Whether `fileFinalPath` is `rootFinalPath` or lies below it. Both are final paths
 * (`GetFinalPathNameByHandleW`): compared without case (as NTFS does by default), without the
 * `\\?\` prefix and trailing separators, on whole components (so `C:\lab2\x` is not under
 * `C:\lab`).
 */
export function isUnderRoot(rootFinalPath: string, fileFinalPath: string): boolean {
  const root = comparablePath(rootFinalPath);
  const file = comparablePath(fileFinalPath);
  if (root === "") return false;
  return file === root || file.startsWith(`${root}\\`);
}

/** A file the server opened. */
export interface OpenedFile extends Disposable {
  /** Its final path (after every junction and link). */
  finalPath(): string;
  /** Reads from it (the access was checked at the open). */
  read(offset: bigint, length: number): Uint8Array;
}

/** What the server's READ handler needs from the system. */
export interface ReadContext {
  /** The final path of the root (computed as the server). */
  rootFinalPath(): string;
  /**
   * Opens a validated relative name below the root with `OBJ_DONT_REPARSE`, as whoever the
   * calling thread is; throws `NtError` (e.g. `STATUS_ACCESS_DENIED`,
   * `STATUS_REPARSE_POINT_ENCOUNTERED`).
   */
  open(relative: string): OpenedFile;
  /** Runs `fn` impersonating the client, when the server is in safe mode. */
  impersonate?: <T>(fn: () => T) => T;
}

/** A thrown error as a reply's status and reason. */
export function failure(e: unknown): { status: number; reason: string } {
  if (e instanceof NtError) return { status: e.code, reason: `${e.call}: ${e.symbol ?? e.hex}` };
  return {
    status: NTSTATUS.STATUS_UNSUCCESSFUL,
    reason: e instanceof Error ? e.message : String(e),
  };
}

/** What {@link readConfined} came to: the bytes, or the status, reason and stage of a refusal. */
export type ConfinedRead =
  | { ok: true; bytes: Uint8Array; impersonated: boolean }
  | { ok: false; status: number; reason: string; stage: StageName; impersonated: boolean };

/**
 * Opens a validated relative name (impersonating in safe mode: only the open), checks its final
 * path against the root's, and reads `length` bytes at `offset`. Never throws.
 */
export function readConfined(
  relative: string,
  offset: bigint,
  length: number,
  ctx: ReadContext,
): ConfinedRead {
  const impersonated = ctx.impersonate !== undefined;
  const no = (status: number, reason: string, stage: StageName): ConfinedRead => ({
    ok: false,
    status,
    reason,
    stage,
    impersonated,
  });
  let file: OpenedFile | undefined;
  let entered = false;
  let openError: unknown;
  const open = () => {
    entered = true;
    try {
      file = ctx.open(relative);
    } catch (e) {
      openError = e;
    }
  };
  try {
    if (ctx.impersonate) ctx.impersonate(open);
    else open();
  } catch (e) {
    // Impersonating (or reverting) failed: not the open's answer.
    file?.[Symbol.dispose]();
    const f = failure(e);
    return no(
      f.status,
      `${entered ? "reverting" : "impersonating"} failed: ${f.reason}`,
      "impersonate",
    );
  }
  if (file === undefined) {
    const f = failure(openError);
    return no(f.status, f.reason, "open");
  }
  using opened = file;
  let root: string;
  let final: string;
  try {
    root = ctx.rootFinalPath();
    final = opened.finalPath();
  } catch (e) {
    const f = failure(e);
    return no(f.status, f.reason, "finalPath");
  }
  if (!isUnderRoot(root, final)) {
    return no(
      NTSTATUS.STATUS_ACCESS_DENIED,
      `opened ${final}, outside the root ${root}`,
      "finalPath",
    );
  }
  try {
    return { ok: true, bytes: opened.read(offset, length), impersonated };
  } catch (e) {
    const f = failure(e);
    return no(f.status, f.reason, "read");
  }
}

/**
 * The server side: a request's bytes in, the reply's bytes out. Never throws. Only the open runs
 * impersonated (in safe mode); the final-path check and the read run as the server, on the
 * handle the open returned.
 */
export function serveRead(request: Uint8Array, ctx: ReadContext): Uint8Array<ArrayBuffer> {
  let req: ReadRequest;
  let relative: string;
  try {
    req = decodeReadRequest(request);
    relative = validateRelativePath(req.path);
  } catch (e) {
    if (e instanceof Refusal) return encodeReadReply(e.status, undefined, e.message, e.stage);
    return encodeReadReply(NTSTATUS.STATUS_INVALID_PARAMETER, undefined, String(e));
  }
  const r = readConfined(relative, req.offset, req.length, ctx);
  if (!r.ok) return encodeReadReply(r.status, undefined, r.reason, r.stage, r.impersonated);
  return encodeReadReply(
    NTSTATUS.STATUS_SUCCESS,
    r.bytes.subarray(0, MAX_READ_LENGTH),
    "",
    "served",
    r.impersonated,
  );
}
