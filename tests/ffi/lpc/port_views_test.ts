/** Legacy port views (PORT_VIEW / REMOTE_PORT_VIEW) through LpcClient and LpcServer, on the fake. */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { createConnectionPort, LpcClient, LpcServer } from "../../../ffi/lpc/port.ts";
import { viewRangeProblem } from "../../../ffi/lpc/port_view.ts";
import { Section } from "../../../ffi/nt/sections.ts";
import { NtError } from "../../../ffi/status.ts";
import { FakeKernel, type Identity } from "../../fake_kernel.ts";

const SERVER: Identity = { pid: 100, tid: 101 };
const A: Identity = { pid: 200, tid: 201 };
const PORT = "\\RPC Control\\deno-lpc-views";
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A server whose handler reads `length` bytes at `offset` of the client's view and replies with their sum. */
function lab() {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort(PORT, { nt: k.symbols }));
  const server = new LpcServer(port, {
    request: ({ data, connection }) => {
      const view = connection.view;
      if (!view) return new TextEncoder().encode("no view");
      const offset = dv(data).getUint32(0, true);
      const length = dv(data).getUint32(4, true);
      const bytes = view.read(offset, length);
      view.write(offset, bytes.map((b) => b ^ 0xff)); // the server answers in the view
      const out = new Uint8Array(4);
      dv(out).setUint32(0, bytes.reduce((a, b) => a + b, 0), true);
      return out;
    },
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  return { k, server };
}

const ask = (offset: number, length: number) => {
  const b = new Uint8Array(8);
  dv(b).setUint32(0, offset, true);
  dv(b).setUint32(4, length, true);
  return b;
};

Deno.test("a client view: the client writes at an offset, the server reads it there and answers in place", () => {
  const { k, server } = lab();
  const client = k.as(A, () => LpcClient.connect(PORT, { nt: k.symbols, view: { size: 100_000 } }));
  const view = client.view!;
  assertStrictEquals(view.size, 102_400, "rounded up to pages (AlpcpMapLegacyPortView.c)");
  assert(view.remoteBase !== null && view.remoteBase !== 0n, "the server's address is known");
  assertStrictEquals(client.serverView, null, "the server gave no view");
  const conn = [...server.connections.values()][0]!;
  assertStrictEquals(conn.view?.size, 102_400, "the server sees the same size");
  assertStrictEquals(k.openHandles(A.pid), 1, "the client's section handle is already closed");
  const payload = new Uint8Array(70_000).map((_, i) => i % 251);
  view.write(20_000, payload);
  const reply = k.as(A, () => client.request(ask(20_000, payload.byteLength)));
  const sum = payload.reduce((a, b) => a + b, 0);
  assertStrictEquals(dv(reply.data).getUint32(0, true), sum, "the server read the client's bytes");
  assertEquals(view.read(20_000, 3), new Uint8Array([0xff, 0xfe, 0xfd]), "and wrote back in place");
  assertStrictEquals(k.views.mapped(A.pid), 1);
  assertStrictEquals(k.views.mapped(SERVER.pid), 1);
  k.as(A, () => client.close());
  assertStrictEquals(k.views.mapped(A.pid), 0, "closing the client port unmaps its view");
  assert(!view.mapped);
  assertThrows(() => view.read(0, 1), TypeError);
  k.as(SERVER, () => server.step(0)); // LPC_PORT_CLOSED: the server closes its port
  assertStrictEquals(k.views.mapped(SERVER.pid), 0, "and the server's goes with its port");
  k.as(SERVER, () => server[Symbol.dispose]());
  assertStrictEquals(k.openHandles(SERVER.pid), 0);
});

Deno.test("without a view option the connection has no views; requests work as before", () => {
  const { k, server } = lab();
  const client = k.as(A, () => LpcClient.connect(PORT, { nt: k.symbols }));
  assertStrictEquals(client.view, null);
  assertStrictEquals([...server.connections.values()][0]!.view, null);
  const reply = k.as(A, () => client.request(ask(0, 0)));
  assertStrictEquals(new TextDecoder().decode(reply.data), "no view");
  k.as(A, () => client.close());
});

Deno.test("a view is bounds checked: a range beyond its size is a RangeError naming it", () => {
  const { k } = lab();
  const client = k.as(A, () => LpcClient.connect(PORT, { nt: k.symbols, view: { size: 4096 } }));
  const e = assertThrows(() => client.view!.write(4000, new Uint8Array(100)), RangeError);
  assert(e.message.includes("exceeds the view's 4096 bytes"), e.message);
  assertEquals(viewRangeProblem(-1, 1, 10), "offset -1 is not a byte offset");
  assertEquals(viewRangeProblem(11, 0, 10), "offset 11 is beyond the view's 10 bytes");
  assertEquals(viewRangeProblem(10, 0, 10), null);
  k.as(A, () => client.close());
});

Deno.test("a caller's section stays the caller's; a view larger than it fails with STATUS_INSUFFICIENT_RESOURCES", () => {
  const { k } = lab();
  k.as(A, () => {
    using section = Section.create(8192, { nt: k.symbols });
    const e = assertThrows(
      () => LpcClient.connect(PORT, { nt: k.symbols, view: { size: 12_288, section } }),
      NtError,
    );
    assert(e.is("STATUS_INSUFFICIENT_RESOURCES"), e.message);
    using client = LpcClient.connect(PORT, { nt: k.symbols, view: { size: 8192, section } });
    assertStrictEquals(client.view?.size, 8192);
    assert(!section.closed, "the given section is not closed by connect");
  });
  assertStrictEquals(k.openHandles(A.pid), 0);
  assertStrictEquals(k.views.mapped(A.pid), 0);
});

Deno.test("a refused connection unmaps the client's view", () => {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort(PORT, { nt: k.symbols }));
  const server = new LpcServer(port, { accept: () => false, request: (r) => r.data }, {
    nt: k.symbols,
  });
  k.actor(SERVER, () => server.step(0));
  const e = assertThrows(
    () => k.as(A, () => LpcClient.connect(PORT, { nt: k.symbols, view: { size: 4096 } })),
    NtError,
  );
  assert(e.is("STATUS_PORT_CONNECTION_REFUSED"));
  assertStrictEquals(k.views.mapped(), 0);
  assertStrictEquals(k.openHandles(A.pid), 0);
  k.as(SERVER, () => server[Symbol.dispose]());
});

