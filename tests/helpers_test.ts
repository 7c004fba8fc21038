/**
 * The test helpers and the lab's child runs: paths from decoded file URLs (a checkout under a
 * path with a space), and deadlines on children (a hung child is killed and reported, and an
 * orphaned grandchild holding the pipes does not hang the reader), and the order in which a SYSTEM
 * token is looked for.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
} from "@std/assert";
import {
  CHILD_DEADLINE_MS,
  conditionalTest,
  NOT_WINDOWS,
  ON_LINUX,
  ON_WINDOWS_BUILD,
  REPO_ROOT,
  run,
} from "./_helpers.ts";
import {
  DEADLINE_EXIT_CODE,
  INTERRUPTED_EXIT_CODE,
  outputWithDeadline,
} from "../experiments/_deadline.ts";
import { systemTokenCandidates } from "../ffi/nt/tokens.ts";

const WIN = Deno.build.os === "windows";

Deno.test("REPO_ROOT is a decoded path of this checkout, ending with /", async () => {
  assert(REPO_ROOT.endsWith("/"));
  assert((await Deno.stat(`${REPO_ROOT}deno.json`)).isFile);
});

Deno.test("REPO_ROOT of a checkout under a path with a space (a copy in `a b/`) finds its files", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "deno-lpc-paths-" });
  try {
    const root = `${tmp}/a b`;
    await Deno.mkdir(`${root}/tests`, { recursive: true });
    await Deno.mkdir(`${root}/ffi`);
    await Deno.mkdir(`${root}/experiments`);
    for (
      const f of [
        "tests/_helpers.ts",
        "ffi/status.ts",
        "experiments/_deadline.ts",
        "experiments/_permissions.ts",
      ]
    ) {
      await Deno.copyFile(`${REPO_ROOT}${f}`, `${root}/${f}`);
    }
    const url = new URL(`file://${WIN ? "/" : ""}${root.replaceAll("\\", "/")}/tests/_helpers.ts`);
    assert(url.pathname.includes("a%20b"), "the URL is percent-encoded");
    const copy = await import(url.href) as { REPO_ROOT: string };
    assert(copy.REPO_ROOT.includes("a b/"), copy.REPO_ROOT);
    assert((await Deno.stat(`${copy.REPO_ROOT}ffi/status.ts`)).isFile);
    // What the old `new URL("..", import.meta.url).pathname` gave: a path that does not exist.
    const encoded = new URL("..", url).pathname;
    await assertRejects(() => Deno.stat(`${encoded}ffi/status.ts`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("outputWithDeadline(): a child that ends in time gives its code and output", async () => {
  const r = await outputWithDeadline(Deno.execPath(), [
    "eval",
    "console.log('out'); console.error('err'); Deno.exit(7)",
  ], { deadlineMs: 60_000 });
  assertEquals(
    { code: r.code, timedOut: r.timedOut, out: r.stdout.trim(), err: r.stderr.trim() },
    { code: 7, timedOut: false, out: "out", err: "err" },
  );
});

Deno.test("outputWithDeadline(): a hung child is killed at the deadline, its output kept", async () => {
  const t0 = performance.now();
  const r = await outputWithDeadline(Deno.execPath(), [
    "eval",
    "console.log('started'); setTimeout(() => {}, 600_000)",
  ], { deadlineMs: 3_000 });
  const ms = performance.now() - t0;
  assertStrictEquals(r.timedOut, true);
  assertStrictEquals(r.code, DEADLINE_EXIT_CODE);
  assertStrictEquals(r.stdout.trim(), "started");
  assertMatch(r.stderr, /deadline: .* did not end within 3000 ms; killed/);
  assert(ms < 30_000, `ended after ${ms} ms`);
});

Deno.test("outputWithDeadline(): Ctrl-C (the signal aborts) kills the child at once: exit 130, interrupted", async () => {
  const ctl = new AbortController();
  const t0 = performance.now();
  const pending = outputWithDeadline(Deno.execPath(), [
    "eval",
    "console.log('started'); setTimeout(() => {}, 600_000)",
  ], { deadlineMs: 300_000, signal: ctl.signal });
  setTimeout(() => ctl.abort(), 1_500);
  const r = await pending;
  const ms = performance.now() - t0;
  assertEquals(
    { code: r.code, interrupted: r.interrupted, timedOut: r.timedOut },
    { code: INTERRUPTED_EXIT_CODE, interrupted: true, timedOut: false },
  );
  assertMatch(r.stderr, /interrupted: .* killed/);
  assert(ms < 20_000, `ended after ${ms} ms`);
  // Aborted before the start: nothing is started.
  const again = await outputWithDeadline(Deno.execPath(), ["eval", "Deno.exit(5)"], {
    deadlineMs: 60_000,
    signal: ctl.signal,
  });
  assertEquals({ code: again.code, interrupted: again.interrupted }, {
    code: INTERRUPTED_EXIT_CODE,
    interrupted: true,
  });
});

conditionalTest(
  [
    "outputWithDeadline(): an orphaned grandchild holding the pipes does not hang the reader",
    "outputWithDeadline(): an orphaned grandchild holding the pipes",
  ],
  ON_LINUX ? null : "uses sh and sleep on Linux",
  async () => {
    // sh exits at once; its background `sleep 8` keeps copies of stdout and stderr open.
    const r = await outputWithDeadline("sh", ["-c", "echo before; sleep 8 & exit 0"], {
      deadlineMs: 60_000,
      graceMs: 1_000,
    });
    assertStrictEquals(r.timedOut, false);
    assertStrictEquals(r.code, 0);
    assertStrictEquals(r.stdout.trim(), "before");
    assertMatch(r.stderr, /output pipes were still open 1000 ms after it ended/);
  },
);

Deno.test("run(): a child past its deadline fails the test with the command and its output", async () => {
  assert(CHILD_DEADLINE_MS >= 60_000);
  assertMatch(
    String(
      await assertRejects(() =>
        run(Deno.execPath(), ["eval", "console.log('hung'); setTimeout(() => {}, 600_000)"], {
          deadlineMs: 2_000,
        })
      ),
    ),
    /no exit within 2000 ms \(killed\)[\s\S]*stdout: hung/,
  );
  assertStrictEquals((await run("no-such-program-deno-lpc", [])).missing, true);
});

Deno.test("systemTokenCandidates(): winlogon.exe first, then the other SYSTEM services, then the rest; no idle process", () => {
  const list = systemTokenCandidates([
    { pid: 0, image: "" },
    { pid: 4, image: "System" },
    { pid: 900, image: "svchost.exe" },
    { pid: 700, image: "services.exe" },
    { pid: 612, image: "WinLogon.exe" },
    { pid: 500, image: "wininit.exe" },
    { pid: 901, image: "svchost.exe" },
  ]);
  assertEquals(list.map((p) => p.pid), [612, 500, 700, 4, 900, 901]);
});

Deno.test("windowsTest() runs a test where whyNot is null, else ignores it naming the reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "deno-lpc-windows-test-" });
  try {
    const file = `${dir}/probe_test.ts`;
    const helpers = new URL("./_helpers.ts", import.meta.url).href;
    await Deno.writeTextFile(
      file,
      `import { conditionalTest, windowsTest } from ${JSON.stringify(helpers)};
conditionalTest("cond runs", null, () => {});
conditionalTest(["cond long", "cond short"], "cond not here", () => { throw new Error("ran"); });
windowsTest("windows only", () => { if (Deno.build.os !== "windows") throw new Error("ran"); });
windowsTest("runs here", null, () => {});
windowsTest("needs a thing", "no thing here", () => { throw new Error("ran"); });
windowsTest(["long name when it runs", "short"], "not here", () => { throw new Error("ran"); });
windowsTest(["long name", "short one"], null, () => {});
`,
    );
    const r = await run(Deno.execPath(), ["test", "--no-check", "--allow-read", file], {
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
    });
    assertStrictEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^runs here \.\.\. ok/m);
    assertMatch(r.stdout, /^needs a thing \(ignored: no thing here\) \.\.\. ignored/m);
    assertMatch(r.stdout, /^short \(ignored: not here\) \.\.\. ignored/m);
    assertMatch(r.stdout, /^long name \.\.\. ok/m);
    assertNotMatch(r.stdout, /short one|long name when it runs/);
    assertMatch(r.stdout, /^cond runs \.\.\. ok/m);
    assertMatch(r.stdout, /^cond short \(ignored: cond not here\) \.\.\. ignored/m);
    // Without a reason, windowsTest() needs the Windows build.
    if (ON_WINDOWS_BUILD) {
      assertMatch(r.stdout, /^windows only \.\.\. ok/m);
      assertMatch(r.stdout, /4 passed \| 0 failed \| 3 ignored/);
    } else {
      assertStringIncludes(r.stdout, `\nwindows only (ignored: ${NOT_WINDOWS}) ... ignored`);
      assertMatch(r.stdout, /3 passed \| 0 failed \| 4 ignored/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
