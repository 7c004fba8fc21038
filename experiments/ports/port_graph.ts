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

import { NtError, type NtHandle, openProcess } from "../../mod.ts";
import {
  ALPC_SERVER_INFORMATION_THREAD_ACCESS,
  type AlpcServerInformation,
  type AlpcServerSession,
  duplicatePortHandle,
  enableDebugPrivilege,
  listProcessesAndThreads,
  objectName,
  openThread,
  portTypeIndex,
  ProcessAccess,
  queryAlpcServerInformation,
  queryAlpcServerSession,
  type SystemHandle,
  systemHandles,
  THREAD_STATE_WAITING,
  type ThreadEntry,
  WAIT_REASON_WR_LPC_REPLY,
} from "../../raw.ts";

/** What `AlpcServerSessionInformation` (class 12) returns: the process at the other end. */
export type ServerSession = AlpcServerSession;

/** What `AlpcServerInformation` (class 4) returns for a thread. */
export type ServerInformation = AlpcServerInformation;

/**
 * Where the graph's facts come from. Each call throws (an `NtError` on Windows) when the system
 * refuses; what is opened is a `Disposable` the builder closes.
 */
export interface GraphSource {
  /** Enables SeDebugPrivilege where the token holds it; whether it is enabled. */
  debugPrivilege(): boolean;
  /** This process's id (its own handles are left out). */
  currentPid(): number;
  /** The handle-table type index of ports (throws where the system has no ports: Wine). */
  portTypeIndex(): number;
  /** The system handle table. */
  handles(): SystemHandle[];
  /** The processes (pid, image) and their threads, from one snapshot. */
  processes(): { processes: { pid: number; image: string }[]; threads: ThreadEntry[] };
  /** Opens a process with `access` (`PROCESS_DUP_HANDLE`, `PROCESS_QUERY_LIMITED_INFORMATION`). */
  openProcess(pid: number, access: number): Disposable;
  /** Duplicates `handle` of the opened process into this one. */
  duplicate(process: Disposable, handle: bigint, pid: number): Disposable;
  /** The object name of a duplicated port (`""` for a communication port). */
  objectName(port: Disposable): string;
  /** `NtAlpcQueryInformation(port, AlpcServerSessionInformation)`. */
  serverSession(port: Disposable): ServerSession;
  /** Opens a thread for `THREAD_QUERY_INFORMATION` (`ALPC_SERVER_INFORMATION_THREAD_ACCESS`). */
  openThread(tid: number): Disposable;
  /** `NtAlpcQueryInformation(NULL, AlpcServerInformation, {thread})`. */
  serverInformation(thread: Disposable): ServerInformation;
}

/** How a named port's server was found. */
export type ServerVia =
  /** Class 12 on a duplicated handle of the connection port: its owner. */
  | "session-info"
  /** The process holding the connection port's handle (class 12 unavailable). */
  | "duplication"
  /** Class 4 on a thread waiting on the port (the port's own handles could not be read). */
  | "server-information";

/** A process in the graph. */
export interface GraphProcess {
  /** The process id. */
  pid: number;
  /** Its image name, from the process list (`null`: it has exited). */
  image: string | null;
  /** Its port handles in the handle table. */
  portHandles: number;
  /** Why its handles could not be examined (absent when they could). */
  unreadable?: string;
}

/** A named (connection) port and its server. */
export interface GraphPort {
  /** The port's path, as the kernel names it. */
  name: string;
  /** The serving process, or `null` with {@link GraphPort.unknown}. */
  server: number | null;
  /** How the server was found. */
  via?: ServerVia;
  /** Why `session-info` was not used (with `duplication`), or why the server is unknown. */
  why?: string;
}

/** A client process holding a communication port connected to a server process. */
export interface GraphConnection {
  /** The client (with `direction: "unknown"`: the holder of the handle). */
  client: number;
  /** The server (with `direction: "unknown"`: the other end). */
  server: number;
  /** The named port it is connected to, when known. */
  port: string | null;
  /** Always `session-info`: the other end comes from class 12. */
  via: "session-info";
  /** Communication port handles seen for this pair (both ends counted). */
  handles: number;
  /** Whether client and server could be told apart. */
  direction: "known" | "unknown";
  /** Why the port or the direction is unknown. */
  why?: string;
}

/** A thread waiting for a reply (`--waits`). */
export interface GraphWait {
  /** Its process. */
  pid: number;
  /** The thread id. */
  tid: number;
  /** The connection port it waits on (`""`: an unnamed one). */
  port: string;
  /** The process serving that port. */
  server: number;
  /**
   * `client`: the thread's request went to the server; `server`: the thread is the port's server
   * waiting for a reply from its client `peer` (class 4 then names the client: AlpcpPortQueryServerInfo.c).
   */
  role: "client" | "server";
  /** Class 4's `ConnectedProcessId`: the process at the other end. */
  peer: number;
  /** Always `server-information` (class 4). */
  via: "server-information";
}

