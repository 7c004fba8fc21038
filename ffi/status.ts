/**
 * NTSTATUS and Win32 error codes: names, hints, and the one error type the toolkit throws when a
 * Windows call fails.
 *
 * Values are from mingw-w64 `ntstatus.h` / `winerror.h` (checked against those headers by
 * `tests/ffi/status_test.ts`).
 *
 * @module
 */

/** Symbolic NTSTATUS names and their unsigned 32-bit values. */
export const NTSTATUS = {
  STATUS_SUCCESS: 0x00000000,
  STATUS_TIMEOUT: 0x00000102,
  STATUS_PENDING: 0x00000103,
  STATUS_MORE_ENTRIES: 0x00000105,
  STATUS_NOT_ALL_ASSIGNED: 0x00000106,
  STATUS_OBJECT_NAME_EXISTS: 0x40000000,
  STATUS_WX86_BREAKPOINT: 0x4000001f,
  DBG_EXCEPTION_HANDLED: 0x00010001,
  DBG_CONTINUE: 0x00010002,
  DBG_REPLY_LATER: 0x40010001,
  DBG_TERMINATE_PROCESS: 0x40010004,
  STATUS_DATATYPE_MISALIGNMENT: 0x80000002,
  STATUS_BREAKPOINT: 0x80000003,
  STATUS_BUFFER_OVERFLOW: 0x80000005,
  STATUS_NO_MORE_ENTRIES: 0x8000001a,
  DBG_EXCEPTION_NOT_HANDLED: 0x80010001,
  STATUS_UNSUCCESSFUL: 0xc0000001,
  STATUS_NOT_IMPLEMENTED: 0xc0000002,
  STATUS_INVALID_INFO_CLASS: 0xc0000003,
  STATUS_INFO_LENGTH_MISMATCH: 0xc0000004,
  STATUS_ACCESS_VIOLATION: 0xc0000005,
  STATUS_INVALID_HANDLE: 0xc0000008,
  STATUS_INVALID_CID: 0xc000000b,
  STATUS_INVALID_PARAMETER: 0xc000000d,
  STATUS_NO_SUCH_FILE: 0xc000000f,
  STATUS_INVALID_DEVICE_REQUEST: 0xc0000010,
  STATUS_END_OF_FILE: 0xc0000011,
  STATUS_NO_MEMORY: 0xc0000017,
  STATUS_INVALID_VIEW_SIZE: 0xc000001f,
  STATUS_ACCESS_DENIED: 0xc0000022,
  STATUS_BUFFER_TOO_SMALL: 0xc0000023,
  STATUS_OBJECT_TYPE_MISMATCH: 0xc0000024,
  STATUS_NONCONTINUABLE_EXCEPTION: 0xc0000025,
  STATUS_INVALID_PORT_ATTRIBUTES: 0xc000002e,
  STATUS_PORT_MESSAGE_TOO_LONG: 0xc000002f,
  STATUS_OBJECT_NAME_INVALID: 0xc0000033,
  STATUS_OBJECT_NAME_NOT_FOUND: 0xc0000034,
  STATUS_OBJECT_NAME_COLLISION: 0xc0000035,
  STATUS_PORT_DISCONNECTED: 0xc0000037,
  STATUS_OBJECT_PATH_INVALID: 0xc0000039,
  STATUS_OBJECT_PATH_NOT_FOUND: 0xc000003a,
  STATUS_OBJECT_PATH_SYNTAX_BAD: 0xc000003b,
  STATUS_SECTION_TOO_BIG: 0xc0000040,
  STATUS_PORT_CONNECTION_REFUSED: 0xc0000041,
  STATUS_INVALID_PORT_HANDLE: 0xc0000042,
  STATUS_SHARING_VIOLATION: 0xc0000043,
  STATUS_QUOTA_EXCEEDED: 0xc0000044,
  STATUS_REVISION_MISMATCH: 0xc0000059,
  STATUS_PORT_ALREADY_SET: 0xc0000048,
  STATUS_THREAD_IS_TERMINATING: 0xc000004b,
  STATUS_PRIVILEGE_NOT_HELD: 0xc0000061,
  STATUS_NO_TOKEN: 0xc000007c,
  STATUS_INSUFFICIENT_RESOURCES: 0xc000009a,
  STATUS_BAD_IMPERSONATION_LEVEL: 0xc00000a5,
  STATUS_CANT_OPEN_ANONYMOUS: 0xc00000a6,
  STATUS_FILE_IS_A_DIRECTORY: 0xc00000ba,
  STATUS_NOT_SUPPORTED: 0xc00000bb,
  STATUS_INVALID_PARAMETER_2: 0xc00000f0,
  STATUS_INVALID_PARAMETER_3: 0xc00000f1,
  STATUS_INVALID_PARAMETER_4: 0xc00000f2,
  STATUS_NOT_A_DIRECTORY: 0xc0000103,
  STATUS_PROCESS_IS_TERMINATING: 0xc000010a,
  STATUS_CANCELLED: 0xc0000120,
  STATUS_CONTROL_C_EXIT: 0xc000013a,
  STATUS_INVALID_CONNECTION: 0xc0000140,
  STATUS_INVALID_ADDRESS: 0xc0000141,
  STATUS_PIPE_BROKEN: 0xc000014b,
  STATUS_REPLY_MESSAGE_MISMATCH: 0xc000021f,
  STATUS_NOT_FOUND: 0xc0000225,
  STATUS_LPC_REPLY_LOST: 0xc0000253,
  STATUS_NOT_A_REPARSE_POINT: 0xc0000275,
  STATUS_IO_REPARSE_DATA_INVALID: 0xc0000278,
  STATUS_SERVER_SID_MISMATCH: 0xc00002a0,
  STATUS_OBJECTID_NOT_FOUND: 0xc00002f0,
  STATUS_PORT_NOT_SET: 0xc0000353,
  STATUS_DEBUGGER_INACTIVE: 0xc0000354,
  STATUS_REPARSE_POINT_ENCOUNTERED: 0xc000050b,
  STATUS_PORT_CLOSED: 0xc0000700,
  STATUS_MESSAGE_LOST: 0xc0000701,
  STATUS_INVALID_MESSAGE: 0xc0000702,
  STATUS_REQUEST_CANCELED: 0xc0000703,
  STATUS_LPC_RECEIVE_BUFFER_EXPECTED: 0xc0000705,
  STATUS_LPC_REQUESTS_NOT_ALLOWED: 0xc0000707,
  STATUS_PROCESS_IS_PROTECTED: 0xc0000712,
} as const;

