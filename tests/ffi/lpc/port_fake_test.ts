/** The LPC server and client against the scripted fake kernel (runs everywhere). */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import {
  createConnectionPort,
  LpcClient,
  type LpcEvent,
  type LpcHandler,
  LpcServer,
} from "../../../ffi/lpc/port.ts";
import { encodePortMessage, PortMessageError } from "../../../ffi/port_message.ts";
import { NtError, NTSTATUS } from "../../../ffi/status.ts";
import { FakeKernel, type Identity, ThreadEnded } from "../../fake_kernel.ts";

const SERVER: Identity = { pid: 100, tid: 101 };
const A: Identity = { pid: 200, tid: 201 };
const B: Identity = { pid: 300, tid: 301 };
const PORT = "\\RPC Control\\deno-lpc-test";
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

function lab(handler: Partial<LpcHandler> = {}) {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort(PORT, { nt: k.symbols }));
  const server = new LpcServer(
    port,
    { request: (r) => bytes(`echo:${text(r.data)}`), ...handler },
    { nt: k.symbols, now: () => 0 },
  );
  k.actor(SERVER, () => server.step(0));
  const connect = (who: Identity, info?: Uint8Array) =>
    k.as(
      who,
      () => LpcClient.connect(PORT, { nt: k.symbols, ...(info ? { connectInfo: info } : {}) }),
    );
  const stop = () => k.as(SERVER, () => server[Symbol.dispose]());
  return { k, server, connect, stop };
}

const kinds = (events: LpcEvent[]) => events.map((e) => e.event);

Deno.test("connect, request and reply: the reply echoes MessageId and ClientId; the timeline records each step", () => {
  const { k, server, connect, stop } = lab();
  const client = connect(A, bytes("hello"));
  assertStrictEquals(client.maxMessageLength, 512);
  const reply = k.as(A, () => client.request(bytes("ping")));
  assertStrictEquals(text(reply.data), "echo:ping");
  assertStrictEquals(reply.header.type, 2, "LPC_REPLY");
  assertEquals(kinds(server.events), ["accept", "LPC_REQUEST", "reply"]);
  const req = server.events[1]!;
  assertStrictEquals(req.pid, A.pid);
  assertStrictEquals(req.tid, A.tid);
  assertStrictEquals(
    req.context,
    server.events[0]!.context,
    "the request carries the connection's PortContext",
  );
  assertStrictEquals(server.connections.size, 1);
  // The client passes its whole buffer (0x80) so that it can receive the server's data back
  // (AlpcpReceiveLegacyConnectionReply.c returns min(its length, the server's)): the server
  // receives the capacity, the rest zero.
  const info = [...server.connections.values()][0]!.connectInfo;
  assertStrictEquals(info.byteLength, 0x80);
  assertStrictEquals(text(info.subarray(0, 5)), "hello");
  assertStrictEquals(
    text(client.connectInfo.subarray(0, 5)),
    "hello",
    "the server's data came back",
  );
  k.as(A, () => client.close());
  stop();
  assertStrictEquals(k.openHandles(SERVER.pid), 0, "the server closed every handle");
  assertStrictEquals(k.openHandles(A.pid), 0);
});

Deno.test("a refused connection fails with STATUS_PORT_CONNECTION_REFUSED; the server logs it", () => {
  const { k, server, connect, stop } = lab({ accept: (cid) => cid.process !== A.pid });
  const e = assertThrows(() => connect(A), NtError);
  assert(e.is("STATUS_PORT_CONNECTION_REFUSED"));
  assertEquals(kinds(server.events), ["refuse"]);
  const b = connect(B);
  assertStrictEquals(server.connections.size, 1);
  k.as(B, () => b.close());
  stop();
});

