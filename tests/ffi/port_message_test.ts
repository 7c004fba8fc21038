import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import {
  decodeClientDied,
  decodeExceptionMessage,
  decodePortMessage,
  decodePortMessageHeader,
  encodePortMessage,
  LpcMessageType,
  messageFlagNames,
  messageTypeName,
  PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH,
  PortMessageError,
  rewriteAsReply,
  setReturnedStatus,
  writePortMessage,
} from "../../ffi/port_message.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { NTSTATUS } from "../../ffi/status.ts";

const PM = LAYOUTS.PORT_MESSAGE.offsets;

/** Builds a message the way the kernel lays it out, for decoder tests. */
function kernelMessage(
  fields: {
    type: number;
    dataLength: number;
    totalLength?: number;
    pid?: number;
    tid?: number;
    messageId?: number;
  },
  bufferSize = PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH,
): { buf: Uint8Array<ArrayBuffer>; dv: DataView } {
  const buf = new Uint8Array(bufferSize);
  const dv = new DataView(buf.buffer);
  dv.setUint16(PM.DataLength, fields.dataLength, true);
  dv.setUint16(PM.TotalLength, fields.totalLength ?? 40 + fields.dataLength, true);
  dv.setUint16(PM.Type, fields.type, true);
  dv.setBigUint64(PM.ClientId, BigInt(fields.pid ?? 0), true);
  dv.setBigUint64(PM.ClientId + 8, BigInt(fields.tid ?? 0), true);
  dv.setUint32(PM.MessageId, fields.messageId ?? 0, true);
  return { buf, dv };
}

Deno.test("PORT_MESSAGE round trip: lengths, ClientId, MessageId, payload", () => {
  const data = new TextEncoder().encode("READ 1 C:\\lab\\secret.txt");
  const wire = encodePortMessage({
    data,
    clientId: { process: 4242, thread: 77 },
    messageId: 9,
    callbackId: 3,
  });
  assertStrictEquals(wire.byteLength, 40 + data.byteLength);
  const { header, data: back } = decodePortMessage(wire);
  assertEquals(header.clientId, { process: 4242, thread: 77 });
  assertStrictEquals(header.messageId, 9);
  assertStrictEquals(header.dataLength, data.byteLength);
  assertStrictEquals(header.totalLength, 40 + data.byteLength);
  assertStrictEquals(header.callbackId, 3);
  assertEquals(back, data);
  // u1.Length == (TotalLength << 16) | DataLength
  assertStrictEquals(
    new DataView(wire.buffer).getUint32(PM.Length, true),
    (header.totalLength << 16) | header.dataLength,
  );
});

Deno.test("encodePortMessage() refuses payloads over the port's maximum", () => {
  const e = assertThrows(() => encodePortMessage({ data: new Uint8Array(473) }), PortMessageError);
  assertStrictEquals(e.fault, "too-long");
  assertStrictEquals(encodePortMessage({ data: new Uint8Array(472) }).byteLength, 512);
  assertThrows(
    () => encodePortMessage({ data: new Uint8Array(100), maxTotalLength: 100 }),
    PortMessageError,
  );
});

Deno.test("writePortMessage() (LPC's and ALPC's one encoder): the ceiling bounds past max, capacity pads, into is checked", () => {
  const fields = { data: new Uint8Array([5, 6]), type: 1, messageId: 3, callbackId: 2 };
  // The same bytes as encodePortMessage, padded with zeros to the capacity.
  const padded = writePortMessage(fields, { max: 512, ceiling: 0x7fff, capacity: 64 });
  assertStrictEquals(padded.byteLength, 64);
  assertEquals(padded.subarray(0, 42), encodePortMessage(fields));
  assertEquals(padded.subarray(42), new Uint8Array(22));
  // LPC's ceiling holds even when max would allow more; ALPC's is higher.
  const big = { data: new Uint8Array(0x7fff - 39) };
  const e = assertThrows(
    () => writePortMessage(big, { max: 0xffff, ceiling: 0x7fff }),
    PortMessageError,
  );
  assertStrictEquals(e.fault, "too-long");
  assertStrictEquals(writePortMessage(big, { max: 0xffff, ceiling: 0xffff }).byteLength, 0x8000);
  const short = assertThrows(
    () => writePortMessage(fields, { max: 512, ceiling: 0x7fff, into: new Uint8Array(41) }),
    PortMessageError,
  );
  assertStrictEquals(short.fault, "short-buffer");
});

