/**
 * Experiment 1 runs against the fake kernel, as documents: the server's timeline is the real
 * server code's (LpcServer or AlpcServer on FakeKernel), the READ protocol and checks are the experiment's
 * (`serveRead`); the client's identity and lab are stand-ins (no token, no files on Linux). Used
 * by the report tests to see a run that observed a transport.
 */

import {
  decodeReadReply,
  encodeReadRequest,
  serveRead,
} from "../../experiments/exp1/exp1_protocol.ts";
import type { Exp1Run, PortInfo } from "../../experiments/exp1/exp1_document.ts";
import type { NtHandle } from "../../ffi/nt/handle.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../../ffi/lpc/port.ts";
import { AlpcClient } from "../../ffi/alpc/client.ts";
import { createAlpcPort, queryAlpcBasicInformation } from "../../ffi/alpc/port.ts";
import { AlpcServer } from "../../ffi/alpc/server.ts";
import { formatHex, NtError, NTSTATUS } from "../../ffi/status.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 500, tid: 501 };

/** The stand-in file system: the secret, readable by the server's own identity only. */
function files(k: FakeKernel) {
  return {
    rootFinalPath: () => "\\\\?\\C:\\lab",
    open: (relative: string) => {
      if (k.impersonating.get(SERVER.tid) === CLIENT.pid) {
        throw new NtError("NtCreateFile", NTSTATUS.STATUS_ACCESS_DENIED, "ntstatus", relative);
      }
      return {
        finalPath: () => `\\\\?\\C:\\lab\\${relative}`,
        read: () => new TextEncoder().encode("TOP SECRET"),
        [Symbol.dispose]: () => {},
      };
    },
  };
}

/** The connection port's basic information as the fake gives it, as exp1_handler.ts records it. */
function portInfo(k: FakeKernel, port: NtHandle<"connection-port">): PortInfo {
  try {
    const info = queryAlpcBasicInformation(port, { nt: k.symbols });
    return {
      flags: info.flags,
      flagsHex: `0x${info.flags.toString(16).toUpperCase()}`,
      names: info.flagNames,
    };
  } catch (e) {
    return { unavailable: e instanceof Error ? e.message : String(e) };
  }
}

/** One exp1 run over legacy LPC against the fake kernel, as its document's run. */
export function fakeLpcExp1Run(impersonate = false): Exp1Run {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort("\\RPC Control\\exp1", { nt: k.symbols }));
  const fs = files(k);
  const server = new LpcServer(port, {
    request: (r) =>
      serveRead(r.data, { ...fs, ...(impersonate ? { impersonate: r.impersonate } : {}) }),
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(CLIENT, () => LpcClient.connect("\\RPC Control\\exp1", { nt: k.symbols }));
  const reply = decodeReadReply(
    k.as(
      CLIENT,
      () => client.request(encodeReadRequest({ path: "secret.txt", offset: 0n, length: 10 })),
    ).data,
  );
  const info = k.as(SERVER, () => portInfo(k, port));
  k.as(CLIENT, () => client.close());
  k.as(SERVER, () => server.step(0));
  k.as(SERVER, () => server[Symbol.dispose]());
  return { ...exp1Run("lpc", impersonate, server.events, reply), portInfo: info };
}

/** One exp1 run over ALPC against the fake kernel, as its document's run. */
export function fakeAlpcExp1Run(impersonate = false): Exp1Run {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort("\\RPC Control\\exp1", { nt: k.symbols }));
  const fs = files(k);
  const server = new AlpcServer(port, {
    request: (r) =>
      serveRead(r.data, { ...fs, ...(impersonate ? { impersonate: r.impersonate } : {}) }),
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(CLIENT, () => AlpcClient.connect("\\RPC Control\\exp1", { nt: k.symbols }));
  const reply = decodeReadReply(
    k.as(
      CLIENT,
      () => client.request(encodeReadRequest({ path: "secret.txt", offset: 0n, length: 10 })),
    ).data,
  );
  const info = k.as(SERVER, () => portInfo(k, port));
  k.as(CLIENT, () => client.close());
  while (k.as(SERVER, () => server.step(0)));
  k.as(SERVER, () => server[Symbol.dispose]());
  return { ...exp1Run("alpc", impersonate, server.events, reply), portInfo: info };
}

/** The document of a run, from the server's events and the reply the client got. */
export function exp1Run(
  transport: Exp1Run["transport"],
  impersonate: boolean,
  events: NonNullable<Exp1Run["server"]>["events"],
  reply: ReturnType<typeof decodeReadReply>,
): Exp1Run {
  const name = reply.statusName ?? formatHex(reply.status);
  return {
    transport,
    mode: impersonate ? "impersonate" : "confused-deputy",
    lab: {
      folder: "C:\\lab",
      secret: "C:\\lab\\secret.txt",
      sddl: "D:P(A;;FA;;;SY)(A;;FA;;;BA)",
      folderSddl: "",
      folderStored: "",
      drop: "C:\\lab\\drop",
      dropSddl: "",
      dropStored: "",
      vault: "C:\\lab-vault",
      vaultFile: "C:\\lab-vault\\vault.txt",
      vaultSddl: "",
    },
    port: { name: "\\RPC Control\\exp1", sddl: "" },
    server: { pid: SERVER.pid, tid: SERVER.tid, events },
    client: {
      schema: "deno-lpc/exp1-client@2",
      transport,
      identity: {
        pid: CLIENT.pid,
        tid: CLIENT.tid,
        user: "S-1-5-21-1-2-3-1001",
        integrity: "Medium",
        elevated: false,
        administrators: "deny-only",
      },
      direct: { status: "0xC0000022", name: "STATUS_ACCESS_DENIED", at: 0 },
      viaServer: { status: formatHex(reply.status), name, bytes: reply.bytes.byteLength, at: 0 },
      exitCode: 0,
      token: "restricted copy of S-1-5-21-1-2-3-1001",
    },
    findings: {
      directDenied: true,
      servedBytes: reply.bytes.byteLength,
      serverStatus: name,
      probesRefused: 0,
      probes: 0,
      junction: { made: false },
    },
  };
}
