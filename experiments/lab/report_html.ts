/**
 * `report.html`: the same view as `report.md`, self-contained: the diagrams as inline SVG, no
 * script and no network.
 *
 * @module
 */

import { toSvg } from "./lab_diagram.ts";
import type { ReportView } from "./report_view.ts";
import { TRANSPORT_LABEL } from "../_transport.ts";

const h = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const STYLE =
  "<style>body{font-family:Segoe UI,Arial,sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.missing{color:#8a5a00}svg{max-width:100%;height:auto;border:1px solid #eee}</style>";

/** The report's view as one HTML page. */
export function htmlOf(v: ReportView): string {
  const parts = [
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${h(v.title)}</title>`,
    STYLE,
    "</head><body>",
    `<h1>${h(v.title)}</h1><p>${h(v.line)}</p>`,
    "<table><tr><th>experiment</th><th>status</th><th>reason</th></tr>",
    ...v.status.map((row) => `<tr>${row.map((c) => `<td>${h(c)}</td>`).join("")}</tr>`),
    "</table>",
  ];
  for (const s of v.sections) {
    parts.push(`<h2>${h(s.title)}</h2>`);
    if ("missing" in s) {
      parts.push(`<p class="missing"><em>${h(s.missing)}</em></p>`);
      continue;
    }
    for (const shown of s.shown) {
      if (shown.transport) parts.push(`<h3>Over ${TRANSPORT_LABEL[shown.transport]}</h3>`);
      parts.push(
        toSvg(shown.diagram),
        "<table><tr><th>observation</th><th>value</th></tr>",
        ...shown.observations.map(([a, b]) => `<tr><td>${h(a)}</td><td>${h(b)}</td></tr>`),
        "</table>",
      );
      const g = shown.graph;
      if (g) {
        parts.push(
          `<h3>${h(g.title)}</h3>`,
          "mermaid" in g
            ? `<p>Mermaid source (paste into a Mermaid viewer to draw it):</p><pre class="mermaid">${
              h(g.mermaid)
            }</pre>`
            : `<p class="missing"><em>${h(g.missing)}</em></p>`,
        );
      }
    }
  }
  const side = v.sideBySide;
  parts.push(
    `<h2>${h(side.title)}</h2><p>${h(side.line)}</p>`,
    "<table><tr><th>observation</th><th>LPC</th><th>ALPC</th><th>difference</th></tr>",
    ...side.rows.map(([what, lpc, alpc, mark]) =>
      `<tr><td>${h(what)}</td><td>${h(lpc)}</td><td>${h(alpc)}</td><td>${
        mark === "differs" ? "<strong>differs</strong>" : h(mark)
      }</td></tr>`
    ),
    "</table>",
  );
  parts.push("<h2>The three questions</h2>");
  for (const [key, a] of v.answers) {
    parts.push(
      `<h3>${key.toUpperCase()}. ${h(a.question)}</h3><p>${
        a.observed ? "" : "<strong>Not observed here.</strong> "
      }${h(a.answer.replace(/^Not observed here\. /, ""))}</p>`,
    );
    if (a.evidence.length) {
      parts.push(
        "<p>Evidence from this run:</p><ul>",
        ...a.evidence.map((x) => `<li>${h(x)}</li>`),
        "</ul>",
      );
    }
    if (a.missing.length) {
      parts.push(
        `<p class="missing">Missing evidence:</p><ul class="missing">`,
        ...a.missing.map((x) => `<li>${h(x)}</li>`),
        "</ul>",
      );
    }
  }
  parts.push("</body></html>");
  return parts.join("\n");
}
