/**
 * What the lab report shows, before it is Markdown or HTML: what each experiment contributes (its
 * diagram, its observations, its evidence for question 3), and the view both renderers draw.
 *
 * @module
 */

import type { Diagram } from "./lab_diagram.ts";
import type { Answer, ExperimentKey, Outcomes } from "./report_schema.ts";
import { notRun, ran } from "./report_outcomes.ts";
import { runsOf, type Transport, TRANSPORT_LABEL } from "../_transport.ts";

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
 * What an experiment writes for the report, each piece from one run of it (when it ran): with
 * `perTransport`, the document holds one run per transport (`runs`) and each gets its own
 * diagram and observations; otherwise the document is the one run. {@link experimentPart} makes
 * the {@link ExperimentPart} the lab assembles.
 */
export interface PartOf<D> {
  /** The experiment. */
  key: ExperimentKey;
  /** Its section's heading. */
  title: string;
  /** Its document holds one run per transport (`{ transport, runs: { lpc?, alpc? } }`). */
  perTransport?: boolean;
  /** A run's sequence diagram, when it ran far enough to draw one. */
  diagram(run: D): Diagram | undefined;
  /** A run's key observations, when it ran far enough to have them; `e` for what did not run. */
  observations(run: D, e: Outcomes): Rows | undefined;
  /** A run's graph (a Mermaid flowchart), or why it has none; `e` for what ran beside it. */
  graph?(run: D, e: Outcomes): ShownGraph;
  /**
   * Its evidence for question 3: `about` names it when missing, `evidence` gives it (from one
   * run) when this run has it.
   */
  q3?: { about: string; evidence(run: D): string[] | undefined };
}

/** One run's diagram and observations, with its transport when the experiment has several. */
export interface Shown {
  /** The transport of the run (per-transport experiments). */
  transport?: Transport;
  /** Its diagram. */
  diagram: Diagram;
  /** Its observations. */
  observations: Rows;
  /** Its graph, or why it has none (the ports walk: who talks to whom). */
  graph?: ShownGraph;
}

/** A graph in the report: a Mermaid flowchart and its heading, or why there is none. */
export type ShownGraph = { title: string } & ({ mermaid: string } | { missing: string });

/** The runs of an experiment's document: by transport, or the document itself. */
function runsIn<D>(def: PartOf<D>, doc: unknown): [Transport | undefined, D][] {
  if (!def.perTransport) return [[undefined, doc as D]];
  return runsOf(doc as { runs?: Partial<Record<Transport, D>> });
}

/** `exp1 (ALPC): ...`: the evidence of one run, named by its transport when it has one. */
const byTransport = (t: Transport | undefined, line: string) =>
  t === undefined ? line : line.replace(/^(\w+):/, `$1 (${TRANSPORT_LABEL[t]}):`);

/** An experiment's part of the report, from what it writes for it. */
export function experimentPart<D>(def: PartOf<D>): ExperimentPart {
  // Its runs when it ran; none (or a null document, in an invalid report) gives nothing.
  const runs = (e: Outcomes) => {
    const d = ran<unknown>(e[def.key]);
    return d ? runsIn(def, d) : [];
  };
  const shown = (e: Outcomes): Shown[] =>
    runs(e).flatMap(([transport, r]) => {
      const diagram = def.diagram(r);
      if (!diagram) return [];
      return [{
        ...(transport ? { transport } : {}),
        diagram,
        observations: def.observations(r, e) ?? [],
        ...(def.graph ? { graph: def.graph(r, e) } : {}),
      }];
    });
  const part: ExperimentPart = {
    title: def.title,
    shown,
    diagram: (e) => shown(e)[0]?.diagram,
    observations: (e) => {
      const first = runs(e)[0];
      return first ? def.observations(first[1], e) : undefined;
    },
  };
  const q3 = def.q3;
  if (q3) {
    part.q3 = (e) => {
      const evidence = runs(e).flatMap(([t, r]) =>
        (q3.evidence(r) ?? []).map((line) => byTransport(t, line))
      );
      return evidence.length
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
  /** Each run's diagram and observations (one per transport it ran over). */
  shown(e: Outcomes): Shown[];
  /** Its (first run's) sequence diagram, when it ran far enough to draw one. */
  diagram(e: Outcomes): Diagram | undefined;
  /** Its (first run's) key observations, when it ran far enough to have them. */
  observations(e: Outcomes): Rows | undefined;
  /** Its evidence for question 3 (why LPC needs ports), if it gives any. */
  q3?(e: Outcomes): Evidence;
}

/** One experiment's section: each run's diagram and observations, or why there are none. */
export type Section =
  | { title: string; missing: string }
  | { title: string; shown: Shown[] };

/** LPC and ALPC side by side: a row per thing compared, a column per transport, a mark. */
export interface SideBySide {
  /** The heading. */
  title: string;
  /** What the table is. */
  line: string;
  /** Each row: what is compared, the LPC value, the ALPC value, `differs` when they differ. */
  rows: [string, string, string, string][];
}

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
  /** LPC and ALPC side by side. */
  sideBySide: SideBySide;
  /** The answers, by key (`q1`...). */
  answers: [string, Answer][];
}
