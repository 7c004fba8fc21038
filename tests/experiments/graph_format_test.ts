/**
 * The port graph drawn from a recorded document (tests/fixtures/ports_graph_fake.json, recorded
 * by _record_ports_graph.ts from the fake system of _port_graph_fake.ts: no Windows was at hand), as
 * Mermaid and DOT; the escaping of port names with backslashes, spaces, quotes, `#`, `<`, `|`;
 * the DOT checked by Graphviz itself where it is installed (its SVG must show every name as it
 * is); and the graph cut down to the lab's ports.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import {
  checkFlowchart,
  dotText,
  LAB_PORT,
  labGraph,
  mermaidText,
  restrictGraph,
  toDot,
  toMermaid,
} from "../../experiments/ports/graph_format.ts";
import type { PortsDocument } from "../../experiments/ports/list_ports.ts";
import type { PortGraph } from "../../experiments/ports/port_graph.ts";
import { conditionalTest, hasCommand, REPO_ROOT, run } from "../_helpers.ts";

const DOC: PortsDocument = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/ports_graph_fake.json`),
);
const GRAPH = DOC.graph as PortGraph;
const ODD = '\\RPC Control\\say "hi" #1 <b>|x|</b>';

/** Mermaid's entity codes back to characters (`#34;` → `"`). */
const unMermaid = (s: string) => s.replace(/#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));

Deno.test("the recorded document is a ports@2 document with a graph", () => {
  assertStrictEquals(DOC.schema, "deno-lpc/ports@2");
  assert(GRAPH.ports.some((p) => p.name === ODD));
  assertEquals(GRAPH.summary.connections, GRAPH.connections.length);
});

Deno.test("mermaidText() and dotText() escape what would end or break a label", () => {
  assertStrictEquals(
    mermaidText(ODD),
    "\\RPC Control\\say #34;hi#34; #35;1 #60;b#62;#124;x#124;#60;/b#62;",
  );
  assertStrictEquals(unMermaid(mermaidText(ODD)), ODD);
  assertStrictEquals(mermaidText("a\nb"), "a b");
  assertStrictEquals(dotText(ODD), '\\\\RPC Control\\\\say \\"hi\\" #1 <b>|x|</b>');
  assertStrictEquals(dotText("a\nb"), "a\\nb");
});

Deno.test("toMermaid(): a flowchart whose ids are made here and whose labels carry the names", () => {
  const m = toMermaid(GRAPH);
  const lines = m.split("\n");
  assertStrictEquals(lines[0], "flowchart LR");
  const node = /^ {2}([pn]\d+)(\["|\(\[")([^"]*)("\]|"\]\))$/;
  const edge = /^ {2}([pn]\d+) (-->|-\.->|---)\|"([^"]*)"\| ([pn]\d+)$/;
  const labels = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line.startsWith("  %% ")) continue;
    const n = node.exec(line);
    if (n) {
      labels.set(n[1]!, unMermaid(n[3]!.replace(/<br\/><i>.*<\/i>$/, "")));
      continue;
    }
    const e = edge.exec(line);
    assert(e, `not a node, an edge or a comment: ${line}`);
    assert(labels.has(e[1]!) && labels.has(e[4]!), `edge between declared nodes: ${line}`);
  }
  // Every port and process is a node with its name as it is.
  for (const p of GRAPH.ports) assert([...labels.values()].includes(p.name), p.name);
  assert([...labels.values()].includes("odd name.exe (3000)"));
  assertStrictEquals(labels.get("n1"), ODD);
  // The edges as the graph says: serves, connects (to the port, or to the server), waits.
  assert(lines.includes('  p2000 -->|"serves (session-info)"| n0'));
  assert(lines.includes('  p2100 -->|"connects, 2 handles"| n0'));
  assert(lines.includes('  p2100 -->|"connects, 1 handle, port unknown"| p500'));
  assert(lines.includes('  p2000 ---|"connected, 1 handle, direction unknown"| p500'));
  assert(lines.includes('  p2100 -.->|"thread 2104 waits"| n0'));
  assert(lines.includes('  p2000 -.->|"thread 2001 waits for its client"| p2100'));
  assert(lines.includes("  %% unknown: 1 handle: protected process"));
  assert(!m.includes("SeDebugPrivilege"));
  assert(
    toMermaid({ ...GRAPH, debugPrivilege: false }).includes(
      "  %% SeDebugPrivilege not enabled: fewer processes could be read",
    ),
  );
  assert(
    lines.includes(
      '  p500["csrss.exe (500)<br/><i>handles unread: protected process</i>"]',
    ),
  );
});

