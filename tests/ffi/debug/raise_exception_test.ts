/**
 * ffi/debug/raise_exception.ts raiseSecondChance() against a fake RaiseSystem (runs everywhere): the native
 * thread's buffers and stub stay alive until that thread has ended, also after the wait timed out.
 */

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import {
  RAISE_STUB,
  raiseSecondChance,
  type RaiseSystem,
  type RaiseThread,
  SCRATCH_BYTES,
  sweepRaiseThreads,
} from "../../../ffi/debug/raise_exception.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";

const ER = LAYOUTS.EXCEPTION_RECORD;

/** A fake system: "executable" memory is a JS buffer; the thread is a flag the test flips. */
function fakeSystem() {
  const memory = new Uint8Array(4096);
  const log: string[] = [];
  const thread = { done: false, closed: false, block: 0n, blockBytes: 0 };
  const system: RaiseSystem = {
    allocExecutable: (size) => {
      log.push(`alloc ${size}`);
      return Deno.UnsafePointer.of(memory)!;
    },
    freeExecutable: () => void log.push("free"),
    captureContext: () => void log.push("capture"),
    exitThreadAddress: () => 0x7ff000001000n,
    ntRaiseExceptionAddress: () => 0x7ff000002000n,
    startThread: (start, block): RaiseThread => {
      log.push("start");
      thread.blockBytes = block.buffer.byteLength;
      const parameter = Deno.UnsafePointer.of(block)!;
      assertStrictEquals(
        Deno.UnsafePointer.value(start),
        Deno.UnsafePointer.value(Deno.UnsafePointer.of(memory)),
      );
      thread.block = Deno.UnsafePointer.value(parameter);
      return {
        tid: 4242,
        waitAsync: () => Promise.resolve(thread.done),
        ended: () => thread.done,
        exitCode: () => 0,
        close: () => {
          thread.closed = true;
          log.push("close");
        },
      };
    },
  };
  /** What the native thread would read now: the block's three pointers and the record's code. */
  const readBlock = () => {
    const view = new Deno.UnsafePointerView(Deno.UnsafePointer.create(thread.block)!);
    const record = view.getBigUint64(0);
    const ctx = view.getBigUint64(8);
    const raise = view.getBigUint64(16);
    const code = new Deno.UnsafePointerView(Deno.UnsafePointer.create(record)!).getUint32(
      ER.offsets.ExceptionCode,
    );
    return { record, ctx, raise, code };
  };
  return { memory, log, thread, system, readBlock };
}

Deno.test("raiseSecondChance(): the stub is written, the raise announced first, and freed once the thread has ended", async () => {
  const f = fakeSystem();
  f.thread.done = true;
  const announced: { code: number; address: bigint }[] = [];
  const r = await raiseSecondChance(0xe0000001, [1n], 1000, {
    system: f.system,
    beforeRaise: (a) => {
      announced.push(a);
      f.log.push("announce");
    },
  });
  assertEquals([...f.memory.subarray(0, RAISE_STUB.length)], [...RAISE_STUB]);
  assertEquals(announced, [{ code: 0xe0000001, address: r.address }]);
  assertStrictEquals(r.address, Deno.UnsafePointer.value(Deno.UnsafePointer.of(f.memory)));
  assertEquals(r, { tid: 4242, exitCode: 0, address: r.address });
  assertEquals(f.log, ["alloc 4096", "capture", "announce", "start", "close", "free"]);
  assertStrictEquals(f.readBlock().raise, 0x7ff000002000n);
});

Deno.test("raiseSecondChance(): at the timeout the thread's stub, record, context, stack and block stay alive until it ends", async () => {
  const f = fakeSystem();
  const r = await raiseSecondChance(0xe0000042, [], 10, { system: f.system });
  assertStrictEquals(r.exitCode, undefined, "still blocked");
  assert(!f.log.includes("free"), "the stub is not freed while the thread may run");
  assert(!f.thread.closed, "its handle is kept to see it end");
  const before = f.readBlock();
  assertStrictEquals(before.code, 0xe0000042);
  // Churn the heap (and collect, when --v8-flags=--expose-gc is given): nothing the thread uses moves or goes.
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 20_000; i++) new Uint8Array(32 + (i % 64)).fill(0xcc);
  gc?.();
  assertEquals(f.readBlock(), before, "the pointer block and the record are intact");
  assertStrictEquals(sweepRaiseThreads(), 1, "still running: kept");
  f.thread.done = true;
  assertStrictEquals(sweepRaiseThreads(), 0, "ended: released");
  assert(f.thread.closed);
  assertStrictEquals(f.log.filter((l) => l === "free").length, 1);
});

Deno.test("raiseSecondChance(): the pointer block the native thread reads lives in a backing store larger than 64 bytes and keeps its contents through heap churn", async () => {
  // Measured on Deno 2.9.6: a pointer to a 24-byte BigUint64Array read after allocating 20 000
  // small arrays no longer showed its contents in 49 of 50 rounds (V8 keeps typed arrays of up to
  // 64 bytes inside its moving heap); a view on a 128-byte ArrayBuffer kept them every time.
  assert(SCRATCH_BYTES > 64);
  for (let round = 0; round < 20; round++) {
    const f = fakeSystem();
    const r = await raiseSecondChance(0xe0000100 + round, [], 0, { system: f.system });
    assert(
      f.thread.blockBytes > 64,
      `the block's backing store is ${f.thread.blockBytes} bytes`,
    );
    for (let i = 0; i < 20_000; i++) new Uint8Array(32).fill(0xcc);
    const seen = f.readBlock();
    assertStrictEquals(seen.raise, 0x7ff000002000n, `round ${round}: the block moved`);
    assertStrictEquals(seen.code, 0xe0000100 + round, `round ${round}`);
    assertStrictEquals(r.exitCode, undefined);
    f.thread.done = true;
    assertStrictEquals(sweepRaiseThreads(), 0);
  }
});