Deno.test("name not found, name collision, denied connect", () => {
  const { k, connect, stop } = lab();
  const e = assertThrows(
    () => k.as(A, () => LpcClient.connect("\\RPC Control\\nope", { nt: k.symbols })),
    NtError,
  );
  assert(e.is("STATUS_OBJECT_NAME_NOT_FOUND"));
  const e2 = assertThrows(
    () => k.as(SERVER, () => createConnectionPort(PORT, { nt: k.symbols })),
    NtError,
  );
  assert(e2.is("STATUS_OBJECT_NAME_COLLISION"));
  k.deniedConnect.add(B.pid);
  const e3 = assertThrows(() => connect(B), NtError);
  assert(e3.is("STATUS_ACCESS_DENIED"));
  stop();
});

Deno.test("a datagram is received and never replied to", () => {
  const seen: string[] = [];
  const { k, server, connect, stop } = lab({ datagram: (_h, d) => void seen.push(text(d)) });
  const client = connect(A);
  k.as(A, () => client.send(bytes("fire and forget")));
  k.as(SERVER, () => server.step(0));
  k.as(SERVER, () => server.step(0)); // nothing pending: no reply is sent
  assertEquals(seen, ["fire and forget"]);
  assertEquals(kinds(server.events), ["accept", "LPC_DATAGRAM"]);
  assert(
    !k.calls.some((c) => c.startsWith("NtReplyWaitReceivePortEx(reply)")),
    "no reply attempted",
  );
  stop();
});

Deno.test("lengths: the client refuses an oversized message; the kernel enforces its own limits", () => {
  const { k, connect, stop } = lab();
  const client = connect(A);
  const before = k.calls.length;
  const e = assertThrows(
    () => k.as(A, () => client.request(new Uint8Array(473))),
    PortMessageError,
  );
  assertStrictEquals(e.fault, "too-long");
  assertStrictEquals(k.calls.length, before, "nothing reached the kernel");
  // The largest request fits; its 477-byte echo cannot: an empty reply and an error event.
  const full = k.as(A, () => client.request(new Uint8Array(472).fill(65)));
  assertStrictEquals(full.data.byteLength, 0);
  assertStrictEquals(
    text(k.as(A, () => client.request(new Uint8Array(400).fill(65))).data).length,
    405,
  );
  // Hand-made headers straight to the (fake) kernel.
  const reply = new Uint8Array(688);
  // AlpcpValidateMessage.c resets TotalLength to DataLength + 40, so the limit applies to the
  // data actually sent: 480 + 40 > 512 (AlpcpSendLegacySynchronousRequest.c).
  const big = new Uint8Array(600);
  new DataView(big.buffer).setUint16(0, 480, true);
  new DataView(big.buffer).setUint16(2, 600, true);
  assertStrictEquals(
    k.as(A, () => k.symbols.NtRequestWaitReplyPort(client.port.unsafePointer, big, reply)),
    NTSTATUS.STATUS_PORT_MESSAGE_TOO_LONG,
  );
  const lying = encodePortMessage({ data: new Uint8Array(10) });
  new DataView(lying.buffer).setUint16(0, 20, true); // DataLength 20 > TotalLength 50 - 40
  assertStrictEquals(
    k.as(A, () => k.symbols.NtRequestWaitReplyPort(client.port.unsafePointer, lying, reply)),
    NTSTATUS.STATUS_INVALID_PARAMETER,
  );
  stop();
});

Deno.test("several clients interleave; each gets its own reply on its own connection", () => {
  const { k, server, connect, stop } = lab({
    request: (r) => bytes(`${r.header.clientId.process}:${r.connection.context}:${text(r.data)}`),
  });
  const a = connect(A);
  const b = connect(B);
  const ctx = [...server.connections.values()].map((c) => c.context);
  assertStrictEquals(new Set(ctx).size, 2);
  for (let i = 0; i < 5; i++) {
    assertMatch(
      text(k.as(A, () => a.request(bytes(`a${i}`))).data),
      new RegExp(`^200:\\d+:a${i}$`),
    );
    assertMatch(
      text(k.as(B, () => b.request(bytes(`b${i}`))).data),
      new RegExp(`^300:\\d+:b${i}$`),
    );
  }
  const replies = server.events.filter((e) => e.event === "LPC_REQUEST");
  assertEquals([...new Set(replies.map((e) => e.pid))].sort(), [200, 300]);
  stop();
});

