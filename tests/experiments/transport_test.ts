/**
 * `--transport` (experiments/_transport.ts) and the lab report's two transports side by side:
 * the runs a choice makes, the check that ends a run where ALPC is missing, and the report from
 * recorded documents (the Wine lab: ALPC not observed, and why) and from fake-kernel runs.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import {
  assertTransports,
  runsOf,
  runTransports,
  TRANSPORT_OPTION,
  transportsOf,
} from "../../experiments/_transport.ts";
import {
  answerQuestions,
  checkMarkdownDiagrams,
  type LabReport,
  type Outcome,
  sideBySide,
  toHtml,
  toMarkdown,
  validateLabReport,
} from "../../experiments/lab/lab_report.ts";
import type { Exp1Document } from "../../experiments/exp1/exp1.ts";
import { UnsupportedError } from "../../ffi/status.ts";
import { ON_LINUX, REPO_ROOT } from "../_helpers.ts";
import { fakeAlpcExp1Run, fakeLpcExp1Run } from "./_exp1_fake.ts";

const wine: LabReport = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/lab_wine_report.json`),
);
const ALPC_WHY = "this ntdll lacks ntdll!NtAlpcCreatePort (Wine 8.0 has no ALPC)";

Deno.test("transportsOf(): lpc, alpc, or both in that order; lpc is the default", () => {
  assertEquals(transportsOf("lpc"), ["lpc"]);
  assertEquals(transportsOf("alpc"), ["alpc"]);
  assertEquals(transportsOf("both"), ["lpc", "alpc"]);
  assertStrictEquals(TRANSPORT_OPTION.default, "lpc");
  assertEquals([...TRANSPORT_OPTION.choices], ["lpc", "alpc", "both"]);
});

Deno.test("runTransports(): one run per transport, one after the other; a failure ends it", async () => {
  const order: string[] = [];
  const doc = await runTransports("both", async (t) => {
    order.push(`start ${t}`);
    await Promise.resolve();
    order.push(`end ${t}`);
    return { t };
  });
  assertEquals(order, ["start lpc", "end lpc", "start alpc", "end alpc"]);
  assertEquals(doc, { transport: "both", runs: { lpc: { t: "lpc" }, alpc: { t: "alpc" } } });
  assertEquals(runsOf(doc).map(([t]) => t), ["lpc", "alpc"]);
  const only = await runTransports("alpc", (t) => Promise.resolve(t));
  assertEquals(only, { transport: "alpc", runs: { alpc: "alpc" } });
  let second = false;
  await runTransports("both", (t) => {
    if (t === "alpc") second = true;
    return Promise.reject(new Error(`${t} failed`));
  }).then(() => assert(false, "it must fail"), (e) => assertMatch(String(e), /lpc failed/));
  assertStrictEquals(second, false, "the ALPC run is not started after the LPC one failed");
});

Deno.test({
  name: `assertTransports(): off Windows every choice needs Windows${
    ON_LINUX ? "" : " (ignored: Linux only; the Windows paths are in cli_contract_test.ts)"
  }`,
  ignore: !ON_LINUX,
  fn() {
    for (const t of ["lpc", "alpc", "both"] as const) {
      assertThrows(() => assertTransports("exp1", t), UnsupportedError, "exp1 needs Windows x64");
    }
  },
});

/** The Wine report, rebuilt with `exp1` and the transports' reasons. */
function rebuild(exp1: Outcome, transports = wine.transports): LabReport {
  const experiments = { ...wine.experiments, exp1 };
  return { ...wine, experiments, transports, answers: answerQuestions(experiments, transports) };
}

