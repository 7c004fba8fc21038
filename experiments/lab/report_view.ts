/**
 * What the lab report shows, before it is Markdown or HTML: what each experiment contributes (its
 * diagram, its observations, its evidence for question 3), and the view both renderers draw.
 *
 * @module
 */

import type { Diagram } from "./lab_diagram.ts";
import type { Answer, ExperimentKey, Outcomes } from "./report_schema.ts";
import { notRun, ran } from "./report_outcomes.ts";

/** An observation table's rows: what, and its value. */
export type Rows = [string, string][];

/** Evidence for an answer that several experiments give: what this one showed, what it could not. */
export interface Evidence {
  /** Cited from this run. */
  evidence: string[];
  /** What this run could not provide. */
  missing: string[];
}

/**
 * What an experiment writes for the report, each piece from its own document (when it ran):
 * {@link experimentPart} makes the {@link ExperimentPart} the lab assembles.
 */
export interface PartOf<D> {
  /** The experiment. */
  key: ExperimentKey;
  /** Its section's heading. */
  title: string;
  /** Its sequence diagram, when it ran far enough to draw one. */
  diagram(doc: D): Diagram | undefined;
  /** Its key observations, when it ran far enough to have them; `e` for what did not run. */
  observations(doc: D, e: Outcomes): Rows | undefined;
  /**
   * Its evidence for question 3: `about` names it when missing, `evidence` gives it when this run
   * has it.
   */
  q3?: { about: string; evidence(doc: D): string[] | undefined };
}

/** An experiment's part of the report, from what it writes for it. */
export function experimentPart<D>(def: PartOf<D>): ExperimentPart {
  // Its document when it ran; none (or a null one, in an invalid report) gives nothing.
  const doc = (e: Outcomes) => ran<D>(e[def.key]);
  const part: ExperimentPart = {
    title: def.title,
    diagram: (e) => {
      const d = doc(e);
      return d ? def.diagram(d) : undefined;
    },
    observations: (e) => {
      const d = doc(e);
      return d ? def.observations(d, e) : undefined;
    },
  };
  const q3 = def.q3;
  if (q3) {
    part.q3 = (e) => {
      const d = doc(e);
      const evidence = d ? q3.evidence(d) : undefined;
      return evidence
        ? { evidence, missing: [] }
        : { evidence: [], missing: [`${q3.about}: ${notRun(def.key, e[def.key])}`] };
    };
  }
  return part;
}

/** What an experiment contributes to the report, each part from this run's outcomes. */
export interface ExperimentPart {
  /** Its section's heading. */
  title: string;
  /** Its sequence diagram, when it ran far enough to draw one. */
  diagram(e: Outcomes): Diagram | undefined;
  /** Its key observations, when it ran far enough to have them. */
  observations(e: Outcomes): Rows | undefined;
  /** Its evidence for question 3 (why LPC needs ports), if it gives any. */
  q3?(e: Outcomes): Evidence;
}

/** One experiment's section: its diagram and observations, or why there are none. */
export type Section =
  | { title: string; missing: string }
  | { title: string; diagram: Diagram; observations: Rows };

/** The report as both renderers draw it. */
export interface ReportView {
  /** The title. */
  title: string;
  /** The line under it: when and where. */
  line: string;
  /** The status table: each experiment, its status, and (the one place it is given) why. */
  status: [string, string, string][];
  /** Each experiment's section, in the lab's order. */
  sections: Section[];
  /** The answers, by key (`q1`...). */
  answers: [string, Answer][];
}
