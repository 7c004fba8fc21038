#!/usr/bin/env -S deno run --allow-ffi --allow-read
/**
 * Experiment 1: a privileged LPC server performs a system call for an unprivileged client. It
 * reads a few bytes of a file the client may not read.
 *
 * Run it from an elevated prompt on Windows x64:
 *
 * ```sh
 * deno run --allow-ffi --allow-read experiments/exp1/exp1.ts                  # confused deputy
 * deno run --allow-ffi --allow-read experiments/exp1/exp1.ts --impersonate    # safe mode
 * ```
 *
 * Protocol: (1) set up: a lab folder with an explicit DACL (the client may read it, not create in
 * it) holding a secret only SYSTEM and Administrators may read and a `drop\` folder the client may
 * write; beside it a "vault" folder only SYSTEM and Administrators may read; the server on its own
 * Worker thread, behind a port only our user may connect to; (2) act: the client runs with a
 * restricted copy of our token (Administrators deny-only, no privileges, medium or low integrity),
 * tries the secret itself, asks the server for it, sends malformed requests, and, as a hostile
 * client, makes a junction in `drop\` to the vault and asks for a file through it; (3) observe:
 * the client's results and the server's timeline; (4) explain, saying which check refused each
 * request; (5) clean up: the client, the server, the port, the files.
 *
 * The server confines itself to its root (nt-semantics.md E13): it refuses absolute paths, `..`
 * and `:` by their text, opens relative to a handle on its root with `OBJ_DONT_REPARSE`, and
 * checks the final path of what it opened.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { securitySddl } from "../../ffi/nt/files.ts";
import { LabFolder } from "./lab_folder.ts";
import { ServerWorker } from "../../ffi/lpc/server_worker.ts";
import type { LpcEvent } from "../../ffi/lpc/port.ts";
import { assertWindows } from "../../ffi/status.ts";
import { wineVersion } from "../../ffi/ntdll.ts";
import { currentProcessId, runCaptured } from "../../ffi/nt/processes.ts";
import {
  createRestrictedToken,
  openProcessToken,
  setTokenIntegrity,
  TokenAccess,
  tokenIntegrity,
  tokenIsElevated,
  tokenUserSid,
  WellKnownSid,
} from "../../ffi/nt/tokens.ts";
import { CLI as CLIENT_CLI, type ClientDocument } from "./exp1_client.ts";
import type { StageName } from "./exp1_protocol.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import { formatEvent, portSddl } from "./exp1_server.ts";
import { type Cli, type CliValues, EXIT, interruptible, runCli, toJson } from "../_cli.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp1",
  usage: `exp1: a privileged LPC server reads a file for an unprivileged client.

Usage: deno run --allow-ffi --allow-read experiments/exp1/exp1.ts [options]
Run from an elevated prompt on Windows x64.

The client also plays a hostile client: in the lab's drop\\ folder (the only one it may write) it
makes a junction to a folder only administrators may read and asks for a file through it; the
server must refuse, in both modes, and the report says which check refused.`,
  options: {
    impersonate: {
      kind: "flag",
      help: "SAFE MODE: the server impersonates the client (NtImpersonateClientOfPort) before " +
        "opening the file, so it can only read what the client could. Without it the server " +
        "reads as itself: a deliberate confused deputy.",
    },
    low: {
      kind: "flag",
      help: "run the client at low integrity instead of medium (drop\\ gets a Low label)",
    },
    // The client's own declaration (range and default), as the client is what sends it.
    length: { ...CLIENT_CLI.options.length, help: "how many bytes to ask for" },
    json: { kind: "flag", help: "print one JSON document (schema deno-lpc/exp1@1)" },
  },
  notes: "Without LPC (Linux, Wine) it exits 3 with one line and leaves nothing behind.",
  schema: "deno-lpc/exp1@1",
} as const satisfies Cli;

/** The secret's DACL: SYSTEM and Administrators only, not inherited. */
export const SECRET_SDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";
/** The vault (outside the root, the junction's target) and its file: SYSTEM and Administrators only. */
export const VAULT_SDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/** `FILE_GENERIC_READ | FILE_GENERIC_EXECUTE`: list, traverse, read data, attributes and EAs. */
const READ_EXECUTE = "0x1200a9";
/** {@link READ_EXECUTE} plus `FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY`. */
const READ_EXECUTE_ADD = "0x1200af";
/** "Modify": read, write, execute, delete; not `WRITE_DAC`, not `WRITE_OWNER`. */
const MODIFY = "0x1301bf";

/**
 * The lab folder's DACL: protected (nothing inherited from `%TEMP%`, where the user has Full
 * Control); SYSTEM and Administrators full, also on what they create inside; the client (the
 * restricted token keeps our user SID enabled, so that SID names it) read & execute on the
 * folder itself only: it may list it and reach `drop\`, never create in it.
 */
