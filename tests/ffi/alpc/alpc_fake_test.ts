/**
 * The ALPC server and client against the fake kernel (tests/fake_kernel_alpc.ts, which follows the
 * Windows 11 kernel's rules): connect/accept/refuse with a PortContext, synchronous requests,
 * datagrams, impersonation with and without the security attribute, views, the required server
 * SID, disconnects, basic information, and that every handle is closed (runs everywhere).
 */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { AlpcClient } from "../../../ffi/alpc/client.ts";
import { AlpcPortFlags, AlpcViewFlags } from "../../../ffi/alpc/constants.ts";
import {
  alpcCloser,
  type AlpcServerInformation,
  createAlpcPort,
  queryAlpcBasicInformation,
  queryAlpcServerInformation,
  queryAlpcServerSession,
} from "../../../ffi/alpc/port.ts";
import { NtHandle } from "../../../ffi/nt/handle.ts";
import { type AlpcEvent, type AlpcHandler, AlpcServer } from "../../../ffi/alpc/server.ts";
import { ReceivedView } from "../../../ffi/alpc/view.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../../../ffi/lpc/port.ts";
import { sidFromString, sidToString } from "../../../ffi/nt/tokens.ts";
import { NtError } from "../../../ffi/status.ts";
import { DEFAULT_USER_SID, FakeKernel, type Identity } from "../../fake_kernel.ts";

const SERVER: Identity = { pid: 100, tid: 101 };
const A: Identity = { pid: 200, tid: 201 };
const B: Identity = { pid: 300, tid: 301 };
const PORT = "\\RPC Control\\deno-lpc-alpc-test";
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);
const kinds = (events: AlpcEvent[]) => events.map((e) => e.event);

function lab(handler: Partial<AlpcHandler> = {}) {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort(PORT, { nt: k.symbols }));
  const server = new AlpcServer(
    port,
    { request: (r) => bytes(`echo:${text(r.data)}`), ...handler },
    { nt: k.symbols, now: () => 0 },
  );
  k.actor(SERVER, () => server.step(0));
  const connect = (who: Identity, options: Parameters<typeof AlpcClient.connect>[1] = {}) =>
    k.as(who, () => AlpcClient.connect(PORT, { nt: k.symbols, ...options }));
  const stop = () => k.as(SERVER, () => server[Symbol.dispose]());
  return { k, server, connect, stop };
}

Deno.test("connect, request and reply: each connection has its own PortContext, and requests are told apart by it", () => {
  const { k, server, connect, stop } = lab();
  const a = connect(A, { connectInfo: bytes("hello") });
  const b = connect(B);
  assertStrictEquals(text(a.connectInfo), "hello", "the connection data came back");
  const reply = k.as(A, () => a.request(bytes("ping")));
  assertStrictEquals(text(reply.data), "echo:ping");
  assertStrictEquals(reply.header.type, 2, "LPC_REPLY: the server replied with RELEASE_MESSAGE");
  k.as(B, () => b.request(bytes("two")));
  const accepts = server.events.filter((e) => e.event === "accept");
  assertEquals(accepts.map((e) => e.context), ["0x1", "0x2"]);
  const requests = server.events.filter((e) => e.event === "LPC_REQUEST");
  assertEquals(requests.map((e) => [e.context, e.client?.pid, e.pid]), [
    ["0x1", A.pid, A.pid],
    ["0x2", B.pid, B.pid],
  ]);
  assert(requests.every((e) => e.attributes?.includes("CONTEXT")));
  assertStrictEquals(text([...server.connections.values()][0]!.connectInfo), "hello");
  k.as(A, () => a.close());
  k.as(B, () => b.close());
  while (k.as(SERVER, () => server.step(0)));
  assertEquals(kinds(server.events).filter((e) => e === "LPC_PORT_CLOSED").length, 2);
  assertStrictEquals(server.connections.size, 0, "each close ended its connection");
  stop();
  assertStrictEquals(k.openHandles(SERVER.pid), 0, "the server closed every handle");
  assertStrictEquals(k.openHandles(A.pid), 0);
  assertStrictEquals(k.openHandles(B.pid), 0);
});

