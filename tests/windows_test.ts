/**
 * The real Windows code path: runs with the Windows build of Deno, on Windows or under Wine 8.0
 * (`deno task test:wine`). What Wine cannot do (LPC, ALPC, exception ports) is detected by probing
 * and reported as ignored with the probe's reason.
 */

import assert from "node:assert/strict";
import { advapi32 } from "../ffi/advapi32.ts";
import { alpcUnavailable, exceptionPortUnavailable, lpcUnavailable } from "../ffi/capabilities.ts";
import { currentProcess, handleCell, NtHandle } from "../ffi/handle.ts";
import { kernel32 } from "../ffi/kernel32.ts";
import { openDirectory } from "../ffi/namespace.ts";
import { ntdll, wineVersion } from "../ffi/ntdll.ts";
import { SecurityDescriptor } from "../ffi/objects.ts";
import { PORT_MAXIMUM_MESSAGE_LENGTH } from "../ffi/port_message.ts";
import {
  CREATE_NO_WINDOW,
  createProcess,
  currentProcessId,
  exitCodeOf,
  openProcess,
  ProcessAccess,
  processHandleCount,
  waitFor,
} from "../ffi/processes.ts";
import { systemHandles } from "../ffi/system_handles.ts";
import { check, NtError } from "../ffi/status.ts";
import {
  createRestrictedToken,
  duplicateToken,
  lookupPrivilege,
  openProcessToken,
  sidFromString,
  sidToString,
  TokenAccess,
  tokenInformation,
  tokenIntegrity,
  tokenIsElevated,
  tokenUserSid,
  WellKnownSid,
} from "../ffi/tokens.ts";
import { ON_WINDOWS_BUILD, run, WINE_MISSING_NTDLL } from "./_helpers.ts";

const NOT_WINDOWS = "ignored: needs the Windows build of Deno (deno task test:wine, or Windows)";
const name = (what: string) => ON_WINDOWS_BUILD ? what : `${what} (${NOT_WINDOWS})`;
const UNDER_WINE = ON_WINDOWS_BUILD && wineVersion() !== null;
const ORACLES = ON_WINDOWS_BUILD ? Deno.env.get("DENO_LPC_ORACLES") : undefined;

/**
 * Our open handles, counted two ways: `ProcessHandleCount` (Wine 8.0 stubs it: always 0) and our
 * entries in the system handle table (implemented by Wine).
 */
function handleCounts(): { query: number; table: number } {
  const me = currentProcessId();
  const table = systemHandles().filter((h) => h.pid === me).length;
  const query = processHandleCount();
  if (UNDER_WINE) assert.equal(query, 0, "Wine 8.0's ProcessHandleCount stub");
  else assert.ok(Math.abs(query - table) <= 2, `ProcessHandleCount ${query} vs table ${table}`);
  return { query, table };
}

Deno.test({
  name: name(
    "ntdll, kernel32 and advapi32 load; optional symbols are null exactly where this system lacks them",
  ),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    const nt = ntdll() as unknown as Record<string, unknown>;
    const nulls = Object.entries(nt).filter(([, v]) => v === null).map(([k]) => k).sort();
    if (UNDER_WINE) {
      const expected = [
        ...WINE_MISSING_NTDLL,
        ...Object.keys(nt).filter((k) => k.startsWith("NtAlpc")),
      ].sort();
      assert.deepEqual(nulls, expected);
    } else {
      assert.deepEqual(nulls, [], "Windows 10+ exports every ntdll symbol the toolkit binds");
    }
    for (const lib of [kernel32(), advapi32()] as unknown as Record<string, unknown>[]) {
      assert.deepEqual(Object.entries(lib).filter(([, v]) => v === null), []);
      assert.ok(Object.values(lib).every((f) => typeof f === "function"));
    }
  },
});

Deno.test({
  name: name("wineVersion() tells Wine from Windows"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    if (ORACLES) {
      assert.match(wineVersion() ?? "", /^\d+\.\d+/, "the Wine harness runs us under Wine");
    } else assert.equal(typeof (wineVersion() ?? ""), "string");
  },
});

Deno.test({
  name: name(
    "open and close a directory object 1,000 times: the handle count returns to its baseline",
  ),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    const baseline = handleCounts();
    for (let i = 0; i < 1000; i++) {
      using dir = openDirectory("\\");
      assert.ok(!dir.closed);
    }
    assert.deepEqual(handleCounts(), baseline);
    // And the count really moves when a handle stays open.
    const held = openDirectory("\\");
    assert.equal(handleCounts().table, baseline.table + 1);
    held.close();
    held.close(); // idempotent
    assert.deepEqual(handleCounts(), baseline);
  },
});

