/**
 * The ALPC fake's ntdll-side helpers, which no conformance case can reach (the Windows driver
 * only calls functions returning an NTSTATUS): `AlpcGetMessageAttribute` finds an attribute by the
 * sizes of the allocated ones above it (AlpcGetMessageAttribute.c, AlpcGetHeaderSize.c).
 */

import { assertStrictEquals } from "@std/assert";
import { AlpcAttributeFlags as A } from "../ffi/alpc/constants.ts";
import { LAYOUTS } from "../ffi/layouts.ts";
import { ObjectAttributes, UnicodeString } from "../ffi/nt/object_attributes.ts";
import {
  attributeOffset,
  attributesSize,
  messageAttributes,
  viewAttr,
} from "./conformance/_alpc.ts";
import { message } from "./conformance/_util.ts";
import { FakeKernel } from "./fake_kernel.ts";

const address = (b: Uint8Array) => Deno.UnsafePointer.value(Deno.UnsafePointer.of(b));

Deno.test("fake ALPC: AlpcGetMessageAttribute points past the allocated attributes above the flag, NULL when not allocated or not one bit", () => {
  const k = new FakeKernel();
  const allocated = (A.SECURITY | A.CONTEXT | A.TOKEN) >>> 0;
  const buf = messageAttributes(allocated);
  const get = (flag: number) => {
    const p = k.symbols.AlpcGetMessageAttribute(buf, flag >>> 0);
    return p === null ? null : Number(Deno.UnsafePointer.value(p) - address(buf));
  };
  const header = LAYOUTS.ALPC_MESSAGE_ATTRIBUTES.size;
  const security = LAYOUTS.ALPC_SECURITY_ATTR.size;
  const context = LAYOUTS.ALPC_CONTEXT_ATTR.size;
  assertStrictEquals(get(A.SECURITY), header);
  assertStrictEquals(get(A.CONTEXT), header + security);
  assertStrictEquals(get(A.TOKEN), header + security + context);
  assertStrictEquals(get(A.VIEW), null);
  assertStrictEquals(get(A.CONTEXT | A.TOKEN), null);
  assertStrictEquals(attributeOffset(allocated, A.TOKEN), header + security + context);
  assertStrictEquals(attributesSize(allocated), header + security + context + 24);
});

Deno.test("fake ALPC: AlpcInitializeMessageAttribute with a NULL buffer still reports the required size", () => {
  const k = new FakeKernel();
  const required = new Uint8Array(8);
  const status = k.symbols.AlpcInitializeMessageAttribute(A.VIEW >>> 0, null, 1000n, required);
  assertStrictEquals(status, 0);
  assertStrictEquals(new DataView(required.buffer).getBigUint64(0, true), 40n);
});

Deno.test("fake ALPC: alpcViews counts a process's views: the sender's own, and the mapping a delivered view attribute makes in the receiver's process", () => {
  const k = new FakeKernel();
  const server = k.spawnProcess();
  const client = k.spawnProcess();
  const cell = () => new Uint8Array(8);
  const value = (c: Uint8Array) => new DataView(c.buffer).getBigUint64(0, true);
  const ptr = (v: bigint) => Deno.UnsafePointer.create(v);
  const conn = cell();
  const oa = new ObjectAttributes("\\RPC Control\\views-test");
  assertStrictEquals(k.as(server, () => k.symbols.NtAlpcCreatePort(conn, oa.struct, null)), 0);
  const name = new UnicodeString("\\RPC Control\\views-test");
  const cli = cell();
  // Without SYNC_REQUEST the connect returns at once (AlpcpProcessConnectionRequest.c).
  const c = k.as(
    client,
    () =>
      k.symbols.NtAlpcConnectPort(
        cli,
        name.struct,
        null,
        null,
        0,
        null,
        null,
        null,
        null,
        null,
        null,
      ),
  );
  assertStrictEquals(c, 0);
  const rx = new Uint8Array(0x100);
  const timeout = new Uint8Array(8);
  const recv = () =>
    k.as(
      server,
      () =>
        k.symbols.NtAlpcSendWaitReceivePort(
          ptr(value(conn)),
          0,
          null,
          null,
          rx,
          null,
          null,
          timeout,
        ),
    );
  assertStrictEquals(recv(), 0);
  const accept = message({ messageId: new DataView(rx.buffer).getUint32(24, true) });
  const srv = cell();
  const a = k.as(
    server,
    () =>
      k.symbols.NtAlpcAcceptConnectPort(
        srv,
        ptr(value(conn)),
        0,
        null,
        null,
        null,
        accept,
        null,
        1,
      ),
  );
  assertStrictEquals(a, 0);
  const sh = cell();
  const size = cell();
  k.as(
    client,
    () => k.symbols.NtAlpcCreatePortSection(ptr(value(cli)), 0, null, 0x1000n, sh, size),
  );
  const va = viewAttr({ section: value(sh), size: 0x1000n });
  assertStrictEquals(
    k.as(client, () => k.symbols.NtAlpcCreateSectionView(ptr(value(cli)), 0, va)),
    0,
  );
  assertStrictEquals([k.alpcViews(client.pid), k.alpcViews(server.pid)].join(), "1,0");
  const base = new DataView(va.buffer).getBigUint64(
    LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets.ViewBase,
    true,
  );
  const attrs = messageAttributes(A.VIEW >>> 0, A.VIEW >>> 0, [
    { flag: A.VIEW >>> 0, bytes: viewAttr({ section: value(sh), base, size: 0x1000n }) },
  ]);
  const sent = k.as(
    client,
    () =>
      k.symbols.NtAlpcSendWaitReceivePort(
        ptr(value(cli)),
        0x10000,
        message({}),
        attrs,
        null,
        null,
        null,
        null,
      ),
  );
  assertStrictEquals(sent, 0);
  assertStrictEquals([k.alpcViews(client.pid), k.alpcViews(server.pid)].join(), "1,1");
  const deleted = k.as(
    client,
    () => k.symbols.NtAlpcDeleteSectionView(ptr(value(cli)), 0, ptr(base)),
  );
  assertStrictEquals(deleted, 0);
  assertStrictEquals(k.alpcViews(client.pid), 0);
});
