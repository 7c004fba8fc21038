/**
 * LPC and ALPC side by side, from this run's documents: one table of observations, a row per
 * thing compared (where the server receives, how it tells clients apart, what the kernel stamps,
 * the port flags `NtAlpcQueryInformation` shows, impersonation, the exception port), a column per
 * transport, and the differences marked. A transport this run did not observe says so, and why
 * (the `unavailable()` reason the lab's probe gave, or the experiment's own outcome).
 *
 * @module
 */

import type { Exp1Run } from "../exp1/exp1_document.ts";
import type { LpcEvent } from "../../mod.ts";
import type { Outcomes } from "./report_schema.ts";
import { notRun, ran } from "./report_outcomes.ts";
import type { SideBySide } from "./report_view.ts";
import { runsOf, type Transport, TRANSPORT_LABEL, TRANSPORTS } from "../_transport.ts";

/** Why each transport was not observed in this lab run (`null`: it could run). */
export type TransportReasons = Record<Transport, string | null>;

/** A cell: the mechanism (compared across the columns) and what this run saw of it. */
interface Cell {
  /** The mechanism, in words (the part compared). */
  how: string;
  /** This run's evidence for it. */
  seen?: string;
}

/** One row: what is compared, and each transport's cell from its run (undefined: not observed). */
interface Row {
  what: string;
  cell(run: Exp1Run): Cell | undefined;
}

const first = (events: LpcEvent[], kind: string) => events.find((e) => e.event === kind);
const requests = (events: LpcEvent[]) =>
  events.filter((e) => e.event === "LPC_REQUEST" || e.event === "request");

const RECEIVES: Record<Transport, string> = {
  lpc: "NtReplyWaitReceivePort on the connection port: connection requests, requests and " +
    "kernel messages on one queue, the reply to the previous request sent in the same call",
  alpc: "NtAlpcSendWaitReceivePort on the connection port: the same queue, the reply and the " +
    "receive in one call, with receive attributes beside the message",
};
const TELLS_APART: Record<Transport, string> = {
  lpc: "the ClientId in each message's header, and the PortContext given to " +
    "NtAcceptConnectPort, returned with each message of that connection",
  alpc: "the PortContext given to NtAlpcAcceptConnectPort, returned in the context attribute " +
    "(ALPC_CONTEXT_ATTR) of each message, beside the header's ClientId",
};
const STAMPS: Record<Transport, string> = {
  lpc: "PORT_MESSAGE: ClientId (sender pid and tid), MessageId, type, lengths",
  alpc: "PORT_MESSAGE as for LPC, plus the attributes asked for: context (PortContext, " +
    "MessageId, Sequence), security, token",
};
const IMPERSONATES: Record<Transport, string> = {
  lpc: "NtImpersonateClientOfPort(port, the request's message)",
  alpc: "NtAlpcImpersonateClientOfPort(port, the request's message), with the client's " +
    "security QoS",
};

const ROWS: Row[] = [
  {
    what: "where the server receives",
    cell: (r) => {
      const n = requests(r.server?.events ?? []).length;
      return r.server && {
        how: RECEIVES[r.transport],
        seen: `${n} request${n === 1 ? "" : "s"} received`,
      };
    },
  },
  {
    what: "how it tells clients apart",
    cell: (r) => {
      const a = first(r.server?.events ?? [], "accept");
      return r.server && {
        how: TELLS_APART[r.transport],
        ...(a
          ? { seen: `connection of pid ${a.pid} accepted, PortContext ${a.context ?? "-"}` }
          : {}),
      };
    },
  },
  {
    what: "what the kernel stamps",
    cell: (r) => {
      const q = requests(r.server?.events ?? [])[0] as
        | (LpcEvent & { attributes?: string[] })
        | undefined;
      const attributes = q?.attributes?.length ? `, attributes ${q.attributes.join(", ")}` : "";
      return r.server && {
        how: STAMPS[r.transport],
        ...(q ? { seen: `ClientId ${q.pid}.${q.tid}, MessageId ${q.messageId}${attributes}` } : {}),
      };
    },
  },
  {
    what: "the port's flags (NtAlpcQueryInformation, AlpcBasicInformation)",
    cell: (r) => {
      const p = r.portInfo;
      if (!p) return undefined;
      if ("unavailable" in p) return { how: "not asked", seen: p.unavailable };
      return {
        how: p.names.length ? p.names.join(" | ") : "no flag named",
        seen: `Flags ${p.flagsHex} on the ${r.transport === "lpc" ? "legacy" : "ALPC"} port`,
      };
    },
  },
  {
    what: "impersonation (safe mode)",
    cell: (r) =>
      r.findings && {
        how: IMPERSONATES[r.transport],
        seen: `${r.mode}: the server's read answered ${r.findings.serverStatus}`,
      },
  },
];

const show = (c: Cell) => (c.seen ? `${c.how} (seen: ${c.seen})` : c.how);

/**
 * Why a transport has no exp1 run in this report. A transport the experiments themselves report
 * missing (LPC, when exp1 did not run) is referred to their outcome, said once in the status
 * table; ALPC, which no experiment was asked to run when the system lacks it, gets the probe's
 * reason here.
 */
function whyNot(t: Transport, e: Outcomes, reasons: Partial<TransportReasons>): string {
  const o = e.exp1;
  const label = `${TRANSPORT_LABEL[t]} was not observed`;
  const reason = reasons[t];
  if (t === "lpc" && o.status !== "ran") return `${label}: ${notRun("exp1", o)}`;
  if (reason) return `${label}: ${reason}`;
  return o.status === "ran"
    ? `${label}: exp1 did not run over it`
    : `${label}: ${notRun("exp1", o)}`;
}

/** The side-by-side table of this run. */
export function sideBySide(e: Outcomes, reasons: Partial<TransportReasons> = {}): SideBySide {
  const doc = ran<{ runs?: Partial<Record<Transport, Exp1Run>> }>(e.exp1);
  const runs = new Map(doc ? runsOf(doc) : []);
  const missing = TRANSPORTS.filter((t) => !runs.has(t));
  const rows = ROWS.map((row): [string, string, string, string] => {
    const cells = TRANSPORTS.map((t) => {
      const r = runs.get(t);
      return r ? row.cell(r) : undefined;
    });
    const [lpc, alpc] = cells;
    const mark = lpc && alpc ? (lpc.how === alpc.how ? "same" : "differs") : "not compared";
    const text = (c: Cell | undefined, t: Transport) =>
      c ? show(c) : runs.has(t) ? "not recorded" : "not observed";
    return [row.what, text(lpc, "lpc"), text(alpc, "alpc"), mark];
  });
  return {
    title: "LPC and ALPC side by side",
    line: missing.length
      ? `${missing.map((t) => whyNot(t, e, reasons)).join(". ")}.`
      : "Experiment 1 ran over both transports; the rows are its observations.",
    rows,
  };
}
