/**
 * What list_ports prints without `--json`: the table of objects (with the scopes, the counts and,
 * with `--security`, the descriptors), or with `--graph` the graph as Mermaid or DOT (followed by
 * the descriptors when they were asked for too).
 *
 * @module
 */

import type { PortsDocument } from "./list_ports.ts";
import { graphOutput } from "./list_ports_graph.ts";
import { formatScopes } from "./port_scopes.ts";
import { formatSecurity } from "./port_security.ts";

/** The human-readable table. */
export function formatTable(doc: PortsDocument): string {
  const rows = doc.objects.map((o) => [
    o.path + (o.target !== undefined ? ` -> ${o.target}` : ""),
    o.type,
    o.server ? `${o.server.pid} ${o.server.image ?? "?"}` : "",
  ]);
  const head = ["PATH", "TYPE", doc.servers ? "SERVER" : ""];
  const width = [0, 1].map((i) => Math.max(head[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    `${r[0]!.padEnd(width[0]!)}  ${r[1]!.padEnd(width[1]!)}  ${r[2]}`.trimEnd();
  const out = [line(head), ...rows.map(line)];
  for (const e of doc.errors) out.push(`! ${e.path}: ${e.name} (${e.status})`);
  out.push(...formatScopes(doc.scopes ?? []));
  const s = doc.summary;
  out.push(
    `${s.objects} listed below ${doc.root}; ${s.ports} port objects; ${s.errors} unreadable` +
      (doc.servers
        ? `; ${s.attributed} attributed` +
          (doc.servers.skipped ? ` (attribution skipped: ${doc.servers.skipped})` : "") +
          (Object.keys(doc.servers.unattributed).length
            ? `; not attributed: ${
              Object.entries(doc.servers.unattributed).map(([k, v]) => `${v} ${k}`).join(", ")
            }`
            : "") +
          (doc.servers.debugPrivilege ? "" : "; SeDebugPrivilege not enabled")
        : ""),
  );
  if (doc.security) out.push(...formatSecurity(doc.security));
  return out.join("\n");
}

/** The output without `--json`: the graph (Mermaid, or DOT) with `--graph`, else the table. */
export function formatOutput(doc: PortsDocument, dot: boolean): string {
  if (!doc.graph) return formatTable(doc);
  const graph = graphOutput(doc.graph, dot);
  return doc.security ? [graph, "", ...formatSecurity(doc.security)].join("\n") : graph;
}
