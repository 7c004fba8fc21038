#!/usr/bin/env -S deno run --allow-ffi --allow-read
/**
 * Experiment 2: the LPC server also becomes the client's **exception port**. It receives the
 * client's second-chance exception (`LPC_EXCEPTION`), replies with a verdict (the chosen one only
 * to the exception the client announced; DBG_EXCEPTION_NOT_HANDLED to any other), logs hard errors
 * (`LPC_ERROR_EVENT`), and, when the client dies, receives `LPC_CLIENT_DIED` for its threads and
 * the `LPC_PORT_CLOSED` of its connection (recognised by PortContext: it carries no ClientId).
 *
 * Run from an elevated prompt on Windows x64:
 *
 * ```sh
 * deno run --allow-ffi --allow-read experiments/exp2/exp2.ts
 * deno run --allow-ffi --allow-read experiments/exp2/exp2.ts --register --reply not-handled
 * ```
 *
 * @module
 */

import { ChildProcess, unavailable, UnsupportedError, wineVersion } from "../../mod.ts";
import {
  analyzeTimeline,
  answerQuestion2,
  connectionContexts,
  describeException,
  describeHardError,
  describePortClosed,
  type Exp2Event,
  hardErrorText,
  portClosedOn,
} from "./exp2_analysis.ts";
import { endOfClient, finalExit } from "./exp2_lifecycle.ts";
import type { Exp2HandlerOptions } from "./exp2_handler.ts";
import { EXP2_SCHEMA, type Exp2Document, type Exp2Run } from "./exp2_document.ts";
import { exp2Transport } from "./exp2_transport.ts";
import type { Cli } from "../_cli.ts";
import { jsonLines, type Log, runPhases, runScript, sleep, until } from "../_runner.ts";
import { clientCommand, portSddl, processIdentity, runPortName } from "../_setup.ts";
import { connected, formatEvent } from "../_server_events.ts";
import {
  assertTransports,
  runsOf,
  runTransports,
  type Transport,
  TRANSPORT_OPTION,
  type TransportChoice,
  transportsOf,
} from "../_transport.ts";

export type { Exp2Document, Exp2Run } from "./exp2_document.ts";

/** How long to watch the client after a DBG_EXCEPTION_NOT_HANDLED verdict (ms). */
const NOT_HANDLED_WAIT_MS = 30_000;

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp2",
  usage:
    `exp2: the LPC server becomes the client's exception port, receives its exception and its death.

Usage: deno run --allow-ffi --allow-read experiments/exp2/exp2.ts [options]
Run from an elevated prompt on Windows x64 (the server thread takes a SYSTEM token for SeTcbPrivilege).`,
  options: {
    register: {
      kind: "flag",
      help: "the client also registers its main thread's termination port",
    },
    reply: {
      kind: "choice",
      choices: ["continue", "not-handled"],
      default: "continue",
      help: "the verdict for the exception the client announced and raised: continue " +
        "(DBG_CONTINUE) or not-handled (DBG_EXCEPTION_NOT_HANDLED: the kernel then asks Windows " +
        "Error Reporting, whose answer decides; the run records what happened: the client's " +
        `exit code, or still running after ${NOT_HANDLED_WAIT_MS / 1000} s). Any other ` +
        "exception always gets DBG_EXCEPTION_NOT_HANDLED.",
    },
    "client-exits": {
      kind: "flag",
      help: "let the client exit by itself instead of terminating it",
    },
    "exit-code": {
      kind: "integer",
      value: "code",
      min: 0,
      max: 0xffff_ffff,
      hex: true,
      default: 0xdead,
      help: "the exit code used to terminate the client if it still runs, in decimal or 0x hex",
    },
    transport: TRANSPORT_OPTION,
    json: { kind: "flag", help: `print one JSON document (schema ${EXP2_SCHEMA})` },
  },
  schema: EXP2_SCHEMA,
} as const satisfies Cli;

/** The options of {@link runExp2}. */
export interface Exp2Options {
  register: boolean;
  reply: "continue" | "not-handled";
  clientExits: boolean;
  exitCode: number;
  transport: TransportChoice;
  log: Log;
}

/** What exp2 needs before it sets anything up: Windows with LPC and exception ports, elevated. */
function prerequisites(
  choice: TransportChoice,
): { user: string; environment: NonNullable<Exp2Run["environment"]> } {
  assertTransports("exp2", choice);
  const lpc = transportsOf(choice).includes("lpc") ? unavailable("lpc") : null;
  const missing = lpc ?? unavailable("exception-port");
  if (missing) throw new UnsupportedError(missing);
  const { user, elevated } = processIdentity();
  if (!elevated) {
    throw new Error(
      "exp2 needs an elevated prompt: the server thread borrows a SYSTEM token for SeTcbPrivilege",
    );
  }
  const environment = {
    pid: Deno.pid,
    user,
    elevated,
    wine: wineVersion(),
    alpc: unavailable("alpc"),
  };
  return { user, environment };
}

