/**
 * The allocation-free handler path (`requestInto`, `logRequests: false`) against the full fake
 * kernel, for both servers: the reply a client gets is the one the handler wrote (MessageId and
 * ClientId as the kernel wants them, so the waiting client is the one answered), two clients are
 * told apart, a bad length or a throw sends an empty reply with an `error` event, a view request
 * still gets its view (ALPC, released after), and nothing per request is on the timeline.
 */

import { assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import { createConnectionPort, LpcClient, LpcServer } from "../../ffi/lpc/port.ts";
import { createAlpcPort } from "../../ffi/alpc/port.ts";
import { AlpcClient } from "../../ffi/alpc/client.ts";
import { AlpcServer } from "../../ffi/alpc/server.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const SERVER: Identity = { pid: 100, tid: 101 };
const A: Identity = { pid: 200, tid: 201 };
const B: Identity = { pid: 300, tid: 301 };
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

/** Writes `<pid>:<request>` (or misbehaves on "throw" and "too-long"). */
function handler(seen: { views: number[] }) {
  return {
    requestInto(
      req: { data: Uint8Array; header: { clientId: { process: number } }; view?: { size: number } },
      reply: Uint8Array,
    ): number {
      const s = text(req.data);
      if (s === "throw") throw new Error("the handler threw");
      if (s === "too-long") return reply.byteLength + 1;
      if (req.view) seen.views.push(req.view.size);
      const out = bytes(`${req.header.clientId.process}:${s}`);
      reply.set(out);
      return out.byteLength;
    },
  };
}

Deno.test("LpcServer requestInto: echoes per client, empty reply and an error event on a throw or a bad length, no per-request events", () => {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort("\\RPC Control\\into", { nt: k.symbols }));
  const server = new LpcServer(port, handler({ views: [] }), {
    nt: k.symbols,
    now: () => 0,
    logRequests: false,
  });
  k.actor(SERVER, () => server.step(0));
  const a = k.as(A, () => LpcClient.connect("\\RPC Control\\into", { nt: k.symbols }));
  const b = k.as(B, () => LpcClient.connect("\\RPC Control\\into", { nt: k.symbols }));
  for (let i = 0; i < 3; i++) {
    assertStrictEquals(text(k.as(A, () => a.request(bytes(`a${i}`))).data), `${A.pid}:a${i}`);
    assertStrictEquals(text(k.as(B, () => b.request(bytes(`b${i}`))).data), `${B.pid}:b${i}`);
  }
  const r = k.as(A, () => a.request(bytes("throw")));
  assertStrictEquals(r.header.type, 2, "LPC_REPLY");
  assertStrictEquals(r.data.byteLength, 0);
  assertStrictEquals(k.as(A, () => a.request(bytes("too-long"))).data.byteLength, 0);
  assertEquals(server.events.map((e) => e.event), ["accept", "accept", "error", "error"]);
  assertMatch(server.events[3]!.note!, /requestInto returned 473, not a length in 0\.\.472/);
  k.as(A, () => a.close());
  k.as(B, () => b.close());
  k.as(SERVER, () => server[Symbol.dispose]());
});

Deno.test("AlpcServer requestInto: echoes per client, a view request gets its view (released), errors as empty replies", () => {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort("\\RPC Control\\into-alpc", { nt: k.symbols }));
  const seen = { views: [] as number[] };
  const server = new AlpcServer(port, handler(seen), {
    nt: k.symbols,
    now: () => 0,
    logRequests: false,
  });
  k.actor(SERVER, () => server.step(0));
  const a = k.as(A, () => AlpcClient.connect("\\RPC Control\\into-alpc", { nt: k.symbols }));
  const b = k.as(B, () => AlpcClient.connect("\\RPC Control\\into-alpc", { nt: k.symbols }));
  for (let i = 0; i < 3; i++) {
    assertStrictEquals(text(k.as(B, () => b.request(bytes(`b${i}`))).data), `${B.pid}:b${i}`);
    assertStrictEquals(text(k.as(A, () => a.request(bytes(`a${i}`))).data), `${A.pid}:a${i}`);
  }
  const view = k.as(A, () => a.createView(0x4000));
  assertStrictEquals(text(k.as(A, () => a.request(bytes("v"), { view })).data), `${A.pid}:v`);
  assertEquals(seen.views.length, 1);
  assertStrictEquals(k.as(A, () => a.request(bytes("throw"))).data.byteLength, 0);
  assertStrictEquals(k.as(A, () => a.request(bytes("too-long"))).data.byteLength, 0);
  assertEquals(server.events.map((e) => e.event), [
    "accept",
    "accept",
    "LPC_REQUEST", // the view request is logged (views always are)
    "view-released",
    "error",
    "error",
  ]);
  k.as(A, () => a.close());
  k.as(B, () => b.close());
  k.as(SERVER, () => server[Symbol.dispose]());
});
