/**
 * Reading the experiments' outcomes for the report: the document of one that ran, and why one did
 * not, said once (in the status table) and referred to everywhere else.
 *
 * @module
 */

import { type ExperimentKey, EXPERIMENTS, type Outcome, type Outcomes } from "./report_schema.ts";

/** The experiment's own document, when it ran. */
export const ran = <T>(
  o: Outcome | undefined,
): T | undefined => (o?.status === "ran" ? (o.result as T) : undefined);

/**
 * An experiment that did not run, named with its status only: why is said once, in the status
 * table at the top of the report.
 */
export const notRun = (key: string, o: Outcome | undefined): string =>
  `${key} did not run here (${o?.status ?? "missing"})`;

/**
 * An outcome's reason as the report shows it (once, in the status table): without the script's
 * own `<script>: not supported here:` prefix, which the row's experiment and status already say.
 */
export function reasonOf(o: Outcome): string {
  const r = o.reason ?? "";
  return o.status === "skipped" ? r.replace(/^\S+: not supported here: /, "") : r;
}

/** The experiment (other than `self`) that did not run for exactly this reason, if any. */
export function sameReasonAs(
  e: Outcomes,
  self: ExperimentKey,
  reason: string,
): ExperimentKey | undefined {
  return EXPERIMENTS.find((k) => k !== self && e[k].status !== "ran" && reasonOf(e[k]) === reason);
}

// An NtError message: `<call> failed: <NAME> (0x........): <hint>` (ffi/status.ts).
const HINT = /(\b[A-Z][A-Z0-9_]+ \(0x[0-9A-F]{8}\)): (.+)$/;

/**
 * A reason shown beside the status table (a sub-step that was skipped), without the NtError hint
 * when the table already gives the same one: the failure stays, its advice is not repeated.
 */
export function withoutTableHint(e: Outcomes, reason: string): string {
  const hint = HINT.exec(reason)?.[2];
  const inTable = hint !== undefined &&
    EXPERIMENTS.some((k) => e[k].status !== "ran" && HINT.exec(reasonOf(e[k]))?.[2] === hint);
  return inTable ? reason.replace(HINT, "$1") : reason;
}
