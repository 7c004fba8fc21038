#!/usr/bin/env -S deno run --allow-ffi --allow-sys=osRelease
/**
 * The lab's prerequisites, seen from the Windows side (run directly on Windows, under Wine on
 * Linux): the build, elevation, whether LPC, ALPC and exception ports exist, and whether the
 * server can obtain SYSTEM: it tries the very steps experiment 2's server takes (enable
 * SeDebugPrivilege, borrow a SYSTEM process's token, impersonate it on this thread, enable
 * SeTcbPrivilege in it) and reverts the thread at once. Nothing else is changed. Prints one JSON
 * document (schema deno-lpc/lab-probe@1).
 *
 * @module
 */

import { assertWindows, impersonateSystem, Token, unavailable, wineVersion } from "../../mod.ts";
import type { Cli } from "../_cli.ts";
import { runScript } from "../_runner.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "lab_probe",
  usage: `lab_probe: the lab's prerequisites, seen from the Windows side (run by the lab).

Usage: deno run --allow-ffi --allow-sys=osRelease experiments/lab/lab_probe.ts [--json]`,
  options: {
    json: {
      kind: "flag",
      help: "print one JSON document (schema deno-lpc/lab-probe@1); the default",
    },
  },
  notes: `Prints one JSON document on every path, a failure included. Changes nothing.
--allow-sys=osRelease lets it report the build.`,
  schema: "deno-lpc/lab-probe@1",
  jsonAlways: true,
} as const satisfies Cli;

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
  /** Where SYSTEM came from when the attempt succeeded (`winlogon.exe (pid 612)`). */
  systemFrom?: string;
}

/**
 * Tries to become SYSTEM on this thread exactly as experiment 2's server does, then reverts:
 * `null` and the lender when it worked, otherwise why not (the failing step).
 */
export function trySystem(): { missing: string | null; from?: string } {
  let result: { missing: string | null; from?: string };
  try {
    using s = impersonateSystem();
    result = s.user !== "S-1-5-18" || !s.tcbEnabled
      ? { missing: `the borrowed token is ${s.user}, SeTcbPrivilege ${s.tcbEnabled}` }
      : {
        missing: null,
        from: `${s.fromImage} (pid ${s.fromPid})${
          s.refused.length ? `, after ${s.refused.length} that did not lend theirs` : ""
        }`,
      };
  } catch (e) {
    result = { missing: e instanceof Error ? e.message : String(e) };
  }
  // The thread had no token; after the revert it must have none again (the token, if any, is
  // closed before the throw).
  {
    using after = Token.openThread();
    if (after !== undefined) throw new Error("the probe thread is still impersonating");
  }
  return result;
}

/** Probes (Windows only). */
export function probe(): ProbeDocument {
  assertWindows("lab_probe");
  using token = Token.open();
  const debugHeld = token.privileges().some((p) => p.name === "SeDebugPrivilege");
  const elevated = token.elevated();
  const system: { missing: string | null; from?: string } = !elevated || !debugHeld
    ? { missing: "not elevated, or SeDebugPrivilege not held: run from an elevated prompt" }
    : trySystem();
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
    integrity: token.integrity().name,
    wine: wineVersion(),
    missing: {
      lpc: unavailable("lpc"),
      alpc: unavailable("alpc"),
      exceptionPort: unavailable("exception-port"),
      system: system.missing,
    },
    ...(system.from !== undefined ? { systemFrom: system.from } : {}),
  };
}

if (import.meta.main) {
  await runScript(import.meta.url, { cli: CLI, run: probe });
}