Deno.test("a refused connection fails with STATUS_PORT_CONNECTION_REFUSED and leaves no handle", () => {
  const { k, server, connect, stop } = lab({ accept: (cid) => cid.process !== A.pid });
  const e = assertThrows(() => connect(A), NtError);
  assert(e.is("STATUS_PORT_CONNECTION_REFUSED"), e.message);
  assertEquals(kinds(server.events), ["refuse"]);
  assertStrictEquals(k.openHandles(A.pid), 0);
  using b = connect(B);
  assertStrictEquals(server.connections.size, 1);
  k.as(B, () => b.close());
  stop();
});

Deno.test("requiredServerSid: the server's user SID is accepted, another is STATUS_SERVER_SID_MISMATCH", () => {
  const { k, server, connect, stop } = lab();
  const e = assertThrows(() => connect(A, { requiredServerSid: "S-1-5-18" }), NtError);
  assertStrictEquals(e.symbol, "STATUS_SERVER_SID_MISMATCH");
  assertEquals(kinds(server.events), [], "refused before the server saw it");
  const c = connect(A, { requiredServerSid: sidToString(DEFAULT_USER_SID) });
  k.as(A, () => c.close());
  k.userSids.set(SERVER.pid, sidFromString("S-1-5-18"));
  const s = connect(B, { requiredServerSid: new Uint8Array(sidFromString("S-1-5-18")) });
  k.as(B, () => s.close());
  stop();
});

Deno.test("a datagram reaches the handler with its connection and is never replied to", () => {
  const got: string[] = [];
  const { k, server, connect, stop } = lab({
    datagram: (r) => got.push(`${r.connection.context}:${text(r.data)}`),
  });
  const a = connect(A);
  k.as(A, () => a.send(bytes("fire")));
  while (k.as(SERVER, () => server.step(0)));
  assertEquals(got, ["1:fire"]);
  assertEquals(kinds(server.events), ["accept", "LPC_DATAGRAM"]);
  k.as(A, () => a.close());
  stop();
});

Deno.test("impersonation: with the connection's client context, with a per-message security attribute, and with a security context; the thread reverts", () => {
  const seen: (number | undefined)[] = [];
  const { k, connect, stop } = lab({
    request: (r) => {
      seen.push(r.impersonate(() => k.impersonating.get(SERVER.tid)));
      return new Uint8Array(0);
    },
  });
  const a = connect(A);
  k.as(A, () => a.request(bytes("plain")));
  k.as(A, () => a.request(bytes("message"), { security: "message" }));
  const context = k.as(A, () => a.createSecurityContext());
  k.as(A, () => a.request(bytes("context"), { security: context }));
  assertEquals(seen, [A.pid, A.pid, A.pid]);
  assertStrictEquals(k.impersonating.get(SERVER.tid), undefined, "reverted after each");
  k.as(A, () => a.close());
  stop();
  assertStrictEquals(k.openHandles(A.pid), 0);
});

Deno.test("impersonation is refused when the client port does not allow it and the message has no security attribute", () => {
  const results: string[] = [];
  const { k, server, connect, stop } = lab({
    request: (r) => {
      try {
        r.impersonate(() => 0);
        results.push("impersonated");
      } catch (e) {
        results.push(e instanceof NtError ? `${e.call} ${e.symbol}` : String(e));
      }
      return new Uint8Array(0);
    },
  });
  const a = connect(A, { allowImpersonation: false });
  k.as(A, () => a.request(bytes("x")));
  k.as(A, () => a.request(bytes("y"), { security: "message" }));
  assertEquals(results, ["NtAlpcImpersonateClientOfPort STATUS_ACCESS_DENIED", "impersonated"]);
  assertStrictEquals(k.impersonating.get(SERVER.tid), undefined);
  assertEquals(server.events.filter((e) => e.event === "error"), []);
  k.as(A, () => a.close());
  stop();
});

Deno.test("a view: sent with the view attribute, seen by the server with its size; disposed with the client", () => {
  let size = 0;
  const { k, server, connect, stop } = lab({
    request: (r) => {
      size = r.view?.size ?? 0;
      return new Uint8Array(0);
    },
  });
  const a = connect(A, { portAttributes: { maxSectionSize: 0x10000, maxViewSize: 0x10000 } });
  const view = k.as(A, () => a.createView(0xc000));
  k.as(A, () => a.request(new Uint8Array(0), { view }));
  assert(size >= 0xc000, `the server saw a ${size}-byte view`);
  assertEquals(kinds(server.events).slice(0, 3), ["accept", "LPC_REQUEST", "reply"]);
  k.as(A, () => a.close());
  assertStrictEquals(view.released, true);
  stop();
  assertStrictEquals(k.openHandles(A.pid), 0);
});