Deno.test("toDot(): the same nodes and edges, names escaped for DOT", () => {
  const d = toDot(GRAPH);
  const lines = d.split("\n");
  assertStrictEquals(lines[0], "digraph ports {");
  assertStrictEquals(lines.at(-1), "}");
  assert(lines.includes(`  "n1" [label="${dotText(ODD)}", shape=ellipse];`));
  assert(
    lines.includes(
      '  "p2000" -> "p500" [label="connected, 1 handle, direction unknown", dir=none];',
    ),
  );
  assert(lines.includes('  "p2100" -> "n0" [label="thread 2104 waits", style=dotted];'));
  assertEquals(
    lines.filter((l) => / -> /.test(l)).length,
    toMermaid(GRAPH).split("\n").filter((l) => /\|"/.test(l)).length,
  );
});

const HAVE_DOT = await hasCommand("dot");

conditionalTest(
  "Graphviz renders toDot()'s output and shows every port name as it is",
  HAVE_DOT ? null : "Graphviz (dot) not installed (apt-get install graphviz)",
  async () => {
    const file = await Deno.makeTempFile({ suffix: ".dot" });
    try {
      await Deno.writeTextFile(file, toDot(GRAPH));
      const r = await run("dot", ["-Tsvg", file]);
      assertStrictEquals(r.code, 0, r.stderr);
      const texts = [...r.stdout.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
        m[1]!.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
          .replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">")
          .replace(/&amp;/g, "&")
      );
      for (const p of GRAPH.ports) assert(texts.includes(p.name), `${p.name} in ${texts}`);
      assert(texts.includes("thread 2104 waits"));
    } finally {
      await Deno.remove(file);
    }
  },
);

Deno.test("restrictGraph() keeps the lab's ports, their server and clients, and the waits on them", () => {
  const lab = restrictGraph(GRAPH, (name) => /\\deno-lpc-[^\\]*$/i.test(name));
  assertEquals(lab.ports.map((p) => p.name), ["\\RPC Control\\deno-lpc-exp1-1a2b"]);
  assertEquals(lab.processes.map((p) => p.pid), [2000, 2100]);
  assertEquals(lab.connections.map((c) => [c.client, c.server]), [[2100, 2000]]);
  assertEquals(lab.waits?.blocked.map((w) => w.tid), [2001, 2104]);
  assertEquals(lab.summary, {
    portHandles: GRAPH.summary.portHandles,
    processes: 2,
    ports: 1,
    attributed: 1,
    connections: 1,
    waits: 2,
  });
  const none = restrictGraph(GRAPH, () => false);
  assertEquals([none.ports, none.processes, none.connections], [[], [], []]);
});

Deno.test("checkFlowchart() passes toMermaid()'s output and names what is wrong otherwise", () => {
  assertEquals(checkFlowchart(toMermaid(GRAPH)), []);
  const bad = [
    "graph TD",
    '  p1["a"]',
    '  p1["again"]',
    '  p1 -->|"x"| n9',
    '  n2(["say "hi""])',
  ].join("\n");
  assertEquals(checkFlowchart(bad), [
    'line 1: expected "flowchart LR", got "graph TD"',
    "line 3: node p1 declared twice",
    "line 4: undeclared node n9",
    'line 5: not a node, an edge or a comment: n2(["say "hi""])',
  ]);
});

Deno.test("labGraph(): the lab's ports as Mermaid, or why not (not asked, not built, none there)", () => {
  const g = labGraph(GRAPH);
  assert(
    "mermaid" in g && g.mermaid.includes("deno-lpc-exp1-1a2b") && !g.mermaid.includes("ApiPort"),
  );
  assertEquals(labGraph(undefined), {
    missing: "the graph was not asked for (list_ports --graph)",
  });
  assertEquals(labGraph({ skipped: "no ports" }), { missing: "the graph was not built: no ports" });
  const none = labGraph({ ...GRAPH, ports: GRAPH.ports.filter((p) => !LAB_PORT.test(p.name)) });
  assert("missing" in none);
  assertMatch(none.missing, /^no deno-lpc-\* port existed while list_ports ran/);
});
