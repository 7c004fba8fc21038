/**
 * The transport an experiment runs over: legacy LPC (`NtCreatePort`, the seed's lab) or ALPC
 * (`NtAlpcCreatePort`), or both one after the other. One declaration of the `--transport` option
 * for every experiment ({@link TRANSPORT_OPTION}; the client and server scripts take one transport,
 * {@link ONE_TRANSPORT_OPTION}), the check that the chosen transports exist here
 * ({@link assertTransports}: exit 3 with the missing export under Wine), and the runs of one
 * experiment over each chosen transport ({@link runTransports}), as its document carries them.
 *
 * @module
 */

import { assertWindows, unavailable, UnsupportedError } from "../mod.ts";

/** The transports, in the order `both` runs them. */
export const TRANSPORTS = ["lpc", "alpc"] as const;
/** One transport. */
export type Transport = typeof TRANSPORTS[number];
/** What `--transport` accepts. */
export type TransportChoice = Transport | "both";

/** `--transport lpc|alpc|both` of the experiments (default `lpc`, the seed's lab). */
export const TRANSPORT_OPTION = {
  kind: "choice",
  choices: ["lpc", "alpc", "both"],
  default: "lpc",
  help: "the kernel transport: lpc (the legacy NtCreatePort/NtConnectPort calls), alpc " +
    "(NtAlpcCreatePort/NtAlpcConnectPort/NtAlpcSendWaitReceivePort), or both, one after the " +
    "other, side by side in the document. ALPC needs a Windows whose ntdll exports it (Wine " +
    "8.0 does not: exit 3)",
} as const;

/** `--transport lpc|alpc` of a client or server script (one transport at a time). */
export const ONE_TRANSPORT_OPTION = {
  kind: "choice",
  choices: ["lpc", "alpc"],
  default: "lpc",
  help: "the kernel transport: lpc (legacy) or alpc; both sides of a connection use the same",
} as const;

/** The transports a choice runs, in order. */
export function transportsOf(choice: TransportChoice): Transport[] {
  return choice === "both" ? [...TRANSPORTS] : [choice];
}

/** Why a transport cannot run here (the `unavailable()` reason), or `null`. */
export function transportUnavailable(t: Transport): string | null {
  return unavailable(t);
}

/**
 * Checks, before anything is set up, that `script` can run over `choice` here: Windows first (on
 * Linux the usual "needs Windows" line, naming the Wine command), then, when ALPC is chosen, that
 * this ntdll has it: under Wine an {@link UnsupportedError} naming the missing export (exit 3).
 * Legacy LPC is checked where it is first used, as before.
 */
export function assertTransports(script: string, choice: TransportChoice): void {
  assertWindows(script);
  if (!transportsOf(choice).includes("alpc")) return;
  const why = transportUnavailable("alpc");
  if (why !== null) throw new UnsupportedError(`--transport ${choice}: ${why}`);
}

/** What a document says of its transports: the choice, and one run per transport it ran. */
export interface TransportRuns<R> {
  /** `--transport`. */
  transport: TransportChoice;
  /** One run per transport, in {@link TRANSPORTS} order. */
  runs: Partial<Record<Transport, R>>;
}

/**
 * Runs `once` for each transport of `choice`, one after the other (each sets up and cleans up
 * all it needs), and gathers the runs by transport. A failing run ends the whole run.
 */
export async function runTransports<R>(
  choice: TransportChoice,
  once: (t: Transport) => Promise<R>,
): Promise<TransportRuns<R>> {
  const runs: Partial<Record<Transport, R>> = {};
  for (const t of transportsOf(choice)) runs[t] = await once(t);
  return { transport: choice, runs };
}

/** The runs of a document, in {@link TRANSPORTS} order, each with its transport. */
export function runsOf<R>(doc: { runs?: Partial<Record<Transport, R>> }): [Transport, R][] {
  return TRANSPORTS.flatMap((t) => {
    const r = doc.runs?.[t];
    return r === undefined ? [] : [[t, r] as [Transport, R]];
  });
}

/** How a transport is named in reports and logs. */
export const TRANSPORT_LABEL: Record<Transport, string> = { lpc: "LPC", alpc: "ALPC" };
