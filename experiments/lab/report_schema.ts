/**
 * `report.json`'s shape, the `deno-lpc/lab@2` schema: the experiments and their outcomes, why
 * each transport was or was not observed, the three answers, and the validator that checks a
 * report against it.
 *
 * @module
 */

import type { BeaconStatus } from "./lab_beacon_run.ts";

/** The experiments, in the order the lab runs them. */
export const EXPERIMENTS = ["ports", "exp1", "exp2", "exp3"] as const;
/** An experiment's key. */
export type ExperimentKey = typeof EXPERIMENTS[number];

/** How one experiment went. */
export interface Outcome {
  /**
   * `ran`, `skipped` (this system cannot: exit 3), `failed`, or `interrupted` (Ctrl-C ended the
   * lab while it ran, or before it started).
   */
  status: "ran" | "skipped" | "failed" | "interrupted";
  /** Why it was skipped, failed or interrupted. */
  reason?: string;
  /** The experiment's own JSON document. */
  result?: unknown;
  /** How long it took (s). */
  seconds?: number;
  /**
   * The ports walk only: the lab's beacon (`lab_beacon.ts`) that ran beside it, its ports and
   * processes, or why it did not start.
   */
  beacon?: BeaconStatus;
}

/** Every experiment's outcome, by key. */
export type Outcomes = Record<ExperimentKey, Outcome>;

/** One answered question. */
export interface Answer {
  /** The question. */
  question: string;
  /** The answer, in prose. */
  answer: string;
  /** Whether it rests on evidence observed in this run. */
  observed: boolean;
  /** The evidence cited, from this run. */
  evidence: string[];
  /** Evidence this run could not provide. */
  missing: string[];
}

/** The schema of {@link LabReport}. */
export const LAB_SCHEMA = "deno-lpc/lab@2";

/** `report.json`. */
export interface LabReport {
  /** Always `deno-lpc/lab@2`. */
  schema: typeof LAB_SCHEMA;
  /** When (ISO 8601, UTC). */
  generatedAt: string;
  /** Where. */
  environment: {
    os: string;
    build: string;
    deno: string;
    elevated: boolean | null;
    wine: string | null;
  };
  /** What each experiment needs and had. */
  prerequisites: Record<string, unknown>;
  /** Each experiment. */
  experiments: Outcomes;
  /**
   * Why each transport was not observed (`null`: this system has it, and the experiments ran over
   * it): the lab's probe's `unavailable()` reason.
   */
  transports: { lpc: string | null; alpc: string | null };
  /** The three questions. */
  answers: { q1: Answer; q2: Answer; q3: Answer };
}

/** Checks a report against the `deno-lpc/lab@2` schema; returns the problems (empty = valid). */
export function validateLabReport(r: unknown): string[] {
  const o = r as Record<string, unknown>;
  if (typeof o !== "object" || o === null) return ["not an object"];
  const p: string[] = [];
  if (o.schema !== LAB_SCHEMA) p.push(`schema must be ${LAB_SCHEMA}`);
  if (typeof o.generatedAt !== "string" || Number.isNaN(Date.parse(o.generatedAt))) {
    p.push("generatedAt must be an ISO date");
  }
  p.push(...environmentProblems(o.environment as Record<string, unknown> | undefined));
  p.push(...experimentProblems(o.experiments as Record<string, Outcome> | undefined));
  p.push(...transportProblems(o.transports as Record<string, unknown> | undefined));
  p.push(...answerProblems(o.answers as Record<string, Answer> | undefined));
  return p;
}

function environmentProblems(env: Record<string, unknown> | undefined): string[] {
  if (!env) return ["environment missing"];
  const p: string[] = [];
  for (const k of ["os", "build", "deno"]) {
    if (typeof env[k] !== "string") p.push(`environment.${k} must be a string`);
  }
  if (!(typeof env.elevated === "boolean" || env.elevated === null)) {
    p.push("environment.elevated must be a boolean or null");
  }
  if (!(typeof env.wine === "string" || env.wine === null)) {
    p.push("environment.wine must be a string or null");
  }
  return p;
}

function experimentProblems(ex: Record<string, Outcome> | undefined): string[] {
  if (!ex) return ["experiments missing"];
  const p: string[] = [];
  for (const k of EXPERIMENTS) {
    const x = ex[k];
    if (!x) p.push(`experiments.${k} missing`);
    else if (!["ran", "skipped", "failed", "interrupted"].includes(x.status)) {
      p.push(`experiments.${k}.status invalid`);
    } else if (x.status !== "ran" && typeof x.reason !== "string") {
      p.push(`experiments.${k}.reason required when ${x.status}`);
    } else if (x.status === "ran" && (typeof x.result !== "object" || x.result === null)) {
      p.push(`experiments.${k}.result required when ran`);
    } else if (x.status === "ran" && k !== "ports") p.push(...runProblems(k, x.result));
  }
  return p;
}

/** A per-transport document that ran: its transport, and one run per transport it names. */
function runProblems(k: string, result: unknown): string[] {
  const d = result as { transport?: unknown; runs?: Record<string, unknown> };
  const choices: Record<string, string[]> = { lpc: ["lpc"], alpc: ["alpc"], both: ["lpc", "alpc"] };
  const want = typeof d.transport === "string" ? choices[d.transport] : undefined;
  if (!want) return [`experiments.${k}.result.transport must be lpc, alpc or both`];
  if (typeof d.runs !== "object" || d.runs === null) {
    return [`experiments.${k}.result.runs missing`];
  }
  return want.flatMap((t) =>
    typeof d.runs![t] === "object" && d.runs![t] !== null
      ? []
      : [`experiments.${k}.result.runs.${t} missing`]
  );
}

function transportProblems(t: Record<string, unknown> | undefined): string[] {
  if (typeof t !== "object" || t === null) return ["transports missing"];
  return ["lpc", "alpc"].flatMap((k) =>
    typeof t[k] === "string" || t[k] === null ? [] : [`transports.${k} must be a string or null`]
  );
}

function answerProblems(ans: Record<string, Answer> | undefined): string[] {
  if (!ans) return ["answers missing"];
  const p: string[] = [];
  for (const k of ["q1", "q2", "q3"]) {
    const a = ans[k];
    if (!a || typeof a.answer !== "string" || a.answer.length < 40) {
      p.push(`answers.${k}.answer missing or empty`);
    } else if (
      !Array.isArray(a.evidence) || !Array.isArray(a.missing) || typeof a.observed !== "boolean"
    ) p.push(`answers.${k} incomplete`);
    else if (!a.observed && a.missing.length === 0) {
      p.push(`answers.${k}: not observed but no missing evidence stated`);
    }
  }
  return p;
}
