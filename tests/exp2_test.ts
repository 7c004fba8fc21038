/** Experiment 2's server logic and analysis against the scripted fake kernel (runs everywhere). */

import assert from "node:assert/strict";
import { controlReply, createHandler } from "../experiments/exp2_handler.ts";
import { analyzeTimeline, answerQuestion2 } from "../experiments/exp2_analysis.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../ffi/lpc.ts";
import { encodePortMessage, LpcMessageType } from "../ffi/port_message.ts";
import { NTSTATUS } from "../ffi/status.ts";
import { FakeKernel, type Identity } from "./fake_kernel.ts";

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 700, tid: 701 };
const PORT = "\\RPC Control\\exp2";

function lab(
  reply: "continue" | "not-handled" = "continue",
  hooks: { onException?: () => void } = {},
) {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort(PORT, { maxMessageLength: 512 }, k.symbols));
  const base = createHandler({ system: false, reply });
  const server = new LpcServer(port, {
    ...base,
    exception: (m) => {
      hooks.onException?.();
      return base.exception!(m);
    },
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(CLIENT, () => LpcClient.connect(PORT, { nt: k.symbols }));
  const portHandle = port.unsafeValue;
  assert.equal(k.as(SERVER, () => k.setExceptionPort(CLIENT.pid, portHandle)), 0);
  const drain = () => {
    while (k.as(SERVER, () => server.step(0)));
  };
  return { k, server, client, portHandle, drain };
}

Deno.test("the control protocol: GO only once the exception port is set; anything else refused", () => {
  assert.equal(controlReply("HELLO", 1, () => false), "WELCOME");
  assert.equal(controlReply("READY?", 1, () => false), "WAIT");
  assert.equal(controlReply("READY?", 1, () => true), "GO");
  assert.equal(controlReply("DONE", 1, () => true), "BYE");
  assert.equal(controlReply("rm -rf", 1, () => true), "ERR unknown command");
  assert.equal(controlReply("\u0000\u0001", 1, () => true), "ERR malformed");
  assert.equal(controlReply("x".repeat(65), 1, () => true), "ERR malformed");
});

Deno.test("LPC_EXCEPTION is decoded and replied with the chosen verdict in ReturnedStatus", () => {
  for (
    const [reply, verdict] of [["continue", NTSTATUS.DBG_CONTINUE], [
      "not-handled",
      NTSTATUS.DBG_EXCEPTION_NOT_HANDLED,
    ]] as const
  ) {
    const { k, server } = lab(reply);
    const thread = { pid: CLIENT.pid, tid: 777 };
    // KiDispatchException.c / DbgkForwardException.c: DBG_CONTINUE is handled (the raise
    // returns); DBG_EXCEPTION_NOT_HANDLED goes on to WER, which the fake does not have, and the
    // process ends with the exception code.
    assert.equal(
      k.raiseException(thread, 0xe0000001, [0x1234n, 700n]),
      verdict === NTSTATUS.DBG_CONTINUE ? verdict : "dead",
    );
    const e = server.events.find((x) => x.event === "LPC_EXCEPTION")!;
    assert.equal(e.tid, 777);
    assert.equal(e.context, "0x0", "kernel messages to the connection port carry no PortContext");
    assert.equal(e.rawType, LpcMessageType.LPC_EXCEPTION);
    assert.equal(e.totalLength, 0xd0);
    assert.deepEqual(e.exception, {
      apiNumber: 0,
      returnedStatus: "STATUS_PENDING (0x00000103)",
      code: "0xE0000001",
      address: "0x7ff600001000",
      parameters: ["0x1234", "0x2bc"],
      firstChance: false,
      verdict: reply === "continue"
        ? "DBG_CONTINUE (0x00010002)"
        : "DBG_EXCEPTION_NOT_HANDLED (0x80010001)",
    });
  }
});

Deno.test("the exception port always gets 0xA8/0xD0 bytes (DbgkForwardException.c; 0x110 goes to the WER port only)", () => {
  const { k, server } = lab();
  assert.equal(
    k.raiseException({ pid: CLIENT.pid, tid: 778 }, 0xe0000001, []),
    NTSTATUS.DBG_CONTINUE,
  );
  const e = server.events.find((e) => e.event === "LPC_EXCEPTION")!;
  assert.deepEqual([e.dataLength, e.totalLength], [0xa8, 0xd0]);
});

Deno.test("a client killed while its exception message is pending: the reply fails, the server goes on", () => {
  const holder: { k?: FakeKernel } = {};
  const { k, server, drain } = lab("continue", {
    onException: () => holder.k!.killProcess(CLIENT.pid, [CLIENT.tid, 702]),
  });
  holder.k = k;
  assert.equal(k.raiseException({ pid: CLIENT.pid, tid: 702 }, 0xe0000002), "dead");
  drain();
  const kinds = server.events.map((e) => e.event);
  assert.ok(kinds.includes("reply-failed"), kinds.join(","));
  assert.equal(kinds.at(-1), "LPC_PORT_CLOSED");
  assert.equal(k.pendingExceptions(), 0);
});

Deno.test("per-thread LPC_CLIENT_DIED: both registrations, unknown threads, then one LPC_PORT_CLOSED", () => {
  const { k, server, client, drain } = lab();
  k.as(CLIENT, () => client.request(new TextEncoder().encode("HELLO")));
  k.as(CLIENT, () => client.registerThreadTerminatePort());
  k.setCreateTime(CLIENT.tid, 134000000000000000n);
  k.killProcess(CLIENT.pid, [CLIENT.tid, 9001, 9002]); // two threads the server never saw
  drain();
  const a = analyzeTimeline(server.events, CLIENT.pid);
  assert.equal(a.connectionRequests, 1);
  assert.deepEqual(a.knownThreads, [CLIENT.tid]);
  assert.deepEqual(a.deaths.map((d) => `${d.tid}:${d.via}`), [
    `${CLIENT.tid}:termination port`,
    `${CLIENT.tid}:exception port`,
    "9001:exception port",
    "9002:exception port",
  ]);
  assert.deepEqual(a.duplicated, [CLIENT.tid]);
  assert.deepEqual(a.unknownThreads, [9001, 9002]);
  assert.equal(
    a.deaths[0]!.createTime,
    new Date(Number((134000000000000000n - 116444736000000000n) / 10000n)).toISOString(),
  );
  assert.equal(a.portClosed?.tid, 9002, "stamped with the last thread");
  assert.equal(a.diedBeforeClosed, true);
  const answer = answerQuestion2(a);
  for (
    const must of [
      "1 connection request",
      "4 LPC_CLIENT_DIED",
      "PspExitThread",
      "exception port",
      "NtRegisterThreadTerminatePort",
      "never seen",
      "LPC_PORT_CLOSED",
    ]
  ) {
    assert.ok(answer.includes(must), `${must}: ${answer}`);
  }
});

Deno.test("flag bits in Type: a request arrives masked (0x2001 & 0xC00F), a sender's 0x4000 stays, dispatch reads Type & 0xFF", () => {
  const { k, server, client, drain } = lab();
  k.as(CLIENT, () => client.request(new TextEncoder().encode("HELLO")));
  // AlpcpSendLegacySynchronousRequest.c stamps 0x2001; AlpcpReceiveLegacyMessage.c masks 0xC00F.
  assert.equal(server.events.find((e) => e.event === "LPC_REQUEST")!.rawType, 0x0001);
  const datagram = encodePortMessage({ data: new Uint8Array([1]) });
  new DataView(datagram.buffer).setUint16(4, 0x4000, true); // LPC_NO_IMPERSONATE, kept
  assert.equal(
    k.as(CLIENT, () => k.symbols.NtRequestPort(client.port.unsafePointer, datagram)),
    0,
  );
  drain();
  const d = server.events.find((e) => e.event === "LPC_DATAGRAM")!;
  assert.equal(d.rawType, 0x4003);
});

Deno.test("type 13 (the old exception port replaced) is logged by name, never replied to, and never stops the server", () => {
  const { k, server, client, drain } = lab();
  const other = k.as(
    SERVER,
    () => createConnectionPort(null, { maxMessageLength: 512 }, k.symbols),
  );
  // NtSetInformationProcess.c case 8: the old port receives type 13 with the pid.
  assert.equal(k.as(SERVER, () => k.setExceptionPort(CLIENT.pid, other.unsafeValue)), 0);
  drain();
  const e = server.events.at(-1)!;
  assert.equal(e.event, "LPC_UNREGISTER_PROCESS");
  assert.equal(e.totalLength, 0x30);
  assert.ok(
    !k.calls.some((c) => c.startsWith("NtReplyWaitReceivePortEx(reply)")),
    "no reply was attempted",
  );
  assert.equal(
    new TextDecoder().decode(
      k.as(CLIENT, () => client.request(new TextEncoder().encode("HELLO"))).data,
    ),
    "WELCOME",
  );
  k.as(SERVER, () => other.close());
});

Deno.test("answerQuestion2() says what is missing instead of inventing it", () => {
  assert.match(answerQuestion2(analyzeTimeline([], 42)), /^Not observed: /);
});
