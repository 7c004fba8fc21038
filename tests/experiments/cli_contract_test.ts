/**
 * One command-line contract for every runnable script (experiments/_cli.ts): each is run, with
 * exactly its shebang's flags, through the same table of bad inputs built from its declared
 * options (`CLI`): an unknown option, a negative number, a non-number, a value out of range and a
 * missing value for each numeric option, a bad word for each choice, a missing value for each
 * text option, a value given to a switch, a stray argument, `--help`, and `--json` with a bad
 * value. Each must exit with its code and write exactly one line on stderr (and, with `--json`,
 * one JSON document on stdout); `--help` exits 0 and states every numeric option's range.
 *
 * "Not supported" (exit 3, one line) is checked on Linux, where the line must name the exact
 * command that runs that script under Wine (built here from the two shebangs, and run once for
 * real when Wine is prepared), and under Wine, where the stub statuses must give exit 3 too.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertNotStrictEquals,
  assertStrictEquals,
  assertThrows,
  fail,
} from "@std/assert";
import {
  type Cli,
  driveFolder,
  formatOptions,
  formatRange,
  type OptionSpec,
  parseOptions,
  shellQuote,
  UsageError,
} from "../../experiments/_cli.ts";
import { directTarget } from "../../experiments/exp1/exp1_client.ts";
import { MAX_PATH_CHARS, MAX_READ_LENGTH } from "../../experiments/exp1/exp1_protocol.ts";
import { wineVersion } from "../../ffi/ntdll.ts";
import {
  ON_LINUX,
  ON_WINDOWS_BUILD,
  REPO_ROOT,
  run,
  runnableScripts,
  WINE_PREPARED,
} from "../_helpers.ts";

const UNDER_WINE = ON_WINDOWS_BUILD && wineVersion() !== null;
const WINE_RUNNER = "tests/wine/run.ts";

const SCRIPTS = runnableScripts();

/**
 * Arguments that take each script past its parser to its first Windows call (its required
 * options, with valid values). The scripts that are not listed do not need Windows to start.
 */
