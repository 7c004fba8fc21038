/**
 * AlpcServer's dispatch against scripted symbols (runs everywhere): what it calls for each
 * message the "kernel" delivers, with which ports, flags and ids; how it tells connections apart
 * by PortContext; that views are released and tokens restored on every path; and that bad input
 * never takes it down. The fake kernel's ALPC tests (alpc_fake_test.ts) check the same against
 * the kernel's rules.
 */

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { AlpcAttributeFlags, AlpcMessageFlags } from "../../../ffi/alpc/constants.ts";
import { type AlpcSymbols, encodeAlpcMessage } from "../../../ffi/alpc/port.ts";
import { type AlpcHandler, AlpcServer } from "../../../ffi/alpc/server.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import { NtHandle } from "../../../ffi/nt/handle.ts";
import { decodePortMessageHeader, LpcMessageType } from "../../../ffi/port_message.ts";
import { NTSTATUS } from "../../../ffi/status.ts";

const PM = LAYOUTS.PORT_MESSAGE;
const CTX = LAYOUTS.ALPC_CONTEXT_ATTR;
const VIEW = LAYOUTS.ALPC_DATA_VIEW_ATTR;
const S = NTSTATUS;
const CONNECTION_PORT = 0x100n;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** What the scripted kernel delivers next. */
interface Incoming {
  type: number;
  data?: Uint8Array;
  messageId?: number;
  callbackId?: number;
  pid?: number;
  context?: bigint;
  view?: { base: bigint; size: bigint };
  /** Answer STATUS_BUFFER_TOO_SMALL with this length when the buffer is shorter (the message stays). */
  needs?: number;
}

/** Offsets of the attributes in a receive buffer, read independently (AlpcGetHeaderSize.c). */
function attrOffset(allocated: number, flag: number): number {
  const sizes: [number, number][] = [
    [AlpcAttributeFlags.SECURITY, 24],
    [AlpcAttributeFlags.VIEW, 32],
    [AlpcAttributeFlags.CONTEXT, 32],
    [AlpcAttributeFlags.HANDLE, 24],
    [AlpcAttributeFlags.TOKEN, 24],
  ];
  let at = 8;
  for (const [f, size] of sizes) {
    if (f === flag) return at;
    if ((allocated & f) >>> 0 !== 0) at += size;
  }
  throw new Error("unknown flag");
}

function scripted(queue: Incoming[]) {
  const log: string[] = [];
  const replies: {
    port: bigint;
    flags: number;
    header: ReturnType<typeof decodePortMessageHeader>;
    data: Uint8Array;
  }[] = [];
  let nextHandle = 0x200n;
  const nt = {
    NtClose: (h: Deno.PointerValue) => {
      log.push(`close 0x${Deno.UnsafePointer.value(h).toString(16)}`);
      return 0;
    },
    NtAlpcSendWaitReceivePort: (
      port: Deno.PointerValue,
      flags: number,
      send: Uint8Array | null,
      _sendAttrs: Uint8Array | null,
      recv: Uint8Array | null,
      _len: BigUint64Array | null,
      attrs: Uint8Array | null,
    ) => {
      if (send) {
        const header = decodePortMessageHeader(send);
        replies.push({
          port: Deno.UnsafePointer.value(port),
          flags,
          header,
          data: send.slice(PM.size, PM.size + header.dataLength),
        });
        log.push(`reply ${header.messageId}`);
        return 0;
      }
      const m = queue[0];
      if (!m) return S.STATUS_TIMEOUT;
      if (m.needs && recv!.byteLength < m.needs) {
        _len![0] = BigInt(m.needs);
        log.push(`too-small ${recv!.byteLength}`);
        return S.STATUS_BUFFER_TOO_SMALL | 0;
      }
      queue.shift();
      const msg = encodeAlpcMessage({
        data: m.data ?? new Uint8Array(0),
        messageId: m.messageId ?? 1,
        callbackId: m.callbackId ?? 0,
        clientId: { process: m.pid ?? 7, thread: (m.pid ?? 7) + 1 },
      });
      new DataView(msg.buffer).setUint16(PM.offsets.Type, m.type, true);
      recv!.set(msg);
      const dv = new DataView(attrs!.buffer);
      const allocated = dv.getUint32(0, true);
      let valid = 0;
      const c = attrOffset(allocated, AlpcAttributeFlags.CONTEXT);
      dv.setBigUint64(c + CTX.offsets.PortContext, m.context ?? 0n, true);
      dv.setUint32(c + CTX.offsets.MessageId, m.messageId ?? 1, true);
      if (m.context) valid |= AlpcAttributeFlags.CONTEXT;
      if (m.view) {
        const v = attrOffset(allocated, AlpcAttributeFlags.VIEW);
        dv.setBigUint64(v + VIEW.offsets.ViewBase, m.view.base, true);
        dv.setBigUint64(v + VIEW.offsets.ViewSize, m.view.size, true);
        valid |= AlpcAttributeFlags.VIEW;
      }
      dv.setUint32(4, valid >>> 0, true);
      return 0;
    },
    NtAlpcAcceptConnectPort: (
      cell: BigUint64Array,
      conn: Deno.PointerValue,
      _flags: number,
      _oa: null,
      _pa: Uint8Array,
      context: Deno.PointerValue,
      message: Uint8Array,
      _attrs: null,
      accept: number,
    ) => {
      const h = decodePortMessageHeader(message);
      log.push(
        `accept ${accept} conn 0x${Deno.UnsafePointer.value(conn).toString(16)} ctx ${
          Deno.UnsafePointer.value(context)
        } msg ${h.messageId}`,
      );
      if (accept) cell[0] = nextHandle++;
      return 0;
    },
    NtAlpcImpersonateClientOfPort: (port: Deno.PointerValue, message: Uint8Array) => {
      log.push(
        `impersonate 0x${Deno.UnsafePointer.value(port).toString(16)} msg ${
          decodePortMessageHeader(message).messageId
        }`,
      );
      return 0;
    },
    NtOpenThreadToken: () => S.STATUS_NO_TOKEN | 0,
    NtSetInformationThread: (_t: unknown, cls: number, token: BigUint64Array) => {
      log.push(`set-thread ${cls} ${token[0]}`);
      return 0;
    },
    NtAlpcDeleteSectionView: (port: Deno.PointerValue, _f: number, base: Deno.PointerValue) => {
      log.push(
        `unmap 0x${Deno.UnsafePointer.value(base).toString(16)} on 0x${
          Deno.UnsafePointer.value(port).toString(16)
        }`,
      );
      return 0;
    },
    NtAlpcDisconnectPort: (port: Deno.PointerValue) => {
      log.push(`disconnect 0x${Deno.UnsafePointer.value(port).toString(16)}`);
      return 0;
    },
  } as unknown as AlpcSymbols;
  return { nt, log, replies };
}

