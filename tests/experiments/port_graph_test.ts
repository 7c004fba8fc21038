/**
 * The port graph (`list_ports --graph`) against fake handle tables: both `via` kinds, a protected
 * server, access denied, a Windows without class 12, waiting threads, a dead pid, the direction
 * of a connection, and that every handle the builder opens is closed. Runs everywhere.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import { NtError, NTSTATUS } from "../../ffi/status.ts";
import type { SystemHandle } from "../../ffi/nt/system_handles.ts";
import type { ThreadEntry } from "../../ffi/nt/processes.ts";
import {
  buildPortGraph,
  type GraphSource,
  type ServerInformation,
} from "../../experiments/ports/port_graph.ts";
import { listPorts } from "../../experiments/ports/list_ports.ts";

const PORT_TYPE = 46;
const ME = 4242;
const ERROR_ACCESS_DENIED = 5;
const ERROR_INVALID_PARAMETER = 87;

/** One port handle of a fake process: a name (connection port) or none, and its other end. */
interface FakePort {
  name?: string;
  /** Class 12's answer: the process at the other end (a connection port: its owner). */
  other?: number;
}

/** One fake process. */
interface FakeProcess {
  image: string;
  ports: FakePort[];
  /** How opening it fails: protected (limited query works), denied (nothing works). */
  refuse?: "protected" | "denied";
  /** Listed in the handle table but gone from the process list. */
  exited?: boolean;
  threads?: (Omit<ThreadEntry, "pid" | "state" | "waitReason"> & {
    waiting?: boolean;
    answer?: ServerInformation;
  })[];
}

/** A fake system: class 12 exists unless `noClass12`; counts what is opened and closed. */
function fakeSystem(
  procs: Record<number, FakeProcess>,
  options: { noClass12?: boolean; noPorts?: boolean } = {},
): GraphSource & { state: { open: number; closed: number; asked: number[] } } {
  const state = { open: 0, closed: 0, asked: [] as number[] };
  const opened = <T extends object>(o: T): T & Disposable => {
    state.open++;
    let done = false;
    return Object.assign(o, {
      [Symbol.dispose]: () => {
        assert(!done, "closed twice");
        done = true;
        state.closed++;
      },
    });
  };
  const handles: SystemHandle[] = [];
  for (const [pid, p] of Object.entries(procs)) {
    p.ports.forEach((_, i) =>
      handles.push({
        pid: Number(pid),
        handle: BigInt(4 * (i + 1)),
        object: 0n,
        access: 0x1f0001,
        typeIndex: PORT_TYPE,
        attributes: 0,
      })
    );
    // A handle of another type, which the graph must ignore.
    handles.push({
      pid: Number(pid),
      handle: 0x400n,
      object: 0n,
      access: 1,
      typeIndex: 7,
      attributes: 0,
    });
  }
  handles.push({ pid: ME, handle: 8n, object: 0n, access: 1, typeIndex: PORT_TYPE, attributes: 0 });
  const source: GraphSource = {
    currentPid: () => ME,
    portTypeIndex: () => {
      if (options.noPorts) {
        throw new NtError("NtCreatePort", NTSTATUS.STATUS_NOT_IMPLEMENTED, "ntstatus", "(probe)");
      }
      return PORT_TYPE;
    },
    handles: () => handles,
    processes: () => {
      const live = Object.entries(procs).filter(([, p]) => !p.exited);
      return {
        processes: [
          { pid: ME, image: "deno.exe" },
          ...live.map(([pid, p]) => ({
            pid: Number(pid),
            image: p.image,
          })),
        ],
        threads: live.flatMap(([pid, p]) =>
          (p.threads ?? []).map((t) => ({
            pid: Number(pid),
            tid: t.tid,
            state: t.waiting === false ? 2 : 5,
            waitReason: t.waiting === false ? 0 : 17,
          }))
        ),
      };
    },
    openProcess: (pid, access) => {
      const p = procs[pid];
      if (!p || p.exited) throw new NtError("OpenProcess", ERROR_INVALID_PARAMETER, "win32");
      if (p.refuse === "denied" || (p.refuse === "protected" && access !== 0x1000)) {
        throw new NtError("OpenProcess", ERROR_ACCESS_DENIED, "win32", `pid ${pid}`);
      }
      return opened({ pid });
    },
    duplicate: (process, handle) => {
      const { pid } = process as unknown as { pid: number };
      const port = procs[pid]!.ports[Number(handle) / 4 - 1]!;
      return opened({ port });
    },
    objectName: (h) => (h as unknown as { port: FakePort }).port.name ?? "",
    serverSession: (h) => {
      const { port } = h as unknown as { port: FakePort };
      if (options.noClass12 || port.other === undefined) {
        throw new NtError(
          "NtAlpcQueryInformation",
          NTSTATUS.STATUS_INVALID_PARAMETER,
          "ntstatus",
          "AlpcServerSessionInformation",
        );
      }
      return { sessionId: 1, processId: port.other };
    },
    openThread: (tid) => {
      state.asked.push(tid);
      for (const p of Object.values(procs)) {
        const t = p.threads?.find((x) => x.tid === tid);
        if (t) return opened({ t });
      }
      throw new NtError("NtOpenThread", NTSTATUS.STATUS_INVALID_CID, "ntstatus", `tid ${tid}`);
    },
    serverInformation: (th) =>
      (th as unknown as { t: { answer?: ServerInformation } }).t.answer ?? { blocked: false },
  };
  return Object.assign(source, { state });
}

