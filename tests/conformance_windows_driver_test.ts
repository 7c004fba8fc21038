/**
 * The Windows conformance driver's plumbing, for real, with calls Wine implements too: Workers
 * that are real OS threads (tid, pid, CreateTime), buffers per process, handles per process, a
 * child process started, its thread's exit proved by the kernel, the child killed and its exit
 * code read, errors crossing from a Worker, and dispose ending everything. LPC itself is not
 * touched here (Wine stubs it); `conformance_test.ts` runs the cases on Windows.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotStrictEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { pointerFrom } from "../ffi/nt/handle.ts";
import { kernel32 } from "../ffi/kernel32.ts";
import { LAYOUTS } from "../ffi/layouts.ts";
import { wineVersion } from "../ffi/ntdll.ts";
import { openProcess, ProcessAccess, waitFor } from "../ffi/nt/processes.ts";
import { NTSTATUS, toUnsigned } from "../ffi/status.ts";
import { createWindowsKernel } from "./conformance/windows_driver.ts";
import { arg, type CallName } from "./conformance/types.ts";
import { NOT_WINDOWS, ON_WINDOWS_BUILD, WINDOWS_ONLY, windowsTest } from "./_helpers.ts";

const UNDER_WINE = ON_WINDOWS_BUILD && wineVersion() !== null;
const KUT = LAYOUTS.KERNEL_USER_TIMES;

/** FILETIME now (100 ns since 1601). */
const fileTimeNow = () => BigInt(Date.now()) * 10_000n + 116_444_736_000_000_000n;

windowsTest(
  "windows driver: each Thread is its own OS thread of the right process, with its CreateTime",
  WINDOWS_ONLY,
  async () => {
    await using k = await createWindowsKernel();
    const a = k.self.main;
    const b = await k.self.thread();
    assertStrictEquals(k.self.pid, kernel32().GetCurrentProcessId());
    assertStrictEquals(a.process, k.self);
    const mainTid = kernel32().GetCurrentThreadId();
    assertNotStrictEquals(a.tid, mainTid, "a Thread is not the test's main thread");
    assertNotStrictEquals(a.tid, b.tid);
    const now = fileTimeNow();
    for (const t of [a, b]) {
      assert(t.createTime <= now + 10_000_000n, "created before now (1 s of clock slack)");
      assert(t.createTime > now - 36_000_000_000n, "created within the last hour");
    }
    assert(b.createTime >= a.createTime, "the second thread was created after the first");
    assertMatch(k.portName("srv"), /^\\RPC Control\\deno-lpc-conf-\d+-\d+-srv$/);
    assertNotStrictEquals(k.portName("srv"), k.portName("srv"), "each call names a new port");
  },
);

windowsTest(
  "windows driver: a call's status comes back from its thread (NtClose of a bad handle)",
  WINDOWS_ONLY,
  async () => {
    await using k = await createWindowsKernel();
    const status = await k.self.main.call("NtClose", arg.ptr(0x7ff0n));
    assertStrictEquals(toUnsigned(status), NTSTATUS.STATUS_INVALID_HANDLE);
    await assertRejects(
      () => k.self.main.call("NtClose", arg.h("never-made")),
      Error,
      'no handle named "never-made"',
    );
  },
);

windowsTest(
  "windows driver: a buffer the kernel wrote on one thread is read by another thread of the process, not by another process",
  WINDOWS_ONLY,
  async () => {
    await using k = await createWindowsKernel();
    const a = k.self.main;
    const b = await k.self.thread();
    // NtQueryInformationThread is not a case's call, but the driver binds every ntdll symbol.
    const status = await a.call(
      "NtQueryInformationThread" as CallName,
      arg.self(),
      1, // ThreadTimes
      arg.buf("times", KUT.size),
      KUT.size,
      null,
    );
    assertStrictEquals(status, 0);
    const bytes = await b.read("times");
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    assertStrictEquals(dv.getBigInt64(KUT.offsets.CreateTime, true), a.createTime);
    const child = await k.spawn();
    await assertRejects(() => child.main.read("times"), Error, 'no buffer named "times"');
    // In the child, a buffer of the same name is its own; bytes given are what the call sees.
    await child.main.call(
      "NtQueryInformationThread" as CallName,
      arg.self(),
      1,
      arg.buf("times", new Uint8Array(KUT.size).fill(0xee)),
      KUT.size,
      null,
    );
    const theirs = await child.main.read("times");
    assertStrictEquals(
      new DataView(theirs.buffer, theirs.byteOffset).getBigInt64(KUT.offsets.CreateTime, true),
      child.main.createTime,
    );
    assertNotStrictEquals(child.pid, k.self.pid);
  },
);

windowsTest(
  "windows driver: handles are per process: openProcess remembers one, NtClose of it succeeds once",
  WINDOWS_ONLY,
  async () => {
    await using k = await createWindowsKernel();
    const child = await k.spawn();
    const t = await k.self.thread();
    const access = ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION;
    assertStrictEquals(await t.openProcess(child, access, "kid"), 0);
    assert(
      k.self.main.handleValue("kid") > 0n,
      "the handle is the process's, any thread sees it",
    );
    assertThrows(
      () => child.main.handleValue("kid"),
      Error,
      'no handle named "kid" in child process',
    );
    assertStrictEquals(await k.self.main.call("NtClose", arg.h("kid")), 0);
    assertStrictEquals(
      toUnsigned(await k.self.main.call("NtClose", arg.h("kid"))),
      NTSTATUS.STATUS_INVALID_HANDLE,
    );
    // The child opens us, in its own table.
    assertStrictEquals(await child.main.openProcess(k.self, access, "parent"), 0);
    assert(child.main.handleValue("parent") > 0n);
  },
);