Deno.test("views stay bounded: 100 clients connect with a view and go (closing, or killed); the server holds one mapping at a time, none at the end", () => {
  const { k, server } = lab();
  let most = 0;
  for (let i = 0; i < 100; i++) {
    const who = k.spawnProcess();
    const client = k.as(
      who,
      () => LpcClient.connect(PORT, { nt: k.symbols, view: { size: 65536 } }),
    );
    most = Math.max(most, k.views.mapped(SERVER.pid));
    client.view!.write(0, new Uint8Array([i]));
    const reply = k.as(who, () => client.request(ask(0, 1)));
    assertStrictEquals(dv(reply.data).getUint32(0, true), i);
    if (i % 2) k.as(who, () => client.close());
    else k.killProcess(who.pid);
    k.as(SERVER, () => server.step(0)); // LPC_PORT_CLOSED: the server closes that connection
    assertStrictEquals(k.views.mapped(who.pid), 0);
  }
  assertStrictEquals(most, 1, "one mapping per live connection");
  assertStrictEquals(k.views.mapped(SERVER.pid), 0, "every server-side mapping went with its port");
  assertStrictEquals(server.connections.size, 0);
  k.as(SERVER, () => server[Symbol.dispose]());
  assertStrictEquals(k.openHandles(SERVER.pid), 0);
});
