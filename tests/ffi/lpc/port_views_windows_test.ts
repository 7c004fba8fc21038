/** Legacy port views against the real kernel (Windows only; ignored elsewhere with the reason). */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { LpcClient } from "../../../ffi/lpc/port.ts";
import { ServerWorker } from "../../../ffi/lpc/server_worker.ts";
import { lpcUnavailable } from "../../../ffi/nt/capabilities.ts";
import { Section } from "../../../ffi/nt/sections.ts";
import { NtError } from "../../../ffi/status.ts";
import { ON_WINDOWS_BUILD, windowsTest } from "../../_helpers.ts";

const LPC_WHY = ON_WINDOWS_BUILD ? lpcUnavailable() : "needs Windows (Wine 8.0 stubs LPC)";
const HANDLER = new URL("./_view_handler.ts", import.meta.url);
const name = (what: string) => `\\RPC Control\\deno-lpc-views-${what}-${Deno.pid}-${Date.now()}`;

windowsTest(
  "a 1 MiB client view: the server (another thread) reads the client's bytes and writes back in place; the view goes with the port",
  LPC_WHY,
  async () => {
    const portName = name("mib");
    await using server = await ServerWorker.start({ portName, handlerModule: HANDLER });
    const client = LpcClient.connect(portName, { view: { size: 1 << 20 } });
    const view = client.view!;
    assertStrictEquals(view.size, 1 << 20);
    assert(view.remoteBase !== null && view.remoteBase !== 0n);
    const payload = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    view.write(700_000, payload);
    const ask = new Uint8Array(8);
    new DataView(ask.buffer).setUint32(0, 700_000, true);
    new DataView(ask.buffer).setUint32(4, payload.byteLength, true);
    const reply = new DataView(client.request(ask).data.buffer);
    assertStrictEquals(reply.getUint32(0, true), payload.reduce((a, b) => a + b, 0));
    assertStrictEquals(reply.getUint32(4, true), 1 << 20, "the server's view has the same size");
    assertEquals([...view.read(700_000, 3)], [0xff, 0xf8, 0xf1], "written back by the server");
    client.close();
    assert(!view.mapped);
    const accept = server.events.find((e) => e.event === "accept");
    assertStrictEquals(accept?.note, "client view of 1048576 bytes");
  },
);

windowsTest(
  "a view larger than its section fails the connect with STATUS_INSUFFICIENT_RESOURCES (AlpcpMapLegacyPortView.c)",
  LPC_WHY,
  async () => {
    const portName = name("big");
    await using _server = await ServerWorker.start({ portName, handlerModule: HANDLER });
    using section = Section.create(0x2000);
    const e = assertThrows(
      () => LpcClient.connect(portName, { view: { size: 0x3000, section } }),
      NtError,
    );
    assert(e.is("STATUS_INSUFFICIENT_RESOURCES"), e.message);
  },
);
