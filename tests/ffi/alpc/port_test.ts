/**
 * ALPC port attributes, messages, basic information and the client's connect against stub
 * symbols: what is refused before any call, what the calls receive, and how failures map to
 * NtError (runs everywhere).
 */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { AlpcClient } from "../../../ffi/alpc/client.ts";
import { AlpcMessageFlags, AlpcPortFlags } from "../../../ffi/alpc/constants.ts";
import {
  ALPC_MESSAGE_LENGTH_LIMITS,
  type AlpcMessageInit,
  alpcPortFlagNames,
  type AlpcSymbols,
  createAlpcPort,
  decodeAlpcBasicInformation,
  decodeAlpcServerInformation,
  decodeAlpcServerSessionInformation,
  encodeAlpcMessage,
  encodeAlpcPortAttributes,
  queryAlpcBasicInformation,
  queryAlpcServerInformation,
  queryAlpcServerSession,
} from "../../../ffi/alpc/port.ts";
import { encodeUtf16 } from "../../../ffi/strings.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import { NtHandle } from "../../../ffi/nt/handle.ts";
import { sidFromString } from "../../../ffi/nt/tokens.ts";
import {
  decodePortMessageHeader,
  encodePortMessage,
  LpcMessageType,
  PortMessageError,
} from "../../../ffi/port_message.ts";
import { NtError, NTSTATUS, UnsupportedError } from "../../../ffi/status.ts";

const PA = LAYOUTS.ALPC_PORT_ATTRIBUTES;
const S = NTSTATUS;

/** Stub symbols: each given function, the rest `null` (missing), closes counted. */
function stub(fns: Partial<Record<keyof AlpcSymbols, unknown>>) {
  const closed: bigint[] = [];
  const nt = {
    NtClose: (h: Deno.PointerValue) => {
      closed.push(Deno.UnsafePointer.value(h));
      return 0;
    },
    NtAlpcCreatePort: null,
    NtAlpcConnectPort: null,
    NtAlpcAcceptConnectPort: null,
    NtAlpcSendWaitReceivePort: null,
    NtAlpcDisconnectPort: null,
    NtAlpcQueryInformation: null,
    NtAlpcImpersonateClientOfPort: null,
    NtAlpcCreatePortSection: null,
    NtAlpcDeletePortSection: null,
    NtAlpcCreateSectionView: null,
    NtAlpcDeleteSectionView: null,
    NtAlpcCreateSecurityContext: null,
    NtAlpcDeleteSecurityContext: null,
    NtSetInformationThread: () => 0,
    NtOpenThreadToken: () => S.STATUS_NO_TOKEN | 0,
    ...fns,
  } as unknown as AlpcSymbols;
  return { nt, closed };
}

/** Reads `n` bytes of native memory at a pointer argument. */
function bytesAt(p: Deno.PointerValue, n: number): Uint8Array {
  const out = new Uint8Array(n);
  new Deno.UnsafePointerView(p!).copyInto(out);
  return out;
}

Deno.test("encodeAlpcPortAttributes: the fields at their LAYOUTS offsets, the kernel's defaults for the rest", () => {
  const pa = encodeAlpcPortAttributes({
    flags: AlpcPortFlags.ALLOW_IMPERSONATION,
    maxMessageLength: 0x2000,
    maxSectionSize: 0x100000,
    impersonationLevel: "Identification",
  });
  const dv = new DataView(pa.buffer);
  assertStrictEquals(pa.byteLength, 72);
  assertStrictEquals(dv.getUint32(PA.offsets.Flags, true), 0x10000);
  assertStrictEquals(dv.getUint32(PA.offsets.SecurityQos, true), 12, "SQOS.Length");
  assertStrictEquals(dv.getUint32(PA.offsets.SecurityQos + 4, true), 1, "Identification");
  assertStrictEquals(dv.getBigUint64(PA.offsets.MaxMessageLength, true), 0x2000n);
  assertStrictEquals(dv.getBigUint64(PA.offsets.MaxSectionSize, true), 0x100000n);
  assertStrictEquals(dv.getBigUint64(PA.offsets.MaxPoolUsage, true), 0x4000n);
  assertStrictEquals(dv.getBigUint64(PA.offsets.MaxTotalSectionSize, true), 0x20000n);
});

