/**
 * What every lab script shares: exit codes, argument parsing with a usage error, mapping a
 * failure to a one-line message and an exit code, and JSON output that survives bigints.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { isUnsupported, NtError } from "../ffi/status.ts";

/** Exit codes, the same for every script (documented in each `--help` and the README). */
export const EXIT = {
  /** It ran and did what was asked. */
  OK: 0,
  /** Something failed (the message says what). */
  FAILURE: 1,
  /** Bad usage: an unknown option or a bad value. */
  USAGE: 2,
  /** Not supported on this system (not Windows, or Wine, or a Windows without this call). */
  UNSUPPORTED: 3,
} as const;

/** The exit-code paragraph for `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  failure (the message names the call and its NTSTATUS)
  2  bad usage
  3  not supported on this system (not Windows x64, or Wine, or a Windows without the call)`;

/** A bad command line: printed with the usage, exit 2. */
export class UsageError extends Error {
  /** Always `"UsageError"`. */
  override name = "UsageError";
}

/** `parseArgs` in strict mode, turning its errors into {@link UsageError}. */
export function parseCli<T extends ParseArgsConfig["options"]>(
  args: string[],
  options: T,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>["values"] {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

/** JSON with bigints as decimal strings and Dates as ISO strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2);
}

/** The exit code for an error, and a one-line message for stderr. */
export function describeFailure(script: string, e: unknown): { code: number; message: string } {
  if (e instanceof UsageError) {
    return { code: EXIT.USAGE, message: `${script}: ${e.message} (see --help)` };
  }
  const text = e instanceof Error ? e.message : String(e);
  if (isUnsupported(e)) {
    return { code: EXIT.UNSUPPORTED, message: `${script}: not supported here: ${text}` };
  }
  if (e instanceof NtError) return { code: EXIT.FAILURE, message: `${script}: ${text}` };
  return {
    code: EXIT.FAILURE,
    message: `${script}: ${e instanceof Error ? `${e.name}: ${text}` : text}`,
  };
}

/**
 * Runs a script's main function: prints a failure as one line on stderr and exits with the
 * matching code.
 */
export async function runMain(
  script: string,
  main: (args: string[]) => number | Promise<number>,
): Promise<never> {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    const f = describeFailure(script, e);
    console.error(f.message);
    code = f.code;
  }
  Deno.exit(code);
}

/**
 * Everything a script must undo (handles, Workers, child processes, lab files), also on Ctrl-C:
 * SIGINT disposes the stack, then exits with 130. Use `await using cleanup = interruptible()`.
 */
export function interruptible(): AsyncDisposableStack {
  const stack = new AsyncDisposableStack();
  let handler: (() => void) | undefined;
  if (Deno.build.os === "windows" || Deno.build.os === "linux" || Deno.build.os === "darwin") {
    handler = () => {
      console.error("interrupted: cleaning up");
      stack.disposeAsync().finally(() => Deno.exit(130));
    };
    try {
      Deno.addSignalListener("SIGINT", handler);
    } catch {
      handler = undefined; // no signal support here: normal unwinding still cleans up
    }
  }
  stack.defer(() => {
    if (handler) Deno.removeSignalListener("SIGINT", handler);
  });
  return stack;
}

/**
 * Reports an experiment that could not run or failed: one line on stderr, and with `--json` the
 * document `{ schema, ran: false, exitCode, reason }` on stdout. Returns the exit code.
 */
export function reportFailure(script: string, schema: string, json: boolean, e: unknown): number {
  const f = describeFailure(script, e);
  console.error(f.message);
  if (json) console.log(toJson({ schema, ran: false, exitCode: f.code, reason: f.message }));
  return f.code;
}
