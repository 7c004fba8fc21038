#!/usr/bin/env -S deno run --allow-ffi
/**
 * Experiment 2, the client: connects to the server, optionally registers its main thread's
 * termination port, waits until the server is its exception port, announces the exception it is
 * about to raise (`RAISE <code> <address>`: the server continues only that one), raises it as a
 * second-chance exception on a dedicated native thread, reports, and then waits to be terminated (or exits by
 * itself with `--exit`). Each step is one JSON line on stdout, written as it happens, so the
 * experiment keeps the steps of a client it kills.
 *
 * @module
 */

import { currentThreadId, raiseSecondChance } from "../../mod.ts";
import { raiseRequest } from "./exp2_analysis.ts";
import { type Exp2Connection, exp2Transport } from "./exp2_transport.ts";
import { assertTransports, ONE_TRANSPORT_OPTION } from "../_transport.ts";
import type { Cli, CliValues } from "../_cli.ts";
import { runSteps, sleep, writeJsonLine } from "../_runner.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp2_client",
  usage: `exp2_client: the client of experiment 2 (started by exp2.ts).

Usage: deno run --allow-ffi experiments/exp2/exp2_client.ts --port <name> [options]`,
  options: {
    port: { kind: "text", value: "name", required: true, help: "the server's port" },
    register: {
      kind: "flag",
      help: "register the main thread's termination port (NtRegisterThreadTerminatePort)",
    },
    code: {
      kind: "integer",
      value: "code",
      min: 0,
      max: 0xffff_ffff,
      hex: true,
      default: 0xe000_0001,
      help: "the exception code to raise, in decimal or 0x hex",
    },
    "no-raise": { kind: "flag", help: "do not raise an exception" },
    exit: {
      kind: "flag",
      help: "exit by itself after the exception (default: wait to be terminated)",
    },
    transport: ONE_TRANSPORT_OPTION,
  },
  notes: "Output: one JSON object per line: connected, registered, go, announced, raised, done.",
} as const satisfies Cli;

const line = writeJsonLine;

/** The client's steps: connect, (register), wait for GO, announce and raise, DONE; then wait. */
async function raiseAndReport(v: CliValues<typeof CLI.options>): Promise<void> {
  const code = v.code;
  const text = (s: string) => new TextEncoder().encode(s);
  const ask = (client: Exp2Connection, s: string) =>
    new TextDecoder().decode(client.request(text(s)));

  assertTransports("exp2_client", v.transport);
  using client = exp2Transport(v.transport).connect(v.port);
  const tid = currentThreadId();
  line({
    step: "connected",
    pid: Deno.pid,
    tid,
    transport: v.transport,
    reply: ask(client, "HELLO"),
  });
  if (v.register) {
    client.registerThreadTerminatePort(); // this (main) thread
    line({ step: "registered", tid });
  }
  for (let i = 0; ask(client, "READY?") !== "GO"; i++) {
    if (i > 600) throw new Error("the server never became our exception port");
    await sleep(100);
  }
  line({ step: "go", tid });
  if (!v["no-raise"]) {
    const r = await raiseSecondChance(code, [0x1234n, BigInt(Deno.pid)], 120_000, {
      beforeRaise: (raise) => {
        const text = raiseRequest(raise);
        const answer = ask(client, text);
        line({ step: "announced", request: text, reply: answer });
        if (answer !== "OK") throw new Error(`the server refused ${text}: ${answer}`);
      },
    });
    line({
      step: "raised",
      code: `0x${code.toString(16)}`,
      thread: r.tid,
      address: `0x${r.address.toString(16)}`,
      exitCode: r.exitCode === undefined ? null : `0x${r.exitCode.toString(16)}`,
    });
  }
  line({ step: "done", reply: ask(client, "DONE") });
  if (v.exit) return;
  setInterval(() => {}, 1 << 30); // wait here until terminated
  await new Promise(() => {});
}

if (import.meta.main) await runSteps(import.meta.url, CLI, raiseAndReport);