Deno.test("a client that closes its port: the server gets LPC_PORT_CLOSED and drops the connection", () => {
  const { k, server, connect, stop } = lab();
  const a = connect(A);
  assertStrictEquals(k.openHandles(SERVER.pid), 2);
  k.as(A, () => a.close());
  k.as(SERVER, () => server.step(0));
  assertEquals(kinds(server.events).slice(-1), ["LPC_PORT_CLOSED"]);
  assertStrictEquals(server.connections.size, 0);
  assertStrictEquals(k.openHandles(SERVER.pid), 1, "the connection's port was closed");
  assertThrows(
    () => k.as(A, () => a.request(bytes("late"))),
    TypeError,
    undefined,
    "a closed handle is not used",
  );
  stop();
});

Deno.test("a client that dies mid-request: the reply fails, the server goes on and serves the next client", () => {
  const holder: { k?: FakeKernel } = {};
  const { k, server, connect, stop } = lab({
    request: (r) => {
      if (text(r.data) === "die") holder.k!.killProcess(A.pid, [A.tid]);
      return bytes("ok");
    },
  });
  holder.k = k;
  const a = connect(A);
  // The requesting thread is gone: nothing returns to it (the fake throws ThreadEnded).
  assertThrows(() => k.as(A, () => a.request(bytes("die"))), ThreadEnded);
  k.as(SERVER, () => server.step(0)); // sends the dead reply, then receives PORT_CLOSED
  k.as(SERVER, () => server.step(0));
  assert(kinds(server.events).includes("reply-failed"), kinds(server.events).join(","));
  assert(kinds(server.events).includes("LPC_PORT_CLOSED"));
  const b = connect(B);
  assertStrictEquals(text(k.as(B, () => b.request(bytes("still there?"))).data), "ok");
  stop();
});

Deno.test("impersonation: the handler runs as the client and is reverted, also when it throws", () => {
  const { k, server, connect, stop } = lab({
    request: (r) => {
      const who = r.impersonate(() => k.impersonating.get(SERVER.tid));
      assertThrows(() =>
        r.impersonate(() => {
          throw new Error("boom");
        })
      );
      return bytes(`as ${who}; after ${k.impersonating.get(SERVER.tid) ?? "self"}`);
    },
  });
  const a = connect(A);
  assertStrictEquals(text(k.as(A, () => a.request(bytes("x"))).data), "as 200; after self");
  assert(!kinds(server.events).includes("error"));
  stop();
});

Deno.test("impersonation puts back the token the thread had: a server thread running as SYSTEM is still SYSTEM after", () => {
  let during: boolean | undefined;
  const holder: { k?: FakeKernel } = {};
  const { k, connect, stop } = lab({
    request: (r) =>
      r.impersonate(() => {
        during = holder.k!.hasTcb(SERVER.tid);
        return bytes("as the client");
      }),
  });
  holder.k = k;
  k.grantTcb(SERVER.tid);
  const a = connect(A);
  assertStrictEquals(text(k.as(A, () => a.request(bytes("x"))).data), "as the client");
  assertStrictEquals(during, false, "the handler ran with the client's token");
  assertStrictEquals(k.hasTcb(SERVER.tid), true, "reverting to self would have dropped SYSTEM");
  assertStrictEquals(k.impersonating.size, 0);
  k.as(A, () => a.close());
  stop();
});

Deno.test("a handler that throws: an error event and an empty reply; the server survives", () => {
  const { k, server, connect, stop } = lab({
    request: () => {
      throw new Error("handler bug");
    },
  });
  const a = connect(A);
  const reply = k.as(A, () => a.request(bytes("x")));
  assertStrictEquals(reply.data.byteLength, 0);
  assert(server.events.some((e) => e.event === "error" && e.note === "handler bug"));
  assertStrictEquals(reply.header.type, 2);
  stop();
});

