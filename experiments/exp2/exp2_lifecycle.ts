/**
 * How experiments 2 and 3 end their client and record what happened to it (pure over a small
 * process interface, so it is tested on Linux): a client is terminated only while it is alive;
 * one that has already exited is reported with its exit code, never terminated again, and that is
 * not an error.
 *
 * @module
 */

import type { LpcEvent } from "../../mod.ts";
import { until } from "../_runner.ts";
import { eventsOf } from "../_server_events.ts";
import { controlExchanges } from "./exp2_control.ts";

/** What the experiments need of a child process (`ChildProcess` has it). */
export interface ClientProcess {
  /** Waits up to `ms` synchronously; true once it has exited. */
  wait(ms: number): boolean;
  /** Waits up to `ms` without blocking the event loop; true once it has exited. */
  waitAsync(ms: number): Promise<boolean>;
  /** The exit code, or undefined while it runs. */
  exitCode(): number | undefined;
  /** Terminates it (throws if that fails). */
  terminate(exitCode: number): void;
}

/** How the client ended. */
export type ClientEnd =
  | { by: "itself"; exitCode: number | undefined }
  | { by: "server"; exitCode: number | undefined; requested: number };

/** `0x...` in upper case: how the documents show an exit code. */
export const hex32 = (n: number): string => `0x${(n >>> 0).toString(16).toUpperCase()}`;

/**
 * The client's exit code once it has ended (waiting up to 5 s; undefined if it still runs), and
 * the same in hex: the documents' `exitCode` and `exitCodeHex`.
 */
export function finalExit(
  child: Pick<ClientProcess, "wait" | "exitCode">,
): { exitCode: number | undefined; exitCodeHex?: string } {
  const exitCode = child.wait(5_000) ? child.exitCode() : undefined;
  return exitCode === undefined ? { exitCode } : { exitCode, exitCodeHex: hex32(exitCode) };
}

/**
 * Terminates `child` with `exitCode` only if it is still running. If it has already exited (or
 * exits while we try: the terminate fails and the wait then succeeds), it is reported as ended by
 * itself with its own exit code.
 */
export function endClient(child: ClientProcess, exitCode: number): ClientEnd {
  if (child.wait(0)) return { by: "itself", exitCode: child.exitCode() };
  try {
    child.terminate(exitCode);
  } catch (e) {
    if (child.wait(0)) return { by: "itself", exitCode: child.exitCode() };
    throw e;
  }
  return {
    by: "server",
    exitCode: child.wait(5_000) ? child.exitCode() : undefined,
    requested: exitCode,
  };
}

/** What happened after a DBG_EXCEPTION_NOT_HANDLED verdict, as observed (E5: WER decides). */
export type VerdictOutcome =
  | { outcome: "exited"; exitCode: number | undefined; afterMs: number }
  | { outcome: "still running"; waitedMs: number };

/**
 * Waits up to `timeoutMs` for the client to exit after it was told DBG_EXCEPTION_NOT_HANDLED and
 * records what happened. Nothing is assumed: the kernel hands the exception to the WER error port,
 * and WER's answer decides whether the process is terminated with the exception code or resumed
 * (DbgkpSendErrorMessage.c).
 */
export async function observeNotHandled(
  child: ClientProcess,
  timeoutMs: number,
  now: () => number = () => performance.now(),
): Promise<VerdictOutcome> {
  const start = now();
  const exited = await child.waitAsync(timeoutMs);
  const ms = Math.round(now() - start);
  return exited
    ? { outcome: "exited", exitCode: child.exitCode(), afterMs: ms }
    : { outcome: "still running", waitedMs: ms };
}

/** A sentence for the document and the output. */
export function describeEnd(end: ClientEnd): string {
  const code = end.exitCode === undefined ? "unknown" : hex32(end.exitCode);
  return end.by === "itself"
    ? `it had already exited by itself (exit code ${code}); it was not terminated again`
    : `the server terminated it (NtTerminateProcess ${hex32(end.requested)}), exit code ${code}`;
}

/** A sentence for what followed a DBG_EXCEPTION_NOT_HANDLED verdict. */
export function describeNotHandled(o: VerdictOutcome): string {
  return o.outcome === "exited"
    ? `after DBG_EXCEPTION_NOT_HANDLED the client exited ${o.afterMs} ms later with exit code ${
      o.exitCode === undefined ? "unknown" : hex32(o.exitCode)
    } (WER had the last word)`
    : `after DBG_EXCEPTION_NOT_HANDLED the client was still running ${o.waitedMs} ms later (WER answered that it was handled, or has not answered yet)`;
}

/**
 * How the client ended: after the verdict on its exception (`not-handled`: what WER did, within
 * `notHandledWaitMs`), or after its `DONE`; by itself, or terminated while it was alive.
 */
export async function endOfClient(
  o: {
    reply: "continue" | "not-handled";
    clientExits: boolean;
    exitCode: number;
    log: (line: string) => void;
  },
  events: readonly LpcEvent[],
  child: ClientProcess,
  pid: number,
  notHandledWaitMs: number,
): Promise<{ terminatedBy: string; end?: ClientEnd; afterNotHandled?: VerdictOutcome }> {
  if (o.reply === "not-handled") {
    await until(
      "the client's exception",
      () => eventsOf(events, "LPC_EXCEPTION", pid).length > 0,
      120_000,
    ).catch(() => o.log("no LPC_EXCEPTION from the client within 120 s"));
    const afterNotHandled = await observeNotHandled(child, notHandledWaitMs);
    o.log(describeNotHandled(afterNotHandled));
    if (afterNotHandled.outcome !== "still running") {
      return { terminatedBy: describeNotHandled(afterNotHandled), afterNotHandled };
    }
    const end = endClient(child, o.exitCode);
    return {
      terminatedBy: `${describeNotHandled(afterNotHandled)}; then ${describeEnd(end)}`,
      end,
      afterNotHandled,
    };
  }
  await until(
    "the client's DONE",
    () => controlExchanges(events, pid).some((x) => x.command === "DONE"),
    120_000,
  ).catch(() => {});
  if (o.clientExits) await child.waitAsync(60_000);
  const end = endClient(child, o.exitCode);
  return { terminatedBy: describeEnd(end), end };
}
