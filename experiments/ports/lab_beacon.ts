#!/usr/bin/env -S deno run --allow-ffi --allow-read --allow-run
/**
 * The lab's beacon: while the lab's ports walk runs, it hosts an LPC server (and an ALPC one where
 * the system has ALPC) on its own Worker thread, each behind a port only this user (and SYSTEM and
 * Administrators) may connect to, and a second process of itself (`--client`) holds a connection
 * to each. So the lab's graph shows a client process -> port -> server process edge of its own.
 *
 * It prints one JSON line when the ports exist and the client is connected, then waits until its
 * stdin closes, `--seconds` pass, or Ctrl-C, and closes the client, the servers and their Workers.
 * Without LPC (Linux, Wine) it exits 3 with the reason at once.
 *
 * ```sh
 * deno run --allow-ffi --allow-read --allow-run experiments/ports/lab_beacon.ts
 * ```
 *
 * @module
 */

import {
  AlpcServerWorker,
  assertWindows,
  ChildProcess,
  ServerWorker,
  unavailable,
  UnsupportedError,
} from "../../mod.ts";
import type { Cli, CliValues } from "../_cli.ts";
import { interruptible } from "../_cli.ts";
import { runScript, sleep, until } from "../_runner.ts";
import { clientCommand, portSddl, processIdentity, runPortName } from "../_setup.ts";
import { exp2Transport } from "../exp2/exp2_transport.ts";
import type { Transport } from "../_transport.ts";

/** The schema of the ready line. */
export const BEACON_SCHEMA = "deno-lpc/lab-beacon@1";

/** The ready line: the beacon's ports, its server and its client process. */
export interface BeaconReady {
  schema: typeof BEACON_SCHEMA;
  ready: true;
  /** The server process (this one). */
  server: number;
  /** The client process (`--client`). */
  client: number;
  /** Each port: its name and transport. */
  ports: { name: string; transport: Transport }[];
  /** Why there is no ALPC port, or null. */
  alpc: string | null;
}

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "lab_beacon",
  usage: `lab_beacon: lab ports with a connected client, while the lab's ports walk runs.

Usage: deno run --allow-ffi --allow-read --allow-run experiments/ports/lab_beacon.ts [options]

Prints one JSON line (schema ${BEACON_SCHEMA}) when its ports exist and its client process is
connected, then waits until stdin closes, --seconds pass, or Ctrl-C, and closes everything.`,
  options: {
    seconds: {
      kind: "integer",
      value: "n",
      min: 1,
      max: 3600,
      default: 600,
      help: "end after n seconds at the latest",
    },
    client: {
      kind: "flag",
      help: "be the client: connect to --port (and --alpc-port), hold the connections",
    },
    port: { kind: "text", value: "name", help: "with --client: the LPC port" },
    "alpc-port": { kind: "text", value: "name", help: "with --client: the ALPC port" },
  },
  notes: `Without LPC (Linux, Wine) it exits 3 with one line (and its failure document on stdout)
and leaves nothing behind.`,
  schema: BEACON_SCHEMA,
  jsonAlways: true,
} as const satisfies Cli;

type Values = CliValues<typeof CLI.options>;

/** The client: connects, sends one request on each connection every second until one fails. */
async function beClient(v: Values): Promise<void> {
  using lpc = v.port ? exp2Transport("lpc").connect(v.port) : undefined;
  using alpc = v["alpc-port"] ? exp2Transport("alpc").connect(v["alpc-port"]) : undefined;
  const end = Date.now() + v.seconds * 1000;
  const hello = new TextEncoder().encode("BEACON");
  while (Date.now() < end) {
    try {
      lpc?.request(hello);
      alpc?.request(hello);
    } catch {
      return; // the server is gone: so is the lab's walk
    }
    await sleep(1000);
  }
}

/** Resolves when stdin ends (the lab closed it, or ended). */
async function stdinClosed(): Promise<void> {
  try {
    for await (const _ of Deno.stdin.readable) { /* nothing is expected */ }
  } catch { /* no stdin: the same */ }
}

/** The server side: the ports, the client process, the ready line, the wait, the clean-up. */
async function beServer(v: Values): Promise<BeaconReady> {
  const alpcWhy = unavailable("alpc");
  await using cleanup = interruptible();
  const sddl = portSddl(processIdentity().user, false);
  const handlerModule = new URL("./_beacon_handler.ts", import.meta.url);
  const ports: BeaconReady["ports"] = [{ name: runPortName("lab-beacon-lpc"), transport: "lpc" }];
  const accepted: { pid?: number; event: string }[][] = [];
  const lpc = cleanup.use(
    await ServerWorker.start({ portName: ports[0]!.name, sddl, handlerModule }),
  );
  accepted.push(lpc.events);
  const args = ["--client", "--seconds", String(v.seconds), "--port", ports[0]!.name];
  if (alpcWhy === null) {
    const name = runPortName("lab-beacon-alpc");
    ports.push({ name, transport: "alpc" });
    const alpc = cleanup.use(await AlpcServerWorker.start({ portName: name, sddl, handlerModule }));
    accepted.push(alpc.events);
    args.push("--alpc-port", name);
  }
  const client = cleanup.use(
    ChildProcess.spawnCaptured(await clientCommand(new URL(import.meta.url), args)),
  );
  const pid = client.child.pid;
  await until(
    "the beacon client's connections",
    () => accepted.every((events) => events.some((e) => e.event === "accept" && e.pid === pid)),
    30_000, // within the lab's wait for the ready line (lab_beacon_run.ts), so its reason arrives
  );
  const ready: BeaconReady = {
    schema: BEACON_SCHEMA,
    ready: true,
    server: Deno.pid,
    client: pid,
    ports,
    alpc: alpcWhy,
  };
  console.log(JSON.stringify(ready));
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    stdinClosed(),
    new Promise((r) => (timer = setTimeout(r, v.seconds * 1000))),
  ]);
  clearTimeout(timer);
  return ready;
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    prerequisites: () => {
      assertWindows("lab_beacon");
      const why = unavailable("lpc");
      if (why !== null) throw new UnsupportedError(why);
    },
    run: async (v) => v.client ? (await beClient(v), null) : await beServer(v),
    // The ready line was the output; nothing more is printed.
    print: () => {},
  });
}
