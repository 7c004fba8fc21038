/**
 * Experiment 2 over ALPC against the fake kernel (tests/fake_kernel_alpc.ts): an ALPC connection
 * port is the client's exception port (NtSetInformationProcess.c takes any port object). What
 * arrives there, and with which attributes and context: the control requests on the client's
 * connection (its PortContext, the context attribute), `LPC_EXCEPTION` on the connection port
 * itself (PortContext 0: no connection), replied with the verdict; `LPC_CLIENT_DIED` through the
 * exception port and through a termination port registered on the ALPC client port; and
 * `LPC_PORT_CLOSED` (ClientId 0.0) recognised by the connection's PortContext. The same handler
 * and analysis as over LPC.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import { createHandler } from "../../experiments/exp2/exp2_handler.ts";
import {
  analyzeTimeline,
  answerQuestion2,
  raiseRequest,
} from "../../experiments/exp2/exp2_analysis.ts";
import type { Exp2Document } from "../../experiments/exp2/exp2.ts";
import {
  answerQuestions,
  checkMarkdownDiagrams,
  type LabReport,
  observations,
  type Outcome,
  toMarkdown,
  validateLabReport,
} from "../../experiments/lab/lab_report.ts";
import { REPO_ROOT } from "../_helpers.ts";
import { fromAlpcEvent } from "../../experiments/exp2/exp2_transport.ts";
import { AlpcClient } from "../../ffi/alpc/client.ts";
import { createAlpcPort } from "../../ffi/alpc/port.ts";
import { AlpcServer } from "../../ffi/alpc/server.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 700, tid: 701 };
const PORT = "\\RPC Control\\exp2-alpc";
/** Where tests/fake_kernel.ts raises its exceptions from. */
const FAKE_EXCEPTION_ADDRESS = 0x7ff600001000n;

