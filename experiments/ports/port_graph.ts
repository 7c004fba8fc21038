/**
 * Who talks to whom: the port graph of `list_ports --graph`, built from the system handle table
 * without a driver. Every port handle of every other process is duplicated into this one (when
 * its process can be opened for that) and asked two things: its name (only connection ports are
 * named) and `AlpcServerSessionInformation` (class 12), which names the process at the other end:
 * for a connection port its own owner, the server; for a communication port the owner of the port
 * it is connected to (`AlpcpReferenceConnectedPort.c`, `AlpcpPortQueryServerSessionInfo.c`).
 * Where the system has no class 12 (Windows before 10 19H2) a named port's server is the process
 * holding its handle (`findPortServers`' technique). With `--waits`, every thread waiting for a
 * reply is asked `AlpcServerInformation` (class 4): the port it waits on and its server.
 *
 * Everything the builder reads comes through a {@link GraphSource}: {@link kernelGraphSource} on
 * Windows, a fake in the tests. Nothing is loaded into the kernel and nothing is written; every
 * handle opened here is closed on every path.
 *
 * @module
 */

import { type NtHandle, openProcess } from "../../mod.ts";
import {
  ALPC_SERVER_INFORMATION_THREAD_ACCESS,
  duplicatePortHandle,
  enableDebugPrivilege,
  listProcessesAndThreads,
  objectName,
  openThread,
  portTypeIndex,
  processProtection,
  queryAlpcServerInformation,
  queryAlpcServerSession,
  systemHandles,
} from "../../raw.ts";
import type {
  GraphConnection,
  GraphOptions,
  GraphPort,
  GraphProcess,
  GraphSource,
  GraphWait,
  PortGraph,
} from "./port_graph_types.ts";
import { type Pair, readHandles, readWaits } from "./port_graph_read.ts";

export type * from "./port_graph_types.ts";

/**
 * What class 12 answers where it does not exist: `NtAlpcQueryInformation.c` sends an unknown class
 * to STATUS_INVALID_PARAMETER (the Windows 11 kernel; older kernels are not here to read, hence
 * the other two).
 */
const NO_CLASS = new Set([
  "STATUS_INVALID_PARAMETER",
  "STATUS_INVALID_INFO_CLASS",
  "STATUS_NOT_IMPLEMENTED",
]);

/**
 * Builds the port graph from a {@link GraphSource}. Throws only when the handle table or the port
 * type cannot be read at all (Wine: no ports); everything else is an observation with its reason.
 *
 * @param source where the facts come from ({@link kernelGraphSource} on Windows)
 * @param options `waits`: ask the waiting threads; `names`: named ports from the walk
 */
export function buildPortGraph(source: GraphSource, options: GraphOptions): PortGraph {
  const me = source.currentPid();
  const typeIndex = source.portTypeIndex();
  const debugPrivilege = source.debugPrivilege();
  // The handle table before the process list: a process that starts in between is then only in
  // the list (no handles to read), and one that exits fails its open with a "gone" status.
  const handles = source.handles().filter((h) => h.typeIndex === typeIndex && h.pid !== me);
  const { processes: list, threads } = source.processes();
  const images = new Map(list.map((p) => [p.pid, p.image]));
  const f = readHandles(source, handles, images);
  const { processes, ports } = f;
  const node = (pid: number): GraphProcess => {
    let p = processes.get(pid);
    if (!p) {
      p = { pid, image: images.get(pid) ?? null, portHandles: 0 };
      processes.set(pid, p);
    }
    return p;
  };
  let waits: PortGraph["waits"];
  if (options.waits) {
    const unread = new Set([...processes.values()].filter((p) => p.unreadable).map((p) => p.pid));
    waits = readWaits(source, threads.filter((t) => t.pid !== me), ports, unread);
    for (const w of waits.blocked) {
      const key = w.port.toLowerCase();
      if (w.port && !ports.has(key)) {
        ports.set(key, { name: w.port, server: w.server, via: "server-information" });
      }
      for (const pid of [w.pid, w.server, w.peer]) node(pid);
    }
  }
  // Named ports of the walk that no handle answered for.
  const unreadable = [...processes.values()].filter((p) => p.unreadable);
  const hidden = unreadable.length
    ? `its handle is not in a process this one could read (${
      countBy(unreadable.map((p) => p.unreadable!))
    })`
    : "no process holds its handle in the handle table";
  for (const name of options.names ?? []) {
    const key = name.toLowerCase();
    if (!ports.has(key)) ports.set(key, { name, server: null, why: hidden });
  }
  const connections = orient(f.pairs, f.clientsOnly, ports, waits?.blocked ?? []);
  for (const c of connections) [c.client, c.server].forEach(node);
  for (const p of ports.values()) if (p.server !== null) node(p.server);

  const portList = [...ports.values()].sort((a, b) => a.name.localeCompare(b.name));
  const graph: PortGraph = {
    debugPrivilege,
    sessionInfo: sessionInfoOf(f.session),
    processes: [...processes.values()].sort((a, b) => a.pid - b.pid),
    ports: portList,
    connections,
    unknown: f.unknown,
    summary: {
      portHandles: f.portHandles,
      processes: processes.size,
      ports: portList.length,
      attributed: portList.filter((p) => p.server !== null).length,
      connections: connections.length,
    },
  };
  if (waits) {
    graph.waits = waits;
    graph.summary.waits = waits.blocked.length;
  }
  return graph;
}

