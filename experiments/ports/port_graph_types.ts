/**
 * The port graph's shapes: what a {@link GraphSource} answers, and the `graph` part of the ports
 * document (`deno-lpc/ports@2`) that `port_graph.ts` builds from it.
 *
 * @module
 */

import type {
  AlpcServerInformation,
  AlpcServerSession,
  SystemHandle,
  ThreadEntry,
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
  /**
   * `NtQueryInformationProcess(ProcessProtectionInformation)`: the PS_PROTECTION byte of a process
   * opened with `PROCESS_QUERY_LIMITED_INFORMATION` (0: not protected).
   */
  protection(process: Disposable): number;
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