Deno.test("the fake enforces NT's reply rules (so the tests above could fail)", () => {
  const { k, connect, stop } = lab();
  connect(A);
  const msg = encodePortMessage({
    data: new Uint8Array(4),
    messageId: 0,
    clientId: { process: A.pid, thread: A.tid },
  });
  const port = new Uint8Array(8);
  // Reply with MessageId 0, or to an id nobody waits on: STATUS_INVALID_MESSAGE
  // (AlpcpLookupMessage.c).
  assertStrictEquals(
    k.as(SERVER, () => k.symbols.NtReplyPort(Deno.UnsafePointer.create(0x100n), msg)),
    NTSTATUS.STATUS_INVALID_MESSAGE,
  );
  const stray = encodePortMessage({
    data: new Uint8Array(4),
    messageId: 999,
    clientId: { process: A.pid, thread: A.tid },
  });
  assertStrictEquals(
    k.as(SERVER, () => k.symbols.NtReplyPort(Deno.UnsafePointer.create(0x100n), stray)),
    NTSTATUS.STATUS_INVALID_MESSAGE,
  );
  // Accept with an id no connection request has (AlpcpAcceptConnectPort.c: the lookup fails).
  assertStrictEquals(
    k.as(SERVER, () => k.symbols.NtAcceptConnectPort(port, null, stray, 1, null, null)),
    NTSTATUS.STATUS_INVALID_MESSAGE,
  );
  // Someone else's handle.
  assertStrictEquals(
    k.as(B, () => k.symbols.NtClose(Deno.UnsafePointer.create(0x100n))),
    NTSTATUS.STATUS_INVALID_HANDLE,
  );
  stop();
});

Deno.test("200 connections later the server's handle count is back to its baseline", () => {
  const { k, server, connect, stop } = lab();
  const baseline = k.openHandles(SERVER.pid);
  for (let i = 0; i < 200; i++) {
    const who = { pid: 1000 + i, tid: 2000 + i };
    const c = connect(who);
    k.as(who, () => c.request(bytes(`${i}`)));
    k.as(who, () => c.close());
  }
  k.as(SERVER, () => server.step(0));
  while (k.as(SERVER, () => server.step(0)));
  assertStrictEquals(server.connections.size, 0);
  assertStrictEquals(k.openHandles(SERVER.pid), baseline);
  stop();
});

Deno.test("a registered termination port: LPC_CLIENT_DIED with the connection's context, then LPC_PORT_CLOSED", () => {
  const { k, server, connect, stop } = lab();
  const a = connect(A);
  k.as(A, () => a.registerThreadTerminatePort());
  k.killProcess(A.pid, [A.tid]);
  while (k.as(SERVER, () => server.step(0)));
  const tail = server.events.slice(-2);
  assertEquals(kinds(tail), ["LPC_CLIENT_DIED", "LPC_PORT_CLOSED"]);
  assertStrictEquals(tail[0]!.tid, A.tid);
  assertStrictEquals(tail[0]!.context, server.events[0]!.context);
  assertMatch(tail[0]!.note ?? "", /^CreateTime \d{4}-/);
  stop();
});

Deno.test("createConnectionPort: up to 648 (LpcLegacyMaxMessageLength); a kernel-message port refuses less than 0xD0", () => {
  const k = new FakeKernel();
  k.as(SERVER, () => {
    using big = createConnectionPort(null, { maxMessageLength: 648, nt: k.symbols });
    assert(big.unsafeValue !== 0n);
    assertThrows(
      () => createConnectionPort(null, { maxMessageLength: 649, nt: k.symbols }),
      RangeError,
    );
    assertThrows(
      () =>
        createConnectionPort(null, { maxMessageLength: 0xcf, kernelMessages: true, nt: k.symbols }),
      Error,
      "0xd0 for LPC_EXCEPTION",
    );
    using ok = createConnectionPort(
      null,
      { maxMessageLength: 0xd0, kernelMessages: true, nt: k.symbols },
    );
    assert(ok.unsafeValue !== 0n);
  });
  assertStrictEquals(k.openHandles(SERVER.pid), 0);
});