/** Whether class 12 answered at all, and if not, what that is taken to mean. */
function sessionInfoOf(
  session: { answered: number; missing: Map<string, number> },
): PortGraph["sessionInfo"] {
  if (session.answered > 0) return { available: true };
  const statuses = [...session.missing.keys()];
  return {
    available: false,
    reason: statuses.length === 0
      ? "no port handle could be asked"
      : statuses.every((s) => NO_CLASS.has(s))
      ? `every port answered ${statuses.join(", ")}: taken as a Windows without the class ` +
        "(before Windows 10 19H2; NtAlpcQueryInformation.c answers an unknown class with " +
        "STATUS_INVALID_PARAMETER)"
      : `every port answered ${statuses.join(", ")}`,
  };
}

/**
 * Client → server edges from the pairs: the side holding no connection port at all is the client
 * (or the side with a thread waiting on the other); the port is the server's only named port, or
 * the one a waiting thread names.
 */
function orient(
  pairs: Map<string, Pair>,
  clientsOnly: Set<number>,
  ports: Map<string, GraphPort>,
  blocked: GraphWait[],
): GraphConnection[] {
  // Which named ports each process serves.
  const serves = new Map<number, string[]>();
  for (const p of ports.values()) {
    if (p.server === null) continue;
    (serves.get(p.server) ?? serves.set(p.server, []).get(p.server)!).push(p.name);
  }
  const waitOn = new Map<string, Set<string>>();
  for (const w of blocked) {
    if (w.role === "server") continue;
    const k = `${w.pid}>${w.server}`;
    (waitOn.get(k) ?? waitOn.set(k, new Set()).get(k)!).add(w.port);
  }

  const connections = new Map<string, GraphConnection>();
  for (const pair of pairs.values()) {
    let client: number;
    let server: number;
    let why: string | undefined;
    const waited = (c: number, s: number) => waitOn.has(`${c}>${s}`);
    if (clientsOnly.has(pair.holder) || waited(pair.holder, pair.other)) {
      [client, server] = [pair.holder, pair.other];
    } else if (clientsOnly.has(pair.other) || waited(pair.other, pair.holder)) {
      [client, server] = [pair.other, pair.holder];
    } else {
      [client, server] = [pair.holder, pair.other];
      why = "both ends may serve (the holder has connection ports, or unread handles): " +
        "the system does not say which end a communication port is";
    }
    const key = why
      ? `${Math.min(client, server)}~${Math.max(client, server)}`
      : `${client}>${server}`;
    const c = connections.get(key);
    if (c) {
      c.handles += pair.handles;
      continue;
    }
    const edge: GraphConnection = {
      client,
      server,
      port: null,
      via: "session-info",
      handles: pair.handles,
      direction: why ? "unknown" : "known",
    };
    if (!why) {
      const named = serves.get(server) ?? [];
      const waitedOn = [...(waitOn.get(`${client}>${server}`) ?? [])];
      if (waitedOn.length === 1) edge.port = waitedOn[0]!;
      else if (named.length === 1) edge.port = named[0]!;
      else {
        why = named.length === 0
          ? "the server's named ports are not known (its handles could not be read)"
          : `the server has ${named.length} named ports; the system does not say which one a ` +
            "communication port belongs to";
      }
    }
    if (why) edge.why = why;
    connections.set(key, edge);
  }
  return [...connections.values()].sort((a, b) => a.server - b.server || a.client - b.client);
}

/** `"2 protected process, 1 access denied"`. */
function countBy(reasons: string[]): string {
  const n = new Map<string, number>();
  for (const r of reasons) n.set(r, (n.get(r) ?? 0) + 1);
  return [...n].map(([r, c]) => `${c} ${r}`).join(", ");
}
/**
 * The {@link GraphSource} of this system (Windows): the handle table, the process list, handle
 * duplication and the two ALPC queries over ntdll.
 */
export function kernelGraphSource(): GraphSource {
  return {
    debugPrivilege: () => enableDebugPrivilege(),
    currentPid: () => Deno.pid, // GetCurrentProcessId on Windows
    portTypeIndex: () => portTypeIndex(),
    handles: () => systemHandles(),
    processes: () => listProcessesAndThreads(),
    openProcess: (pid, access) => openProcess(pid, access),
    protection: (process) => processProtection(process as NtHandle<"process">),
    duplicate: (process, handle, pid) =>
      duplicatePortHandle(process as NtHandle<"process">, handle, pid),
    objectName: (port) => objectName(port as NtHandle),
    serverSession: (port) => queryAlpcServerSession(port as NtHandle<"port">),
    openThread: (tid) => openThread(tid, ALPC_SERVER_INFORMATION_THREAD_ACCESS),
    serverInformation: (thread) => queryAlpcServerInformation(thread as NtHandle<"thread">),
  };
}
