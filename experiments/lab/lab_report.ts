/**
 * The lab report: from each experiment's own JSON document to `report.json`, `report.md` (Mermaid
 * sequence diagrams, observation tables, the three questions answered from this run's evidence)
 * and a self-contained `report.html`. Pure: tested on Linux from recorded documents.
 *
 * An experiment that did not run leaves its answer with the reference mechanism, clearly marked
 * "not observed here", and the list of missing evidence. Nothing is invented.
 *
 * @module
 */

import type { PortsDocument } from "../ports/list_ports.ts";
import type { Exp1Document } from "../exp1/exp1.ts";
import type { Exp2Document } from "../exp2/exp2.ts";
import type { Exp3Document } from "../exp3/exp3.ts";
import { checkMermaid, type Diagram, type Step, toMermaid, toSvg } from "./lab_diagram.ts";
import { countsText, eventText, exitCodeText, exp3Phases } from "../exp3/exp3_analysis.ts";

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
}

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

/** `report.json`. */
export interface LabReport {
  /** Always `deno-lpc/lab@1`. */
  schema: "deno-lpc/lab@1";
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
  experiments: Record<ExperimentKey, Outcome>;
  /** The three questions. */
  answers: { q1: Answer; q2: Answer; q3: Answer };
}

const QUESTIONS = {
  q1: "How can you see what LPC objects are created in the system?",
  q2:
    "The server received a single connection request from the client: how did the system manage to send the LPC_CLIENT_DIED notification too?",
  q3:
    "Why does LPC need separate port objects for messages between user-mode processes, instead of the mechanism used for dispatching exceptions?",
};