/** The graph in the ports document (`graph`, schema `deno-lpc/ports@2`). */
export interface PortGraph {
  /** Whether SeDebugPrivilege was enabled (without it, far fewer processes can be opened). */
  debugPrivilege: boolean;
  /** Whether this system answers class 12, and if not, why it is taken to be missing. */
  sessionInfo: { available: boolean; reason?: string };
  /** The processes holding port handles, or named as a server or client. */
  processes: GraphProcess[];
  /** The named ports found in the handle table (and those named by `names`), with servers. */
  ports: GraphPort[];
  /** Client → server edges. */
  connections: GraphConnection[];
  /** Port handles that gave no edge, by reason → count. */
  unknown: Record<string, number>;
  /** With `--waits`: the threads waiting on a port. */
  waits?: {
    /** Threads asked (waiting, wait reason WrLpcReply). */
    candidates: number;
    /** Those blocked on a port. */
    blocked: GraphWait[];
    /** Those that could not be asked, or no longer waited, by reason → count. */
    unknown: Record<string, number>;
  };
  /** Counts. */
  summary: {
    portHandles: number;
    processes: number;
    ports: number;
    attributed: number;
    connections: number;
    waits?: number;
  };
}

/** Options of {@link buildPortGraph}. */
export interface GraphOptions {
  /** Ask every thread waiting for a reply what it waits on. */
  waits: boolean;
  /** Named ports to include even when no handle of theirs could be read (from the walk). */
  names?: string[];
}

/** `NTSTATUS`/Win32 names meaning "no such thing (any more)" for a process or thread id. */
const GONE = new Set(["STATUS_INVALID_CID", "STATUS_INVALID_PARAMETER", "ERROR_INVALID_PARAMETER"]);
const DENIED = new Set(["STATUS_ACCESS_DENIED", "ERROR_ACCESS_DENIED"]);
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

function statusOf(e: unknown): string {
  if (e instanceof NtError) return e.symbol ?? e.hex;
  return e instanceof Error ? e.message : String(e);
}

/** Why a process could not be opened for duplication, in the graph's words. */
function openFailure(source: GraphSource, pid: number, e: unknown, alive: boolean): string {
  const s = statusOf(e);
  if (!alive || GONE.has(s)) return "process exited";
  if (DENIED.has(s)) {
    try {
      source.openProcess(pid, ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION)[Symbol.dispose]();
      return "protected process";
    } catch { /* not even limited query access */ }
    return "access denied";
  }
  return `open process: ${s}`;
}

