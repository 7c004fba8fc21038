/**
 * The conformance drivers' logic that runs anywhere: the argument marshalling (the real buffers
 * a call gets), the way a call crosses to a Worker or a child (handles resolved in the test
 * process, buffers shared per process), and the runner (`deno task conformance`): its JSON
 * document, its verdicts, its deadline, its exit codes, and its permissions.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { LAYOUTS } from "../ffi/layouts.ts";
import { decodeUtf16 } from "../ffi/strings.ts";
import {
  attachMemory,
  fromBase64,
  Memory,
  toBase64,
  toHostCall,
  workerMemory,
} from "./conformance/_actor_marshal.ts";
import { marshal, processMemory } from "./conformance/_marshal.ts";
import {
  conformance,
  type ConformanceDocument,
  formatTable,
  runCase,
  runSuite,
  SCHEMA,
  summary,
  whySkipped,
} from "./conformance/run.ts";
import { alpcUnavailable } from "../ffi/nt/capabilities.ts";
import { arg, type Case, type Kernel, type Process } from "./conformance/types.ts";
import { CASES } from "./conformance/cases.ts";
import { REPO_ROOT, run } from "./_helpers.ts";

const OA = LAYOUTS.OBJECT_ATTRIBUTES;
const US = LAYOUTS.UNICODE_STRING;
const QOS = LAYOUTS.SECURITY_QUALITY_OF_SERVICE;

/** The bytes at a native address (what the kernel would read through a pointer). */
function at(address: bigint, length: number): Uint8Array {
  const p = Deno.UnsafePointer.create(address)!;
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, length)).slice();
}
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

// ---------------- marshalling: what a call really gets ----------------

Deno.test("marshal: OBJECT_ATTRIBUTES is 48 bytes, Length 48, pointing at a UNICODE_STRING of the name", () => {
  const m = marshal("NtCreatePort", [
    arg.out("port"),
    arg.oa("\\RPC Control\\conf", 0x40),
    0,
    648,
    0,
  ], processMemory());
  const oa = m.args[1] as Uint8Array;
  assertStrictEquals(oa.byteLength, 48);
  const dv = view(oa);
  assertStrictEquals(dv.getUint32(OA.offsets.Length, true), 48);
  assertStrictEquals(dv.getUint32(OA.offsets.Attributes, true), 0x40);
  assertStrictEquals(dv.getBigUint64(OA.offsets.RootDirectory, true), 0n);
  const us = at(dv.getBigUint64(OA.offsets.ObjectName, true), US.size);
  const name = "\\RPC Control\\conf";
  assertStrictEquals(view(us).getUint16(US.offsets.Length, true), name.length * 2);
  assert(view(us).getUint16(US.offsets.MaximumLength, true) >= name.length * 2);
  const chars = at(view(us).getBigUint64(US.offsets.Buffer, true), name.length * 2);
  assertStrictEquals(decodeUtf16(chars), name);
  assertStrictEquals(m.args[3], 648);
  m.collect();
});

Deno.test("marshal: a NULL object name leaves ObjectName 0; a UNICODE_STRING argument is 16 bytes", () => {
  const m = marshal("NtCreatePort", [arg.out("p"), arg.oa(null), 0, 256, 0], processMemory());
  assertStrictEquals(view(m.args[1] as Uint8Array).getBigUint64(OA.offsets.ObjectName, true), 0n);
  const c = marshal(
    "NtConnectPort",
    [arg.out("c"), arg.us("\\RPC Control\\x"), arg.qos(), null, null, null, null, null],
    processMemory(),
  );
  const us = c.args[1] as Uint8Array;
  assertStrictEquals(us.byteLength, 16);
  assertStrictEquals(view(us).getUint16(US.offsets.Length, true), "\\RPC Control\\x".length * 2);
});

