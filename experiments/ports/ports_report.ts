/**
 * The ports walk in the lab report: its diagram, its observations, and question 1 answered from
 * what it listed.
 *
 * @module
 */

import type { PortsDocument } from "./list_ports.ts";
import type { Diagram, Step } from "../lab/lab_diagram.ts";
import type { Answer, Outcomes } from "../lab/report_schema.ts";
import { type ExperimentPart, experimentPart, type Rows } from "../lab/report_view.ts";
import { notRun, ran, withoutTableHint } from "../lab/report_outcomes.ts";
import { notObservedAnswer, QUESTIONS, REFERENCE } from "../lab/questions.ts";
import { labGraph } from "./graph_format.ts";

const PORT_TYPES = ["ALPC Port", "Port", "WaitablePort"];

function diagram(doc: PortsDocument): Diagram {
  const types = new Map<string, number>();
  for (const o of doc.objects) types.set(o.type, (types.get(o.type) ?? 0) + 1);
  const top = [...types].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([t, n]) => `${n} ${t}`).join(
    ", ",
  );
  const steps: Step[] = [
    { from: "C", to: "K", label: `NtOpenDirectoryObject(${doc.root})`, kind: "call" },
    {
      from: "C",
      to: "K",
      label: "NtQueryDirectoryObject, then recurse into each Directory",
      kind: "call",
    },
    {
      from: "K",
      to: "C",
      label: `${doc.summary.objects} objects listed${top ? `: ${top}` : ""}`,
      kind: "reply",
    },
    {
      note:
        `${doc.summary.ports} port objects (ALPC Port / Port / WaitablePort), ${doc.summary.errors} unreadable`,
      over: ["C", "K"],
    },
  ];
  if (doc.servers) {
    steps.push({
      from: "C",
      to: "K",
      label: "NtQuerySystemInformation(SystemExtendedHandleInformation)",
      kind: "call",
    }, {
      from: "K",
      to: "C",
      label: doc.servers.skipped
        ? "attribution skipped (why: in the table below)"
        : `${doc.servers.portHandles} port handles, ${doc.summary.attributed} named ports attributed`,
      kind: "reply",
    });
  }
  return {
    title: "Ports: walking the object namespace",
    participants: [{ id: "C", label: "list_ports (client)" }, {
      id: "K",
      label: "kernel (object manager)",
    }],
    steps,
  };
}

function observations(p: PortsDocument, e: Outcomes): Rows {
  return [
    ["objects listed", String(p.summary.objects)],
    ["port objects", String(p.summary.ports)],
    ["unreadable directories", String(p.summary.errors)],
    [
      "ports attributed to a server",
      p.servers
        ? (p.servers.skipped
          ? `skipped: ${withoutTableHint(e, p.servers.skipped)}`
          : String(p.summary.attributed))
        : "not asked",
    ],
  ];
}

/** Question 1 (how to see the LPC objects), answered from this run's walk. */
export function answerQ1(e: Outcomes): Answer {
  const ports = ran<PortsDocument>(e.ports);
  if (!ports) return notObservedAnswer("q1", [notRun("ports", e.ports)]);
  const portObjects = ports.objects.filter((o) => PORT_TYPES.includes(o.type));
  const evidence = [
    `list_ports walked ${ports.root} and listed ${ports.summary.objects} objects, ${ports.summary.errors} directories unreadable`,
    `${ports.summary.ports} port objects found`,
    ...portObjects.slice(0, 5).map((o) =>
      `${o.path} (${o.type})${
        o.server ? ` served by ${o.server.image ?? "?"} pid ${o.server.pid}` : ""
      }`
    ),
  ];
  const missing = ports.summary.ports === 0
    ? [
      "no port object exists on this system (Wine implements no LPC), so no port was observed here",
    ]
    : [];
  if (ports.servers?.skipped) {
    // Its reason is in the ports table, once.
    missing.push("which process serves each port: the attribution was skipped");
  } else if (ports.servers) {
    evidence.push(
      `${ports.summary.attributed} ports attributed from ${ports.servers.portHandles} port handles`,
    );
  }
  return {
    question: QUESTIONS.q1,
    answer: `${REFERENCE.q1} This run did the walk; what it found is listed below.`,
    observed: ports.summary.ports > 0,
    evidence,
    missing,
  };
}

/** The ports walk's part of the report. */
export const PORTS_PART: ExperimentPart = experimentPart<PortsDocument>({
  key: "ports",
  title: "Ports (question 1)",
  diagram,
  observations,
  graph: (p, e) => ({
    title: "Who talks to whom (the lab's ports)",
    ...labGraph(p.graph, e.ports.beacon),
  }),
});
