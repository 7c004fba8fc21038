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

import type { LpcEvent } from "../../mod.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import { exp1Transport } from "./exp1_transport.ts";
import { type Cli, type CliValues, driveFolder } from "../_cli.ts";
import { type Log, runPhases, runScript } from "../_runner.ts";
import { formatEvent } from "../_server_events.ts";
import { portSddl, processIdentity } from "../_setup.ts";
import { assertTransports, ONE_TRANSPORT_OPTION, type Transport } from "../_transport.ts";

/** The default port name (any user may create objects in `\RPC Control`). */
export const DEFAULT_PORT = "\\RPC Control\\deno-lpc-exp1";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp1_server",
  usage: `exp1_server: an LPC (or ALPC) server that reads a few bytes of a file for its clients.

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
    transport: ONE_TRANSPORT_OPTION,
    json: {
      kind: "flag",
      help: "print one JSON document (schema deno-lpc/exp1-server@2) when it stops",
    },
  },
  schema: "deno-lpc/exp1-server@2",
} as const satisfies Cli;

export { portSddl } from "../_setup.ts";
export { formatEvent } from "../_server_events.ts";

/** The server's document (`--json`), written when it stops. */
export interface ServerDocument {
  /** Always `deno-lpc/exp1-server@2`. */
  schema: "deno-lpc/exp1-server@2";
  /** The transport it served over. */
  transport: Transport;
  port: string;
  root: string;
  impersonate: boolean;
  events: LpcEvent[];
}

type Values = CliValues<typeof CLI.options>;

/** Serves until Ctrl-C or `--seconds`, then returns the document. */
function serve(v: Values, log: Log): Promise<ServerDocument> {
  const root = driveFolder("root", v.root);
  const { user } = processIdentity();
  return runPhases({
    setUp: async (cleanup) => {
      const handlerOptions: Exp1HandlerOptions = { root, impersonate: v.impersonate };
      return cleanup.use(
        await exp1Transport(v.transport).startServer({
          portName: v.port,
          sddl: portSddl(v.everyone ? "WD" : user, v.low),
          handlerOptions,
          onEvent: (e) => log(formatEvent(e)),
        }),
      );
    },
    act: async (server) => {
      console.error(
        `serving ${v.port} over ${v.transport} (pid ${server.processId}, server thread ${server.threadId}), root ${root}; ` +
          (v.impersonate
            ? "SAFE MODE: files are opened while impersonating the client"
            : "CONFUSED DEPUTY: files are opened as this server (add --impersonate for the safe mode)"),
      );
      await new Promise<void>((resolve) => {
        if (v.seconds !== undefined) setTimeout(resolve, v.seconds * 1000);
        else Deno.addSignalListener("SIGINT", () => resolve());
      });
      await server.stop();
    },
    observe: (server): ServerDocument => ({
      schema: "deno-lpc/exp1-server@2",
      transport: v.transport,
      port: v.port,
      root,
      impersonate: v.impersonate,
      events: server.events,
    }),
  });
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    prerequisites: (v) => assertTransports("exp1_server", v.transport),
    // The live log is the timeline (stdout); without --json nothing follows it.
    run: (v) => serve(v, v.json ? () => {} : (line) => console.log(line)),
    print: () => {},
  });
}
