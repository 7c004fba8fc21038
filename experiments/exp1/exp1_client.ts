#!/usr/bin/env -S deno run --allow-ffi
/**
 * Experiment 1, the client: who am I, can I open the file myself, and what does the server read
 * for me? And, as a hostile client: does the server follow a junction I plant in its `drop\`
 * folder to a folder only administrators may read? Started unprivileged by `exp1.ts`, or by hand
 * in a second terminal:
 *
 * ```sh
 * deno run --allow-ffi experiments/exp1/exp1_client.ts --port "\RPC Control\deno-lpc-exp1" --root C:\lab --path secret.txt
 * ```
 *
 * @module
 */

import { MAX_PATH_CHARS } from "./exp1_protocol.ts";
import { MAX_VIEW_READ_LENGTH } from "./exp1_view.ts";
import { type ClientDocument, runClient } from "./exp1_attempts.ts";
import { type Cli, type CliValues, driveFolder, UsageError } from "../_cli.ts";
import { runScript } from "../_runner.ts";
import { assertTransports, ONE_TRANSPORT_OPTION } from "../_transport.ts";

export { type Attempt, type ClientDocument, directTarget, runClient } from "./exp1_attempts.ts";

/** The largest `--offset` the server accepts (its check of the request). */
export const MAX_OFFSET = 1n << 62n;

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp1_client",
  usage: `exp1_client: ask the experiment-1 server (LPC or ALPC) to read part of a file for us.

Usage: deno run --allow-ffi experiments/exp1/exp1_client.ts --port <name> --path <file> [options]`,
  options: {
    port: {
      kind: "text",
      value: "name",
      required: true,
      help: 'the server\'s port, e.g. "\\RPC Control\\deno-lpc-exp1"',
    },
    path: {
      kind: "text",
      value: "file",
      required: true,
      help: "the file to read, relative to the server's root (e.g. secret.txt or sub\\x.txt; / " +
        "works as a separator). Sent as given: the server refuses absolute paths, '..' and ':' " +
        "itself; the direct open is tried only for a path the server would accept",
    },
    root: {
      kind: "text",
      value: "folder",
      help: "the server's root as we see it (absolute, or relative to the current folder): we " +
        "open <root>\\<file> ourselves first; without it, no direct attempt",
    },
    "junction-to": {
      kind: "text",
      value: "folder",
      help: "the hostile request: make a junction <root>\\drop\\j-<pid> to this folder (needs " +
        "--root and a drop folder we may write) and ask the server for " +
        "drop\\j-<pid>\\<--junction-file>; the junction is removed afterwards",
    },
    "junction-file": {
      kind: "text",
      value: "name",
      default: "vault.txt",
      help: "the file to ask for through the junction",
    },
    offset: {
      kind: "bigint",
      value: "n",
      min: 0n,
      max: MAX_OFFSET,
      default: 0n,
      help: "where to start reading",
    },
    length: {
      kind: "integer",
      value: "n",
      min: 1,
      max: MAX_VIEW_READ_LENGTH,
      default: 32,
      help: "how many bytes: up to 456 come in the reply, more (up to 1 MiB) through a view " +
        "(LPC: the connection's port view; ALPC: one sent with the request), checked against " +
        "the SHA-256 the server replies",
    },
    level: {
      kind: "choice",
      choices: ["Anonymous", "Identification", "Impersonation", "Delegation"],
      default: "Impersonation",
      help: "the impersonation level we allow the server",
    },
    "no-direct": { kind: "flag", help: "do not try to open the file ourselves first" },
    "no-probes": {
      kind: "flag",
      help: "do not send the malformed requests that check the server refuses them",
    },
    transport: ONE_TRANSPORT_OPTION,
    json: { kind: "flag", help: "print one JSON document (schema deno-lpc/exp1-client@2)" },
  },
  schema: "deno-lpc/exp1-client@2",
} as const satisfies Cli;

/** `drop\j-<pid>\`: what the junction request puts before `--junction-file` (pid: 10 digits at most). */
const JUNCTION_PREFIX_CHARS = "drop\\j-\\".length + 10;

type Values = CliValues<typeof CLI.options>;

/** What the declarations cannot say: --junction-to needs --root, and what fits one message. */
function prerequisites(v: Values): void {
  if (v["junction-to"] !== undefined && v.root === undefined) {
    throw new UsageError("--junction-to needs --root (the junction goes in <root>\\drop)");
  }
  if (v.path.length > MAX_PATH_CHARS) {
    throw new UsageError(`--path takes at most ${MAX_PATH_CHARS} characters (one LPC message)`);
  }
  if (v["junction-file"].length > MAX_PATH_CHARS - JUNCTION_PREFIX_CHARS) {
    throw new UsageError(
      `--junction-file takes at most ${MAX_PATH_CHARS - JUNCTION_PREFIX_CHARS} characters`,
    );
  }
  assertTransports("exp1_client", v.transport);
}

function run(v: Values): ClientDocument {
  return runClient({
    port: v.port,
    path: v.path,
    root: v.root === undefined ? undefined : driveFolder("root", v.root),
    junctionTo: v["junction-to"] === undefined
      ? undefined
      : driveFolder("junction-to", v["junction-to"]),
    junctionFile: v["junction-file"],
    offset: v.offset,
    length: v.length,
    level: v.level,
    direct: !v["no-direct"],
    probes: !v["no-probes"],
    transport: v.transport,
  });
}

function print(doc: ClientDocument): void {
  const id = doc.identity;
  console.log(
    `${doc.transport} client pid ${id.pid} tid ${id.tid}, ${id.user}, ${id.integrity} integrity, Administrators ${id.administrators}`,
  );
  if (doc.direct) {
    console.log(
      `direct open:    ${doc.direct.name}${
        doc.direct.text !== undefined ? ` "${doc.direct.text}"` : ""
      }`,
    );
  }
  const s = doc.viaServer;
  if (s) {
    console.log(
      `through server: ${s.name}${s.text !== undefined ? ` "${s.text}"` : ""}${
        s.reason ? ` (${s.reason})` : ""
      }`,
    );
    if (s.view) {
      console.log(
        `  ${s.view.length} bytes in the view at ${s.view.offset}, SHA-256 ${s.view.sha256} ${
          s.view.matches ? "matches" : "DOES NOT MATCH"
        } what the view holds`,
      );
    }
  }
  for (const p of doc.probes ?? []) {
    console.log(`probe ${p.what}: ${p.name || p.status} (${p.reason})`);
  }
  const j = doc.junction;
  if (j) {
    console.log(
      j.made && j.reply
        ? `junction ${j.path} -> ${j.target}: the server answered ${j.reply.name} at its ${j.reply.stage} check (${
          j.reply.reason ?? ""
        })`
        : `junction ${j.path} -> ${j.target}: could not be made (${j.createName})`,
    );
  }
}

if (import.meta.main) {
  await runScript(import.meta.url, { cli: CLI, prerequisites, run, print });
}