Deno.test("encodeAlpcPortAttributes refuses what AlpcpValidateAndSetPortAttributes.c refuses", () => {
  const { min, max } = ALPC_MESSAGE_LENGTH_LIMITS;
  assertStrictEquals([min, max].join(), [0x28, 0xffff].join());
  encodeAlpcPortAttributes({ maxMessageLength: min });
  encodeAlpcPortAttributes({ maxMessageLength: max });
  assertThrows(() => encodeAlpcPortAttributes({ maxMessageLength: min - 1 }), RangeError);
  assertThrows(() => encodeAlpcPortAttributes({ maxMessageLength: max + 1 }), RangeError);
  assertThrows(
    () => encodeAlpcPortAttributes({ flags: AlpcPortFlags.SYSTEM_PROCESS }),
    RangeError,
    "SYSTEM_PROCESS",
  );
  assertThrows(() => encodeAlpcPortAttributes({ flags: 0x1000 }), RangeError, "user mode");
  assertThrows(() => encodeAlpcPortAttributes({ maxViewSize: -1 }), RangeError);
});

Deno.test("encodeAlpcMessage: TotalLength = DataLength + 40, Type 0, up to the limit; a reply's ids", () => {
  const m = encodeAlpcMessage({ data: new Uint8Array(0x8000).fill(1), maxTotalLength: 0xffff });
  const h = decodePortMessageHeader(m);
  assertEquals([h.dataLength, h.totalLength, h.rawType], [0x8000, 0x8028, 0]);
  const reply = encodeAlpcMessage({
    data: new Uint8Array([1]),
    messageId: 9,
    callbackId: 4,
    clientId: { process: 10, thread: 11 },
    capacity: 100,
  });
  assertStrictEquals(reply.byteLength, 100);
  const r = decodePortMessageHeader(reply);
  assertEquals([r.messageId, r.callbackId, r.clientId.process, r.clientId.thread], [9, 4, 10, 11]);
  const e = assertThrows(
    () => encodeAlpcMessage({ data: new Uint8Array(89), maxTotalLength: 128 }),
    PortMessageError,
  );
  assertStrictEquals(e.fault, "too-long");
  assertThrows(() => encodeAlpcMessage({ data: new Uint8Array(0xffff - 39) }), PortMessageError);
});

Deno.test("encodeAlpcMessage writes what encodePortMessage writes for the same fields (one encoder), Type always 0", () => {
  const fields = {
    data: new Uint8Array([1, 2, 3]),
    messageId: 7,
    callbackId: 8,
    clientId: { process: 12, thread: 13 },
  };
  assertEquals(encodeAlpcMessage(fields), encodePortMessage(fields));
  // A `type` from an untyped caller is not written: ALPC's Type is the kernel's to set.
  const typed = { ...fields, type: LpcMessageType.LPC_DATAGRAM } as AlpcMessageInit;
  assertStrictEquals(decodePortMessageHeader(encodeAlpcMessage(typed)).rawType, 0);
});

Deno.test("basic information: decoded fields and flag names (unnamed bits in hex)", () => {
  const buf = new Uint8Array(16);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, 0x20000 | 0x1000000, true);
  dv.setUint32(4, 3, true);
  dv.setBigUint64(8, 0x42n, true);
  assertEquals(decodeAlpcBasicInformation(buf), {
    flags: 0x1020000,
    flagNames: ["ALLOW_LPC_REQUESTS", "0x1000000"],
    sequenceNo: 3,
    portContext: 0x42n,
  });
  assertEquals(alpcPortFlagNames(0), []);
  assertThrows(() => decodeAlpcBasicInformation(new Uint8Array(15)), RangeError);
});

Deno.test("queryAlpcBasicInformation passes class 0 and 16 bytes; a failure is an NtError; a missing export is UnsupportedError", () => {
  const seen: number[] = [];
  const { nt } = stub({
    NtAlpcQueryInformation: (_h: unknown, cls: number, buf: Uint8Array, len: number) => {
      seen.push(cls, len);
      new DataView(buf.buffer).setUint32(0, 0x20000, true);
      return 0;
    },
  });
  const port = new NtHandle("port", 0x10n, "a port", () => 0);
  assertEquals(queryAlpcBasicInformation(port, { nt }).flagNames, ["ALLOW_LPC_REQUESTS"]);
  assertEquals(seen, [0, 16]);
  const failing = stub({ NtAlpcQueryInformation: () => S.STATUS_INVALID_HANDLE | 0 }).nt;
  const e = assertThrows(() => queryAlpcBasicInformation(port, { nt: failing }), NtError);
  assertStrictEquals(e.symbol, "STATUS_INVALID_HANDLE");
  assertStrictEquals(e.call, "NtAlpcQueryInformation");
  assertThrows(
    () => queryAlpcBasicInformation(port, { nt: stub({}).nt }),
    UnsupportedError,
    "ntdll!NtAlpcQueryInformation",
  );
});

