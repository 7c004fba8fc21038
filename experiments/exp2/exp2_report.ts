/**
 * Experiment 2 in the lab report: its diagram (one connection, the exception port, the deaths),
 * its observations, question 2 answered from its messages, and its evidence for question 3.
 *
 * @module
 */

import type { LpcEvent } from "../../mod.ts";
import type { Exp2Document, Exp2Run } from "./exp2_document.ts";
import { runsOf, TRANSPORT_LABEL } from "../_transport.ts";
import type { Diagram, Step } from "../lab/lab_diagram.ts";
import type { Answer, Outcomes } from "../lab/report_schema.ts";
import { type ExperimentPart, experimentPart, type Rows } from "../lab/report_view.ts";
import { notRun, ran } from "../lab/report_outcomes.ts";
import { notObservedAnswer, QUESTIONS } from "../lab/questions.ts";

type Analysis = NonNullable<Exp2Run["analysis"]>;

/** The exceptions and hard errors the server was sent, each with its reply. */
function exceptionSteps(a: Analysis): Step[] {
  const steps: Step[] = [];
  for (const x of a.exceptions) {
    steps.push(
      {
        from: "C",
        to: "K",
        label: `NtRaiseException(${x.code}, FirstChance FALSE) tid ${x.tid}`,
        kind: "call",
      },
      { from: "K", to: "S", label: `LPC_EXCEPTION tid ${x.tid} (a request)`, kind: "message" },
      {
        from: "S",
        to: "K",
        label: `reply ${x.verdict} (${x.ours ? "the lab's exception" : "not the lab's"})`,
        kind: "reply",
      },
    );
  }
  for (const h of a.hardErrors ?? []) {
    steps.push({
      from: "K",
      to: "S",
      label: `LPC_ERROR_EVENT tid ${h.tid} ${h.status} (hard error)`,
      kind: "message",
    }, { from: "S", to: "K", label: `reply Response ${h.response}`, kind: "reply" });
  }
  return steps;
}

/** The client's death as the server saw it: each LPC_CLIENT_DIED, then LPC_PORT_CLOSED. */
function deathSteps(a: Analysis): Step[] {
  const shown = a.deaths.slice(0, 10);
  const steps: Step[] = shown.map((d) => ({
    from: "K",
    to: "S",
    label: `LPC_CLIENT_DIED tid ${d.tid} via ${d.via}${d.knownThread ? "" : " (never seen)"}`,
    kind: "message",
  }));
  if (a.deaths.length > shown.length) {
    steps.push({ note: `and ${a.deaths.length - shown.length} more LPC_CLIENT_DIED`, over: ["S"] });
  }
  steps.push(
    a.portClosed
      ? {
        from: "K",
        to: "S",
        label:
          `LPC_PORT_CLOSED on PortContext ${a.portClosed.context} (ClientId ${a.portClosed.clientId.pid}.${a.portClosed.clientId.tid})`,
        kind: "message",
      }
      : { note: "no LPC_PORT_CLOSED on the client's connection", over: ["S"] },
  );
  return steps;
}

function diagram(doc: Exp2Run): Diagram {
  const a = doc.analysis!;
  const connect = doc.transport === "alpc" ? "NtAlpcConnectPort" : "NtConnectPort";
  const steps: Step[] = [
    { from: "C", to: "K", label: connect, kind: "call" },
    {
      from: "K",
      to: "S",
      label: `LPC_CONNECTION_REQUEST (the only one), ${a.requests} requests follow`,
      kind: "message",
    },
    {
      from: "S",
      to: "K",
      label: `NtSetInformationProcess(ProcessExceptionPort) as SYSTEM`,
      kind: "call",
    },
    ...exceptionSteps(a),
    {
      note: `client ended by ${doc.client!.terminatedBy}, exit ${doc.client!.exitCodeHex ?? "?"}`,
      over: ["C", "K"],
    },
    ...deathSteps(a),
  ];
  return {
    title: `Experiment 2 over ${TRANSPORT_LABEL[doc.transport]}: the exception port`,
    participants: [{ id: "C", label: `client (pid ${a.pid})` }, {
      id: "K",
      label: "kernel (PspExitThread)",
    }, { id: "S", label: `server (pid ${doc.server!.pid})` }],
    steps,
  };
}