/** A symbolic NTSTATUS name known to the toolkit. */
export type NtStatusName = keyof typeof NTSTATUS;

/** Symbolic Win32 error names (`GetLastError`) and their values. */
export const WIN32_ERRORS = {
  ERROR_SUCCESS: 0,
  ERROR_INVALID_FUNCTION: 1,
  ERROR_FILE_NOT_FOUND: 2,
  ERROR_PATH_NOT_FOUND: 3,
  ERROR_ACCESS_DENIED: 5,
  ERROR_INVALID_HANDLE: 6,
  ERROR_NOT_ENOUGH_MEMORY: 8,
  ERROR_BAD_LENGTH: 24,
  ERROR_HANDLE_EOF: 38,
  ERROR_SHARING_VIOLATION: 32,
  ERROR_NOT_SUPPORTED: 50,
  ERROR_INVALID_PARAMETER: 87,
  ERROR_CALL_NOT_IMPLEMENTED: 120,
  ERROR_SEM_TIMEOUT: 121,
  ERROR_INSUFFICIENT_BUFFER: 122,
  ERROR_BROKEN_PIPE: 109,
  ERROR_ALREADY_EXISTS: 183,
  ERROR_BAD_EXE_FORMAT: 193,
  WAIT_TIMEOUT: 258,
  ERROR_PARTIAL_COPY: 299,
  ERROR_NO_TOKEN: 1008,
  ERROR_NOT_FOUND: 1168,
  ERROR_NOT_ALL_ASSIGNED: 1300,
  ERROR_PRIVILEGE_NOT_HELD: 1314,
  ERROR_NONE_MAPPED: 1332,
  ERROR_INVALID_SID: 1337,
  ERROR_INVALID_SECURITY_DESCR: 1338,
  ERROR_BAD_TOKEN_TYPE: 1349,
} as const;