Deno.test("the server releases each received view after the reply: its mapped views stay bounded while a client keeps sending views", () => {
  const { k, server, connect, stop } = lab({ request: () => new Uint8Array(0) });
  const a = connect(A);
  const counts: number[] = [];
  for (let i = 0; i < 20; i++) {
    using view = k.as(A, () => a.createView(0x4000));
    k.as(A, () => a.request(new Uint8Array(0), { view }));
    counts.push(k.alpcViews(SERVER.pid));
  }
  assertEquals(counts, Array(20).fill(0), "no view of the server's left mapped after each request");
  assertStrictEquals(server.events.filter((e) => e.event === "view-released").length, 20);
  assertEquals(server.events.filter((e) => e.event === "error"), []);
  assertStrictEquals(k.alpcViews(A.pid), 0, "the client's views were disposed");
  k.as(A, () => a.close());
  stop();
});

Deno.test("a view's bytes: written by the client, read by the server (the fake backs each port section with native memory)", () => {
  let read = "";
  const { k, connect, stop } = lab({
    request: (r) => {
      read = text(r.view!.read(0xbff0, 16));
      return new Uint8Array(0);
    },
  });
  const a = connect(A, { portAttributes: { maxSectionSize: 0x10000, maxViewSize: 0x10000 } });
  const view = k.as(A, () => a.createView(0xc000));
  k.as(A, () => view.write(bytes("end of the view!"), 0xbff0));
  k.as(A, () => a.request(new Uint8Array(0), { view }));
  assertStrictEquals(read, "end of the view!");
  k.as(A, () => a.close());
  assertStrictEquals(k.alpcViews(A.pid) + k.alpcViews(SERVER.pid), 0, "no view left mapped");
  stop();
});

Deno.test("a view's bytes the other way: the server writes into the view the client sent (mapped read-write for it: AlpcpCreateView.c), the client reads them in its own view once replied", () => {
  let base = 0n;
  const { k, connect, stop } = lab({
    request: (r) => {
      assert(r.view!.writable, "not a secure view");
      r.view!.write(bytes("from the server"), 0x8000);
      base = r.view!.unsafeBase;
      assertThrows(() => r.view!.write(new Uint8Array(2), r.view!.size - 1), RangeError);
      return new Uint8Array(0);
    },
  });
  const a = connect(A);
  const view = k.as(A, () => a.createView(0x10000));
  k.as(A, () => a.request(new Uint8Array(0), { view }));
  assertStrictEquals(text(view.read(0x8000, 15)), "from the server");
  assert(base !== 0n && base !== view.unsafeBase, "the server wrote through a mapping of its own");
  assertStrictEquals(k.alpcViews(SERVER.pid), 0, "the server released its mapping");
  k.as(A, () => a.close());
  assertStrictEquals(k.alpcViews(A.pid), 0);
  stop();
});

Deno.test("MaxViewSize (AlpcpCreateView.c): the client's own view above its port's is STATUS_QUOTA_EXCEEDED; one above the connection port's arrives without its view; the default (0) has no limit", () => {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort(PORT, { nt: k.symbols, maxViewSize: 0x4000 }));
  const seen: (number | undefined)[] = [];
  const server = new AlpcServer(port, {
    request: (r) => {
      seen.push(r.view?.size);
      return new Uint8Array(0);
    },
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const small = k.as(
    A,
    () => AlpcClient.connect(PORT, { nt: k.symbols, portAttributes: { maxViewSize: 0x4000 } }),
  );
  const e = assertThrows(() => k.as(A, () => small.createView(0x5000)), NtError);
  assertStrictEquals(e.code, 0xc0000044, e.message);
  const a = k.as(A, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  const fits = k.as(A, () => a.createView(0x4000));
  const big = k.as(A, () => a.createView(0x10_0000));
  k.as(A, () => a.request(new Uint8Array(0), { view: fits }));
  k.as(A, () => a.request(new Uint8Array(0), { view: big }));
  assertEquals(seen, [0x4000, undefined], "the 1 MiB view did not reach the server");
  assertStrictEquals(k.alpcViews(SERVER.pid), 0);
  k.as(A, () => small.close());
  k.as(A, () => a.close());
  assertStrictEquals(k.alpcViews(A.pid), 0);
  k.as(SERVER, () => server[Symbol.dispose]());
});

Deno.test("ReceivedView.write: a secure view (Flags 0x40000) is refused before anything is written", () => {
  const memory = new Uint8Array(0x1000);
  const at = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(memory)));
  const attr = { flags: 0, sectionHandle: 0n, viewBase: at, viewSize: 0x1000n };
  const secure = new ReceivedView({ ...attr, flags: AlpcViewFlags.SECURE_VIEW });
  assertStrictEquals(secure.writable, false);
  assertThrows(() => secure.write(bytes("x")), TypeError, "secure view");
  assertStrictEquals(memory[0], 0);
  new ReceivedView(attr).write(bytes("x"), 7);
  assertStrictEquals(memory[7], 0x78);
});

