/**
 * The `--help` text of every script, from its declarations: the usage, the options with their
 * ranges and defaults (`_options.ts`), the notes and the exit codes.
 *
 * @module
 */

import {
  type CliSpec,
  formatRange,
  optionLabel,
  type OptionSpec,
  showDefault,
} from "./_options.ts";

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
