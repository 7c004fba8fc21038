/**
 * Experiment 3's `--json` document (schema `deno-lpc/exp3@2`): the transport chosen and one run
 * per transport, each with the debugger's events, the client's beats, the freezes and the
 * server half's timeline.
 *
 * @module
 */

import type { HandledEvent, LpcEvent } from "../../mod.ts";
import type { InjectedThread } from "./injected_threads.ts";
import type { ClientEnd } from "../exp2/exp2_lifecycle.ts";
import type { Transport, TransportRuns } from "../_transport.ts";

/** The schema of {@link Exp3Document}. */
export const EXP3_SCHEMA = "deno-lpc/exp3@2";

/** One run of the experiment: its server half over one transport. */
export interface Exp3Run {
  /** The transport of the server half. */
  transport: Transport;
  /** Options. */
  options?: { holdMs: number; end: "detach" | "kill" };
  /** Where it ran. */
  environment?: { pid: number; mainThread: number; wine: string | null; elevated: boolean };
  /** The debugger: its thread, every event, the threads it injected. */
  debugger?: {
    thread: number;
    events: (Omit<HandledEvent, "at"> & { t: number })[];
    injectedThreads: InjectedThread[];
    ended: string | undefined;
  };
  /** The client: its pid, each beat's time (ms since the start), its exit code. */
  client?: {
    pid: number;
    heartbeats: number[];
    exitCode: number | undefined;
    exitCodeHex?: string;
    lpcReplies: number;
    /** Set when it had not exited by itself in time and was terminated (only while alive). */
    end?: ClientEnd;
  };
  /** Each held breakpoint and the longest silence of the client around it. */
  freeze?: { tid: number; heldMs: number; observedGapMs: number }[];
  /** The server's side. */
  server?: {
    pid: number;
    tid: number;
    exceptionPort: unknown;
    events: LpcEvent[];
    requestGapMs: number;
    clientDiedTids: number[];
    exceptions: number;
  };
  /** `ran`, or why the server half (over {@link transport}) was skipped. */
  serverHalf?: "ran" | { skipped: string };
  /** What this run showed, in sentences. */
  observations?: string[];
  /** What this run had to do without (e.g. the exception port), in sentences. */
  notes?: string[];
}

/** The `--json` document. */
export interface Exp3Document extends Partial<TransportRuns<Exp3Run>> {
  /** Always `deno-lpc/exp3@2`. */
  schema: typeof EXP3_SCHEMA;
  /** Whether it ran, or why not. */
  ran: boolean;
  /** Why it did not run. */
  reason?: string;
}
