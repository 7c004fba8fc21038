/**
 * decodeThreadList() on a `SystemProcessInformation` buffer built here from LAYOUTS: the thread
 * entries after each process entry, the chain, and a count larger than the buffer holds; on
 * Windows (and Wine) the real list against this process's own threads.
 */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import {
  currentThreadId,
  decodeThreadList,
  listProcessesAndThreads,
  openThread,
  type ThreadEntry,
} from "../../../ffi/nt/processes.ts";
import { NtError } from "../../../ffi/status.ts";
import { ALPC_SERVER_INFORMATION_THREAD_ACCESS } from "../../../ffi/alpc/constants.ts";
import { wineVersion } from "../../../ffi/ntdll.ts";
import { WINDOWS_ONLY, windowsTest } from "../../_helpers.ts";

const SPI = LAYOUTS.SYSTEM_PROCESS_INFORMATION;
const STI = LAYOUTS.SYSTEM_THREAD_INFORMATION;
const CID = LAYOUTS.CLIENT_ID;

/** One process entry and its threads; `claim` overrides NumberOfThreads. */
function processEntry(
  pid: number,
  threads: Omit<ThreadEntry, "pid">[],
  claim = threads.length,
): Uint8Array {
  const buf = new Uint8Array(SPI.size + threads.length * STI.size);
  const dv = new DataView(buf.buffer);
  dv.setUint32(SPI.offsets.NumberOfThreads, claim, true);
  dv.setBigUint64(SPI.offsets.UniqueProcessId, BigInt(pid), true);
  threads.forEach((t, i) => {
    const at = SPI.size + i * STI.size;
    dv.setBigUint64(at + STI.offsets.ClientId + CID.offsets.UniqueProcess, BigInt(pid), true);
    dv.setBigUint64(at + STI.offsets.ClientId + CID.offsets.UniqueThread, BigInt(t.tid), true);
    dv.setUint32(at + STI.offsets.ThreadState, t.state, true);
    dv.setUint32(at + STI.offsets.WaitReason, t.waitReason, true);
  });
  return buf;
}

function chain(...entries: Uint8Array[]): Uint8Array {
  const total = entries.reduce((a, e) => a + e.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  entries.forEach((e, i) => {
    out.set(e, at);
    if (i < entries.length - 1) {
      new DataView(out.buffer).setUint32(at + SPI.offsets.NextEntryOffset, e.byteLength, true);
    }
    at += e.byteLength;
  });
  return out;
}

Deno.test("decodeThreadList() reads each process's threads: tid, state and wait reason", () => {
  const buf = chain(
    processEntry(4, [{ tid: 8, state: 5, waitReason: 6 }]),
    processEntry(1234, [{ tid: 1300, state: 5, waitReason: 17 }, {
      tid: 1304,
      state: 2,
      waitReason: 0,
    }]),
  );
  assertEquals(decodeThreadList(buf), [
    { pid: 4, tid: 8, state: 5, waitReason: 6 },
    { pid: 1234, tid: 1300, state: 5, waitReason: 17 },
    { pid: 1234, tid: 1304, state: 2, waitReason: 0 },
  ]);
});

Deno.test("decodeThreadList() stops at the buffer's end when NumberOfThreads claims more", () => {
  const buf = processEntry(77, [{ tid: 78, state: 5, waitReason: 17 }], 1000);
  assertEquals(decodeThreadList(buf), [{ pid: 77, tid: 78, state: 5, waitReason: 17 }]);
  assertEquals(decodeThreadList(new Uint8Array(10)), []);
});

windowsTest(
  "listProcessesAndThreads() lists this process with as many threads as it claims, the calling thread among them; openThread() opens it",
  WINDOWS_ONLY,
  () => {
    const { processes, threads } = listProcessesAndThreads();
    const me = processes.find((p) => p.pid === Deno.pid);
    assert(me, "this process is listed");
    const mine = threads.filter((t) => t.pid === Deno.pid);
    assertStrictEquals(mine.length, me.threads);
    const tid = currentThreadId();
    const self = mine.find((t) => t.tid === tid);
    assert(self, `the calling thread ${tid} is among ${mine.map((t) => t.tid)}`);
    // Wine 8 reports ThreadState 0 for the calling thread (measured); Windows says Running (2).
    assertStrictEquals(self.state, wineVersion() === null ? 2 : 0, "the calling thread's state");
    using thread = openThread(tid, ALPC_SERVER_INFORMATION_THREAD_ACCESS);
    assertStrictEquals(thread.kind, "thread");
    assertThrows(() => openThread(0x7ffffff0, ALPC_SERVER_INFORMATION_THREAD_ACCESS), NtError);
  },
);
