/**
 * What the port graph reads from its {@link GraphSource}: every port handle of every other process
 * (its name, and the process at its other end), and with `--waits` what each thread waiting for a
 * reply waits on. Every process, duplicate and thread opened here is closed on every path; what
 * could not be read is counted with its reason.
 *
 * @module
 */

import { NtError } from "../../mod.ts";
import {
  dupOpenRefusal,
  ProcessAccess,
  SYSTEM_PROCESS_ID,
  SYSTEM_PROCESS_SKIPPED,
  type SystemHandle,
  THREAD_STATE_WAITING,
  type ThreadEntry,
  WAIT_REASON_WR_LPC_REPLY,
} from "../../raw.ts";
import type {
  GraphPort,
  GraphProcess,
  GraphSource,
  GraphWait,
  PortGraph,
  ServerInformation,
  ServerSession,
} from "./port_graph_types.ts";

/** `NTSTATUS`/Win32 names meaning "no such thing (any more)" for a process or thread id. */
const GONE = new Set(["STATUS_INVALID_CID", "STATUS_INVALID_PARAMETER", "ERROR_INVALID_PARAMETER"]);
const DENIED = new Set(["STATUS_ACCESS_DENIED", "ERROR_ACCESS_DENIED"]);

/** The status name of a failure (or its message). */
export function statusOf(e: unknown): string {
  if (e instanceof NtError) return e.symbol ?? e.hex;
  return e instanceof Error ? e.message : String(e);
}

/** Why a process could not be opened for duplication: exited, else `dupOpenRefusal`'s words. */
function openFailure(source: GraphSource, pid: number, e: unknown): string {
  if (GONE.has(statusOf(e))) return "process exited";
  return dupOpenRefusal(
    pid,
    e,
    (p, access) => source.openProcess(p, access),
    (process) => source.protection(process),
  );
}

/** A holder's communication ports whose other end is one process. */
export interface Pair {
  /** The process holding the handles. */
  holder: number;
  /** The process at their other end (class 12). */
  other: number;
  /** How many. */
  handles: number;
}

/** What {@link readHandles} found. */
export interface HandleFacts {
  /** The processes holding port handles (image from the process list), by pid. */
  processes: Map<number, GraphProcess>;
  /** Named ports by lower-cased name. */
  ports: Map<string, GraphPort>;
  /** Holder → other end, by `holder>other`. */
  pairs: Map<string, Pair>;
  /** Processes whose every port handle was read and none was named: clients only. */
  clientsOnly: Set<number>;
  /** Class 12: how many handles it answered for, and the statuses of the others. */
  session: { answered: number; missing: Map<string, number> };
  /** Handles that gave nothing, reason → count. */
  unknown: Record<string, number>;
  /** Port handles of other processes in the table. */
  portHandles: number;
}

/**
 * Reads every port handle of every other process: duplicated into this one (when its process can
 * be opened for that), its name, and `AlpcServerSessionInformation`.
 *
 * @param source where the facts come from
 * @param handles the port handles of the other processes
 * @param images pid → image name, from the process list
 */
