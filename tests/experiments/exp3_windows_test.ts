/**
 * Experiment 3 for real: the debugger half under Wine (attach, break-ins, remote thread, freeze,
 * detach, kill); the server half on Windows.
 */

import { assert, assertNotStrictEquals, assertStrictEquals } from "@std/assert";
import { alpcUnavailable, lpcUnavailable } from "../../ffi/nt/capabilities.ts";
import type { Exp3Document, Exp3Run } from "../../experiments/exp3/exp3.ts";
import {
  NOT_WINDOWS,
  ON_WINDOWS_BUILD,
  runExperimentJson,
  WINDOWS_ONLY,
  windowsTest,
} from "../_helpers.ts";

/** Runs exp3.ts --json (exit 0); its run over the transport asked for (LPC by default). */
async function exp3(...args: string[]): Promise<Exp3Run> {
  const r = await runExperimentJson<Exp3Document>("exp3", args);
  assertStrictEquals(r.code, 0, r.stderr);
  const transport = args.includes("alpc") ? "alpc" : "lpc";
  return r.doc.runs?.[transport] ?? { transport };
}

let detached: Exp3Run | undefined;
const detachRun = async () => (detached ??= await exp3("--hold", "1500"));

windowsTest(
  "exp3 attach: CREATE_PROCESS, then a CREATE_THREAD per existing thread, every event continued on one dedicated thread",
  WINDOWS_ONLY,
  async () => {
    const doc = await detachRun();
    const d = doc.debugger!;
    assertStrictEquals(d.events[0]!.kind, "CREATE_PROCESS");
    const firstBreak = d.events.findIndex((e) => e.kind === "EXCEPTION");
    const fakeThreads = d.events.slice(0, firstBreak).filter((e) =>
      e.kind === "CREATE_THREAD" && e.tid !== d.events[firstBreak]!.tid
    );
    assert(fakeThreads.length >= 1, "a Deno client has several threads");
    assert(
      d.events.every((e) =>
        e.continued === "DBG_CONTINUE" || e.continued === "DBG_EXCEPTION_NOT_HANDLED"
      ),
    );
    assert(
      d.events.some((e) => e.kind === "LOAD_DLL" && /ntdll\.dll$/i.test(e.image ?? "")),
      "LOAD_DLL names its module",
    );
    // Thread affinity: one thread attached and handled everything, and it is not the main thread.
    assert(d.events.every((e) => e.debuggerTid === d.thread));
    assertNotStrictEquals(d.thread, doc.environment!.mainThread);
  },
);

windowsTest(
  "exp3 injected threads: the attach and break-in threads are new and raise 0x80000003; the remote thread is reported",
  WINDOWS_ONLY,
  async () => {
    const d = (await detachRun()).debugger!;
    const attach = d.injectedThreads.filter((t) => t.how === "attach");
    const brk = d.injectedThreads.filter((t) => t.how === "break");
    const remote = d.injectedThreads.filter((t) => t.how === "remote-thread");
    assertStrictEquals(attach.length, 1);
    assertStrictEquals(brk.length, 1);
    assertStrictEquals(remote.length, 1);
    assertNotStrictEquals(attach[0]!.tid, brk[0]!.tid);
    for (const t of [...attach, ...brk]) {
      assert(
        d.events.some((e) => e.kind === "CREATE_THREAD" && e.tid === t.tid),
        `CREATE_THREAD ${t.tid}`,
      );
      assert(
        d.events.some((e) =>
          e.kind === "EXCEPTION" && e.tid === t.tid && e.exception!.code === 0x80000003 &&
          e.exception!.firstChance
        ),
      );
      assert(
        d.events.some((e) => e.kind === "EXIT_THREAD" && e.tid === t.tid),
        `the break-in thread ${t.tid} exits`,
      );
    }
    const r = remote[0]!;
    assert(
      d.events.some((e) =>
        e.kind === "CREATE_THREAD" && e.tid === r.tid && e.startAddress === r.startAddress
      ),
    );
  },
);

windowsTest(
  "exp3 freeze: the client's heartbeat gap is at least 90% of the hold; after detach it runs to exit 0",
  WINDOWS_ONLY,
  async () => {
    const doc = await detachRun();
    const f = doc.freeze!;
    assertStrictEquals(f.length, 1);
    assertStrictEquals(f[0]!.heldMs, 1500);
    assert(f[0]!.observedGapMs >= 1350, `gap ${f[0]!.observedGapMs} ms`);
    assert(doc.client!.heartbeats.length > 30);
    assertStrictEquals(doc.debugger!.ended, "detach");
    assertStrictEquals(doc.client!.exitCode, 0);
  },
);

windowsTest(
  "exp3 --end kill: kill-on-exit ends the client with STATUS_DEBUGGER_INACTIVE (0xC0000354)",
  WINDOWS_ONLY,
  async () => {
    const doc = await exp3("--hold", "300", "--end", "kill");
    assertStrictEquals(doc.debugger!.ended, "kill");
    assertStrictEquals(doc.client!.exitCodeHex, "0xC0000354");
  },
);

const LPC_WHY = ON_WINDOWS_BUILD ? lpcUnavailable() : NOT_WINDOWS;

windowsTest(
  [
    "exp3 server side: a request gap about the hold, no LPC_EXCEPTION for the breakpoint",
    "exp3 server side",
  ],
  LPC_WHY,
  async () => {
    const doc = await detachRun();
    assertStrictEquals(doc.serverHalf, "ran");
    const s = doc.server!;
    assert(s.requestGapMs >= 1350, `request gap ${s.requestGapMs}`);
    assertStrictEquals(s.exceptions, 0);
    assert(doc.client!.lpcReplies > 30);
  },
);

const ALPC_WHY = ON_WINDOWS_BUILD ? alpcUnavailable() : NOT_WINDOWS;

windowsTest(
  "exp3 --transport alpc: the server half over ALPC sees the same gap, and no LPC_EXCEPTION for the breakpoint",
  ALPC_WHY,
  async () => {
    const doc = await exp3("--hold", "1500", "--transport", "alpc");
    assertStrictEquals(doc.transport, "alpc");
    assertStrictEquals(doc.serverHalf, "ran");
    const s = doc.server!;
    assert(s.requestGapMs >= 1350, `request gap ${s.requestGapMs}`);
    assertStrictEquals(s.exceptions, 0);
    assert(doc.client!.lpcReplies > 30);
  },
);