Deno.test("disconnect: the client's next request fails; the server sees LPC_PORT_CLOSED only when the client's port closes", () => {
  // AlpcpDisconnectPort.c marks the port and cancels its messages; the close message comes from
  // the last handle's close (AlpcpClosePort.c, AlpcpSendCloseMessage.c).
  const { k, server, connect, stop } = lab();
  const a = connect(A);
  k.as(A, () => a.disconnect());
  const e = assertThrows(() => k.as(A, () => a.request(bytes("late"))), NtError);
  assert(e.is("STATUS_PORT_DISCONNECTED"), e.message);
  while (k.as(SERVER, () => server.step(0)));
  assertEquals(kinds(server.events), ["accept"]);
  k.as(A, () => a.close());
  while (k.as(SERVER, () => server.step(0)));
  assertEquals(kinds(server.events), ["accept", "LPC_PORT_CLOSED"]);
  assertStrictEquals(server.connections.size, 0);
  stop();
});

Deno.test("the server disconnects a client: its next request fails with STATUS_PORT_DISCONNECTED", () => {
  const { k, server, connect, stop } = lab();
  const a = connect(A);
  k.as(SERVER, () => server.disconnect(1n));
  const e = assertThrows(() => k.as(A, () => a.request(bytes("late"))), NtError);
  assert(e.is("STATUS_PORT_DISCONNECTED"), e.message);
  k.as(A, () => a.close());
  stop();
});

Deno.test("basic information: an ALPC connection port and a legacy one both show ALLOW_LPC_REQUESTS; a server port shows its PortContext", () => {
  const { k, server, connect, stop } = lab();
  const info = k.as(SERVER, () => queryAlpcBasicInformation(server.port, { nt: k.symbols }));
  assert(info.flagNames.includes("ALLOW_LPC_REQUESTS"), info.flagNames.join());
  using legacy = k.as(
    SERVER,
    () => createConnectionPort("\\RPC Control\\legacy", { nt: k.symbols }),
  );
  const legacyInfo = k.as(SERVER, () => queryAlpcBasicInformation(legacy, { nt: k.symbols }));
  assertStrictEquals(legacyInfo.flags, AlpcPortFlags.ALLOW_LPC_REQUESTS);
  const a = connect(A);
  const conn = server.connections.get(1n)!;
  const serverSide = k.as(SERVER, () => queryAlpcBasicInformation(conn.port, { nt: k.symbols }));
  assertStrictEquals(serverSide.portContext, 1n);
  k.as(A, () => a.close());
  k.as(SERVER, () => legacy.close());
  stop();
});

Deno.test("queryAlpcServerInformation: while the server handles its request the client's thread is blocked on the server's port (the server's pid, the port's name); after the reply it is not", () => {
  const seen: AlpcServerInformation[] = [];
  const probe: { watch?: () => AlpcServerInformation } = {};
  const { k, connect, stop } = lab({
    request: () => {
      if (probe.watch) seen.push(probe.watch()); // on the server's thread, with the client waiting
      return bytes("ok");
    },
  });
  const a = connect(A);
  const thread = new NtHandle(
    "thread",
    k.openThread(SERVER, A.tid, 0x40), // THREAD_QUERY_INFORMATION
    "client A's thread",
    alpcCloser(k.symbols),
  );
  const watch = () => queryAlpcServerInformation(thread, { nt: k.symbols });
  probe.watch = watch;
  k.as(A, () => a.request(bytes("who waits?")));
  assertEquals(seen, [{ blocked: true, connectedProcessId: SERVER.pid, connectionPortName: PORT }]);
  assertEquals(k.as(SERVER, watch), { blocked: false });
  const limited = new NtHandle(
    "thread",
    k.openThread(SERVER, A.tid, 0x800),
    "A",
    alpcCloser(k.symbols),
  );
  const e = assertThrows(
    () => k.as(SERVER, () => queryAlpcServerInformation(limited, { nt: k.symbols })),
    NtError,
  );
  assert(e.is("STATUS_ACCESS_DENIED"), e.message);
  k.as(SERVER, () => {
    thread.close();
    limited.close();
  });
  k.as(A, () => a.close());
  stop();
});

