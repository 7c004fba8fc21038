/**
 * The server Worker plumbing both kinds share (ffi/_server_worker.ts on the host,
 * ffi/_server_thread.ts on the server's thread), pure Deno: a fake entry
 * (tests/fixtures/fake_server_entry.ts) stands in for the LPC and ALPC entries, which need Windows.
 */

import { assert, assertEquals, assertRejects, assertStrictEquals } from "@std/assert";
import { ServerWorkerHost } from "../../ffi/_server_worker.ts";

const entry = new URL("../fixtures/fake_server_entry.ts", import.meta.url);
const handlerModule = new URL("../fixtures/fake_server_handler.ts", import.meta.url);

function start(handlerOptions: Record<string, unknown>, seen: unknown[] = []) {
  const flags = new SharedArrayBuffer(8);
  const host = ServerWorkerHost.start({ entry, what: "fake server", init: { extra: 7 } }, {
    portName: "\\RPC Control\\fake",
    sddl: "D:P",
    handlerModule,
    handlerOptions: { flags, ...handlerOptions },
    pollMs: 5,
    onEvent: (e: unknown) => seen.push(e),
  });
  return { host, flags: new Int32Array(flags) };
}

Deno.test("server worker: ready with the thread's ids, the timeline, commands on the server's thread, stop", async () => {
  const seen: unknown[] = [];
  const { host: started, flags } = start({}, seen);
  const host = await started;
  assertEquals([host.threadId, host.processId], [4242, Deno.pid]);
  assertEquals(await host.command("hi", 10_000), {
    request: "hi",
    portName: "\\RPC Control\\fake",
    sddl: "D:P",
    pollMs: 5,
    extra: 7, // the kind's own init field reaches the server
    steps: true,
  });
  const err = await assertRejects(() => host.command("throw", 10_000), Error);
  assertStrictEquals(err.message, "a command that fails");
  await host.stop();
  assert(host.events.length > 0);
  assertEquals(host.events[0], { step: 1, extra: 7 });
  assertEquals(seen, host.events);
  assertStrictEquals(flags[1], 1, "the server was disposed");
  assertStrictEquals(host.error, undefined);
  const late = await assertRejects(() => host.command("hi", 1_000), Error);
  assertStrictEquals(late.message, "the fake server worker has stopped");
});

Deno.test("server worker: a handler module that throws rejects start with its error", async () => {
  const { host } = start({ failHandler: true });
  const e = await assertRejects(() => host, Error);
  assertStrictEquals(e.message, "no handler today");
  assertStrictEquals(e.name, "RangeError");
});

Deno.test("server worker: a server that cannot be made rejects start, and its port is closed", async () => {
  const { host, flags } = start({ failServer: true });
  const e = await assertRejects(() => host, Error);
  assertStrictEquals(e.message, "no server today");
  assertStrictEquals(flags[0], 1, "the port was closed");
  assertStrictEquals(flags[1], 0, "no server was disposed");
});
