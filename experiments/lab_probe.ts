#!/usr/bin/env -S deno run --allow-ffi --allow-sys=osRelease
/**
 * The lab's prerequisites, seen from the Windows side (run directly on Windows, under Wine on
 * Linux): the build, elevation, whether LPC, ALPC and exception ports exist, and whether the
 * server could obtain SYSTEM (SeDebugPrivilege held, a winlogon.exe to borrow a token from).
 * Nothing is changed. Prints one JSON document (schema deno-lpc/lab-probe@1).
 *
 * @module
 */

import { alpcUnavailable, exceptionPortUnavailable, lpcUnavailable } from "../ffi/capabilities.ts";
import { assertWindows } from "../ffi/_loader.ts";
import { wineVersion } from "../ffi/ntdll.ts";
import { listProcesses } from "../ffi/processes.ts";
import {
  openProcessToken,
  tokenIntegrity,
  tokenIsElevated,
  tokenPrivileges,
} from "../ffi/tokens.ts";
import { EXIT, EXIT_CODES_HELP, parseCli, runMain, toJson } from "./_cli.ts";

const HELP = `lab_probe: the lab's prerequisites, seen from the Windows side (run by the lab).

Usage: deno run --allow-ffi --allow-sys=osRelease experiments/lab_probe.ts [--json]

Prints one JSON document (schema deno-lpc/lab-probe@1); --json is the default. Changes nothing.
--allow-sys=osRelease lets it report the build.

${EXIT_CODES_HELP}`;

/** The probe's document. */
export interface ProbeDocument {
  /** Always `deno-lpc/lab-probe@1`. */
  schema: "deno-lpc/lab-probe@1";
  /** `windows`. */
  os: string;
  /** The OS version as reported (Wine reports the Windows version it emulates). */
  build: string;
  /** Deno's version. */
  deno: string;
  /** Whether the token is elevated. */
  elevated: boolean;
  /** The integrity level. */
  integrity: string;
  /** Wine's version under Wine. */
  wine: string | null;
  /** Why each capability is missing (`null` = present). */
  missing: {
    lpc: string | null;
    alpc: string | null;
    exceptionPort: string | null;
    system: string | null;
  };
}

/** Probes (Windows only). */
export function probe(): ProbeDocument {
  assertWindows("lab_probe");
  using token = openProcessToken();
  const debugHeld = tokenPrivileges(token).some((p) => p.name === "SeDebugPrivilege");
  const winlogon = listProcesses().some((p) => p.image.toLowerCase() === "winlogon.exe");
  const elevated = tokenIsElevated(token);
  return {
    schema: "deno-lpc/lab-probe@1",
    os: Deno.build.os,
    build: (() => {
      try {
        return Deno.osRelease();
      } catch {
        return "unknown";
      }
    })(),
    deno: Deno.version.deno,
    elevated,
    integrity: tokenIntegrity(token).name,
    wine: wineVersion(),
    missing: {
      lpc: lpcUnavailable(),
      alpc: alpcUnavailable(),
      exceptionPort: exceptionPortUnavailable(),
      system: !elevated || !debugHeld
        ? "not elevated, or SeDebugPrivilege not held: run from an elevated prompt"
        : winlogon
        ? null
        : "no winlogon.exe to borrow a SYSTEM token from",
    },
  };
}

function main(args: string[]): number {
  const v = parseCli(args, {
    json: { type: "boolean", default: true },
    help: { type: "boolean", default: false },
  });
  if (v.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  console.log(toJson(probe()));
  return EXIT.OK;
}

if (import.meta.main) {
  await runMain("lab_probe", main);
}