Deno.test({
  name: name("a missing object directory gives NtError STATUS_OBJECT_NAME_NOT_FOUND with its hint"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    assert.throws(
      () => openDirectory("\\NoSuchDirectory-deno-lpc"),
      (e) =>
        e instanceof NtError && e.call === "NtOpenDirectoryObject" &&
        e.is("STATUS_OBJECT_NAME_NOT_FOUND") &&
        e.hex === "0xC0000034" && /no object by that name/.test(e.message) &&
        e.message.includes("\\NoSuchDirectory-deno-lpc"),
    );
    // NtClose on a handle that is not open: STATUS_INVALID_HANDLE, reported by check().
    assert.throws(
      () => check(ntdll().NtClose(Deno.UnsafePointer.create(0x7ffffff0n)), "NtClose"),
      NtError,
    );
  },
});

Deno.test({
  name: name("a Win32 failure gives NtError with its GetLastError code"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    assert.throws(
      () => openProcess(0xfffffff0, ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION),
      (e) =>
        e instanceof NtError && e.kind === "win32" && e.call === "OpenProcess" && e.code === 87 &&
        e.is("ERROR_INVALID_PARAMETER"),
    );
  },
});

Deno.test({
  name: name("own token: user SID, integrity, elevation; duplicate and restricted copies"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    using token = openProcessToken(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE);
    const sid = tokenUserSid(token);
    assert.match(sid, /^S-1-5-/);
    // The API's string and our own decoder agree on the raw bytes.
    const raw = tokenInformation(token, 1);
    const p = new DataView(raw.buffer, raw.byteOffset).getBigUint64(0, true);
    const bytes = new Uint8Array(8 + 4 * 15);
    Deno.UnsafePointerView.copyInto(Deno.UnsafePointer.create(p)!, bytes);
    assert.equal(sidToString(bytes), sid);
    assert.deepEqual(sidFromString(sid), bytes.subarray(0, 8 + 4 * bytes[1]!));

    const integrity = tokenIntegrity(token);
    assert.match(integrity.sid, /^S-1-16-\d+$/);
    assert.equal(typeof tokenIsElevated(token), "boolean");

    using dup = duplicateToken(token, { primary: true, access: TokenAccess.TOKEN_QUERY });
    assert.equal(tokenUserSid(dup), sid);
    using restricted = createRestrictedToken(token, { denyOnly: [WellKnownSid.Administrators] });
    assert.equal(tokenUserSid(restricted), sid);
  },
});

Deno.test({
  name: name("privilege lookup: well-known LUIDs (SeDebugPrivilege 20, SeTcbPrivilege 7)"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    assert.equal(lookupPrivilege("SeDebugPrivilege"), 20n);
    assert.equal(lookupPrivilege("SeTcbPrivilege"), 7n);
    assert.throws(
      () => lookupPrivilege("SeNoSuchPrivilege"),
      (e) => e instanceof NtError && e.kind === "win32",
    );
  },
});

Deno.test({
  name: name(
    "CreateProcessW starts a child; its exit code is read back; dispose ends a running child",
  ),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    const baseline = handleCounts();
    {
      using child = createProcess([Deno.execPath(), "eval", "Deno.exit(7)"], {
        creationFlags: CREATE_NO_WINDOW,
      });
      assert.ok(child.pid > 0 && child.tid > 0);
      assert.equal(child.wait(60_000), true);
      assert.equal(child.exitCode(), 7);
    }
    let watcher;
    {
      using sleeper = createProcess([Deno.execPath(), "eval", "setTimeout(() => {}, 120000)"], {
        creationFlags: CREATE_NO_WINDOW,
      });
      watcher = openProcess(
        sleeper.pid,
        ProcessAccess.SYNCHRONIZE | ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION,
      );
      assert.equal(sleeper.exitCode(), undefined);
    } // disposed: terminated with exit code 1
    assert.equal(waitFor(watcher, 5000), true);
    assert.equal(exitCodeOf(watcher), 1);
    watcher.close();
    assert.deepEqual(handleCounts(), baseline);
  },
});

