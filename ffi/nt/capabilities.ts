/**
 * What this system can do, probed without side effects: real LPC ports, ALPC, exception ports.
 * Each probe returns `null` when the capability is there, or a one-line reason naming the status
 * or the missing export (Wine 8.0 stubs LPC with `STATUS_NOT_IMPLEMENTED` and lacks ALPC).
 *
 * @module
 */

import { currentProcess, handleCell, NtHandle } from "./handle.ts";
import { ntdll } from "../ntdll.ts";
import { ProcessInfoClass } from "./processes.ts";
import { describeStatus, NTSTATUS, ntSuccess, toUnsigned } from "../status.ts";
import { PORT_MAXIMUM_MESSAGE_LENGTH } from "../port_message.ts";

function notWindows(): string | null {
  return Deno.build.os === "windows" ? null : `needs Windows (this Deno is ${Deno.build.os})`;
}

const LPC_EXPORTS = [
  "NtCreatePort",
  "NtConnectPort",
  "NtAcceptConnectPort",
  "NtCompleteConnectPort",
  "NtReplyWaitReceivePort",
  "NtRequestWaitReplyPort",
  "NtReplyPort",
  "NtRequestPort",
  "NtImpersonateClientOfPort",
] as const;

/**
 * Why legacy LPC cannot run here, or `null` if it can: every LPC export the lab uses must exist,
 * and creating an unnamed port must succeed (the port is closed at once).
 *
 * @example
 * ```ts ignore
 * import { lpcUnavailable } from "./capabilities.ts";
 * const why = lpcUnavailable(); // under Wine: "ntdll!NtCreatePort returned STATUS_NOT_IMPLEMENTED ..."
 * ```
 */
export function lpcUnavailable(): string | null {
  const os = notWindows();
  if (os) return os;
  const nt = ntdll() as unknown as Record<string, unknown>;
  const cell = handleCell();
  const status = ntdll().NtCreatePort(cell, null, 0, PORT_MAXIMUM_MESSAGE_LENGTH, 0);
  if (!ntSuccess(status)) {
    const stub = toUnsigned(status) === NTSTATUS.STATUS_NOT_IMPLEMENTED ? " (a Wine stub)" : "";
    return `ntdll!NtCreatePort returned ${describeStatus(status)}${stub}: real LPC needs Windows`;
  }
  NtHandle.fromCell("connection-port", cell, "probe port").close();
  const missing = LPC_EXPORTS.filter((name) => nt[name] === null);
  if (missing.length) return `this ntdll lacks ${missing.map((n) => `ntdll!${n}`).join(", ")}`;
  return null;
}

/** A feature {@link unavailable} probes. */
type Feature = "lpc" | "alpc" | "exception-port";

/**
 * Why a feature cannot run here, or `null` when it can, probed without side effects:
 *
 * - `"lpc"`: every legacy LPC export the lab uses exists, and an unnamed port can be created (it
 *   is closed at once);
 * - `"alpc"`: ALPC's exports exist;
 * - `"exception-port"`: `NtSetInformationProcess(ProcessExceptionPort)` is implemented (probed
 *   with a NULL port on this process, which no system accepts as a change).
 *
 * @param feature what to probe
 * @returns `null`, or a one-line reason naming the status or the missing export
 * @example Off Windows every feature is unavailable, and the reason says so
 * ```ts
 * import { unavailable } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertStringIncludes } from "jsr:@std/assert@^1.0.19";
 *
 * if (Deno.build.os !== "windows") {
 *   assertStringIncludes(unavailable("lpc") ?? "", "needs Windows");
 *   assertStringIncludes(unavailable("exception-port") ?? "", "needs Windows");
 * } else {
 *   assertEquals(typeof (unavailable("alpc") ?? ""), "string");
 * }
 * ```
 */
export function unavailable(feature: "lpc" | "alpc" | "exception-port"): string | null {
  const probes: Record<Feature, () => string | null> = {
    "lpc": lpcUnavailable,
    "alpc": alpcUnavailable,
    "exception-port": exceptionPortUnavailable,
  };
  return probes[feature]();
}

/** Why ALPC cannot run here, or `null` (only the exports are checked). */
export function alpcUnavailable(): string | null {
  const os = notWindows();
  if (os) return os;
  return ntdll().NtAlpcCreatePort === null
    ? "this ntdll lacks ntdll!NtAlpcCreatePort (Wine 8.0 has no ALPC)"
    : null;
}

/**
 * Why process exception ports cannot be set here, or `null` if the mechanism exists. Probes with a
 * NULL port handle on our own process, which no system accepts as a change: Wine answers
 * `STATUS_NOT_IMPLEMENTED`; Windows answers with a privilege or handle error.
 */
export function exceptionPortUnavailable(): string | null {
  const os = notWindows();
  if (os) return os;
  const status = ntdll().NtSetInformationProcess(
    currentProcess(),
    ProcessInfoClass.ProcessExceptionPort,
    new BigUint64Array(1),
    8,
  );
  return toUnsigned(status) === NTSTATUS.STATUS_NOT_IMPLEMENTED
    ? `NtSetInformationProcess(ProcessExceptionPort) returned ${
      describeStatus(status)
    }: exception ports need Windows`
    : null;
}
