/**
 * The port graph drawn: a Mermaid `flowchart` (the default of `list_ports --graph`, and the lab
 * report's) or Graphviz DOT (`--dot`), and the graph cut down to some ports and their neighbours.
 *
 * Node ids are made here (`p<pid>`, `n<index>`), never from names; labels are escaped for each
 * language (port names have backslashes, spaces and sometimes quotes).
 *
 * @module
 */

import type { GraphConnection, GraphProcess, GraphWait, PortGraph } from "./port_graph.ts";

/**
 * Escapes text for a quoted Mermaid label (`["..."]`, `|"..."|`): Mermaid's entity codes for
 * the characters that would end the label or be read as markup.
 */
export function mermaidText(s: string): string {
  return s.replace(/[#"<>&|]/g, (c) => `#${c.charCodeAt(0)};`).replace(/\r?\n/g, " ");
}

/** Escapes text for a DOT double-quoted string (a backslash stays a backslash in the label). */
export function dotText(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\r?\n/g, "\\n");
}

function processLabel(p: GraphProcess): string {
  return `${p.image ?? "exited"} (${p.pid})`;
}

interface Drawn {
  nodes: { id: string; label: string; note?: string; kind: "process" | "port" }[];
  edges: { from: string; to: string; label: string; style: "solid" | "dotted" | "plain" }[];
  comments: string[];
}

function connectionLabel(c: GraphConnection): string {
  const n = `${c.handles} handle${c.handles === 1 ? "" : "s"}`;
  if (c.direction === "unknown") return `connected, ${n}, direction unknown`;
  return c.port === null ? `connects, ${n}, port unknown` : `connects, ${n}`;
}

/** The graph as nodes and edges, for either language. */
function layout(g: PortGraph): Drawn {
  const portId = new Map<string, string>();
  g.ports.forEach((p, i) => portId.set(p.name.toLowerCase(), `n${i}`));
  const nodes: Drawn["nodes"] = [];
  for (const p of g.processes) {
    nodes.push({
      id: `p${p.pid}`,
      label: processLabel(p),
      kind: "process",
      ...(p.unreadable ? { note: `handles unread: ${p.unreadable}` } : {}),
    });
  }
  for (const p of g.ports) {
    nodes.push({
      id: portId.get(p.name.toLowerCase())!,
      label: p.name,
      kind: "port",
      ...(p.server === null ? { note: `server unknown: ${p.why ?? "?"}` } : {}),
    });
  }
  const edges: Drawn["edges"] = [];
  for (const p of g.ports) {
    if (p.server === null) continue;
    edges.push({
      from: `p${p.server}`,
      to: portId.get(p.name.toLowerCase())!,
      label: `serves (${p.via})`,
      style: "solid",
    });
  }
  for (const c of g.connections) {
    const to = c.port !== null ? portId.get(c.port.toLowerCase()) : undefined;
    edges.push({
      from: `p${c.client}`,
      to: to ?? `p${c.server}`,
      label: connectionLabel(c),
      style: c.direction === "unknown" ? "plain" : "solid",
    });
  }
  for (const w of g.waits?.blocked ?? []) {
    if (w.role === "server") {
      const label = `thread ${w.tid} waits for its client`;
      edges.push({ from: `p${w.pid}`, to: `p${w.peer}`, label, style: "dotted" });
      continue;
    }
    const to = portId.get(w.port.toLowerCase()) ?? `p${w.server}`;
    edges.push({ from: `p${w.pid}`, to, label: `thread ${w.tid} waits`, style: "dotted" });
  }
  const s = g.summary;
  const comments = [
    `${s.processes} processes, ${s.ports} named ports (${s.attributed} with a server), ` +
    `${s.connections} connections, from ${s.portHandles} port handles` +
    (s.waits !== undefined ? `, ${s.waits} thread${s.waits === 1 ? "" : "s"} waiting` : ""),
    ...(g.debugPrivilege ? [] : ["SeDebugPrivilege not enabled: fewer processes could be read"]),
    g.sessionInfo.available
      ? "servers and connections from AlpcServerSessionInformation"
      : `AlpcServerSessionInformation unavailable: ${g.sessionInfo.reason ?? "?"}`,
    ...Object.entries(g.unknown).map(([why, n]) =>
      `unknown: ${n} handle${n === 1 ? "" : "s"}: ${why}`
    ),
    ...Object.entries(g.waits?.unknown ?? {}).map(([why, n]) => `waits unknown: ${n}: ${why}`),
  ];
  return { nodes, edges, comments };
}

/**
 * The graph as a Mermaid flowchart: processes as boxes, named ports as stadiums; `serves` from a
 * server to its port, `connects` from a client to the port (or its server when the port is not
 * known), a dotted edge per waiting thread; the counts and reasons as `%%` comments.
 *
 * @param g the graph
 */
export function toMermaid(g: PortGraph): string {
  const d = layout(g);
  const out = ["flowchart LR"];
  for (const c of d.comments) out.push(`  %% ${c.replace(/\r?\n/g, " ")}`);
  for (const n of d.nodes) {
    const text = mermaidText(n.label) + (n.note ? `<br/><i>${mermaidText(n.note)}</i>` : "");
    out.push(n.kind === "process" ? `  ${n.id}["${text}"]` : `  ${n.id}(["${text}"])`);
  }
  const arrow = { solid: "-->", dotted: "-.->", plain: "---" } as const;
  for (const e of d.edges) {
    out.push(`  ${e.from} ${arrow[e.style]}|"${mermaidText(e.label)}"| ${e.to}`);
  }
  return out.join("\n");
}

/**
 * The graph as Graphviz DOT (`list_ports --graph --dot`): the same nodes and edges as
 * {@link toMermaid}, the counts and reasons as `//` comments.
 *
 * @param g the graph
 */
export function toDot(g: PortGraph): string {
  const d = layout(g);
  const out = ["digraph ports {", "  rankdir=LR;"];
  for (const c of d.comments) out.push(`  // ${c.replace(/\r?\n/g, " ")}`);
  for (const n of d.nodes) {
    const label = dotText(n.label) + (n.note ? `\\n${dotText(n.note)}` : "");
    out.push(
      `  "${n.id}" [label="${label}", shape=${n.kind === "process" ? "box" : "ellipse"}];`,
    );
  }
  const style = { solid: "", dotted: ", style=dotted", plain: ", dir=none" } as const;
  for (const e of d.edges) {
    out.push(`  "${e.from}" -> "${e.to}" [label="${dotText(e.label)}"${style[e.style]}];`);
  }
  out.push("}");
  return out.join("\n");
}

/**
 * The part of the graph about some named ports: those ports, their servers, the connections to
 * them (and the connections to their servers whose port is unknown), the threads waiting on them,
 * and the processes at the ends. Counts are recomputed; the reasons stay those of the whole graph.
 *
 * @param g the whole graph
 * @param keep which ports (by name) to keep
 */
export function restrictGraph(g: PortGraph, keep: (name: string) => boolean): PortGraph {
  const ports = g.ports.filter((p) => keep(p.name));
  const names = new Set(ports.map((p) => p.name.toLowerCase()));
  const servers = new Set(ports.flatMap((p) => p.server === null ? [] : [p.server]));
  const connections = g.connections.filter((c) =>
    c.port !== null ? names.has(c.port.toLowerCase()) : servers.has(c.server)
  );
  const blocked: GraphWait[] = (g.waits?.blocked ?? []).filter((w) =>
    names.has(w.port.toLowerCase())
  );
  const pids = new Set([
    ...servers,
    ...connections.flatMap((c) => [c.client, c.server]),
    ...blocked.flatMap((w) => [w.pid, w.server, w.peer]),
  ]);
  const processes = g.processes.filter((p) => pids.has(p.pid));
  const out: PortGraph = {
    debugPrivilege: g.debugPrivilege,
    sessionInfo: g.sessionInfo,
    processes,
    ports,
    connections,
    unknown: g.unknown,
    summary: {
      portHandles: g.summary.portHandles,
      processes: processes.length,
      ports: ports.length,
      attributed: ports.filter((p) => p.server !== null).length,
      connections: connections.length,
    },
  };
  if (g.waits) {
    out.waits = { ...g.waits, blocked };
    out.summary.waits = blocked.length;
  }
  return out;
}

/**
 * The problems of a flowchart as {@link toMermaid} writes it (the subset of Mermaid it uses):
 * `flowchart LR`, then `%%` comments, nodes `id["label"]` / `id(["label"])`, and edges
 * `a -->|"label"| b` (`-.->`, `---`) between declared nodes, no raw `"` in a label.
 *
 * @param text the flowchart
 * @returns one line per problem (empty: it is well formed)
 */
export function checkFlowchart(text: string): string[] {
  const problems: string[] = [];
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines[0]?.trim() !== "flowchart LR") {
    problems.push(`line 1: expected "flowchart LR", got ${JSON.stringify(lines[0])}`);
  }
  const ids = new Set<string>();
  lines.slice(1).forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 2;
    let m: RegExpExecArray | null;
    if (line.startsWith("%% ")) return;
    if ((m = /^([pn]\d+)(?:\["([^"]+)"\]|\(\["([^"]+)"\]\))$/.exec(line))) {
      if (ids.has(m[1]!)) problems.push(`line ${n}: node ${m[1]} declared twice`);
      ids.add(m[1]!);
      return;
    }
    if ((m = /^([pn]\d+) (?:-->|-\.->|---)\|"([^"]+)"\| ([pn]\d+)$/.exec(line))) {
      for (const id of [m[1]!, m[3]!]) {
        if (!ids.has(id)) problems.push(`line ${n}: undeclared node ${id}`);
      }
      return;
    }
    problems.push(`line ${n}: not a node, an edge or a comment: ${line}`);
  });
  return problems;
}