Deno.test("Type is compared after & 0xFF and the flag bits are kept apart", () => {
  const { buf } = kernelMessage({ type: 0x2001 | 0x8000, dataLength: 0 });
  const h = decodePortMessageHeader(buf);
  assertStrictEquals(h.type, LpcMessageType.LPC_REQUEST);
  assertStrictEquals(h.flags, 0xa000);
  assertStrictEquals(h.rawType, 0xa001);
  assertEquals(messageFlagNames(h.rawType), [
    "LPC_CONTINUATION_REQUIRED",
    "LPC_KERNELMODE_MESSAGE",
  ]);
  assertStrictEquals(messageTypeName(0x200d), "LPC_UNREGISTER_PROCESS");
  assertStrictEquals(messageTypeName(11), "LPC_CONNECTION_REPLY");
  assertStrictEquals(messageTypeName(12), "LPC_CANCELED");
  assertStrictEquals(messageTypeName(0x42), "LPC_UNKNOWN_66");
});

Deno.test("the decoder rejects each malformation with a typed fault", () => {
  const cases: [string, () => Uint8Array, string][] = [
    ["buffer shorter than a header", () => new Uint8Array(39), "short-buffer"],
    [
      "TotalLength < 40",
      () => kernelMessage({ type: 1, dataLength: 0, totalLength: 39 }).buf,
      "total-below-header",
    ],
    [
      "TotalLength > buffer",
      () => kernelMessage({ type: 1, dataLength: 0, totalLength: 100 }, 99).buf,
      "total-beyond-buffer",
    ],
    [
      "DataLength > TotalLength - 40",
      () => kernelMessage({ type: 1, dataLength: 9, totalLength: 48 }).buf,
      "data-beyond-total",
    ],
    [
      "DataLength 0xFFFF (negative CSHORT)",
      () => kernelMessage({ type: 1, dataLength: 0xffff, totalLength: 80 }).buf,
      "data-beyond-total",
    ],
    [
      "odd DataInfoOffset",
      () => {
        const m = kernelMessage({ type: 1, dataLength: 40 });
        m.dv.setUint16(PM.DataInfoOffset, 41, true);
        return m.buf;
      },
      "bad-data-info-offset",
    ],
    [
      "DataInfoOffset inside the header",
      () => {
        const m = kernelMessage({ type: 1, dataLength: 40 });
        m.dv.setUint16(PM.DataInfoOffset, 32, true);
        return m.buf;
      },
      "bad-data-info-offset",
    ],
    [
      "data entries overrunning TotalLength",
      () => {
        const m = kernelMessage({ type: 1, dataLength: 16 });
        m.dv.setUint16(PM.DataInfoOffset, 40, true);
        m.dv.setUint32(40, 3, true);
        return m.buf;
      },
      "bad-data-info-offset",
    ],
  ];
  for (const [what, make, fault] of cases) {
    const e = assertThrows(() => decodePortMessage(make()), PortMessageError, undefined, what);
    assertStrictEquals(e.fault, fault, what);
  }
});

Deno.test("fuzz: 100,000 random buffers decode or fail with PortMessageError, never out of bounds", () => {
  // A deterministic generator so a failure is reproducible.
  let seed = 0x1badb002;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  let ok = 0;
  let rejected = 0;
  const pool = new Uint8Array(1024);
  for (let i = 0; i < 100_000; i++) {
    const size = Math.floor(rand() * 700);
    const offset = Math.floor(rand() * 8);
    const buf = pool.subarray(offset, offset + size);
    for (let j = 0; j < size; j++) buf[j] = Math.floor(rand() * 256);
    // Make plausible headers common, so the deep checks are reached.
    if (size >= 8 && rand() < 0.7) {
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const total = 40 + Math.floor(rand() * Math.max(1, size - 30));
      dv.setUint16(2, total, true);
      dv.setUint16(0, Math.floor(rand() * (total - 30)), true);
      if (rand() < 0.5) dv.setUint16(6, 0, true);
      else dv.setUint16(6, Math.floor(rand() * 20) * 8, true);
      if (rand() < 0.3) dv.setUint16(4, [5, 6, 7][Math.floor(rand() * 3)]!, true);
    }
    for (const decode of [decodePortMessage, decodeClientDied, decodeExceptionMessage]) {
      try {
        const r = decode(buf);
        assert(r.header.totalLength <= size && r.header.dataLength + 40 <= r.header.totalLength);
        ok++;
      } catch (e) {
        if (!(e instanceof PortMessageError)) throw new Error(`case ${i}: ${e}`);
        rejected++;
      }
    }
  }
  assert(ok > 10_000, `${ok} decoded`);
  assert(rejected > 10_000, `${rejected} rejected`);
});

