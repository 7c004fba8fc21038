/**
 * Experiment 2's server logic against the scripted fake kernel, and its reading of the timeline
 * against timelines of the shape the server logs on Windows 11 (runs everywhere).
 */

import { assert, assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import {
  controlReply,
  createHandler,
  exceptionVerdict,
} from "../../experiments/exp2/exp2_handler.ts";
import {
  analyzeTimeline,
  answerQuestion2,
  connectionContexts,
  describeException,
  describeHardError,
  describePortClosed,
  type Exp2Event,
  parseRaiseRequest,
  portClosedOn,
  raiseRequest,
} from "../../experiments/exp2/exp2_analysis.ts";
import {
  type ClientProcess,
  describeEnd,
  describeNotHandled,
  endClient,
  observeNotHandled,
} from "../../experiments/exp2/exp2_lifecycle.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../../ffi/lpc/port.ts";
import { encodePortMessage, LpcMessageType } from "../../ffi/port_message.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";
import { REPO_ROOT } from "../_helpers.ts";

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 700, tid: 701 };
const PORT = "\\RPC Control\\exp2";

function lab(
  reply: "continue" | "not-handled" = "continue",
  hooks: { onException?: () => void } = {},
) {
  const k = new FakeKernel();
  const port = k.as(
    SERVER,
    () => createConnectionPort(PORT, { maxMessageLength: 512, nt: k.symbols }),
  );
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
  assertStrictEquals(k.as(SERVER, () => k.setExceptionPort(CLIENT.pid, portHandle)), 0);
  const drain = () => {
    while (k.as(SERVER, () => server.step(0)));
  };
  return { k, server, client, portHandle, drain };
}

Deno.test("the control protocol: GO only once the exception port is set; anything else refused", () => {
  assertStrictEquals(controlReply("HELLO", 1, () => false), "WELCOME");
  assertStrictEquals(controlReply("READY?", 1, () => false), "WAIT");
  assertStrictEquals(controlReply("READY?", 1, () => true), "GO");
  assertStrictEquals(controlReply("DONE", 1, () => true), "BYE");
  assertStrictEquals(controlReply("rm -rf", 1, () => true), "ERR unknown command");
  assertStrictEquals(controlReply("\u0000\u0001", 1, () => true), "ERR malformed");
  assertStrictEquals(controlReply("x".repeat(65), 1, () => true), "ERR malformed");
  const seen: unknown[] = [];
  const announce = (pid: number, r: unknown) => void seen.push([pid, r]);
  assertStrictEquals(controlReply("RAISE 0xe0000001 0x1f0000", 9, () => true, announce), "OK");
  assertStrictEquals(
    controlReply("RAISE 0xE0000001 1f0000", 9, () => true, announce),
    "ERR malformed",
  );
  assertEquals(seen, [[9, { code: 0xe0000001, address: 0x1f0000n }]]);
});

Deno.test("raiseRequest() and parseRaiseRequest() agree; the announced address is the record's", () => {
  const r = { code: 0xe0000001, address: 0x7ff6deadb000n };
  assertStrictEquals(raiseRequest(r), "RAISE 0xe0000001 0x7ff6deadb000");
  assertEquals(parseRaiseRequest(raiseRequest(r)), r);
  assertStrictEquals(parseRaiseRequest("RAISE 0xe0000001"), null);
});

Deno.test("exceptionVerdict(): the chosen verdict only for the announced code and address; DBG_EXCEPTION_NOT_HANDLED for any other", () => {
  const ours = { code: 0xe0000001, address: 0x1f0000n };
  const C = NTSTATUS.DBG_CONTINUE;
  const N = NTSTATUS.DBG_EXCEPTION_NOT_HANDLED;
  assertEquals(exceptionVerdict(ours, ours, "continue"), { verdict: C, ours: true });
  assertEquals(exceptionVerdict(ours, ours, "not-handled"), { verdict: N, ours: true });
  // A real crash of the client (KiDispatchException.c: "handled" would resume it at its fault).
  assertEquals(exceptionVerdict({ code: 0xc0000005, address: 0x1f0000n }, ours, "continue"), {
    verdict: N,
    ours: false,
  });
  assertEquals(exceptionVerdict({ ...ours, address: 0x1f0001n }, ours, "continue"), {
    verdict: N,
    ours: false,
  });
  assertEquals(exceptionVerdict(ours, undefined, "continue"), { verdict: N, ours: false });
});

const FAKE_EXCEPTION_ADDRESS = 0x7ff600001000n; // where tests/fake_kernel.ts raises from