/**
 * csrss (500, protected) serves \Windows\ApiPort; svc (800) serves \RPC Control\deno-lpc-x; a
 * client (900) is connected to both; 600 refuses everything; 700 has exited; 1100 and 1200 each
 * serve a port and are connected to each other.
 */
const SYSTEM: Record<number, FakeProcess> = {
  500: { image: "csrss.exe", refuse: "protected", ports: [{ name: "\\Windows\\ApiPort" }, {}] },
  800: {
    image: "svc.exe",
    ports: [{ name: "\\RPC Control\\deno-lpc-x", other: 800 }, { other: 900 }],
  },
  900: {
    image: "client.exe",
    ports: [{ other: 800 }, { other: 500 }],
    threads: [
      {
        tid: 901,
        answer: {
          blocked: true,
          connectedProcessId: 500,
          connectionPortName: "\\Windows\\ApiPort",
        },
      },
      { tid: 902 }, // waited with WrLpcReply, then got its reply: no longer blocked
      { tid: 903, waiting: false }, // running: not asked
    ],
  },
  600: { image: "lsass.exe", refuse: "denied", ports: [{ name: "\\RPC Control\\lsasspirpc" }] },
  700: { image: "gone.exe", exited: true, ports: [{}] },
  1100: { image: "a.exe", ports: [{ name: "\\RPC Control\\A", other: 1100 }, { other: 1200 }] },
  1200: { image: "b.exe", ports: [{ name: "\\RPC Control\\B", other: 1200 }, { other: 1100 }] },
};

Deno.test("buildPortGraph(): servers via session-info, a client of two servers, the reasons", () => {
  const src = fakeSystem(SYSTEM);
  const g = buildPortGraph(src, { waits: false, names: ["\\Windows\\ApiPort", "\\Nobody"] });
  assertStrictEquals(src.state.open, src.state.closed, "every process and duplicate closed");
  assert(src.state.open > 0);
  assertEquals(g.sessionInfo, { available: true });
  const port = (name: string) => g.ports.find((p) => p.name === name);
  assertEquals(port("\\RPC Control\\deno-lpc-x"), {
    name: "\\RPC Control\\deno-lpc-x",
    server: 800,
    via: "session-info",
  });
  // csrss's own handles are unreadable: its port is listed (from the walk) with the reason.
  assertStrictEquals(port("\\Windows\\ApiPort")?.server, null);
  assertMatch(port("\\Nobody")!.why!, /1 protected process, 1 access denied, 1 process exited/);
  assertStrictEquals(port("\\RPC Control\\lsasspirpc"), undefined, "not readable, not walked");
  const unreadable = Object.fromEntries(g.processes.map((p) => [p.pid, p.unreadable]));
  assertEquals(unreadable[500], "protected process");
  assertEquals(unreadable[600], "access denied");
  assertEquals(unreadable[700], "process exited");
  assertStrictEquals(g.processes.find((p) => p.pid === 700)?.image, null);
  assertEquals(g.unknown, { "protected process": 2, "access denied": 1, "process exited": 1 });
  // The client holds no connection port: it is the client of both, both ends counted for svc.
  const edges = g.connections.map((c) => [c.client, c.server, c.port, c.handles, c.direction]);
  assertEquals(edges, [
    [900, 500, null, 1, "known"],
    [900, 800, "\\RPC Control\\deno-lpc-x", 2, "known"],
    [1100, 1200, null, 2, "unknown"],
  ]);
  assert(/not known/.test(g.connections[0]!.why!));
  assert(/does not say which end/.test(g.connections[2]!.why!));
  assertStrictEquals(g.waits, undefined);
  assertEquals(g.summary, {
    portHandles: 12,
    processes: 7,
    ports: 5,
    attributed: 3,
    connections: 3,
  });
  assert(!g.processes.some((p) => p.pid === ME), "this process is left out");
});

