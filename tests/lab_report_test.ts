/**
 * The lab report, generated from recorded result documents: the Wine lab run
 * (tests/fixtures/lab_wine_report.json: ports and exp3 ran, exp1 and exp2 skipped) and an exp2
 * document produced by a fake-kernel run.
 */

import assert from "node:assert/strict";
import {
  answerQuestions,
  checkMarkdownDiagrams,
  diagrams,
  EXPERIMENTS,
  type LabReport,
  observations,
  type Outcome,
  toHtml,
  toMarkdown,
  validateLabReport,
} from "../experiments/lab_report.ts";
import { checkMermaid, toMermaid, toSvg } from "../experiments/lab_diagram.ts";
import { outcomeOf } from "../experiments/lab.ts";
import {
  analyzeTimeline,
  answerQuestion2,
  type Exp2Event,
  raiseRequest,
} from "../experiments/exp2_analysis.ts";
import type { Exp2Document } from "../experiments/exp2.ts";
import { createHandler } from "../experiments/exp2_handler.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../ffi/lpc.ts";
import { FakeKernel } from "./fake_kernel.ts";
import { REPO_ROOT } from "./_helpers.ts";

const wine: LabReport = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/lab_wine_report.json`),
);

function rebuild(experiments: LabReport["experiments"]): LabReport {
  return { ...wine, experiments, answers: answerQuestions(experiments) };
}

/** An exp2 document from a fake-kernel run: connect, exception, termination port, death. */
function fakeExp2(): Exp2Document {
  const k = new FakeKernel();
  const S = { pid: 4, tid: 40 };
  const C = { pid: 700, tid: 701 };
  const port = k.as(S, () => createConnectionPort("\\RPC Control\\x", {}, k.symbols));
  const server = new LpcServer(port, createHandler({ system: false, reply: "continue" }), {
    nt: k.symbols,
    now: () => 0,
  });
  k.actor(S, () => server.step(0));
  const client = k.as(C, () => LpcClient.connect("\\RPC Control\\x", { nt: k.symbols }));
  k.as(C, () => client.request(new TextEncoder().encode("HELLO")));
  // The lab's exception is announced first (tests/fake_kernel.ts raises from 0x7ff600001000).
  k.as(C, () =>
    client.request(
      new TextEncoder().encode(raiseRequest({ code: 0xe0000001, address: 0x7ff600001000n })),
    ));
  k.as(C, () => client.registerThreadTerminatePort());
  k.as(S, () => k.setExceptionPort(C.pid, port.unsafeValue));
  k.raiseException({ pid: C.pid, tid: 705 }, 0xe0000001);
  k.killProcess(C.pid, [705, C.tid, 706]);
  while (k.as(S, () => server.step(0)));
  const analysis = analyzeTimeline(server.events, C.pid);
  return {
    schema: "deno-lpc/exp2@1",
    ran: true,
    server: { pid: S.pid, tid: S.tid, port: "\\RPC Control\\x", events: server.events },
    client: {
      pid: C.pid,
      steps: [],
      exitCode: 0xdead,
      exitCodeHex: "0xDEAD",
      terminatedBy: "the server",
    },
    analysis,
    answer: answerQuestion2(analysis),
  };
}

Deno.test("the recorded Wine report is valid against deno-lpc/lab@1, and the validator catches breakage", () => {
  assert.deepEqual(validateLabReport(wine), []);
  assert.deepEqual(validateLabReport(rebuild(wine.experiments)), []);
  const broken = structuredClone(wine) as unknown as {
    answers: Record<string, unknown>;
    experiments: Record<string, Outcome>;
    environment: Record<string, unknown>;
  };
  delete broken.answers.q3;
  broken.experiments.exp1!.status = "maybe" as Outcome["status"];
  broken.environment.deno = 2;
  const problems = validateLabReport(broken);
  assert.ok(problems.some((p) => p.startsWith("answers.q3")), problems.join("; "));
  assert.ok(problems.some((p) => p.startsWith("experiments.exp1.status")));
  assert.ok(problems.some((p) => p.startsWith("environment.deno")));
  assert.ok(
    validateLabReport({
      ...wine,
      experiments: { ...wine.experiments, exp2: { status: "skipped" } },
    }).some((p) => p.includes("reason required")),
  );
});

Deno.test("the Wine report: ports and exp3 have a Mermaid diagram that parses; the skipped ones have none", () => {
  const md = toMarkdown(rebuild(wine.experiments));
  const { blocks, problems } = checkMarkdownDiagrams(md);
  assert.deepEqual(problems, []);
  assert.equal(blocks, 2);
  assert.deepEqual(Object.keys(diagrams(wine)).sort(), ["exp3", "ports"]);
  assert.match(
    md,
    /## Experiment 1[^\n]*\n\n_Not observed here: skipped \(exp1: not supported here: NtCreatePort/,
  );
});

Deno.test("the Wine report: all three answers present; missing evidence stated, never invented", () => {
  const a = answerQuestions(wine.experiments);
  for (const q of [a.q1, a.q2, a.q3]) assert.ok(q.answer.length > 100 && q.question.endsWith("?"));
  // Q1: the walk ran, but there were no ports to see.
  assert.equal(a.q1.observed, false);
  assert.ok(a.q1.evidence.some((e) => /listed 117 objects/.test(e)));
  assert.match(a.q1.missing[0]!, /no port object exists on this system/);
  // Q2: exp2 was skipped, so the answer is the reference, marked, with the reason.
  assert.equal(a.q2.observed, false);
  assert.match(a.q2.answer, /^Not observed here\. Reference: /);
  assert.deepEqual(a.q2.evidence, []);
  assert.match(a.q2.missing[0]!, /^exp2 did not run here \(skipped: .*STATUS_NOT_IMPLEMENTED/);
  // Q3: only exp3's evidence is cited; exp1's and exp2's is listed as missing.
  assert.equal(a.q3.observed, true);
  assert.ok(a.q3.evidence.every((e) => e.startsWith("exp3:")), a.q3.evidence.join(" | "));
  assert.ok(
    a.q3.evidence.some((e) =>
      /froze the whole client: [\d.]+ ms of silence for a 2000 ms hold/.test(e)
    ),
  );
  assert.equal(a.q3.missing.length, 2);
  const md = toMarkdown(rebuild(wine.experiments));
  assert.match(md, /### Q2\. [^\n]*\n\n\*\*Not observed here\.\*\* Reference: /);
});

Deno.test("with a (fake-kernel) exp2 that ran: its diagram parses and Q2 is answered from its messages", () => {
  const exp2 = fakeExp2();
  const experiments = { ...wine.experiments, exp2: { status: "ran", result: exp2 } as Outcome };
  const report = rebuild(experiments);
  assert.deepEqual(validateLabReport(report), []);
  const { blocks, problems } = checkMarkdownDiagrams(toMarkdown(report));
  assert.deepEqual(problems, []);
  assert.equal(blocks, 3);
  const q2 = report.answers.q2;
  assert.equal(q2.observed, true);
  assert.match(q2.answer, /1 connection request from pid 700/);
  assert.match(q2.answer, /4 LPC_CLIENT_DIED messages/);
  assert.ok(q2.evidence.some((e) => /via termination port/.test(e)));
  assert.ok(
    report.answers.q3.evidence.some((e) =>
      e.startsWith("exp2: the exception arrived as an LPC request")
    ),
  );
  const diagram = toMermaid(diagrams(report).exp2!);
  assert.match(diagram, /K-->>S: LPC_EXCEPTION tid 705/);
  assert.match(diagram, /LPC_PORT_CLOSED/);
});

Deno.test("exp2 on a Windows 11-shaped timeline: PORT_CLOSED by PortContext with ClientId 0.0, the hard error counted, the verdicts named", async () => {
  const timeline: { events: Exp2Event[] } = JSON.parse(
    await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/exp2_timeline_w11_shape.json`),
  );
  const analysis = analyzeTimeline(timeline.events, 700);
  const doc: Exp2Document = {
    schema: "deno-lpc/exp2@1",
    ran: true,
    server: { pid: 4, tid: 40, port: "\\RPC Control\\x", events: timeline.events },
    client: { pid: 700, steps: [], exitCode: 0xdead, exitCodeHex: "0xDEAD", terminatedBy: "x" },
    analysis,
    answer: answerQuestion2(analysis),
  };
  const experiments = { ...wine.experiments, exp2: { status: "ran", result: doc } as Outcome };
  const report = rebuild(experiments);
  assert.deepEqual(validateLabReport(report), []);
  const q2 = report.answers.q2;
  assert.match(q2.answer, /ClientId 0\.0: the kernel zeroes it/);
  assert.match(q2.answer, /PortContext 0x1, the context it gave that connection at accept/);
  assert.ok(q2.evidence.includes("LPC_PORT_CLOSED on PortContext 0x1 with ClientId 0.0"));
  const rows = new Map(observations(report).exp2);
  assert.equal(rows.get("LPC_ERROR_EVENT (hard errors)"), "1");
  assert.match(rows.get("LPC_EXCEPTION (first chance?)")!, /DBG_CONTINUE .*\(the lab's own\)/);
  assert.match(rows.get("LPC_PORT_CLOSED")!, /^on PortContext 0x1, ClientId 0\.0/);
  const { problems } = checkMarkdownDiagrams(toMarkdown(report));
  assert.deepEqual(problems, []);
  const diagram = toMermaid(diagrams(report).exp2!);
  assert.match(diagram, /LPC_ERROR_EVENT tid 701/);
  assert.match(diagram, /LPC_PORT_CLOSED on PortContext 0x1/);
});