const text = (s: string) => new TextEncoder().encode(s);
const wine: LabReport = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/lab_wine_report.json`),
);

function lab() {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort(PORT, { maxMessageLength: 512, nt: k.symbols }));
  const server = new AlpcServer(port, createHandler({ system: false, reply: "continue" }), {
    nt: k.symbols,
    now: () => 0,
  });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(CLIENT, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  const ask = (s: string) =>
    new TextDecoder().decode(k.as(CLIENT, () => client.request(text(s))).data);
  return { k, port, server, client, ask };
}

/** The run: connect, control requests, the exception port set, an exception, a kill. */
function scenario() {
  const { k, port, server, client, ask } = lab();
  assertStrictEquals(ask("HELLO"), "WELCOME");
  assertStrictEquals(ask("READY?"), "WAIT", "not yet the exception port");
  assertStrictEquals(k.as(SERVER, () => k.setExceptionPort(CLIENT.pid, port.unsafeValue)), 0);
  assertStrictEquals(
    ask(raiseRequest({ code: 0xe0000001, address: FAKE_EXCEPTION_ADDRESS })),
    "OK",
  );
  // A termination port on the client's ALPC port (NtRegisterThreadTerminatePort.c: any port).
  k.as(CLIENT, () => client.registerThreadTerminatePort());
  assertStrictEquals(
    k.raiseException({ pid: CLIENT.pid, tid: 705 }, 0xe0000001, [0x1234n, 700n]),
    NTSTATUS.DBG_CONTINUE,
    "the ALPC reply with the verdict let the faulting thread go on",
  );
  k.killProcess(CLIENT.pid, [705, CLIENT.tid]);
  while (k.as(SERVER, () => server.step(0)));
  k.as(SERVER, () => server[Symbol.dispose]());
  assertStrictEquals(k.openHandles(SERVER.pid), 0);
  return { server, events: server.events.map(fromAlpcEvent) };
}

Deno.test("exp2 over ALPC: the exception arrives on the ALPC connection port, is answered, and the deaths and the close follow", () => {
  const { server, events } = scenario();

  // The control requests: on the client's connection, told apart by its PortContext.
  const accept = events.find((e) => e.event === "accept")!;
  const requests = events.filter((e) => e.event === "LPC_REQUEST");
  assert(requests.length >= 3);
  for (const q of requests) {
    assertEquals([q.context, q.pid], [accept.context, CLIENT.pid]);
    assertStrictEquals(q.tid, CLIENT.tid);
  }
  // Each came with the context attribute the PortContext was read from.
  const raw = server.events.filter((e) => e.event === "LPC_REQUEST");
  assert(raw.every((e) => e.attributes?.includes("CONTEXT")), JSON.stringify(raw));
  // LPC_EXCEPTION: on the connection port itself (PortContext 0), from the faulting thread.
  const exc = events.find((e) => e.event === "LPC_EXCEPTION")!;
  assertEquals([exc.pid, exc.tid, exc.context], [CLIENT.pid, 705, "0x0"]);
  // The typed fields of the ALPC server's event (ffi/server_events.ts), as the LPC server's.
  assertEquals(exc.exception, {
    apiNumber: 0,
    returnedStatus: "STATUS_PENDING (0x00000103)",
    code: "0xE0000001",
    address: "0x7ff600001000",
    parameters: ["0x1234", "0x2bc"],
    firstChance: false,
    verdict: "DBG_CONTINUE (0x00010002)",
  });

  const a = analyzeTimeline(events, CLIENT.pid);
  assertStrictEquals(a.connectionRequests, 1);
  assertEquals(a.exceptions.map((x) => [x.tid, x.ours, x.firstChance]), [[705, true, false]]);
  assertMatch(a.exceptions[0]!.verdict, /^DBG_CONTINUE/);
  const vias = new Set(a.deaths.map((d) => d.via));
  assert(
    a.deaths.every((d) => d.createTime !== undefined),
    "each death's CreateTime, a typed field",
  );
  assert(vias.has("exception port"), JSON.stringify(a.deaths));
  assert(vias.has("termination port"), JSON.stringify(a.deaths));
  assert(a.portClosed, "LPC_PORT_CLOSED on the client's connection");
  assertStrictEquals(a.portClosed.context, accept.context);
  assertEquals(a.portClosed.clientId, { pid: 0, tid: 0 }, "AlpcpSendCloseMessage.c zeroes it");
});

Deno.test("the report of exp2 over ALPC: its diagram, and what each message arrived with", () => {
  const { events } = scenario();
  const analysis = analyzeTimeline(events, CLIENT.pid);
  const doc: Exp2Document = {
    schema: "deno-lpc/exp2@2",
    ran: true,
    transport: "alpc",
    runs: {
      alpc: {
        transport: "alpc",
        server: { pid: SERVER.pid, tid: SERVER.tid, port: PORT, events },
        client: { pid: CLIENT.pid, steps: [], exitCode: 1, exitCodeHex: "0x1", terminatedBy: "x" },
        analysis,
        answer: answerQuestion2(analysis),
      },
    },
  };
  const experiments = { ...wine.experiments, exp2: { status: "ran", result: doc } as Outcome };
  const r = { ...wine, experiments, answers: answerQuestions(experiments, wine.transports) };
  assertEquals(validateLabReport(r), []);
  const rows = new Map(observations(r).exp2);
  assertStrictEquals(rows.get("transport (the exception port's kind)"), "ALPC");
  assertMatch(rows.get("LPC_REQUEST arrived with")!, /^PortContext 0x1, attributes .*CONTEXT/);
  assertMatch(rows.get("LPC_EXCEPTION arrived with")!, /^PortContext 0x0, attributes /);
  assertMatch(
    rows.get("LPC_EXCEPTION (first chance?)")!,
    /0xE0000001 \(second chance\) -> DBG_CONTINUE/,
  );
  const md = toMarkdown(r);
  assertMatch(md, /### Over ALPC\n\n```mermaid\n[^`]*C->>K: NtAlpcConnectPort/);
  assertEquals(checkMarkdownDiagrams(md).problems, []);
  assert(r.answers.q2.observed, "Q2 answered from the ALPC run's messages");
  assert(
    r.answers.q3.evidence.some((e) =>
      e.startsWith("exp2 (ALPC): the exception port was itself an ALPC connection port")
    ),
  );
});

Deno.test("fromAlpcEvent(): the typed fields pass as they are, a note is never read back", () => {
  const base = { t: 1, at: 2, pid: 7, tid: 8, context: "0x0" };
  const exception = {
    apiNumber: 0,
    returnedStatus: "STATUS_PENDING (0x00000103)",
    code: "STATUS_BREAKPOINT (0x80000003)",
    address: "0x7ffa00001000",
    parameters: [],
    firstChance: true,
    verdict: "DBG_EXCEPTION_NOT_HANDLED (0x80010001)",
  };
  const exc = { ...base, event: "LPC_EXCEPTION", sequence: 3, attributes: ["CONTEXT"], exception };
  assertEquals(fromAlpcEvent(exc), exc, "the ALPC-only fields kept");
  const died = { ...base, event: "LPC_CLIENT_DIED", createTime: "2026-12-02T18:00:00.123Z" };
  assertEquals(fromAlpcEvent(died), died);
  // Issue 13: no parsing of a note's text. A note that reads like an exception stays a note.
  const noted = {
    ...base,
    event: "LPC_EXCEPTION",
    note: "STATUS_BREAKPOINT (0x80000003) at 0x7FFA00001000, first chance: x",
  };
  assertStrictEquals(fromAlpcEvent(noted).exception, undefined);
  const diedNote = { ...base, event: "LPC_CLIENT_DIED", note: "CreateTime 2026-12-02T18:00:00Z" };
  assertStrictEquals(fromAlpcEvent(diedNote).createTime, undefined);
});