const TO_WINDOWS: Record<string, string[]> = {
  "experiments/exp1/exp1.ts": [],
  "experiments/exp1/exp1_client.ts": ["--port", "\\RPC Control\\deno-lpc-none", "--path", "x.txt"],
  "experiments/exp1/exp1_server.ts": ["--root", "lab", "--seconds", "1"],
  "experiments/exp2/exp2.ts": [],
  "experiments/exp2/exp2_client.ts": ["--port", "\\RPC Control\\deno-lpc-none"],
  "experiments/exp3/exp3.ts": ["--hold", "0"],
  "experiments/exp3/exp3_client.ts": ["--seconds", "1"],
  "experiments/lab/lab_probe.ts": [],
  "experiments/ports/list_ports.ts": ["--root", "\\Windows"],
  "experiments/ports/lab_beacon.ts": ["--seconds", "1"],
  "tests/bench/namespace_walk.ts": [],
};
/** Runnable scripts that start without Windows (the lab prepares Wine; the runners). */
const PORTABLE = [
  "experiments/lab/lab.ts",
  WINE_RUNNER,
  "tests/conformance/run.ts",
  "experiments/bench/bench.ts", // its loop part runs anywhere; the transport part says why not
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function deno(script: string, args: string[]): Promise<Run> {
  const r = await run(Deno.execPath(), ["run", ...SCRIPTS.get(script)!, script, ...args], {
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    deadlineMs: 120_000,
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const show = (what: string, r: Run) =>
  `${what}: exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** Exactly one non-empty line on stderr. */
function oneLine(what: string, r: Run): string {
  const lines = r.stderr.replace(/\r?\n$/, "").split(/\r?\n/);
  assertStrictEquals(lines.length, 1, show(`${what}: exactly one stderr line`, r));
  assertNotStrictEquals(lines[0]!.trim(), "", show(`${what}: a message`, r));
  return lines[0]!;
}

/** One JSON document on stdout: the failure document of `cli` with `exitCode`. */
function failureDocument(what: string, r: Run, cli: Cli, exitCode: number): void {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    fail(show(`${what}: stdout is one JSON document`, r));
  }
  assertStrictEquals(doc.schema, cli.schema, show(what, r));
  assertStrictEquals(doc.ran, false, show(what, r));
  assertStrictEquals(doc.exitCode, exitCode, show(what, r));
  assertStrictEquals(doc.reason, r.stderr.trim(), "the document's reason is the stderr line");
}

/** One bad command line and what it must give. */
interface Case {
  what: string;
  args: string[];
  /** The stderr line must match. */
  line: RegExp;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The table of bad inputs for a script with these options (valid `base` args first). */
export function badInputs(options: Record<string, OptionSpec>, base: string[]): Case[] {
  const cases: Case[] = [
    { what: "an unknown option", args: [...base, "--nope"], line: /unknown option --nope/ },
    { what: "a stray argument", args: [...base, "stray"], line: /unexpected argument "stray"/ },
    { what: "an unknown short option", args: [...base, "-z"], line: /unknown option -z/ },
  ];
  for (const [name, o] of Object.entries(options)) {
    const opt = `--${name}`;
    const named = new RegExp(`${esc(opt)}\\b`);
    switch (o.kind) {
      case "integer":
      case "bigint": {
        // The line names the option, its range and the value refused.
        const refused = (value: string) =>
          new RegExp(`${esc(opt)} .*${esc(formatRange(o))}.*${esc(JSON.stringify(value))}`);
        const above = (BigInt(o.max) + 1n).toString();
        const below = (BigInt(o.min) - 1n).toString();
        const values: [string, string][] = [
          ["-5", "negative"],
          [below, "below"],
          [above, "above"],
          ["abc", "not a number"],
          ["1.5", "not whole"],
          ["", "empty"],
        ];
        for (const [value, why] of values) {
          cases.push({
            what: `${opt} ${value} (${why})`,
            args: [...base, opt, value],
            line: refused(value),
          });
        }
        cases.push(
          { what: `${opt}=-5 (negative)`, args: [...base, `${opt}=-5`], line: refused("-5") },
          { what: `${opt} (missing value)`, args: [...base, opt], line: /needs a value/ },
          {
            what: `${opt} followed by an option (missing value)`,
            args: [...base, opt, "--help"],
            line: /needs a value/,
          },
        );
        break;
      }
      case "choice":
        cases.push(
          { what: `${opt} bogus`, args: [...base, opt, "bogus"], line: named },
          { what: `${opt} (missing value)`, args: [...base, opt], line: /needs a value/ },
        );
        break;
      case "text":
        cases.push({ what: `${opt} (missing value)`, args: [...base, opt], line: /needs a value/ });
        break;
      case "flag":
        cases.push({
          what: `${opt}=yes (a switch)`,
          args: [...base, `${opt}=yes`],
          line: /takes no value/,
        });
        break;
    }
  }
  return cases;
}

/** Runs `tasks` with at most `n` at a time. */
async function pool<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

/** The command the "not supported" line must name for `script args` (from the two shebangs). */
function expectedWineCommand(script: string, args: string[]): string {
  return [
    "deno",
    "run",
    ...SCRIPTS.get(WINE_RUNNER)!,
    WINE_RUNNER,
    "exec",
    "run",
    ...SCRIPTS.get(script)!,
    script,
    ...args,
  ].map(shellQuote).join(" ");
}

async function cliOf(script: string): Promise<Cli | undefined> {
  const mod = await import(new URL(script, new URL("../../", import.meta.url)).href);
  return (mod as { CLI?: Cli }).CLI;
}

// ---------------------------------------------------------------------------------------------
// The parser and the help, as functions.

const SPEC = {
  hold: { kind: "integer", value: "ms", min: 0, max: 60_000, default: 2000, help: "hold" },
  code: { kind: "integer", value: "code", min: 0, max: 0xffff_ffff, hex: true, help: "code" },
  offset: { kind: "bigint", value: "n", min: 0n, max: 1n << 62n, default: 0n, help: "at" },
  end: { kind: "choice", choices: ["detach", "kill"], default: "detach", help: "end" },
  port: { kind: "text", value: "name", required: true, help: "port" },
  type: { kind: "text", value: "name", multiple: true, help: "type" },
  json: { kind: "flag", help: "json" },
} as const;

Deno.test("parseOptions: values, defaults, --x=v, negative values are values, and one UsageError per mistake", () => {
  const v = parseOptions(["--port", "p", "--hold=0", "--code", "0xE0000001", "--type", "a"], SPEC);
  assertEquals(
    { ...v },
    {
      port: "p",
      hold: 0,
      code: 0xe000_0001,
      offset: 0n,
      end: "detach",
      type: ["a"],
      json: false,
      help: false,
    },
  );
  assertStrictEquals(parseOptions(["--port", "-x"], SPEC).port, "-x", "a value may start with -");
  assertStrictEquals(
    parseOptions(["--port", "p", "--offset", "4611686018427387904"], SPEC).offset,
    1n << 62n,
  );
  assertStrictEquals(parseOptions(["--help"], SPEC).help, true, "--help skips the required check");
  assertStrictEquals(parseOptions(["-h"], SPEC).help, true);
  const usage = (args: string[], re: RegExp) =>
    assertMatch(assertThrows(() => parseOptions(args, SPEC), UsageError).message, re);
  usage(
    ["--port", "p", "--hold", "-5"],
    /^--hold takes a whole number in 0\.\.60000 \(ms\), not "-5"$/,
  );
  usage(["--port", "p", "--hold", "60001"], /0\.\.60000/);
  usage(["--port", "p", "--hold", "0x10"], /0\.\.60000/); // hex only where declared
  usage(["--port", "p", "--code", "0x100000000"], /0\.\.0xFFFFFFFF/);
  usage(["--port", "p", "--offset", "4611686018427387905"], /0\.\.4611686018427387904/);
  usage(["--port", "p", "--end", "stop"], /^--end takes detach or kill, not "stop"$/);
  usage(["--port", "p", "--hold"], /^--hold needs a value: a whole number in 0\.\.60000 \(ms\)$/);
  usage(["--port", "--json"], /^--port needs a value/);
  usage(["--port", "p", "--json=1"], /^--json takes no value/);
  usage(["--port", "p", "--nope"], /^unknown option --nope$/);
  usage(["--port", "p", "x"], /^unexpected argument "x"$/);
  usage(["--port", "p", "--"], /^unexpected argument "--"$/);
  usage([], /^--port is required/);
  usage(["--port", "p", "--toString"], /^unknown option --toString$/);
});

Deno.test("formatOptions: every option once, with its range, default and what it takes", () => {
  const text = formatOptions(SPEC);
  assertMatch(text, /^ {2}--hold <ms> +hold \(0\.\.60000, default 2000\)$/m);
  assertMatch(text, /^ {2}--code <code> +code \(0x0\.\.0xFFFFFFFF\)$/m);
  assertMatch(text, /^ {2}--offset <n> +at \(0\.\.4611686018427387904, default 0\)$/m);
  assertMatch(text, /^ {2}--end detach\|kill +end \(default detach\)$/m);
  assertMatch(text, /^ {2}--port <name> +port \(required\)$/m);
  assertMatch(text, /^ {2}--type <name> +type \(repeatable\)$/m);
  assertMatch(text, /^ {2}--help +this text$/m);
  for (const line of text.split("\n")) assert(line.length <= 100, line);
});

Deno.test("driveFolder: relative folders resolve against the current one; no drive is a usage error", () => {
  assertStrictEquals(driveFolder("root", "lab", "C:\\Users\\me"), "C:\\Users\\me\\lab");
  assertStrictEquals(driveFolder("root", ".\\lab\\", "C:\\Users\\me"), "C:\\Users\\me\\lab");
  assertStrictEquals(driveFolder("root", "C:/lab/x", "Z:\\w"), "C:\\lab\\x");
  assertStrictEquals(driveFolder("root", "D:\\", "C:\\w"), "D:\\");
  assertThrows(() => driveFolder("root", "\\\\server\\share", "C:\\w"), UsageError);
  assertThrows(
    () => driveFolder("root", "lab", "\\\\server\\share"),
    Error,
    "--root takes a folder on a drive",
  );
});

Deno.test("exp1_client's direct open: the path as the server reads it, or not tried when the server refuses it", () => {
  assertStrictEquals(directTarget("C:\\lab", "x.txt"), "C:\\lab\\x.txt");
  assertStrictEquals(directTarget("C:\\lab\\", "sub/x.txt"), "C:\\lab\\sub\\x.txt");
  assertStrictEquals(directTarget("C:\\", "x.txt"), "C:\\x.txt");
  for (const bad of ["..\\x.txt", "C:\\Windows\\win.ini", "x.txt:s", "\\x.txt"]) {
    const a = directTarget("C:\\lab", bad);
    assertStrictEquals(typeof a, "object", bad);
    assertMatch((a as { reason: string }).reason, /^not tried: the server refuses this path too/);
    assertMatch((a as { name: string }).name, /^STATUS_OBJECT_(PATH_SYNTAX_BAD|NAME_INVALID)$/);
  }
  assert(MAX_PATH_CHARS > 100 && MAX_READ_LENGTH > 100);
});

// ---------------------------------------------------------------------------------------------
// Every script, run.

Deno.test("every runnable script declares its command line (CLI), or is the Wine runner", async () => {
  assertEquals(
    [...SCRIPTS.keys()].filter((s) => !(s in TO_WINDOWS) && !PORTABLE.includes(s)),
    [],
    "a new script: add it to TO_WINDOWS or PORTABLE",
  );
  for (const script of SCRIPTS.keys()) {
    const cli = await cliOf(script);
    if (script === WINE_RUNNER) assertStrictEquals(cli, undefined);
    else assert(cli, `${script} exports CLI`);
  }
});

for (const script of SCRIPTS.keys()) {
  if (script === WINE_RUNNER) continue;
  Deno.test({
    name:
      `${script}: the bad-input table (exit 2, one stderr line each), --help (exit 0, every range)${
        ON_LINUX ? "" : " (ignored: run by the Linux suite; the parser is the same code here)"
      }`,
    ignore: !ON_LINUX,
    async fn() {
      const cli = (await cliOf(script))!;
      // Valid values for the required options, so that each case tests one mistake.
      const base = Object.entries(cli.options).flatMap(([name, o]) =>
        o.kind === "text" && o.required ? [`--${name}`, "x"] : []
      );
      const cases = badInputs(cli.options, base);
      const results = await pool(4, cases.map((c) => () => deno(script, c.args)));
      cases.forEach((c, i) => {
        const r = results[i]!;
        const what = `${script} ${c.args.join(" ")} (${c.what})`;
        assertStrictEquals(r.code, 2, show(what, r));
        assertMatch(oneLine(what, r), c.line, show(what, r));
        assertMatch(r.stderr, new RegExp(`^${esc(cli.name)}: .* \\(see --help\\)\\r?\\n$`));
        if (cli.jsonAlways) failureDocument(what, r, cli, 2);
        else assertStrictEquals(r.stdout, "", show(`${what}: nothing on stdout without --json`, r));
      });

      const help = await deno(script, ["--help"]);
      assertStrictEquals(help.code, 0, show("--help", help));
      assertStrictEquals(help.stderr, "", show("--help", help));
      assertMatch(help.stdout, /Usage/);
      for (const [name, o] of Object.entries(cli.options)) {
        const label = o.kind === "flag"
          ? `--${name}`
          : o.kind === "choice"
          ? `--${name} ${o.choices.join("|")}`
          : `--${name} <${o.value}>`;
        // The option's entry: its label, and the lines indented below it.
        const entry = new RegExp(`^ {2}${esc(label)}(?: .*)?(?:\\n {4,}.*)*`, "m").exec(
          help.stdout,
        );
        assert(entry, `--help lists ${label}\n${help.stdout}`);
        if (o.kind === "integer" || o.kind === "bigint") {
          assert(
            entry[0].includes(formatRange(o)),
            `--help gives ${label}'s range: ${entry[0]}`,
          );
        }
      }

      if (cli.schema !== undefined) {
        const numeric = Object.entries(cli.options).find(([, o]) =>
          o.kind === "integer" || o.kind === "bigint"
        );
        const jsonCases = [[...base, "--json", "--nope"]];
        if (numeric) jsonCases.push([...base, "--json", `--${numeric[0]}`, "-5"]);
        for (const args of jsonCases) {
          const r = await deno(script, args);
          const what = `${script} ${args.join(" ")}`;
          assertStrictEquals(r.code, 2, show(what, r));
          oneLine(what, r);
          failureDocument(what, r, cli, 2);
        }
      }
    },
  });
}

