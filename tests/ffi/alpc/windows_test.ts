/**
 * The ALPC library against the real kernel (Windows only; ignored elsewhere with the probe's
 * reason), and the server Worker's failure path, which runs everywhere.
 */

import { assert, assertEquals, assertRejects, assertStrictEquals, assertThrows } from "@std/assert";
import { AlpcClient } from "../../../ffi/alpc/client.ts";
import { AlpcPortFlags } from "../../../ffi/alpc/constants.ts";
import { createAlpcPort, queryAlpcBasicInformation } from "../../../ffi/alpc/port.ts";
import { AlpcServerWorker } from "../../../ffi/alpc/server_worker.ts";
import { createConnectionPort } from "../../../ffi/lpc/port.ts";
import { alpcUnavailable, lpcUnavailable } from "../../../ffi/nt/capabilities.ts";
import { Token } from "../../../ffi/nt/tokens.ts";
import { NtError } from "../../../ffi/status.ts";
import { ON_WINDOWS_BUILD, windowsTest } from "../../_helpers.ts";

const ALPC_WHY = ON_WINDOWS_BUILD ? alpcUnavailable() : "needs Windows (Wine 8.0 has no ALPC)";
const LPC_AND_ALPC_WHY = ON_WINDOWS_BUILD ? (lpcUnavailable() ?? alpcUnavailable()) : ALPC_WHY;
const HANDLER = new URL("./_echo_handler.ts", import.meta.url);
const name = (what: string) => `\\RPC Control\\deno-lpc-alpc-${what}-${Deno.pid}-${Date.now()}`;

Deno.test({
  name: "AlpcServerWorker.start rejects with the server thread's error where ALPC cannot run",
  ignore: ALPC_WHY === null,
  fn: async () => {
    const e = await assertRejects(() =>
      AlpcServerWorker.start({
        portName: name("no"),
        handlerModule: HANDLER,
        readyTimeoutMs: 10_000,
      })
    );
    assert(e instanceof Error && /Windows|NtAlpcCreatePort/.test(e.message), String(e));
  },
});

windowsTest(
  "a connection port shows ALLOW_LPC_REQUESTS in its basic information, ALPC (0x20000 | its flags) and legacy alike",
  LPC_AND_ALPC_WHY,
  () => {
    // AlpcpValidateAndSetPortAttributes.c sets 0x20000 on every connection port; the query masks
    // the flags with 0x3FF0000 (AlpcpPortQueryBasicInfo.c).
    using alpc = createAlpcPort(null, { flags: AlpcPortFlags.ALLOW_IMPERSONATION });
    assertEquals(queryAlpcBasicInformation(alpc).flagNames, [
      "ALLOW_IMPERSONATION",
      "ALLOW_LPC_REQUESTS",
    ]);
    using legacy = createConnectionPort(null);
    assertStrictEquals(queryAlpcBasicInformation(legacy).flags, AlpcPortFlags.ALLOW_LPC_REQUESTS);
  },
);

windowsTest(
  "a real round trip: connect, request and reply, a 64 KiB view read by the server, impersonation, disconnect",
  ALPC_WHY,
  async () => {
    const portName = name("echo");
    await using server = await AlpcServerWorker.start({
      portName,
      handlerModule: HANDLER,
      portAttributes: { maxSectionSize: 0x20000, maxViewSize: 0x20000 },
    });
    {
      using client = AlpcClient.connect(portName);
      const reply = client.request(new TextEncoder().encode("ping"));
      assertStrictEquals(new TextDecoder().decode(reply.data), "ping");
      using view = client.createView(0x10000);
      view.write(new TextEncoder().encode("from the view..."));
      const viewed = client.request(new Uint8Array(0), { view });
      assertStrictEquals(new TextDecoder().decode(viewed.data), "from the view...");
      using me = Token.open();
      const who = client.request(new TextEncoder().encode("whoami"), { security: "message" });
      assertStrictEquals(new TextDecoder().decode(who.data), me.user());
      client.disconnect();
    }
    const events = server.events.map((e) => e.event);
    for (const e of ["accept", "LPC_REQUEST", "reply", "view-released"]) {
      assert(events.includes(e), `${e} in ${events.join(" ")}`);
    }
    assertEquals(server.events.filter((e) => e.event === "error"), []);
  },
);

windowsTest(
  "requiredServerSid: the kernel refuses a server whose token has another SID, and accepts ours",
  ALPC_WHY,
  async () => {
    const portName = name("sid");
    await using _server = await AlpcServerWorker.start({ portName, handlerModule: HANDLER });
    using me = Token.open();
    const other = me.user() === "S-1-5-18" ? "S-1-5-19" : "S-1-5-18";
    const e = assertThrows(
      () => AlpcClient.connect(portName, { requiredServerSid: other }),
      NtError,
    );
    assertStrictEquals(e.symbol, "STATUS_SERVER_SID_MISMATCH");
    using client = AlpcClient.connect(portName, { requiredServerSid: me.user() });
    assertStrictEquals(client.port.kind, "port");
  },
);
