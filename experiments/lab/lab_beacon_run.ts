/**
 * The lab's beacon (`experiments/ports/lab_beacon.ts`) around the ports walk: started first, its
 * ready line awaited (with a deadline), the walk run, then the beacon ended and waited for, on
 * every path (a failed walk, Ctrl-C). When it does not start (exit 3 under Wine, a failure, no
 * ready line in time) the walk runs anyway and the report says why there is no lab port.
 *
 * @module
 */

import type { Runner } from "./lab_runner.ts";

/** What the report keeps of the beacon: its ports and processes, or why it did not start. */
export type BeaconStatus =
  | {
    started: true;
    /** The server process (the beacon) and the client process it started. */
    server: number;
    client: number;
    /** Its ports (names as list_ports shows them) and their transports. */
    ports: { name: string; transport: string }[];
  }
  | { started: false; reason: string };

/** A running beacon as the lab sees it. */
export interface BeaconProcess {
  /** Its first stdout line, or everything it printed when it ended first (`null`: nothing). */
  readonly firstOutput: Promise<string | null>;
  /** Ends it (closes its stdin; kills it if it does not end soon) and waits: its stderr. */
  end(): Promise<{ code: number; stderr: string }>;
}

/** Starts the beacon (`deno` arguments); `signal` is the lab's Ctrl-C. */
export type BeaconStarter = (args: string[], signal: AbortSignal) => BeaconProcess;

/** How long the lab waits for the beacon's ready line. */
export const BEACON_READY_MS = 60_000;

/**
 * A starter from a {@link Runner} (which runs a child to its end): for a beacon that ends at once
 * (under Wine there is no LPC: it exits 3), its whole output is its first; ending it aborts the run.
 */
export function runnerStarter(run: Runner): BeaconStarter {
  return (args, signal) => {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const done = run(args, stop.signal).finally(() => signal.removeEventListener("abort", onAbort));
    return {
      firstOutput: done.then((r) => r.stdout.trim() || null, () => null),
      end: async () => {
        stop.abort();
        const r = await done.catch((e) => ({ code: 1, stderr: String(e) }));
        return { code: r.code, stderr: r.stderr };
      },
    };
  };
}

/** A starter for this Deno (Windows): stdin piped (closing it ends the beacon), stdout read. */
export function spawnStarter(cwd: URL, graceMs = 10_000): BeaconStarter {
  return (args, signal) => {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const kill = () => {
      try {
        child.kill("SIGKILL");
      } catch { /* it ended */ }
    };
    signal.addEventListener("abort", kill, { once: true });
    const stderr = new Response(child.stderr).text();
    const firstOutput = (async () => {
      let text = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        const nl = text.indexOf("\n");
        if (nl >= 0) return text.slice(0, nl).trim();
      }
      return text.trim() || null;
    })().catch(() => null);
    return {
      firstOutput,
      end: async () => {
        await child.stdin.close().catch(() => {});
        const timer = setTimeout(kill, graceMs);
        try {
          const { code } = await child.status;
          return { code, stderr: await stderr };
        } finally {
          clearTimeout(timer);
          signal.removeEventListener("abort", kill);
        }
      },
    };
  };
}

/** The beacon's status from what it printed (its ready line, or its failure document). */
export function beaconStatus(output: string | null, stderr: string): BeaconStatus {
  let doc: Record<string, unknown> | undefined;
  try {
    doc = output === null ? undefined : JSON.parse(output);
  } catch { /* not a document */ }
  if (doc?.ready === true && Array.isArray(doc.ports)) {
    return {
      started: true,
      server: doc.server as number,
      client: doc.client as number,
      ports: doc.ports as { name: string; transport: string }[],
    };
  }
  const last = stderr.trim().split(/\r?\n/).filter((l) => l.trim()).at(-1);
  const reason = typeof doc?.reason === "string" ? doc.reason : last ?? "it printed nothing";
  return { started: false, reason };
}

/**
 * Runs `walk` with the beacon up where it can be: starts it, waits for its ready line (at most
 * `readyMs`), runs `walk` (whatever the beacon did), then ends the beacon and waits for it, also
 * when `walk` throws.
 */
export async function withBeacon<T>(
  start: BeaconStarter,
  args: string[],
  o: { signal: AbortSignal; progress: (s: string) => void; readyMs?: number },
  walk: () => Promise<T>,
): Promise<{ value: T; beacon: BeaconStatus }> {
  const readyMs = o.readyMs ?? BEACON_READY_MS;
  const beacon = start(args, o.signal);
  let ended: ReturnType<BeaconProcess["end"]> | undefined;
  const end = () => (ended ??= beacon.end());
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), readyMs)));
    const first = await Promise.race([beacon.firstOutput, late]).finally(() => clearTimeout(timer));
    let status: BeaconStatus;
    if (first === "late") {
      status = { started: false, reason: `no ready line within ${readyMs / 1000} s` };
    } else {
      status = beaconStatus(first, "");
      // It did not start: it has ended (or ends now); its stderr says why.
      if (!status.started) status = beaconStatus(first, (await end()).stderr);
    }
    o.progress(
      status.started
        ? `ports: the beacon is up (${status.ports.map((p) => p.name).join(", ")})`
        : `ports: the beacon did not start: ${status.reason}`,
    );
    return { value: await walk(), beacon: status };
  } finally {
    await end();
  }
}
