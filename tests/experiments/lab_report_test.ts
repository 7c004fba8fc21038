/**
 * The lab report, generated from recorded result documents: the Wine lab run
 * (tests/fixtures/lab_wine_report.json: ports and exp3 ran, exp1 and exp2 skipped) and an exp2
 * document produced by a fake-kernel run.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import {
  answerQuestions,
  checkMarkdownDiagrams,
  diagrams,
  EXPERIMENTS,
  type LabReport,
  observations,
  type Outcome,
  reasonOf,
  reportHeader,
  toHtml,
  toMarkdown,
  validateLabReport,
} from "../../experiments/lab/lab_report.ts";
import {
  checkMermaid,
  type Diagram,
  mermaidText,
  messageRoom,
  SVG_LAYOUT,
  svgColumns,
  toMermaid,
  toSvg,
  wrapText,
} from "../../experiments/lab/lab_diagram.ts";
import type { Exp3Document, Exp3Run } from "../../experiments/exp3/exp3.ts";
import { outcomeOf } from "../../experiments/lab/lab.ts";
import {
  analyzeTimeline,
  answerQuestion2,
  type Exp2Event,
  raiseRequest,
} from "../../experiments/exp2/exp2_analysis.ts";
import type { Exp2Document, Exp2Run } from "../../experiments/exp2/exp2.ts";
import type { Transport } from "../../experiments/_transport.ts";
import { createHandler } from "../../experiments/exp2/exp2_handler.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../../ffi/lpc/port.ts";
import { FakeKernel } from "../fake_kernel.ts";
import { REPO_ROOT } from "../_helpers.ts";

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
  const port = k.as(S, () => createConnectionPort("\\RPC Control\\x", { nt: k.symbols }));
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
  return exp2Of({
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
  });
}

/** An exp2 document with one run over `transport` (LPC by default). */
function exp2Of(run: Omit<Exp2Run, "transport">, transport: Transport = "lpc"): Exp2Document {
  return {
    schema: "deno-lpc/exp2@2",
    ran: true,
    transport,
    runs: { [transport]: { ...run, transport } },
  };
}

Deno.test("the recorded Wine report is valid against deno-lpc/lab@2, and the validator catches breakage", () => {
  assertEquals(validateLabReport(wine), []);
  assertEquals(validateLabReport(rebuild(wine.experiments)), []);
  const broken = structuredClone(wine) as unknown as {
    answers: Record<string, unknown>;
    experiments: Record<string, Outcome>;
    environment: Record<string, unknown>;
  };
  delete broken.answers.q3;
  broken.experiments.exp1!.status = "maybe" as Outcome["status"];
  broken.environment.deno = 2;
  const problems = validateLabReport(broken);
  assert(problems.some((p) => p.startsWith("answers.q3")), problems.join("; "));
  assert(problems.some((p) => p.startsWith("experiments.exp1.status")));
  assert(problems.some((p) => p.startsWith("environment.deno")));
  assert(
    validateLabReport({
      ...wine,
      experiments: { ...wine.experiments, exp2: { status: "skipped" } },
    }).some((p) => p.includes("reason required")),
  );
});

Deno.test("the Wine report: ports and exp3 have a Mermaid diagram that parses; the skipped ones have none", () => {
  const md = toMarkdown(rebuild(wine.experiments));
  const { blocks, problems } = checkMarkdownDiagrams(md);
  assertEquals(problems, []);
  assertStrictEquals(blocks, 2);
  assertEquals(Object.keys(diagrams(wine)).sort(), ["exp3", "ports"]);
  assertMatch(
    md,
    /## Experiment 1[^\n]*\n\n_Not observed here: exp1 skipped \(why: in the table at the top\)\._/,
  );
  assertMatch(
    md,
    /\n\| exp1 \| skipped \| NtCreatePort \\RPC Control\\deno-lpc-exp1-\S+ failed: /,
  );
});