Deno.test("buildPortGraph() without class 12 (older Windows): servers via duplication, why given", () => {
  const src = fakeSystem(SYSTEM, { noClass12: true });
  const g = buildPortGraph(src, { waits: false });
  assertStrictEquals(src.state.open, src.state.closed);
  assertStrictEquals(g.sessionInfo.available, false);
  assert(
    /STATUS_INVALID_PARAMETER: taken as a Windows without the class/.test(g.sessionInfo.reason!),
  );
  assertEquals(g.ports.find((p) => p.name === "\\RPC Control\\deno-lpc-x"), {
    name: "\\RPC Control\\deno-lpc-x",
    server: 800,
    via: "duplication",
    why: "AlpcServerSessionInformation: STATUS_INVALID_PARAMETER",
  });
  assertEquals(g.connections, [], "no connection is known without class 12");
  assertEquals(
    g.unknown["communication port: AlpcServerSessionInformation: STATUS_INVALID_PARAMETER"],
    5,
  );
});

Deno.test("buildPortGraph() with waits: only WrLpcReply waiters asked; a protected server's port", () => {
  const src = fakeSystem(SYSTEM);
  const g = buildPortGraph(src, { waits: true });
  assertStrictEquals(src.state.open, src.state.closed);
  assertEquals(src.state.asked, [901, 902], "the running thread is not asked");
  assertEquals(g.waits, {
    candidates: 2,
    blocked: [{
      pid: 900,
      tid: 901,
      port: "\\Windows\\ApiPort",
      server: 500,
      via: "server-information",
    }],
    unknown: { "no longer waiting on a port": 1 },
  });
  // The waiter names csrss's port and orients and names the connection to it.
  assertEquals(g.ports.find((p) => p.name === "\\Windows\\ApiPort"), {
    name: "\\Windows\\ApiPort",
    server: 500,
    via: "server-information",
  });
  const toCsrss = g.connections.find((c) => c.server === 500)!;
  assertEquals([toCsrss.client, toCsrss.port, toCsrss.why], [900, "\\Windows\\ApiPort", undefined]);
  assertStrictEquals(g.summary.waits, 1);
});

Deno.test("buildPortGraph() throws where there are no ports; listPorts() records it as skipped", () => {
  assertThrows(() => buildPortGraph(fakeSystem({}, { noPorts: true }), { waits: false }), NtError);
  const doc = listPorts({
    root: "\\",
    types: ["ALPC Port"],
    all: false,
    servers: false,
    mode: "auto",
    source: { list: () => [], readLink: () => "" },
    graph: { waits: true, source: fakeSystem({}, { noPorts: true }) },
  });
  assertStrictEquals(doc.schema, "deno-lpc/ports@2");
  assert(doc.graph && "skipped" in doc.graph && /STATUS_NOT_IMPLEMENTED/.test(doc.graph.skipped));
  const ok = listPorts({
    root: "\\",
    types: ["ALPC Port"],
    all: false,
    servers: false,
    mode: "auto",
    source: { list: () => [{ name: "ApiPort", type: "ALPC Port" }], readLink: () => "" },
    graph: { waits: false, source: fakeSystem(SYSTEM) },
  });
  assert(ok.graph && !("skipped" in ok.graph));
  assertStrictEquals(ok.graph.ports.find((p) => p.name === "\\ApiPort")?.server, null);
});