Deno.test("checkMermaid() rejects what Mermaid would reject", () => {
  assert.deepEqual(checkMermaid("sequenceDiagram\n  participant A as a\n  A->>A: ok"), []);
  assert.ok(checkMermaid("graph TD\n  A-->B").length > 0);
  assert.ok(checkMermaid("sequenceDiagram\n  A->>B: who?").some((p) => p.includes("undeclared")));
  assert.ok(
    checkMermaid("sequenceDiagram\n  participant A\n  A->>A: a; b").some((p) => p.includes("';'")),
  );
  assert.ok(
    checkMermaid("sequenceDiagram\n  participant A\n  A=>A: x").some((p) =>
      p.includes("not understood")
    ),
  );
  assert.ok(
    checkMermaid("sequenceDiagram\n  participant A\n  Note over A: #1").some((p) =>
      p.includes("'#'")
    ),
  );
});

Deno.test("report.html is self-contained: inline SVG diagrams, no script, no external resource", () => {
  const html = toHtml(rebuild(wine.experiments));
  assert.ok(!/<script/i.test(html));
  assert.ok(!/\b(?:src|href)=/i.test(html), "no external references");
  assert.equal((html.match(/<svg /g) ?? []).length, 2);
  assert.equal((html.match(/<svg /g) ?? []).length, (html.match(/<\/svg>/g) ?? []).length);
  assert.ok(
    !/<text[^>]*>[^<]*[<>&][^<]*<\/text>/.test(
      toSvg(diagrams(wine).exp3!).replace(/&(amp|lt|gt|quot);/g, ""),
    ),
    "text is escaped",
  );
});