function serve(queue: Incoming[], handler: Partial<AlpcHandler> = {}) {
  const k = scripted(queue);
  const port = new NtHandle("connection-port", CONNECTION_PORT, "conn", k.nt.NtClose);
  const server = new AlpcServer(
    port,
    { request: (r) => bytes(`echo:${text(r.data)}`), ...handler },
    { nt: k.nt, now: () => 0 },
  );
  return { ...k, server };
}

Deno.test("a connection gets its own PortContext; requests are routed by it and replied with RELEASE_MESSAGE and the request's ids", () => {
  const { server, log, replies } = serve([
    { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 5, data: bytes("hi"), pid: 7 },
    { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 6, pid: 9 },
    {
      type: LpcMessageType.LPC_REQUEST,
      messageId: 10,
      callbackId: 3,
      context: 2n,
      data: bytes("b"),
    },
  ]);
  while (server.step(0));
  assertEquals(log.slice(0, 2), [
    "accept 1 conn 0x100 ctx 1 msg 5",
    "accept 1 conn 0x100 ctx 2 msg 6",
  ]);
  assertEquals([...server.connections.keys()], [1n, 2n]);
  assertStrictEquals(server.connections.get(1n)!.clientId.process, 7);
  assertStrictEquals(text(server.connections.get(1n)!.connectInfo), "hi");
  assertStrictEquals(replies.length, 1);
  const r = replies[0]!;
  assertEquals([r.port, r.flags, r.header.messageId, r.header.callbackId], [
    CONNECTION_PORT,
    AlpcMessageFlags.RELEASE_MESSAGE,
    10,
    3,
  ]);
  assertStrictEquals(text(r.data), "echo:b");
  const req = server.events.find((e) => e.event === "LPC_REQUEST")!;
  assertEquals([req.context, req.client?.pid, req.attributes], ["0x2", 9, ["CONTEXT"]]);
  server[Symbol.dispose]();
  assertEquals(log.slice(-3), ["close 0x200", "close 0x201", "close 0x100"]);
});

Deno.test("a refused connection: AcceptConnection FALSE, no handle, a refuse event; a throwing accept refuses too", () => {
  const { server, log } = serve(
    [
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 5, pid: 7 },
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 6, pid: 8 },
    ],
    {
      accept: (cid) => {
        if (cid.process === 8) throw new Error("boom");
        return false;
      },
    },
  );
  while (server.step(0));
  assertEquals(log, ["accept 0 conn 0x100 ctx 1 msg 5", "accept 0 conn 0x100 ctx 2 msg 6"]);
  assertEquals(server.events.map((e) => e.event), ["refuse", "error", "refuse"]);
  assertStrictEquals(server.connections.size, 0);
});

