/**
 * Experiment 1 in the lab report: its diagram (the client denied, the server reading for it), its
 * observations, and its evidence for question 3 (per-client connections and impersonation).
 *
 * @module
 */

import type { Exp1Run } from "./exp1_document.ts";
import { TRANSPORT_LABEL } from "../_transport.ts";
import type { Diagram, Step } from "../lab/lab_diagram.ts";
import { type ExperimentPart, experimentPart } from "../lab/report_view.ts";

type ServerEvent = NonNullable<Exp1Run["server"]>["events"][number];

/** The arrow a server event draws. */
function eventStep(e: ServerEvent): Step {
  const who = e.tid !== undefined ? ` tid ${e.tid}` : "";
  switch (e.event) {
    case "accept":
      return {
        from: "K",
        to: "S",
        label: `LPC_CONNECTION_REQUEST from${who}, accepted${
          e.context ? ` with PortContext ${e.context}` : ""
        }`,
        kind: "message",
      };
    case "LPC_REQUEST":
      return {
        from: "K",
        to: "S",
        label: `LPC_REQUEST msg ${e.messageId} from${who}`,
        kind: "message",
      };
    case "reply":
      return {
        from: "S",
        to: "K",
        label: `reply msg ${e.messageId}: ${e.note ?? ""}`,
        kind: "reply",
      };
    default:
      return { from: "K", to: "S", label: `${e.event}${who}`, kind: "message" };
  }
}

function diagram(doc: Exp1Run): Diagram {
  const c = doc.client!;
  const steps: Step[] = [
    {
      note: `secret: ${
        doc.lab!.sddl
      }; client: ${c.identity.integrity}, Administrators ${c.identity.administrators}`,
      over: ["C", "K"],
    },
    { from: "C", to: "K", label: "NtCreateFile(secret) as the client", kind: "call" },
    { from: "K", to: "C", label: c.direct?.name ?? "not tried", kind: "reply" },
    ...doc.server!.events.slice(0, 12).map(eventStep),
    {
      from: "K",
      to: "C",
      label: `${
        doc.transport === "alpc" ? "reply (NtAlpcSendWaitReceivePort)" : "LPC_REPLY"
      }: ${c.viaServer?.name}${c.viaServer?.bytes ? `, ${c.viaServer.bytes} bytes` : ""}`,
      kind: "reply",
    },
    {
      note: doc.mode === "impersonate"
        ? "server impersonated the client: the kernel checked the client's token"
        : "server read as itself: a confused deputy",
      over: ["S"],
    },
  ];
  return {
    title: `Experiment 1 over ${TRANSPORT_LABEL[doc.transport]} (${doc.mode})`,
    participants: [{ id: "C", label: `client (pid ${c.identity.pid})` }, {
      id: "K",
      label: "kernel",
    }, { id: "S", label: `server (pid ${doc.server!.pid})` }],
    steps,
  };
}

/** Experiment 1's part of the report. */
export const EXP1_PART: ExperimentPart = experimentPart<Exp1Run>({
  key: "exp1",
  title: "Experiment 1: a privileged server reads for an unprivileged client",
  perTransport: true,
  diagram: (x1) => x1.client && x1.server ? diagram(x1) : undefined,
  observations: (x1) =>
    x1.findings && [
      ["transport", TRANSPORT_LABEL[x1.transport]],
      ["mode", x1.mode!],
      ["direct open by the restricted client", x1.client!.direct?.name ?? "-"],
      [
        "the same bytes through the server",
        `${x1.findings.serverStatus}, ${x1.findings.servedBytes} bytes`,
      ],
      ["hostile requests refused", `${x1.findings.probesRefused} of ${x1.findings.probes}`],
    ],
  q3: {
    about: "connection and impersonation evidence",
    evidence: (x1) =>
      x1.client && [
        `exp1: a per-client connection with a kernel-stamped ClientId (pid ${x1.client.identity.pid}) and impersonation (${x1.mode}: ${x1.findings?.serverStatus})`,
      ],
  },
});