Deno.test({
  name: `${WINE_RUNNER}: an unknown command, none, --help${
    ON_LINUX ? "" : " (ignored: Linux only, it runs Wine)"
  }`,
  ignore: !ON_LINUX,
  async fn() {
    for (const args of [["--nope"], [], ["frobnicate"]]) {
      const r = await deno(WINE_RUNNER, args);
      assertStrictEquals(r.code, 2, show(args.join(" "), r));
      assertMatch(
        oneLine(args.join(" "), r),
        /^run\.ts: .*test, exec, prepare or growth \(see --help\)$/,
      );
    }
    const help = await deno(WINE_RUNNER, ["--help"]);
    assertStrictEquals(help.code, 0, show("--help", help));
    assertMatch(help.stdout, /Usage/);
  },
});

Deno.test({
  name:
    `Linux: every script that needs Windows says so in one line (exit 3) naming the command that runs it under Wine${
      ON_LINUX ? "" : " (ignored: runs on the Linux build of Deno)"
    }`,
  ignore: !ON_LINUX,
  async fn() {
    const scripts = Object.keys(TO_WINDOWS);
    const runs = await pool(
      4,
      scripts.flatMap((
        s,
      ) => [() => deno(s, TO_WINDOWS[s]!), () => deno(s, [...TO_WINDOWS[s]!, "--json"])]),
    );
    for (const [i, script] of scripts.entries()) {
      const cli = (await cliOf(script))!;
      for (const [j, args] of [TO_WINDOWS[script]!, [...TO_WINDOWS[script]!, "--json"]].entries()) {
        const r = runs[2 * i + j]!;
        const what = `${script} ${args.join(" ")}`;
        if (j === 1 && !("json" in cli.options)) {
          assertStrictEquals(r.code, 2, show(`${what}: it has no --json`, r));
          continue;
        }
        assertStrictEquals(r.code, 3, show(what, r));
        const line = oneLine(what, r);
        assertStrictEquals(
          line,
          `${cli.name}: not supported here: needs Windows x64 (this Deno is ${Deno.build.os}/${Deno.build.arch}); run it under Wine: ${
            expectedWineCommand(script, args)
          }`,
        );
        if (j === 1 || cli.jsonAlways) failureDocument(what, r, cli, 3);
        else assertStrictEquals(r.stdout, "", show(what, r));
      }
    }
  },
});