Deno.test("LPC_EXCEPTION is decoded; the announced one gets the chosen verdict, an unannounced one DBG_EXCEPTION_NOT_HANDLED", () => {
  for (
    const [reply, verdict] of [["continue", NTSTATUS.DBG_CONTINUE], [
      "not-handled",
      NTSTATUS.DBG_EXCEPTION_NOT_HANDLED,
    ]] as const
  ) {
    const { k, server, client } = lab(reply);
    const announce = raiseRequest({ code: 0xe0000001, address: FAKE_EXCEPTION_ADDRESS });
    assertStrictEquals(
      new TextDecoder().decode(
        k.as(CLIENT, () => client.request(new TextEncoder().encode(announce))).data,
      ),
      "OK",
    );
    const thread = { pid: CLIENT.pid, tid: 777 };
    // KiDispatchException.c / DbgkForwardException.c: DBG_CONTINUE is handled (the raise
    // returns); DBG_EXCEPTION_NOT_HANDLED goes on to WER, which the fake does not have, and the
    // process ends with the exception code.
    assertStrictEquals(
      k.raiseException(thread, 0xe0000001, [0x1234n, 700n]),
      verdict === NTSTATUS.DBG_CONTINUE ? verdict : "dead",
    );
    const e = server.events.find((x) => x.event === "LPC_EXCEPTION")!;
    assertStrictEquals(e.tid, 777);
    assertStrictEquals(
      e.context,
      "0x0",
      "kernel messages to the connection port carry no PortContext",
    );
    assertStrictEquals(e.rawType, LpcMessageType.LPC_EXCEPTION);
    assertStrictEquals(
      e.totalLength,
      0xd0,
      "DbgkForwardException.c: always 0xD0 on the exception port",
    );
    assertEquals(e.exception, {
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
    if (reply === "continue") {
      // The same exception again is not the lab's (the announcement was consumed): it gets
      // DBG_EXCEPTION_NOT_HANDLED, and with no WER in the fake the process ends.
      assertStrictEquals(k.raiseException({ pid: CLIENT.pid, tid: 778 }, 0xe0000001), "dead");
      const last = server.events.filter((x) => x.event === "LPC_EXCEPTION").at(-1)!;
      assertStrictEquals(last.exception!.verdict, "DBG_EXCEPTION_NOT_HANDLED (0x80010001)");
    }
    const a = analyzeTimeline(server.events, CLIENT.pid);
    assertEquals(
      a.exceptions.map((x) => x.ours),
      reply === "continue" ? [true, false] : [true],
    );
    assertMatch(describeException(a.exceptions[0]!), /the lab's own exception/);
    if (reply === "continue") {
      assertMatch(describeException(a.exceptions[1]!), /not the lab's exception/);
    }
  }
});

Deno.test("the exception port always gets 0xA8/0xD0 bytes (DbgkForwardException.c; 0x110 goes to the WER port only)", () => {
  const { k, server, client } = lab();
  k.as(CLIENT, () =>
    client.request(
      new TextEncoder().encode(
        raiseRequest({ code: 0xe0000001, address: FAKE_EXCEPTION_ADDRESS }),
      ),
    ));
  assertStrictEquals(
    k.raiseException({ pid: CLIENT.pid, tid: 778 }, 0xe0000001, []),
    NTSTATUS.DBG_CONTINUE,
  );
  const e = server.events.find((e) => e.event === "LPC_EXCEPTION")!;
  assertEquals([e.dataLength, e.totalLength], [0xa8, 0xd0]);
});

Deno.test("a client killed while its exception message is pending: the reply fails, the server goes on", () => {
  const holder: { k?: FakeKernel } = {};
  const { k, server, drain } = lab("continue", {
    onException: () => holder.k!.killProcess(CLIENT.pid, [CLIENT.tid, 702]),
  });
  holder.k = k;
  assertStrictEquals(k.raiseException({ pid: CLIENT.pid, tid: 702 }, 0xe0000002), "dead");
  drain();
  const kinds = server.events.map((e) => e.event);
  assert(kinds.includes("reply-failed"), kinds.join(","));
  assertStrictEquals(kinds.at(-1), "LPC_PORT_CLOSED");
  assertStrictEquals(k.pendingExceptions(), 0);
});

// A timeline of the shape the LPC server logs on Windows 11 (built from the kernel's code, see
// the fixture's note): two clients, the second one's connection closing too.
const fixture: { serverCreateTime: string; events: Exp2Event[] } = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/exp2_timeline_w11_shape.json`),
);
const TIMELINE = fixture.events;
const SERVER_CREATED = fixture.serverCreateTime;
const ev = (t: number, event: string, extra: Partial<Exp2Event> = {}): Exp2Event => ({
  t,
  at: 1_800_000_000_000 + t,
  event,
  ...extra,
});
const from = (pid: number, tid: number, context: string) => ({ pid, tid, context });

Deno.test("LPC_PORT_CLOSED with ClientId {0, 0} is the client's through the PortContext of its connection, never by pid", () => {
  const contexts = connectionContexts(TIMELINE, 700);
  assertEquals([...contexts], ["0x1"]);
  assertStrictEquals(portClosedOn(TIMELINE, contexts)?.t, 9, "not the other client's (0x2)");
  // What exp2 and exp3 waited for before: a PORT_CLOSED stamped with the client's pid. Never comes.
  assertStrictEquals(TIMELINE.some((e) => e.event === "LPC_PORT_CLOSED" && e.pid === 700), false);
  const a = analyzeTimeline(TIMELINE, 700);
  assertEquals(a.portClosed, {
    t: 9,
    context: "0x1",
    clientId: { pid: 0, tid: 0 },
    closerCreateTime: SERVER_CREATED,
  });
  assertStrictEquals(a.diedBeforeClosed, true);
  assertMatch(
    describePortClosed(a),
    /PortContext 0x1 .*ClientId 0\.0.*process current at deletion/,
  );
  const other = analyzeTimeline(TIMELINE, 800);
  assertStrictEquals(other.portClosed?.context, "0x2");
  assertStrictEquals(other.deaths.length, 0);
  // Its CreateTime is not the client's: no death of 700 takes it.
  assert(a.deaths.every((d) => d.createTime !== SERVER_CREATED));
});

Deno.test("per-thread LPC_CLIENT_DIED: both registrations, unknown threads; the answer says what PORT_CLOSED carries", () => {
  const a = analyzeTimeline(TIMELINE, 700);
  assertStrictEquals(a.connectionRequests, 1);
  assertEquals(a.knownThreads, [701, 710]);
  assertEquals(a.deaths.map((d) => `${d.tid}:${d.via}`), [
    "701:termination port",
    "701:exception port",
    "9001:exception port",
    "710:exception port",
  ]);
  assertEquals(a.duplicated, [701]);
  assertEquals(a.unknownThreads, [9001]);
  const answer = answerQuestion2(a);
  for (
    const must of [
      "1 connection request",
      "4 LPC_CLIENT_DIED",
      "PspExitThread",
      "exception port",
      "NtRegisterThreadTerminatePort",
      "never seen",
      "ClientId 0.0: the kernel zeroes it",
      "PortContext 0x1",
      "not the client's",
      "1 hard error",
    ]
  ) {
    assert(answer.includes(must), `${must}: ${answer}`);
  }
  assert(!/LPC_PORT_CLOSED \(thread/.test(answer), "no thread is attributed to it");
});

Deno.test("LPC_ERROR_EVENT (type 9, a hard error) is one line of the timeline and counted", () => {
  const a = analyzeTimeline(TIMELINE, 700);
  assertEquals(a.hardErrors, [{
    tid: 701,
    status: "STATUS_DLL_NOT_FOUND (0xC0000135)",
    parameters: ["0x2a0000"],
    response: "ResponseReturnToCaller",
    t: 6,
  }]);
  assertStrictEquals(
    describeHardError(a.hardErrors[0]!),
    "LPC_ERROR_EVENT (hard error) from thread 701: STATUS_DLL_NOT_FOUND (0xC0000135), 1 parameter [0x2a0000], replied Response ResponseReturnToCaller",
  );
  assertStrictEquals(analyzeTimeline(TIMELINE, 800).hardErrors.length, 0);
});

Deno.test("the exception verdict in the timeline: the announced one is the lab's, others are named as not", () => {
  const crash: Exp2Event = ev(5.5, "LPC_EXCEPTION", {
    ...from(700, 711, "0x0"),
    exception: {
      apiNumber: 0,
      returnedStatus: "STATUS_PENDING (0x00000103)",
      code: "STATUS_ACCESS_VIOLATION (0xC0000005)",
      address: "0x1f0000",
      parameters: [],
      firstChance: false,
      verdict: "DBG_EXCEPTION_NOT_HANDLED (0x80010001)",
    },
  });
  const a = analyzeTimeline([...TIMELINE, crash], 700);
  assertEquals(a.exceptions.map((x) => [x.tid, x.ours]), [[710, true], [711, false]]);
  assertMatch(
    describeException(a.exceptions[1]!),
    /STATUS_ACCESS_VIOLATION .* replied DBG_EXCEPTION_NOT_HANDLED .*not the lab's exception/,
  );
});

/** A scripted client process: alive or exited; a terminate that may lose a race with its exit. */
function fakeChild(state: { alive: boolean; exitCode?: number; failTerminate?: boolean }) {
  const calls: string[] = [];
  const child: ClientProcess = {
    wait: (ms) => {
      calls.push(`wait ${ms}`);
      return !state.alive;
    },
    waitAsync: (ms) => {
      calls.push(`waitAsync ${ms}`);
      return Promise.resolve(!state.alive);
    },
    exitCode: () => (state.alive ? undefined : state.exitCode),
    terminate: (code) => {
      calls.push(`terminate 0x${code.toString(16)}`);
      if (state.failTerminate) {
        state.alive = false; // it exited in between; NtTerminateProcess then fails
        throw new Error("NtTerminateProcess failed: STATUS_PROCESS_IS_TERMINATING");
      }
      state.alive = false;
      state.exitCode = code;
    },
  };
  return { child, calls };
}

Deno.test("endClient(): a live client is terminated; a dead one is reported, not terminated again, not an error", () => {
  const live = fakeChild({ alive: true });
  assertEquals(endClient(live.child, 0xdead), {
    by: "server",
    exitCode: 0xdead,
    requested: 0xdead,
  });
  assert(live.calls.includes("terminate 0xdead"));
  const dead = fakeChild({ alive: false, exitCode: 0xe0000001 });
  const end = endClient(dead.child, 0xdead);
  assertEquals(end, { by: "itself", exitCode: 0xe0000001 });
  assert(!dead.calls.some((c) => c.startsWith("terminate")), dead.calls.join(","));
  assertMatch(
    describeEnd(end),
    /already exited by itself \(exit code 0xE0000001\); it was not terminated again/,
  );
  // It dies between the check and the terminate: the failure is the race, not an error.
  const racing = fakeChild({ alive: true, exitCode: 0, failTerminate: true });
  assertEquals(endClient(racing.child, 0xdead), { by: "itself", exitCode: 0 });
});

Deno.test("--reply not-handled records what happened: the exit code, or still running at the timeout (WER decides)", async () => {
  let clock = 0;
  const now = () => (clock += 1500);
  const died = fakeChild({ alive: false, exitCode: 0xe0000001 });
  const a = await observeNotHandled(died.child, 30_000, now);
  assertEquals(a, { outcome: "exited", exitCode: 0xe0000001, afterMs: 1500 });
  assertMatch(describeNotHandled(a), /exited 1500 ms later with exit code 0xE0000001/);
  const lives = fakeChild({ alive: true });
  const b = await observeNotHandled(lives.child, 30_000, now);
  assertEquals(b, { outcome: "still running", waitedMs: 1500 });
  assert(lives.calls.includes("waitAsync 30000"));
  assertMatch(describeNotHandled(b), /still running .*WER answered that it was handled/);
});

Deno.test("flag bits in Type: a request arrives masked (0x2001 & 0xC00F), a sender's 0x4000 stays, dispatch reads Type & 0xFF", () => {
  const { k, server, client, drain } = lab();
  k.as(CLIENT, () => client.request(new TextEncoder().encode("HELLO")));
  // AlpcpSendLegacySynchronousRequest.c stamps 0x2001; AlpcpReceiveLegacyMessage.c masks 0xC00F.
  assertStrictEquals(server.events.find((e) => e.event === "LPC_REQUEST")!.rawType, 0x0001);
  const datagram = encodePortMessage({ data: new Uint8Array([1]) });
  new DataView(datagram.buffer).setUint16(4, 0x4000, true); // LPC_NO_IMPERSONATE, kept
  assertStrictEquals(
    k.as(CLIENT, () => k.symbols.NtRequestPort(client.port.unsafePointer, datagram)),
    0,
  );
  drain();
  const d = server.events.find((e) => e.event === "LPC_DATAGRAM")!;
  assertStrictEquals(d.rawType, 0x4003);
});

Deno.test("type 13 (the old exception port replaced) is logged by name, never replied to, and never stops the server", () => {
  const { k, server, client, drain } = lab();
  const other = k.as(
    SERVER,
    () => createConnectionPort(null, { maxMessageLength: 512, nt: k.symbols }),
  );
  // NtSetInformationProcess.c case 8: the old port receives type 13 with the pid.
  assertStrictEquals(k.as(SERVER, () => k.setExceptionPort(CLIENT.pid, other.unsafeValue)), 0);
  drain();
  const e = server.events.at(-1)!;
  assertStrictEquals(e.event, "LPC_UNREGISTER_PROCESS");
  assertStrictEquals(e.totalLength, 0x30);
  assert(
    !k.calls.some((c) => c.startsWith("NtReplyWaitReceivePortEx(reply)")),
    "no reply was attempted",
  );
  assertStrictEquals(
    new TextDecoder().decode(
      k.as(CLIENT, () => client.request(new TextEncoder().encode("HELLO"))).data,
    ),
    "WELCOME",
  );
  k.as(SERVER, () => other.close());
});

Deno.test("answerQuestion2() says what is missing instead of inventing it", () => {
  assertMatch(answerQuestion2(analyzeTimeline([], 42)), /^Not observed: /);
});
