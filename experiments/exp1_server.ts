#!/usr/bin/env -S deno run --allow-ffi
/**
 * Experiment 1, the server by hand: creates the port, serves READ requests from `--root` on its own
 * Worker thread, and prints each message as it arrives, until Ctrl-C (or `--seconds`).
 *
 * ```sh
 * deno run --allow-ffi experiments/exp1_server.ts --root C:\lab                 # confused deputy
 * deno run --allow-ffi experiments/exp1_server.ts --root C:\lab --impersonate   # safe mode
 * ```
 *
 * @module
 */

import { ServerWorker } from "../ffi/lpc_server_host.ts";
import type { LpcEvent } from "../ffi/lpc.ts";
import { assertWindows } from "../ffi/_loader.ts";
import { openProcessToken, tokenUserSid } from "../ffi/tokens.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import {
  EXIT,
  EXIT_CODES_HELP,
  interruptible,
  parseCli,
  runMain,
  toJson,
  UsageError,
} from "./_cli.ts";

/** The default port name (any user may create objects in `\RPC Control`). */
export const DEFAULT_PORT = "\\RPC Control\\deno-lpc-exp1";

const HELP = `exp1_server: an LPC server that reads a few bytes of a file for its clients.

Usage: deno run --allow-ffi experiments/exp1_server.ts --root <folder> [options]

Options:
  --root <folder>   the only folder it reads from (required). Clients name files relative to it;
                    absolute paths, '..' and ':' are refused, files are opened relative to a
                    handle on the root with OBJ_DONT_REPARSE (no junction is followed), and the
                    final path of what was opened must lie under the root's
  --port <name>     the port to create (default: ${DEFAULT_PORT})
  --impersonate     SAFE MODE: impersonate the client before opening the file. Without it the server
                    reads as itself, a deliberate confused deputy: it hands out what the client may
                    not read.
  --everyone        let every user connect (default: only your own user SID, SYSTEM, Administrators)
  --low             also let low-integrity clients connect (a Low mandatory label on the port)
  --seconds <n>     stop after n seconds (default: run until Ctrl-C)
  --json            print one JSON document (schema deno-lpc/exp1-server@1) when it stops
  --help            this text

${EXIT_CODES_HELP}`;

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

async function main(args: string[]): Promise<number> {
  const v = parseCli(args, {
    root: { type: "string" },
    port: { type: "string", default: DEFAULT_PORT },
    impersonate: { type: "boolean", default: false },
    everyone: { type: "boolean", default: false },
    low: { type: "boolean", default: false },
    seconds: { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (v.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  if (!v.root) throw new UsageError("--root is required");
  const seconds = v.seconds === undefined ? undefined : Number(v.seconds);
  if (seconds !== undefined && !(seconds > 0)) {
    throw new UsageError("--seconds must be a positive number");
  }
  assertWindows("exp1_server");
  let user: string;
  {
    using token = openProcessToken();
    user = tokenUserSid(token);
  }
  await using cleanup = interruptible();
  const options: Exp1HandlerOptions = { root: v.root, impersonate: v.impersonate! };
  const server = cleanup.use(
    await ServerWorker.start({
      portName: v.port!,
      sddl: portSddl(v.everyone ? "WD" : user, v.low!),
      handlerModule: new URL("./exp1_handler.ts", import.meta.url),
      handlerOptions: options,
      onEvent: (e) => v.json || console.log(formatEvent(e)),
    }),
  );
  console.error(
    `serving ${v.port} (pid ${server.processId}, server thread ${server.threadId}), root ${v.root}; ` +
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
        root: v.root,
        impersonate: v.impersonate,
        events: server.events,
      }),
    );
  }
  return EXIT.OK;
}

if (import.meta.main) {
  await runMain("exp1_server", main);
}