/** A symbolic Win32 error name known to the toolkit. */
export type Win32ErrorName = keyof typeof WIN32_ERRORS;

const NT_NAMES = new Map<number, string>(
  Object.entries(NTSTATUS).map(([name, value]) => [value, name]),
);
const WIN32_NAMES = new Map<number, string>(
  Object.entries(WIN32_ERRORS).map(([name, value]) => [value, name]),
);

const NOT_ON_THIS_SYSTEM =
  "Wine or a Windows without this call: real LPC needs Windows (run the lab on Windows x64)";
const ELEVATE = "run from an elevated (Administrator) prompt";

const NT_HINTS: Partial<Record<NtStatusName, string>> = {
  STATUS_INVALID_ADDRESS:
    "nothing is mapped at that address (ALPC: no view of this port is there; release a delivered view on the port it arrived on)",
  STATUS_MESSAGE_LOST:
    "the request was cancelled before its reply came (the other side closed or disconnected)",
  STATUS_REQUEST_CANCELED:
    "the request this reply answers was cancelled (its sender gave up or died)",
  STATUS_LPC_RECEIVE_BUFFER_EXPECTED:
    "a synchronous ALPC request needs a receive buffer (and its length) for the reply",
  STATUS_INVALID_CONNECTION: "the port is not connected (yet, or any more)",
  STATUS_ACCESS_DENIED:
    "the caller's token lacks the access this object's DACL requires; check the security descriptor, or " +
    ELEVATE,
  STATUS_PRIVILEGE_NOT_HELD:
    "the privilege is not held or not enabled; an elevated administrator lacks SeTcbPrivilege (run the call as SYSTEM)",
  STATUS_NOT_IMPLEMENTED: NOT_ON_THIS_SYSTEM,
  STATUS_OBJECT_NAME_NOT_FOUND:
    "no object by that name; check the path (rooted at '\\', case-insensitive) and that the server is running",
  STATUS_OBJECT_PATH_NOT_FOUND: "a directory on that path does not exist",
  STATUS_OBJECT_NAME_COLLISION:
    "an object by that name exists already (a server still running, or one that did not clean up)",
  STATUS_OBJECT_NAME_INVALID: "object names are absolute NT paths such as \\RPC Control\\Name",
  STATUS_PORT_CONNECTION_REFUSED:
    "the server refused the connection (it answered NtAcceptConnectPort with FALSE)",
  STATUS_PORT_ALREADY_SET:
    "the process already has an exception (or debug) port; XP/2003 allow one per process, set by csrss",
  STATUS_PORT_DISCONNECTED: "the other side closed the port",
  STATUS_PORT_MESSAGE_TOO_LONG:
    "the message exceeds the port's MaxMessageLength (the port's own limit; 648 bytes of total length at most for a legacy port on x64)",
  STATUS_REPLY_MESSAGE_MISMATCH:
    "impersonation needs the MessageId (and CallbackId) of a request this port received and has not answered yet",
  STATUS_LPC_REPLY_LOST: "the server went away before it replied",
  STATUS_INVALID_MESSAGE:
    "no message with that MessageId and CallbackId is waiting: a reply must echo both from the request it answers",
  STATUS_INFO_LENGTH_MISMATCH:
    "the buffer length does not match what this information class expects",
  STATUS_INVALID_HANDLE: "the handle is closed or was never valid in this process",
  STATUS_INVALID_PARAMETER: "a parameter or struct Length field is wrong for this Windows build",
  STATUS_NO_TOKEN: "the thread is not impersonating; there is no thread token to adjust",
  STATUS_BAD_IMPERSONATION_LEVEL:
    "the client's SECURITY_QUALITY_OF_SERVICE does not allow this impersonation level",
  STATUS_SHARING_VIOLATION: "another handle holds the file open without sharing",
  STATUS_PROCESS_IS_PROTECTED: "protected processes cannot be opened with this access",
  STATUS_DEBUGGER_INACTIVE:
    "the debugger ended while the process was still attached (kill-on-exit)",
};