// ---------------------------------------------------------------------------------------------
// --transport: every experiment runs over lpc (the default), alpc or both; where ALPC is missing
// (Linux, Wine 8.0) --transport alpc and both end before anything is set up, with exit 3.

/** The experiments, and their clients and servers (one transport each), with ALPC asked for. */
const ALPC_RUNS: { script: string; args: string[] }[] = [
  ...["experiments/exp1/exp1.ts", "experiments/exp2/exp2.ts", "experiments/exp3/exp3.ts"]
    .flatMap((script) =>
      ["alpc", "both"].map((t) => ({ script, args: [...TO_WINDOWS[script]!, "--transport", t] }))
    ),
  ...[
    "experiments/exp1/exp1_client.ts",
    "experiments/exp1/exp1_server.ts",
    "experiments/exp2/exp2_client.ts",
  ].map((script) => ({ script, args: [...TO_WINDOWS[script]!, "--transport", "alpc"] })),
  {
    script: "experiments/exp3/exp3_client.ts",
    args: ["--seconds", "1", "--port", "\\RPC Control\\deno-lpc-none", "--transport", "alpc"],
  },
];

Deno.test(
  `exp1, exp2 and exp3 --help list --transport lpc|alpc|both (default lpc); their clients and servers lpc|alpc${
    ON_LINUX ? "" : " (ignored: run by the Linux suite)"
  }`,
  {
    ignore: !ON_LINUX,
  },
  async () => {
    for (const script of new Set(ALPC_RUNS.map((r) => r.script))) {
      const cli = (await cliOf(script))!;
      const both = !script.match(/_(client|server)\.ts$/);
      const choices = both ? ["lpc", "alpc", "both"] : ["lpc", "alpc"];
      const o = cli.options.transport;
      assert(o?.kind === "choice", `${script} declares --transport`);
      assertEquals([o.choices, o.default], [choices, "lpc"], script);
      const help = await deno(script, ["--help"]);
      assertStrictEquals(help.code, 0, show(`${script} --help`, help));
      assertMatch(
        help.stdout,
        new RegExp(
          `^ {2}--transport ${esc(choices.join("|"))}(?:.*\\n {4,})*[^\\n]*default lpc\\)`,
          "m",
        ),
        script,
      );
      const bad = await deno(script, [...TO_WINDOWS[script]!, "--transport", "tcp"]);
      assertStrictEquals(bad.code, 2, show(`${script} --transport tcp`, bad));
      assertMatch(
        oneLine(script, bad),
        new RegExp(
          `--transport takes ${esc(choices.slice(0, -1).join(", "))} or ${
            choices.at(-1)
          }, not "tcp"`,
        ),
      );
    }
  },
);