function observations(x2: Exp2Run, a: Analysis): Rows {
  const via = (how: string) => String(a.deaths.filter((d) => d.via === how).length);
  return [
    ["transport (the exception port's kind)", TRANSPORT_LABEL[x2.transport]],
    ["connection requests", String(a.connectionRequests)],
    [
      "LPC_EXCEPTION (first chance?)",
      a.exceptions.map((x) =>
        `${x.code} (${x.firstChance ? "first" : "second"} chance) -> ${x.verdict}${
          x.ours === undefined ? "" : x.ours ? " (the lab's own)" : " (not the lab's)"
        }`
      ).join("; ") || "none",
    ],
    ["LPC_ERROR_EVENT (hard errors)", String(a.hardErrors?.length ?? 0)],
    ["LPC_CLIENT_DIED via exception port", via("exception port")],
    ["LPC_CLIENT_DIED via termination port", via("termination port")],
    ["threads never seen before", String(a.unknownThreads.length)],
    [
      "LPC_PORT_CLOSED",
      a.portClosed
        ? `on PortContext ${a.portClosed.context}, ClientId ${a.portClosed.clientId.pid}.${a.portClosed.clientId.tid}, after every CLIENT_DIED: ${a.diedBeforeClosed}`
        : "not received on the client's connection",
    ],
    ["client exit code", `${x2.client!.exitCodeHex ?? "?"} (${x2.client!.terminatedBy})`],
    ...arrivedWith(x2),
  ];
}

/**
 * Over ALPC, what each kind of message arrived with: its PortContext and the receive attributes
 * the kernel marked valid (the ALPC server records them; the legacy calls have none).
 */
function arrivedWith(x2: Exp2Run): Rows {
  if (x2.transport !== "alpc") return [];
  const events = (x2.server?.events ?? []) as (LpcEvent & { attributes?: string[] })[];
  return ["LPC_REQUEST", "LPC_EXCEPTION", "LPC_CLIENT_DIED", "LPC_PORT_CLOSED"].flatMap((kind) => {
    const e = events.find((x) => x.event === kind && x.pid !== undefined);
    return e
      ? [[
        `${kind} arrived with`,
        `PortContext ${e.context ?? "-"}, attributes ${e.attributes?.join(", ") || "none"}`,
      ] as [string, string]]
      : [];
  });
}

/** Question 2 (how LPC_CLIENT_DIED came without a second connection), from exp2's messages. */
export function answerQ2(e: Outcomes): Answer {
  const doc = ran<Exp2Document>(e.exp2);
  const x2 = doc ? runsOf(doc)[0]?.[1] : undefined;
  if (!x2?.analysis) return notObservedAnswer("q2", [notRun("exp2", e.exp2)]);
  const a = x2.analysis;
  return {
    question: QUESTIONS.q2,
    answer: x2.answer!,
    observed: a.deaths.length > 0,
    evidence: [
      `${a.connectionRequests} connection request from pid ${a.pid}`,
      ...a.deaths.slice(0, 8).map((d) =>
        `LPC_CLIENT_DIED tid ${d.tid} via ${d.via} (PortContext ${d.context})`
      ),
      a.portClosed
        ? `LPC_PORT_CLOSED on PortContext ${a.portClosed.context} with ClientId ${a.portClosed.clientId.pid}.${a.portClosed.clientId.tid}`
        : "no LPC_PORT_CLOSED on the client's connection",
    ],
    missing: a.deaths.length ? [] : ["no LPC_CLIENT_DIED was received in this run"],
  };
}

/** Experiment 2's part of the report. */
export const EXP2_PART: ExperimentPart = experimentPart<Exp2Run>({
  key: "exp2",
  title: "Experiment 2: the exception port and LPC_CLIENT_DIED",
  perTransport: true,
  diagram: (x2) => x2.analysis && x2.client && x2.server ? diagram(x2) : undefined,
  observations: (x2) => x2.analysis && observations(x2, x2.analysis),
  q3: {
    about: "exception-port evidence",
    evidence: (x2) => {
      const exc = x2.analysis?.exceptions[0];
      return x2.analysis && [
        `exp2: the exception port was itself an ${
          TRANSPORT_LABEL[x2.transport]
        } connection port, set with NtSetInformationProcess, which needed a SYSTEM token with SeTcbPrivilege on the server thread`,
        ...(exc
          ? [
            `exp2: the exception arrived as an LPC request (LPC_EXCEPTION from tid ${exc.tid}, second chance) that the faulting thread waited on until the server replied ${exc.verdict}`,
          ]
          : []),
        "exp2: one exception port per process: setting ours replaced the one csrss set for every Win32 process",
      ];
    },
  },
});
