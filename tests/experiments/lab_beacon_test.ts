/**
 * The lab's beacon around the ports walk (experiments/lab/lab_beacon_run.ts), with fake starters
 * and a fake runner: the ready line, a beacon that cannot start, one that prints nothing in time,
 * and that the beacon is ended on every path (the walk failing included). And the report's graph
 * part: why there is no lab port when the beacon did not start, and the lab's ports with their
 * client and server processes from a recorded graph (tests/fixtures/ports_graph_beacon.json).
 */

import { assert, assertEquals, assertMatch, assertRejects, assertStrictEquals } from "@std/assert";
import {
  type BeaconProcess,
  type BeaconStarter,
  beaconStatus,
  runnerStarter,
  withBeacon,
} from "../../experiments/lab/lab_beacon_run.ts";
import { runExperiments, type Runner } from "../../experiments/lab/lab_runner.ts";
import {
  answerQuestions,
  checkMarkdownDiagrams,
  type LabReport,
  toMarkdown,
  validateLabReport,
} from "../../experiments/lab/lab_report.ts";
import { checkFlowchart, labGraph } from "../../experiments/ports/graph_format.ts";
import { BEACON_SCHEMA } from "../../experiments/ports/lab_beacon.ts";
import { REPO_ROOT } from "../_helpers.ts";

const READY = JSON.stringify({
  schema: BEACON_SCHEMA,
  ready: true,
  server: 5000,
  client: 5100,
  ports: [{ name: "\\RPC Control\\deno-lpc-lab-beacon-lpc-5000-x", transport: "lpc" }],
  alpc: null,
});
const WINE_WHY =
  "lab_beacon: not supported here: ntdll!NtCreatePort returned STATUS_NOT_IMPLEMENTED (a Wine stub): " +
  "real LPC needs Windows";
const FAILURE = JSON.stringify({
  schema: BEACON_SCHEMA,
  ran: false,
  exitCode: 3,
  reason: WINE_WHY,
});

/** A fake beacon: what it prints first (or never), what it writes on stderr; counts its ends. */
function fakeStarter(first: string | null | "never", stderr = "") {
  const log: string[] = [];
  let ends = 0;
  const start: BeaconStarter = (args) => {
    log.push(`start ${args.join(" ")}`);
    const p: BeaconProcess = {
      firstOutput: first === "never" ? new Promise(() => {}) : Promise.resolve(first),
      end: () => {
        ends++;
        log.push("end");
        return Promise.resolve({ code: first === READY ? 0 : 3, stderr });
      },
    };
    return p;
  };
  return { start, log, ends: () => ends };
}

const quiet = { signal: new AbortController().signal, progress: () => {} };

Deno.test("withBeacon: ready line, then the walk, then the beacon ended once", async () => {
  const f = fakeStarter(READY);
  const r = await withBeacon(f.start, ["beacon"], quiet, () => {
    f.log.push("walk");
    return Promise.resolve(7);
  });
  assertEquals(f.log, ["start beacon", "walk", "end"]);
  assertStrictEquals(r.value, 7);
  assertEquals(r.beacon, {
    started: true,
    server: 5000,
    client: 5100,
    ports: [{ name: "\\RPC Control\\deno-lpc-lab-beacon-lpc-5000-x", transport: "lpc" }],
  });
});

Deno.test("withBeacon: a beacon that cannot start (exit 3): the walk runs anyway, the reason is kept", async () => {
  const f = fakeStarter(FAILURE, `${WINE_WHY}\n`);
  const r = await withBeacon(f.start, ["beacon"], quiet, () => {
    f.log.push("walk");
    return Promise.resolve("walked");
  });
  assertStrictEquals(r.value, "walked");
  assertEquals(r.beacon, { started: false, reason: WINE_WHY });
  assertEquals(f.log, ["start beacon", "end", "walk"], "ended (and waited for) before the walk");
  assertStrictEquals(f.ends(), 1);
  // Without a document, its last stderr line; without either, that it printed nothing.
  assertEquals(beaconStatus(null, "noise\nboom\n"), { started: false, reason: "boom" });
  assertEquals(beaconStatus("not json", ""), { started: false, reason: "it printed nothing" });
});

Deno.test("withBeacon: no ready line before the deadline: the walk runs, the beacon is ended", async () => {
  const f = fakeStarter("never");
  const r = await withBeacon(f.start, ["beacon"], { ...quiet, readyMs: 30 }, () => {
    f.log.push("walk");
    return Promise.resolve(1);
  });
  assertEquals(r.beacon, { started: false, reason: "no ready line within 0.03 s" });
  assertEquals(f.log, ["start beacon", "walk", "end"]);
});

Deno.test("withBeacon: the walk throws: the beacon is still ended", async () => {
  const f = fakeStarter(READY);
  await assertRejects(
    () => withBeacon(f.start, ["beacon"], quiet, () => Promise.reject(new Error("walk failed"))),
    Error,
    "walk failed",
  );
  assertEquals(f.log, ["start beacon", "end"]);
});

