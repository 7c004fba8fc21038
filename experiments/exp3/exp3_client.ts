#!/usr/bin/env -S deno run --allow-ffi
/**
 * Experiment 3, the client: every 100 ms it writes a heartbeat (a JSON line with the time) and,
 * with `--port`, sends the LPC server a request and records the reply. A debugger freezing it
 * shows up as a gap in the heartbeats (and in the server's requests).
 *
 * @module
 */

import { currentThreadId } from "../../mod.ts";
import { exp2Transport } from "../exp2/exp2_transport.ts";
import { assertTransports, ONE_TRANSPORT_OPTION } from "../_transport.ts";
import type { Cli, CliValues } from "../_cli.ts";
import { runSteps, sleep, writeJsonLine } from "../_runner.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "exp3_client",
  usage: `exp3_client: a client that beats every 100 ms (started by exp3.ts).

Usage: deno run --allow-ffi experiments/exp3/exp3_client.ts [options]`,
  options: {
    seconds: {
      kind: "integer",
      value: "n",
      min: 1,
      max: 600,
      default: 15,
      help: "beat for n seconds, then exit 0",
    },
    port: { kind: "text", value: "name", help: "also send the LPC server a request each beat" },
    register: {
      kind: "flag",
      help: "register the main thread's termination port with that server",
    },
    transport: ONE_TRANSPORT_OPTION,
  },
  notes:
    'Output: one JSON line per beat: {"at": epoch ms, "n": beat, "reply"?: text, "rttMs"?: round trip}.',
} as const satisfies Cli;

/** Beats every 100 ms for `--seconds` (one JSON line each, with the LPC reply when connected). */
async function beat(v: CliValues<typeof CLI.options>): Promise<void> {
  const seconds = v.seconds;
  if (v.port) assertTransports("exp3_client", v.transport);
  using client = v.port ? exp2Transport(v.transport).connect(v.port) : undefined;
  if (client && v.register) client.registerThreadTerminatePort();
  const tid = currentThreadId();
  const end = Date.now() + seconds * 1000;
  for (let n = 0; Date.now() < end; n++) {
    const at = performance.timeOrigin + performance.now();
    const beat: Record<string, unknown> = { n, tid };
    if (client) {
      const reply = client.request(new TextEncoder().encode("HELLO"));
      beat.reply = new TextDecoder().decode(reply);
      beat.rttMs = Math.round((performance.timeOrigin + performance.now() - at) * 10) / 10;
    }
    writeJsonLine(beat, at);
    await sleep(100);
  }
}

if (import.meta.main) await runSteps(import.meta.url, CLI, beat);
