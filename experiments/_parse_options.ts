/**
 * The command-line parser: `jsr:@std/cli`'s `parseArgs` reads the words, and a thin layer around
 * it gives the contract what `parseArgs` cannot express (each is said where it is done): a value
 * may start with `-` (`--hold -5` is a value out of range, `--port -x` a port name), a switch
 * given a value is an error, and unknown options, stray arguments and a lone `--` are usage
 * errors, not values collected in `_`. Then each value is checked against its declaration
 * (`_options.ts`): its kind, its range, the choices.
 *
 * @module
 */

import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { resolve as resolveWindows } from "jsr:@std/path@^1.1.6/windows/resolve";
import { accepts, type CliSpec, type CliValues, type OptionSpec, UsageError } from "./_options.ts";

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

/** `--name` or `--name=value`: the option's name (without `--`) and the value, if any. */
function split(arg: string): { name: string; value: string | undefined } {
  const eq = arg.indexOf("=");
  return eq < 0
    ? { name: arg.slice(2), value: undefined }
    : { name: arg.slice(2, eq), value: arg.slice(eq + 1) };
}

/**
 * What `parseArgs` cannot express, done before it: `--name value` becomes `--name=value` for a
 * declared option that takes a value, so that a value starting with `-` stays a value
 * (`parseArgs` would read `-5` as a short option and leave the value empty); a value starting
 * with `--` is the next option, so the value is missing. A switch given a value (`--json=1`, or
 * `--json false`, which `parseArgs` would read as its value) is refused here too.
 */
function pairValues(args: readonly string[], spec: CliSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (!arg.startsWith("--") || arg === "--") {
      out.push(arg);
      continue;
    }
    const { name, value } = split(arg);
    const o = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (o === undefined) out.push(arg); // parseArgs' `unknown` names it
    else if (o.kind === "flag") {
      if (value !== undefined) parseValue(name, o, value);
      const next = args[i + 1];
      if (next === "true" || next === "false") {
        throw new UsageError(`unexpected argument ${JSON.stringify(next)}`);
      }
      out.push(arg);
    } else if (value !== undefined) out.push(arg);
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new UsageError(`--${name} needs a value: ${accepts(o)}`);
      }
      out.push(`--${name}=${next}`);
      i++;
    }
  }
  return out;
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
  const entries = Object.entries(spec);
  const names = (test: (o: OptionSpec) => boolean) =>
    entries.filter(([, o]) => test(o)).map(([n]) => n);
  const paired = pairValues(args, spec);
  // parseArgs keeps what follows `--` apart; a lone `--` is a stray argument here.
  if (paired.includes("--")) throw new UsageError(`unexpected argument "--"`);
  const parsed = parseArgs(paired, {
    boolean: [...names((o) => o.kind === "flag"), "help"],
    string: names((o) => o.kind !== "flag"),
    collect: names((o) => o.kind === "text" && o.multiple === true),
    alias: { help: "h" },
    unknown: (arg: string, key?: string) => {
      if (key === undefined) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
      throw new UsageError(`unknown option ${arg.startsWith("--") ? arg.split("=")[0] : arg}`);
    },
  }) as Record<string, unknown>;
  const help = parsed.help === true;
  const values: Record<string, unknown> = { help };
  for (const [name, o] of entries) {
    const given = parsed[name];
    if (o.kind === "flag") values[name] = given === true;
    else if (o.kind === "text" && o.multiple) values[name] = (given ?? []) as string[];
    else if (typeof given === "string") values[name] = parseValue(name, o, given);
    else if (o.default !== undefined) values[name] = o.default;
    else if (o.kind === "text" && o.required && !help) {
      throw new UsageError(`--${name} is required (${accepts(o)})`);
    }
  }
  return values as CliValues<S> & { help: boolean };
}

/**
 * A Windows folder named on the command line, as an absolute drive path (`C:\lab`): a relative
 * one (`lab`, `.\lab`, `C:lab`) is resolved against the current folder, `/` is a separator.
 * Throws {@link UsageError} for what is not on a drive (a UNC or device path, or a relative one
 * where `cwd` is not on a drive).
 */
export function driveFolder(option: string, text: string, cwd: string = Deno.cwd()): string {
  const resolved = resolveWindows(cwd, text);
  if (!/^[A-Za-z]:\\/.test(resolved)) {
    throw new UsageError(
      `--${option} takes a folder on a drive (C:\\...), not ${JSON.stringify(text)}`,
    );
  }
  return resolved;
}
