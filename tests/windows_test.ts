/**
 * The real Windows code path: runs with the Windows build of Deno, on Windows or under Wine 8.0
 * (`deno task test:wine`). What Wine cannot do (LPC, ALPC, exception ports) is detected by probing
 * and reported as ignored with the probe's reason.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import { advapi32 } from "../ffi/advapi32.ts";
import {
  alpcUnavailable,
  exceptionPortUnavailable,
  lpcUnavailable,
} from "../ffi/nt/capabilities.ts";
import { currentProcess, handleCell, NtHandle } from "../ffi/nt/handle.ts";
import { kernel32 } from "../ffi/kernel32.ts";
import { openDirectory } from "../ffi/nt/namespace.ts";
import { ntdll, wineVersion } from "../ffi/ntdll.ts";
import { SecurityDescriptor } from "../ffi/nt/object_attributes.ts";
import { PORT_MAXIMUM_MESSAGE_LENGTH } from "../ffi/port_message.ts";
import {
  CREATE_NO_WINDOW,
  createProcess,
  exitCodeOf,
  openProcess,
  ProcessAccess,
  processHandleCount,
  waitFor,
} from "../ffi/nt/processes.ts";
import { handleTypeIndex, ownHandles } from "../ffi/nt/system_handles.ts";
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
} from "../ffi/nt/tokens.ts";
import {
  ON_WINDOWS_BUILD,
  run,
  WINDOWS_ONLY,
  windowsTest,
  WINE_MISSING_NTDLL,
} from "./_helpers.ts";
import {
  assertNoHandleGrowthPerCycle,
  handleCountsAcrossCycles,
  RUNTIME_TRANSIENT_HANDLES,
} from "./_handle_counts.ts";

const UNDER_WINE = ON_WINDOWS_BUILD && wineVersion() !== null;
const ORACLES = ON_WINDOWS_BUILD ? Deno.env.get("DENO_LPC_ORACLES") : undefined;

/**
 * Which of our handles (all of them, or those in `among`) refer to process `pid` or to its thread
 * `tid`: `GetProcessId`/`GetThreadId` name the object (Wine's handle table gives no object
 * address). Exact, unlike a total the runtime's own threads move. Once the child is gone its ids
 * may name a new thread of ours, so after a close pass `among`: the values that were closed.
 */
function handlesNaming(
  types: { process: number; thread: number },
  pid: number,
  tid: number,
  among?: bigint[],
): bigint[] {
  const k = kernel32();
  return ownHandles().filter((h) => {
    if (among && !among.includes(h.handle)) return false;
    const p = Deno.UnsafePointer.create(h.handle);
    return (h.typeIndex === types.process && k.GetProcessId(p) === pid) ||
      (h.typeIndex === types.thread && k.GetThreadId(p) === tid);
  }).map((h) => h.handle).sort();
}

windowsTest(
  "ntdll, kernel32 and advapi32 load; optional symbols are null exactly where this system lacks them",
  WINDOWS_ONLY,
  () => {
    const nt = ntdll() as unknown as Record<string, unknown>;
    const nulls = Object.entries(nt).filter(([, v]) => v === null).map(([k]) => k).sort();
    if (UNDER_WINE) {
      const expected = [
        ...WINE_MISSING_NTDLL,
        ...Object.keys(nt).filter((k) => k.startsWith("NtAlpc") || k.startsWith("Alpc")),
      ].sort();
      assertEquals(nulls, expected);
    } else {
      assertEquals(nulls, [], "Windows 10+ exports every ntdll symbol the toolkit binds");
    }
    for (const lib of [kernel32(), advapi32()] as unknown as Record<string, unknown>[]) {
      assertEquals(Object.entries(lib).filter(([, v]) => v === null), []);
      assert(Object.values(lib).every((f) => typeof f === "function"));
    }
  },
);

