/**
 * Conformance cases: the two `NtAlpcQueryInformation` classes the port graph reads,
 * `AlpcServerInformation` (4: which port a thread is blocked on) and
 * `AlpcServerSessionInformation` (12: who owns the port a port is connected to). Each case cites
 * the Windows 11 kernel functions it is read from and needs "alpc".
 *
 * @module
 */

import {
  ALPC_SERVER_INFORMATION_THREAD_ACCESS,
  AlpcInformationClass as C,
  AlpcMessageFlags as F,
  AlpcPortFlags as P,
} from "../../ffi/alpc/constants.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { arg } from "./types.ts";
import type { Arg, Case, Json, Thread } from "./types.ts";
import { readUint, st, u64 } from "./_util.ts";
import {
  alpcConnected,
  alpcListen,
  alpcMessage,
  alpcReceive,
  alpcReply,
  alpcRequest,
  alpcSend,
} from "./_alpc_scenario.ts";
import { fresh } from "./_scenario.ts";

const SI = LAYOUTS.ALPC_SERVER_INFORMATION;
const SSI = LAYOUTS.ALPC_SERVER_SESSION_INFORMATION;
const US = LAYOUTS.UNICODE_STRING;
const ALPC: Case["needs"] = ["alpc"];
/** NtCurrentThread(). */
const CURRENT_THREAD = 0xfffffffffffffffen;
/** `THREAD_QUERY_INFORMATION`: what AlpcpPortQueryServerInfo.c references the thread with. */
const THREAD_QUERY = ALPC_SERVER_INFORMATION_THREAD_ACCESS;
/** `THREAD_QUERY_LIMITED_INFORMATION`: a right that is not enough. */
const THREAD_QUERY_LIMITED = 0x800;

/** How much a named port's answer needs: the structure and the name with its NUL. */
const neededFor = (name: string) => SI.size + 2 * name.length + 2;

/**
 * `NtAlpcQueryInformation(port, AlpcServerInformation, buf, length, &ret)` on `t`, the buffer's
 * first 8 bytes holding `thread` (a handle value): the status, ReturnLength and the fields.
 */
async function serverInfo(
  t: Thread,
  thread: bigint,
  o: { port?: Arg; length?: number; size?: number } = {},
): Promise<{ [key: string]: Json }> {
  const size = o.size ?? 0x200;
  const init = new Uint8Array(size);
  init.set(u64(thread), SI.offsets.ThreadHandle);
  const buf = fresh("asi");
  const s = await t.call(
    "NtAlpcQueryInformation",
    o.port ?? null,
    C.AlpcServerInformation,
    arg.buf(buf, init),
    o.length ?? size,
    arg.buf(`${buf}.ret`, 4),
  );
  const b = await t.read(buf);
  const returnLength = readUint(await t.read(`${buf}.ret`), 0, 4) as number;
  if (s !== NTSTATUS.STATUS_SUCCESS) return { status: st(s), returnLength };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const name = SI.offsets.ConnectionPortName;
  const nameLength = dv.getUint16(name + US.offsets.Length, true);
  return {
    status: st(s),
    returnLength,
    threadBlocked: dv.getUint8(SI.offsets.ThreadBlocked),
    connectedProcessId: Number(dv.getBigUint64(SI.offsets.ConnectedProcessId, true)),
    nameLength,
    nameMaximumLength: dv.getUint16(name + US.offsets.MaximumLength, true),
    nameBufferSet: dv.getBigUint64(name + US.offsets.Buffer, true) !== 0n,
    name: new TextDecoder("utf-16le").decode(b.subarray(SI.size, SI.size + nameLength)),
  };
}

/** `NtAlpcQueryInformation(port, AlpcServerSessionInformation, buf, length, &ret)` on `t`. */
async function sessionInfo(
  t: Thread,
  port: string | null,
  length: number = SSI.size,
): Promise<{ status: string; returnLength: number; sessionId: number; processId: number }> {
  const buf = fresh("assi");
  const s = await t.call(
    "NtAlpcQueryInformation",
    port === null ? null : arg.h(port),
    C.AlpcServerSessionInformation,
    arg.buf(buf, SSI.size),
    length,
    arg.buf(`${buf}.ret`, 4),
  );
  const b = await t.read(buf);
  return {
    status: st(s),
    returnLength: readUint(await t.read(`${buf}.ret`), 0, 4) as number,
    sessionId: readUint(b, SSI.offsets.SessionId, 4) as number,
    processId: readUint(b, SSI.offsets.ProcessId, 4) as number,
  };
}

