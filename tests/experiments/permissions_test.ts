/**
 * Every runnable script works with exactly the permissions its shebang gives it (nt-semantics E12:
 * Deno needs read access to start a Worker from a local file), and every other place that tells
 * you how to run it (its `--help` and header, the README, `deno.json`, the workflow, the lab, the
 * experiments that start a client) gives the same flags.
 *
 * The runs: `--help` everywhere; then each script with exactly its shebang's flags, far enough to
 * reach its first capability probe. On Linux that is the "needs Windows x64" exit (3), and the
 * Linux-only scripts (the lab, the Wine wrapper) run for real. Under the Windows build (Wine, or
 * Windows) each script runs past the Workers it starts: under Wine the LPC scripts end at the
 * `STATUS_NOT_IMPLEMENTED` stub (exit 3) and the rest run through; a missing permission shows up as
 * Deno's "Requires … access" error instead.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertNotStrictEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { shebangFlags } from "../../experiments/_permissions.ts";
import { wineVersion } from "../../ffi/ntdll.ts";
import {
  ON_LINUX,
  ON_WINDOWS_BUILD,
  REPO_ROOT,
  runnableScripts,
  WINE_PREPARED,
} from "../_helpers.ts";

const UNDER_WINE = ON_WINDOWS_BUILD && wineVersion() !== null;

/** Deno's words for a missing permission (`Deno.errors.NotCapable`, "Requires read access"). */
const PERMISSION_ERROR =
  /NotCapable|PermissionDenied|Requires \S+ access|run again with the --allow/;
/** The Wine stubs and missing exports the LPC scripts stop at (wine-harness.md). */
const WINE_LPC_STUB = /STATUS_NOT_IMPLEMENTED|lacks ntdll!/;
const NEEDS_WINDOWS = /needs Windows x64/;

/** How far each runnable script is run, and what that run must show. */
interface Probe {
  /** Arguments that take it to its first capability probe. */
  args: (tmp: string) => string[];
  /** It starts a Worker before (or as) its probe: removing --allow-read must fail the run. */
  worker?: boolean;
  /** Linux: what the run shows (default: exit 3, "needs Windows x64"). */
  linux?: Expect | { skip: string };
  /** The Windows build under Wine: what the run shows. `null`: Linux only. */
  wine: Expect | null;
  /** Real Windows: the exit codes a run may end with (any permission error still fails). */
  windows?: number[];
}
interface Expect {
  code: number;
  /** Must match stdout + stderr. */
  output: RegExp;
  /** More checks on the run. */
  check?: (r: Run, tmp: string) => void;
}

const NO_PORT = `\\RPC Control\\deno-lpc-permissions-test-${Deno.pid}`;