const SI = LAYOUTS.ALPC_SERVER_INFORMATION;
const SSI = LAYOUTS.ALPC_SERVER_SESSION_INFORMATION;

/** An `ALPC_SERVER_INFORMATION` answer as AlpcpPortQueryServerInfo.c writes it into `buf`. */
function serverAnswer(buf: Uint8Array, pid: bigint, name: string): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = encodeUtf16(name);
  const us = SI.offsets.ConnectionPortName;
  dv.setUint8(SI.offsets.ThreadBlocked, 1);
  dv.setBigUint64(SI.offsets.ConnectedProcessId, pid, true);
  dv.setUint16(us + LAYOUTS.UNICODE_STRING.offsets.Length, n.byteLength, true);
  dv.setUint16(us + LAYOUTS.UNICODE_STRING.offsets.MaximumLength, n.byteLength + 2, true);
  dv.setBigUint64(us + LAYOUTS.UNICODE_STRING.offsets.Buffer, 0x7ff0_0000_0020n, true);
  buf.set(n, SI.size);
  buf[SI.size + n.byteLength] = 0; // the NUL MaximumLength counts
  buf[SI.size + n.byteLength + 1] = 0;
}

Deno.test("server session information: SessionId at 0, ProcessId at 4; fewer than 8 bytes is a RangeError", () => {
  const buf = new Uint8Array(SSI.size);
  const dv = new DataView(buf.buffer);
  dv.setUint32(SSI.offsets.SessionId, 2, true);
  dv.setUint32(SSI.offsets.ProcessId, 0x1234, true);
  assertEquals(decodeAlpcServerSessionInformation(buf), { sessionId: 2, processId: 0x1234 });
  assertThrows(() => decodeAlpcServerSessionInformation(new Uint8Array(7)), RangeError);
});

Deno.test("server information: a blocked thread's pid and the name copied at offset 32; only ThreadBlocked's byte decides", () => {
  const name = "\\RPC Control\\Ünïcode-port";
  const buf = new Uint8Array(SI.size + 2 * name.length + 2 + 8); // room to spare
  serverAnswer(buf, 0x1f40n, name);
  assertEquals(decodeAlpcServerInformation(buf), {
    blocked: true,
    connectedProcessId: 0x1f40,
    connectionPortName: name,
  });
  // A thread waiting on nothing: the kernel writes byte 0 only, so the input handle's other bytes
  // (here NtCurrentThread()'s 0xFF...) stay; they do not make it blocked.
  const idle = new Uint8Array(SI.size);
  new DataView(idle.buffer).setBigUint64(SI.offsets.ThreadHandle, 0xfffffffffffffffen, true);
  idle[SI.offsets.ThreadBlocked] = 0;
  assertEquals(decodeAlpcServerInformation(idle), { blocked: false });
  // An empty (unnamed) connection port's name.
  const unnamed = new Uint8Array(SI.size);
  serverAnswer(unnamed, 8n, "");
  assertEquals(decodeAlpcServerInformation(unnamed), {
    blocked: true,
    connectedProcessId: 8,
    connectionPortName: "",
  });
});

Deno.test("server information: a buffer under 32 bytes, a name longer than what follows the structure, an odd Length are RangeErrors", () => {
  assertThrows(() => decodeAlpcServerInformation(new Uint8Array(SI.size - 1)), RangeError);
  const buf = new Uint8Array(SI.size + 10);
  serverAnswer(buf, 4n, "abcde");
  const dv = new DataView(buf.buffer);
  const length = SI.offsets.ConnectionPortName + LAYOUTS.UNICODE_STRING.offsets.Length;
  dv.setUint16(length, 12, true); // 12 bytes do not fit in the 10 after the structure
  assertThrows(() => decodeAlpcServerInformation(buf), RangeError, "does not fit");
  dv.setUint16(length, 9, true);
  assertThrows(() => decodeAlpcServerInformation(buf), RangeError);
  dv.setUint16(length, 10, true);
  assertStrictEquals(
    (decodeAlpcServerInformation(buf) as { connectionPortName: string }).connectionPortName,
    "abcde",
  );
});