interface Pair {
  holder: number;
  other: number;
  handles: number;
}

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
  const { processes: list, threads } = source.processes();
  const images = new Map(list.map((p) => [p.pid, p.image]));
  const byPid = new Map<number, SystemHandle[]>();
  for (const h of source.handles()) {
    if (h.typeIndex !== typeIndex || h.pid === me) continue;
    (byPid.get(h.pid) ?? byPid.set(h.pid, []).get(h.pid)!).push(h);
  }
  const unknown: Record<string, number> = {};
  const miss = (why: string, n = 1) => void (unknown[why] = (unknown[why] ?? 0) + n);
  const processes = new Map<number, GraphProcess>();
  const node = (pid: number): GraphProcess => {
    let p = processes.get(pid);
    if (!p) {
      p = { pid, image: images.get(pid) ?? null, portHandles: 0 };
      processes.set(pid, p);
    }
    return p;
  };
  const ports = new Map<string, GraphPort>();
  const pairs = new Map<string, Pair>();
  /** Processes whose every port handle was read and none was named: clients only. */
  const clientsOnly = new Set<number>();
  const session = { answered: 0, missing: new Map<string, number>() };
  let portHandles = 0;

  for (const [pid, handles] of byPid) {
    portHandles += handles.length;
    const p = node(pid);
    p.portHandles = handles.length;
    let process: Disposable;
    try {
      process = source.openProcess(
        pid,
        ProcessAccess.PROCESS_DUP_HANDLE | ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION,
      );
    } catch (e) {
      p.unreadable = openFailure(source, pid, e, images.has(pid));
      miss(p.unreadable, handles.length);
      continue;
    }
    using _process = process;
    let named = 0;
    let read = 0;
    for (const h of handles) {
      let dup: Disposable;
      try {
        dup = source.duplicate(process, h.handle, pid);
      } catch (e) {
        miss(`duplicate: ${statusOf(e)}`);
        continue;
      }
      using _dup = dup;
      let name: string;
      try {
        name = source.objectName(dup);
      } catch (e) {
        miss(`name query: ${statusOf(e)}`);
        continue;
      }
      read++;
      let other: ServerSession | string;
      try {
        other = source.serverSession(dup);
        session.answered++;
      } catch (e) {
        other = statusOf(e);
        session.missing.set(other, (session.missing.get(other) ?? 0) + 1);
      }
      if (name) {
        named++;
        const key = name.toLowerCase();
        const known = ports.get(key);
        const found: GraphPort = typeof other === "string"
          ? { name, server: pid, via: "duplication", why: `AlpcServerSessionInformation: ${other}` }
          : { name, server: other.processId, via: "session-info" };
        if (!known || (known.via !== "session-info" && found.via === "session-info")) {
          ports.set(key, found);
        }
      } else if (typeof other === "string") {
        miss(`communication port: AlpcServerSessionInformation: ${other}`);
      } else if (other.processId === pid) {
        miss("communication port connected within its own process");
      } else {
        const k = `${pid}>${other.processId}`;
        const pair = pairs.get(k) ??
          pairs.set(k, { holder: pid, other: other.processId, handles: 0 })
            .get(k)!;
        pair.handles++;
      }
    }
    if (read === handles.length && named === 0) clientsOnly.add(pid);
  }

  // The waiting threads: class 4 names the port and its server even for a protected server.
  let waits: PortGraph["waits"];
  if (options.waits) {
    const candidates = threads.filter((t) =>
      t.pid !== me && t.state === THREAD_STATE_WAITING && t.waitReason === WAIT_REASON_WR_LPC_REPLY
    );
    const blocked: GraphWait[] = [];
    const wmiss: Record<string, number> = {};
    const wm = (why: string) => void (wmiss[why] = (wmiss[why] ?? 0) + 1);
    for (const t of candidates) {
      let thread: Disposable;
      try {
        thread = source.openThread(t.tid);
      } catch (e) {
        const s = statusOf(e);
        wm(GONE.has(s) ? "thread exited" : DENIED.has(s) ? "access denied" : `open thread: ${s}`);
        continue;
      }
      using _thread = thread;
      let info: ServerInformation;
      try {
        info = source.serverInformation(thread);
      } catch (e) {
        wm(`AlpcServerInformation: ${statusOf(e)}`);
        continue;
      }
      if (!info.blocked) {
        wm("no longer waiting on a port");
        continue;
      }
      // The port's own server waiting on a request it sent to a client: class 4 names the client.
      const serves = ports.get(info.connectionPortName.toLowerCase())?.server === t.pid;
      blocked.push({
        pid: t.pid,
        tid: t.tid,
        port: info.connectionPortName,
        server: serves ? t.pid : info.connectedProcessId,
        role: serves ? "server" : "client",
        peer: info.connectedProcessId,
        via: "server-information",
      });
    }
    waits = { candidates: candidates.length, blocked, unknown: wmiss };
    for (const w of blocked) {
      const key = w.port.toLowerCase();
      if (w.port && !ports.has(key)) {
        ports.set(key, { name: w.port, server: w.server, via: "server-information" });
      }
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

  // Which named ports each process serves.
  const serves = new Map<number, string[]>();
  for (const p of ports.values()) {
    if (p.server === null) continue;
    (serves.get(p.server) ?? serves.set(p.server, []).get(p.server)!).push(p.name);
  }
  const waitOn = new Map<string, Set<string>>();
  for (const w of waits?.blocked ?? []) {
    if (w.role === "server") continue;
    const k = `${w.pid}>${w.server}`;
    (waitOn.get(k) ?? waitOn.set(k, new Set()).get(k)!).add(w.port);
  }

  // Orient each pair: the side holding no connection port at all is the client.
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
    node(client);
    node(server);
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
  for (const w of waits?.blocked ?? []) {
    node(w.pid);
    node(w.server);
    node(w.peer);
  }
  for (const p of ports.values()) if (p.server !== null) node(p.server);

  const available = session.answered > 0;
  const sessionInfo: PortGraph["sessionInfo"] = { available };
  if (!available) {
    const statuses = [...session.missing.keys()];
    sessionInfo.reason = statuses.length === 0
      ? "no port handle could be asked"
      : statuses.every((s) => NO_CLASS.has(s))
      ? `every port answered ${statuses.join(", ")}: taken as a Windows without the class ` +
        "(before Windows 10 19H2; NtAlpcQueryInformation.c answers an unknown class with " +
        "STATUS_INVALID_PARAMETER)"
      : `every port answered ${statuses.join(", ")}`;
  }

  const portList = [...ports.values()].sort((a, b) => a.name.localeCompare(b.name));
  const graph: PortGraph = {
    debugPrivilege,
    sessionInfo,
    processes: [...processes.values()].sort((a, b) => a.pid - b.pid),
    ports: portList,
    connections: [...connections.values()].sort((a, b) =>
      a.server - b.server || a.client - b.client
    ),
    unknown,
    summary: {
      portHandles,
      processes: processes.size,
      ports: portList.length,
      attributed: portList.filter((p) => p.server !== null).length,
      connections: connections.size,
    },
  };
  if (waits) {
    graph.waits = waits;
    graph.summary.waits = waits.blocked.length;
  }
  return graph;
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
    duplicate: (process, handle, pid) =>
      duplicatePortHandle(process as NtHandle<"process">, handle, pid),
    objectName: (port) => objectName(port as NtHandle),
    serverSession: (port) => queryAlpcServerSession(port as NtHandle<"port">),
    openThread: (tid) => openThread(tid, ALPC_SERVER_INFORMATION_THREAD_ACCESS),
    serverInformation: (thread) => queryAlpcServerInformation(thread as NtHandle<"thread">),
  };
}
