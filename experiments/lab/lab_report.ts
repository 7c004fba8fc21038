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
import { htmlOf } from "./report_html.ts";
import { answerQ1, PORTS_PART } from "../ports/ports_report.ts";
import { EXP1_PART } from "../exp1/exp1_report.ts";
import { answerQ2, EXP2_PART } from "../exp2/exp2_report.ts";
import { EXP3_PART } from "../exp3/exp3_report.ts";

export {
  type Answer,
  type ExperimentKey,
  EXPERIMENTS,
  type LabReport,
  type Outcome,
  validateLabReport,
} from "./report_schema.ts";
export { reasonOf } from "./report_outcomes.ts";
export { checkMarkdownDiagrams } from "./report_markdown.ts";

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

/** The three questions, answered from this run's evidence. */
export function answerQuestions(e: Outcomes): { q1: Answer; q2: Answer; q3: Answer } {
  const parts = Q3_FROM.flatMap((k) => PARTS[k].q3?.(e) ?? []);
  const evidence = parts.flatMap((p) => p.evidence);
  const missing = parts.flatMap((p) => p.missing);
  const q3: Answer = evidence.length
    ? {
      question: QUESTIONS.q3,
      answer: `${REFERENCE.q3} This run showed ${
        missing.length ? "part of it" : "it"
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
  return { title: "LPC lab report", line: `Generated ${r.generatedAt} on ${where.join(", ")}.` };
}

/** What the section of an experiment that did not run says instead of a diagram. */
const notObserved = (k: ExperimentKey, o: Outcome) =>
  `Not observed here: ${k} ${o.status === "ran" ? "left no diagram" : o.status}${
    o.reason ? " (why: in the table at the top)" : ""
  }.`;

/** The report as both renderers draw it. */
function view(r: LabReport): ReportView {
  const d = diagrams(r);
  const obs = observations(r);
  const sections = EXPERIMENTS.map((k): Section => {
    const x = r.experiments[k];
    const title = PARTS[k].title;
    const diagram = d[k];
    return x.status !== "ran" || !diagram
      ? { title, missing: notObserved(k, x) }
      : { title, diagram, observations: obs[k] ?? [] };
  });
  return {
    ...reportHeader(r),
    status: EXPERIMENTS.map((k) => [k, r.experiments[k].status, reasonOf(r.experiments[k])]),
    sections,
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