Deno.test("the Wine report: the ALPC column says ALPC was not observed, with the unavailable() reason", () => {
  assertEquals(wine.transports, {
    lpc:
      "ntdll!NtCreatePort returned STATUS_NOT_IMPLEMENTED (0xC0000002) (a Wine stub): real LPC needs Windows",
    alpc: ALPC_WHY,
  });
  const side = sideBySide(wine.experiments, wine.transports);
  assertMatch(side.line, /^LPC was not observed: exp1 did not run here \(skipped\)\./);
  assertMatch(
    side.line,
    new RegExp(`ALPC was not observed: ${ALPC_WHY.replace(/[()!]/g, "\\$&")}`),
  );
  for (const [what, lpc, alpc, mark] of side.rows) {
    assertEquals([lpc, alpc, mark], ["not observed", "not observed", "not compared"], what);
  }
  const md = toMarkdown(rebuild(wine.experiments.exp1));
  assertMatch(
    md,
    /## LPC and ALPC side by side\n\nLPC was not observed: [^\n]*ALPC was not observed: this ntdll lacks ntdll!NtAlpcCreatePort/,
  );
  assertMatch(md, /\| observation \| LPC \| ALPC \| difference \|/);
  assertMatch(toHtml(rebuild(wine.experiments.exp1)), /<h2>LPC and ALPC side by side<\/h2>/);
  const q3 = answerQuestions(wine.experiments, wine.transports).q3;
  assert(q3.missing.some((m) => /^LPC and ALPC side by side: not both observed/.test(m)));
});

