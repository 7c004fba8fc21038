/**
 * AlpcClient's requests, datagrams, views and security contexts against scripted symbols (runs
 * everywhere): the flags and attributes each call passes, and that everything it made is
 * released when it closes, also when a release fails.
 */

import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { AlpcClient } from "../../../ffi/alpc/client.ts";
import { AlpcAttributeFlags, AlpcMessageFlags } from "../../../ffi/alpc/constants.ts";
import { type AlpcSymbols, encodeAlpcMessage } from "../../../ffi/alpc/port.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import { decodePortMessageHeader } from "../../../ffi/port_message.ts";
import { NtError } from "../../../ffi/status.ts";

const PM = LAYOUTS.PORT_MESSAGE;
const SEC = LAYOUTS.ALPC_SECURITY_ATTR;
const VIEW = LAYOUTS.ALPC_DATA_VIEW_ATTR;

function scripted(options: { failUnmap?: boolean } = {}) {
  const log: string[] = [];
  const sends: {
    flags: number;
    attrs: Uint8Array | null;
    data: Uint8Array;
    hasReceive: boolean;
  }[] = [];
  const memory = new Uint8Array(0x10000);
  const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(memory));
  const value = (p: Deno.PointerValue) => Deno.UnsafePointer.value(p);
  const nt = {
    NtClose: (h: Deno.PointerValue) => (log.push(`close 0x${value(h).toString(16)}`), 0),
    NtAlpcConnectPort: (
      cell: BigUint64Array,
      _n: unknown,
      _o: unknown,
      _pa: unknown,
      _f: number,
      _s: unknown,
      msg: Uint8Array,
    ) => {
      cell[0] = 0x50n;
      // The server's connection reply: 3 bytes back.
      msg.set(encodeAlpcMessage({ data: new Uint8Array([1, 2, 3]), messageId: 1 }));
      return 0;
    },
    NtAlpcSendWaitReceivePort: (
      _port: unknown,
      flags: number,
      send: Uint8Array,
      attrs: Uint8Array | null,
      recv: Uint8Array | null,
    ) => {
      const h = decodePortMessageHeader(send);
      sends.push({
        flags,
        attrs: attrs?.slice() ?? null,
        data: send.slice(PM.size, PM.size + h.dataLength),
        hasReceive: recv !== null,
      });
      if (recv) {
        recv.set(encodeAlpcMessage({ data: new TextEncoder().encode("pong"), messageId: 4 }));
      }
      return 0;
    },
    NtAlpcCreatePortSection: (
      _p: unknown,
      flags: number,
      section: unknown,
      size: bigint,
      cell: BigUint64Array,
      actual: BigUint64Array,
    ) => {
      log.push(`section ${flags} ${section} ${size}`);
      cell[0] = 0x77n;
      actual[0] = size;
      return 0;
    },
    NtAlpcCreateSectionView: (_p: unknown, flags: number, attr: Uint8Array) => {
      const dv = new DataView(attr.buffer);
      log.push(
        `view ${flags} section 0x${
          dv.getBigUint64(VIEW.offsets.SectionHandle, true).toString(16)
        } size ${dv.getBigUint64(VIEW.offsets.ViewSize, true)}`,
      );
      dv.setBigUint64(VIEW.offsets.ViewBase, base, true);
      return 0;
    },
    NtAlpcDeleteSectionView: (_p: unknown, _f: number, b: Deno.PointerValue) => {
      log.push(`unmap ${value(b) === base}`);
      return options.failUnmap ? 0xc0000141 | 0 : 0; // STATUS_INVALID_ADDRESS
    },
    NtAlpcDeletePortSection: (
      _p: unknown,
      _f: number,
      h: Deno.PointerValue,
    ) => (log.push(`delete-section 0x${value(h).toString(16)}`), 0),
    NtAlpcCreateSecurityContext: (_p: unknown, flags: number, attr: Uint8Array) => {
      const dv = new DataView(attr.buffer);
      log.push(`security ${flags} qos ${dv.getBigUint64(SEC.offsets.QoS, true) !== 0n}`);
      dv.setBigUint64(SEC.offsets.ContextHandle, 0x99n, true);
      return 0;
    },
    NtAlpcDeleteSecurityContext: (
      _p: unknown,
      _f: number,
      h: Deno.PointerValue,
    ) => (log.push(`delete-security 0x${value(h).toString(16)}`), 0),
    NtAlpcDisconnectPort: (_p: unknown, flags: number) => (log.push(`disconnect ${flags}`), 0),
  } as unknown as AlpcSymbols;
  return { nt, log, sends, memory };
}