Deno.test("queryAlpcServerSession: the client port names the server (its session too), the server's port the client, the connection port the server; a closed client leaves the server's port nothing to name", () => {
  const { k, server, connect, stop } = lab();
  k.sessionIds.set(SERVER.pid, 3);
  k.sessionIds.set(A.pid, 5);
  const a = connect(A);
  const conn = server.connections.get(1n)!;
  assertEquals(k.as(A, () => queryAlpcServerSession(a.port, { nt: k.symbols })), {
    sessionId: 3,
    processId: SERVER.pid,
  });
  assertEquals(k.as(SERVER, () => queryAlpcServerSession(conn.port, { nt: k.symbols })), {
    sessionId: 5,
    processId: A.pid,
  });
  assertEquals(k.as(SERVER, () => queryAlpcServerSession(server.port, { nt: k.symbols })), {
    sessionId: 3,
    processId: SERVER.pid,
  });
  k.as(A, () => a.close());
  const e = assertThrows(
    () => k.as(SERVER, () => queryAlpcServerSession(conn.port, { nt: k.symbols })),
    NtError,
  );
  assert(e.is("STATUS_INVALID_PARAMETER"), e.message);
  stop();
});

Deno.test("a request larger than the server's MaxMessageLength is refused by the kernel, and the server goes on", () => {
  const { k, server, connect, stop } = lab();
  const a = connect(A, { portAttributes: { maxMessageLength: 0x2000 } });
  const e = assertThrows(() => k.as(A, () => a.request(new Uint8Array(0x1800))), NtError);
  assertStrictEquals(e.call, "NtAlpcSendWaitReceivePort");
  // AlpcpValidateAndSetPortAttributes.c lowers a client port's limit to the server's;
  // AlpcpSendMessage.c refuses a TotalLength above the sender port's limit.
  assertStrictEquals(e.symbol, "STATUS_PORT_MESSAGE_TOO_LONG");
  assertStrictEquals(text(k.as(A, () => a.request(bytes("small"))).data), "echo:small");
  assertEquals(server.events.filter((e) => e.event === "error"), []);
  k.as(A, () => a.close());
  stop();
});

Deno.test("an ALPC connection port as a process's exception port: LPC_EXCEPTION reaches the handler and its verdict lets the thread go", () => {
  const seen: string[] = [];
  const { k, server, stop } = lab({
    exception: (m) => {
      seen.push(`0x${(m.record.code >>> 0).toString(16)} ${m.firstChance}`);
      return 0x10001; // DBG_EXCEPTION_HANDLED
    },
  });
  assertStrictEquals(k.as(SERVER, () => k.setExceptionPort(A.pid, server.port.unsafeValue)), 0);
  const result = k.raiseException(A, 0xe0000001, [7n]);
  assertStrictEquals(result, 0x10001, "the raise returned the handler's verdict");
  assertEquals(seen, ["0xe0000001 false"]);
  const e = server.events.find((e) => e.event === "LPC_EXCEPTION")!;
  // The same typed fields as the LPC server's (ffi/server_events.ts), no note to parse.
  assertEquals(e.exception, {
    apiNumber: 0, // DbgKmExceptionApi
    returnedStatus: "STATUS_PENDING (0x00000103)",
    code: "0xE0000001",
    address: "0x7ff600001000",
    parameters: ["0x7"],
    firstChance: false,
    verdict: "DBG_EXCEPTION_HANDLED (0x00010001)",
  });
  assertStrictEquals(e.note, undefined);
  assertEquals(server.events.at(-1)?.event, "reply");
  stop();
});