Deno.test("the Wine report: all three answers present; missing evidence stated, never invented", () => {
  const a = answerQuestions(wine.experiments);
  for (const q of [a.q1, a.q2, a.q3]) assert(q.answer.length > 100 && q.question.endsWith("?"));
  // Q1: the walk ran, but there were no ports to see.
  assertStrictEquals(a.q1.observed, false);
  assert(a.q1.evidence.some((e) => /listed 117 objects/.test(e)));
  assertMatch(a.q1.missing[0]!, /no port object exists on this system/);
  // Q2: exp2 was skipped, so the answer is the reference, marked, with the reason.
  assertStrictEquals(a.q2.observed, false);
  assertMatch(a.q2.answer, /^Not observed here\. Reference: /);
  assertEquals(a.q2.evidence, []);
  assertEquals(a.q2.missing, ["exp2 did not run here (skipped)"]);
  // Q3: only exp3's evidence (over LPC) is cited; exp1's and exp2's is listed as missing, and
  // so is the comparison of LPC and ALPC.
  assertStrictEquals(a.q3.observed, true);
  assert(a.q3.evidence.every((e) => e.startsWith("exp3 (LPC):")), a.q3.evidence.join(" | "));
  assert(
    a.q3.evidence.some((e) =>
      /froze the whole client: [\d.]+ ms of silence for a 2000 ms hold/.test(e)
    ),
  );
  assertStrictEquals(a.q3.missing.length, 3);
  assertMatch(a.q3.missing[2]!, /^LPC and ALPC side by side: not both observed/);
  const md = toMarkdown(rebuild(wine.experiments));
  assertMatch(md, /### Q2\. [^\n]*\n\n\*\*Not observed here\.\*\* Reference: /);
});

Deno.test("with a (fake-kernel) exp2 that ran: its diagram parses and Q2 is answered from its messages", () => {
  const exp2 = fakeExp2();
  const experiments = { ...wine.experiments, exp2: { status: "ran", result: exp2 } as Outcome };
  const report = rebuild(experiments);
  assertEquals(validateLabReport(report), []);
  const { blocks, problems } = checkMarkdownDiagrams(toMarkdown(report));
  assertEquals(problems, []);
  assertStrictEquals(blocks, 3);
  const q2 = report.answers.q2;
  assertStrictEquals(q2.observed, true);
  assertMatch(q2.answer, /1 connection request from pid 700/);
  assertMatch(q2.answer, /4 LPC_CLIENT_DIED messages/);
  assert(q2.evidence.some((e) => /via termination port/.test(e)));
  assert(
    report.answers.q3.evidence.some((e) =>
      e.startsWith("exp2 (LPC): the exception arrived as an LPC request")
    ),
  );
  const diagram = toMermaid(diagrams(report).exp2!);
  assertMatch(diagram, /K-->>S: LPC_EXCEPTION tid 705/);
  assertMatch(diagram, /LPC_PORT_CLOSED/);
});

Deno.test("exp2 on a Windows 11-shaped timeline: PORT_CLOSED by PortContext with ClientId 0.0, the hard error counted, the verdicts named", async () => {
  const timeline: { events: Exp2Event[] } = JSON.parse(
    await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/exp2_timeline_w11_shape.json`),
  );
  const analysis = analyzeTimeline(timeline.events, 700);
  const doc: Exp2Document = exp2Of({
    server: { pid: 4, tid: 40, port: "\\RPC Control\\x", events: timeline.events },
    client: { pid: 700, steps: [], exitCode: 0xdead, exitCodeHex: "0xDEAD", terminatedBy: "x" },
    analysis,
    answer: answerQuestion2(analysis),
  });
  const experiments = { ...wine.experiments, exp2: { status: "ran", result: doc } as Outcome };
  const report = rebuild(experiments);
  assertEquals(validateLabReport(report), []);
  const q2 = report.answers.q2;
  assertMatch(q2.answer, /ClientId 0\.0: the kernel zeroes it/);
  assertMatch(q2.answer, /PortContext 0x1, the context it gave that connection at accept/);
  assert(q2.evidence.includes("LPC_PORT_CLOSED on PortContext 0x1 with ClientId 0.0"));
  const rows = new Map(observations(report).exp2);
  assertStrictEquals(rows.get("LPC_ERROR_EVENT (hard errors)"), "1");
  assertMatch(rows.get("LPC_EXCEPTION (first chance?)")!, /DBG_CONTINUE .*\(the lab's own\)/);
  assertMatch(rows.get("LPC_PORT_CLOSED")!, /^on PortContext 0x1, ClientId 0\.0/);
  const { problems } = checkMarkdownDiagrams(toMarkdown(report));
  assertEquals(problems, []);
  const diagram = toMermaid(diagrams(report).exp2!);
  assertMatch(diagram, /LPC_ERROR_EVENT tid 701/);
  assertMatch(diagram, /LPC_PORT_CLOSED on PortContext 0x1/);
});

Deno.test("checkMermaid() rejects what Mermaid would reject", () => {
  assertEquals(checkMermaid("sequenceDiagram\n  participant A as a\n  A->>A: ok"), []);
  assert(checkMermaid("graph TD\n  A-->B").length > 0);
  assert(checkMermaid("sequenceDiagram\n  A->>B: who?").some((p) => p.includes("undeclared")));
  assert(
    checkMermaid("sequenceDiagram\n  participant A\n  A->>A: a; b").some((p) => p.includes("';'")),
  );
  assert(
    checkMermaid("sequenceDiagram\n  participant A\n  A=>A: x").some((p) =>
      p.includes("not understood")
    ),
  );
  assert(
    checkMermaid("sequenceDiagram\n  participant A\n  Note over A: #1").some((p) =>
      p.includes("'#'")
    ),
  );
});

Deno.test("report.html is self-contained: inline SVG diagrams, no script, no external resource", () => {
  const html = toHtml(rebuild(wine.experiments));
  assert(!/<script/i.test(html));
  assert(!/\b(?:src|href)=/i.test(html), "no external references");
  assertStrictEquals((html.match(/<svg /g) ?? []).length, 2);
  assertStrictEquals((html.match(/<svg /g) ?? []).length, (html.match(/<\/svg>/g) ?? []).length);
  const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
  assertStrictEquals(
    new Set(ids).size,
    ids.length,
    `ids unique in the document: ${ids.join(", ")}`,
  );
  const svg = toSvg(diagrams(wine).exp3!);
  assert(
    !/[<>&]/.test(svg.replace(/<[^>]*>/g, "").replace(/&(amp|lt|gt|quot);/g, "")),
    "escaped",
  );
});

Deno.test("outcomeOf(): exit 0 with a document ran; exit 3 skipped with the reason; anything else failed", () => {
  assertStrictEquals(outcomeOf(0, '{"schema":"x","ran":true}', "", 1).status, "ran");
  const skipped = outcomeOf(3, '{"schema":"x","ran":false,"reason":"no LPC"}', "line", 1);
  assertEquals([skipped.status, skipped.reason], ["skipped", "no LPC"]);
  assertEquals(
    [outcomeOf(3, "", "list_ports: not supported here: needs Windows\n", 1).reason],
    ["list_ports: not supported here: needs Windows"],
  );
  assertStrictEquals(outcomeOf(1, "", "boom\n", 1).status, "failed");
  assertStrictEquals(outcomeOf(0, "not json", "", 1).status, "failed");
  for (const k of EXPERIMENTS) assert(k in wine.experiments);
});

// ---------------------------------------------------------------- right and readable

/** The recorded exp3 run that ended with kill-on-exit (Wine 8.0; see tests/experiments/exp3_test.ts). */
const exp3Kill: Exp3Document = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/exp3_kill_wine.json`),
);

/** Every report the fixtures give: the Wine lab, with exp2 from the fakes, with the kill run. */
function variants(): [string, LabReport][] {
  const w11: { events: Exp2Event[] } = JSON.parse(
    Deno.readTextFileSync(`${REPO_ROOT}tests/fixtures/exp2_timeline_w11_shape.json`),
  );
  const w11Analysis = analyzeTimeline(w11.events, 700);
  const w11Doc: Exp2Document = exp2Of({
    server: { pid: 4, tid: 40, port: "\\RPC Control\\x", events: w11.events },
    client: { pid: 700, steps: [], exitCode: 0xdead, exitCodeHex: "0xDEAD", terminatedBy: "x" },
    analysis: w11Analysis,
    answer: answerQuestion2(w11Analysis),
  });
  return [
    ["the Wine lab", rebuild(wine.experiments)],
    ["exp2 from the fake kernel", rebuild({ ...wine.experiments, exp2: ran(fakeExp2()) })],
    ["exp2 on the Windows 11 shape", rebuild({ ...wine.experiments, exp2: ran(w11Doc) })],
    ["exp3 ended by kill-on-exit", rebuild({ ...wine.experiments, exp3: ran(exp3Kill) })],
  ];
}
const ran = (result: unknown): Outcome => ({ status: "ran", result });

const unescape = (s: string) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");

/** A report's text as a reader gets it: its prose units (paragraphs, list items, table cells) and its diagram labels. */
function readable(doc: string, kind: "md" | "html"): { units: string[]; labels: string[] } {
  if (kind === "md") {
    const labels = [...doc.matchAll(/```mermaid\n([\s\S]*?)```/g)].flatMap((m) =>
      m[1]!.split("\n").map((l) => /^\s+(?:participant \w+ as |[^:]+: )(.*)$/.exec(l)?.[1])
        .filter((l): l is string => l !== undefined).map((l) => l.replace(/<br\/>/g, " "))
    );
    const units = doc.replace(/```mermaid[\s\S]*?```/g, "").split("\n").flatMap((l) =>
      l.startsWith("|") ? l.split(/(?<!\\)\|/) : [l]
    ).map((l) => l.replace(/^[-#]+ |\*\*|^_|_$/g, "").replace(/\\\|/g, "|").trim());
    return { units: units.filter((u) => u !== "" && !/^-+$/.test(u)), labels };
  }
  const labels = [...doc.matchAll(/<text[^>]*>([\s\S]*?)<\/text>/g)].map((m) =>
    unescape([...m[1]!.matchAll(/<tspan[^>]*>([^<]*)<\/tspan>/g)].map((t) => t[1]).join(" "))
  );
  const units = doc.replace(/<svg[\s\S]*?<\/svg>/g, "").replace(/<style>[\s\S]*?<\/style>/, "")
    .replace(/<\/?(?:p|li|td|th|h\d|tr|ul|table|title|body|head)\b[^>]*>/g, "\n")
    .replace(/<[^>]*>/g, "").split("\n").map((u) => unescape(u).trim());
  return { units: units.filter((u) => u !== ""), labels };
}

const sentences = (unit: string) => unit.split(/(?<=[.!?])\s+(?=[A-Z*_])/);

/** What a reader would find said twice: a hex twice in one sentence, a sentence twice, a clause of 30+ characters twice. */
function repetitions(t: { units: string[]; labels: string[] }): string[] {
  const problems: string[] = [];
  for (const s of [...t.units.flatMap(sentences), ...t.labels]) {
    const hex = [...s.matchAll(/0x[0-9A-F]{3,}/gi)].map((m) => m[0].toUpperCase());
    if (new Set(hex).size < hex.length) problems.push(`a hex twice in: ${s}`);
  }
  const seen = new Map<string, number>();
  for (const s of t.units.flatMap(sentences)) {
    for (const c of new Set([s, ...s.split(/[:;,]\s|\s\(|\)/)].map((c) => c.trim()))) {
      if (c.length >= 30) seen.set(c, (seen.get(c) ?? 0) + 1);
    }
  }
  for (const [c, n] of seen) if (n > 1) problems.push(`${n} times: ${c}`);
  return problems;
}

Deno.test("the report says each thing once: no hex twice in a sentence, no sentence or clause twice (md and html, every fixture)", () => {
  for (const [name, r] of variants()) {
    assertEquals(repetitions(readable(toMarkdown(r), "md")), [], `${name}, report.md`);
    assertEquals(repetitions(readable(toHtml(r), "html")), [], `${name}, report.html`);
  }
  // The scanner finds what the issue saw.
  assertEquals(
    repetitions({
      units: ["Ended with exit code 0xC0000354 (STATUS_DEBUGGER_INACTIVE is 0xC0000354)."],
      labels: [],
    }),
    ["a hex twice in: Ended with exit code 0xC0000354 (STATUS_DEBUGGER_INACTIVE is 0xC0000354)."],
  );
  assertStrictEquals(
    repetitions({
      units: [
        "exp2 skipped: there is no LPC anywhere on this system.",
        "Why: there is no LPC anywhere on this system.",
      ],
      labels: [],
    }).length,
    1,
  );
});

Deno.test("a skip reason is given once per experiment: in the status table, and referred to elsewhere", () => {
  for (const [name, r] of variants()) {
    const e = r.experiments;
    const reasons = EXPERIMENTS.filter((k) => e[k].status !== "ran").map((k) => reasonOf(e[k]));
    const x3 = (e.exp3.result as Exp3Document).runs!.lpc!.serverHalf;
    if (typeof x3 === "object") reasons.push(x3.skipped);
    assert(reasons.length >= 1, name);
    for (const [kind, text] of [["md", toMarkdown(r)], ["html", unescape(toHtml(r))]] as const) {
      const t = readable(text, kind);
      const all = [...t.units, ...t.labels].join("\n");
      for (const reason of new Set(reasons)) {
        assertStrictEquals(all.split(reason).length - 1, 1, `${name}, ${kind}: "${reason}"`);
      }
      assert(!all.includes("not supported here"), `${name}, ${kind}: the script's prefix`);
    }
  }
  // Under Wine exp3's LPC half was skipped for exp2's reason, and says so.
  assertEquals(
    new Map(observations(wine).exp3).get("LPC half"),
    "skipped, for the same reason as exp2",
  );
  // The ports' skipped attribution keeps its failure; the hint the table gave is not repeated.
  assertStrictEquals(
    new Map(observations(wine).ports).get("ports attributed to a server"),
    "skipped: NtCreatePort (probe for the port type index) failed: STATUS_NOT_IMPLEMENTED (0xC0000002)",
  );
});

Deno.test("report.md and report.html show the same header, from reportHeader(), elevation included", () => {
  for (const elevated of [true, false, null]) {
    for (const wineVersion of ["8.0", null]) {
      const r = {
        ...rebuild(wine.experiments),
        environment: { ...wine.environment, elevated, wine: wineVersion },
      };
      const head = reportHeader(r);
      const md = toMarkdown(r).split("\n");
      assertEquals([md[0], md[2]], [`# ${head.title}`, head.line]);
      const html = /<h1>(.*?)<\/h1><p>(.*?)<\/p>/.exec(toHtml(r))!;
      assertEquals([unescape(html[1]!), unescape(html[2]!)], [head.title, head.line]);
      assertStrictEquals(head.line.includes(", elevated"), elevated === true, head.line);
      assertStrictEquals(head.line.includes(", not elevated"), elevated === false, head.line);
      assertStrictEquals(head.line.includes("under Wine 8.0"), wineVersion !== null, head.line);
    }
  }
  assertStrictEquals(
    reportHeader(wine).line,
    "Generated 2026-11-25T03:28:39.063Z on windows (6.1.7601), Deno 2.9.6, under Wine 8.0, elevated.",
  );
});

Deno.test("exp3's diagram counts the recorded events: the attach burst, each injected thread's own, nothing invented", () => {
  for (
    const [name, whole] of [["lab", wine.experiments.exp3.result as Exp3Document], [
      "kill",
      exp3Kill,
    ]] as const
  ) {
    const doc: Exp3Run = whole.runs!.lpc!;
    const events = doc.debugger!.events;
    const r = rebuild({ ...wine.experiments, exp3: ran(whole) });
    const mermaid = toMermaid(diagrams(r).exp3!).split("\n");
    // Kernel-to-debugger arrows: the burst's count of what existed, then one arrow per event.
    const toDebugger = mermaid.filter((l) => l.startsWith("  K-->>D: ")).map((l) =>
      l.slice("  K-->>D: ".length).replace(/<br\/>/g, " ")
    );
    let drawn = 0;
    const perTid = new Map<number, string[]>();
    for (const label of toDebugger) {
      const one = /^([A-Z_]+)(?: STATUS_\w+ \(0x[0-9A-F]+\))? tid (\d+)/.exec(label);
      if (one) {
        drawn++;
        perTid.set(Number(one[2]), [...(perTid.get(Number(one[2])) ?? []), one[1]!]);
      } else {
        for (const [, n] of label.matchAll(/\b(\d+) [A-Z][A-Z_]+[A-Z]\b/g)) drawn += Number(n);
      }
    }
    assertStrictEquals(drawn, events.length, `${name}: every event drawn or counted once`);
    for (const t of doc.debugger!.injectedThreads) {
      assertEquals(
        perTid.get(t.tid),
        events.filter((e) => e.tid === t.tid).map((e) => e.kind),
        `${name}: thread ${t.tid} (${t.how})`,
      );
    }
    // 5 threads already ran; the 6th CREATE_THREAD before the first breakpoint is the break-in's.
    assertMatch(toDebugger[0]!, /^1 CREATE_PROCESS, 5 CREATE_THREAD and 25 LOAD_DLL: /, name);
    assert(!mermaid.join("\n").includes("8 CREATE_THREAD"), name);
  }
});

Deno.test("report.html shows every diagram label whole: wrapped to its room, never cut", () => {
  for (const [name, r] of variants()) {
    const html = toHtml(r);
    assert(!/…|\.\.\./.test(html.replace(/<style>[\s\S]*?<\/style>/, "")), name);
    const svgs = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    const ds = Object.values(diagrams(r)) as Diagram[];
    assertStrictEquals(svgs.length, ds.length, name);
    ds.forEach((d, i) => {
      const shown = readable(svgs[i]!, "html").labels;
      const expected = [
        ...d.participants.map((p) => p.label),
        ...d.steps.map((s) => ("note" in s ? s.note : s.label)),
      ];
      // Lines break at spaces, or inside a word longer than a line: compare without whitespace.
      const bare = (l: string) => l.replace(/\s+/g, "");
      assertEquals(shown.map(bare), expected.map(bare), `${name}: ${d.title}`);
    });
    // And report.md's Mermaid: every label whole too (wrapped with <br/>).
    assert(!toMarkdown(r).includes("…"), name);
  }
});

Deno.test("wrapText() and the SVG layout: lines fit their room, words longer than a line are split, nothing lost", () => {
  const text =
    "attribution skipped: NtCreatePort \\RPC\\Control\\a-very-long-name-without-any-space-in-it failed";
  for (const width of [10, 28, 60]) {
    const lines = wrapText(text, width);
    assert(lines.every((l) => l.length <= width), `${width}: ${lines.join(" | ")}`);
    assertStrictEquals(lines.join("").replace(/\s/g, ""), text.replace(/\s/g, ""));
  }
  assertEquals(wrapText("a b c", 3), ["a b", "c"]);
  const long = "x".repeat(40) + " " + "word ".repeat(60);
  const d: Diagram = {
    title: "t",
    participants: [{ id: "A", label: `a participant whose label is long: ${long}` }, {
      id: "B",
      label: "b",
    }],
    steps: [
      { from: "A", to: "B", label: long, kind: "call" },
      { note: long, over: ["B"] },
    ],
  };
  const lines = [...toSvg(d).matchAll(/<text[^>]*>([\s\S]*?)<\/text>/g)].map((m) =>
    [...m[1]!.matchAll(/<tspan[^>]*>([^<]*)<\/tspan>/g)].map((t) => t[1]!)
  );
  const room = [
    svgColumns(SVG_LAYOUT.box - 10),
    svgColumns(SVG_LAYOUT.box - 10),
    svgColumns(messageRoom(SVG_LAYOUT.lane)),
    svgColumns(SVG_LAYOUT.box),
  ];
  lines.forEach((ls, i) => {
    assert(ls.every((l) => l.length <= room[i]!), `text ${i}: ${ls.join(" | ")}`);
  });
  assert(lines[2]!.length > 5, "the long label is wrapped, not cut");
  // Mermaid: whole, safe, wrapped.
  const m = mermaidText(`${long}; #1 <x>`);
  assert(!/[;#<>]/.test(m.replace(/<br\/>/g, "")));
  assertStrictEquals(
    m.replace(/<br\/>/g, " ").replace(/\s+/g, " ").trim(),
    `${long} 1 ‹x›`.replace(/\s+/g, " ").trim(),
  );
});

Deno.test("an interrupted experiment (Ctrl-C) is valid with its reason, and report.md and report.html show it", () => {
  const experiments = {
    ...wine.experiments,
    exp3: { status: "interrupted", reason: "Ctrl-C after 3.9 s; its processes were ended" },
  } as LabReport["experiments"];
  const r = rebuild(experiments);
  assertEquals(validateLabReport(r), []);
  assert(
    validateLabReport(rebuild({ ...experiments, exp3: { status: "interrupted" } })).some((p) =>
      p === "experiments.exp3.reason required when interrupted"
    ),
  );
  assertMatch(
    toMarkdown(r),
    /\| exp3 \| interrupted \| Ctrl-C after 3\.9 s; its processes were ended \|/,
  );
  assertMatch(toHtml(r), /<td>exp3<\/td><td>interrupted<\/td><td>Ctrl-C after 3\.9 s/);
  assertMatch(r.answers.q3.missing.join(" "), /interrupted/, "Q3 says exp3's evidence is missing");
});

Deno.test("the ports part shows the lab's graph (Mermaid in report.md, its source in report.html), or why there is none", async () => {
  // The recorded Wine run predates --graph: the report says it was not asked for.
  const md0 = toMarkdown(rebuild(wine.experiments));
  assertMatch(
    md0,
    /### Who talks to whom \(the lab's ports\)\n\n_the graph was not asked for \(list_ports --graph\)_/,
  );
  const withGraph = JSON.parse(
    await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/ports_graph_fake.json`),
  );
  const report = rebuild({
    ...wine.experiments,
    ports: { status: "ran", result: withGraph, seconds: 1 },
  });
  assertEquals(validateLabReport(report), []);
  const md = toMarkdown(report);
  const { blocks, problems } = checkMarkdownDiagrams(md);
  assertEquals(problems, []);
  assertStrictEquals(blocks, 3, "two sequence diagrams and the flowchart");
  const flow = /```mermaid\n(flowchart LR\n[\s\S]*?)```/.exec(md)![1]!;
  // Only the lab's port and its neighbours: not csrss's port, not the odd one.
  assertMatch(flow, /n0\(\["\\RPC Control\\deno-lpc-exp1-1a2b"\]\)/);
  assert(!/ApiPort|say #34;hi/.test(flow), flow);
  assertMatch(flow, /p2100 -\.->\|"thread 2104 waits"\| n0/);
  const html = toHtml(report);
  assertMatch(html, /<pre class="mermaid">flowchart LR\n/);
  assert(html.includes("deno-lpc-exp1-1a2b"));
  // A graph that was not built says why.
  const skipped = rebuild({
    ...wine.experiments,
    ports: {
      status: "ran",
      result: { ...withGraph, graph: { skipped: "NtCreatePort failed: STATUS_NOT_IMPLEMENTED" } },
      seconds: 1,
    },
  });
  assertMatch(
    toMarkdown(skipped),
    /_the graph was not built: NtCreatePort failed: STATUS_NOT_IMPLEMENTED_/,
  );
});
