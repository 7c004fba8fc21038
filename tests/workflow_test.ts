/**
 * The Windows workflow (.github/workflows/windows.yml) is made to survive its first run: every
 * step has a deadline below the job's, each static check is its own step, later steps run after a
 * failure (`!cancelled()`), `always()` only on the uploads, the pinned Deno is the tested one,
 * the conformance document is uploaded as `conformance`, and every `deno task` it runs exists.
 *
 * Two readings: a structural one of the text (always), and the parsed YAML (with `npm:yaml@2`
 * when it can be loaded).
 */

import { assert, assertEquals, assertMatch, assertNotMatch, assertStrictEquals } from "@std/assert";
import { conditionalTest, REPO_ROOT } from "./_helpers.ts";
import { WINDOWS_DENO_VERSION } from "../experiments/_wine_harness.ts";

const TEXT = await Deno.readTextFile(`${REPO_ROOT}.github/workflows/windows.yml`);
const DENO_JSON = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
  tasks: Record<string, string | { command: string }>;
};
const TASKS = Object.keys(DENO_JSON.tasks);
/** The static checks, in order: deno.json's tasks that `ok`, .ci/run and windows.yml run first. */
const STATIC_CHECKS = ["fmt:check", "lint", "check", "doc"];

type Yaml = { parse(text: string): unknown };
let yaml: Yaml | undefined;
let yamlWhyNot = "";
try {
  yaml = await import("npm:yaml@2") as Yaml;
} catch (e) {
  yamlWhyNot = e instanceof Error ? e.message.split("\n")[0]! : String(e);
}

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  "timeout-minutes"?: number;
  with?: Record<string, string>;
}

/** The structural reading: the steps as blocks of lines starting at `      - ` (6 spaces). */
function stepBlocks(text: string): string[] {
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => /^ {4}steps:\s*$/.test(l));
  assert(at >= 0, "a steps: list");
  const blocks: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (/^ {6}- /.test(l)) blocks.push(l);
    else if (/^ {8}/.test(l) || l.trim() === "") blocks[blocks.length - 1] += "\n" + l;
    else break;
  }
  return blocks;
}

const isUpload = (uses: string | undefined) => (uses ?? "").startsWith("actions/upload-artifact@");

Deno.test("windows.yml (text): every step has timeout-minutes, always() only on uploads", () => {
  const blocks = stepBlocks(TEXT);
  assert(blocks.length >= 15, `${blocks.length} steps`);
  const jobTimeout = Number(/^ {4}timeout-minutes: (\d+)$/m.exec(TEXT)?.[1]);
  let sum = 0;
  for (const b of blocks) {
    const t = /^ {8}timeout-minutes: (\d+)$/m.exec(b);
    assert(t, `no timeout-minutes in:\n${b}`);
    sum += Number(t[1]);
    const upload = /uses: actions\/upload-artifact@/.test(b);
    assertStrictEquals(/always\(\)/.test(b), upload, `always() exactly on the uploads:\n${b}`);
  }
  assert(sum < jobTimeout, `the steps' deadlines (${sum} min) fit in the job's (${jobTimeout})`);
  assertNotMatch(
    TEXT,
    /autocrlf\s+(false|input)/,
    "core.autocrlf is left as the runner has it",
  );
});

conditionalTest(
  [
    "windows.yml (parsed): deadlines, one static check per step, !cancelled(), pins, artifacts",
    "windows.yml (parsed)",
  ],
  yaml ? null : `npm:yaml@2 could not be loaded: ${yamlWhyNot}`,
  () => {
    const doc = yaml!.parse(TEXT) as {
      jobs: Record<string, { "timeout-minutes": number; steps: Step[] }>;
    };
    const job = doc.jobs.windows!;
    const steps = job.steps;
    assertStrictEquals(typeof job["timeout-minutes"], "number");
    const sum = steps.reduce((n, s) => n + (s["timeout-minutes"] ?? Infinity), 0);
    assert(sum < job["timeout-minutes"], `steps ${sum} min < job ${job["timeout-minutes"]} min`);

    // The pinned Deno is the one tested here and under Wine.
    const setup = steps.find((s) => s.uses?.startsWith("denoland/setup-deno@"));
    assertStrictEquals(String(setup?.with?.["deno-version"]), WINDOWS_DENO_VERSION);

    // One task per static check, each in its own step, in order.
    const runs = steps.filter((s) => s.run !== undefined);
    const at = STATIC_CHECKS.map((t) => runs.findIndex((s) => s.run!.trim() === `deno task ${t}`));
    assertEquals(at, [...at].sort((a, b) => a - b), `the static checks in order ${STATIC_CHECKS}`);
    for (const cmd of STATIC_CHECKS.map((t) => `deno task ${t}`)) {
      const with_ = runs.filter((s) => s.run!.includes(cmd));
      assertStrictEquals(with_.length, 1, `${cmd}: one step`);
      assertStrictEquals(
        with_[0]!.run!.trim().split(/\r?\n/).length,
        1,
        `${cmd}: alone in its step`,
      );
    }

    // After the first static check every step runs unless the run was cancelled; always() is
    // for the uploads only.
    const first = steps.findIndex((s) => s.run?.trim() === `deno task ${STATIC_CHECKS[0]}`);
    for (const [i, s] of steps.entries()) {
      const label = s.name ?? s.uses ?? `step ${i}`;
      assertStrictEquals(typeof s["timeout-minutes"], "number", `${label}: timeout-minutes`);
      if (isUpload(s.uses)) assertStrictEquals(s.if, "${{ always() }}", label);
      else if (i >= first) assertStrictEquals(s.if, "${{ !cancelled() }}", label);
      else assertStrictEquals(s.if, undefined, label);
    }

    // The versions step reports the product (Server or client) beside the build number.
    const versions = steps.find((s) => s.name?.startsWith("Versions"))!;
    assertMatch(versions.run!, /Win32_OperatingSystem/);
    assertMatch(versions.run!, /ProductType/);
    assertMatch(versions.run!, /BuildNumber/);

    // The conformance document, uploaded as `conformance`.
    assert(
      runs.some((s) =>
        s.run!.trim() === "deno task conformance --json | Out-File -Encoding utf8 conformance.json"
      ),
      "a conformance step",
    );
    const uploads = steps.filter((s) => isUpload(s.uses));
    const conf = uploads.find((s) => s.with?.name === "conformance");
    assertStrictEquals(conf?.with?.path, "conformance.json");

    // Every file a step writes is in an artifact.
    const uploaded = uploads.flatMap((s) =>
      (s.with?.path ?? "").split(/\r?\n/).map((p) => p.trim())
    );
    for (const s of runs) {
      for (const m of s.run!.matchAll(/(?:Out-File -Encoding utf8|-FilePath) (\S+)/g)) {
        assert(uploaded.includes(m[1]!), `${m[1]} is uploaded`);
      }
    }
    assert(uploaded.includes("lab-report/"));
  },
);