Deno.test("rewriteAsReply() keeps ClientId and MessageId and sets new lengths", () => {
  const { buf } = kernelMessage({
    type: LpcMessageType.LPC_REQUEST,
    dataLength: 20,
    pid: 100,
    tid: 200,
    messageId: 55,
  });
  new DataView(buf.buffer).setUint16(PM.DataInfoOffset, 0, true);
  rewriteAsReply(buf, new Uint8Array([7, 7, 7]));
  const h = decodePortMessageHeader(buf);
  assertEquals(h.clientId, { process: 100, thread: 200 });
  assertStrictEquals(h.messageId, 55);
  assertStrictEquals(h.dataLength, 3);
  assertStrictEquals(h.totalLength, 43);
  assertThrows(() => rewriteAsReply(buf, new Uint8Array(500)), PortMessageError);
});

Deno.test("decodeClientDied(): CreateTime at offset 40, as a FILETIME date", () => {
  // 2026-11-25T00:00:00Z as FILETIME
  const ft = BigInt(Date.UTC(2026, 10, 25)) * 10000n + 116444736000000000n;
  const { buf, dv } = kernelMessage({
    type: LpcMessageType.LPC_CLIENT_DIED,
    dataLength: 8,
    pid: 10,
    tid: 12,
  });
  dv.setBigInt64(LAYOUTS.LPC_CLIENT_DIED_MSG.offsets.CreateTime, ft, true);
  const died = decodeClientDied(buf);
  assertStrictEquals(died.createTime, ft);
  assertStrictEquals(died.createdAt.toISOString(), "2026-11-25T00:00:00.000Z");
  assertEquals(died.header.clientId, { process: 10, thread: 12 });
  // PORT_CLOSED shares the layout; other types and a short payload are refused.
  assertStrictEquals(
    decodeClientDied(kernelMessage({ type: 5, dataLength: 8 }).buf).header.type,
    5,
  );
  assertThrows(
    () => decodeClientDied(kernelMessage({ type: 1, dataLength: 8 }).buf),
    PortMessageError,
  );
  assertThrows(
    () => decodeClientDied(kernelMessage({ type: 6, dataLength: 4 }).buf),
    PortMessageError,
  );
});

Deno.test("decodeExceptionMessage() reads the x64 byte map and setReturnedStatus() writes the verdict", () => {
  const { buf, dv } = kernelMessage({
    type: LpcMessageType.LPC_EXCEPTION,
    dataLength: 0xa8,
    totalLength: 0xd0,
    pid: 5,
    tid: 6,
    messageId: 1,
  });
  const D = LAYOUTS.DBGKM_APIMSG.offsets;
  const ER = LAYOUTS.EXCEPTION_RECORD.offsets;
  dv.setUint32(D.ApiNumber, 0, true);
  dv.setUint32(D.ReturnedStatus, NTSTATUS.STATUS_PENDING, true);
  dv.setUint32(D.ExceptionRecord + ER.ExceptionCode, 0xe0000001, true);
  dv.setBigUint64(D.ExceptionRecord + ER.ExceptionAddress, 0x7ff612340000n, true);
  dv.setUint32(D.ExceptionRecord + ER.NumberParameters, 2, true);
  dv.setBigUint64(D.ExceptionRecord + ER.ExceptionInformation, 0x1234n, true);
  dv.setBigUint64(D.ExceptionRecord + ER.ExceptionInformation + 8, 0x5678n, true);
  const m = decodeExceptionMessage(buf);
  assertStrictEquals(m.apiNumber, 0);
  assertStrictEquals(m.returnedStatus, NTSTATUS.STATUS_PENDING);
  assertStrictEquals(m.record.code, 0xe0000001);
  assertStrictEquals(m.record.address, 0x7ff612340000n);
  assertEquals(m.record.parameters, [0x1234n, 0x5678n]);
  assertStrictEquals(m.firstChance, false);
  // The documented absolute byte map (nt-abi-facts §4.1) agrees with LAYOUTS.
  assertStrictEquals(D.ApiNumber, 40);
  assertStrictEquals(D.ExceptionRecord + ER.ExceptionCode, 48);
  assertStrictEquals(D.ExceptionRecord + ER.ExceptionInformation, 80);
  assertStrictEquals(D.FirstChance, 200);

  setReturnedStatus(buf, NTSTATUS.DBG_CONTINUE);
  assertStrictEquals(decodeExceptionMessage(buf).returnedStatus, NTSTATUS.DBG_CONTINUE);

  dv.setUint32(D.ExceptionRecord + ER.NumberParameters, 16, true);
  const e = assertThrows(() => decodeExceptionMessage(buf), PortMessageError);
  assertStrictEquals(e.fault, "bad-parameter-count");
  const e2 = assertThrows(
    () => decodeExceptionMessage(kernelMessage({ type: 7, dataLength: 100 }).buf),
    PortMessageError,
  );
  assertStrictEquals(e2.fault, "short-payload");
});

Deno.test("PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH is 0x2B0 and holds the largest kernel message", () => {
  assertStrictEquals(PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH, 0x2b0);
  assert(PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH >= LAYOUTS.DBGKM_APIMSG.size);
});