Deno.test({
  name: name("SDDL becomes a security descriptor (freed on dispose); bad SDDL is a Win32 NtError"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    {
      using sd = SecurityDescriptor.fromSddl("D:(A;;0x1;;;WD)(A;;GA;;;SY)(A;;GA;;;BA)");
      assert.ok(sd.size >= 20);
      assert.ok(sd.address !== 0n);
    }
    assert.throws(
      () => SecurityDescriptor.fromSddl("D:(this is not SDDL"),
      (e) => e instanceof NtError && e.kind === "win32",
    );
  },
});

Deno.test({
  name: ORACLES
    ? "the C oracle (mingw, same system) agrees with the toolkit's token queries"
    : `the C oracle agrees with the token queries (ignored: ${
      ON_WINDOWS_BUILD
        ? "DENO_LPC_ORACLES is set by the Wine harness only"
        : "needs the Windows build"
    })`,
  ignore: !ORACLES,
  async fn() {
    const r = await run(`${ORACLES}/token_oracle.exe`, []);
    assert.equal(r.code, 0, r.stderr);
    const facts = Object.fromEntries(
      r.stdout.trim().split(/\r?\n/).map((l) => l.split("=", 2) as [string, string]),
    );
    using token = openProcessToken();
    assert.equal(facts.user_sid, tokenUserSid(token));
    assert.equal(facts.integrity, tokenIntegrity(token).sid);
    assert.equal(facts.elevated, tokenIsElevated(token) ? "1" : "0");
    assert.equal(facts["luid.SeDebugPrivilege"], String(lookupPrivilege("SeDebugPrivilege")));
    assert.equal(facts["luid.SeTcbPrivilege"], String(lookupPrivilege("SeTcbPrivilege")));
    assert.equal(
      facts["luid.SeChangeNotifyPrivilege"],
      String(lookupPrivilege("SeChangeNotifyPrivilege")),
    );
  },
});

Deno.test({
  name: name("the capability probes name what is missing (under Wine) or find it (on Windows)"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    const lpc = lpcUnavailable();
    const alpc = alpcUnavailable();
    const exc = exceptionPortUnavailable();
    if (UNDER_WINE) {
      assert.match(
        lpc ?? "",
        /NtCreatePort returned STATUS_NOT_IMPLEMENTED \(0xC0000002\) \(a Wine stub\)/,
      );
      assert.match(alpc ?? "", /NtAlpcCreatePort/);
      assert.match(exc ?? "", /STATUS_NOT_IMPLEMENTED/);
    } else {
      assert.equal(lpc, null);
      assert.equal(alpc, null);
      assert.equal(exc, null);
    }
  },
});

// ---- What only real Windows can show: ignored with the probe's reason elsewhere ----

const LPC_WHY = ON_WINDOWS_BUILD ? lpcUnavailable() : "needs Windows";
const ALPC_WHY = ON_WINDOWS_BUILD ? alpcUnavailable() : "needs Windows";
const EXC_WHY = ON_WINDOWS_BUILD ? exceptionPortUnavailable() : "needs Windows";

Deno.test({
  name: LPC_WHY === null
    ? "an unnamed LPC port is created (NtCreatePort) and closed, the handle count unchanged"
    : `an unnamed LPC port is created and closed (ignored: ${LPC_WHY})`,
  ignore: LPC_WHY !== null,
  fn() {
    const baseline = processHandleCount();
    const cell = handleCell();
    check(ntdll().NtCreatePort(cell, null, 0, PORT_MAXIMUM_MESSAGE_LENGTH, 0), "NtCreatePort");
    NtHandle.fromCell(cell, "port").close();
    assert.equal(processHandleCount(), baseline);
  },
});

Deno.test({
  name: ALPC_WHY === null
    ? "an unnamed ALPC port is created (NtAlpcCreatePort) and closed"
    : `an unnamed ALPC port is created and closed (ignored: ${ALPC_WHY})`,
  ignore: ALPC_WHY !== null,
  fn() {
    const cell = handleCell();
    check(ntdll().NtAlpcCreatePort!(cell, null, null), "NtAlpcCreatePort");
    NtHandle.fromCell(cell, "ALPC port").close();
  },
});

Deno.test({
  name: EXC_WHY === null
    ? "setting our own exception port without SeTcbPrivilege is refused (STATUS_PRIVILEGE_NOT_HELD or a handle error)"
    : `setting an exception port without SeTcbPrivilege is refused (ignored: ${EXC_WHY})`,
  ignore: EXC_WHY !== null,
  fn() {
    const status = ntdll().NtSetInformationProcess(currentProcess(), 8, new BigUint64Array(1), 8);
    assert.ok(status < 0, `status ${status}`);
  },
});