export function readHandles(
  source: GraphSource,
  handles: SystemHandle[],
  images: Map<number, string>,
): HandleFacts {
  const byPid = new Map<number, SystemHandle[]>();
  for (const h of handles) (byPid.get(h.pid) ?? byPid.set(h.pid, []).get(h.pid)!).push(h);
  const f: HandleFacts = {
    processes: new Map(),
    ports: new Map(),
    pairs: new Map(),
    clientsOnly: new Set(),
    session: { answered: 0, missing: new Map() },
    unknown: {},
    portHandles: handles.length,
  };
  const miss = (why: string, n = 1) => void (f.unknown[why] = (f.unknown[why] ?? 0) + n);
  for (const [pid, list] of byPid) {
    const p: GraphProcess = { pid, image: images.get(pid) ?? null, portHandles: list.length };
    f.processes.set(pid, p);
    if (pid === SYSTEM_PROCESS_ID) {
      p.unreadable = SYSTEM_PROCESS_SKIPPED;
      miss(p.unreadable, list.length);
      continue;
    }
    let process: Disposable;
    try {
      process = source.openProcess(
        pid,
        ProcessAccess.PROCESS_DUP_HANDLE | ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION,
      );
    } catch (e) {
      p.unreadable = openFailure(source, pid, e);
      miss(p.unreadable, list.length);
      continue;
    }
    using _process = process;
    let named = 0;
    let read = 0;
    for (const h of list) {
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
        f.session.answered++;
      } catch (e) {
        other = statusOf(e);
        f.session.missing.set(other, (f.session.missing.get(other) ?? 0) + 1);
      }
      if (name) {
        named++;
        const key = name.toLowerCase();
        const known = f.ports.get(key);
        const found: GraphPort = typeof other === "string"
          ? { name, server: pid, via: "duplication", why: `AlpcServerSessionInformation: ${other}` }
          : { name, server: other.processId, via: "session-info" };
        if (!known || (known.via !== "session-info" && found.via === "session-info")) {
          f.ports.set(key, found);
        }
      } else if (typeof other === "string") {
        miss(`communication port: AlpcServerSessionInformation: ${other}`);
      } else if (other.processId === pid) {
        miss("communication port connected within its own process");
      } else {
        const k = `${pid}>${other.processId}`;
        const pair = f.pairs.get(k) ??
          f.pairs.set(k, { holder: pid, other: other.processId, handles: 0 }).get(k)!;
        pair.handles++;
      }
    }
    if (read === list.length && named === 0) f.clientsOnly.add(pid);
  }
  return f;
}

/**
 * Asks every thread waiting for a reply (state Waiting, reason WrLpcReply) what it waits on
 * (`AlpcServerInformation`): class 4 names the port and its server even for a protected server.
 *
 * @param source where the facts come from
 * @param threads the other processes' threads
 * @param ports the named ports known so far (a waiter that is its port's server is told apart)
 * @param unread the processes whose handles could not be read (a waiter there on a port whose
 *   server is not known may be that server: it is counted, not given a role)
 */
export function readWaits(
  source: GraphSource,
  threads: ThreadEntry[],
  ports: Map<string, GraphPort>,
  unread: Set<number> = new Set(),
): NonNullable<PortGraph["waits"]> {
  const candidates = threads.filter((t) =>
    t.state === THREAD_STATE_WAITING && t.waitReason === WAIT_REASON_WR_LPC_REPLY
  );
  const blocked: GraphWait[] = [];
  const unknown: Record<string, number> = {};
  const miss = (why: string) => void (unknown[why] = (unknown[why] ?? 0) + 1);
  for (const t of candidates) {
    let thread: Disposable;
    try {
      thread = source.openThread(t.tid);
    } catch (e) {
      const s = statusOf(e);
      miss(GONE.has(s) ? "thread exited" : DENIED.has(s) ? "access denied" : `open thread: ${s}`);
      continue;
    }
    using _thread = thread;
    let info: ServerInformation;
    try {
      info = source.serverInformation(thread);
    } catch (e) {
      miss(`AlpcServerInformation: ${statusOf(e)}`);
      continue;
    }
    if (!info.blocked) {
      miss("no longer waiting on a port");
      continue;
    }
    // The port's own server waiting on a request it sent to a client: class 4 names the client
    // (AlpcpPortQueryServerInfo.c). Which one this is needs the port's server from the handles.
    const known = ports.get(info.connectionPortName.toLowerCase())?.server ?? null;
    if (known === null && unread.has(t.pid)) {
      miss(
        "waits on a port whose server is not known, in a process whose handles could not be " +
          "read: the other end class 4 names is the server for a client, the client for a server",
      );
      continue;
    }
    const serves = known === t.pid;
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
  return { candidates: candidates.length, blocked, unknown };
}
