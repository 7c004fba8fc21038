/** The LPC server and client against the scripted fake kernel (runs everywhere). */

import assert from "node:assert/strict";
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
  assert.equal(client.maxMessageLength, 512);
  const reply = k.as(A, () => client.request(bytes("ping")));
  assert.equal(text(reply.data), "echo:ping");
  assert.equal(reply.header.type, 2, "LPC_REPLY");
  assert.deepEqual(kinds(server.events), ["accept", "LPC_REQUEST", "reply"]);
  const req = server.events[1]!;
  assert.equal(req.pid, A.pid);
  assert.equal(req.tid, A.tid);
  assert.equal(
    req.context,
    server.events[0]!.context,
    "the request carries the connection's PortContext",
  );
  assert.equal(server.connections.size, 1);
  // The client passes its whole buffer (0x80) so that it can receive the server's data back
  // (AlpcpReceiveLegacyConnectionReply.c returns min(its length, the server's)): the server
  // receives the capacity, the rest zero.
  const info = [...server.connections.values()][0]!.connectInfo;
  assert.equal(info.byteLength, 0x80);
  assert.equal(text(info.subarray(0, 5)), "hello");
  assert.equal(text(client.connectInfo.subarray(0, 5)), "hello", "the server's data came back");
  k.as(A, () => client.close());
  stop();
  assert.equal(k.openHandles(SERVER.pid), 0, "the server closed every handle");
  assert.equal(k.openHandles(A.pid), 0);
});

Deno.test("a refused connection fails with STATUS_PORT_CONNECTION_REFUSED; the server logs it", () => {
  const { k, server, connect, stop } = lab({ accept: (cid) => cid.process !== A.pid });
  assert.throws(
    () => connect(A),
    (e) => e instanceof NtError && e.is("STATUS_PORT_CONNECTION_REFUSED"),
  );
  assert.deepEqual(kinds(server.events), ["refuse"]);
  const b = connect(B);
  assert.equal(server.connections.size, 1);
  k.as(B, () => b.close());
  stop();
});

Deno.test("name not found, name collision, denied connect", () => {
  const { k, connect, stop } = lab();
  assert.throws(
    () => k.as(A, () => LpcClient.connect("\\RPC Control\\nope", { nt: k.symbols })),
    (e) => e instanceof NtError && e.is("STATUS_OBJECT_NAME_NOT_FOUND"),
  );
  assert.throws(
    () => k.as(SERVER, () => createConnectionPort(PORT, { nt: k.symbols })),
    (e) => e instanceof NtError && e.is("STATUS_OBJECT_NAME_COLLISION"),
  );
  k.deniedConnect.add(B.pid);
  assert.throws(() => connect(B), (e) => e instanceof NtError && e.is("STATUS_ACCESS_DENIED"));
  stop();
});

Deno.test("a datagram is received and never replied to", () => {
  const seen: string[] = [];
  const { k, server, connect, stop } = lab({ datagram: (_h, d) => void seen.push(text(d)) });
  const client = connect(A);
  k.as(A, () => client.send(bytes("fire and forget")));
  k.as(SERVER, () => server.step(0));
  k.as(SERVER, () => server.step(0)); // nothing pending: no reply is sent
  assert.deepEqual(seen, ["fire and forget"]);
  assert.deepEqual(kinds(server.events), ["accept", "LPC_DATAGRAM"]);
  assert.ok(
    !k.calls.some((c) => c.startsWith("NtReplyWaitReceivePortEx(reply)")),
    "no reply attempted",
  );
  stop();
});