Deno.test("connect returns the server's connection data; request is SYNC_REQUEST with a receive buffer and no attributes", () => {
  const { nt, sends } = scripted();
  using client = AlpcClient.connect("\\RPC Control\\x", { nt });
  assertEquals(client.connectInfo, new Uint8Array([1, 2, 3]));
  const reply = client.request(new TextEncoder().encode("ping"));
  assertStrictEquals(new TextDecoder().decode(reply.data), "pong");
  assertEquals(sends.map((s) => [s.flags, s.attrs, s.hasReceive]), [[
    AlpcMessageFlags.SYNC_REQUEST,
    null,
    true,
  ]]);
  client.send(new Uint8Array([9]));
  assertEquals(sends[1]!.flags, AlpcMessageFlags.RELEASE_MESSAGE, "a datagram");
  assertStrictEquals(sends[1]!.hasReceive, false);
});

Deno.test("a view: a section then a view of it; written bytes land in its memory; sent with the view attribute; unmapped then deleted at close", () => {
  const { nt, log, sends, memory } = scripted();
  const client = AlpcClient.connect("\\RPC Control\\x", { nt });
  const view = client.createView(0x8000);
  assertEquals(log, ["section 0 null 32768", "view 0 section 0x77 size 32768"]);
  view.write(new TextEncoder().encode("bulk"), 10);
  assertStrictEquals(new TextDecoder().decode(memory.subarray(10, 14)), "bulk");
  assertStrictEquals(new TextDecoder().decode(view.read(10, 4)), "bulk");
  assertThrows(
    () => view.write(new Uint8Array(2), 0x7fff),
    RangeError,
    "outside the 32768-byte view",
  );
  client.request(new Uint8Array(0), { view });
  const attrs = new DataView(sends[0]!.attrs!.buffer);
  assertStrictEquals(attrs.getUint32(0, true), AlpcAttributeFlags.VIEW, "allocated");
  assertStrictEquals(attrs.getUint32(4, true), AlpcAttributeFlags.VIEW, "valid");
  assertStrictEquals(attrs.getBigUint64(8 + VIEW.offsets.SectionHandle, true), 0x77n);
  assertStrictEquals(attrs.getBigUint64(8 + VIEW.offsets.ViewSize, true), 0x8000n);
  client.close();
  assertEquals(log.slice(2), ["unmap true", "delete-section 0x77", "close 0x50"]);
  assertStrictEquals(view.released, true);
  client.close(); // idempotent
});

Deno.test("security: a context is created with a QoS and named in the attribute; 'message' asks the kernel to capture now (-2)", () => {
  const { nt, log, sends } = scripted();
  const client = AlpcClient.connect("\\RPC Control\\x", { nt });
  const context = client.createSecurityContext();
  assertEquals(log, ["security 0 qos true"]);
  client.request(new Uint8Array(0), { security: context });
  client.request(new Uint8Array(0), { security: "message" });
  const handleOf = (a: Uint8Array) =>
    new DataView(a.buffer).getBigUint64(8 + SEC.offsets.ContextHandle, true);
  assertStrictEquals(handleOf(sends[0]!.attrs!), 0x99n);
  assertStrictEquals(handleOf(sends[1]!.attrs!), 0xfffffffffffffffen);
  assertStrictEquals(
    new DataView(sends[1]!.attrs!.buffer).getUint32(4, true),
    AlpcAttributeFlags.SECURITY,
  );
  client.disconnect();
  client.close();
  assertEquals(log.slice(1), ["disconnect 0", "delete-security 0x99", "close 0x50"]);
});

Deno.test("close releases everything and closes the port even when a release fails, then throws that failure", () => {
  const { nt, log } = scripted({ failUnmap: true });
  const client = AlpcClient.connect("\\RPC Control\\x", { nt });
  client.createView(0x1000);
  client.createSecurityContext();
  const e = assertThrows(() => client.close(), NtError);
  assertStrictEquals(e.call, "NtAlpcDeleteSectionView");
  assertEquals(log.slice(3), [
    "delete-security 0x99",
    "unmap true",
    "delete-section 0x77",
    "close 0x50",
  ]);
});
