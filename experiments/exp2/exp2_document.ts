/**
 * Experiment 2's `--json` document (schema `deno-lpc/exp2@2`): the transport chosen and one run
 * per transport, each with the server's timeline, the client's steps and how it ended, the
 * reading of the timeline and question 2's answer.
 *
 * @module
 */

import type { LpcEvent } from "../../mod.ts";
import type { Exp2Analysis } from "./exp2_analysis.ts";
import type { ClientEnd, VerdictOutcome } from "./exp2_lifecycle.ts";
import type { Transport, TransportRuns } from "../_transport.ts";

/** The schema of {@link Exp2Document}. */
export const EXP2_SCHEMA = "deno-lpc/exp2@2";

/** One run of the experiment, over one transport. */
export interface Exp2Run {
  /** The transport of this run (the exception port is a port of this transport). */
  transport: Transport;
  /** The options. */
  options?: { register: boolean; reply: string; clientExits: boolean };
  /** Where it ran. */
  environment?: {
    pid: number;
    user: string;
    elevated: boolean;
    wine: string | null;
    alpc: string | null;
  };
  /** The server thread's SYSTEM token. */
  system?: unknown;
  /** How the exception port was set. */
  exceptionPort?: unknown;
  /** The server: pid, thread, every event. */
  server?: { pid: number; tid: number; port: string; events: LpcEvent[] };
  /** The client: pid, its own steps, exit code, how it ended. */
  client?: {
    pid: number;
    steps: unknown[];
    exitCode: number | undefined;
    exitCodeHex?: string;
    /** How it ended, in words. */
    terminatedBy: string;
    /** How it ended: by itself, or terminated by the server (only while it was alive). */
    end?: ClientEnd;
    /** With `--reply not-handled`: what happened after the verdict (E5: WER decides). */
    afterNotHandled?: VerdictOutcome;
  };
  /** The reading of the timeline. */
  analysis?: Exp2Analysis;
  /** Question 2, answered from this run. */
  answer?: string;
}

/** The `--json` document. */
export interface Exp2Document extends Partial<TransportRuns<Exp2Run>> {
  /** Always `deno-lpc/exp2@2`. */
  schema: typeof EXP2_SCHEMA;
  /** Whether it ran, or why not. */
  ran: boolean;
  /** Why it did not run. */
  reason?: string;
}
