/**
 * The one command-line contract of every runnable script (experiments/, and the runners in
 * tests/): exit codes; options declared once ({@link CliSpec}), read by both the parser and the
 * `--help` text, so every numeric option's range is stated where it is checked; a bad command line
 * is one stderr line and exit 2; a failure is one line (exit 1), "not supported" one line (exit
 * 3) with, on Linux, the exact command that runs the script under Wine; with `--json` a document
 * on stdout on every path. JSON output survives bigints.
 *
 * @module
 */

import { isUnsupported, NtError } from "../mod.ts";
import { shebangFlags } from "./_permissions.ts";
import { type Cli, EXIT, helpText } from "./_help.ts";
import type { CliSpec, CliValues } from "./_options.ts";
import { parseOptions } from "./_parse_options.ts";
import { UsageError } from "./_options.ts";
// For the Wine runner's flags: the task that runs it (tests/experiments/permissions_test.ts checks that they
// are its shebang's). A JSON import needs no permission; importing run.ts itself as text would
// make a later import of it as code fail in the same process (Deno 2.9).
import DENO_CONFIG from "../deno.json" with { type: "json" };

export * from "./_options.ts";
export * from "./_help.ts";
export { driveFolder, parseOptions } from "./_parse_options.ts";

// ---------------------------------------------------------------------------------------------
// Failures: one line, an exit code, and the document with --json.

/** JSON with bigints as decimal strings and Dates as ISO strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2);
}

/** A word for a POSIX shell: left bare when safe, else in single quotes. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

const ROOT = new URL("../", import.meta.url);
const WINE_RUNNER = "tests/wine/run.ts";

/** The flags of the deno.json task that runs the Wine runner (`test:wine`). */
function wineRunnerFlags(): string[] {
  const tasks = DENO_CONFIG.tasks as Record<string, string | { command: string }>;
  for (const task of Object.values(tasks)) {
    const command = typeof task === "string" ? task : task.command;
    const words = command.split(/\s+/);
    const at = words.indexOf(WINE_RUNNER);
    if (words[0] === "deno" && words[1] === "run" && at > 1) return words.slice(2, at);
  }
  throw new Error(`deno.json has no task that runs ${WINE_RUNNER}`);
}

/**
 * The command that runs `script` (a file of this repository) with `args` under Wine, from the
 * repository root: the Wine runner with its flags, `exec run`, the script's shebang's flags (read
 * from `source`, its text), the script and the arguments.
 */
export function wineCommand(script: URL | string, source: string, args: readonly string[]): string {
  const href = new URL(script).href;
  const path = href.startsWith(ROOT.href) ? href.slice(ROOT.href.length) : href;
  return [
    "deno",
    "run",
    ...wineRunnerFlags(),
    WINE_RUNNER,
    "exec",
    "run",
    ...shebangFlags(source),
    path,
    ...args,
  ].map(shellQuote).join(" ");
}

/** The source of the running script: the main module may be imported as text without a permission. */
async function mainSource(script: URL | string): Promise<string | undefined> {
  try {
    return (await import(new URL(script).href, { with: { type: "text" } })).default as string;
  } catch {
    try {
      return await Deno.readTextFile(new URL(script));
    } catch {
      return undefined;
    }
  }
}

/**
 * The exit code for an error, and a one-line message for stderr. `wine`: the command that runs
 * the script under Wine; when this is not the Windows build of Deno, a "not supported" message
 * says it needs Windows and names that command.
 */
export function describeFailure(
  script: string,
  e: unknown,
  wine?: string,
): { code: number; message: string } {
  if (e instanceof UsageError) {
    return { code: EXIT.USAGE, message: `${script}: ${e.message} (see --help)` };
  }
  const text = (e instanceof Error ? e.message : String(e)).replace(/\s*\r?\n\s*/g, " ");
  if (isUnsupported(e)) {
    const message = Deno.build.os !== "windows" && wine !== undefined
      ? `needs Windows x64 (this Deno is ${Deno.build.os}/${Deno.build.arch}); run it under Wine: ${wine}`
      : text;
    return { code: EXIT.UNSUPPORTED, message: `${script}: not supported here: ${message}` };
  }
  if (e instanceof NtError) return { code: EXIT.FAILURE, message: `${script}: ${text}` };
  return {
    code: EXIT.FAILURE,
    message: `${script}: ${e instanceof Error ? `${e.name}: ${text}` : text}`,
  };
}

/**
 * Runs a script by its {@link Cli}: `--help` prints {@link helpText} (exit 0); otherwise the
 * parsed options go to `main`, whose number is the exit code. Anything thrown, a bad command line
 * included, is one line on stderr with its exit code ({@link describeFailure}), plus the failure
 * document on stdout when the script has a schema and `--json` was given. Call it from the
 * script as `await runCli(import.meta.url, CLI, main)`.
 */
export async function runCli<S extends CliSpec>(
  script: URL | string,
  cli: Cli<S>,
  main: (values: CliValues<S>) => number | Promise<number>,
  args: readonly string[] = Deno.args,
): Promise<never> {
  let code: number;
  try {
    const values = parseOptions(args, cli.options);
    if (values.help) {
      console.log(helpText(cli));
      code = EXIT.OK;
    } else code = await main(values);
  } catch (e) {
    const json = cli.schema !== undefined &&
      (cli.jsonAlways === true || args.includes("--json"));
    let wine: string | undefined;
    if (isUnsupported(e) && Deno.build.os !== "windows") {
      const source = await mainSource(script);
      if (source !== undefined) wine = wineCommand(script, source, args);
    }
    code = reportFailure(cli.name, json ? cli.schema ?? "" : "", json, e, wine);
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
 * Reports a failure: one line on stderr, and with `json` the document
 * `{ schema, ran: false, exitCode, reason }` on stdout. Returns the exit code.
 */
export function reportFailure(
  script: string,
  schema: string,
  json: boolean,
  e: unknown,
  wine?: string,
): number {
  const f = describeFailure(script, e, wine);
  console.error(f.message);
  if (json) console.log(toJson({ schema, ran: false, exitCode: f.code, reason: f.message }));
  return f.code;
}