/** The lab's own ports: `deno-lpc-*` names (the experiments and the lab's beacon name them so). */
export const LAB_PORT = /\\deno-lpc-[^\\]*$/i;

/**
 * The lab report's graph: the lab's own ports and their neighbours as a Mermaid flowchart, or
 * why there is none.
 *
 * @param graph the document's `graph` part, if it has one
 * @param beacon the lab's beacon that ran beside the walk (`lab_beacon_run.ts`): its ports, or
 *   why it did not start (then that is why there is no lab port)
 */
export function labGraph(
  graph: PortGraph | { skipped: string } | undefined,
  beacon?: { started: true; ports: { name: string }[] } | { started: false; reason: string },
): { mermaid: string } | { missing: string } {
  if (graph === undefined) return { missing: "the graph was not asked for (list_ports --graph)" };
  if ("skipped" in graph) {
    const also = beacon?.started === false
      ? `; and no lab port existed: the lab's beacon did not start: ${beacon.reason}`
      : "";
    return { missing: `the graph was not built: ${graph.skipped}${also}` };
  }
  const lab = restrictGraph(graph, (name) => LAB_PORT.test(name));
  if (lab.ports.length === 0) {
    const whole = `the whole graph: ${graph.summary.processes} processes, ` +
      `${graph.summary.ports} named ports, ${graph.summary.connections} connections`;
    const why = beacon === undefined
      ? "no deno-lpc-* port existed while list_ports ran (the walk runs before the experiments " +
        "start their servers, and no beacon ran)"
      : beacon.started
      ? `the lab's beacon was up (${
        beacon.ports.map((p) => p.name).join(", ")
      }), but the walk did not list its ports`
      : `no lab port existed while list_ports ran: the lab's beacon did not start: ${beacon.reason}`;
    return { missing: `${why}; ${whole}` };
  }
  return { mermaid: toMermaid(lab) };
}