Deno.test({
  name:
    `Linux: --transport alpc and both say "needs Windows" in one line (exit 3) naming the Wine command${
      ON_LINUX ? "" : " (ignored: runs on the Linux build of Deno)"
    }`,
  ignore: !ON_LINUX,
  async fn() {
    const runs = await pool(4, ALPC_RUNS.map((c) => () => deno(c.script, c.args)));
    for (const [i, c] of ALPC_RUNS.entries()) {
      const r = runs[i]!;
      const cli = (await cliOf(c.script))!;
      const what = `${c.script} ${c.args.join(" ")}`;
      assertStrictEquals(r.code, 3, show(what, r));
      assertStrictEquals(
        oneLine(what, r),
        `${cli.name}: not supported here: needs Windows x64 (this Deno is ${Deno.build.os}/${Deno.build.arch}); run it under Wine: ${
          expectedWineCommand(c.script, c.args)
        }`,
      );
    }
  },
});

Deno.test({
  name: `Linux: the command the "not supported" line names runs the script under Wine${
    !ON_LINUX
      ? " (ignored: runs on the Linux build of Deno)"
      : WINE_PREPARED
      ? ""
      : " (ignored: Wine is not prepared here; deno task test:wine prepares it)"
  }`,
  ignore: !ON_LINUX || !WINE_PREPARED,
  async fn() {
    const args = ["--root", "\\Windows", "--json"];
    const r = await deno("experiments/ports/list_ports.ts", args);
    assertStrictEquals(r.code, 3, show("list_ports", r));
    const command = r.stderr.trim().split("run it under Wine: ")[1]!;
    assert(command.startsWith("deno run "), command);
    // The same words, with this Deno for `deno`, through a shell (the quoting is part of it).
    const wine = await run("sh", ["-c", `"$DENO"${command.slice("deno".length)}`], {
      cwd: REPO_ROOT,
      env: { DENO: Deno.execPath(), NO_COLOR: "1" },
      deadlineMs: 240_000,
    });
    assertStrictEquals(wine.code, 0, show(command, wine));
    const doc = JSON.parse(wine.stdout);
    assertStrictEquals(doc.schema, "deno-lpc/ports@2");
    assertStrictEquals(doc.root, "\\Windows");
  },
});