Deno.test("lengths: the client refuses an oversized message; the kernel enforces its own limits", () => {
  const { k, connect, stop } = lab();
  const client = connect(A);
  const before = k.calls.length;
  assert.throws(
    () => k.as(A, () => client.request(new Uint8Array(473))),
    (e) => e instanceof PortMessageError && e.fault === "too-long",
  );
  assert.equal(k.calls.length, before, "nothing reached the kernel");
  // The largest request fits; its 477-byte echo cannot: an empty reply and an error event.
  const full = k.as(A, () => client.request(new Uint8Array(472).fill(65)));
  assert.equal(full.data.byteLength, 0);
  assert.equal(text(k.as(A, () => client.request(new Uint8Array(400).fill(65))).data).length, 405);
  // Hand-made headers straight to the (fake) kernel.
  const reply = new Uint8Array(688);
  // AlpcpValidateMessage.c resets TotalLength to DataLength + 40, so the limit applies to the
  // data actually sent: 480 + 40 > 512 (AlpcpSendLegacySynchronousRequest.c).
  const big = new Uint8Array(600);
  new DataView(big.buffer).setUint16(0, 480, true);
  new DataView(big.buffer).setUint16(2, 600, true);
  assert.equal(
    k.as(A, () => k.symbols.NtRequestWaitReplyPort(client.port.unsafePointer, big, reply)),
    NTSTATUS.STATUS_PORT_MESSAGE_TOO_LONG,
  );
  const lying = encodePortMessage({ data: new Uint8Array(10) });
  new DataView(lying.buffer).setUint16(0, 20, true); // DataLength 20 > TotalLength 50 - 40
  assert.equal(
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
  assert.equal(new Set(ctx).size, 2);
  for (let i = 0; i < 5; i++) {
    assert.match(
      text(k.as(A, () => a.request(bytes(`a${i}`))).data),
      new RegExp(`^200:\\d+:a${i}$`),
    );
    assert.match(
      text(k.as(B, () => b.request(bytes(`b${i}`))).data),
      new RegExp(`^300:\\d+:b${i}$`),
    );
  }
  const replies = server.events.filter((e) => e.event === "LPC_REQUEST");
  assert.deepEqual([...new Set(replies.map((e) => e.pid))].sort(), [200, 300]);
  stop();
});

Deno.test("a client that closes its port: the server gets LPC_PORT_CLOSED and drops the connection", () => {
  const { k, server, connect, stop } = lab();
  const a = connect(A);
  assert.equal(k.openHandles(SERVER.pid), 2);
  k.as(A, () => a.close());
  k.as(SERVER, () => server.step(0));
  assert.deepEqual(kinds(server.events).slice(-1), ["LPC_PORT_CLOSED"]);
  assert.equal(server.connections.size, 0);
  assert.equal(k.openHandles(SERVER.pid), 1, "the connection's port was closed");
  assert.throws(
    () => k.as(A, () => a.request(bytes("late"))),
    TypeError,
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
  assert.throws(() => k.as(A, () => a.request(bytes("die"))), ThreadEnded);
  k.as(SERVER, () => server.step(0)); // sends the dead reply, then receives PORT_CLOSED
  k.as(SERVER, () => server.step(0));
  assert.ok(kinds(server.events).includes("reply-failed"), kinds(server.events).join(","));
  assert.ok(kinds(server.events).includes("LPC_PORT_CLOSED"));
  const b = connect(B);
  assert.equal(text(k.as(B, () => b.request(bytes("still there?"))).data), "ok");
  stop();
});

Deno.test("impersonation: the handler runs as the client and is reverted, also when it throws", () => {
  const { k, server, connect, stop } = lab({
    request: (r) => {
      const who = r.impersonate(() => k.impersonating.get(SERVER.tid));
      assert.throws(() =>
        r.impersonate(() => {
          throw new Error("boom");
        })
      );
      return bytes(`as ${who}; after ${k.impersonating.get(SERVER.tid) ?? "self"}`);
    },
  });
  const a = connect(A);
  assert.equal(text(k.as(A, () => a.request(bytes("x"))).data), "as 200; after self");
  assert.ok(!kinds(server.events).includes("error"));
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
  assert.equal(text(k.as(A, () => a.request(bytes("x"))).data), "as the client");
  assert.equal(during, false, "the handler ran with the client's token");
  assert.equal(k.hasTcb(SERVER.tid), true, "reverting to self would have dropped SYSTEM");
  assert.equal(k.impersonating.size, 0);
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
  assert.equal(reply.data.byteLength, 0);
  assert.ok(server.events.some((e) => e.event === "error" && e.note === "handler bug"));
  assert.equal(reply.header.type, 2);
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
  assert.equal(
    k.as(SERVER, () => k.symbols.NtReplyPort(Deno.UnsafePointer.create(0x100n), msg)),
    NTSTATUS.STATUS_INVALID_MESSAGE,
  );
  const stray = encodePortMessage({
    data: new Uint8Array(4),
    messageId: 999,
    clientId: { process: A.pid, thread: A.tid },
  });
  assert.equal(
    k.as(SERVER, () => k.symbols.NtReplyPort(Deno.UnsafePointer.create(0x100n), stray)),
    NTSTATUS.STATUS_INVALID_MESSAGE,
  );
  // Accept with an id no connection request has (AlpcpAcceptConnectPort.c: the lookup fails).
  assert.equal(
    k.as(SERVER, () => k.symbols.NtAcceptConnectPort(port, null, stray, 1, null, null)),
    NTSTATUS.STATUS_INVALID_MESSAGE,
  );
  // Someone else's handle.
  assert.equal(
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
  assert.equal(server.connections.size, 0);
  assert.equal(k.openHandles(SERVER.pid), baseline);
  stop();
});

Deno.test("a registered termination port: LPC_CLIENT_DIED with the connection's context, then LPC_PORT_CLOSED", () => {
  const { k, server, connect, stop } = lab();
  const a = connect(A);
  k.as(A, () => a.registerThreadTerminatePort());
  k.killProcess(A.pid, [A.tid]);
  while (k.as(SERVER, () => server.step(0)));
  const tail = server.events.slice(-2);
  assert.deepEqual(kinds(tail), ["LPC_CLIENT_DIED", "LPC_PORT_CLOSED"]);
  assert.equal(tail[0]!.tid, A.tid);
  assert.equal(tail[0]!.context, server.events[0]!.context);
  assert.match(tail[0]!.note ?? "", /^CreateTime \d{4}-/);
  stop();
});

Deno.test("createConnectionPort: up to 648 (LpcLegacyMaxMessageLength); a kernel-message port refuses less than 0xD0", () => {
  const k = new FakeKernel();
  k.as(SERVER, () => {
    using big = createConnectionPort(null, { maxMessageLength: 648, nt: k.symbols });
    assert.ok(big.unsafeValue !== 0n);
    assert.throws(
      () => createConnectionPort(null, { maxMessageLength: 649, nt: k.symbols }),
      RangeError,
    );
    assert.throws(
      () =>
        createConnectionPort(null, { maxMessageLength: 0xcf, kernelMessages: true, nt: k.symbols }),
      /0xd0 for LPC_EXCEPTION/,
    );
    using ok = createConnectionPort(
      null,
      { maxMessageLength: 0xd0, kernelMessages: true, nt: k.symbols },
    );
    assert.ok(ok.unsafeValue !== 0n);
  });
  assert.equal(k.openHandles(SERVER.pid), 0);
});