Deno.test("marshal: SECURITY_QUALITY_OF_SERVICE is 12 bytes: Length, level, tracking (a bad Length kept)", () => {
  const args = (qos: ReturnType<typeof arg.qos>) =>
    marshal(
      "NtConnectPort",
      [arg.out("c"), arg.us("x"), qos, null, null, null, null, null],
      processMemory(),
    )
      .args[2] as Uint8Array;
  const q = args(arg.qos(2, true));
  assertStrictEquals(q.byteLength, 12);
  assertStrictEquals(view(q).getUint32(QOS.offsets.Length, true), 12);
  assertStrictEquals(view(q).getUint32(QOS.offsets.ImpersonationLevel, true), 2);
  assertStrictEquals(q[QOS.offsets.ContextTrackingMode], 1);
  const bad = args(arg.qos(1, false, 8));
  assertStrictEquals(view(bad).getUint32(QOS.offsets.Length, true), 8);
  assertStrictEquals(view(bad).getUint32(QOS.offsets.ImpersonationLevel, true), 1);
  assertStrictEquals(bad[QOS.offsets.ContextTrackingMode], 0);
});

Deno.test("marshal: a timeout is a relative LARGE_INTEGER, -ms * 10 000", () => {
  const m = marshal(
    "NtReplyWaitReceivePortEx",
    [arg.h("port"), null, null, arg.buf("rx", 64), arg.timeout(250)],
    { buffers: new Map(), handles: new Map([["port", 0x44n]]) },
  );
  assertStrictEquals(view(m.args[4] as Uint8Array).getBigInt64(0, true), -2_500_000n);
  assertStrictEquals(Deno.UnsafePointer.value(m.args[0] as Deno.PointerObject), 0x44n);
});

// ---------------- how a call crosses to its thread ----------------

Deno.test("wire: handles are resolved where the handle table is; an unknown one is refused there", () => {
  const handles = new Map([["port", 0x1234n]]);
  const call = toHostCall(
    "NtRequestWaitReplyPort",
    [arg.h("port"), arg.buf("tx", new Uint8Array([1, 2, 3])), arg.buf("rx", 64)],
    handles,
  );
  assertEquals(call.handles, { port: "4660" });
  assertEquals(JSON.parse(JSON.stringify(call)), call, "the call is plain JSON");
  assertMatch(
    String(assertThrows(() => toHostCall("NtClose", [arg.h("gone")], handles))),
    /NtClose: no handle named "gone" in this process/,
  );
  const p = toHostCall("NtAcceptConnectPort", [
    arg.out("s"),
    arg.ptr(-1n),
    arg.buf("m"),
    1,
    null,
    null,
  ], handles);
  assertEquals(p.args[1], { kind: "pointer", value: "18446744073709551615" });
});

Deno.test("wire: buffers live in the process: shared memory per name, init makes a new one, read copies", () => {
  const memory = new Memory();
  const send = toHostCall(
    "NtRequestWaitReplyPort",
    [arg.h("port"), arg.buf("tx", new Uint8Array([7, 8, 9])), arg.buf("rx", 16)],
    new Map([["port", 5n]]),
  );
  const wire = attachMemory(send, memory);
  assert(wire.memory.tx instanceof SharedArrayBuffer);
  assertEquals([...new Uint8Array(wire.memory.tx)], [7, 8, 9]);
  assertStrictEquals(wire.memory.rx!.byteLength, 16);
  // The Worker writes through its view; another thread's later use without init sees it.
  const { args, memory: pm } = workerMemory(wire);
  assertEquals(args[1], { kind: "buffer", name: "tx" });
  pm.buffers.get("rx")![0] = 0xaa;
  const again = attachMemory(
    toHostCall("NtReplyPort", [arg.h("port"), arg.buf("rx")], new Map([["port", 5n]])),
    memory,
  );
  assertStrictEquals(again.memory.rx, wire.memory.rx, "the same memory");
  assertStrictEquals(memory.read("rx")[0], 0xaa);
  const copy = memory.read("rx");
  copy[0] = 0;
  assertStrictEquals(memory.read("rx")[0], 0xaa, "read returns a copy");
  attachMemory(
    toHostCall("NtReplyPort", [arg.h("port"), arg.buf("rx", 16)], new Map([["port", 5n]])),
    memory,
  );
  assertStrictEquals(memory.read("rx")[0], 0, "init makes a new buffer, as _marshal.ts does");
  assertThrows(() => memory.read("never"), Error, 'no buffer named "never"');
  assertThrows(
    () => attachMemory(toHostCall("NtReplyPort", [null, arg.buf("never")], new Map()), memory),
    Error,
    'no buffer named "never"',
  );
});

