/**
 * The Worker command mailbox (ffi/_mailbox.ts), pure Deno: a command waits without letting the
 * event loop end (E12: a pending `Atomics.waitAsync` alone does not keep it alive), and a Worker
 * that dies in the middle of a command makes the host's command reject with the Worker's error, at
 * once, not after its timeout.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertRejects,
  assertStrictEquals,
} from "@std/assert";
import {
  callMailbox,
  createMailbox,
  MAILBOX,
  mailboxDeath,
  markMailboxDead,
  watchWorker,
} from "../../ffi/_mailbox.ts";
import { NtError } from "../../ffi/status.ts";
import { REPO_ROOT } from "../_helpers.ts";

const FIXTURE = new URL("../fixtures/mailbox_worker.ts", import.meta.url);

/** Starts the fixture Worker on a fresh mailbox; `guard: false` leaves out `guardMailbox`. */
async function start(guard = true, watch = true) {
  const box = createMailbox();
  const worker = new Worker(FIXTURE, { type: "module" });
  if (watch) watchWorker(worker, box, "test worker");
  await new Promise<void>((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (e) => reject(new Error(e.message));
    worker.postMessage({ box, guard });
  });
  return {
    box,
    call: (request: unknown, timeoutMs = 10_000) => callMailbox(box, request, { timeoutMs }),
    [Symbol.dispose]: () => worker.terminate(),
  };
}

async function childRun(mode: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "tests/fixtures/mailbox_alone.ts", mode],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const td = new TextDecoder();
  return { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
}

Deno.test("a script whose only pending work is a mailbox wait gets its answer and exits 0 (E12)", async () => {
  const r = await childRun("timer");
  assertNotMatch(r.stderr, /Top-level await promise never resolved/);
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(r.stdout.trim(), JSON.stringify({ echoed: { op: "echo", value: 42 } }));
});

Deno.test("a Worker that calls self.close() mid-command, with nothing else pending: the command rejects, the script exits 0", async () => {
  const r = await childRun("worker-close");
  assertNotMatch(r.stderr, /Top-level await promise never resolved/);
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(r.stdout.trim(), "rejected: the worker ended itself (self.close())");
});

Deno.test("commands run on the Worker: the reply, and the handler's own error with its type", async () => {
  using w = await start();
  assertEquals(await w.call({ op: "echo", value: [1, "two"] }), { echoed: [1, "two"] });
  const e = await assertRejects(() => w.call({ op: "throw", message: "bad argument" }), Error);
  assertStrictEquals(e.name, "RangeError");
  assertStrictEquals(e.message, "bad argument");
  // The mailbox is free again after an error reply.
  assertEquals(await w.call({ op: "echo", value: 3 }), { echoed: 3 });
  assertStrictEquals(mailboxDeath(w.box), undefined);
});

Deno.test("the Worker dies mid-command (uncaught error): the command rejects with the Worker's error, long before its timeout", async () => {
  using w = await start();
  const t0 = Date.now();
  await assertRejects(
    () => w.call({ op: "die", message: "boom in the middle of a command" }, 30_000),
    Error,
    "boom in the middle of a command",
  );
  assert(Date.now() - t0 < 10_000, `rejected after ${Date.now() - t0} ms`);
  // Every later command rejects at once with the same error.
  await assertRejects(() => w.call({ op: "echo" }), Error, "boom in the middle of a command");
});

Deno.test("the Worker dies mid-command without its own guard: the host's watchWorker (the error event) rejects the command", async () => {
  using w = await start(false);
  const t0 = Date.now();
  const e = await assertRejects(
    () => w.call({ op: "die", message: "unguarded boom" }, 30_000),
    Error,
  );
  assertMatch(e.message, /^test worker: .*unguarded boom/);
  assert(Date.now() - t0 < 10_000, `rejected after ${Date.now() - t0} ms`);
});

Deno.test("the Worker calls self.close() while handling a command: the command rejects and says so", async () => {
  using w = await start();
  await assertRejects(() => w.call({ op: "close" }), Error, "self.close()");
});

Deno.test("a slow command is waited for; one that is never answered times out and frees the slot", async () => {
  using w = await start();
  assertEquals(await w.call({ op: "sleep", ms: 600, value: "late" }), { echoed: "late" });
  const box = createMailbox(); // nobody serves this one
  await assertRejects(() => callMailbox(box, { op: "echo" }, { timeoutMs: 300 }), Error, "in time");
  assertStrictEquals(Atomics.load(new Int32Array(box, 0, 4), MAILBOX.state), 0);
});

Deno.test("the owner's failed() and markMailboxDead reject a waiting command; the first death note wins and keeps its type", async () => {
  const box = createMailbox();
  let failure: Error | undefined;
  setTimeout(() => (failure = new Error("the server thread ended: its receive failed")), 100);
  await assertRejects(
    () => callMailbox(box, { op: "echo" }, { timeoutMs: 10_000, failed: () => failure }),
    Error,
    "its receive failed",
  );
  const other = createMailbox();
  const pending = callMailbox(other, { op: "echo" }, { timeoutMs: 10_000 });
  markMailboxDead(other, new NtError("NtReplyWaitReceivePort", 0xC0000008, "ntstatus"));
  markMailboxDead(other, new Error("a later reason"));
  const e = await assertRejects(() => pending, NtError);
  assertStrictEquals(e.code, 0xC0000008);
  assert(mailboxDeath(other) instanceof NtError);
  // A message too long for the note is kept as its message only, and still parses.
  const third = createMailbox();
  markMailboxDead(third, new Error("x".repeat(10_000)));
  assertStrictEquals(mailboxDeath(third)?.message.length, 1000);
});