windowsTest("wineVersion() tells Wine from Windows", WINDOWS_ONLY, () => {
  if (ORACLES) {
    assertMatch(wineVersion() ?? "", /^\d+\.\d+/, "the Wine harness runs us under Wine");
  } else assertStrictEquals(typeof (wineVersion() ?? ""), "string");
});

windowsTest(
  "open and close a directory object 1,000 + 1,000 times: no Directory handle left, no growth per cycle",
  WINDOWS_ONLY,
  async () => {
    let directoryType;
    {
      using probe = openDirectory("\\");
      directoryType = handleTypeIndex(probe);
    }
    const counts = await handleCountsAcrossCycles(directoryType, 1000, () => {
      using dir = openDirectory("\\");
      assert(!dir.closed);
    });
    assertNoHandleGrowthPerCycle(counts, "openDirectory + close");
    // The typed count is exact: one directory left open is one more, closing it is one less.
    const before = ownHandles(directoryType).length;
    const held = openDirectory("\\");
    assertStrictEquals(ownHandles(directoryType).length, before + 1);
    held.close();
    held.close(); // idempotent
    assertStrictEquals(ownHandles(directoryType).length, before);
    // ProcessHandleCount: Wine 8.0 stubs it (always 0); on Windows it is the table's total.
    const query = processHandleCount();
    const table = ownHandles().length;
    if (UNDER_WINE) assertStrictEquals(query, 0, "Wine 8.0's ProcessHandleCount stub");
    else {
      assert(
        Math.abs(query - table) <= RUNTIME_TRANSIENT_HANDLES,
        `ProcessHandleCount ${query} vs table ${table}`,
      );
    }
  },
);

windowsTest(
  "a missing object directory gives NtError STATUS_OBJECT_NAME_NOT_FOUND with its hint",
  WINDOWS_ONLY,
  () => {
    const e = assertThrows(() => openDirectory("\\NoSuchDirectory-deno-lpc"), NtError);
    assertStrictEquals(e.call, "NtOpenDirectoryObject");
    assert(e.is("STATUS_OBJECT_NAME_NOT_FOUND"));
    assertStrictEquals(e.hex, "0xC0000034");
    assertMatch(e.message, /no object by that name/);
    assert(e.message.includes("\\NoSuchDirectory-deno-lpc"));
    // NtClose on a handle that is not open: STATUS_INVALID_HANDLE, reported by check().
    assertThrows(
      () => check(ntdll().NtClose(Deno.UnsafePointer.create(0x7ffffff0n)), "NtClose"),
      NtError,
    );
  },
);

windowsTest("a Win32 failure gives NtError with its GetLastError code", WINDOWS_ONLY, () => {
  const e = assertThrows(
    () => openProcess(0xfffffff0, ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION),
    NtError,
  );
  assertStrictEquals(e.kind, "win32");
  assertStrictEquals(e.call, "OpenProcess");
  assertStrictEquals(e.code, 87);
  assert(e.is("ERROR_INVALID_PARAMETER"));
});

windowsTest(
  "own token: user SID, integrity, elevation; duplicate and restricted copies",
  WINDOWS_ONLY,
  () => {
    using token = openProcessToken(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE);
    const sid = tokenUserSid(token);
    assertMatch(sid, /^S-1-5-/);
    // The API's string and our own decoder agree on the raw bytes.
    const raw = tokenInformation(token, 1);
    const p = new DataView(raw.buffer, raw.byteOffset).getBigUint64(0, true);
    const bytes = new Uint8Array(8 + 4 * 15);
    Deno.UnsafePointerView.copyInto(Deno.UnsafePointer.create(p)!, bytes);
    assertStrictEquals(sidToString(bytes), sid);
    assertEquals(sidFromString(sid), bytes.subarray(0, 8 + 4 * bytes[1]!));

    const integrity = tokenIntegrity(token);
    assertMatch(integrity.sid, /^S-1-16-\d+$/);
    assertStrictEquals(typeof tokenIsElevated(token), "boolean");

    using dup = duplicateToken(token, { primary: true, access: TokenAccess.TOKEN_QUERY });
    assertStrictEquals(tokenUserSid(dup), sid);
    using restricted = createRestrictedToken(token, { denyOnly: [WellKnownSid.Administrators] });
    assertStrictEquals(tokenUserSid(restricted), sid);
  },
);