Deno.test("wire: the Worker's marshalling writes the kernel's answer into the process's shared memory", () => {
  const memory = new Memory();
  const wire = attachMemory(
    toHostCall("NtReplyWaitReceivePortEx", [
      arg.h("port"),
      arg.buf("ctx", 8),
      null,
      arg.buf("rx", 8),
      arg.timeout(10),
    ], new Map([["port", 9n]])),
    memory,
  );
  const { args, memory: pm } = workerMemory(wire);
  const m = marshal("NtReplyWaitReceivePortEx", args, pm);
  // What the kernel does through the pointer: write into the buffer.
  (m.args[3] as Uint8Array).set([1, 2, 3, 4]);
  assertEquals([...memory.read("rx").subarray(0, 4)], [1, 2, 3, 4]);
});

Deno.test("marshal and wire: a memory argument is the native bytes at its address, written with init, copied back by name", () => {
  const native = new Uint8Array(4096);
  const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(native));
  // The fake driver's path: marshal in this process.
  const pm = processMemory();
  const m = marshal("NtRequestWaitReplyPort", [
    arg.h("port"),
    arg.mem("req", base + 100n, 8, new Uint8Array([1, 2, 3])),
    arg.buf("rx", 16),
  ], { ...pm, handles: new Map([["port", 5n]]) });
  assertEquals([...native.subarray(100, 104)], [1, 2, 3, 0], "init is written at the address");
  assertStrictEquals(
    Deno.UnsafePointer.value(Deno.UnsafePointer.of(m.args[1] as Uint8Array)),
    base + 100n,
    "the call gets that memory itself",
  );
  native[107] = 9; // what the call leaves there
  m.collect();
  assertEquals([...pm.buffers.get("req")!], [1, 2, 3, 0, 0, 0, 0, 9]);
  // The Windows driver's path: JSON to the Worker, the copy into the process's shared buffer.
  const memory = new Memory();
  const host = toHostCall("NtReplyPort", [
    arg.h("port"),
    arg.mem("m", base + 200n, 4, new Uint8Array([5, 6])),
  ], new Map([["port", 5n]]));
  assertEquals(host.args[1], {
    kind: "memory",
    name: "m",
    address: (base + 200n).toString(),
    length: 4,
    bytes: toBase64(new Uint8Array([5, 6])),
  });
  const wire = attachMemory(JSON.parse(JSON.stringify(host)), memory);
  const { args, memory: wm } = workerMemory(wire);
  const w = marshal("NtReplyPort", args, wm);
  native[203] = 7;
  w.collect();
  assertEquals([...memory.read("m")], [5, 6, 0, 7]);
  assertThrows(
    () => marshal("NtReplyPort", [null, arg.mem("z", 0n, 4)], pm),
    Error,
    "at 0",
  );
});

Deno.test("wire: base64 round-trips bytes", () => {
  const b = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
  assertEquals(fromBase64(toBase64(b)), b);
  assertEquals(fromBase64(toBase64(new Uint8Array(0))), new Uint8Array(0));
});

// ---------------- the runner ----------------

/** A kernel that only counts its disposals (the inline cases below never call it). */
function countingKernel(log: string[]): () => Promise<Kernel> {
  return () => {
    const unused = new Proxy({}, {
      get: () => {
        throw new Error("not used");
      },
    }) as Process;
    return Promise.resolve({
      name: "fake",
      self: unused,
      spawn: () => Promise.reject(new Error("not used")),
      portName: (l: string) => l,
      userSid: () => Promise.reject(new Error("not used")),
      [Symbol.asyncDispose]: () => {
        log.push("disposed");
        return Promise.resolve();
      },
    });
  };
}

