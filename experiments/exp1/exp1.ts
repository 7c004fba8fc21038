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

import { ChildProcess } from "../../mod.ts";
import { WellKnownSid } from "../../raw.ts";
import { CLI as CLIENT_CLI, type ClientDocument } from "./exp1_client.ts";
import { EXP1_SCHEMA, type Exp1Document, type Exp1Run } from "./exp1_document.ts";
import { explain, junctionFinding, mergeTimeline, printReport } from "./exp1_explain.ts";
import { SECRET_SDDL, setUpExp1, VAULT_SDDL } from "./exp1_lab.ts";
import type { Cli } from "../_cli.ts";
import { type Log, runPhases, runScript } from "../_runner.ts";
import { clientCommand } from "../_setup.ts";
import {
  assertTransports,
  runsOf,
  runTransports,
  type Transport,
  TRANSPORT_OPTION,
  type TransportChoice,
} from "../_transport.ts";

export { dropSddl, labSddl, SECRET_SDDL, VAULT_SDDL } from "./exp1_lab.ts";
export { explainAnswer, type ServerAnswer } from "./exp1_explain.ts";
export type { Exp1Document, Exp1Run, PortInfo, TimelineEntry } from "./exp1_document.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp1",
  usage: `exp1: a privileged LPC (or ALPC) server reads a file for an unprivileged client.

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
    transport: TRANSPORT_OPTION,
    json: { kind: "flag", help: `print one JSON document (schema ${EXP1_SCHEMA})` },
  },
  notes: `Without LPC (Linux, Wine), or without ALPC for --transport alpc or both (Wine), it exits 3
with one line and leaves nothing behind.`,
  schema: EXP1_SCHEMA,
} as const satisfies Cli;

/** The options of {@link runExp1}. */
export interface Exp1Options {
  impersonate: boolean;
  low: boolean;
  length: number;
  transport: TransportChoice;
  log: Log;
}

/**
 * Runs the experiment over each transport chosen, one after the other (Windows only; throws
 * `NtError`/`UnsupportedError` where it cannot).
 */
export async function runExp1(o: Exp1Options): Promise<Exp1Document> {
  assertTransports("exp1", o.transport);
  const runs = await runTransports(o.transport, (t) => runOnce(t, o));
  return { schema: EXP1_SCHEMA, ran: true, ...runs };
}

/** One run over transport `t`: its own lab, server and client, all cleaned up. */
async function runOnce(t: Transport, o: Exp1Options): Promise<Exp1Run> {
  const t0 = performance.timeOrigin + performance.now();
  return await runPhases({
    // 1. Set up (the lab, the server); 5. clean up: `cleanup` closes the tokens, the lab files
    // (delete-on-close) and the server.
    setUp: (cleanup) => setUpExp1(cleanup, { ...o, transport: t }),
    // 2. Act: the client, unprivileged.
    act: async ({ self, portName, lab, vault, server }, cleanup) => {
      const restricted = cleanup.use(
        self.restricted({
          denyOnly: [WellKnownSid.Administrators],
          removePrivileges: true,
        }),
      );
      restricted.setIntegrity(o.low ? "Low" : "Medium");
      const run = await ChildProcess.runCaptured(
        await clientCommand(new URL("./exp1_client.ts", import.meta.url), [
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
          "--transport",
          t,
          "--json",
        ]),
        { token: restricted, timeoutMs: 120_000 },
      );
      if (run.exitCode !== 0) {
        throw new Error(
          `the client exited with ${run.exitCode ?? "a timeout"}: ${
            run.stderr.trim().split("\n").at(-1) ?? ""
          }`,
        );
      }
      // 3. Observe: the port's flags as the kernel shows them, then stop the server (it closes
      // its ports), keep its events.
      const portInfo = await server.portInfo();
      await server.stop();
      return { run, client: JSON.parse(run.stdout) as ClientDocument, portInfo };
    },
    observe: (s, { run, client, portInfo }) => {
      const { environment, lab, secret, folderSddl, drop, dropFolderSddl, vault, vaultFile } = s;
      const { portName, sddl, server, user } = s;
      const doc: Exp1Run = {
        transport: t,
        mode: o.impersonate ? "impersonate" : "confused-deputy",
        environment,
        lab: {
          folder: lab.path,
          secret,
          sddl: SECRET_SDDL,
          folderSddl,
          folderStored: lab.handle.securitySddl(o.low),
          drop,
          dropSddl: dropFolderSddl,
          dropStored: lab.folderHandle(drop)!.securitySddl(o.low),
          vault: vault.path,
          vaultFile,
          vaultSddl: VAULT_SDDL,
        },
        port: { name: portName, sddl },
        server: { pid: server.processId, tid: server.threadId, events: server.events },
        portInfo,
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
        ...(client.viaServer?.view ? { view: client.viaServer.view } : {}),
        probesRefused: probes.filter((p) => p.status !== "0x00000000").length,
        probes: probes.length,
        junction: junctionFinding(client.junction),
      };
      return doc;
    },
    // 4. Explain, from this run's evidence.
    explain: (doc) => ({ ...doc, explanation: explain(doc) }),
  });
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    run: (v, log) => runExp1({ ...v, log }),
    print: (doc) => runsOf(doc).forEach(([, r]) => printReport(r)),
  });
}