const WIN32_HINTS: Partial<Record<Win32ErrorName, string>> = {
  ERROR_ACCESS_DENIED: "the token lacks the access this object requires; " + ELEVATE,
  ERROR_PRIVILEGE_NOT_HELD: "the privilege is not held by the token; " + ELEVATE,
  ERROR_NOT_ALL_ASSIGNED: "the token does not hold that privilege at all; " + ELEVATE,
  ERROR_CALL_NOT_IMPLEMENTED: NOT_ON_THIS_SYSTEM,
  ERROR_FILE_NOT_FOUND: "no such file; check the path",
  ERROR_INVALID_HANDLE: "the handle is closed or was never valid in this process",
  ERROR_NO_TOKEN: "the thread is not impersonating",
};

/** Converts an NTSTATUS as returned by an `"i32"` FFI result (or any number) to unsigned 32 bits. */
export function toUnsigned(status: number): number {
  return status >>> 0;
}

/** `NT_SUCCESS(status)`: true for success and informational codes (severity 0 or 1). */
export function ntSuccess(status: number): boolean {
  return (status | 0) >= 0;
}

/**
 * Formats a 32-bit code as `0xC0000022`.
 *
 * @example
 * ```ts
 * import { formatHex } from "./status.ts";
 * formatHex(-1073741790); // "0xC0000022"
 * ```
 */
export function formatHex(code: number): string {
  return "0x" + toUnsigned(code).toString(16).toUpperCase().padStart(8, "0");
}

/**
 * The symbolic name of an NTSTATUS, e.g. `STATUS_ACCESS_DENIED`, or `undefined` if unknown.
 *
 * @example
 * ```ts
 * import { statusName } from "./status.ts";
 * statusName(0xC0000034); // "STATUS_OBJECT_NAME_NOT_FOUND"
 * ```
 */
export function statusName(status: number): string | undefined {
  return NT_NAMES.get(toUnsigned(status));
}

/** The symbolic name of a Win32 error code, or `undefined` if unknown. */
export function win32ErrorName(code: number): string | undefined {
  return WIN32_NAMES.get(toUnsigned(code));
}

/** `NAME (0x........)` for an NTSTATUS, or just the hex when the name is unknown. */
export function describeStatus(status: number): string {
  const name = statusName(status);
  return name ? `${name} (${formatHex(status)})` : formatHex(status);
}

/** Which numbering a {@link NtError} code belongs to. */
export type ErrorKind = "ntstatus" | "win32";

/**
 * The error every failing Windows call in the toolkit throws: the call, the code in hex, its
 * symbolic name and, for the common ones, what to do.
 *
 * @example Handle a missing object
 * ```ts
 * import { NtError } from "@deno-lpc/deno-lpc";
 * import { NTSTATUS } from "@deno-lpc/deno-lpc/raw";
 * import { assert, assertEquals, assertStringIncludes } from "jsr:@std/assert@^1.0.19";
 *
 * const err = new NtError("NtOpenDirectoryObject", NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND);
 * assertEquals(err.symbol, "STATUS_OBJECT_NAME_NOT_FOUND");
 * assertStringIncludes(err.message, "NtOpenDirectoryObject failed: STATUS_OBJECT_NAME_NOT_FOUND");
 * assert(err.is("STATUS_OBJECT_NAME_NOT_FOUND"));
 * ```
 */
export class NtError extends Error {
  /** Always `"NtError"`. */
  override name = "NtError";
  /** The Windows function that failed, e.g. `NtConnectPort`. */
  readonly call: string;
  /** `"ntstatus"` for an NTSTATUS, `"win32"` for a `GetLastError` code. */
  readonly kind: ErrorKind;
  /** The code as an unsigned 32-bit number. */
  readonly code: number;
  /** The code as `0x` and eight hex digits. */
  readonly hex: string;
  /** The symbolic name (`STATUS_*`, `DBG_*` or `ERROR_*`), if known. */
  readonly symbol: string | undefined;
  /** What to do about it, for the common codes. */
  readonly hint: string | undefined;
  /** The words given after the call name (e.g. the object path), if any. */
  readonly context: string | undefined;

