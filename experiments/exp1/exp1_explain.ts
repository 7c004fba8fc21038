/**
 * Experiment 1's explanation: which check decided each answer of the server, the run's findings,
 * its merged timeline, and the report printed without `--json`.
 *
 * @module
 */

import type { LpcEvent } from "../../mod.ts";
import type { Attempt, ClientDocument } from "./exp1_attempts.ts";
import type { StageName } from "./exp1_protocol.ts";
import type { Exp1Run, TimelineEntry } from "./exp1_document.ts";
import { TRANSPORT_LABEL } from "../_transport.ts";

/** What the server answered, as the client saw it. */
export interface ServerAnswer {
  /** The NTSTATUS name (or hex). */
  name: string;
  /** Which check answered. */
  stage?: StageName | string;
  /** Whether the open ran while the server impersonated the client. */
  impersonated?: boolean;
  /** The server's reason. */
  reason?: string;
}

/**
 * Says what decided a server's answer. "The kernel checked the client's token" only when the
 * denial came from the open made while impersonating the client; every other refusal names the
 * check that refused.
 */
export function explainAnswer(a: ServerAnswer): string {
  const as = a.impersonated ? "while impersonating the client" : "with its own token";
  switch (a.stage) {
    case "served":
      return `the server opened and read it ${as}`;
    case "request":
      return `the server refused the malformed request (${a.name}) before doing anything`;
    case "path":
      return `the server's check of the path's text refused it (${a.name}) before opening anything`;
    case "impersonate":
      return `impersonating the client failed (${a.name}), so the server opened nothing`;
    case "finalPath":
      return `the server's final-path check refused it: what it opened lies outside its root`;
    case "read":
      return `reading the opened file failed (${a.name})`;
    case "open":
      if (a.name === "STATUS_REPARSE_POINT_ENCOUNTERED") {
        return "the open with OBJ_DONT_REPARSE refused to cross the junction " +
          "(STATUS_REPARSE_POINT_ENCOUNTERED): the object manager stopped at the reparse point, " +
          "and no access check on its target was made";
      }
      if (a.name === "STATUS_ACCESS_DENIED") {
        return a.impersonated
          ? "the kernel checked the client's token: the open, made while the server impersonated " +
            "the client, was denied (STATUS_ACCESS_DENIED)"
          : "the kernel checked the server's own token and denied the open (STATUS_ACCESS_DENIED)";
      }
      return `the open ${as} failed with ${a.name}`;
    default:
      return `the server answered ${a.name}`;
  }
}
export function explain(doc: Exp1Run): string {
  const { client: c, server, findings: p } = doc;
  if (!c?.viaServer || !server || !p) return "";
  const direct = c.direct?.name ?? "not tried";
  const via = c.viaServer;
  const lines = [
    `The client (pid ${c.identity.pid}, ${c.identity.integrity} integrity, Administrators ${c.identity.administrators}) ` +
    `opened the secret itself and got ${direct}.`,
  ];
  const served = via.name === "STATUS_SUCCESS";
  lines.push(
    `It then sent one LPC_REQUEST for secret.txt; the server (pid ${server.pid}) replied ${via.name}${
      via.bytes ? ` with ${via.bytes} bytes` : ""
    }: ${explainAnswer(via)}.`,
  );
  if (doc.mode === "confused-deputy" && served) {
    lines.push(
      "The kernel checked the server's token, not the client's: the server is a confused deputy. " +
        "A server must impersonate its client (NtImpersonateClientOfPort) for requests made on the " +
        "client's behalf. Run again with --impersonate.",
    );
  } else if (doc.mode === "impersonate" && !served) {
    lines.push(
      "With impersonation the server can do for the client only what the client could do itself.",
    );
  }
  lines.push(
    `The server refused ${p.probesRefused} of ${p.probes} malformed or hostile requests with a status and kept serving.`,
  );
  const j = c.junction;
  if (j?.made && j.reply) {
    lines.push(
      `The hostile client made a junction in drop\\ to a folder only administrators may read and asked for ` +
        `${j.request}; the server answered ${j.reply.name}: ${explainAnswer(j.reply)}.`,
    );
  } else if (j) {
    lines.push(
      `The hostile client could not make its junction in drop\\ (${j.createName}), so that request was not sent.`,
    );
  }
  return lines.join(" ");
}

export function mergeTimeline(
  t0: number,
  server: LpcEvent[],
  client: ClientDocument,
): TimelineEntry[] {
  const out: TimelineEntry[] = server.map((e) => ({
    t: Math.round((e.at - t0) * 10) / 10,
    side: "server" as const,
    event: e.event,
    ...(e.pid !== undefined && e.tid !== undefined ? { pid: e.pid, tid: e.tid } : {}),
    ...(e.messageId !== undefined && e.dataLength !== undefined && e.totalLength !== undefined
      ? { messageId: e.messageId, dataLength: e.dataLength, totalLength: e.totalLength }
      : {}),
    ...(e.note ? { note: e.note } : {}),
  }));
  const id = client.identity;
  const seen: [Attempt | undefined, string][] = [
    [client.direct, "direct open"],
    [client.viaServer, "reply received"],
  ];
  for (const [a, event] of seen) {
    if (a === undefined) continue;
    out.push({
      t: Math.round((a.at - t0) * 10) / 10,
      side: "client",
      event,
      pid: id.pid,
      tid: id.tid,
      note: a.name,
    });
  }
  return out.sort((a, b) => a.t - b.t);
}

export function junctionFinding(
  j: ClientDocument["junction"],
): NonNullable<Exp1Run["findings"]>["junction"] {
  if (!j) return { made: false };
  if (!j.made || !j.reply) {
    return { made: false, ...(j.createName ? { createStatus: j.createName } : {}) };
  }
  const refused = j.reply.status !== "0x00000000";
  return {
    made: true,
    status: j.reply.name,
    refused,
    ...(refused && j.reply.stage ? { refusedBy: j.reply.stage } : {}),
    impersonated: j.reply.impersonated ?? false,
  };
}

export function printReport(doc: Exp1Run): void {
  console.log(`\nExperiment 1 over ${TRANSPORT_LABEL[doc.transport]} (${doc.mode})\n`);
  for (const e of doc.timeline ?? []) {
    const who = e.pid !== undefined ? `pid ${e.pid} tid ${e.tid}` : "";
    const ids = e.messageId !== undefined
      ? `msg ${e.messageId} len ${e.dataLength}/${e.totalLength}`
      : "";
    console.log(
      `${e.t.toFixed(1).padStart(9)} ms  ${e.side.padEnd(6)} ${e.event.padEnd(24)} ${
        who.padEnd(22)
      } ${ids}${e.note ? `  ${e.note}` : ""}`,
    );
  }
  const c = doc.client;
  if (!c) return;
  console.log(`\ndirect open by the client: ${c.direct?.name}`);
  console.log(
    `through the server:        ${c.viaServer?.name}${
      c.viaServer?.text ? ` "${c.viaServer.text}"` : ""
    }`,
  );
  const j = c.junction;
  if (j) {
    console.log(
      `through a junction:        ${
        j.made
          ? `${j.reply?.name} (refused by: ${j.reply?.stage}) for ${j.request}`
          : `not made (${j.createName})`
      }`,
    );
  }
  console.log(`\n${doc.explanation}`);
  if (doc.mode === "confused-deputy") console.log("\nSafe mode is one flag away: --impersonate.");
}
