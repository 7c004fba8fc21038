/**
 * `list_ports --graph`: its options, the graph built for the walk's document (or why not), its
 * printed form, and the option combinations the declarations cannot say.
 *
 * @module
 */

import { UsageError } from "../_cli.ts";
import type { OptionSpec } from "../_options.ts";
import { PORT_TYPES } from "../../raw.ts";
import {
  buildPortGraph,
  type GraphSource,
  kernelGraphSource,
  type PortGraph,
} from "./port_graph.ts";
import { toDot, toMermaid } from "./graph_format.ts";

/** The graph's options of `list_ports` (part of its `CLI`). */
export const GRAPH_OPTIONS = {
  graph: {
    kind: "flag",
    help: "who talks to whom: each port's server (AlpcServerSessionInformation, else handle " +
      "duplication: `via`), the clients connected to it, unknown edges with why; printed as a " +
      "Mermaid flowchart instead of the table",
  },
  waits: {
    kind: "flag",
    help: "with --graph: every thread waiting for a reply, the port it waits on and its server " +
      "(AlpcServerInformation)",
  },
  dot: { kind: "flag", help: "with --graph: print Graphviz DOT instead of Mermaid" },
} as const satisfies Record<string, OptionSpec>;

/**
 * The graph (`--graph`) for the walk's objects, or why it could not be built (Wine: no ports).
 *
 * @param objects what the walk listed (its port paths join the graph's ports)
 * @param o `waits`; `source` (default: the kernel; tests pass a fake)
 */
export function portGraph(
  objects: { path: string; type: string }[],
  o: { waits: boolean; source?: GraphSource },
): PortGraph | { skipped: string } {
  try {
    return buildPortGraph(o.source ?? kernelGraphSource(), {
      waits: o.waits,
      names: objects.filter((x) => PORT_TYPES.includes(x.type)).map((x) => x.path),
    });
  } catch (e) {
    return { skipped: e instanceof Error ? e.message : String(e) };
  }
}

/** The graph as printed without `--json`: Mermaid, or DOT; a comment saying why there is none. */
export function graphOutput(graph: PortGraph | { skipped: string }, dot: boolean): string {
  if ("skipped" in graph) return `${dot ? "//" : "%%"} graph skipped: ${graph.skipped}`;
  return dot ? toDot(graph) : toMermaid(graph);
}

/** `--waits` and `--dot` need `--graph`; `--dot` and `--json` are two outputs. */
export function checkGraphOptions(
  v: { graph: boolean; waits: boolean; dot: boolean; json: boolean },
): void {
  if (v.waits && !v.graph) {
    throw new UsageError("--waits adds the waiting threads to the graph: use it with --graph");
  }
  if (v.dot && !v.graph) throw new UsageError("--dot prints the graph: use it with --graph");
  if (v.dot && v.json) {
    throw new UsageError("--dot and --json are two outputs: choose one (the graph is in the JSON)");
  }
}