Deno.test("runnerStarter: the run's whole output is the first; ending aborts the run and waits for it", async () => {
  let aborted = false;
  const run: Runner = (_args, signal) =>
    new Promise((resolve) => {
      signal.addEventListener("abort", () => {
        aborted = true;
        resolve({ code: 130, stdout: "", stderr: "interrupted\n", interrupted: true });
      });
    });
  const p = runnerStarter(run)(["beacon"], new AbortController().signal);
  assertEquals(await p.end(), { code: 130, stderr: "interrupted\n" });
  assert(aborted, "ending the beacon aborted its run");
  assertStrictEquals(await p.firstOutput, null);
  const exits: Runner = () =>
    Promise.resolve({
      code: 3,
      stdout: `${FAILURE}\n`,
      stderr: `${WINE_WHY}\n`,
      interrupted: false,
    });
  const q = runnerStarter(exits)(["beacon"], new AbortController().signal);
  assertEquals(beaconStatus(await q.firstOutput, (await q.end()).stderr), {
    started: false,
    reason: WINE_WHY,
  });
});

Deno.test("runExperiments: the ports walk runs between the beacon's start and end, with its flags; the outcome keeps the beacon", async () => {
  const f = fakeStarter(READY);
  const walked: string[][] = [];
  const run: Runner = (args) => {
    walked.push(args);
    f.log.push("walk");
    return Promise.resolve({ code: 0, stdout: '{"objects":[]}', stderr: "", interrupted: false });
  };
  const e = await runExperiments(run, new AbortController().signal, () => {}, {
    only: ["ports"],
    hold: 0,
    transport: "lpc",
    beacon: f.start,
  });
  assertEquals(f.log.slice(1), ["walk", "end"]);
  assertMatch(f.log[0]!, /^start run --allow-ffi --allow-read --allow-run .*lab_beacon\.ts/);
  assertMatch(walked[0]!.join(" "), /list_ports\.ts --all --servers --graph --waits --json$/);
  assertStrictEquals(e.ports.status, "ran");
  assertStrictEquals(e.ports.beacon?.started, true);
  assertStrictEquals(e.exp1.beacon, undefined);
});

const wine: LabReport = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/lab_wine_report.json`),
);
const rebuild = (experiments: LabReport["experiments"]): LabReport => ({
  ...wine,
  experiments,
  answers: answerQuestions(experiments),
});
const fakeGraph = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/ports_graph_fake.json`),
);

Deno.test("the report: a beacon that did not start is why there is no lab port", () => {
  const noLab = {
    ...fakeGraph,
    graph: { ...fakeGraph.graph, ports: [], connections: [], waits: undefined },
  };
  const report = rebuild({
    ...wine.experiments,
    ports: {
      status: "ran",
      result: noLab,
      seconds: 1,
      beacon: { started: false, reason: WINE_WHY },
    },
  });
  assertEquals(validateLabReport(report), []);
  const md = toMarkdown(report);
  assert(
    md.includes(
      `_no lab port existed while list_ports ran: the lab's beacon did not start: ${WINE_WHY}; ` +
        "the whole graph:",
    ),
    md,
  );
  // Under Wine the graph is not built at all: both reasons are given.
  const wineRun = rebuild({
    ...wine.experiments,
    ports: {
      status: "ran",
      result: { ...noLab, graph: { skipped: "NtCreatePort failed: STATUS_NOT_IMPLEMENTED" } },
      seconds: 1,
      beacon: { started: false, reason: WINE_WHY },
    },
  });
  assert(
    toMarkdown(wineRun).includes(
      "_the graph was not built: NtCreatePort failed: STATUS_NOT_IMPLEMENTED; and no lab port " +
        `existed: the lab's beacon did not start: ${WINE_WHY}_`,
    ),
    toMarkdown(wineRun),
  );
  // Without a beacon (an older report), the sentence says that none ran.
  assertMatch(
    (labGraph(noLab.graph) as { missing: string }).missing,
    /^no deno-lpc-\* port existed while list_ports ran .*no beacon ran/,
  );
});

Deno.test("the report: the beacon's ports (recorded graph), served by the beacon, its client process connected", async () => {
  const doc = JSON.parse(
    await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/ports_graph_beacon.json`),
  );
  const ports = doc.graph.ports.filter((p: { name: string }) => /deno-lpc-lab-beacon/.test(p.name))
    .map((p: { name: string }) => ({
      name: p.name,
      transport: /alpc/.test(p.name) ? "alpc" : "lpc",
    }));
  assertStrictEquals(ports.length, 2);
  const report = rebuild({
    ...wine.experiments,
    ports: {
      status: "ran",
      result: doc,
      seconds: 1,
      beacon: { started: true, server: 5000, client: 5100, ports },
    },
  });
  assertEquals(validateLabReport(report), []);
  const md = toMarkdown(report);
  assertEquals(checkMarkdownDiagrams(md).problems, []);
  const flow = /```mermaid\n(flowchart LR\n[\s\S]*?)```/.exec(md)![1]!;
  assertEquals(checkFlowchart(flow), []);
  for (const p of ports) assert(flow.includes(p.name), `${p.name}\n${flow}`);
  assert(!flow.includes("ApiPort"), `csrss's port is not the lab's\n${flow}`);
  // The server process serves both ports; the client process connects to the server process.
  assertMatch(flow, /p5000\["deno\.exe/);
  assertMatch(flow, /p5100\["deno\.exe/);
  assertStrictEquals((flow.match(/p5000 -->\|"serves/g) ?? []).length, 2, flow);
  assertMatch(flow, /p5100 -->\|"[^"]*"\| p5000/, flow);
});