export function labSddl(clientSid: string): string {
  return `D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;${READ_EXECUTE};;;${clientSid})`;
}

/**
 * `drop\`: the lab's DACL, and the client may also add files and folders to it and modify (not
 * re-permission) what it created there. With `low`, a Low mandatory label (no-write-up), so a
 * low-integrity client may write there too.
 */
export function dropSddl(clientSid: string, low: boolean): string {
  return `D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;${READ_EXECUTE_ADD};;;${clientSid})` +
    `(A;OICIIO;${MODIFY};;;${clientSid})${low ? "S:(ML;OICI;NW;;;LW)" : ""}`;
}

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
const SECRET =
  "TOP SECRET: the LPC lab's hidden file. Only SYSTEM and Administrators may read this.\r\n";
const VAULT = "VAULT: outside the server's root. A junction must not lead the server here.\r\n";

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

/** The `--json` document. */
export interface Exp1Document {
  /** Always `deno-lpc/exp1@1`. */
  schema: "deno-lpc/exp1@1";
  /** Whether it ran, or why not. */
  ran: boolean;
  /** Why it did not run (with exit code 3 or 1). */
  reason?: string;
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
  /** The client's own report. */
  client?: ClientDocument & { exitCode: number | undefined; token: string };
  /** Both sides, in time order. */
  timeline?: TimelineEntry[];
  /** What the run showed. */
  findings?: {
    directDenied: boolean;
    servedBytes: number;
    serverStatus: string;
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

function explain(doc: Exp1Document): string {
  const c = doc.client!;
  const direct = c.direct?.name ?? "not tried";
  const via = c.viaServer!;
  const lines = [
    `The client (pid ${c.identity.pid}, ${c.identity.integrity} integrity, Administrators ${c.identity.administrators}) ` +
    `opened the secret itself and got ${direct}.`,
  ];
  const served = via.name === "STATUS_SUCCESS";
  lines.push(
    `It then sent one LPC_REQUEST for secret.txt; the server (pid ${
      doc.server!.pid
    }) replied ${via.name}${via.bytes ? ` with ${via.bytes} bytes` : ""}: ${explainAnswer(via)}.`,
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
  const p = doc.findings!;
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

function mergeTimeline(t0: number, server: LpcEvent[], client: ClientDocument): TimelineEntry[] {
  const out: TimelineEntry[] = server.map((e) => ({
    t: Math.round((e.at - t0) * 10) / 10,
    side: "server" as const,
    event: e.event,
    ...(e.pid !== undefined ? { pid: e.pid, tid: e.tid! } : {}),
    ...(e.messageId !== undefined
      ? { messageId: e.messageId, dataLength: e.dataLength!, totalLength: e.totalLength! }
      : {}),
    ...(e.note ? { note: e.note } : {}),
  }));
  const id = client.identity;
  if (client.direct) {
    out.push({
      t: Math.round((client.direct.at - t0) * 10) / 10,
      side: "client",
      event: "direct open",
      pid: id.pid,
      tid: id.tid,
      note: client.direct.name,
    });
  }
  if (client.viaServer) {
    out.push({
      t: Math.round((client.viaServer.at - t0) * 10) / 10,
      side: "client",
      event: "reply received",
      pid: id.pid,
      tid: id.tid,
      note: client.viaServer.name,
    });
  }
  return out.sort((a, b) => a.t - b.t);
}

/** Runs the experiment (Windows only; throws `NtError`/`UnsupportedError` where it cannot). */
export async function runExp1(
  o: { impersonate: boolean; low: boolean; length: number; log: (s: string) => void },
): Promise<Exp1Document> {
  assertWindows("exp1");
  const t0 = performance.timeOrigin + performance.now();
  await using cleanup = interruptible();
  const me = currentProcessId();
  const stamp = `${me}-${Date.now().toString(36)}`;

  // 1. Set up.
  const self = cleanup.use(openProcessToken(TokenAccess.TOKEN_ALL_ACCESS));
  const user = tokenUserSid(self);
  const environment = {
    pid: me,
    user,
    elevated: tokenIsElevated(self),
    integrity: tokenIntegrity(self).name,
    wine: wineVersion(),
  };
  // The restricted client keeps our user SID (only Administrators becomes deny-only), so the
  // lab's ACEs for the client name that SID.
  const folderSddl = labSddl(user);
  const lab = cleanup.use(LabFolder.create(`deno-lpc-lab-${stamp}`, { sddl: folderSddl }));
  const secret = lab.createFile("secret.txt", new TextEncoder().encode(SECRET), SECRET_SDDL);
  const dropFolderSddl = dropSddl(user, o.low);
  const drop = lab.createFolder("drop", dropFolderSddl);
  // The junction's target: a sibling of the root (same name prefix), administrators only.
  const vault = cleanup.use(LabFolder.create(`deno-lpc-lab-${stamp}-vault`, { sddl: VAULT_SDDL }));
  const vaultFile = vault.createFile("vault.txt", new TextEncoder().encode(VAULT), SECRET_SDDL);
  const portName = `\\RPC Control\\deno-lpc-exp1-${stamp}`;
  const sddl = portSddl(user, o.low);
  const handlerOptions: Exp1HandlerOptions = { root: lab.path, impersonate: o.impersonate };
  const server = cleanup.use(
    await ServerWorker.start({
      portName,
      sddl,
      handlerModule: new URL("./exp1_handler.ts", import.meta.url),
      handlerOptions,
      onEvent: (e) => o.log(`server ${formatEvent(e)}`),
    }),
  );
  // Logged once the server runs: without LPC its start is where the run ends, in one line.
  o.log(`lab folder ${lab.path} (${folderSddl}); secret ${secret} (${SECRET_SDDL})`);
  o.log(`drop folder ${drop} (${dropFolderSddl}); vault ${vault.path} (${VAULT_SDDL})`);
  o.log(
    `server pid ${server.processId} thread ${server.threadId} on ${portName} (${
      o.impersonate ? "safe mode: impersonating" : "confused deputy"
    })`,
  );
  if (!environment.elevated) {
    throw new Error(
      "exp1 needs an elevated prompt: the server must be able to read a file only SYSTEM and Administrators may read",
    );
  }

  // 2. Act: the client, unprivileged.
  const restricted = cleanup.use(
    createRestrictedToken(self, {
      denyOnly: [WellKnownSid.Administrators],
      removePrivileges: true,
    }),
  );
  setTokenIntegrity(restricted, o.low ? "Low" : "Medium");
  const clientScript = new URL("./exp1_client.ts", import.meta.url);
  const run = await runCaptured(
    [
      Deno.execPath(),
      "run",
      "--allow-ffi",
      fileURLToPath(clientScript),
      "--port",
      portName,
      "--root",
      lab.path,
      "--path",
      "secret.txt",
      "--junction-to",
      vault.path,
      "--junction-file",
      "vault.txt",
      "--length",
      String(o.length),
      "--json",
    ],
    { token: restricted, timeoutMs: 120_000 },
  );
  if (run.exitCode !== 0) {
    throw new Error(
      `the client exited with ${run.exitCode ?? "a timeout"}: ${
        run.stderr.trim().split("\n").at(-1) ?? ""
      }`,
    );
  }
  const client = JSON.parse(run.stdout) as ClientDocument;

  // 3. Observe: stop the server (it closes its ports), keep its events.
  await server.stop();
  const doc: Exp1Document = {
    schema: "deno-lpc/exp1@1",
    ran: true,
    mode: o.impersonate ? "impersonate" : "confused-deputy",
    environment,
    lab: {
      folder: lab.path,
      secret,
      sddl: SECRET_SDDL,
      folderSddl,
      folderStored: securitySddl(lab.handle, o.low),
      drop,
      dropSddl: dropFolderSddl,
      dropStored: securitySddl(lab.folderHandle(drop)!, o.low),
      vault: vault.path,
      vaultFile,
      vaultSddl: VAULT_SDDL,
    },
    port: { name: portName, sddl },
    server: { pid: server.processId, tid: server.threadId, events: server.events },
    client: {
      ...client,
      exitCode: run.exitCode,
      token: `restricted copy of ${user}: Administrators deny-only, privileges removed, ${
        o.low ? "low" : "medium"
      } integrity`,
    },
    timeline: mergeTimeline(t0, server.events, client),
  };
  const probes = client.probes ?? [];
  doc.findings = {
    directDenied: client.direct?.name === "STATUS_ACCESS_DENIED",
    servedBytes: client.viaServer?.bytes ?? 0,
    serverStatus: client.viaServer?.name ?? "",
    probesRefused: probes.filter((p) => p.status !== "0x00000000").length,
    probes: probes.length,
    junction: junctionFinding(client.junction),
  };
  doc.explanation = explain(doc);
  // 5. Clean up: `cleanup` closes the tokens, the lab files (delete-on-close) and the server.
  return doc;
}

function junctionFinding(
  j: ClientDocument["junction"],
): NonNullable<Exp1Document["findings"]>["junction"] {
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

function printReport(doc: Exp1Document): void {
  console.log(`\nExperiment 1 (${doc.mode})\n`);
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
  const c = doc.client!;
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

async function main(v: CliValues<typeof CLI.options>): Promise<number> {
  const doc = await runExp1({
    impersonate: v.impersonate,
    low: v.low,
    length: v.length,
    log: v.json ? () => {} : (s) => console.error(s),
  });
  if (v.json) console.log(toJson(doc));
  else printReport(doc);
  return EXIT.OK;
}

if (import.meta.main) {
  await runCli(import.meta.url, CLI, main);
}
