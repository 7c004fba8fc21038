/**
 * A fake system for the port graph: processes with port handles (named connection ports, or
 * communication ports with their other end), threads and what they wait on, and the ways opening
 * fails (protected, denied, exited). Counts what the builder opens and closes.
 */

import { assert } from "@std/assert";
import { NtError, NTSTATUS } from "../../ffi/status.ts";
import type { SystemHandle } from "../../ffi/nt/system_handles.ts";
import type { ThreadEntry } from "../../ffi/nt/processes.ts";
import type { GraphSource, ServerInformation } from "../../experiments/ports/port_graph.ts";

export const PORT_TYPE = 46;
export const ME = 4242;
const ERROR_ACCESS_DENIED = 5;
const ERROR_INVALID_PARAMETER = 87;

/** One port handle of a fake process: a name (connection port) or none, and its other end. */
export interface FakePort {
  name?: string;
  /** Class 12's answer: the process at the other end (a connection port: its owner). */
  other?: number;
}

/** One fake process. */
export interface FakeProcess {
  image: string;
  ports: FakePort[];
  /**
   * How opening it fails: protected (limited query works, PS_PROTECTION 0x61), elevated (limited
   * query works, PS_PROTECTION 0: refused but not protected), denied (nothing works).
   */
  refuse?: "protected" | "elevated" | "denied";
  /** Listed in the handle table but gone from the process list. */
  exited?: boolean;
  threads?: (Omit<ThreadEntry, "pid" | "state" | "waitReason"> & {
    waiting?: boolean;
    answer?: ServerInformation;
  })[];
}

/** A fake system: class 12 exists unless `noClass12`; counts what is opened and closed. */
export function fakeSystem(
  procs: Record<number, FakeProcess>,
  options: { noClass12?: boolean; noPorts?: boolean } = {},
): GraphSource & {
  state: {
    open: number;
    closed: number;
    asked: number[];
    duplicatedFrom: number[];
    calls: string[];
  };
} {
  const state = {
    open: 0,
    closed: 0,
    asked: [] as number[],
    duplicatedFrom: [] as number[],
    calls: [] as string[],
  };
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
    debugPrivilege: () => true,
    currentPid: () => ME,
    portTypeIndex: () => {
      if (options.noPorts) {
        throw new NtError("NtCreatePort", NTSTATUS.STATUS_NOT_IMPLEMENTED, "ntstatus", "(probe)");
      }
      return PORT_TYPE;
    },
    handles: () => {
      state.calls.push("handles");
      return handles;
    },
    processes: () => {
      state.calls.push("processes");
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
      if (p.refuse === "denied" || (p.refuse && access !== 0x1000)) {
        throw new NtError("OpenProcess", ERROR_ACCESS_DENIED, "win32", `pid ${pid}`);
      }
      return opened({ pid });
    },
    protection: (process) => {
      const { pid } = process as unknown as { pid: number };
      return procs[pid]!.refuse === "protected" ? 0x61 : 0;
    },
    duplicate: (process, handle) => {
      const { pid } = process as unknown as { pid: number };
      state.duplicatedFrom.push(pid);
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
export const SYSTEM: Record<number, FakeProcess> = {
  500: { image: "csrss.exe", refuse: "protected", ports: [{ name: "\\Windows\\ApiPort" }, {}] },
  800: {
    image: "svc.exe",
    ports: [{ name: "\\RPC Control\\deno-lpc-x", other: 800 }, { other: 900 }],
    threads: [{
      // The server waiting on a request it sent to its client: class 4 names the client.
      tid: 801,
      answer: {
        blocked: true,
        connectedProcessId: 900,
        connectionPortName: "\\RPC Control\\deno-lpc-x",
      },
    }],
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