Deno.test("queryAlpcServerInformation: NULL port, class 4, the thread handle in the first 8 bytes, retried at the size the kernel asks for; a failure is an NtError", () => {
  const name = "\\RPC Control\\" + "x".repeat(400); // more than the first try's room
  const needed = SI.size + 2 * name.length + 2;
  const seen: { port: bigint; cls: number; len: number; handle: bigint }[] = [];
  const { nt } = stub({
    NtAlpcQueryInformation: (
      p: Deno.PointerValue,
      cls: number,
      buf: Uint8Array,
      len: number,
      ret: Uint32Array,
    ) => {
      const handle = new DataView(buf.buffer).getBigUint64(SI.offsets.ThreadHandle, true);
      seen.push({ port: p === null ? 0n : Deno.UnsafePointer.value(p), cls, len, handle });
      ret[0] = needed;
      if (len < needed) return S.STATUS_INFO_LENGTH_MISMATCH | 0;
      serverAnswer(buf, 0x99n, name);
      return 0;
    },
  });
  const thread = new NtHandle("thread", 0x2c4n, "a thread", () => 0);
  assertEquals(queryAlpcServerInformation(thread, { nt }), {
    blocked: true,
    connectedProcessId: 0x99,
    connectionPortName: name,
  });
  assertEquals(seen.map((s) => [s.port, s.cls, s.handle]), [[0n, 4, 0x2c4n], [0n, 4, 0x2c4n]]);
  assert(seen[0]!.len < needed, `the first try (${seen[0]!.len}) is too small on purpose`);
  assertStrictEquals(seen[1]!.len, needed);
  const denied = stub({ NtAlpcQueryInformation: () => S.STATUS_ACCESS_DENIED | 0 }).nt;
  const e = assertThrows(() => queryAlpcServerInformation(thread, { nt: denied }), NtError);
  assertStrictEquals(e.symbol, "STATUS_ACCESS_DENIED");
  assertStrictEquals(e.context, "AlpcServerInformation of a thread");
  // A kernel that keeps asking for more (the name keeps growing) ends in the NtError.
  let grow = SI.size;
  const growing = stub({
    NtAlpcQueryInformation: (
      _p: unknown,
      _c: number,
      _b: Uint8Array,
      len: number,
      r: Uint32Array,
    ) => {
      r[0] = grow = Math.max(grow, len) + 2;
      return S.STATUS_INFO_LENGTH_MISMATCH | 0;
    },
  }).nt;
  const g = assertThrows(() => queryAlpcServerInformation(thread, { nt: growing }), NtError);
  assertStrictEquals(g.symbol, "STATUS_INFO_LENGTH_MISMATCH");
});

Deno.test("queryAlpcServerSession: the port, class 12 and 8 bytes; STATUS_INVALID_PARAMETER says what it means here", () => {
  const seen: number[] = [];
  const { nt } = stub({
    NtAlpcQueryInformation: (_h: unknown, cls: number, buf: Uint8Array, len: number) => {
      seen.push(cls, len);
      new DataView(buf.buffer).setUint32(SSI.offsets.SessionId, 1, true);
      new DataView(buf.buffer).setUint32(SSI.offsets.ProcessId, 640, true);
      return 0;
    },
  });
  const port = new NtHandle("port", 0x10n, "a port", () => 0);
  assertEquals(queryAlpcServerSession(port, { nt }), { sessionId: 1, processId: 640 });
  assertEquals(seen, [12, 8]);
  const gone = stub({ NtAlpcQueryInformation: () => S.STATUS_INVALID_PARAMETER | 0 }).nt;
  const e = assertThrows(() => queryAlpcServerSession(port, { nt: gone }), NtError);
  assertStrictEquals(e.symbol, "STATUS_INVALID_PARAMETER");
  assert(e.message.includes("no connected port with a live owner"), e.message);
  assert(e.hint !== undefined, "the status's hint is kept");
  const denied = stub({ NtAlpcQueryInformation: () => S.STATUS_ACCESS_DENIED | 0 }).nt;
  const d = assertThrows(() => queryAlpcServerSession(port, { nt: denied }), NtError);
  assertStrictEquals(d.context, "AlpcServerSessionInformation of a port");
});