const PROBES: Record<string, Probe> = {
  "experiments/ports/list_ports.ts": {
    args: () => ["--root", "\\Windows"],
    wine: { code: 0, output: /listed below \\Windows/ },
    windows: [0],
  },
  "experiments/ports/lab_beacon.ts": {
    // Its prerequisite is LPC itself (an unnamed port, made and closed), before any Worker.
    args: () => ["--seconds", "1"],
    wine: {
      code: 3,
      output: /lab_beacon: not supported here: ntdll!NtCreatePort .*STATUS_NOT_IMPLEMENTED/,
    },
    windows: [0],
  },
  "experiments/exp1/exp1.ts": {
    args: () => [],
    worker: true, // the server Worker creates the port: that is the probe
    wine: { code: 3, output: /NtCreatePort .*STATUS_NOT_IMPLEMENTED/ },
    windows: [0, 1],
  },
  "experiments/exp1/exp1_server.ts": {
    args: () => ["--root", "C:\\", "--port", NO_PORT, "--seconds", "1"],
    worker: true,
    wine: { code: 3, output: /NtCreatePort .*STATUS_NOT_IMPLEMENTED/ },
    windows: [0],
  },
  "experiments/exp1/exp1_client.ts": {
    args: () => ["--port", NO_PORT, "--path", "C:\\deno-lpc-none.txt"],
    wine: { code: 3, output: /NtConnectPort .*STATUS_NOT_IMPLEMENTED/ },
    windows: [1], // no such port
  },
  "experiments/exp2/exp2.ts": {
    args: () => [],
    wine: { code: 3, output: WINE_LPC_STUB },
    windows: [0, 1, 3],
  },
  "experiments/exp2/exp2_client.ts": {
    args: () => ["--port", NO_PORT],
    wine: { code: 3, output: /NtConnectPort .*STATUS_NOT_IMPLEMENTED/ },
    windows: [1],
  },
  "experiments/exp3/exp3.ts": {
    args: () => ["--hold", "0", "--json"],
    worker: true, // the debugger Worker (and, on Windows, the server Worker)
    wine: {
      code: 0,
      output: /"schema": "deno-lpc\/exp3@2"/,
      check: (r) => assertStrictEquals(JSON.parse(r.stdout).ran, true, "the debugger half ran"),
    },
    windows: [0],
  },
  "experiments/exp3/exp3_client.ts": {
    args: () => ["--seconds", "1"],
    wine: { code: 0, output: /"n":\d+/ },
    windows: [0],
  },
  "experiments/lab/lab_probe.ts": {
    args: () => [],
    wine: {
      code: 0,
      output: /"schema": "deno-lpc\/lab-probe@1"/,
      // Deno.osRelease needs --allow-sys=osRelease; without it the probe says "unknown".
      check: (r) =>
        assertNotStrictEquals(JSON.parse(r.stdout).build, "unknown", "the build is read"),
    },
    windows: [0],
  },
  "experiments/lab/lab.ts": {
    args: (tmp) => ["--only", "ports", "--out", tmp],
    linux: WINE_PREPARED
      ? { code: 0, output: /\[lab [\d:]+\] done/, check: labWroteReport }
      : { skip: "Wine is not prepared here (deno task test:wine prepares it)" },
    wine: { code: 0, output: /\[lab [\d:]+\] done/, check: labWroteReport },
    windows: [0],
  },
  "tests/wine/run.ts": {
    args: () => ["exec", "--version"],
    linux: WINE_PREPARED
      ? { code: 0, output: /deno 2\.\d+\.\d+/ }
      : { skip: "Wine is not prepared here (deno task test:wine prepares it)" },
    wine: null, // it runs Wine: Linux only
  },
  "tests/conformance/run.ts": {
    args: () => ["--filter", "648"],
    linux: { code: 0, output: /conformance \(fake, linux\): [1-9]\d* passed, 0 failed/ },
    // Under Wine the real ntdll has no LPC, so the default kernel is the fake.
    wine: { code: 0, output: /conformance \(fake, windows[^)]*\): [1-9]\d* passed, 0 failed/ },
    windows: [0, 1],
  },
  "experiments/bench/bench.ts": {
    // The loop part runs here (a child Deno with V8 flags); the transport part needs LPC or ALPC,
    // and by default (--part auto) its absence is said, not an error.
    args: () => ["--messages", "200", "--round-trips", "10"],
    linux: { code: 0, output: /ns\/message[\s\S]*the transport part did not run here/ },
    wine: { code: 0, output: /ns\/message[\s\S]*the transport part did not run here/ },
    windows: [0],
  },
  "tests/bench/namespace_walk.ts": {
    args: () => [],
    wine: { code: 0, output: /"objects":[1-9]/ },
    windows: [0],
  },
};

function labWroteReport(_r: Run, tmp: string): void {
  const runs = [...Deno.readDirSync(tmp)];
  assertStrictEquals(runs.length, 1, "one report folder");
  const report = JSON.parse(Deno.readTextFileSync(`${tmp}/${runs[0]!.name}/report.json`));
  assertStrictEquals(report.schema, "deno-lpc/lab@2");
  assert(report.experiments.ports.status === "ran", JSON.stringify(report.experiments.ports));
  // Wine 8.0 has no ALPC: the report says so, with the probe's unavailable("alpc") reason.
  assertStrictEquals(
    report.transports.alpc,
    "this ntdll lacks ntdll!NtAlpcCreatePort (Wine 8.0 has no ALPC)",
  );
}