Deno.test("impersonation runs on the connection's own port with the received message, and the thread reverts even when fn throws", () => {
  let inside = "";
  const { server, log } = serve(
    [
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 5 },
      { type: LpcMessageType.LPC_REQUEST, messageId: 11, context: 1n },
      { type: LpcMessageType.LPC_REQUEST, messageId: 12, context: 1n },
    ],
    {
      request: (r) => {
        if (r.header.messageId === 12) {
          r.impersonate(() => {
            throw new Error("denied");
          });
        }
        inside = r.impersonate(() => log.at(-1)!);
        return new Uint8Array(0);
      },
    },
  );
  while (server.step(0));
  assertStrictEquals(inside, "impersonate 0x200 msg 11");
  assertEquals(log.filter((l) => l.startsWith("set-thread")), ["set-thread 5 0", "set-thread 5 0"]);
  assertEquals(server.events.map((e) => e.event), [
    "accept",
    "LPC_REQUEST",
    "reply",
    "LPC_REQUEST",
    "error",
    "reply",
  ]);
});

Deno.test("a view a request carried is readable in the handler and released after the reply; a datagram's too", () => {
  const mem = new Uint8Array(4096);
  mem.set(bytes("in the view"), 100);
  const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(mem));
  let seen = "";
  const { server, log, replies } = serve(
    [
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 5 },
      { type: LpcMessageType.LPC_REQUEST, messageId: 11, context: 1n, view: { base, size: 4096n } },
      {
        type: LpcMessageType.LPC_DATAGRAM,
        messageId: 30,
        context: 1n,
        view: { base, size: 4096n },
      },
    ],
    {
      request: (r) => {
        seen = text(r.view!.read(100, 11));
        return new Uint8Array(0);
      },
      datagram: (r) => assertStrictEquals(r.view?.size, 4096),
    },
  );
  while (server.step(0));
  assertStrictEquals(seen, "in the view");
  const hex = `0x${base.toString(16)}`;
  // The datagram kept for its attributes is released (its MessageId, RELEASE_MESSAGE) first.
  assertEquals(log.filter((l) => /^(reply|unmap)/.test(l)), [
    "reply 11",
    `unmap ${hex} on 0x100`,
    "reply 30",
    `unmap ${hex} on 0x100`,
  ]);
  assertEquals(replies.map((r) => r.flags), [0x10000, 0x10000]);
  assertEquals(server.events.filter((e) => e.event === "view-released").length, 2);
});

Deno.test("bad input never takes the server down: an unknown PortContext, a throwing handler, a reply too long", () => {
  const { server, replies } = serve(
    [
      { type: LpcMessageType.LPC_REQUEST, messageId: 20, context: 99n },
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 5 },
      { type: LpcMessageType.LPC_REQUEST, messageId: 21, context: 1n, data: bytes("throw") },
      { type: LpcMessageType.LPC_REQUEST, messageId: 22, context: 1n, data: bytes("big") },
    ],
    {
      request: (r) => {
        if (text(r.data) === "throw") throw new Error("handler bug");
        return new Uint8Array(0x10000);
      },
    },
  );
  while (server.step(0));
  assertEquals(replies.map((r) => [r.header.messageId, r.data.byteLength]), [[20, 0], [21, 0], [
    22,
    0,
  ]]);
  assertEquals(
    server.events.filter((e) => e.event === "error").length,
    2,
    "the handler's throw and the reply beyond MaxMessageLength",
  );
  assertEquals(
    server.events.find((e) => e.event === "reply")?.note,
    "no connection for this PortContext",
  );
});

Deno.test("LPC_PORT_CLOSED ends the connection it names; disconnect() calls NtAlpcDisconnectPort on its port", () => {
  const closedSeen: bigint[] = [];
  const { server, log } = serve(
    [
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 5 },
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 6 },
      { type: LpcMessageType.LPC_PORT_CLOSED, messageId: 0, context: 1n },
    ],
    { closed: (c) => closedSeen.push(c.context) },
  );
  while (server.step(0));
  assertEquals(closedSeen, [1n]);
  assert(log.includes("close 0x200"));
  server.disconnect(2n);
  assertEquals(log.slice(-2), ["disconnect 0x201", "close 0x201"]);
  assertStrictEquals(server.connections.size, 0);
});

Deno.test("a message larger than the receive buffer: the buffer grows to the length the kernel asks for, and the message is served", () => {
  const big = new Uint8Array(0x2000 - PM.size).fill(0x41);
  const { server, log, replies } = serve(
    [
      { type: LpcMessageType.LPC_CONNECTION_REQUEST, messageId: 5 },
      { type: LpcMessageType.LPC_REQUEST, messageId: 11, context: 1n, data: big, needs: 0x2000 },
    ],
    { request: (r) => new Uint8Array([r.data.byteLength >> 8]) },
  );
  while (server.step(0));
  assertEquals(log.filter((l) => l.startsWith("too-small")), ["too-small 4096"]);
  assertEquals(replies.map((r) => [...r.data]), [[0x1f]]);
  assert(server.events.some((e) => e.event === "receive-buffer-grown" && e.totalLength === 0x2000));
});
