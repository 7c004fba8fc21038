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

import { win32 } from "node:path";
import { isUnsupported, NtError } from "../ffi/status.ts";
import { shebangFlags } from "./_permissions.ts";
// For the Wine runner's flags: the task that runs it (tests/experiments/permissions_test.ts checks that they
// are its shebang's). A JSON import needs no permission; importing run.ts itself as text would
// make a later import of it as code fail in the same process (Deno 2.9).
import DENO_CONFIG from "../deno.json" with { type: "json" };

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
  2  bad usage (one line: the option and what it accepts)
  3  not supported on this system (not Windows x64, or Wine, or a Windows without the call);
     on Linux the line names the command that runs the script under Wine`;

/** A bad command line: printed with the usage, exit 2. */
export class UsageError extends Error {
  /** Always `"UsageError"`. */
  override name = "UsageError";
}

// ---------------------------------------------------------------------------------------------
// Options: declared once, parsed and described from the same declaration.

/** A switch: `--all`. */
export interface FlagOption {
  /** The kind. */
  readonly kind: "flag";
  /** What it does (one sentence; wrapped in `--help`). */
  readonly help: string;
}

/** A text value: `--root <dir>`. */
export interface TextOption {
  /** The kind. */
  readonly kind: "text";
  /** The value's name in `--help` (`dir`). */
  readonly value: string;
  /** What it does. */
  readonly help: string;
  /** The value when the option is absent. */
  readonly default?: string;
  /** The option must be given. */
  readonly required?: boolean;
  /** It may be given more than once (the values are collected). */
  readonly multiple?: boolean;
}

/** One of a few words: `--end detach|kill`. */
export interface ChoiceOption {
  /** The kind. */
  readonly kind: "choice";
  /** The words accepted. */
  readonly choices: readonly string[];
  /** What it does. */
  readonly help: string;
  /** The value when the option is absent. */
  readonly default?: string;
}

/** A whole number in a closed range: `--hold <ms>` in 0..60000. */
export interface IntegerOption {
  /** The kind. */
  readonly kind: "integer";
  /** The value's name in `--help` (`ms`, `n`). */
  readonly value: string;
  /** The smallest value accepted. */
  readonly min: number;
  /** The largest value accepted. */
  readonly max: number;
  /** What it does. */
  readonly help: string;
  /** The value when the option is absent. */
  readonly default?: number;
  /** Also accept `0x…` (and show the range and default in hex). */
  readonly hex?: boolean;
}

/** A whole number too large for a double: `--offset <n>` in 0..2^62. */
export interface BigIntegerOption {
  /** The kind. */
  readonly kind: "bigint";
  /** The value's name in `--help`. */
  readonly value: string;
  /** The smallest value accepted. */
  readonly min: bigint;
  /** The largest value accepted. */
  readonly max: bigint;
  /** What it does. */
  readonly help: string;
  /** The value when the option is absent. */
  readonly default?: bigint;
}

/** One option. */
export type OptionSpec = FlagOption | TextOption | ChoiceOption | IntegerOption | BigIntegerOption;

/** A script's options by name (without the leading `--`). `--help` (and `-h`) is always there. */
export type CliSpec = Readonly<Record<string, OptionSpec>>;

type ValueOf<O> = O extends FlagOption ? boolean
  : O extends TextOption ? O extends { multiple: true } ? string[]
    : O extends { default: string } | { required: true } ? string
    : string | undefined
  : O extends ChoiceOption
    ? O extends { default: string } ? O["choices"][number] : O["choices"][number] | undefined
  : O extends IntegerOption ? O extends { default: number } ? number : number | undefined
  : O extends BigIntegerOption ? O extends { default: bigint } ? bigint : bigint | undefined
  : never;

/** The parsed values of a {@link CliSpec}. */
export type CliValues<S extends CliSpec> = { -readonly [K in keyof S]: ValueOf<S[K]> };

/** A numeric option's range as `--help` and the error message give it: `0..60000`. */
export function formatRange(o: IntegerOption | BigIntegerOption): string {
  const show = (n: number | bigint) =>
    o.kind === "integer" && o.hex ? `0x${n.toString(16).toUpperCase()}` : n.toString();
  return `${show(o.min)}..${show(o.max)}`;
}

function showDefault(o: OptionSpec): string | undefined {
  if (o.kind === "flag" || o.default === undefined) return undefined;
  if (o.kind === "integer" && o.hex) return `0x${o.default.toString(16).toUpperCase()}`;
  return String(o.default);
}

/** `--name <value>` as `--help` shows it. */
function optionLabel(name: string, o: OptionSpec): string {
  switch (o.kind) {
    case "flag":
      return `--${name}`;
    case "choice":
      return `--${name} ${o.choices.join("|")}`;
    default:
      return `--${name} <${o.value}>`;
  }
}

/** What an option accepts, for the usage error: `0..60000 ms`, `detach or kill`. */
function accepts(o: OptionSpec): string {
  switch (o.kind) {
    case "flag":
      return "no value";
    case "text":
      return `a ${o.value}`;
    case "choice":
      return o.choices.length === 1
        ? o.choices[0]!
        : `${o.choices.slice(0, -1).join(", ")} or ${o.choices.at(-1)}`;
    default:
      return `a whole number in ${formatRange(o)}${o.value === "n" ? "" : ` (${o.value})`}`;
  }
}

/** The `(0..60000, default 2000)` that follows an option's description in `--help`. */
function helpSuffix(o: OptionSpec): string {
  const parts: string[] = [];
  if (o.kind === "integer" || o.kind === "bigint") parts.push(formatRange(o));
  const d = showDefault(o);
  if (d !== undefined) parts.push(`default ${d === "" ? '""' : d}`);
  if (o.kind === "text" && o.required) parts.push("required");
  if (o.kind === "text" && o.multiple) parts.push("repeatable");
  return parts.length ? ` (${parts.join(", ")})` : "";
}

const HELP_WIDTH = 100;

/** Wraps `text` to {@link HELP_WIDTH} columns, every line after the first indented by `indent`. */
function wrap(text: string, first: string, indent: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = lines.length === 0 ? first : " ".repeat(indent);
    let empty = true;
    for (const word of paragraph.split(" ").filter((w) => w !== "")) {
      if (!empty && line.length + 1 + word.length > HELP_WIDTH) {
        lines.push(line);
        line = " ".repeat(indent) + word;
      } else {
        line += (empty ? "" : " ") + word;
      }
      empty = false;
    }
    lines.push(line);
  }
  return lines;
}

/** The `Options:` section of `--help`, from the declarations (and `--help` itself). */
export function formatOptions(spec: CliSpec): string {
  const entries: [string, string][] = [
    ...Object.entries(spec).map(([name, o]): [string, string] => [
      optionLabel(name, o),
      o.help + helpSuffix(o),
    ]),
    ["--help", "this text"],
  ];
  const column = Math.min(24, Math.max(...entries.map(([l]) => l.length)) + 2);
  const out = ["Options:"];
  for (const [label, text] of entries) {
    const head = `  ${label}`;
    if (head.length + 2 > column + 2) {
      out.push(head);
      out.push(...wrap(text, " ".repeat(column + 2), column + 2));
    } else out.push(...wrap(text, head.padEnd(column + 2), column + 2));
  }
  return out.join("\n");
}

/** A script's command line: its name, its usage text and its options. */
export interface Cli<S extends CliSpec = CliSpec> {
  /** The name in messages (`list_ports`). */
  readonly name: string;
  /** What comes before the options in `--help`: a title line and the `Usage:` lines. */
  readonly usage: string;
  /** The options. */
  readonly options: S;
  /** What comes after the options in `--help` (before the exit codes). */
  readonly notes?: string;
  /**
   * The schema of the script's `--json` document: with `--json` (or {@link jsonAlways}), a
   * failure or a bad command line prints `{ schema, ran: false, exitCode, reason }`.
   */
  readonly schema?: string;
  /** The script prints JSON whether or not `--json` is given (the lab's probe). */
  readonly jsonAlways?: boolean;
  /** Replaces {@link EXIT_CODES_HELP} at the end of `--help`. */
  readonly exitCodes?: string;
}

/** The whole `--help` text. */
export function helpText(cli: Cli): string {
  return [
    cli.usage.trimEnd(),
    formatOptions(cli.options),
    cli.notes?.trim(),
    cli.exitCodes ?? EXIT_CODES_HELP,
  ]
    .filter((s) => s !== undefined && s !== "").join("\n\n");
}

const INTEGER = /^[+-]?\d+$/;
const HEX_INTEGER = /^[+-]?(?:\d+|0[xX][0-9a-fA-F]+)$/;

function toBigInt(text: string): bigint {
  const negative = text.startsWith("-");
  const digits = text.replace(/^[+-]/, "");
  const n = BigInt(digits);
  return negative ? -n : n;
}

function parseValue(name: string, o: OptionSpec, text: string): unknown {
  const bad = (): never => {
    throw new UsageError(`--${name} takes ${accepts(o)}, not ${JSON.stringify(text)}`);
  };
  switch (o.kind) {
    case "flag":
      throw new UsageError(`--${name} takes no value (got ${JSON.stringify(text)})`);
    case "text":
      return text;
    case "choice":
      return o.choices.includes(text) ? text : bad();
    case "integer": {
      if (!(o.hex ? HEX_INTEGER : INTEGER).test(text)) return bad();
      const n = toBigInt(text);
      return n < BigInt(o.min) || n > BigInt(o.max) ? bad() : Number(n);
    }
    case "bigint": {
      if (!INTEGER.test(text)) return bad();
      const n = toBigInt(text);
      return n < o.min || n > o.max ? bad() : n;
    }
  }
}

/**
 * Parses `args` against `spec`. `--name value` and `--name=value`; a value may start with `-`
 * (`--hold -5` is a value out of range, not an unknown option `-5`), but not with `--` (that is
 * the next option, and the value is missing). Unknown options, positional arguments, a missing or
 * bad value, and a missing required option throw {@link UsageError} naming the option and what it
 * accepts. `--help` / `-h` set `help` (and skip the required check).
 */
export function parseOptions<S extends CliSpec>(
  args: readonly string[],
  spec: S,
): CliValues<S> & { help: boolean } {
  const values: Record<string, unknown> = {};
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      throw new UsageError(
        arg.startsWith("-") && arg !== "--"
          ? `unknown option ${arg}`
          : `unexpected argument ${JSON.stringify(arg)}`,
      );
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const o = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (o === undefined) throw new UsageError(`unknown option --${name}`);
    let text: string | undefined;
    if (eq >= 0) text = arg.slice(eq + 1);
    else if (o.kind !== "flag") {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new UsageError(`--${name} needs a value: ${accepts(o)}`);
      }
      text = next;
      i++;
    }
    if (o.kind === "flag") {
      if (text !== undefined) parseValue(name, o, text);
      values[name] = true;
    } else if (o.kind === "text" && o.multiple) {
      ((values[name] ??= []) as string[]).push(text!);
    } else values[name] = parseValue(name, o, text!);
  }
  for (const [name, o] of Object.entries(spec)) {
    if (name in values) continue;
    if (o.kind === "flag") values[name] = false;
    else if (o.kind === "text" && o.multiple) values[name] = [];
    else if (o.default !== undefined) values[name] = o.default;
    else if (o.kind === "text" && o.required && !help) {
      throw new UsageError(`--${name} is required (${accepts(o)})`);
    }
  }
  return { ...values, help } as CliValues<S> & { help: boolean };
}

/**
 * A Windows folder named on the command line, as an absolute drive path (`C:\lab`): a relative
 * one (`lab`, `.\lab`, `C:lab`) is resolved against the current folder, `/` is a separator.
 * Throws {@link UsageError} for what is not on a drive (a UNC or device path, or a relative one
 * where `cwd` is not on a drive).
 */
export function driveFolder(option: string, text: string, cwd: string = Deno.cwd()): string {
  const resolved = win32.resolve(cwd, text);
  if (!/^[A-Za-z]:\\/.test(resolved)) {
    throw new UsageError(
      `--${option} takes a folder on a drive (C:\\...), not ${JSON.stringify(text)}`,
    );
  }
  return resolved;
}

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
    code = json
      ? reportFailure(cli.name, cli.schema!, true, e, wine)
      : reportFailure(cli.name, "", false, e, wine);
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