Deno.test("outcomeOf(): exit 0 with a document ran; exit 3 skipped with the reason; anything else failed", () => {
  assert.equal(outcomeOf(0, '{"schema":"x","ran":true}', "", 1).status, "ran");
  const skipped = outcomeOf(3, '{"schema":"x","ran":false,"reason":"no LPC"}', "line", 1);
  assert.deepEqual([skipped.status, skipped.reason], ["skipped", "no LPC"]);
  assert.deepEqual(
    [outcomeOf(3, "", "list_ports: not supported here: needs Windows\n", 1).reason],
    ["list_ports: not supported here: needs Windows"],
  );
  assert.equal(outcomeOf(1, "", "boom\n", 1).status, "failed");
  assert.equal(outcomeOf(0, "not json", "", 1).status, "failed");
  for (const k of EXPERIMENTS) assert.ok(k in wine.experiments);
});

Deno.test("an interrupted experiment (Ctrl-C) is valid with its reason, and report.md and report.html show it", () => {
  const experiments = {
    ...wine.experiments,
    exp3: { status: "interrupted", reason: "Ctrl-C after 3.9 s; its processes were ended" },
  } as LabReport["experiments"];
  const r = rebuild(experiments);
  assert.deepEqual(validateLabReport(r), []);
  assert.ok(
    validateLabReport(rebuild({ ...experiments, exp3: { status: "interrupted" } })).some((p) =>
      p === "experiments.exp3.reason required when interrupted"
    ),
  );
  assert.match(
    toMarkdown(r),
    /\| exp3 \| interrupted \| Ctrl-C after 3\.9 s; its processes were ended \|/,
  );
  assert.match(toHtml(r), /<td>exp3<\/td><td>interrupted<\/td><td>Ctrl-C after 3\.9 s/);
  assert.match(r.answers.q3.missing.join(" "), /interrupted/, "Q3 says exp3's evidence is missing");
});