const CASES_FOR_TEST: Case[] = [
  {
    name: "a rule that holds",
    sources: ["NtCreatePort.c"],
    run: () =>
      Promise.resolve({ expected: { s: "STATUS_SUCCESS" }, observed: { s: "STATUS_SUCCESS" } }),
  },
  {
    name: "a rule that does not",
    sources: ["AlpcpSendCloseMessage.c", "AlpcpDeletePort.c"],
    run: () => Promise.resolve({ expected: { pid: 0 }, observed: { pid: 1234 } }),
  },
  {
    name: "a case that throws",
    sources: ["NtAcceptConnectPort.c"],
    run: () => Promise.reject(new Error("boom")),
  },
];

async function capture(args: string[], cases: Case[], log: string[] = []) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await conformance(args, {
    cases,
    kernels: { fake: countingKernel(log), windows: countingKernel(log) },
    out: (t) => out.push(t),
    err: (t) => err.push(t),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

Deno.test("runner: --json prints one deno-lpc/conformance@2 document (each case with its transport); a throwing case fails with its error", async () => {
  const log: string[] = [];
  const r = await capture(["--kernel", "fake", "--json"], CASES_FOR_TEST, log);
  assertStrictEquals(r.code, 1);
  const doc = JSON.parse(r.out) as ConformanceDocument;
  assertStrictEquals(doc.schema, SCHEMA);
  assertStrictEquals(doc.kernel, "fake");
  assertStrictEquals(doc.system.os, Deno.build.os);
  assertStrictEquals(doc.passed, 1);
  assertStrictEquals(doc.failed, 2);
  assertEquals(doc.cases.map((c) => [c.name, c.kernel, c.passed]), [
    ["a rule that holds", "fake", true],
    ["a rule that does not", "fake", false],
    ["a case that throws", "fake", false],
  ]);
  for (const c of doc.cases) {
    assertEquals(
      Object.keys(c).filter((k) => k !== "error").sort(),
      ["expected", "kernel", "ms", "name", "observed", "passed", "sources", "transport"],
    );
    assertStrictEquals(typeof c.ms, "number");
  }
  assertEquals(doc.cases[1]!.observed, { pid: 1234 });
  assertEquals(doc.cases[1]!.sources, ["AlpcpSendCloseMessage.c", "AlpcpDeletePort.c"]);
  assertStrictEquals(doc.cases[2]!.error, "boom");
  assertStrictEquals(doc.cases[0]!.error, undefined);
  assertEquals(
    log,
    ["disposed", "disposed", "disposed"],
    "a fresh kernel per case, disposed on every path",
  );
  // The failures name the rule and its sources on stderr; stdout is only the document.
  assertMatch(
    r.err,
    /FAILED \(fake\): a rule that does not\n {2}rule from: AlpcpSendCloseMessage\.c, AlpcpDeletePort\.c/,
  );
  assertMatch(
    r.err,
    /our reading of AlpcpSendCloseMessage\.c, AlpcpDeletePort\.c is wrong, or the fake is/,
  );
  assertMatch(r.err, /error: boom/);
});

Deno.test("runner: the table, the summary, --filter, and exit 0 when all passed", async () => {
  const r = await capture(["--kernel=fake", "--filter", "HOLDS"], CASES_FOR_TEST);
  assertStrictEquals(r.code, 0, r.err);
  assertMatch(r.out, /^case +kernel +passed$/m);
  assertMatch(r.out, /^a rule that holds +fake +yes$/m);
  assertNotMatch(r.out, /does not/);
  assertMatch(r.out, /: 1 passed, 0 failed, 1 cases \(0 ALPC\)$/);
});

Deno.test("runner: bad usage exits 2, --help 0, an empty suite 1", async () => {
  assertStrictEquals((await capture(["--kernel", "vms"], CASES_FOR_TEST)).code, 2);
  assertStrictEquals((await capture(["--frobnicate"], CASES_FOR_TEST)).code, 2);
  assertStrictEquals((await capture(["--timeout", "-3"], CASES_FOR_TEST)).code, 2);
  assertStrictEquals((await capture(["--filter", "no such case"], CASES_FOR_TEST)).code, 2);
  if (Deno.build.os !== "windows") {
    const w = await capture(["--kernel", "windows"], CASES_FOR_TEST);
    assertStrictEquals(w.code, 2);
    assertMatch(w.err, /needs Windows/);
  }
  const h = await capture(["--help"], CASES_FOR_TEST);
  assertStrictEquals(h.code, 0);
  assertMatch(h.out, /--kernel fake\|windows/);
  assertStrictEquals((await capture(["--kernel", "fake"], [])).code, 1);
});

Deno.test("runner: a case that hangs fails at its deadline, and its kernel is still disposed", async () => {
  const log: string[] = [];
  const hang: Case = {
    name: "a case that never ends",
    sources: ["NtRequestWaitReplyPort.c"],
    run: () => new Promise(() => {}),
  };
  const r = await runCase(hang, "fake", countingKernel(log), 50);
  assertStrictEquals(r.passed, false);
  assertMatch(r.error ?? "", /the case did not finish within 50 ms/);
  assertEquals(log, ["disposed"]);
});

Deno.test("runner: an ALPC case on a Windows kernel without NtAlpcCreatePort is skipped with the reason, neither passed nor failed; the fake runs it", async () => {
  const log: string[] = [];
  let ran = 0;
  const alpc: Case = {
    name: "an ALPC rule",
    sources: ["NtAlpcCreatePort.c"],
    needs: ["alpc"],
    run: () => {
      ran++;
      return Promise.resolve({ expected: 1, observed: 1 });
    },
  };
  const why = alpcUnavailable();
  const onWindows = await runCase(alpc, "windows", countingKernel(log));
  if (why === null) {
    assertStrictEquals(onWindows.skipped, undefined);
  } else {
    assertStrictEquals(onWindows.skipped, why);
    assertStrictEquals(onWindows.passed, false);
    assertStrictEquals(ran, 0);
    assertEquals(log, []);
  }
  const onFake = await runCase(alpc, "fake", countingKernel(log));
  assertStrictEquals(onFake.skipped, undefined);
  assertStrictEquals(onFake.passed, true);
  assertStrictEquals(whySkipped(alpc, "fake"), null);
  assertStrictEquals(whySkipped(CASES_FOR_TEST[0]!, "windows"), null);
  if (why !== null) {
    const doc = await runSuite([alpc, CASES_FOR_TEST[0]!], "windows", countingKernel(log));
    assertEquals([doc.passed, doc.failed, doc.skipped], [1, 0, 1]);
    assertMatch(summary(doc), /1 passed, 0 failed, 1 skipped, 2 cases \(1 ALPC\)$/);
    assertEquals(doc.cases.map((c) => c.transport).sort(), ["alpc", "lpc"]);
    assertMatch(formatTable(doc), /an ALPC rule +windows +skipped: /);
  }
});

Deno.test("runner: deno task conformance's permissions are enough to start it (--help, a bad filter)", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    tasks: { conformance: { command: string } };
  };
  const words = cfg.tasks.conformance.command.split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  assertEquals(words.slice(2, -1), [
    "--allow-ffi",
    "--allow-read",
    "--allow-run",
    "--allow-sys=osRelease",
  ]);
  const flags = [...words.slice(2, -1), `${REPO_ROOT}${words.at(-1)}`];
  const help = await run(Deno.execPath(), ["run", ...flags, "--help"]);
  assertStrictEquals(help.code, 0, help.stderr);
  assertMatch(help.stdout, /deno-lpc\/conformance@2/);
  const none = await run(Deno.execPath(), [
    "run",
    ...flags,
    "--kernel",
    "fake",
    "--filter",
    "\u00a7none",
  ]);
  assertStrictEquals(none.code, 2, none.stderr);
  assertMatch(none.stderr, /no case matches/);
});

Deno.test("the suite: at least 20 ALPC cases, each citing the Alpcp*/NtAlpc* functions it is read from (tests/conformance_test.ts runs each against the fake)", () => {
  const alpcCases = CASES.filter((c) => (c.needs ?? []).includes("alpc"));
  assert(alpcCases.length >= 20, `${alpcCases.length} ALPC cases`);
  for (const c of alpcCases) {
    assert(
      c.sources.some((s) => /^(NtAlpc|Alpcp?)\w+\.c$/.test(s)),
      `${c.name}: cites no ALPC function (${c.sources.join(", ")})`,
    );
  }
});