windowsTest(
  "privilege lookup: well-known LUIDs (SeDebugPrivilege 20, SeTcbPrivilege 7)",
  WINDOWS_ONLY,
  () => {
    assertStrictEquals(lookupPrivilege("SeDebugPrivilege"), 20n);
    assertStrictEquals(lookupPrivilege("SeTcbPrivilege"), 7n);
    const e = assertThrows(() => lookupPrivilege("SeNoSuchPrivilege"), NtError);
    assertStrictEquals(e.kind, "win32");
  },
);

windowsTest(
  "CreateProcessW starts a child; its exit code is read back; dispose ends a running child and closes its handles",
  WINDOWS_ONLY,
  () => {
    let types;
    let ran;
    {
      using child = createProcess([Deno.execPath(), "eval", "Deno.exit(7)"], {
        creationFlags: CREATE_NO_WINDOW,
      });
      types = { process: handleTypeIndex(child.process), thread: handleTypeIndex(child.thread) };
      assert(child.pid > 0 && child.tid > 0);
      const values = [child.process.unsafeValue, child.thread.unsafeValue].sort();
      ran = { pid: child.pid, tid: child.tid, values };
      assertEquals(
        handlesNaming(types, child.pid, child.tid),
        values,
        "exactly the two handles CreateProcessW returned name the child",
      );
      assertStrictEquals(child.wait(60_000), true);
      assertStrictEquals(child.exitCode(), 7);
    }
    assertEquals(handlesNaming(types, ran.pid, ran.tid, ran.values), [], "dispose closed both");
    let watcher;
    let slept;
    {
      using sleeper = createProcess([Deno.execPath(), "eval", "setTimeout(() => {}, 120000)"], {
        creationFlags: CREATE_NO_WINDOW,
      });
      watcher = openProcess(
        sleeper.pid,
        ProcessAccess.SYNCHRONIZE | ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION,
      );
      const values = [sleeper.process.unsafeValue, sleeper.thread.unsafeValue];
      slept = { pid: sleeper.pid, tid: sleeper.tid, values: [...values, watcher.unsafeValue] };
      assertStrictEquals(sleeper.exitCode(), undefined);
      assertEquals(handlesNaming(types, sleeper.pid, sleeper.tid), slept.values.sort());
    } // disposed: terminated with exit code 1
    const watched = watcher.unsafeValue;
    assertEquals(handlesNaming(types, slept.pid, slept.tid, slept.values), [watched]);
    assertStrictEquals(waitFor(watcher, 5000), true);
    assertStrictEquals(exitCodeOf(watcher), 1);
    watcher.close();
    assertEquals(handlesNaming(types, slept.pid, slept.tid, slept.values), []);
  },
);

windowsTest(
  "SDDL becomes a security descriptor (freed on dispose); bad SDDL is a Win32 NtError",
  WINDOWS_ONLY,
  () => {
    {
      using sd = SecurityDescriptor.fromSddl("D:(A;;0x1;;;WD)(A;;GA;;;SY)(A;;GA;;;BA)");
      assert(sd.size >= 20);
      assert(sd.unsafeAddress !== 0n);
    }
    const e = assertThrows(() => SecurityDescriptor.fromSddl("D:(this is not SDDL"), NtError);
    assertStrictEquals(e.kind, "win32");
  },
);