Deno.test("exp1 over LPC only (the fake kernel): its column is filled, ALPC's says why not", () => {
  const doc: Exp1Document = {
    schema: "deno-lpc/exp1@2",
    ran: true,
    transport: "lpc",
    runs: { lpc: fakeLpcExp1Run() },
  };
  const r = rebuild({ status: "ran", result: doc });
  assertEquals(validateLabReport(r), []);
  const side = sideBySide(r.experiments, r.transports);
  assertStrictEquals(side.line, `ALPC was not observed: ${ALPC_WHY}.`);
  const rows = new Map(side.rows.map(([what, ...rest]) => [what, rest]));
  assertMatch(
    rows.get("where the server receives")![0]!,
    /^NtReplyWaitReceivePort .*\(seen: 1 request received\)$/,
  );
  assertMatch(rows.get("how it tells clients apart")![0]!, /seen: connection of pid 500 accepted/);
  assertMatch(rows.get("what the kernel stamps")![0]!, /seen: ClientId 500\.501, MessageId \d+/);
  assertEquals(rows.get("where the server receives")!.slice(1), ["not observed", "not compared"]);
  const md = toMarkdown(r);
  assertMatch(md, /### Over LPC\n\n```mermaid\nsequenceDiagram\n/);
  assertMatch(md, /\| transport \| LPC \|/);
  assertEquals(checkMarkdownDiagrams(md).problems, []);
  assert(r.answers.q3.evidence.some((e) => e.startsWith("exp1 (LPC): a per-client connection")));
});

Deno.test("the report's validator: a per-transport result needs its transport and its runs", () => {
  const doc = { schema: "deno-lpc/exp1@2", ran: true, transport: "both", runs: { lpc: {} } };
  const problems = validateLabReport(rebuild({ status: "ran", result: doc }));
  assertEquals(problems, ["experiments.exp1.result.runs.alpc missing"]);
  const bad = validateLabReport(rebuild({ status: "ran", result: { ...doc, transport: "tcp" } }));
  assertEquals(bad, ["experiments.exp1.result.transport must be lpc, alpc or both"]);
  const noTransports = { ...wine } as Partial<LabReport>;
  delete noTransports.transports;
  assertEquals(validateLabReport(noTransports), ["transports missing"]);
  assertEquals(validateLabReport({ ...wine, schema: "deno-lpc/lab@1" }), [
    "schema must be deno-lpc/lab@2",
  ]);
});

Deno.test("exp1 over both transports (the fake kernel): one diagram each, the differences marked, Q3 cites both", () => {
  const doc: Exp1Document = {
    schema: "deno-lpc/exp1@2",
    ran: true,
    transport: "both",
    runs: { lpc: fakeLpcExp1Run(true), alpc: fakeAlpcExp1Run(true) },
  };
  const transports = { lpc: null, alpc: null };
  const r = rebuild({ status: "ran", result: doc }, transports);
  assertEquals(validateLabReport(r), []);
  const side = sideBySide(r.experiments, transports);
  assertStrictEquals(
    side.line,
    "Experiment 1 ran over both transports; the rows are its observations.",
  );
  const rows = new Map(side.rows.map(([what, ...rest]) => [what, rest]));
  const [lpcRecv, alpcRecv, recvMark] = rows.get("where the server receives")!;
  assertMatch(lpcRecv!, /^NtReplyWaitReceivePort /);
  assertMatch(alpcRecv!, /^NtAlpcSendWaitReceivePort /);
  assertStrictEquals(recvMark, "differs");
  assertMatch(
    rows.get("how it tells clients apart")![1]!,
    /context attribute \(ALPC_CONTEXT_ATTR\)/,
  );
  assertStrictEquals(rows.get("what the kernel stamps")![2], "differs");
  assertMatch(
    rows.get("what the kernel stamps")![1]!,
    /seen: ClientId 500\.501, MessageId \d+, attributes CONTEXT/,
  );
  assertMatch(rows.get("what the kernel stamps")![0]!, /seen: ClientId 500\.501, MessageId \d+\)$/);
  // AlpcpValidateAndSetPortAttributes.c sets ALLOW_LPC_REQUESTS on every connection port and
  // AlpcpPortQueryBasicInfo.c masks the flags with 0x3FF0000: both connection ports read 0x20000.
  assertEquals(rows.get("the port's flags (NtAlpcQueryInformation, AlpcBasicInformation)"), [
    "ALLOW_LPC_REQUESTS (seen: Flags 0x20000 on the legacy port)",
    "ALLOW_LPC_REQUESTS (seen: Flags 0x20000 on the ALPC port)",
    "same",
  ]);
  assertMatch(
    rows.get("impersonation (safe mode)")![1]!,
    /^NtAlpcImpersonateClientOfPort.*STATUS_ACCESS_DENIED/,
  );
  const md = toMarkdown(r);
  assertMatch(md, /### Over LPC\n\n```mermaid\n/);
  assertMatch(md, /### Over ALPC\n\n```mermaid\n/);
  assertMatch(md, /reply \(NtAlpcSendWaitReceivePort\): STATUS_ACCESS_DENIED/);
  assertMatch(md, /LPC_CONNECTION_REQUEST from tid 501, accepted with PortContext 0x1/);
  assertMatch(md, /\| where the server receives \| [^|]+ \| [^|]+ \| \*\*differs\*\* \|/);
  assertEquals(checkMarkdownDiagrams(md).problems, []);
  const html = toHtml(r);
  assertStrictEquals(
    (html.match(/<h3>Over (?:LPC|ALPC)<\/h3>/g) ?? []).length,
    3,
    "exp1 twice, exp3 once",
  );
  assertMatch(html, /<td><strong>differs<\/strong><\/td>/);
  const q3 = r.answers.q3;
  assert(q3.evidence.some((e) => e.startsWith("exp1 (LPC): a per-client connection")));
  assert(q3.evidence.some((e) => e.startsWith("exp1 (ALPC): a per-client connection")));
  assert(q3.evidence.some((e) => /^LPC and ALPC: where the server receives: differs; /.test(e)));
  assertMatch(q3.answer, /over both transports; its evidence is listed below\.$/);
  assertMatch(q3.answer, /The same holds for ALPC/);
});

Deno.test("the recorded lab@2 run under Wine (tests/fixtures/lab_wine_transports.json): valid, LPC only, and its report says why ALPC was not observed", async () => {
  const r: LabReport = JSON.parse(
    await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/lab_wine_transports.json`),
  );
  assertEquals(validateLabReport(r), []);
  assertStrictEquals(r.transports.alpc, ALPC_WHY);
  const x3 = r.experiments.exp3.result as { transport: string; runs: Record<string, unknown> };
  assertEquals([x3.transport, Object.keys(x3.runs)], ["lpc", ["lpc"]], "LPC only where no ALPC");
  assertMatch(r.experiments.exp1.reason!, /^exp1: not supported here: NtCreatePort /);
  // The answers it recorded are the ones this code gives for its outcomes.
  assertEquals(answerQuestions(r.experiments, r.transports), r.answers);
  const md = toMarkdown(r);
  assertMatch(
    md,
    /\nLPC was not observed: exp1 did not run here \(skipped\)\. ALPC was not observed: this ntdll lacks ntdll!NtAlpcCreatePort \(Wine 8\.0 has no ALPC\)\.\n/,
  );
  assertEquals(checkMarkdownDiagrams(md).problems, []);
});
