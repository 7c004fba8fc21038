#!/usr/bin/env -S deno run --allow-ffi --allow-read
/**
 * Experiment 1: a privileged LPC server performs a system call for an unprivileged client. It
 * reads a few bytes of a file the client may not read.
 *
 * Run it from an elevated prompt on Windows x64:
 *
 * ```sh
 * deno run --allow-ffi --allow-read experiments/exp1.ts                  # confused deputy
 * deno run --allow-ffi --allow-read experiments/exp1.ts --impersonate    # safe mode
 * ```
 *
 * Protocol: (1) set up: a lab folder with a secret only SYSTEM and Administrators may read; the
 * server on its own Worker thread, behind a port only our user may connect to; (2) act: the client
 * runs with a restricted copy of our token (Administrators deny-only, no privileges, medium or low
 * integrity), tries the file itself, then asks the server; (3) observe: the client's results and the
 * server's timeline; (4) explain; (5) clean up: the client, the server, the port, the files.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { LabFolder } from "../ffi/files.ts";
import { ServerWorker } from "../ffi/lpc_server_host.ts";
import type { LpcEvent } from "../ffi/lpc.ts";
import { assertWindows } from "../ffi/_loader.ts";
import { wineVersion } from "../ffi/ntdll.ts";
import { currentProcessId, runCaptured } from "../ffi/processes.ts";
import {
  createRestrictedToken,
  openProcessToken,
  setTokenIntegrity,
  TokenAccess,
  tokenIntegrity,
  tokenIsElevated,
  tokenUserSid,
  WellKnownSid,
} from "../ffi/tokens.ts";
import type { ClientDocument } from "./exp1_client.ts";
import { MAX_READ_LENGTH } from "./exp1_protocol.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import { formatEvent, portSddl } from "./exp1_server.ts";
import {
  EXIT,
  EXIT_CODES_HELP,
  interruptible,
  parseCli,
  reportFailure,
  runMain,
  toJson,
  UsageError,
} from "./_cli.ts";

const HELP = `exp1: a privileged LPC server reads a file for an unprivileged client.

Usage: deno run --allow-ffi --allow-read experiments/exp1.ts [options]
Run from an elevated prompt on Windows x64.

Options:
  --impersonate   SAFE MODE: the server impersonates the client (NtImpersonateClientOfPort) before
                  opening the file, so it can only read what the client could. Without it the
                  server reads as itself: a deliberate confused deputy.
  --low           run the client at low integrity instead of medium
  --length <n>    how many bytes to ask for (default 32)
  --json          print one JSON document (schema deno-lpc/exp1@1)
  --help          this text

${EXIT_CODES_HELP}`;

/** The secret's DACL: SYSTEM and Administrators only, not inherited. */
export const SECRET_SDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";
const SECRET =
  "TOP SECRET: the LPC lab's hidden file. Only SYSTEM and Administrators may read this.\r\n";

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
  /** The lab folder and secret (removed afterwards). */
  lab?: { folder: string; secret: string; sddl: string };
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
  if (doc.mode === "confused-deputy") {
    lines.push(
      `It then sent one LPC_REQUEST; the server (pid ${
        doc.server!.pid
      }) opened the file with its own token and ` +
        `replied ${via.name}${
          via.bytes ? ` with ${via.bytes} bytes` : ""
        }. The kernel checked the server's token, ` +
        "not the client's: the server is a confused deputy. A server must impersonate its client " +
        "(NtImpersonateClientOfPort) for requests made on the client's behalf. Run again with --impersonate.",
    );
  } else {
    lines.push(
      `It then sent one LPC_REQUEST; the server impersonated the client before opening the file and got ${via.name}: ` +
        "with impersonation the kernel checks the client's token, so the server can do for the client only what " +
        "the client could do itself.",
    );
  }
  const p = doc.findings!;
  lines.push(
    `The server refused ${p.probesRefused} of ${p.probes} malformed or hostile requests with a status and kept serving.`,
  );
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
  const lab = cleanup.use(LabFolder.create(`deno-lpc-lab-${stamp}`));
  const secret = lab.createFile("secret.txt", new TextEncoder().encode(SECRET), SECRET_SDDL);
  o.log(`lab folder ${lab.path}; secret ${secret} (${SECRET_SDDL})`);
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
      "--path",
      secret,
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
    lab: { folder: lab.path, secret, sddl: SECRET_SDDL },
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
  };
  doc.explanation = explain(doc);
  // 5. Clean up: `cleanup` closes the tokens, the lab files (delete-on-close) and the server.
  return doc;
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
  console.log(`\n${doc.explanation}`);
  if (doc.mode === "confused-deputy") console.log("\nSafe mode is one flag away: --impersonate.");
}

async function main(args: string[]): Promise<number> {
  const v = parseCli(args, {
    impersonate: { type: "boolean", default: false },
    low: { type: "boolean", default: false },
    length: { type: "string", default: "32" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (v.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  const length = Number(v.length);
  if (!Number.isInteger(length) || length < 1 || length > MAX_READ_LENGTH) {
    throw new UsageError(`--length must be 1..${MAX_READ_LENGTH}`);
  }
  try {
    const doc = await runExp1({
      impersonate: v.impersonate!,
      low: v.low!,
      length,
      log: v.json ? () => {} : (s) => console.error(s),
    });
    if (v.json) console.log(toJson(doc));
    else printReport(doc);
    return EXIT.OK;
  } catch (e) {
    return reportFailure("exp1", "deno-lpc/exp1@1", v.json!, e);
  }
}

if (import.meta.main) {
  await runMain("exp1", main);
}