Deno.test("createAlpcPort: the attributes reach the call; the handle is owned and closed through nt", () => {
  let maxSeen = 0n;
  const { nt, closed } = stub({
    NtAlpcCreatePort: (cell: BigUint64Array, _oa: Uint8Array, pa: Uint8Array) => {
      maxSeen = new DataView(pa.buffer).getBigUint64(PA.offsets.MaxMessageLength, true);
      cell[0] = 0x88n;
      return 0;
    },
  });
  {
    using port = createAlpcPort("\\RPC Control\\x", { maxMessageLength: 0x300, nt });
    assertStrictEquals(port.kind, "connection-port");
  }
  assertStrictEquals(maxSeen, 0x300n);
  assertEquals(closed, [0x88n]);
  const collision = stub({ NtAlpcCreatePort: () => S.STATUS_OBJECT_NAME_COLLISION | 0 }).nt;
  const e = assertThrows(() => createAlpcPort("\\RPC Control\\x", { nt: collision }), NtError);
  assert(e.is("STATUS_OBJECT_NAME_COLLISION"));
  assertThrows(() => createAlpcPort(null, { maxMessageLength: 0x27, nt }), RangeError);
});

Deno.test("AlpcClient.connect: a synchronous connect with the required server SID's bytes; a SID mismatch is an NtError, no handle kept", () => {
  const calls: { flags: number; sid: Uint8Array; clientFlags: number }[] = [];
  const { nt, closed } = stub({
    NtAlpcConnectPort: (
      _cell: BigUint64Array,
      _name: Uint8Array,
      _oa: null,
      pa: Uint8Array,
      flags: number,
      sid: Deno.PointerValue,
    ) => {
      calls.push({
        flags,
        sid: bytesAt(sid, 12),
        clientFlags: new DataView(pa.buffer).getUint32(PA.offsets.Flags, true),
      });
      return S.STATUS_SERVER_SID_MISMATCH | 0;
    },
  });
  const e = assertThrows(
    () => AlpcClient.connect("\\RPC Control\\x", { requiredServerSid: "S-1-5-18", nt }),
    NtError,
  );
  assertStrictEquals(e.symbol, "STATUS_SERVER_SID_MISMATCH");
  assertStrictEquals(calls[0]!.flags, AlpcMessageFlags.SYNC_REQUEST);
  assertEquals(calls[0]!.sid, sidFromString("S-1-5-18"));
  assertStrictEquals(calls[0]!.clientFlags, AlpcPortFlags.ALLOW_IMPERSONATION, "the default");
  assertEquals(closed, []);
  assertThrows(
    () => AlpcClient.connect("\\RPC Control\\x", { requiredServerSid: "not a sid", nt }),
    TypeError,
  );
  assertThrows(
    () => AlpcClient.connect("\\RPC Control\\x", { requiredServerSid: new Uint8Array([2, 0]), nt }),
    RangeError,
  );
  assertStrictEquals(calls.length, 1);
});

Deno.test("AlpcClient.connect: STATUS_TIMEOUT (a success code, no handle) is an NtError; allowImpersonation false clears the flag", () => {
  const flags: number[] = [];
  const { nt } = stub({
    NtAlpcConnectPort: (
      _c: unknown,
      _n: unknown,
      _o: unknown,
      pa: Uint8Array,
      _f: number,
      _s: unknown,
      _m: unknown,
      _l: unknown,
      _oa: unknown,
      _ia: unknown,
      timeout: BigInt64Array,
    ) => {
      flags.push(new DataView(pa.buffer).getUint32(PA.offsets.Flags, true));
      assertStrictEquals(timeout[0], -50n * 10_000n);
      return S.STATUS_TIMEOUT;
    },
  });
  const e = assertThrows(
    () => AlpcClient.connect("\\RPC Control\\x", { timeoutMs: 50, allowImpersonation: false, nt }),
    NtError,
  );
  assertStrictEquals(e.symbol, "STATUS_TIMEOUT");
  assertEquals(flags, [0]);
});