/** Every `deno run <flags> <script>` in `text` (scripts under experiments/ or tests/). */
function denoRunLines(text: string): { flags: string[]; script: string; line: number }[] {
  const re =
    /deno run((?:[ \t]+--?[A-Za-z][\w-]*(?:=[^\s`"'\\]+)?)*)[ \t]+((?:experiments|tests)\/[\w/]+\.ts)/g;
  const out = [];
  for (const m of text.matchAll(re)) {
    out.push({
      flags: m[1]!.trim().split(/\s+/).filter((w) => w !== ""),
      script: m[2]!,
      line: text.slice(0, m.index).split("\n").length,
    });
  }
  return out;
}

/** The files that tell a reader how to run a script. */
function docFiles(): string[] {
  const files = ["README.md", "deno.json"];
  for (const e of Deno.readDirSync(`${REPO_ROOT}.github/workflows`)) {
    files.push(`.github/workflows/${e.name}`);
  }
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(`${REPO_ROOT}${dir}`)) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory) walk(rel);
      else if (e.name.endsWith(".ts") && rel !== "tests/experiments/permissions_test.ts") {
        files.push(rel);
      }
    }
  };
  walk("experiments");
  walk("tests");
  return files;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `deno run <flags> <script> <args>` from the repository root, with a deadline. */
async function denoRun(flags: string[], script: string, args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, script, ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000),
  }).output();
  const td = new TextDecoder();
  return { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
}

const SCRIPTS = runnableScripts();
const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

Deno.test("every runnable script has a shebang with its flags, and a probe in this test", () => {
  assertEquals([...SCRIPTS.keys()].sort(), Object.keys(PROBES).sort());
  for (const [script, flags] of SCRIPTS) {
    assert(flags.length > 0, `${script}: a shebang without permissions`);
    assert(!flags.includes("-A") && !flags.includes("--allow-all"), `${script}: ${flags}`);
  }
});

Deno.test("shebangFlags reads the flags, and refuses a line that is not a deno run shebang", () => {
  assertEquals(
    shebangFlags("#!/usr/bin/env -S deno run --allow-ffi --allow-sys=osRelease\r\n/** x */"),
    ["--allow-ffi", "--allow-sys=osRelease"],
  );
  assertEquals(shebangFlags("#!/usr/bin/env -S deno run\n"), []);
  assertThrows(() => shebangFlags("#!/usr/bin/env node\n"), Error, "not a");
  assertThrows(() => shebangFlags("/** no shebang */"), Error, "not a");
});

Deno.test("every `deno run … <script>` line (help, headers, README, deno.json, workflow) has exactly the script's shebang flags", () => {
  let seen = 0;
  const wrong: string[] = [];
  for (const file of docFiles()) {
    for (const use of denoRunLines(Deno.readTextFileSync(`${REPO_ROOT}${file}`))) {
      const flags = SCRIPTS.get(use.script);
      if (!flags) continue; // not one of ours (a test fixture, say)
      seen++;
      if (use.flags.join(" ") !== flags.join(" ")) {
        wrong.push(
          `${file}:${use.line}: ${use.script} with "${use.flags.join(" ")}", its shebang says "${
            flags.join(" ")
          }"`,
        );
      }
    }
  }
  assertEquals(wrong, []);
  assert(seen >= 30, `only ${seen} lines found: is the pattern still right?`);
  // Each deno.json task that runs a script is among them.
  const tasks = JSON.parse(Deno.readTextFileSync(`${REPO_ROOT}deno.json`)).tasks as Record<
    string,
    string | { command: string }
  >;
  const runTasks = Object.values(tasks).map((t) => typeof t === "string" ? t : t.command)
    .filter((c) => c.startsWith("deno run "));
  assert(runTasks.length >= 5, "the lab, test:wine, ports and the experiments are tasks");
  for (const c of runTasks) assertStrictEquals(denoRunLines(c).length, 1, `a task: ${c}`);
});

