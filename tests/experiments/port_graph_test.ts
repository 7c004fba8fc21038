/**
 * The port graph (`list_ports --graph`) against fake handle tables: both `via` kinds, a protected
 * server, access denied, a Windows without class 12, waiting threads, a dead pid, the direction
 * of a connection, and that every handle the builder opens is closed. Runs everywhere.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import { NtError } from "../../ffi/status.ts";
import { buildPortGraph } from "../../experiments/ports/port_graph.ts";
import { fakeSystem, ME, SYSTEM } from "./_port_graph_fake.ts";
import { listPorts } from "../../experiments/ports/list_ports.ts";

Deno.test("buildPortGraph(): servers via session-info, a client of two servers, the reasons", () => {
  const src = fakeSystem(SYSTEM);
  const g = buildPortGraph(src, { waits: false, names: ["\\Windows\\ApiPort", "\\Nobody"] });
  assertStrictEquals(src.state.open, src.state.closed, "every process and duplicate closed");
  assert(src.state.open > 0);
  assertEquals(g.sessionInfo, { available: true });
  assertStrictEquals(g.debugPrivilege, true);
  const port = (name: string) => g.ports.find((p) => p.name === name);
  assertEquals(port("\\RPC Control\\deno-lpc-x"), {
    name: "\\RPC Control\\deno-lpc-x",
    server: 800,
    via: "session-info",
  });
  // csrss's own handles are unreadable: its port is listed (from the walk) with the reason.
  assertStrictEquals(port("\\Windows\\ApiPort")?.server, null);
  assertMatch(
    port("\\Nobody")!.why!,
    /1 protected process, 1 access denied \(ERROR_ACCESS_DENIED\), 1 process exited/,
  );
  assertStrictEquals(port("\\RPC Control\\lsasspirpc"), undefined, "not readable, not walked");
  const unreadable = Object.fromEntries(g.processes.map((p) => [p.pid, p.unreadable]));
  assertEquals(unreadable[500], "protected process");
  assertEquals(unreadable[600], "access denied (ERROR_ACCESS_DENIED)");
  assertEquals(unreadable[700], "process exited");
  assertStrictEquals(g.processes.find((p) => p.pid === 700)?.image, null);
  assertEquals(g.unknown, {
    "protected process": 2,
    "access denied (ERROR_ACCESS_DENIED)": 1,
    "process exited": 1,
  });
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
  assertEquals(src.state.asked, [801, 901, 902], "the running thread is not asked");
  assertEquals(g.waits, {
    candidates: 3,
    blocked: [{
      pid: 800,
      tid: 801,
      port: "\\RPC Control\\deno-lpc-x",
      server: 800,
      role: "server",
      peer: 900,
      via: "server-information",
    }, {
      pid: 900,
      tid: 901,
      port: "\\Windows\\ApiPort",
      server: 500,
      role: "client",
      peer: 500,
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
  assertStrictEquals(g.summary.waits, 2);
  // The server's own wait does not turn the connection around.
  const toSvc = g.connections.find((c) => c.server === 800)!;
  assertEquals([toSvc.client, toSvc.direction], [900, "known"]);
});

Deno.test("buildPortGraph(): the System process's handles are counted, never duplicated", () => {
  // AlpcpClosePort.c: closing the last handle of a kernel-flagged port cleans it up.
  const src = fakeSystem({
    4: { image: "System", ports: [{ name: "\\Kernel\\Port", other: 4 }, { other: 900 }] },
    900: { image: "client.exe", ports: [{ other: 4 }] },
  });
  const g = buildPortGraph(src, { waits: false });
  assertEquals(src.state.duplicatedFrom, [900], "nothing duplicated out of pid 4");
  assertStrictEquals(src.state.open, src.state.closed);
  const system = g.processes.find((p) => p.pid === 4)!;
  assertMatch(system.unreadable!, /System process: not duplicated .*AlpcpClosePort\.c/);
  assertStrictEquals(g.unknown[system.unreadable!], 2);
  assertStrictEquals(g.ports.length, 0, "the System process's port name is not read");
});

Deno.test("buildPortGraph(): protected only when PS_PROTECTION says so; the handle table first", () => {
  const src = fakeSystem({
    500: { image: "csrss.exe", refuse: "protected", ports: [{}] },
    510: { image: "elevated.exe", refuse: "elevated", ports: [{}] },
    // In the handle table, gone from the process list: its open says why (not the list).
    520: { image: "gone.exe", exited: true, ports: [{}] },
  });
  const g = buildPortGraph(src, { waits: false });
  assertStrictEquals(src.state.open, src.state.closed, "the limited handles are closed too");
  assertEquals(src.state.calls, ["handles", "processes"], "handle table read before processes");
  const why = Object.fromEntries(g.processes.map((p) => [p.pid, p.unreadable]));
  assertEquals(why[500], "protected process");
  assertEquals(why[510], "access denied (ERROR_ACCESS_DENIED, not protected)");
  assertEquals(why[520], "process exited");
});

Deno.test("buildPortGraph() with waits: an unreadable process waiting on a port of unknown server gets no role", () => {
  // 500's handles cannot be read; its thread waits on its own port for its client 900 (class 4
  // then names 900): calling 500 a client of 900 would make 900 the port's server.
  const src = fakeSystem({
    500: {
      image: "csrss.exe",
      refuse: "protected",
      ports: [{}],
      threads: [{
        tid: 501,
        answer: { blocked: true, connectedProcessId: 900, connectionPortName: "\\Windows\\X" },
      }],
    },
    900: { image: "client.exe", ports: [{ other: 500 }] },
  });
  const g = buildPortGraph(src, { waits: true });
  assertStrictEquals(src.state.open, src.state.closed);
  assertEquals(g.waits!.blocked, []);
  assertEquals(Object.values(g.waits!.unknown), [1]);
  assertMatch(Object.keys(g.waits!.unknown)[0]!, /server is not known.*could not be read/);
  assertStrictEquals(g.ports.find((p) => p.name === "\\Windows\\X"), undefined, "no server");
  // The connection keeps its direction from the handles: 900 holds no connection port.
  assertEquals(g.connections.map((c) => [c.client, c.server]), [[900, 500]]);
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
