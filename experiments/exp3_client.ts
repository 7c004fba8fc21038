#!/usr/bin/env -S deno run --allow-ffi
/**
 * Experiment 3, the client: every 100 ms it writes a heartbeat (a JSON line with the time) and,
 * with `--port`, sends the LPC server a request and records the reply. A debugger freezing it
 * shows up as a gap in the heartbeats (and in the server's requests).
 *
 * @module
 */

import { kernel32 } from "../ffi/kernel32.ts";
import { LpcClient } from "../ffi/lpc.ts";
import { assertWindows } from "../ffi/_loader.ts";
import { EXIT, EXIT_CODES_HELP, parseCli, runMain, UsageError } from "./_cli.ts";

const HELP = `exp3_client: a client that beats every 100 ms (started by exp3.ts).

Usage: deno run --allow-ffi experiments/exp3_client.ts [options]

Options:
  --seconds <n>   beat for n seconds, then exit 0 (default 15)
  --port <name>   also send the LPC server a request each beat
  --register      register the main thread's termination port with that server
  --help          this text

Output: one JSON line per beat: {"at": epoch ms, "n": beat, "reply"?: text, "rttMs"?: round trip}.

${EXIT_CODES_HELP}`;

async function main(args: string[]): Promise<number> {
  const v = parseCli(args, {
    seconds: { type: "string", default: "15" },
    port: { type: "string" },
    register: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (v.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  const seconds = Number(v.seconds);
  if (!(seconds > 0 && seconds <= 600)) throw new UsageError("--seconds must be 1..600");
  assertWindows("exp3_client");
  using client = v.port ? LpcClient.connect(v.port) : undefined;
  if (client && v.register) client.registerThreadTerminatePort();
  const tid = kernel32().GetCurrentThreadId();
  const end = Date.now() + seconds * 1000;
  for (let n = 0; Date.now() < end; n++) {
    const at = performance.timeOrigin + performance.now();
    const beat: Record<string, unknown> = { at: Math.round(at * 10) / 10, n, tid };
    if (client) {
      const reply = client.request(new TextEncoder().encode("HELLO"));
      beat.reply = new TextDecoder().decode(reply.data);
      beat.rttMs = Math.round((performance.timeOrigin + performance.now() - at) * 10) / 10;
    }
    console.log(JSON.stringify(beat));
    await new Promise((r) => setTimeout(r, 100));
  }
  return EXIT.OK;
}

if (import.meta.main) {
  await runMain("exp3_client", main);
}