const usedTasks = [...TEXT.matchAll(/deno task ([\w:-]+)/g)].map((m) => m[1]!);

Deno.test("windows.yml: every deno task it runs (but conformance) is defined in deno.json", () => {
  assert(usedTasks.length >= 8);
  for (const t of usedTasks.filter((t) => t !== "conformance")) {
    assert(TASKS.includes(t), `deno task ${t}`);
  }
});

Deno.test("windows.yml: the conformance task it runs is defined in deno.json", () => {
  assert(usedTasks.includes("conformance"));
  assert(TASKS.includes("conformance"));
});

const CI_RUN = await Deno.readTextFile(`${REPO_ROOT}.ci/run`);
/** A script's lines without its comments. */
const code = (text: string) =>
  text.split(/\r?\n/).filter((l) => !/^\s*#/.test(l)).map((l) => l.replace(/\s#\s.*$/, ""));

Deno.test("windows.yml and .ci/run call deno task: no command or permission restated", () => {
  for (const [file, text] of [["windows.yml", TEXT], [".ci/run", CI_RUN]] as const) {
    for (const l of code(text)) {
      assertNotMatch(l, /--allow-/, `${file} restates a permission: ${l.trim()}`);
      assertNotMatch(
        l,
        /\bdeno_? (run|test|check|doc|compile|fmt|lint)\b/,
        `${file} restates a command a task holds: ${l.trim()}`,
      );
    }
  }
  const ciTasks = [...CI_RUN.matchAll(/\bdeno_ (?:task) ([\w:-]+)/g)].map((m) => m[1]!);
  for (const t of ["test", "test:wine", "test:harness", "lab"]) {
    assert(ciTasks.includes(t), `.ci/run runs deno task ${t}`);
  }
  for (const t of [...ciTasks, ...STATIC_CHECKS]) {
    assert(TASKS.includes(t), `deno.json defines ${t}`);
  }
  // The static checks are stated once in .ci/run, as one loop over the tasks.
  const loop = code(CI_RUN).filter((l) => /^for t in /.test(l));
  assertEquals(loop, [`for t in ${STATIC_CHECKS.join(" ")}; do`], ".ci/run's static checks");
  assertMatch(CI_RUN, /^ {2}if deno_ task "\$t" /m);
});

Deno.test("deno task ok runs the static checks as tasks, then the doc examples and the suite", () => {
  const ok = DENO_JSON.tasks.ok!;
  const steps = (typeof ok === "string" ? ok : ok.command).split(" && ");
  assertEquals(steps, [...STATIC_CHECKS, "test:doc", "test"].map((t) => `deno task ${t}`));
  assertEquals(
    STATIC_CHECKS.slice(0, 2).map((t) => DENO_JSON.tasks[t]),
    ["deno fmt --check", "deno lint"],
  );
});

Deno.test(".ci/run runs every Deno through the JSR mirror's with-jsr.sh when there is one", () => {
  const lines = code(CI_RUN);
  // Every Deno call but the version print goes through deno_ (step labels and messages aside).
  const plain = lines.filter((l) =>
    /(^|[\s;(|&])deno (?!--version)/.test(l) && !/deno_\(\)/.test(l) &&
    !/^\s*(step|echo) "/.test(l)
  );
  assertEquals(plain, [], "plain deno calls");
  assertMatch(CI_RUN, /DENO_LPC_JSR_MIRROR/);
  assertMatch(CI_RUN, /\/work\/shared\/jsr\/with-jsr\.sh/);
  assertMatch(CI_RUN, /\.\.\/shared\/jsr\/with-jsr\.sh/);
  assertMatch(CI_RUN, /deno_\(\) \{ "\$jsr" deno "\$@"; \}/);
  assertMatch(CI_RUN, /deno_\(\) \{ deno "\$@"; \}/, "without a mirror, Deno plainly");
  assertMatch(
    lines.filter((l) => l.trim()).at(-2) ?? "",
    /echo "\$passed passed, \$failed failed"/,
  );
});