windowsTest(
  "windows driver: openThread opens the named thread (GetThreadId of the handle is its tid), from another process too",
  WINDOWS_ONLY,
  async () => {
    await using k = await createWindowsKernel();
    const child = await k.spawn();
    const t = await k.self.thread();
    const THREAD_QUERY_INFORMATION = 0x40;
    assertStrictEquals(await k.self.main.openThread(t, THREAD_QUERY_INFORMATION, "th"), 0);
    assertStrictEquals(
      await k.self.main.openThread(child.main, THREAD_QUERY_INFORMATION, "kid"),
      0,
    );
    // The suite's process is this one: its handles can be asked about here.
    const tidOf = (name: string) =>
      kernel32().GetThreadId(Deno.UnsafePointer.create(k.self.main.handleValue(name)));
    assertStrictEquals(tidOf("th"), t.tid);
    assertStrictEquals(tidOf("kid"), child.main.tid);
    assertNotStrictEquals(t.tid, child.main.tid);
    assertStrictEquals(await k.self.main.call("NtClose", arg.h("th")), 0);
    assertStrictEquals(await k.self.main.call("NtClose", arg.h("kid")), 0);
  },
);

windowsTest(
  "windows driver: exit() ends the OS thread (the kernel signals it), later calls fail",
  WINDOWS_ONLY,
  async () => {
    await using k = await createWindowsKernel();
    const t = await k.self.thread();
    await t.exit();
    await assertRejects(() => t.call("NtClose", arg.ptr(0x7ff0n)), Error, "has exited");
    const child = await k.spawn();
    const c = await child.thread();
    await c.exit();
    await assertRejects(() => c.call("NtClose", arg.ptr(0x7ff0n)), Error, "has exited");
    assertStrictEquals(await child.exitCode(), null, "the process lives on without that thread");
  },
);

windowsTest(
  "windows driver: kill(code) ends a child, whose exit code is read; its calls are killed",
  WINDOWS_ONLY,
  async () => {
    await using k = await createWindowsKernel();
    const child = await k.spawn();
    assertStrictEquals(await child.exitCode(), null);
    await child.kill(42);
    assertStrictEquals(await child.exitCode(), 42);
    assertStrictEquals(await child.main.start("NtClose", arg.ptr(0x7ff0n)).result(5_000), "killed");
    await assertRejects(() => k.self.kill(1), Error, "not killed");
  },
);

windowsTest(
  [
    "windows driver: raise() with no exception port ends the child with the code (Wine); hardError's status comes back",
    "windows driver: raise() and hardError() plumbing",
  ],
  UNDER_WINE
    ? null
    : ON_WINDOWS_BUILD
    ? "on Windows csrss owns the exception port; the cases cover it"
    : NOT_WINDOWS,
  async () => {
    await using k = await createWindowsKernel();
    const child = await k.spawn();
    assertEquals(await child.main.raise(0xe0000001, [1n, 2n], 20_000), {
      outcome: "exited",
      exitCode: 0xe0000001,
    });
    await assertRejects(
      () => k.self.main.raise(0xe0000001, [], 1000),
      Error,
      "only in a spawned process",
    );
    const r = await k.self.main.hardError(0xc0000001 | 0, 10_000);
    assertNotStrictEquals(r, "blocked");
    assertStrictEquals(
      toUnsigned((r as { status: number }).status),
      NTSTATUS.STATUS_NOT_IMPLEMENTED,
    );
  },
);

windowsTest(
  [
    "windows driver: becomeSystem() rejects with impersonateSystem's failing step (Wine has no winlogon.exe)",
    "windows driver: becomeSystem() errors cross from the Worker",
  ],
  UNDER_WINE ? null : ON_WINDOWS_BUILD ? "on Windows the step may succeed" : NOT_WINDOWS,
  async () => {
    await using k = await createWindowsKernel();
    assertMatch(
      String(await assertRejects(() => k.self.main.becomeSystem())),
      /StepError: step \d+, .*SYSTEM/,
    );
  },
);

windowsTest(
  "windows driver: disposing ends the children and closes the handles left open",
  WINDOWS_ONLY,
  async () => {
    let watch;
    let leftOpen = 0n;
    let childPid = 0;
    {
      await using k = await createWindowsKernel();
      const child = await k.spawn();
      childPid = child.pid;
      watch = openProcess(child.pid, ProcessAccess.SYNCHRONIZE);
      const access = ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION;
      assertStrictEquals(await k.self.main.openProcess(child, access, "kid"), 0);
      leftOpen = k.self.main.handleValue("kid");
      assertStrictEquals(kernel32().GetProcessId(pointerFrom(leftOpen)), child.pid);
      assertStrictEquals(waitFor(watch, 0), false, "the child runs before dispose");
    } // everything is left to dispose
    using _watch = watch;
    assertStrictEquals(waitFor(watch, 5_000), true, "the child has ended");
    // Non-destructive: GetProcessId answers 0 for a handle that is no longer that process's.
    assertNotStrictEquals(
      kernel32().GetProcessId(pointerFrom(leftOpen)),
      childPid,
      "closed at dispose",
    );
  },
);
