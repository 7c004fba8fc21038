import { assert, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import {
  check,
  describeStatus,
  formatHex,
  isUnsupported,
  NtError,
  NTSTATUS,
  ntSuccess,
  statusName,
  UnsupportedError,
  WIN32_ERRORS,
  win32ErrorName,
} from "../../ffi/status.ts";
import { conditionalTest, ON_LINUX } from "../_helpers.ts";

const MINGW_INCLUDE = "/usr/share/mingw-w64/include";
const HAVE_HEADERS = ON_LINUX && (() => {
  try {
    return Deno.statSync(`${MINGW_INCLUDE}/ntstatus.h`).isFile;
  } catch {
    return false;
  }
})();

Deno.test("formatHex() and the sign of i32 NTSTATUS results", () => {
  assertStrictEquals(formatHex(-1073741790), "0xC0000022");
  assertStrictEquals(formatHex(0x105), "0x00000105");
  assertStrictEquals(ntSuccess(0), true);
  assertStrictEquals(ntSuccess(0x102), true, "STATUS_TIMEOUT is a success code");
  assertStrictEquals(ntSuccess(0x8000001a | 0), false, "STATUS_NO_MORE_ENTRIES is a warning");
  assertStrictEquals(ntSuccess(0xc0000022), false, "unsigned input works too");
});

Deno.test("statusName() knows every status the reference documents", () => {
  const required = [
    "STATUS_SUCCESS",
    "STATUS_PENDING",
    "STATUS_TIMEOUT",
    "STATUS_NO_MORE_ENTRIES",
    "STATUS_BUFFER_OVERFLOW",
    "STATUS_INFO_LENGTH_MISMATCH",
    "STATUS_ACCESS_DENIED",
    "STATUS_PRIVILEGE_NOT_HELD",
    "STATUS_NOT_IMPLEMENTED",
    "STATUS_OBJECT_NAME_NOT_FOUND",
    "STATUS_PORT_CONNECTION_REFUSED",
    "STATUS_PORT_ALREADY_SET",
    "STATUS_PORT_DISCONNECTED",
    "STATUS_PORT_MESSAGE_TOO_LONG",
    "STATUS_REPLY_MESSAGE_MISMATCH",
    "STATUS_LPC_REPLY_LOST",
    "STATUS_DEBUGGER_INACTIVE",
    "STATUS_BREAKPOINT",
    "STATUS_THREAD_IS_TERMINATING",
    "STATUS_OBJECT_NAME_COLLISION",
    "STATUS_INVALID_PARAMETER",
    "STATUS_INVALID_PARAMETER_3",
    "STATUS_INVALID_PARAMETER_4",
    "STATUS_PORT_NOT_SET",
    "STATUS_PORT_CLOSED",
    "STATUS_LPC_REQUESTS_NOT_ALLOWED",
    "STATUS_SERVER_SID_MISMATCH",
    "DBG_CONTINUE",
    "DBG_EXCEPTION_NOT_HANDLED",
  ];
  for (const name of required) {
    const value = (NTSTATUS as Record<string, number>)[name];
    assert(value !== undefined, `${name} missing`);
    assertStrictEquals(statusName(value), name);
    assertStrictEquals(statusName(value | 0), name, `${name} from a signed i32`);
  }
  assertStrictEquals(statusName(0xc0001234), undefined);
  assertStrictEquals(describeStatus(0xc0001234), "0xC0001234");
});

Deno.test("NtError carries call, hex, name and hint in one line", () => {
  const e = new NtError("NtOpenDirectoryObject", -1073741772, "ntstatus", "\\Nope");
  assertStrictEquals(e.call, "NtOpenDirectoryObject");
  assertStrictEquals(e.code, 0xc0000034);
  assertStrictEquals(e.hex, "0xC0000034");
  assertStrictEquals(e.symbol, "STATUS_OBJECT_NAME_NOT_FOUND");
  assertMatch(e.hint!, /no object by that name/);
  assertMatch(
    e.message,
    /^NtOpenDirectoryObject \\Nope failed: STATUS_OBJECT_NAME_NOT_FOUND \(0xC0000034\): /,
  );
  assert(!e.message.includes("\n"));
  assert(e instanceof Error);
  assertStrictEquals(e.name, "NtError");

  for (
    const name of [
      "STATUS_ACCESS_DENIED",
      "STATUS_PRIVILEGE_NOT_HELD",
      "STATUS_NOT_IMPLEMENTED",
      "STATUS_OBJECT_NAME_NOT_FOUND",
      "STATUS_PORT_CONNECTION_REFUSED",
      "STATUS_PORT_ALREADY_SET",
    ] as const
  ) {
    assert(new NtError("X", NTSTATUS[name]).hint, `${name} has a hint`);
  }
  assertMatch(
    new NtError("NtCreatePort", NTSTATUS.STATUS_NOT_IMPLEMENTED).hint!,
    /Wine or a Windows without this call/,
  );
  assertStrictEquals(new NtError("X", 0xc0001234).symbol, undefined);
  assertStrictEquals(new NtError("X", 0xc0001234).message, "X failed: 0xC0001234");
});

Deno.test("NtError for GetLastError codes", () => {
  const e = new NtError("OpenProcess", 5, "win32");
  assertStrictEquals(e.kind, "win32");
  assertStrictEquals(e.symbol, "ERROR_ACCESS_DENIED");
  assertMatch(e.message, /^OpenProcess failed: ERROR_ACCESS_DENIED \(5\): /);
  assertStrictEquals(new NtError("X", 4242, "win32").message, "X failed: Win32 error 4242");
  assertStrictEquals(win32ErrorName(1314), "ERROR_PRIVILEGE_NOT_HELD");
});

Deno.test("check() throws on errors and returns informational codes", () => {
  assertStrictEquals(check(0x102, "NtWaitForSingleObject"), 0x102);
  const e = assertThrows(() => check(0xc0000022 | 0, "NtOpenFile"), NtError);
  assert(e.is("STATUS_ACCESS_DENIED"));
  assertThrows(() => check(0x8000001a | 0, "NtQueryDirectoryObject"), NtError);
});

Deno.test("isUnsupported() recognises Wine's stubs and the platform error", () => {
  assertStrictEquals(isUnsupported(new UnsupportedError("no")), true);
  assertStrictEquals(
    isUnsupported(new NtError("NtCreatePort", NTSTATUS.STATUS_NOT_IMPLEMENTED)),
    true,
  );
  assertStrictEquals(isUnsupported(new NtError("X", 120, "win32")), true);
  assertStrictEquals(isUnsupported(new NtError("X", NTSTATUS.STATUS_ACCESS_DENIED)), false);
  assertStrictEquals(isUnsupported(new Error("x")), false);
});

function parseDefines(text: string, prefix: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  // `#define NAME ((NTSTATUS)0x...)`, `#define NAME __MSABI_LONG(5)`, `#define NAME 5L`
  const re =
    /#define\s+(\w+)\s+(?:__MSABI_LONG)?\(?\s*(?:\(\w+\)\s*)?(0x[0-9A-Fa-f]+|\d+)L?\s*\)?/g;
  for (const m of text.matchAll(re)) {
    if (prefix.test(m[1]!) && !out.has(m[1]!)) out.set(m[1]!, Number(m[2]!));
  }
  return out;
}

/**
 * Statuses mingw-w64's ntstatus.h lacks, with the value the Windows 11 kernel returns (signed,
 * as the decompiled pseudocode writes it).
 */
const NOT_IN_MINGW: Record<string, number> = {
  // ObpLookupObjectName.c: `v148 = -1073740533` when OBJ_DONT_REPARSE (0x1000) meets a reparse.
  STATUS_REPARSE_POINT_ENCOUNTERED: -1073740533,
};

conditionalTest(
  [
    "NTSTATUS and WIN32_ERRORS values equal mingw-w64 ntstatus.h / winerror.h",
    "NTSTATUS values equal mingw-w64 headers",
  ],
  HAVE_HEADERS
    ? null
    : ON_LINUX
    ? "mingw-w64 headers not installed"
    : "reads the mingw headers on the Linux build",
  async () => {
    const nt = parseDefines(
      await Deno.readTextFile(`${MINGW_INCLUDE}/ntstatus.h`),
      /^(STATUS|DBG)_/,
    );
    for (const [name, value] of Object.entries(NTSTATUS)) {
      if (name in NOT_IN_MINGW) {
        assertStrictEquals(nt.get(name), undefined, `${name} is in mingw now: drop the exception`);
        assertStrictEquals(value, NOT_IN_MINGW[name]! >>> 0, name);
      } else assertStrictEquals(nt.get(name), value, `${name}`);
    }
    const w = parseDefines(
      await Deno.readTextFile(`${MINGW_INCLUDE}/winerror.h`),
      /^(ERROR|WAIT)_/,
    );
    for (const [name, value] of Object.entries(WIN32_ERRORS)) {
      assertStrictEquals(w.get(name), value, `${name}`);
    }
  },
);