Deno.test("the experiments start their clients with exactly the client's shebang flags", async () => {
  const { clientCommand } = await import("../../experiments/_setup.ts");
  let sites = 0;
  for (const folder of ["exp1", "exp2", "exp3"].map((f) => `experiments/${f}`)) {
    for (const e of Deno.readDirSync(`${REPO_ROOT}${folder}`)) {
      const source = Deno.readTextFileSync(`${REPO_ROOT}${folder}/${e.name}`);
      const where = `${folder}/${e.name}`;
      assertNotMatch(
        source,
        /Deno\.execPath\(\),\s*"run",\s*"--/,
        `${where}: no flags of its own`,
      );
      for (const m of source.matchAll(/clientCommand\(\s*new URL\("\.\/(\w+_client)\.ts"/g)) {
        const client = `${folder}/${m[1]!}.ts`;
        const argv = await clientCommand(new URL(`../../${client}`, import.meta.url), []);
        assertEquals(argv.slice(2, -1), SCRIPTS.get(client), `${where} starts ${client}`);
        sites++;
      }
    }
  }
  assert(sites >= 3, `exp1, exp2 and exp3 each start a client (found ${sites})`);
});

Deno.test("the lab starts each experiment with its shebang's flags (no list of its own)", () => {
  // The lab's command and how it runs its children (lab_runner.ts).
  const lab = ["lab.ts", "lab_runner.ts"]
    .map((f) => Deno.readTextFileSync(`${REPO_ROOT}experiments/lab/${f}`)).join("\n");
  assertMatch(lab, /scriptFlags\(/);
  assertNotMatch(lab, /"--allow-/, "lab.ts spells out no permission flags itself");
});

for (const [script, flags] of SCRIPTS) {
  Deno.test(`${script} --help with exactly "${flags.join(" ")}": exit 0, the usage names those flags`, async () => {
    const r = await denoRun(flags, script, ["--help"]);
    assertStrictEquals(r.code, 0, show(r));
    assertMatch(r.stdout, /Usage/, show(r));
    const uses = denoRunLines(r.stdout).filter((u) => u.script === script);
    assert(uses.length >= 1, `the usage shows the deno run line\n${show(r)}`);
    for (const u of uses) assertEquals(u.flags, flags);
  });
}

for (const [script, flags] of SCRIPTS) {
  const p = PROBES[script];
  if (!p) continue; // reported by the first test
  const linux = p.linux ?? { code: 3, output: NEEDS_WINDOWS };
  const linuxSkip = "skip" in linux ? linux.skip : undefined;
  Deno.test({
    name: ON_LINUX
      ? `Linux: ${script} with exactly its flags reaches its first capability probe${
        linuxSkip ? ` (ignored: ${linuxSkip})` : ""
      }`
      : `Linux: ${script} reaches its probe (ignored: runs on the Linux build of Deno)`,
    ignore: !ON_LINUX || linuxSkip !== undefined,
    async fn() {
      const e = linux as Expect;
      const tmp = Deno.makeTempDirSync({ prefix: "deno-lpc-perms-" });
      try {
        const r = await denoRun(flags, script, p.args(tmp));
        assertNotMatch(r.stdout + r.stderr, PERMISSION_ERROR, show(r));
        assertStrictEquals(r.code, e.code, show(r));
        assertMatch(r.stdout + r.stderr, e.output, show(r));
        e.check?.(r, tmp);
      } finally {
        Deno.removeSync(tmp, { recursive: true });
      }
    },
  });

  const windowsSkip = !ON_WINDOWS_BUILD
    ? "needs the Windows build of Deno (deno task test:wine, or Windows)"
    : p.wine === null
    ? "Linux only (it runs Wine)"
    : undefined;
  Deno.test({
    name: `Windows build: ${script} with exactly "${flags.join(" ")}" runs past ${
      p.worker ? "its Workers and " : ""
    }its first capability probe, with no permission error${
      windowsSkip ? ` (ignored: ${windowsSkip})` : ""
    }`,
    ignore: windowsSkip !== undefined,
    async fn() {
      const tmp = Deno.makeTempDirSync({ prefix: "deno-lpc-perms-" });
      try {
        const r = await denoRun(flags, script, p.args(tmp));
        assertNotMatch(r.stdout + r.stderr, PERMISSION_ERROR, show(r));
        if (UNDER_WINE) {
          const e = p.wine!;
          assertStrictEquals(r.code, e.code, show(r));
          assertMatch(r.stdout + r.stderr, e.output, show(r));
          e.check?.(r, tmp);
        } else {
          assert((p.windows ?? [0]).includes(r.code), show(r));
        }
      } finally {
        Deno.removeSync(tmp, { recursive: true });
      }
    },
  });

  if (p.worker) {
    // The other direction: without --allow-read the Worker cannot start, and that must show.
    Deno.test({
      name: `Windows build: ${script} without --allow-read fails to start its Worker${
        windowsSkip ? ` (ignored: ${windowsSkip})` : ""
      }`,
      ignore: windowsSkip !== undefined,
      async fn() {
        assert(
          flags.includes("--allow-read"),
          `${script} starts a Worker: its shebang needs --allow-read`,
        );
        const tmp = Deno.makeTempDirSync({ prefix: "deno-lpc-perms-" });
        try {
          const r = await denoRun(flags.filter((f) => f !== "--allow-read"), script, p.args(tmp));
          assertMatch(r.stderr, /Requires read access/, show(r));
          assertNotStrictEquals(r.code, 0, show(r));
        } finally {
          Deno.removeSync(tmp, { recursive: true });
        }
      },
    });
  }
}
