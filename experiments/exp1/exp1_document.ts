/**
 * Experiment 1's `--json` document (schema `deno-lpc/exp1@2`): the transport chosen and one run
 * per transport, each with its lab, port, server timeline, client report, findings and
 * explanation.
 *
 * @module
 */

import type { LpcEvent } from "../../mod.ts";
import type { ClientDocument } from "./exp1_attempts.ts";
import type { PortInfo, Transport, TransportRuns } from "../_transport.ts";

export type { PortInfo } from "../_transport.ts";

/** The schema of {@link Exp1Document}. */
export const EXP1_SCHEMA = "deno-lpc/exp1@2";

/** One line of the merged timeline. */
export interface TimelineEntry {
  /** Milliseconds since the experiment started. */
  t: number;
  /** `client` or `server`. */
  side: "client" | "server";
  /** What happened. */
  event: string;
  /** Process and thread. */
  pid?: number;
  tid?: number;
  /** MessageId and lengths, for messages. */
  messageId?: number;
  dataLength?: number;
  totalLength?: number;
  /** Detail. */
  note?: string;
}

/** One run of the experiment, over one transport. */
export interface Exp1Run {
  /** The transport of this run. */
  transport: Transport;
  /** `confused-deputy` or `impersonate`. */
  mode?: "confused-deputy" | "impersonate";
  /** Where it ran. */
  environment?: {
    pid: number;
    user: string;
    elevated: boolean;
    integrity: string;
    wine: string | null;
  };
  /** The lab: folders, files and their DACLs as requested and as stored (removed afterwards). */
  lab?: {
    folder: string;
    secret: string;
    sddl: string;
    folderSddl: string;
    folderStored: string;
    drop: string;
    dropSddl: string;
    dropStored: string;
    vault: string;
    vaultFile: string;
    vaultSddl: string;
  };
  /** The port. */
  port?: { name: string; sddl: string };
  /** The server's identity and its events. */
  server?: { pid: number; tid: number; events: LpcEvent[] };
  /**
   * What `NtAlpcQueryInformation(AlpcBasicInformation)` shows of the server's connection port
   * (the port's flags: on a legacy port, the LPC flag), or why it could not be asked.
   */
  portInfo?: PortInfo;
  /** The client's own report. */
  client?: ClientDocument & { exitCode: number | undefined; token: string };
  /** Both sides, in time order. */
  timeline?: TimelineEntry[];
  /** What the run showed. */
  findings?: {
    directDenied: boolean;
    servedBytes: number;
    serverStatus: string;
    /** A read larger than one reply: through the port view, its SHA-256 checked (exp1_view.ts). */
    view?: { offset: number; length: number; sha256: string; matches: boolean };
    probesRefused: number;
    probes: number;
    /** The hostile junction request: made, and which check refused it. */
    junction: {
      made: boolean;
      createStatus?: string;
      status?: string;
      refused?: boolean;
      refusedBy?: string;
      impersonated?: boolean;
    };
  };
  /** The explanation, from this run's evidence. */
  explanation?: string;
}

/** The `--json` document. */
export interface Exp1Document extends Partial<TransportRuns<Exp1Run>> {
  /** Always `deno-lpc/exp1@2`. */
  schema: typeof EXP1_SCHEMA;
  /** Whether it ran, or why not. */
  ran: boolean;
  /** Why it did not run (with exit code 3 or 1). */
  reason?: string;
}
