#!/usr/bin/env -S deno run --allow-ffi --allow-read
/**
 * Experiment 1, the server by hand: creates the port, serves READ requests from `--root` on its own
 * Worker thread, and prints each message as it arrives, until Ctrl-C (or `--seconds`).
 *
 * ```sh
 * deno run --allow-ffi --allow-read experiments/exp1/exp1_server.ts --root C:\lab                 # confused deputy
 * deno run --allow-ffi --allow-read experiments/exp1/exp1_server.ts --root C:\lab --impersonate   # safe mode
 * ```
 *
 * @module
 */

import { ServerWorker } from "../../ffi/lpc/server_worker.ts";
import type { LpcEvent } from "../../ffi/lpc/port.ts";
import { assertWindows } from "../../ffi/status.ts";
import { openProcessToken, tokenUserSid } from "../../ffi/nt/tokens.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import {
  type Cli,
  type CliValues,
  driveFolder,
  EXIT,
  interruptible,
  runCli,
  toJson,
} from "../_cli.ts";

/** The default port name (any user may create objects in `\RPC Control`). */
export const DEFAULT_PORT = "\\RPC Control\\deno-lpc-exp1";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp1_server",
  usage: `exp1_server: an LPC server that reads a few bytes of a file for its clients.

Usage: deno run --allow-ffi --allow-read experiments/exp1/exp1_server.ts --root <folder> [options]`,
  options: {
    root: {
      kind: "text",
      value: "folder",
      required: true,
      help: "the only folder it reads from (absolute, or relative to the current folder). " +
        "Clients name files relative to it; absolute paths, '..' and ':' are refused, files are " +
        "opened relative to a handle on the root with OBJ_DONT_REPARSE (no junction is " +
        "followed), and the final path of what was opened must lie under the root's",
    },
    port: { kind: "text", value: "name", default: DEFAULT_PORT, help: "the port to create" },
    impersonate: {
      kind: "flag",
      help: "SAFE MODE: impersonate the client before opening the file. Without it the server " +
        "reads as itself, a deliberate confused deputy: it hands out what the client may not read.",
    },
    everyone: {
      kind: "flag",
      help: "let every user connect (default: only your own user SID, SYSTEM, Administrators)",
    },
    low: {
      kind: "flag",
      help: "also let low-integrity clients connect (a Low mandatory label on the port)",
    },
    seconds: {
      kind: "integer",
      value: "n",
      min: 1,
      max: 86_400,
      help: "stop after n seconds; without it, run until Ctrl-C",
    },
    json: {
      kind: "flag",
      help: "print one JSON document (schema deno-lpc/exp1-server@1) when it stops",
    },
  },
  schema: "deno-lpc/exp1-server@1",
} as const satisfies Cli;

/** The port's DACL: PORT_CONNECT (0x1) for the given SID, all for SYSTEM and Administrators. */
export function portSddl(connectSid: string, low: boolean): string {
  return `D:(A;;0x1;;;${connectSid})(A;;GA;;;SY)(A;;GA;;;BA)${low ? "S:(ML;;NW;;;LW)" : ""}`;
}

/** One line of the live log. */
export function formatEvent(e: LpcEvent): string {
  const who = e.pid !== undefined ? ` pid ${e.pid} tid ${e.tid}` : "";
  const ids = e.messageId !== undefined
    ? ` msg ${e.messageId} len ${e.dataLength}/${e.totalLength}`
    : "";
  return `${e.t.toFixed(1).padStart(9)} ms  ${e.event.padEnd(22)}${who}${ids}${
    e.context ? ` ctx ${e.context}` : ""
  }${e.note ? `  ${e.note}` : ""}`;
}

async function main(v: CliValues<typeof CLI.options>): Promise<number> {
  const seconds = v.seconds;
  assertWindows("exp1_server");
  const root = driveFolder("root", v.root);
  let user: string;
  {
    using token = openProcessToken();
    user = tokenUserSid(token);
  }
  await using cleanup = interruptible();
  const options: Exp1HandlerOptions = { root, impersonate: v.impersonate };
  const server = cleanup.use(
    await ServerWorker.start({
      portName: v.port,
      sddl: portSddl(v.everyone ? "WD" : user, v.low),
      handlerModule: new URL("./exp1_handler.ts", import.meta.url),
      handlerOptions: options,
      onEvent: (e) => v.json || console.log(formatEvent(e)),
    }),
  );
  console.error(
    `serving ${v.port} (pid ${server.processId}, server thread ${server.threadId}), root ${root}; ` +
      (v.impersonate
        ? "SAFE MODE: files are opened while impersonating the client"
        : "CONFUSED DEPUTY: files are opened as this server (add --impersonate for the safe mode)"),
  );
  await new Promise<void>((resolve) => {
    if (seconds !== undefined) setTimeout(resolve, seconds * 1000);
    else Deno.addSignalListener("SIGINT", () => resolve());
  });
  await server.stop();
  if (v.json) {
    console.log(
      toJson({
        schema: "deno-lpc/exp1-server@1",
        port: v.port,
        root,
        impersonate: v.impersonate,
        events: server.events,
      }),
    );
  }
  return EXIT.OK;
}

if (import.meta.main) {
  await runCli(import.meta.url, CLI, main);
}