/** Runs the experiment over each transport chosen (Windows with exception ports only). */
export async function runExp2(o: Exp2Options): Promise<Exp2Document> {
  const { user, environment } = prerequisites(o.transport);
  const runs = await runTransports(o.transport, (t) => runOnce(t, o, user, environment));
  return { schema: EXP2_SCHEMA, ran: true, ...runs };
}

/** One run over transport `t`: its own server and client, cleaned up. */
async function runOnce(
  t: Transport,
  o: Exp2Options,
  user: string,
  environment: NonNullable<Exp2Run["environment"]>,
): Promise<Exp2Run> {
  return await runPhases({
    // 1. The server, on its own thread, as SYSTEM with SeTcbPrivilege; its port holds kernel
    // messages. Then the client.
    setUp: async (cleanup) => {
      const portName = runPortName(`exp2-${t}`);
      const handlerOptions: Exp2HandlerOptions = { system: true, reply: o.reply };
      const server = cleanup.use(
        await exp2Transport(t).startServer({
          portName,
          sddl: portSddl(user, false),
          // Kernel messages longer than the port's MaxMessageLength are dropped
          // (AlpcpSendMessage.c), and an undelivered exception ends the process
          // (KiDispatchException.c). LPC_EXCEPTION on an exception port is always 0xD0
          // (DbgkForwardException.c; 0x110 is the message to the WER error port only,
          // DbgkpSendErrorMessage.c), so 512 is ample.
          maxMessageLength: 512,
          handlerOptions,
          onEvent: (e: Exp2Event) =>
            o.log(
              `server ${formatEvent(e)}${
                e.hardError ? `  hard error ${hardErrorText(e.hardError)}` : ""
              }`,
            ),
        }),
      );
      const system = await server.command({ op: "system" });
      o.log(`server thread ${server.threadId} impersonates ${JSON.stringify(system)}`);
      const args = ["--port", portName, "--transport", t];
      if (o.register) args.push("--register");
      if (o.clientExits) args.push("--exit");
      const client = cleanup.use(
        ChildProcess.spawnCaptured(
          await clientCommand(new URL("./exp2_client.ts", import.meta.url), args),
        ),
      );
      const pid = client.child.pid;
      o.log(`client pid ${pid}`);
      await until("the client's connection", () => connected(server.events, pid), 60_000);
      return { portName, server, system, client, pid };
    },
    act: async ({ server, client, pid }) => {
      // LPC_PORT_CLOSED carries ClientId {0, 0} (AlpcpSendCloseMessage.c): the connection is
      // known by the PortContext it was accepted with.
      const contexts = connectionContexts(server.events, pid);
      // 3. The server becomes its exception port (on the server thread, as SYSTEM).
      const exceptionPort = await server.command({ op: "set-exception-port", pid });
      o.log(`exception port of ${pid} set: ${JSON.stringify(exceptionPort)}`);
      // 4. The exception, then the client's death.
      const ending = await endOfClient(o, server.events, client.child, pid, NOT_HANDLED_WAIT_MS);
      await until(
        "LPC_PORT_CLOSED",
        () => portClosedOn(server.events, contexts) !== undefined,
        30_000,
      ).catch(() => o.log("no LPC_PORT_CLOSED on the client's connection within 30 s"));
      await sleep(200);
      const exit = finalExit(client.child);
      const { stdout } = await client.output;
      await server.stop();
      return { exceptionPort, ending, exit, steps: jsonLines(stdout) };
    },
    observe: (s, a): Exp2Run => {
      const analysis = analyzeTimeline(s.server.events, s.pid);
      return {
        transport: t,
        options: { register: o.register, reply: o.reply, clientExits: o.clientExits },
        environment,
        system: s.system,
        exceptionPort: a.exceptionPort,
        server: {
          pid: s.server.processId,
          tid: s.server.threadId,
          port: s.portName,
          events: s.server.events,
        },
        client: { pid: s.pid, steps: a.steps, ...a.exit, ...a.ending },
        analysis,
      };
    },
    explain: (doc) => ({
      ...doc,
      ...(doc.analysis ? { answer: answerQuestion2(doc.analysis) } : {}),
    }),
  });
}

function print(doc: Exp2Run): void {
  const { analysis: a, client: c } = doc;
  if (!a || !c) return;
  console.log(
    `\nExperiment 2 over ${doc.transport}: client pid ${a.pid}, exit code ${c.exitCodeHex} (${c.terminatedBy})`,
  );
  for (const x of a.exceptions) console.log(describeException(x));
  for (const h of a.hardErrors) console.log(describeHardError(h));
  for (const d of a.deaths) {
    console.log(
      `LPC_CLIENT_DIED thread ${d.tid} via ${d.via} (context ${d.context})${
        d.knownThread ? "" : " [thread never seen]"
      } created ${d.createTime ?? "?"}`,
    );
  }
  console.log(describePortClosed(a));
  console.log(`\n${doc.answer}`);
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    run: (v, log) =>
      runExp2({
        register: v.register,
        reply: v.reply,
        clientExits: v["client-exits"],
        exitCode: v["exit-code"],
        transport: v.transport,
        log,
      }),
    print: (doc) => runsOf(doc).forEach(([, r]) => print(r)),
  });
}