Deno.test("a request larger than the server's receive buffer: STATUS_BUFFER_TOO_SMALL keeps it, the buffer grows, it is served", () => {
  const k = new FakeKernel();
  const port = k.as(
    SERVER,
    () => createAlpcPort(PORT, { maxMessageLength: 0x1000, nt: k.symbols }),
  );
  // A server told a smaller limit than its port's: its first receive buffer is too small.
  const server = new AlpcServer(port, { request: (r) => bytes(String(r.data.byteLength)) }, {
    nt: k.symbols,
    portAttributes: { maxMessageLength: 0x100 },
  });
  k.actor(SERVER, () => server.step(0));
  const a = k.as(A, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  const reply = k.as(A, () => a.request(new Uint8Array(0x800)));
  assertStrictEquals(text(reply.data), String(0x800));
  assert(
    server.events.some((e) => e.event === "receive-buffer-grown"),
    kinds(server.events).join(),
  );
  k.as(A, () => a.close());
  k.as(SERVER, () => server[Symbol.dispose]());
});

Deno.test("requestInto after the receive buffer grew: the handler's header and data are the new buffer's, on that message and the next ones", () => {
  const k = new FakeKernel();
  const port = k.as(
    SERVER,
    () => createAlpcPort(PORT, { maxMessageLength: 0x1000, nt: k.symbols }),
  );
  const seen: number[][] = [];
  // A server told a smaller limit than its port's: the first large request grows its buffer.
  const server = new AlpcServer(port, {
    requestInto: (r, reply) => {
      const h = r.header;
      seen.push([h.messageId, h.callbackId, h.dataLength, r.data.byteLength]);
      reply.set(r.data.subarray(0, 4));
      return Math.min(4, r.data.byteLength);
    },
  }, { nt: k.symbols, portAttributes: { maxMessageLength: 0x100 }, logRequests: false });
  k.actor(SERVER, () => server.step(0));
  const a = k.as(A, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  const sent = [bytes("small"), new Uint8Array(0x800).fill(7), bytes("next"), bytes("last")];
  const replies = sent.map((data) => k.as(A, () => a.request(data)));
  assertStrictEquals(
    kinds(server.events).filter((e) => e === "receive-buffer-grown").length,
    1,
    kinds(server.events).join(),
  );
  // The client's reply keeps its request's MessageId and CallbackId: the kernel writes the reply
  // into the waiting message, lengths, Type and ClientId only (AlpcpDispatchReplyToWaitingThread.c).
  // That oracle is independent of the handler's view of the receive buffer.
  const n = (i: number) => sent[i]!.byteLength;
  assertEquals(seen, replies.map((r, i) => [r.header.messageId, r.header.callbackId, n(i), n(i)]));
  // MessageId slots are reused (AlpcpAllocateMessage.c), CallbackIds are not: four messages.
  assertEquals(new Set(seen.map(([, cb]) => cb)).size, 4, `CallbackIds: ${seen.join(" ")}`);
  assertEquals(replies.map((r) => [...r.data]), sent.map((d) => [...d.subarray(0, 4)]));
  k.as(A, () => a.close());
  k.as(SERVER, () => server[Symbol.dispose]());
});

Deno.test("impersonation at a level: a lower one than the client's QoS is granted, a higher one refused", () => {
  const results: string[] = [];
  const { k, connect, stop } = lab({
    request: (r) => {
      for (const level of ["Identification", "Delegation"] as const) {
        try {
          r.impersonate(() => 0, { level });
          results.push(`${level} ok`);
        } catch (e) {
          results.push(`${level} ${e instanceof NtError ? e.symbol : e}`);
        }
      }
      return new Uint8Array(0);
    },
  });
  const a = connect(A, { impersonationLevel: "Impersonation" });
  k.as(A, () => a.request(bytes("x")));
  assertEquals(results, ["Identification ok", "Delegation STATUS_ACCESS_DENIED"]);
  assertStrictEquals(k.impersonating.get(SERVER.tid), undefined);
  k.as(A, () => a.close());
  stop();
});

/** A creation time, and the FILETIME the kernel writes for it (100 ns since 1601). */
const BORN = "2024-01-02T03:04:05.678Z";
function fileTime(iso: string): bigint {
  return BigInt(Date.parse(iso)) * 10_000n + 116_444_736_000_000_000n;
}

Deno.test("a registered client thread's exit: LPC_CLIENT_DIED with the connection's PortContext; the connection stays until the port closes", () => {
  const died: string[] = [];
  const { k, server, stop } = lab({
    clientDied: (c, t) => died.push(`${c.context}:${t.process}.${t.thread}`),
  });
  const t2 = k.spawnThread(A.pid);
  k.setCreateTime(t2.tid, fileTime(BORN));
  const a = k.as(A, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  k.as(t2, () => a.registerThreadTerminatePort());
  k.exitThread(t2);
  while (k.as(SERVER, () => server.step(0)));
  assertEquals(died, [`1:${A.pid}.${t2.tid}`]);
  const e = server.events.find((e) => e.event === "LPC_CLIENT_DIED")!;
  assertEquals([e.context, e.tid], ["0x1", t2.tid]);
  assertEquals(e.client, { pid: A.pid, tid: A.tid }, "the connection's client, from its context");
  // PspExitThread.c: the data is the dying thread's CreateTime; the event carries it typed.
  assertStrictEquals(e.createTime, BORN);
  assertStrictEquals(server.connections.size, 1, "a thread's death does not end the connection");
  k.as(A, () => a.close());
  while (k.as(SERVER, () => server.step(0)));
  assertStrictEquals(server.connections.size, 0);
  const closed = server.events.find((e) => e.event === "LPC_PORT_CLOSED")!;
  // AlpcpSendCloseMessage.c: ClientId zeroed, the CreateTime of the process current at the close
  // (the client's here, which closed its own port).
  assertEquals([closed.pid, closed.tid, closed.context], [0, 0, "0x1"]);
  assertEquals(closed.client, { pid: A.pid, tid: A.tid });
  assert(Number.isFinite(Date.parse(closed.createTime ?? "")), closed.createTime);
  stop();
});

Deno.test("basic information of client ports: a legacy one shows ALLOW_LPC_REQUESTS, an ALPC one only what it asked for", () => {
  // AlpcpValidateAndSetPortAttributes.c: a client port made without attributes (NtSecureConnectPort.c
  // passes none) gets ALLOW_IMPERSONATION, and ALLOW_LPC_REQUESTS when the connect is legacy.
  const k = new FakeKernel();
  using legacyPort = k.as(
    SERVER,
    () => createConnectionPort("\\RPC Control\\legacy-c", { nt: k.symbols }),
  );
  const legacyServer = new LpcServer(legacyPort, { request: () => new Uint8Array(0) }, {
    nt: k.symbols,
  });
  k.actor(SERVER, () => legacyServer.step(0));
  const legacy = k.as(A, () => LpcClient.connect("\\RPC Control\\legacy-c", { nt: k.symbols }));
  const lf = k.as(A, () => queryAlpcBasicInformation(legacy.port, { nt: k.symbols }));
  assertEquals(lf.flagNames, ["ALLOW_IMPERSONATION", "ALLOW_LPC_REQUESTS"]);
  const { server: alpcServer, connect, stop } = (() => {
    const port = k.as(SERVER, () => createAlpcPort(PORT, { nt: k.symbols }));
    const server = new AlpcServer(port, { request: () => new Uint8Array(0) }, { nt: k.symbols });
    k.actor(SERVER, () => server.step(0));
    return {
      server,
      connect: (who: Identity) => k.as(who, () => AlpcClient.connect(PORT, { nt: k.symbols })),
      stop: () => k.as(SERVER, () => server[Symbol.dispose]()),
    };
  })();
  const alpc = connect(B);
  const af = k.as(B, () => queryAlpcBasicInformation(alpc.port, { nt: k.symbols }));
  assertEquals(af.flagNames, ["ALLOW_IMPERSONATION"]);
  assertStrictEquals(alpcServer.connections.size, 1);
  k.as(A, () => legacy.close());
  k.as(B, () => alpc.close());
  stop();
  k.as(SERVER, () => legacyServer[Symbol.dispose]());
});

Deno.test("a datagram that carried a view: the handler sees it, then the server releases the message and unmaps the view", () => {
  let size = 0;
  const { k, server, connect, stop } = lab({ datagram: (r) => void (size = r.view?.size ?? 0) });
  const a = connect(A);
  for (let i = 0; i < 5; i++) {
    using view = k.as(A, () => a.createView(0x4000));
    k.as(A, () => a.send(new Uint8Array([i]), { view }));
    while (k.as(SERVER, () => server.step(0)));
    assertStrictEquals(k.alpcViews(SERVER.pid), 0);
  }
  assert(size >= 0x4000);
  const events = kinds(server.events);
  assertStrictEquals(events.filter((e) => e === "released").length, 5);
  assertStrictEquals(events.filter((e) => e === "view-released").length, 5);
  assertEquals(server.events.filter((e) => e.event === "error"), []);
  k.as(A, () => a.close());
  stop();
});
