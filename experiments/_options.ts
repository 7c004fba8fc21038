/**
 * A script's options, declared once ({@link CliSpec}): what each accepts, its range and its
 * default, read by the parser (`_parse_options.ts`), the `--help` text (`_help.ts`) and the usage
 * errors alike.
 *
 * @module
 */

/** A bad command line: printed with the usage, exit 2. */
export class UsageError extends Error {
  /** Always `"UsageError"`. */
  override name = "UsageError";
}

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

/** An option's default as `--help` shows it (hex where declared). */
export function showDefault(o: OptionSpec): string | undefined {
  if (o.kind === "flag" || o.default === undefined) return undefined;
  if (o.kind === "integer" && o.hex) return `0x${o.default.toString(16).toUpperCase()}`;
  return String(o.default);
}

/** `--name <value>` as `--help` shows it. */
export function optionLabel(name: string, o: OptionSpec): string {
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
export function accepts(o: OptionSpec): string {
  switch (o.kind) {
    case "flag":
      return "no value";
    case "text":
      return `a ${o.value}`;
    case "choice":
      return o.choices.length === 1
        ? String(o.choices[0])
        : `${o.choices.slice(0, -1).join(", ")} or ${o.choices.at(-1)}`;
    default:
      return `a whole number in ${formatRange(o)}${o.value === "n" ? "" : ` (${o.value})`}`;
  }
}
