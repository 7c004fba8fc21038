/**
 * A hostile ALPC client against the server's view handling (issue 14: ALPC views that are never
 * freed exhaust a server's memory): it keeps sending views it never frees, as requests and as
 * datagrams, and to a handler that throws; the server's mapped-view count stays bounded (runs
 * everywhere, on the fake kernel).
 */

import { assertEquals, assertStrictEquals } from "@std/assert";
import { AlpcClient } from "../../../ffi/alpc/client.ts";
import { createAlpcPort } from "../../../ffi/alpc/port.ts";
import { AlpcServer } from "../../../ffi/alpc/server.ts";
import { FakeKernel, type Identity } from "../../fake_kernel.ts";

const SERVER: Identity = { pid: 100, tid: 101 };
const A: Identity = { pid: 200, tid: 201 };
const PORT = "\\RPC Control\\deno-lpc-alpc-bounded";

Deno.test("a client that never frees its views: requests, datagrams and a throwing handler leave the server no view mapped", () => {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort(PORT, { nt: k.symbols }));
  let n = 0;
  const server = new AlpcServer(port, {
    request: () => {
      if (++n % 3 === 0) throw new Error("a handler that fails");
      return new Uint8Array(0);
    },
    datagram: () => {},
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const a = k.as(A, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  const serverCounts: number[] = [];
  const kept = [];
  for (let i = 0; i < 30; i++) {
    const view = k.as(A, () => a.createView(0x4000)); // never disposed in the loop
    kept.push(view);
    if (i % 2) k.as(A, () => a.request(new Uint8Array(0), { view }));
    else {
      k.as(A, () => a.send(new Uint8Array(0), { view }));
      k.as(SERVER, () => server.step(0)); // the datagram is received and its view released
    }
    serverCounts.push(k.alpcViews(SERVER.pid));
  }
  assertEquals(serverCounts, Array(30).fill(0), "the server released every view it received");
  assertStrictEquals(server.events.filter((e) => e.event === "view-released").length, 30);
  assertStrictEquals(k.alpcViews(A.pid), 30, "the client's own views are its own to free");
  k.as(A, () => a.close());
  assertStrictEquals(k.alpcViews(A.pid), 0, "and they go with its port");
  k.as(SERVER, () => server[Symbol.dispose]());
  assertStrictEquals(k.openHandles(SERVER.pid), 0);
  assertStrictEquals(k.openHandles(A.pid), 0);
});