/** The answer for a thread that waits on no port (AlpcpPortQueryServerInfo.c). */
const NOT_BLOCKED = {
  status: "STATUS_SUCCESS",
  returnLength: SI.size,
  threadBlocked: 0,
  connectedProcessId: 0,
  nameLength: 0,
  nameMaximumLength: 0,
  nameBufferSet: false,
  name: "",
};

/** The cases of this group. */
export const cases: Case[] = [
  // NtAlpcQueryInformation.c references a non-NULL port handle first (READ_CONTROL), then
  // AlpcpPortQueryServerInfo.c: `if (a1 || a3 < 8) return 0xC000000D`, then
  // ObReferenceObjectByHandle(thread, 0x40, PsThreadType): a port handle is
  // STATUS_OBJECT_TYPE_MISMATCH, a handle without 0x40 STATUS_ACCESS_DENIED. None of these
  // writes ReturnLength.
  {
    name:
      "AlpcServerInformation refuses a port handle and a buffer under 8 bytes (STATUS_INVALID_PARAMETER), a handle that is not a thread (STATUS_OBJECT_TYPE_MISMATCH) and a thread handle without THREAD_QUERY_INFORMATION (STATUS_ACCESS_DENIED), writing no ReturnLength",
    sources: [
      "NtAlpcQueryInformation.c",
      "AlpcpPortQueryServerInfo.c",
      "ObReferenceObjectByHandle.c",
    ],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      const other = await k.self.thread();
      await alpcListen(k, t, "q4-bad");
      const limited = st(await t.openThread(other, THREAD_QUERY_LIMITED, "th.limited"));
      const refused = { returnLength: 0 };
      return {
        expected: {
          withPort: { status: "STATUS_INVALID_PARAMETER", ...refused },
          short: { status: "STATUS_INVALID_PARAMETER", ...refused },
          notAThread: { status: "STATUS_OBJECT_TYPE_MISMATCH", ...refused },
          limitedOpen: "STATUS_SUCCESS",
          limited: { status: "STATUS_ACCESS_DENIED", ...refused },
        },
        observed: {
          withPort: await serverInfo(t, CURRENT_THREAD, { port: arg.h("conn") }),
          short: await serverInfo(t, CURRENT_THREAD, { length: 4 }),
          notAThread: await serverInfo(t, t.handleValue("conn")),
          limitedOpen: limited,
          limited: await serverInfo(t, t.handleValue("th.limited")),
        },
      };
    },
  },

  // AlpcpPortQueryServerInfo.c references the thread through ObReferenceObjectByHandle.c
  // (ObpReferenceObjectByHandleWithTag.c): a value that is no handle in the caller's table (here
  // a thread handle already closed) is STATUS_INVALID_HANDLE, and no ReturnLength is written.
  {
    name:
      "AlpcServerInformation with a closed thread handle is STATUS_INVALID_HANDLE, writing no ReturnLength (the handle worked before)",
    sources: [
      "AlpcpPortQueryServerInfo.c",
      "ObReferenceObjectByHandle.c",
      "ObpReferenceObjectByHandleWithTag.c",
    ],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      const other = await k.self.thread();
      const opened = st(await t.openThread(other, THREAD_QUERY, "th.closed"));
      const value = t.handleValue("th.closed");
      const before = await serverInfo(t, value);
      const closed = st(await t.call("NtClose", arg.h("th.closed")));
      const after = await serverInfo(t, value);
      return {
        expected: {
          opened: "STATUS_SUCCESS",
          before: "STATUS_SUCCESS",
          closed: "STATUS_SUCCESS",
          after: { status: "STATUS_INVALID_HANDLE", returnLength: 0 },
        },
        observed: { opened, before: before.status!, closed, after },
      };
    },
  },

  // AlpcpReferenceMessageByWaitingThread.c returns 0xC0000225 when no port holds a message the
  // thread waits on; AlpcpPortQueryServerInfo.c turns that into success with ThreadBlocked 0,
  // ConnectedProcessId 0, an empty ConnectionPortName (Length/MaximumLength 0, Buffer NULL) and a
  // needed size of 32: fewer bytes is STATUS_INFO_LENGTH_MISMATCH, and ReturnLength is 32 either way.
  {
    name:
      "AlpcServerInformation of a thread that waits on no port: STATUS_SUCCESS, ThreadBlocked 0, ConnectedProcessId 0, an empty name and ReturnLength 32; into 16 bytes STATUS_INFO_LENGTH_MISMATCH with ReturnLength 32",
    sources: ["AlpcpPortQueryServerInfo.c", "AlpcpReferenceMessageByWaitingThread.c"],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      const other = await k.self.thread();
      const opened = st(await t.openThread(other, THREAD_QUERY, "th"));
      return {
        expected: {
          self: NOT_BLOCKED,
          opened: "STATUS_SUCCESS",
          other: NOT_BLOCKED,
          short: { status: "STATUS_INFO_LENGTH_MISMATCH", returnLength: SI.size },
        },
        observed: {
          self: await serverInfo(t, CURRENT_THREAD, { size: SI.size }),
          opened,
          other: await serverInfo(t, t.handleValue("th")),
          short: await serverInfo(t, CURRENT_THREAD, { size: 16 }),
        },
      };
    },
  },

  // AlpcpPortQueryServerInfo.c: the message the thread waits on (found in a port's queues by
  // AlpcpReferenceMessageByWaitingThreadPort.c) is the one it waits for a reply to; it went out
  // on a client port, so ConnectedProcessId is the connection port's owner (the server) and the
  // name is the connection port's (AlpcpGetPortNameInformation.c, ObQueryNameStringMode.c: the
  // full path, MaximumLength = Length + 2), copied at offset 32; 32 + MaximumLength is needed
  // (fewer: STATUS_INFO_LENGTH_MISMATCH with that ReturnLength). Once answered, it waits on
  // nothing.
  {
    name:
      "AlpcServerInformation of a client thread in a synchronous request the server has received: ThreadBlocked 1, ConnectedProcessId the server's, the connection port's full name at offset 32 and ReturnLength 32 + Length + 2 (32 bytes: STATUS_INFO_LENGTH_MISMATCH with that length); after the reply, not blocked",
    sources: [
      "AlpcpPortQueryServerInfo.c",
      "AlpcpReferenceMessageByWaitingThread.c",
      "AlpcpReferenceMessageByWaitingThreadPort.c",
      "AlpcpGetPortNameInformation.c",
      "ObQueryNameStringMode.c",
    ],
    needs: ["alpc", "process"],
    async run(k) {
      const other = await k.spawn();
      const link = await alpcConnected(k, "q4-wait", { client: other.main });
      const t = k.self.main;
      const opened = st(await t.openThread(other.main, THREAD_QUERY, "th"));
      const pr = alpcRequest(link.client, "cli", alpcMessage("wait for me"));
      const r = await alpcReceive(link.server, "conn");
      const blocked = await serverInfo(t, t.handleValue("th"));
      const short = await serverInfo(t, t.handleValue("th"), { size: SI.size });
      const replied = st(
        await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "done")),
      );
      const client = st(await pr.result(3000));
      const after = await serverInfo(t, t.handleValue("th"));
      return {
        expected: {
          opened: "STATUS_SUCCESS",
          received: "STATUS_SUCCESS",
          blocked: {
            status: "STATUS_SUCCESS",
            returnLength: neededFor(link.name),
            threadBlocked: 1,
            connectedProcessId: k.self.pid,
            nameLength: 2 * link.name.length,
            nameMaximumLength: 2 * link.name.length + 2,
            nameBufferSet: true,
            name: link.name,
          },
          short: { status: "STATUS_INFO_LENGTH_MISMATCH", returnLength: neededFor(link.name) },
          replied: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          after: NOT_BLOCKED,
        },
        observed: { opened, received: r.status, blocked, short, replied, client, after },
      };
    },
  },

  // AlpcpPortQueryServerInfo.c: the message's port (its sender's) is a server communication port
  // (flags & 6 == 6, as AlpcpReferenceConnectedPort.c reads the type), so the other end is the
  // communication info's client port and ConnectedProcessId its owner, the client; the name is
  // still the connection port's.
  {
    name:
      "AlpcServerInformation of a server thread in a synchronous request to its client: ThreadBlocked 1, ConnectedProcessId the client's, the connection port's name",
    sources: [
      "AlpcpPortQueryServerInfo.c",
      "AlpcpReferenceConnectedPort.c",
      "AlpcpReferenceMessageByWaitingThread.c",
      "AlpcpGetPortNameInformation.c",
    ],
    needs: ["alpc", "process"],
    async run(k) {
      const other = await k.spawn();
      const link = await alpcConnected(k, "q4-srv", {
        server: other.main,
        clientAttrs: { flags: P.ALLOW_LPC_REQUESTS }, // AlpcpDispatchNewMessage.c
      });
      const t = k.self.main;
      const opened = st(await t.openThread(other.main, THREAD_QUERY, "th"));
      const pr = alpcRequest(link.server, "srv", alpcMessage("server asks"));
      const r = await alpcReceive(link.client, "cli");
      const blocked = await serverInfo(t, t.handleValue("th"));
      const replied = st(
        await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcReply(r, "answered")),
      );
      const server = st(await pr.result(3000));
      return {
        expected: {
          opened: "STATUS_SUCCESS",
          received: "STATUS_SUCCESS",
          blocked: {
            status: "STATUS_SUCCESS",
            threadBlocked: 1,
            connectedProcessId: k.self.pid,
            name: link.name,
          },
          replied: "STATUS_SUCCESS",
          server: "STATUS_SUCCESS",
        },
        observed: {
          opened,
          received: r.status,
          blocked: {
            status: blocked.status!,
            threadBlocked: blocked.threadBlocked ?? null,
            connectedProcessId: blocked.connectedProcessId ?? null,
            name: blocked.name ?? null,
          },
          replied,
          server,
        },
      };
    },
  },

  // AlpcpPortQueryServerSessionInfo.c: a NULL port → 0xC000000D; the connected port
  // (AlpcpReferenceConnectedPort.c: a client port's server port, a server port's client port, a
  // connection port itself) and its owner process (AlpcpSetOwnerProcessPort.c: the process that
  // made it) give SessionId (MmGetSessionIdEx) and ProcessId; fewer than 8 bytes is
  // STATUS_INFO_LENGTH_MISMATCH, and ReturnLength is 8 either way.
  {
    name:
      "AlpcServerSessionInformation: a client port names the server's process, the server port the client's, the connection port its creator's, all in one session; a NULL port is STATUS_INVALID_PARAMETER, 4 bytes STATUS_INFO_LENGTH_MISMATCH with ReturnLength 8",
    sources: [
      "NtAlpcQueryInformation.c",
      "AlpcpPortQueryServerSessionInfo.c",
      "AlpcpReferenceConnectedPort.c",
      "AlpcpSetOwnerProcessPort.c",
    ],
    needs: ["alpc", "process"],
    async run(k) {
      const other = await k.spawn();
      const link = await alpcConnected(k, "q12", { client: other.main });
      const fromClient = await sessionInfo(link.client, "cli");
      const fromServer = await sessionInfo(link.server, "srv");
      const fromConnection = await sessionInfo(link.server, "conn");
      const nullPort = await sessionInfo(link.server, null);
      const short = await sessionInfo(link.client, "cli", 4);
      const ok = (pid: number) => ({ status: "STATUS_SUCCESS", returnLength: 8, processId: pid });
      const seen = (r: Awaited<ReturnType<typeof sessionInfo>>) => ({
        status: r.status,
        returnLength: r.returnLength,
        processId: r.processId,
      });
      return {
        expected: {
          fromClient: ok(k.self.pid),
          fromServer: ok(other.pid),
          fromConnection: ok(k.self.pid),
          oneSession: true,
          nullPort: { status: "STATUS_INVALID_PARAMETER", returnLength: 0 },
          short: { status: "STATUS_INFO_LENGTH_MISMATCH", returnLength: 8 },
        },
        observed: {
          fromClient: seen(fromClient),
          fromServer: seen(fromServer),
          fromConnection: seen(fromConnection),
          oneSession: fromClient.sessionId === fromServer.sessionId &&
            fromServer.sessionId === fromConnection.sessionId,
          nullPort: { status: nullPort.status, returnLength: nullPort.returnLength },
          short: { status: short.status, returnLength: short.returnLength },
        },
      };
    },
  },

  // AlpcpClosePort.c: the owner's last handle runs AlpcpDoPortCleanup.c, which releases the
  // port's owner process (bit 0 of the owner field); AlpcpPortQueryServerSessionInfo.c then finds
  // no owner behind the client port's connected port (or no connected port):
  // STATUS_INVALID_PARAMETER.
  {
    name:
      "AlpcServerSessionInformation on a client port whose server port is closed is STATUS_INVALID_PARAMETER (it named the server before)",
    sources: [
      "AlpcpPortQueryServerSessionInfo.c",
      "AlpcpReferenceConnectedPort.c",
      "AlpcpClosePort.c",
      "AlpcpDoPortCleanup.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "q12-closed");
      const before = await sessionInfo(link.client, "cli");
      const closed = st(await link.server.call("NtClose", arg.h("srv")));
      const after = await sessionInfo(link.client, "cli");
      return {
        expected: {
          before: { status: "STATUS_SUCCESS", processId: k.self.pid },
          closed: "STATUS_SUCCESS",
          after: "STATUS_INVALID_PARAMETER",
        },
        observed: {
          before: { status: before.status, processId: before.processId },
          closed,
          after: after.status,
        },
      };
    },
  },
];
