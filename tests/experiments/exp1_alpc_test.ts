/**
 * Experiment 1 over ALPC against the fake kernel (tests/fake_kernel_alpc.ts), as exp1_test.ts
 * runs it over LPC: the same READ protocol and checks behind NtAlpcCreatePort and
 * NtAlpcSendWaitReceivePort; the confused deputy reads the secret for the client, the safe mode
 * (NtAlpcImpersonateClientOfPort) is denied it; hostile requests are refused and the server
 * lives on; every handle is closed and the thread never stays impersonating.
 */

import { assertEquals, assertStrictEquals } from "@std/assert";
import {
  decodeReadReply,
  encodeReadRequest,
  type ReadContext,
  serveRead,
} from "../../experiments/exp1/exp1_protocol.ts";
import { AlpcClient } from "../../ffi/alpc/client.ts";
import { createAlpcPort } from "../../ffi/alpc/port.ts";
import { AlpcServer } from "../../ffi/alpc/server.ts";
import { NtError, NTSTATUS } from "../../ffi/status.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 500, tid: 501 };
const PORT = "\\RPC Control\\exp1-alpc";

/** The secret, readable by the server's own identity, denied to the client's. */
function secretFs(k: FakeKernel): ReadContext & { opened: string[]; closed: string[] } {
  const opened: string[] = [];
  const closed: string[] = [];
  return {
    opened,
    closed,
    rootFinalPath: () => "\\\\?\\C:\\lab",
    open(relative) {
      if (k.impersonating.get(SERVER.tid) === CLIENT.pid) {
        throw new NtError("NtCreateFile", NTSTATUS.STATUS_ACCESS_DENIED, "ntstatus", relative);
      }
      opened.push(relative);
      return {
        finalPath: () => `\\\\?\\C:\\lab\\${relative}`,
        read: (offset, length) =>
          new TextEncoder().encode("TOP SECRET").subarray(Number(offset), Number(offset) + length),
        [Symbol.dispose]: () => void closed.push(relative),
      };
    },
  };
}

function exchange(impersonate: boolean) {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort(PORT, { nt: k.symbols }));
  const fs = secretFs(k);
  const impersonated: (number | undefined)[] = [];
  const server = new AlpcServer(port, {
    request: (r) =>
      serveRead(r.data, {
        ...fs,
        ...(impersonate
          ? {
            impersonate: <T>(fn: () => T): T =>
              r.impersonate(() => {
                impersonated.push(k.impersonating.get(SERVER.tid));
                return fn();
              }),
          }
          : {}),
      }),
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(CLIENT, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  const ask = (bytes: Uint8Array) =>
    decodeReadReply(k.as(CLIENT, () => client.request(bytes)).data);
  const main = ask(encodeReadRequest({ path: "secret.txt", offset: 0n, length: 10 }));
  const hostile = [
    encodeReadRequest({ path: "..\\x", offset: 0n, length: 1 }),
    encodeReadRequest({ path: "C:\\Windows\\win.ini", offset: 0n, length: 1 }),
    new Uint8Array(3),
    encodeReadRequest({ path: "a", offset: 0n, length: 1 }, 7),
  ];
  const refusedProbes = hostile.map(ask).filter((r) => r.status !== 0).length;
  const after = ask(encodeReadRequest({ path: "secret.txt", offset: 4n, length: 3 }));
  assertStrictEquals(after.status, main.status, "the server still serves after hostile requests");
  k.as(CLIENT, () => client.close());
  while (k.as(SERVER, () => server.step(0)));
  k.as(SERVER, () => server[Symbol.dispose]());
  assertStrictEquals(k.openHandles(SERVER.pid), 0, "the server closed every handle");
  assertStrictEquals(k.openHandles(CLIENT.pid), 0);
  assertStrictEquals(k.impersonating.size, 0, "never left impersonating");
  assertEquals(fs.closed, fs.opened, "every opened file was closed");
  return { main, refusedProbes, impersonated, events: server.events };
}

Deno.test("exp1 over ALPC, confused deputy: the server reads the secret for the client", () => {
  const r = exchange(false);
  assertEquals([r.main.statusName, r.main.stage, r.main.impersonated], [
    "STATUS_SUCCESS",
    "served",
    false,
  ]);
  assertStrictEquals(new TextDecoder().decode(r.main.bytes), "TOP SECRET");
  assertStrictEquals(r.refusedProbes, 4);
  const kinds = r.events.map((e) => e.event);
  assertEquals(kinds.slice(0, 3), ["accept", "LPC_REQUEST", "reply"]);
  assertStrictEquals(kinds.at(-1), "LPC_PORT_CLOSED");
  // The client is told apart by the PortContext of each message's context attribute.
  const accept = r.events.find((e) => e.event === "accept")!;
  const requests = r.events.filter((e) => e.event === "LPC_REQUEST");
  assertStrictEquals(requests.length, 6);
  for (const q of requests) {
    assertEquals([q.context, q.pid, q.tid], [accept.context, CLIENT.pid, CLIENT.tid]);
    assertStrictEquals(q.attributes?.includes("CONTEXT"), true);
  }
});

Deno.test("exp1 over ALPC, safe mode: impersonating with NtAlpcImpersonateClientOfPort, the server is denied what the client is denied", () => {
  const r = exchange(true);
  assertEquals([r.main.statusName, r.main.stage, r.main.impersonated], [
    "STATUS_ACCESS_DENIED",
    "open",
    true,
  ]);
  assertStrictEquals(r.main.bytes.byteLength, 0);
  assertStrictEquals(r.refusedProbes, 4);
  assertEquals(r.impersonated, [CLIENT.pid, CLIENT.pid], "the open ran as the client, twice");
});