  /**
   * Builds the error and its one-line message.
   *
   * @param call the Windows function that failed
   * @param code the NTSTATUS or Win32 error code
   * @param kind which numbering `code` belongs to (default `"ntstatus"`)
   * @param context extra words placed after the call name (e.g. the object path)
   */
  constructor(call: string, code: number, kind: ErrorKind = "ntstatus", context?: string) {
    const unsigned = toUnsigned(code);
    const symbol = kind === "ntstatus" ? statusName(unsigned) : win32ErrorName(unsigned);
    const hint = symbol === undefined
      ? undefined
      : kind === "ntstatus"
      ? NT_HINTS[symbol as NtStatusName]
      : WIN32_HINTS[symbol as Win32ErrorName];
    const hex = kind === "ntstatus" ? formatHex(unsigned) : String(unsigned);
    const what = symbol ? `${symbol} (${hex})` : kind === "ntstatus" ? hex : `Win32 error ${hex}`;
    super(
      `${call}${context ? ` ${context}` : ""} failed: ${what}${hint ? `: ${hint}` : ""}`,
    );
    this.call = call;
    this.kind = kind;
    this.code = unsigned;
    this.hex = formatHex(unsigned);
    this.symbol = symbol;
    this.hint = hint;
    this.context = context;
  }

  /** True if this error carries the given NTSTATUS / Win32 name. */
  is(symbol: NtStatusName | Win32ErrorName): boolean {
    return this.symbol === symbol;
  }
}

/**
 * Throws {@link NtError} unless `status` is `NT_SUCCESS`; returns the status (so callers can branch
 * on informational codes such as `STATUS_TIMEOUT` or `STATUS_MORE_ENTRIES`).
 *
 * @example
 * ```ts
 * import { check } from "./status.ts";
 * check(0, "NtClose"); // 0
 * ```
 */
export function check(status: number, call: string, context?: string): number {
  if (!ntSuccess(status)) throw new NtError(call, status, "ntstatus", context);
  return status;
}

/**
 * Raised when the toolkit cannot run here at all: not Windows, or a symbol this Windows (or Wine)
 * does not export. Scripts map it to exit code 3.
 *
 * @example
 * ```ts
 * import { isUnsupported, UnsupportedError } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const e = new UnsupportedError("ntdll!NtReplyPort is not exported");
 * assertEquals([e.name, isUnsupported(e)], ["UnsupportedError", true]);
 * ```
 */
export class UnsupportedError extends Error {
  /** Always `"UnsupportedError"`. */
  override name = "UnsupportedError";
}

/**
 * True for an error that means "this system cannot do that": {@link UnsupportedError}, or an
 * {@link NtError} with `STATUS_NOT_IMPLEMENTED` / `ERROR_CALL_NOT_IMPLEMENTED` (Wine's stubs).
 * Scripts use it to choose exit code 3 over 1.
 *
 * @param err anything caught
 * @example A Wine stub is "unsupported"; a denied access is a real failure
 * ```ts
 * import { isUnsupported, NtError } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * assertEquals(isUnsupported(new NtError("NtCreatePort", 0xC0000002)), true); // NOT_IMPLEMENTED
 * assertEquals(isUnsupported(new NtError("NtOpenFile", 0xC0000022)), false); // ACCESS_DENIED
 * assertEquals(isUnsupported(new TypeError("x")), false);
 * ```
 */
export function isUnsupported(err: unknown): boolean {
  if (err instanceof UnsupportedError) return true;
  return err instanceof NtError &&
    (err.is("STATUS_NOT_IMPLEMENTED") || err.is("ERROR_CALL_NOT_IMPLEMENTED"));
}

/**
 * Throws {@link UnsupportedError} unless this is the Windows build of Deno (on Windows, or under
 * Wine): the first line of a script that only makes sense there.
 *
 * @param what what needs Windows, for the message (default `this call`)
 * @example On Linux and macOS it throws, with the way to run under Wine in the message
 * ```ts
 * import { assertWindows, UnsupportedError } from "@deno-lpc/deno-lpc";
 * import { assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * if (Deno.build.os !== "windows") {
 *   assertThrows(() => assertWindows("the lab"), UnsupportedError, "the lab needs Windows x64");
 * }
 * ```
 */
export function assertWindows(what = "this call"): void {
  if (Deno.build.os !== "windows") {
    throw new UnsupportedError(
      `${what} needs Windows x64 (this Deno is ${Deno.build.os}/${Deno.build.arch}); ` +
        "on Linux run it under Wine with `deno task test:wine` or `deno task lab`",
    );
  }
}