Deno.test({
  name: `lab --out where no report can be written: one line, exit 2, before anything runs${
    ON_LINUX ? "" : " (ignored: run by the Linux suite)"
  }`,
  ignore: !ON_LINUX,
  async fn() {
    const tmp = Deno.makeTempDirSync({ prefix: "deno-lpc-cli-" });
    try {
      const file = `${tmp}/a-file`;
      Deno.writeTextFileSync(file, "");
      const cases: [string, RegExp][] = [
        [file, /is not a folder/],
        [`${file}/below`, /cannot use/],
        ["/proc/deno-lpc-lab", /cannot use .*choose another folder/],
        ["/sys/deno-lpc-lab", /cannot use .*choose another folder/], // unwritable, even for root
      ];
      for (const [out, re] of cases) {
        const started = performance.now();
        const r = await deno("experiments/lab/lab.ts", ["--only", "ports", "--out", out]);
        assertStrictEquals(r.code, 2, show(out, r));
        assertMatch(oneLine(out, r), re);
        assertMatch(r.stderr, /^lab: --out /);
        assert(performance.now() - started < 20_000, "it stopped before preparing Wine");
      }
      assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), ["a-file"], "nothing left");
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Under Wine: the stub statuses are "not supported" too, in one line.

const wineOnly = ON_WINDOWS_BUILD && !UNDER_WINE
  ? " (ignored: Wine's stubs; real Windows has these calls)"
  : !ON_WINDOWS_BUILD
  ? " (ignored: needs the Windows build of Deno under Wine: deno task test:wine)"
  : "";

/** Runs that end at a Wine stub: exit 3, one line naming the status. */
const WINE_STUBS: { script: string; args: string[]; line: RegExp }[] = [
  {
    script: "experiments/ports/list_ports.ts",
    args: ["--mode", "batch"],
    line: /^list_ports: not supported here: .*STATUS_NOT_IMPLEMENTED .*--mode auto or single/,
  },
  {
    script: "experiments/exp1/exp1.ts",
    args: [],
    line: /^exp1: not supported here: NtCreatePort /,
  },
  {
    script: "experiments/exp1/exp1_server.ts",
    args: ["--root", "C:\\", "--seconds", "1"],
    line: /^exp1_server: not supported here: NtCreatePort /,
  },
  {
    // A relative --root and a / in --path: what the help allows (no raw TypeError).
    script: "experiments/exp1/exp1_client.ts",
    args: ["--port", "\\RPC Control\\deno-lpc-none", "--root", ".", "--path", "tests/x.txt"],
    line: /^exp1_client: not supported here: NtConnectPort /,
  },
  { script: "experiments/exp2/exp2.ts", args: [], line: /^exp2: not supported here: / },
  {
    script: "experiments/exp2/exp2_client.ts",
    args: ["--port", "\\RPC Control\\deno-lpc-none"],
    line: /^exp2_client: not supported here: NtConnectPort /,
  },
];

Deno.test({
  name:
    `Wine: a stub status is "not supported": exit 3, one line, and with --json a document${wineOnly}`,
  ignore: wineOnly !== "",
  async fn() {
    for (const s of WINE_STUBS) {
      const cli = (await cliOf(s.script))!;
      const variants = "json" in cli.options ? [s.args, [...s.args, "--json"]] : [s.args];
      for (const args of variants) {
        const r = await deno(s.script, args);
        const what = `${s.script} ${args.join(" ")}`;
        assertStrictEquals(r.code, 3, show(what, r));
        assertMatch(oneLine(what, r), s.line, show(what, r));
        assertNotMatch(r.stderr, /TypeError/);
        if (args.includes("--json")) failureDocument(what, r, cli, 3);
      }
    }
  },
});

Deno.test({
  name:
    `Wine: --transport alpc and both exit 3 in one line naming the missing export, and with --json a document${wineOnly}`,
  ignore: wineOnly !== "",
  async fn() {
    for (const c of ALPC_RUNS) {
      const cli = (await cliOf(c.script))!;
      const variants = "json" in cli.options ? [c.args, [...c.args, "--json"]] : [c.args];
      for (const args of variants) {
        const r = await deno(c.script, args);
        const what = `${c.script} ${args.join(" ")}`;
        const t = args[args.indexOf("--transport") + 1]!;
        assertStrictEquals(r.code, 3, show(what, r));
        assertStrictEquals(
          oneLine(what, r),
          `${cli.name}: not supported here: --transport ${t}: this ntdll lacks ntdll!NtAlpcCreatePort (Wine 8.0 has no ALPC)`,
        );
        if (args.includes("--json")) failureDocument(what, r, cli, 3);
      }
    }
  },
});

Deno.test({
  name:
    `Wine: a failure with --json still prints its document; a bad value is one line there too${wineOnly}`,
  ignore: wineOnly !== "",
  async fn() {
    const r = await deno("experiments/ports/list_ports.ts", [
      "--root",
      "\\deno-lpc-none",
      "--json",
    ]);
    assertStrictEquals(r.code, 1, show("list_ports --root \\deno-lpc-none", r));
    const doc = JSON.parse(r.stdout);
    assertStrictEquals(doc.schema, "deno-lpc/ports@2");
    assertStrictEquals(doc.errors[0].name, "STATUS_OBJECT_NAME_NOT_FOUND");

    const bad = await deno("experiments/exp3/exp3.ts", ["--hold", "-5", "--json"]);
    assertStrictEquals(bad.code, 2, show("exp3 --hold -5", bad));
    assertMatch(oneLine("exp3 --hold -5", bad), /--hold takes a whole number in 0\.\.60000/);
    failureDocument("exp3 --hold -5 --json", bad, (await cliOf("experiments/exp3/exp3.ts"))!, 2);

    const probe = await deno("experiments/lab/lab_probe.ts", ["--help"]);
    assertStrictEquals(probe.code, 0, show("lab_probe --help", probe));
    assertMatch(probe.stdout, /Usage/);
  },
});

Deno.test({
  name:
    `list_ports: --waits and --dot need --graph, --dot and --json exclude each other; --help lists them${
      ON_LINUX ? "" : " (ignored: run by the Linux suite)"
    }`,
  ignore: !ON_LINUX,
  async fn() {
    const cases: [string[], RegExp][] = [
      [
        ["--waits"],
        /^list_ports: --waits adds the waiting threads to the graph: use it with --graph/,
      ],
      [["--dot"], /^list_ports: --dot prints the graph: use it with --graph/],
      [["--graph", "--dot", "--json"], /^list_ports: --dot and --json are two outputs: choose one/],
    ];
    for (const [args, re] of cases) {
      const r = await deno("experiments/ports/list_ports.ts", args);
      assertStrictEquals(r.code, 2, show(args.join(" "), r));
      assertMatch(oneLine(args.join(" "), r), re);
    }
    const help = await deno("experiments/ports/list_ports.ts", ["--help"]);
    assertStrictEquals(help.code, 0, show("--help", help));
    for (const o of ["--graph", "--waits", "--dot", "--json"]) {
      assertMatch(help.stdout, new RegExp(`^ {2}${o}\\b`, "m"), o);
    }
    assertMatch(help.stdout, /deno-lpc\/ports@2/);
  },
});
