/**
 * `report.md`: the status table, each experiment's Mermaid sequence diagram and observations (one
 * per transport it ran over), LPC and ALPC side by side, and the three answers with their evidence; and the check that every Mermaid block parses.
 *
 * @module
 */

import { checkMermaid, toMermaid } from "./lab_diagram.ts";
import { checkFlowchart } from "../ports/graph_format.ts";
import type { ReportView } from "./report_view.ts";
import { TRANSPORT_LABEL } from "../_transport.ts";

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** The report's view as Markdown. */
export function markdownOf(v: ReportView): string {
  const out: string[] = [`# ${v.title}`, "", v.line, ""];
  out.push("| experiment | status | reason |", "| --- | --- | --- |");
  for (const row of v.status) out.push(`| ${row.map(cell).join(" | ")} |`);
  for (const s of v.sections) {
    out.push("", `## ${s.title}`, "");
    if ("missing" in s) {
      out.push(`_${s.missing}_`);
      continue;
    }
    for (const [i, shown] of s.shown.entries()) {
      if (i > 0) out.push("");
      if (shown.transport) out.push(`### Over ${TRANSPORT_LABEL[shown.transport]}`, "");
      out.push("```mermaid", toMermaid(shown.diagram), "```", "");
      out.push(
        "| observation | value |",
        "| --- | --- |",
        ...shown.observations.map(([a, b]) => `| ${cell(a)} | ${cell(b)} |`),
      );
      const g = shown.graph;
      if (g) {
        out.push("", `### ${g.title}`, "");
        out.push(..."mermaid" in g ? ["```mermaid", g.mermaid, "```"] : [`_${g.missing}_`]);
      }
    }
  }
  const side = v.sideBySide;
  out.push("", `## ${side.title}`, "", side.line, "");
  out.push("| observation | LPC | ALPC | difference |", "| --- | --- | --- | --- |");
  for (const [what, lpc, alpc, mark] of side.rows) {
    out.push(
      `| ${cell(what)} | ${cell(lpc)} | ${cell(alpc)} | ${
        mark === "differs" ? "**differs**" : mark
      } |`,
    );
  }
  out.push("", "## The three questions");
  for (const [key, a] of v.answers) {
    out.push(
      "",
      `### ${key.toUpperCase()}. ${a.question}`,
      "",
      a.observed
        ? a.answer
        : `**Not observed here.** ${a.answer.replace(/^Not observed here\. /, "")}`,
    );
    if (a.evidence.length) {
      out.push("", "Evidence from this run:", "", ...a.evidence.map((x) => `- ${x}`));
    }
    if (a.missing.length) out.push("", "Missing evidence:", "", ...a.missing.map((x) => `- ${x}`));
  }
  return out.join("\n") + "\n";
}

/** Every Mermaid block of a Markdown text (sequence diagrams and flowcharts), checked. */
export function checkMarkdownDiagrams(md: string): { blocks: number; problems: string[] } {
  const blocks = [...md.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return {
    blocks: blocks.length,
    problems: blocks.flatMap((b, i) =>
      (b.startsWith("flowchart") ? checkFlowchart(b) : checkMermaid(b)).map((p) =>
        `block ${i + 1}: ${p}`
      )
    ),
  };
}