const ran = <T>(
  o: Outcome | undefined,
): T | undefined => (o?.status === "ran" ? (o.result as T) : undefined);
// Why an experiment did not run is said once, in the status table at the top of the report;
// everything else names the experiment and its status only.
const notRun = (key: string, o: Outcome | undefined) =>
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
function sameReasonAs(
  e: Record<ExperimentKey, Outcome>,
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
function withoutTableHint(e: Record<ExperimentKey, Outcome>, reason: string): string {
  const hint = HINT.exec(reason)?.[2];
  const inTable = hint !== undefined &&
    EXPERIMENTS.some((k) => e[k].status !== "ran" && HINT.exec(reasonOf(e[k]))?.[2] === hint);
  return inTable ? reason.replace(HINT, "$1") : reason;
}

// ---------------------------------------------------------------- diagrams

function portsDiagram(doc: PortsDocument): Diagram {
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
    });
    steps.push({
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

function exp1Diagram(doc: Exp1Document): Diagram {
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
  ];
  for (const e of doc.server!.events.slice(0, 12)) {
    const who = e.tid !== undefined ? ` tid ${e.tid}` : "";
    if (e.event === "accept") {
      steps.push({
        from: "K",
        to: "S",
        label: `LPC_CONNECTION_REQUEST from${who}, accepted`,
        kind: "message",
      });
    } else if (e.event === "LPC_REQUEST") {
      steps.push({
        from: "K",
        to: "S",
        label: `LPC_REQUEST msg ${e.messageId} from${who}`,
        kind: "message",
      });
    } else if (e.event === "reply") {
      steps.push({
        from: "S",
        to: "K",
        label: `reply msg ${e.messageId}: ${e.note ?? ""}`,
        kind: "reply",
      });
    } else steps.push({ from: "K", to: "S", label: `${e.event}${who}`, kind: "message" });
  }
  steps.push({
    from: "K",
    to: "C",
    label: `LPC_REPLY: ${c.viaServer?.name}${
      c.viaServer?.bytes ? `, ${c.viaServer.bytes} bytes` : ""
    }`,
    kind: "reply",
  });
  steps.push({
    note: doc.mode === "impersonate"
      ? "server impersonated the client: the kernel checked the client's token"
      : "server read as itself: a confused deputy",
    over: ["S"],
  });
  return {
    title: `Experiment 1 (${doc.mode})`,
    participants: [{ id: "C", label: `client (pid ${c.identity.pid})` }, {
      id: "K",
      label: "kernel",
    }, { id: "S", label: `server (pid ${doc.server!.pid})` }],
    steps,
  };
}

function exp2Diagram(doc: Exp2Document): Diagram {
  const a = doc.analysis!;
  const steps: Step[] = [
    { from: "C", to: "K", label: "NtConnectPort", kind: "call" },
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
  ];
  for (const x of a.exceptions) {
    steps.push({
      from: "C",
      to: "K",
      label: `NtRaiseException(${x.code}, FirstChance FALSE) tid ${x.tid}`,
      kind: "call",
    });
    steps.push({
      from: "K",
      to: "S",
      label: `LPC_EXCEPTION tid ${x.tid} (a request)`,
      kind: "message",
    });
    steps.push({
      from: "S",
      to: "K",
      label: `reply ${x.verdict} (${x.ours ? "the lab's exception" : "not the lab's"})`,
      kind: "reply",
    });
  }
  for (const h of a.hardErrors ?? []) {
    steps.push({
      from: "K",
      to: "S",
      label: `LPC_ERROR_EVENT tid ${h.tid} ${h.status} (hard error)`,
      kind: "message",
    });
    steps.push({ from: "S", to: "K", label: `reply Response ${h.response}`, kind: "reply" });
  }
  steps.push({
    note: `client ended by ${doc.client!.terminatedBy}, exit ${doc.client!.exitCodeHex ?? "?"}`,
    over: ["C", "K"],
  });
  const shown = a.deaths.slice(0, 10);
  for (const d of shown) {
    steps.push({
      from: "K",
      to: "S",
      label: `LPC_CLIENT_DIED tid ${d.tid} via ${d.via}${d.knownThread ? "" : " (never seen)"}`,
      kind: "message",
    });
  }
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
  return {
    title: "Experiment 2: the exception port and LPC_CLIENT_DIED",
    participants: [{ id: "C", label: `client (pid ${a.pid})` }, {
      id: "K",
      label: "kernel (PspExitThread)",
    }, { id: "S", label: `server (pid ${doc.server!.pid})` }],
    steps,
  };
}

function exp3Diagram(doc: Exp3Document): Diagram {
  const d = doc.debugger!;
  // Every count and arrow is of the events themselves, grouped by what caused them.
  const phases = exp3Phases(doc);
  const steps: Step[] = [
    { from: "D", to: "K", label: `DebugActiveProcess(${doc.client!.pid})`, kind: "call" },
    {
      from: "K",
      to: "D",
      label: `${countsText(phases.existing)}: the client as it already was (each continued)`,
      kind: "message",
    },
  ];
  const freeze = new Map((doc.freeze ?? []).map((f) => [f.tid, f]));
  const SHOWN = 6; // events drawn one by one per injected thread; the rest are counted
  for (const { thread: t, events } of phases.injected) {
    if (t.how === "remote-thread") {
      steps.push({
        from: "D",
        to: "K",
        label: `CreateRemoteThread(${t.startAddress}) kernel32!Sleep`,
        kind: "call",
      });
    } else if (t.how === "break") {
      steps.push({ from: "D", to: "K", label: "DebugBreakProcess", kind: "call" });
    }
    steps.push({
      from: "K",
      to: "C",
      label: `new thread ${t.tid} (${
        t.how === "attach"
          ? "the attach's break-in"
          : t.how === "break"
          ? "DebugBreakProcess's break-in"
          : "runs Sleep"
      })`,
      kind: "message",
    });
    for (const e of events.slice(0, SHOWN)) {
      steps.push({
        from: "K",
        to: "D",
        label: `${eventText(e)} tid ${e.tid}${
          e.exception ? (e.exception.firstChance ? ", first chance" : ", second chance") : ""
        }${e.exitCode !== undefined ? `, exit code ${exitCodeText(e.exitCode)}` : ""}`,
        kind: "message",
      });
      if (e.kind !== "EXCEPTION") continue;
      const f = freeze.get(e.tid);
      if (f && e.heldMs) {
        steps.push({
          note: `held ${f.heldMs} ms: client silent ${f.observedGapMs} ms`,
          over: ["C", "D"],
        });
      }
      steps.push({
        from: "D",
        to: "K",
        label: `ContinueDebugEvent(${e.continued})`,
        kind: "reply",
      });
    }
    if (events.length > SHOWN) {
      steps.push({
        note: `and ${countsText(events.slice(SHOWN))} more on thread ${t.tid}`,
        over: ["D"],
      });
    }
  }
  if (phases.other.length) {
    steps.push({
      from: "K",
      to: "D",
      label: `${countsText(phases.other)} from the client's own threads (each continued)`,
      kind: "message",
    });
  }
  if (doc.server) {
    steps.push({
      note:
        `server: requests paused ${doc.server.requestGapMs} ms, ${doc.server.exceptions} LPC_EXCEPTION`,
      over: ["S"],
    });
    for (const tid of doc.server.clientDiedTids.slice(0, 6)) {
      steps.push({ from: "K", to: "S", label: `LPC_CLIENT_DIED tid ${tid}`, kind: "message" });
    }
  }
  steps.push({
    from: "D",
    to: "K",
    label: d.ended === "kill"
      ? "close the debug object (kill on exit)"
      : "DebugActiveProcessStop (detach)",
    kind: "call",
  });
  steps.push({ note: `client exit code ${exitCodeText(doc.client!.exitCode)}`, over: ["C"] });
  const participants = [{ id: "C", label: `client (pid ${doc.client!.pid})` }, {
    id: "K",
    label: "kernel",
  }];
  if (doc.server) participants.push({ id: "S", label: `server (pid ${doc.server.pid})` });
  participants.push({ id: "D", label: `debugger (thread ${d.thread})` });
  return { title: "Experiment 3: a debugger attaches to the client", participants, steps };
}

/** The diagram of each experiment that ran. */
export function diagrams(
  report: Pick<LabReport, "experiments">,
): Partial<Record<ExperimentKey, Diagram>> {
  const e = report.experiments;
  const out: Partial<Record<ExperimentKey, Diagram>> = {};
  const p = ran<PortsDocument>(e.ports);
  if (p) out.ports = portsDiagram(p);
  const x1 = ran<Exp1Document>(e.exp1);
  if (x1?.ran) out.exp1 = exp1Diagram(x1);
  const x2 = ran<Exp2Document>(e.exp2);
  if (x2?.ran) out.exp2 = exp2Diagram(x2);
  const x3 = ran<Exp3Document>(e.exp3);
  if (x3?.ran) out.exp3 = exp3Diagram(x3);
  return out;
}

// ---------------------------------------------------------------- observations

/** The key observations of each experiment that ran, as table rows. */
export function observations(
  report: Pick<LabReport, "experiments">,
): Partial<Record<ExperimentKey, [string, string][]>> {
  const e = report.experiments;
  const out: Partial<Record<ExperimentKey, [string, string][]>> = {};
  const p = ran<PortsDocument>(e.ports);
  if (p) {
    out.ports = [
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
  const x1 = ran<Exp1Document>(e.exp1);
  if (x1?.findings) {
    out.exp1 = [
      ["mode", x1.mode!],
      ["direct open by the restricted client", x1.client!.direct?.name ?? "-"],
      [
        "the same bytes through the server",
        `${x1.findings.serverStatus}, ${x1.findings.servedBytes} bytes`,
      ],
      ["hostile requests refused", `${x1.findings.probesRefused} of ${x1.findings.probes}`],
    ];
  }
  const x2 = ran<Exp2Document>(e.exp2);
  if (x2?.analysis) {
    const a = x2.analysis;
    out.exp2 = [
      ["connection requests", String(a.connectionRequests)],
      [
        "LPC_EXCEPTION (first chance?)",
        a.exceptions.map((x) =>
          `${x.code} (${x.firstChance ? "first" : "second"} chance) -> ${x.verdict}${
            x.ours === undefined ? "" : x.ours ? " (the lab's own)" : " (not the lab's)"
          }`
        ).join("; ") || "none",
      ],
      [
        "LPC_ERROR_EVENT (hard errors)",
        String(a.hardErrors?.length ?? 0),
      ],
      [
        "LPC_CLIENT_DIED via exception port",
        String(a.deaths.filter((d) => d.via === "exception port").length),
      ],
      [
        "LPC_CLIENT_DIED via termination port",
        String(a.deaths.filter((d) => d.via === "termination port").length),
      ],
      ["threads never seen before", String(a.unknownThreads.length)],
      [
        "LPC_PORT_CLOSED",
        a.portClosed
          ? `on PortContext ${a.portClosed.context}, ClientId ${a.portClosed.clientId.pid}.${a.portClosed.clientId.tid}, after every CLIENT_DIED: ${a.diedBeforeClosed}`
          : "not received on the client's connection",
      ],
      ["client exit code", `${x2.client!.exitCodeHex ?? "?"} (${x2.client!.terminatedBy})`],
    ];
  }
  const x3 = ran<Exp3Document>(e.exp3);
  if (x3?.debugger) {
    const phases = exp3Phases(x3);
    const lpcSkipped = x3.lpc === "ran" ? undefined : (x3.lpc as { skipped: string }).skipped;
    const sameAs = lpcSkipped === undefined ? undefined : sameReasonAs(e, "exp3", lpcSkipped);
    // After the burst: a partition, so the parts add up to the number of events.
    const inBurst = new Set(phases.burst);
    const after = (how: string) =>
      phases.injected.filter((t) => t.thread.how === how).flatMap((t) => t.events).filter((x) =>
        !inBurst.has(x)
      ).length;
    out.exp3 = [
      [
        "injected threads",
        x3.debugger.injectedThreads.map((t) => `${t.tid} (${t.how})`).join(", "),
      ],
      [
        `debug events (${x3.debugger.events.length})`,
        `${phases.burst.length} up to the first breakpoint, then ${
          after("attach")
        } of the attach's break-in thread, ${after("break")} from DebugBreakProcess, ${
          after("remote-thread")
        } from CreateRemoteThread, ${phases.other.length} from the client's own threads`,
      ],
      ...(x3.freeze ?? []).map((
        f,
      ): [string, string] => [
        `freeze at thread ${f.tid}`,
        `held ${f.heldMs} ms, client silent ${f.observedGapMs} ms`,
      ]),
      ["debugger thread (all events)", String(x3.debugger.thread)],
      [
        "LPC half",
        lpcSkipped === undefined
          ? "ran"
          : sameAs
          ? `skipped, for the same reason as ${sameAs}`
          : `skipped: ${withoutTableHint(e, lpcSkipped)}`,
      ],
      ["end", `${x3.debugger.ended}, client exit code ${exitCodeText(x3.client!.exitCode)}`],
    ];
  }
  return out;
}

// ---------------------------------------------------------------- answers

/** The three questions, answered from this run's evidence. */
export function answerQuestions(
  e: Record<ExperimentKey, Outcome>,
): { q1: Answer; q2: Answer; q3: Answer } {
  const ports = ran<PortsDocument>(e.ports);
  const x1 = ran<Exp1Document>(e.exp1);
  const x2 = ran<Exp2Document>(e.exp2);
  const x3 = ran<Exp3Document>(e.exp3);

  // Q1
  const q1Reference =
    'Named connection ports are objects in the object manager namespace (type "ALPC Port" since Vista; "Port"/"WaitablePort" on NT 4 to 2003), ' +
    "so walking the namespace from \\ with NtOpenDirectoryObject/NtQueryDirectoryObject (what WinObj does) lists them, mostly in \\RPC Control, \\Windows and \\Sessions\\<n>\\Windows. " +
    "Unnamed communication ports exist only as handles: the system handle table (NtQuerySystemInformation(SystemExtendedHandleInformation)) shows them, and duplicating a port handle and asking its name maps named ports to the process serving them (NtObjectManager's Get-NtAlpcServer).";
  let q1: Answer;
  if (ports) {
    const portObjects = ports.objects.filter((o) =>
      ["ALPC Port", "Port", "WaitablePort"].includes(o.type)
    );
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
    q1 = {
      question: QUESTIONS.q1,
      answer: `${q1Reference} This run did the walk; what it found is listed below.`,
      observed: ports.summary.ports > 0,
      evidence,
      missing,
    };
  } else {
    q1 = {
      question: QUESTIONS.q1,
      answer: `Not observed here. Reference: ${q1Reference}`,
      observed: false,
      evidence: [],
      missing: [notRun("ports", e.ports)],
    };
  }

  // Q2
  const q2Reference =
    "The client does not send it: when a thread exits, the kernel's PspExitThread (running in that thread) posts an LPC_CLIENT_DIED datagram " +
    "to each port it holds a reference to for that thread: the termination ports registered with NtRegisterThreadTerminatePort, and the process's exception port " +
    "(set with NtSetInformationProcess(ProcessExceptionPort)); no new connection is needed. LPC_PORT_CLOSED comes when the client's port object is deleted, " +
    "possibly later: it carries ClientId {0, 0} and the connection's PortContext (which is how the server knows whose connection closed), " +
    "and its data is the CreateTime of whatever process was current at the deletion, not the client's.";
  const q2: Answer = x2?.analysis
    ? {
      question: QUESTIONS.q2,
      answer: x2.answer!,
      observed: x2.analysis.deaths.length > 0,
      evidence: [
        `${x2.analysis.connectionRequests} connection request from pid ${x2.analysis.pid}`,
        ...x2.analysis.deaths.slice(0, 8).map((d) =>
          `LPC_CLIENT_DIED tid ${d.tid} via ${d.via} (PortContext ${d.context})`
        ),
        x2.analysis.portClosed
          ? `LPC_PORT_CLOSED on PortContext ${x2.analysis.portClosed.context} with ClientId ${x2.analysis.portClosed.clientId.pid}.${x2.analysis.portClosed.clientId.tid}`
          : "no LPC_PORT_CLOSED on the client's connection",
      ],
      missing: x2.analysis.deaths.length ? [] : ["no LPC_CLIENT_DIED was received in this run"],
    }
    : {
      question: QUESTIONS.q2,
      answer: `Not observed here. Reference: ${q2Reference}`,
      observed: false,
      evidence: [],
      missing: [notRun("exp2", e.exp2)],
    };

  // Q3
  const evidence3: string[] = [];
  const missing3: string[] = [];
  if (x2?.analysis) {
    const exc = x2.analysis.exceptions[0];
    evidence3.push(
      "exp2: the exception port was itself an LPC connection port, set with NtSetInformationProcess, which needed a SYSTEM token with SeTcbPrivilege on the server thread",
    );
    if (exc) {
      evidence3.push(
        `exp2: the exception arrived as an LPC request (LPC_EXCEPTION from tid ${exc.tid}, second chance) that the faulting thread waited on until the server replied ${exc.verdict}`,
      );
    }
    evidence3.push(
      "exp2: one exception port per process: setting ours replaced the one csrss set for every Win32 process",
    );
  } else missing3.push(`exception-port evidence: ${notRun("exp2", e.exp2)}`);
  if (x3?.debugger) {
    for (const f of x3.freeze ?? []) {
      evidence3.push(
        `exp3: a breakpoint delivered to the debugger froze the whole client: ${f.observedGapMs} ms of silence for a ${f.heldMs} ms hold`,
      );
    }
    evidence3.push(
      `exp3: every break-in injected a new thread (${
        x3.debugger.injectedThreads.filter((t) => t.how !== "remote-thread").map((t) => t.tid).join(
          ", ",
        )
      }) and was handled by the debugger, not by any LPC server`,
    );
  } else missing3.push(`debugger evidence: ${notRun("exp3", e.exp3)}`);
  if (x1?.client) {
    evidence3.push(
      `exp1: a per-client connection with a kernel-stamped ClientId (pid ${x1.client.identity.pid}) and impersonation (${x1.mode}: ${x1.findings?.serverStatus})`,
    );
  } else missing3.push(`connection and impersonation evidence: ${notRun("exp1", e.exp1)}`);
  const q3Reference =
    "Exception dispatch transfers control inside the faulting thread; its only cross-process legs (the debug port and the exception port) are themselves " +
    "built on LPC: the kernel sends LPC_EXCEPTION as an LPC request. Ports give what IPC between processes needs and exceptions cannot: a securable name checked at " +
    "connect, per-client connections with context, a kernel-stamped ClientId and impersonation, queues with MessageId request/reply matching, flow control, large data " +
    "by sections, and peer-death notices. Using the exception machinery instead would need SeTcbPrivilege, allow one listener per process (already csrss's), work in one " +
    "direction only, and block the faulting thread (the debug port freezes the whole process).";
  const q3: Answer = {
    question: QUESTIONS.q3,
    answer: evidence3.length
      ? `${q3Reference} This run showed ${
        missing3.length ? "part of it" : "it"
      }; its evidence is listed below.`
      : `Not observed here. Reference: ${q3Reference}`,
    observed: evidence3.length > 0,
    evidence: evidence3,
    missing: missing3,
  };
  return { q1, q2, q3 };
}

// ---------------------------------------------------------------- schema

/** Checks a report against the `deno-lpc/lab@1` schema; returns the problems (empty = valid). */
export function validateLabReport(r: unknown): string[] {
  const p: string[] = [];
  const o = r as Record<string, unknown>;
  if (typeof o !== "object" || o === null) return ["not an object"];
  if (o.schema !== "deno-lpc/lab@1") p.push("schema must be deno-lpc/lab@1");
  if (typeof o.generatedAt !== "string" || Number.isNaN(Date.parse(o.generatedAt))) {
    p.push("generatedAt must be an ISO date");
  }
  const env = o.environment as Record<string, unknown> | undefined;
  if (!env) p.push("environment missing");
  else {
    for (const k of ["os", "build", "deno"]) {
      if (typeof env[k] !== "string") p.push(`environment.${k} must be a string`);
    }
    if (!(typeof env.elevated === "boolean" || env.elevated === null)) {
      p.push("environment.elevated must be a boolean or null");
    }
    if (!(typeof env.wine === "string" || env.wine === null)) {
      p.push("environment.wine must be a string or null");
    }
  }
  const ex = o.experiments as Record<string, Outcome> | undefined;
  if (!ex) p.push("experiments missing");
  else {
    for (const k of EXPERIMENTS) {
      const x = ex[k];
      if (!x) p.push(`experiments.${k} missing`);
      else if (!["ran", "skipped", "failed", "interrupted"].includes(x.status)) {
        p.push(`experiments.${k}.status invalid`);
      } else if (x.status !== "ran" && typeof x.reason !== "string") {
        p.push(`experiments.${k}.reason required when ${x.status}`);
      } else if (x.status === "ran" && (typeof x.result !== "object" || x.result === null)) {
        p.push(`experiments.${k}.result required when ran`);
      }
    }
  }
  const ans = o.answers as Record<string, Answer> | undefined;
  if (!ans) p.push("answers missing");
  else {
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
  }
  return p;
}

// ---------------------------------------------------------------- rendering

const TITLES: Record<ExperimentKey, string> = {
  ports: "Ports (question 1)",
  exp1: "Experiment 1: a privileged server reads for an unprivileged client",
  exp2: "Experiment 2: the exception port and LPC_CLIENT_DIED",
  exp3: "Experiment 3: a debugger attaches to the client",
};

/** The report's title and the line under it: one source for `report.md` and `report.html`. */
export function reportHeader(r: LabReport): { title: string; line: string } {
  const env = r.environment;
  const where = [
    `${env.os} (${env.build})`,
    `Deno ${env.deno}`,
    ...(env.wine ? [`under Wine ${env.wine}`] : []),
    ...(env.elevated === null ? [] : [env.elevated ? "elevated" : "not elevated"]),
  ];
  return { title: "LPC lab report", line: `Generated ${r.generatedAt} on ${where.join(", ")}.` };
}

/** The status table's rows: each experiment, its status, and (the one place it is given) why. */
function statusRows(r: LabReport): [string, string, string][] {
  return EXPERIMENTS.map((k) => [k, r.experiments[k].status, reasonOf(r.experiments[k])]);
}

/** What the section of an experiment that did not run says instead of a diagram. */
const notObserved = (k: ExperimentKey, o: Outcome) =>
  `Not observed here: ${k} ${o.status === "ran" ? "left no diagram" : o.status}${
    o.reason ? " (why: in the table at the top)" : ""
  }.`;

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** `report.md`. */
export function toMarkdown(r: LabReport): string {
  const head = reportHeader(r);
  const out: string[] = [`# ${head.title}`, "", head.line, ""];
  out.push("| experiment | status | reason |", "| --- | --- | --- |");
  for (const row of statusRows(r)) out.push(`| ${row.map(cell).join(" | ")} |`);
  const d = diagrams(r);
  const obs = observations(r);
  for (const k of EXPERIMENTS) {
    out.push("", `## ${TITLES[k]}`, "");
    const x = r.experiments[k];
    if (x.status !== "ran" || !d[k]) {
      out.push(`_${notObserved(k, x)}_`);
      continue;
    }
    out.push("```mermaid", toMermaid(d[k]!), "```", "");
    out.push(
      "| observation | value |",
      "| --- | --- |",
      ...(obs[k] ?? []).map(([a, b]) => `| ${cell(a)} | ${cell(b)} |`),
    );
  }
  out.push("", "## The three questions");
  for (const [key, a] of Object.entries(r.answers)) {
    out.push(
      "",
      `### ${key.toUpperCase()}. ${a.question}`,
      "",
      a.observed
        ? a.answer
        : `**Not observed here.** ${a.answer.replace(/^Not observed here\. /, "")}`,
    );
    if (a.evidence.length) {
      out.push(
        "",
        "Evidence from this run:",
        "",
        ...a.evidence.map((x) => `- ${x}`),
      );
    }
    if (a.missing.length) out.push("", "Missing evidence:", "", ...a.missing.map((x) => `- ${x}`));
  }
  return out.join("\n") + "\n";
}

const h = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** `report.html`: self-contained, diagrams as inline SVG, no script and no network. */
export function toHtml(r: LabReport): string {
  const d = diagrams(r);
  const obs = observations(r);
  const head = reportHeader(r);
  const parts = [
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${h(head.title)}</title>`,
    "<style>body{font-family:Segoe UI,Arial,sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.missing{color:#8a5a00}svg{max-width:100%;height:auto;border:1px solid #eee}</style>",
    "</head><body>",
    `<h1>${h(head.title)}</h1><p>${h(head.line)}</p>`,
    "<table><tr><th>experiment</th><th>status</th><th>reason</th></tr>",
    ...statusRows(r).map((row) => `<tr>${row.map((c) => `<td>${h(c)}</td>`).join("")}</tr>`),
    "</table>",
  ];
  for (const k of EXPERIMENTS) {
    parts.push(`<h2>${h(TITLES[k])}</h2>`);
    if (r.experiments[k].status !== "ran" || !d[k]) {
      parts.push(`<p class="missing"><em>${h(notObserved(k, r.experiments[k]))}</em></p>`);
      continue;
    }
    parts.push(toSvg(d[k]!));
    parts.push(
      "<table><tr><th>observation</th><th>value</th></tr>",
      ...(obs[k] ?? []).map(([a, b]) => `<tr><td>${h(a)}</td><td>${h(b)}</td></tr>`),
      "</table>",
    );
  }
  parts.push("<h2>The three questions</h2>");
  for (const [key, a] of Object.entries(r.answers)) {
    parts.push(
      `<h3>${key.toUpperCase()}. ${h(a.question)}</h3><p>${
        a.observed ? "" : "<strong>Not observed here.</strong> "
      }${h(a.answer.replace(/^Not observed here\. /, ""))}</p>`,
    );
    if (a.evidence.length) {
      parts.push(
        "<p>Evidence from this run:</p><ul>",
        ...a.evidence.map((x) => `<li>${h(x)}</li>`),
        "</ul>",
      );
    }
    if (a.missing.length) {
      parts.push(
        `<p class="missing">Missing evidence:</p><ul class="missing">`,
        ...a.missing.map((x) => `<li>${h(x)}</li>`),
        "</ul>",
      );
    }
  }
  parts.push("</body></html>");
  return parts.join("\n");
}

/** Every Mermaid block of a Markdown text, checked; returns the problems. */
export function checkMarkdownDiagrams(md: string): { blocks: number; problems: string[] } {
  const blocks = [...md.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return {
    blocks: blocks.length,
    problems: blocks.flatMap((b, i) => checkMermaid(b).map((p) => `block ${i + 1}: ${p}`)),
  };
}