windowsTest(
  [
    "the C oracle (mingw, same system) agrees with the toolkit's token queries",
    "the C oracle agrees with the token queries",
  ],
  ORACLES
    ? null
    : ON_WINDOWS_BUILD
    ? "DENO_LPC_ORACLES is set by the Wine harness only"
    : "needs the Windows build",
  async () => {
    const r = await run(`${ORACLES}/token_oracle.exe`, []);
    assertStrictEquals(r.code, 0, r.stderr);
    const facts = Object.fromEntries(
      r.stdout.trim().split(/\r?\n/).map((l) => l.split("=", 2) as [string, string]),
    );
    using token = openProcessToken();
    assertStrictEquals(facts.user_sid, tokenUserSid(token));
    assertStrictEquals(facts.integrity, tokenIntegrity(token).sid);
    assertStrictEquals(facts.elevated, tokenIsElevated(token) ? "1" : "0");
    assertStrictEquals(facts["luid.SeDebugPrivilege"], String(lookupPrivilege("SeDebugPrivilege")));
    assertStrictEquals(facts["luid.SeTcbPrivilege"], String(lookupPrivilege("SeTcbPrivilege")));
    assertStrictEquals(
      facts["luid.SeChangeNotifyPrivilege"],
      String(lookupPrivilege("SeChangeNotifyPrivilege")),
    );
  },
);

windowsTest(
  "the capability probes name what is missing (under Wine) or find it (on Windows)",
  WINDOWS_ONLY,
  () => {
    const lpc = lpcUnavailable();
    const alpc = alpcUnavailable();
    const exc = exceptionPortUnavailable();
    if (UNDER_WINE) {
      assertMatch(
        lpc ?? "",
        /NtCreatePort returned STATUS_NOT_IMPLEMENTED \(0xC0000002\) \(a Wine stub\)/,
      );
      assertMatch(alpc ?? "", /NtAlpcCreatePort/);
      assertMatch(exc ?? "", /STATUS_NOT_IMPLEMENTED/);
    } else {
      assertStrictEquals(lpc, null);
      assertStrictEquals(alpc, null);
      assertStrictEquals(exc, null);
    }
  },
);

// ---- What only real Windows can show: ignored with the probe's reason elsewhere ----

const LPC_WHY = ON_WINDOWS_BUILD ? lpcUnavailable() : "needs Windows";
const ALPC_WHY = ON_WINDOWS_BUILD ? alpcUnavailable() : "needs Windows";
const EXC_WHY = ON_WINDOWS_BUILD ? exceptionPortUnavailable() : "needs Windows";

windowsTest(
  [
    "an unnamed LPC port is created (NtCreatePort) and closed 200 + 200 times: no port handle left, no growth per cycle",
    "an unnamed LPC port is created and closed",
  ],
  LPC_WHY,
  async () => {
    const cell = handleCell();
    const create = () => {
      check(ntdll().NtCreatePort(cell, null, 0, PORT_MAXIMUM_MESSAGE_LENGTH, 0), "NtCreatePort");
      return NtHandle.fromCell("connection-port", cell, "port");
    };
    let portType;
    {
      using probe = create();
      portType = handleTypeIndex(probe);
    }
    const counts = await handleCountsAcrossCycles(portType, 200, () => create().close());
    assertNoHandleGrowthPerCycle(counts, "NtCreatePort + NtClose");
  },
);

windowsTest(
  [
    "an unnamed ALPC port is created (NtAlpcCreatePort) and closed",
    "an unnamed ALPC port is created and closed",
  ],
  ALPC_WHY,
  () => {
    const cell = handleCell();
    check(ntdll().NtAlpcCreatePort!(cell, null, null), "NtAlpcCreatePort");
    NtHandle.fromCell("connection-port", cell, "ALPC port").close();
  },
);

windowsTest(
  [
    "setting our own exception port without SeTcbPrivilege is refused (STATUS_PRIVILEGE_NOT_HELD or a handle error)",
    "setting an exception port without SeTcbPrivilege is refused",
  ],
  EXC_WHY,
  () => {
    const status = ntdll().NtSetInformationProcess(currentProcess(), 8, new BigUint64Array(1), 8);
    assert(status < 0, `status ${status}`);
  },
);
