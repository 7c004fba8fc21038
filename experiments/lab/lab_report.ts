/**
 * The lab report: from each experiment's own JSON document to `report.json`, `report.md` (Mermaid
 * sequence diagrams, observation tables, the three questions answered from this run's evidence)
 * and a self-contained `report.html`. Pure: tested on Linux from recorded documents.
 *
 * This module assembles: each experiment's diagram, observations and evidence come from its own
 * `experiments/<exp>/<exp>_report.ts`; the schema from `report_schema.ts`; the rendering from
 * `report_markdown.ts` and `report_html.ts`.
 *
 * An experiment that did not run leaves its answer with the reference mechanism, clearly marked
 * "not observed here", and the list of missing evidence. Nothing is invented.
 *
 * @module
 */

import type { Diagram } from "./lab_diagram.ts";
import {
  type Answer,
  type ExperimentKey,
  EXPERIMENTS,
  type LabReport,
  type Outcome,
  type Outcomes,
} from "./report_schema.ts";
import { reasonOf } from "./report_outcomes.ts";
import type { ExperimentPart, ReportView, Rows, Section } from "./report_view.ts";
import { notObservedAnswer, QUESTIONS, REFERENCE } from "./questions.ts";
import { markdownOf } from "./report_markdown.ts";
import { sideBySide, type TransportReasons } from "./report_side_by_side.ts";
import { htmlOf } from "./report_html.ts";
import { answerQ1, PORTS_PART } from "../ports/ports_report.ts";
import { EXP1_PART } from "../exp1/exp1_report.ts";
import { answerQ2, EXP2_PART } from "../exp2/exp2_report.ts";
import { EXP3_PART } from "../exp3/exp3_report.ts";

export {
  type Answer,
  type ExperimentKey,
  EXPERIMENTS,
  LAB_SCHEMA,
  type LabReport,
  type Outcome,
  validateLabReport,
} from "./report_schema.ts";
export { reasonOf } from "./report_outcomes.ts";
export { checkMarkdownDiagrams } from "./report_markdown.ts";
export { sideBySide, type TransportReasons } from "./report_side_by_side.ts";

/** Each experiment's part of the report, from its own `*_report.ts`. */
const PARTS: Record<ExperimentKey, ExperimentPart> = {
  ports: PORTS_PART,
  exp1: EXP1_PART,
  exp2: EXP2_PART,
  exp3: EXP3_PART,
};

/** Question 3's evidence, in the order it is cited. */
const Q3_FROM: ExperimentKey[] = ["exp2", "exp3", "exp1"];

/** Each experiment's contribution where it gave one. */
function collect<T>(
  e: Outcomes,
  part: (p: ExperimentPart, e: Outcomes) => T | undefined,
): Partial<Record<ExperimentKey, T>> {
  const out: Partial<Record<ExperimentKey, T>> = {};
  for (const k of EXPERIMENTS) {
    const x = part(PARTS[k], e);
    if (x) out[k] = x;
  }
  return out;
}

/** The diagram of each experiment that ran. */
export function diagrams(
  report: Pick<LabReport, "experiments">,
): Partial<Record<ExperimentKey, Diagram>> {
  return collect(report.experiments, (p, e) => p.diagram(e));
}

/** The key observations of each experiment that ran, as table rows. */
export function observations(
  report: Pick<LabReport, "experiments">,
): Partial<Record<ExperimentKey, Rows>> {
  return collect(report.experiments, (p, e) => p.observations(e));
}

/**
 * The three questions, answered from this run's evidence. Question 3 cites both transports: a
 * transport not observed is listed as missing, with `reasons`' word for why.
 */
export function answerQuestions(
  e: Outcomes,
  reasons: Partial<TransportReasons> = {},
): { q1: Answer; q2: Answer; q3: Answer } {
  const parts = Q3_FROM.flatMap((k) => PARTS[k].q3?.(e) ?? []);
  const evidence = parts.flatMap((p) => p.evidence);
  const side = sideBySide(e, reasons);
  const compared = side.rows.filter((r) => r[3] !== "not compared");
  if (compared.length) {
    evidence.push(
      `LPC and ALPC: ${
        compared.map((r) => `${r[0]}: ${r[3]}`).join("; ")
      } (the side-by-side table)`,
    );
  }
  const missing = [
    ...parts.flatMap((p) => p.missing),
    ...(compared.length ? [] : [
      "LPC and ALPC side by side: not both observed in this run (why: under the side-by-side table)",
    ]),
  ];
  const q3: Answer = evidence.length
    ? {
      question: QUESTIONS.q3,
      answer: `${REFERENCE.q3} This run showed ${missing.length ? "part of it" : "it"}, over ${
        compared.length ? "both transports" : "LPC only"
      }; its evidence is listed below.`,
      observed: true,
      evidence,
      missing,
    }
    : notObservedAnswer("q3", missing);
  return { q1: answerQ1(e), q2: answerQ2(e), q3 };
}

/** The report's title and the line under it: one source for `report.md` and `report.html`. */
export function reportHeader(r: LabReport): { title: string; line: string } {
  const env = r.environment;
  const where = [
    `${env.os} (${env.build})`,
    `Deno ${env.deno}`,
    ...(env.wine ? [`under Wine ${env.wine}`] : []),
    ...(env.elevated === null ? [] : [env.elevated ? "elevated" : "not elevated"]),
  ];
  return {
    title: "LPC and ALPC lab report",
    line: `Generated ${r.generatedAt} on ${where.join(", ")}.`,
  };
}

/** What the section of an experiment that did not run says instead of a diagram. */
const notObserved = (k: ExperimentKey, o: Outcome) =>
  `Not observed here: ${k} ${o.status === "ran" ? "left no diagram" : o.status}${
    o.reason ? " (why: in the table at the top)" : ""
  }.`;

/** The report as both renderers draw it. */
function view(r: LabReport): ReportView {
  const sections = EXPERIMENTS.map((k): Section => {
    const x = r.experiments[k];
    const title = PARTS[k].title;
    const shown = PARTS[k].shown(r.experiments);
    return x.status !== "ran" || shown.length === 0
      ? { title, missing: notObserved(k, x) }
      : { title, shown };
  });
  return {
    ...reportHeader(r),
    status: EXPERIMENTS.map((k) => [k, r.experiments[k].status, reasonOf(r.experiments[k])]),
    sections,
    sideBySide: sideBySide(r.experiments, r.transports),
    answers: Object.entries(r.answers),
  };
}

/** `report.md`. */
export function toMarkdown(r: LabReport): string {
  return markdownOf(view(r));
}

/** `report.html`: self-contained, diagrams as inline SVG, no script and no network. */
export function toHtml(r: LabReport): string {
  return htmlOf(view(r));
}
