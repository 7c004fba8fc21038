/**
 * Conformance cases: death. What a server sees when a client thread or process ends (termination
 * ports, `LPC_CLIENT_DIED`, `LPC_PORT_CLOSED`, cancelled requests) and what a client sees when its
 * server goes away. Each case cites the Windows 11 kernel functions it is read from.
 *
 * @module
 */

import { KERNEL_MESSAGE_LENGTH, LpcMessageType as T } from "../../ffi/port_message.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { arg } from "./types.ts";
import type { Case } from "./types.ts";
import { HEADER, hex, replyTo, st, utf8 } from "./_util.ts";
import {
  byTid,
  collect,
  connected,
  CTX,
  diedOf,
  fresh,
  listen,
  receive,
  type Received,
  request,
  summary,
  typeOrStatus,
} from "./_scenario.ts";

const isType = (m: Received, type: number) => (m.header.type & 0xff) === type;
const CTX2 = 0xBEEF0000n;

/**
 * A case: the server closes its handle `close` (the server communication port or the connection
 * port) while a client in another process waits for the reply to a request the server received;
 * the client's wait ends with STATUS_LPC_REPLY_LOST and its next request gets
 * STATUS_PORT_DISCONNECTED.
 */
function closedWhileWaiting(c: {
  name: string;
  sources: string[];
  label: string;
  close: "srv" | "conn";
}): Case {
  return {
    name: c.name,
    sources: c.sources,
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, c.label, "conn");
      const client = await k.spawn();
      const link = await connected(k, { server, name, client: client.main, context: CTX });
      const rq = request(link, "waiting");
      const got = await receive(server, "conn");
      const closed = await server.call("NtClose", arg.h(c.close));
      const lost = await rq.result(3000);
      const next = await request(link, "again").result(3000);
      return {
        expected: {
          received: T.LPC_REQUEST,
          close: st(0),
          waiting: st(NTSTATUS.STATUS_LPC_REPLY_LOST),
          next: st(NTSTATUS.STATUS_PORT_DISCONNECTED),
        },
        observed: {
          received: typeOrStatus(got),
          close: st(closed),
          waiting: st(lost),
          next: st(next),
        },
      };
    },
  };
}

/** The cases of this group. */
export const cases: Case[] = [
  // NtRegisterThreadTerminatePort.c pushes {port} on the thread's list; PspExitThread.c sends 0x600300008 + CreateTime
  // through LpcRequestPort.c to each; AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c: client port -> its
  // connection port, context from the server port (AlpcpDispatchNewMessage.c: `v2+120 = v15[7]`, Cid of the current thread).
  {
    name:
      "A thread that registered its client port and exits sends one LPC_CLIENT_DIED (Type 6, DataLength 8, TotalLength 0x30) to the connection port with its ClientId, its CreateTime and the connection's PortContext",
    sources: [
      "NtRegisterThreadTerminatePort.c",
      "PspExitThread.c",
      "LpcRequestPort.c",
      "AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c",
      "AlpcpDispatchNewMessage.c",
    ],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "died-one", "conn");
      const client = await k.spawn();
      const t = await client.thread();
      await connected(k, { server, name, client: t, context: CTX });
      const reg = await t.call("NtRegisterThreadTerminatePort", arg.h("cli"));
      await t.exit();
      const got = await collect(server, "conn", { ms: 1000 });
      return {
        expected: { register: st(0), died: [diedOf(t, CTX)] },
        observed: { register: st(reg), died: byTid(got, t) },
      };
    },
  },
  // PspExitThread.c walks only the exiting thread's own list (CurrentThread[1].InitialStack); NtRegisterThreadTerminatePort.c
  // registers the calling thread only.
  {
    name:
      "Each registered thread that exits sends its own LPC_CLIENT_DIED, and a thread of the same process that did not register sends none",
    sources: ["NtRegisterThreadTerminatePort.c", "PspExitThread.c"],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "died-two", "conn");
      const client = await k.spawn();
      const t1 = await client.thread();
      const t2 = await client.thread();
      const u = await client.thread();
      await connected(k, { server, name, client: t1, context: CTX });
      const r1 = await t1.call("NtRegisterThreadTerminatePort", arg.h("cli"));
      const r2 = await t2.call("NtRegisterThreadTerminatePort", arg.h("cli"));
      await t1.exit();
      await t2.exit();
      await u.exit();
      const got = await collect(server, "conn", { ms: 1000 });
      return {
        expected: {
          register: [st(0), st(0)],
          t1: [diedOf(t1, CTX)],
          t2: [diedOf(t2, CTX)],
          unregistered: [],
        },
        observed: {
          register: [st(r1), st(r2)],
          t1: byTid(got, t1),
          t2: byTid(got, t2),
          unregistered: byTid(got, u),
        },
      };
    },
  },
  // NtRegisterThreadTerminatePort.c allocates a new list entry on every call (no check for a port already on the list).
  {
    name:
      "A thread that registers the same port twice sends two LPC_CLIENT_DIED messages when it exits",
    sources: ["NtRegisterThreadTerminatePort.c", "PspExitThread.c"],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "died-twice", "conn");
      const client = await k.spawn();
      const t = await client.thread();
      await connected(k, { server, name, client: t, context: CTX });
      const r1 = await t.call("NtRegisterThreadTerminatePort", arg.h("cli"));
      const r2 = await t.call("NtRegisterThreadTerminatePort", arg.h("cli"));
      await t.exit();
      const got = await collect(server, "conn", { ms: 1000 });
      return {
        expected: { register: [st(0), st(0)], died: [diedOf(t, CTX), diedOf(t, CTX)] },
        observed: { register: [st(r1), st(r2)], died: byTid(got, t) },
      };
    },
  },
  // E16. NtRegisterThreadTerminatePort.c: `*entry = thread->list; thread->list = entry` (push at the head);
  // PspExitThread.c walks from the head, so the newest registration is told first. Both go to one queue, received in order.
  {
    name:
      "A thread with several termination ports notifies them newest registration first (two connections, contexts received in reverse order of registration)",
    sources: ["NtRegisterThreadTerminatePort.c", "PspExitThread.c", "AlpcpDispatchNewMessage.c"],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "died-order", "conn");
      const client = await k.spawn();
      const t = await client.thread();
      await connected(k, { server, name, client: t, cli: "pa", srv: "spa", context: CTX });
      await connected(k, { server, name, client: t, cli: "pb", srv: "spb", context: CTX2 });
      const ra = await t.call("NtRegisterThreadTerminatePort", arg.h("pa"));
      const rb = await t.call("NtRegisterThreadTerminatePort", arg.h("pb"));
      await t.exit();
      const got = await collect(server, "conn", { ms: 1000 });
      return {
        expected: { register: [st(0), st(0)], died: [diedOf(t, CTX2), diedOf(t, CTX)] },
        observed: { register: [st(ra), st(rb)], died: byTid(got, t) },
      };
    },
  },
  // E16. AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c: port kind 1 (connection port) -> target and
  // context source are the connection port itself; a port made by NtCreatePort has PortContext 0.
  {
    name:
      "A thread that registered a connection port sends its LPC_CLIENT_DIED to that connection port itself, with PortContext 0",
    sources: [
      "NtRegisterThreadTerminatePort.c",
      "PspExitThread.c",
      "AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c",
      "NtCreatePort.c",
    ],
    async run(k) {
      const server = k.self.main;
      await listen(k, server, "died-self", "conn");
      const t = await k.self.thread();
      const reg = await t.call("NtRegisterThreadTerminatePort", arg.h("conn"));
      await t.exit();
      const got = await collect(server, "conn", { ms: 1000 });
      return {
        expected: { register: st(0), died: [diedOf(t, 0n)] },
        observed: { register: st(reg), died: byTid(got, t) },
      };
    },
  },
  // E16. AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c: any other kind (a server communication port) ->
  // target is the connection's client port (`v4[2]`); AlpcpReceiveLegacyMessage.c lets a client port receive its own queue.
  {
    name:
      "A server thread that registered its server communication port sends its LPC_CLIENT_DIED to the client port, where the client receives it",
    sources: [
      "NtRegisterThreadTerminatePort.c",
      "PspExitThread.c",
      "AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c",
      "AlpcpReceiveLegacyMessage.c",
    ],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "died-server", "conn");
      const client = await k.spawn();
      await connected(k, { server, name, client: client.main, context: CTX });
      const s2 = await k.self.thread();
      const reg = await s2.call("NtRegisterThreadTerminatePort", arg.h("srv"));
      await s2.exit();
      const got = await collect(client.main, "cli", { ms: 1000 });
      const seen = byTid(got, s2).map(({ context: _, ...rest }) => rest);
      const { context: _, ...want } = diedOf(s2, 0n);
      return {
        expected: { register: st(0), atClient: [want] },
        observed: { register: st(reg), atClient: seen },
      };
    },
  },
  // E1. AlpcpDeletePort.c calls AlpcpSendCloseMessage.c for a legacy port when the client port object is deleted;
  // it zeroes the ClientId (`v4+248 = v4+256 = 0`), Type 5, 0x300008 lengths; AlpcpDispatchCloseMessage.c takes the
  // context from the server port. PspExitThread.c sends CLIENT_DIED only to registered ports and the exception port.
  {
    name:
      "When a client process that registered nothing dies, its connection port receives LPC_PORT_CLOSED with ClientId {0, 0} and the connection's PortContext, and no LPC_CLIENT_DIED",
    sources: [
      "AlpcpSendCloseMessage.c",
      "AlpcpDeletePort.c",
      "AlpcpClosePort.c",
      "AlpcpDispatchCloseMessage.c",
      "PspExitThread.c",
    ],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "closed-plain", "conn");
      const client = await k.spawn();
      await connected(k, { server, name, client: client.main, context: CTX });
      await client.kill(1);
      const got = await collect(server, "conn", {
        ms: 2000,
        until: (g) => g.some((m) => isType(m, T.LPC_PORT_CLOSED)),
      });
      const closed = got.filter((m) => isType(m, T.LPC_PORT_CLOSED)).map((m) => {
        const { createTime: _, type, ...rest } = summary(m);
        return { ...rest, type: (type as number) & 0xff };
      });
      return {
        expected: {
          portClosed: [{
            dataLength: KERNEL_MESSAGE_LENGTH.LPC_PORT_CLOSED - HEADER,
            totalLength: KERNEL_MESSAGE_LENGTH.LPC_PORT_CLOSED,
            pid: 0,
            tid: 0,
            context: hex(CTX),
            type: T.LPC_PORT_CLOSED,
          }],
          clientDied: 0,
        },
        observed: {
          portClosed: closed,
          clientDied: got.filter((m) => isType(m, T.LPC_CLIENT_DIED)).length,
        },
      };
    },
  },
  // E1. AlpcpDispatchNewMessage.c: each CLIENT_DIED references its sender port (`ObfReferenceObject(v1)`, `v2+24 = v1`)
  // until the message is freed after its receive; AlpcpDeletePort.c sends PORT_CLOSED only when the client port object
  // is deleted. So the registered thread's CLIENT_DIED is received first, then PORT_CLOSED (ClientId {0, 0}, the context).
  {
    name:
      "When a client process whose thread registered its client port is killed, the server receives that thread's LPC_CLIENT_DIED and then LPC_PORT_CLOSED (ClientId {0, 0}, same PortContext)",
    sources: [
      "PspExitThread.c",
      "AlpcpDispatchNewMessage.c",
      "AlpcpClearOwnerPortMessage.c",
      "AlpcpDeletePort.c",
      "AlpcpSendCloseMessage.c",
      "AlpcpDispatchCloseMessage.c",
    ],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "closed-after", "conn");
      const client = await k.spawn();
      const t = await client.thread();
      await connected(k, { server, name, client: t, context: CTX });
      const reg = await t.call("NtRegisterThreadTerminatePort", arg.h("cli"));
      await client.kill(1);
      const got = await collect(server, "conn", {
        ms: 2000,
        until: (g) => g.some((m) => isType(m, T.LPC_PORT_CLOSED)),
      });
      const died = got.findIndex((m) => m.header.tid === t.tid);
      const closed = got.findIndex((m) => isType(m, T.LPC_PORT_CLOSED));
      const pc = closed >= 0 ? got[closed] : null;
      return {
        expected: {
          register: st(0),
          died: [diedOf(t, CTX)],
          portClosed: { pid: 0, tid: 0, context: hex(CTX) },
          diedBeforeClosed: true,
        },
        observed: {
          register: st(reg),
          died: byTid(got, t),
          portClosed: pc
            ? { pid: pc.header.pid, tid: pc.header.tid, context: hex(pc.context) }
            : null,
          diedBeforeClosed: died >= 0 && closed > died,
        },
      };
    },
  },
  // E18. AlpcpReceiveSynchronousReply.c: the killed requester's aborted wait cancels its message (AlpcpCancelMessage.c
  // sets flag 0x80); AlpcpReceiveLegacyMessage.c skips messages with 0x80 and receives on, so the request never
  // reaches the server, which still gets PORT_CLOSED when the client port is deleted.
  {
    name:
      "A request whose client was killed before the server received it is never received (the server gets LPC_PORT_CLOSED, no LPC_REQUEST)",
    sources: [
      "AlpcpReceiveSynchronousReply.c",
      "AlpcpCancelMessage.c",
      "AlpcpReceiveLegacyMessage.c",
      "AlpcpReceiveMessagePort.c",
    ],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "dead-request", "conn");
      const client = await k.spawn();
      const link = await connected(k, { server, name, client: client.main, context: CTX });
      const rq = request(link, "never");
      const before = await rq.result(300);
      await client.kill(1);
      const after = await rq.result(3000);
      const got = await collect(server, "conn", {
        ms: 1500,
        until: (g) => g.some((m) => isType(m, T.LPC_PORT_CLOSED)),
      });
      return {
        expected: { before: "blocked", after: "killed", requestReceived: false, portClosed: true },
        observed: {
          before: st(before),
          after: st(after),
          requestReceived: got.some((m) => isType(m, T.LPC_REQUEST)),
          portClosed: got.some((m) => isType(m, T.LPC_PORT_CLOSED)),
        },
      };
    },
  },
  // E18/E8. AlpcpReceiveSynchronousReply.c cancels the dead requester's message, which stays in the connection port's
  // pending queue with flag 0x80; AlpcpReplyLegacySynchronousRequest.c finds it (AlpcpLookupMessage.c), sees 0x80 and
  // returns STATUS_PORT_DISCONNECTED after AlpcpCancelMessage.c(…, 0x10000) removed it from the pending queue; a second
  // reply then finds no message (AlpcpLookupMessage.c: sender and queue cleared, or freed) -> STATUS_INVALID_MESSAGE.
  {
    name:
      "A reply to a received request whose client was killed gets STATUS_PORT_DISCONNECTED, and a second reply to it STATUS_INVALID_MESSAGE",
    sources: [
      "AlpcpReceiveSynchronousReply.c",
      "AlpcpCancelMessage.c",
      "AlpcpReplyLegacySynchronousRequest.c",
      "AlpcpLookupMessage.c",
      "AlpcpRemoveMessageFromPendingQueue.c",
    ],
    needs: ["process"],
    async run(k) {
      const server = k.self.main;
      const name = await listen(k, server, "late-reply", "conn");
      const client = await k.spawn();
      const link = await connected(k, { server, name, client: client.main, context: CTX });
      const rq = request(link, "late");
      const got = await receive(server, "conn");
      if (got.status !== "STATUS_SUCCESS") throw new Error(`setup: no request: ${got.status}`);
      await client.kill(1);
      const killed = await rq.result(3000);
      const reply = replyTo(got.message, utf8("too late"));
      const first = await server.call("NtReplyPort", arg.h("srv"), arg.buf(fresh("reply"), reply));
      const second = await server.call("NtReplyPort", arg.h("srv"), arg.buf(fresh("reply"), reply));
      return {
        expected: {
          received: T.LPC_REQUEST,
          client: "killed",
          firstReply: st(NTSTATUS.STATUS_PORT_DISCONNECTED),
          secondReply: st(NTSTATUS.STATUS_INVALID_MESSAGE),
        },
        observed: {
          received: got.header.type & 0xff,
          client: st(killed),
          firstReply: st(first),
          secondReply: st(second),
        },
      };
    },
  },
  // AlpcpClosePort.c -> AlpcpDoPortCleanup.c -> AlpcpDisconnectPort.c (flag 0x20) and AlpcpFlushMessagesPort.c, which
  // for a server port flushes the connection port's queues of its client's messages (AlpcpFlushMessagesByRequestor.c ->
  // AlpcpCancelMessage.c wakes the waiter with no message) -> AlpcpReceiveSynchronousReply.c 0xC0000701 ->
  // NtRequestWaitReplyPort.c maps it to STATUS_LPC_REPLY_LOST; AlpcpSendLegacySynchronousRequest.c: server port gone or
  // flagged 0x20 -> STATUS_PORT_DISCONNECTED.
  closedWhileWaiting({
    name:
      "When the server closes its communication port while the client waits for a reply, the client gets STATUS_LPC_REPLY_LOST, and its next request STATUS_PORT_DISCONNECTED",
    sources: [
      "AlpcpClosePort.c",
      "AlpcpDoPortCleanup.c",
      "AlpcpDisconnectPort.c",
      "AlpcpFlushMessagesPort.c",
      "AlpcpFlushMessagesByRequestor.c",
      "AlpcpReceiveSynchronousReply.c",
      "NtRequestWaitReplyPort.c",
      "AlpcpSendLegacySynchronousRequest.c",
    ],
    label: "server-port-closed",
    close: "srv",
  }),
  // AlpcpDoPortCleanup.c on the connection port: AlpcpDisconnectPort.c flags it 0x20, AlpcpFlushMessagesPort.c ->
  // AlpcpFlushQueue.c cancels every queued and pending message (waiters woken without a reply: 0xC0000701 ->
  // NtRequestWaitReplyPort.c STATUS_LPC_REPLY_LOST); AlpcpSendLegacySynchronousRequest.c: connection port flagged 0x20
  // -> STATUS_PORT_DISCONNECTED.
  closedWhileWaiting({
    name:
      "When the server closes the connection port while the client waits for a reply, the client gets STATUS_LPC_REPLY_LOST, and its next request STATUS_PORT_DISCONNECTED",
    sources: [
      "AlpcpDoPortCleanup.c",
      "AlpcpDisconnectPort.c",
      "AlpcpFlushMessagesPort.c",
      "AlpcpFlushQueue.c",
      "AlpcpReceiveSynchronousReply.c",
      "NtRequestWaitReplyPort.c",
      "AlpcpSendLegacySynchronousRequest.c",
    ],
    label: "conn-port-closed",
    close: "conn",
  }),
  // The server's process dies: its handles close (AlpcpClosePort.c -> AlpcpDoPortCleanup.c for the connection and the
  // server port), which flushes the client's pending request (AlpcpFlushMessagesPort.c) -> STATUS_LPC_REPLY_LOST
  // (NtRequestWaitReplyPort.c); later requests find the ports disconnected (AlpcpSendLegacySynchronousRequest.c).
  {
    name:
      "When the server's process is killed while the client waits for a reply, the client gets STATUS_LPC_REPLY_LOST, and its next request STATUS_PORT_DISCONNECTED",
    sources: [
      "AlpcpClosePort.c",
      "AlpcpDoPortCleanup.c",
      "AlpcpFlushMessagesPort.c",
      "AlpcpReceiveSynchronousReply.c",
      "NtRequestWaitReplyPort.c",
      "AlpcpSendLegacySynchronousRequest.c",
    ],
    needs: ["process"],
    async run(k) {
      const serverProcess = await k.spawn();
      const server = serverProcess.main;
      const name = await listen(k, server, "server-died", "conn");
      const client = await k.self.thread();
      const link = await connected(k, { server, name, client, context: CTX });
      const rq = request(link, "waiting");
      const got = await receive(server, "conn");
      await serverProcess.kill(1);
      const lost = await rq.result(3000);
      const next = await request(link, "again").result(3000);
      return {
        expected: {
          received: T.LPC_REQUEST,
          waiting: st(NTSTATUS.STATUS_LPC_REPLY_LOST),
          next: st(NTSTATUS.STATUS_PORT_DISCONNECTED),
        },
        observed: {
          received: typeOrStatus(got),
          waiting: st(lost),
          next: st(next),
        },
      };
    },
  },
  // E15. AlpcpSendMessage.c: TotalLength above the sending port's MaxMessageLength (`v9+272`) -> 0xC000002F, and
  // AlpcpDispatchNewMessage.c: above the target's (`v8[34]`) -> 0xC0000023; PspExitThread.c retries only on 0xC0000017
  // and 0xC000009A, so the 0x30-byte message is dropped. AlpcpValidateAndSetPortAttributes.c keeps a connection port's
  // MaxMessageLength as given (no lower bound on the legacy path).
  {
    name:
      "LPC_CLIENT_DIED needs MaxMessageLength 0x30: a port created with 0x28 silently gets none, one created with 0x30 gets it",
    sources: [
      "AlpcpSendMessage.c",
      "AlpcpDispatchNewMessage.c",
      "PspExitThread.c",
      "AlpcpValidateAndSetPortAttributes.c",
    ],
    async run(k) {
      const server = k.self.main;
      await listen(k, server, "died-small", "small", 0x28);
      await listen(k, server, "died-fits", "fits", 0x30);
      const t = await k.self.thread();
      const rs = await t.call("NtRegisterThreadTerminatePort", arg.h("small"));
      const rf = await t.call("NtRegisterThreadTerminatePort", arg.h("fits"));
      await t.exit();
      const small = await collect(server, "small", { ms: 1000 });
      const fits = await collect(server, "fits", { ms: 1000 });
      return {
        expected: { register: [st(0), st(0)], at0x28: [], at0x30: [diedOf(t, 0n)] },
        observed: { register: [st(rs), st(rf)], at0x28: byTid(small, t), at0x30: byTid(fits, t) },
      };
    },
  },
  // NtRegisterThreadTerminatePort.c: ObReferenceObjectByHandle(handle, 1, LpcPortObjectType, …) -> a NULL handle is
  // STATUS_INVALID_HANDLE, a handle to another object type STATUS_OBJECT_TYPE_MISMATCH.
  {
    name:
      "NtRegisterThreadTerminatePort takes only a port handle: NULL gives STATUS_INVALID_HANDLE, a process handle STATUS_OBJECT_TYPE_MISMATCH",
    sources: ["NtRegisterThreadTerminatePort.c", "ObReferenceObjectByHandle.c"],
    async run(k) {
      const t = await k.self.thread();
      const opened = await t.openProcess(
        k.self,
        0x1000, /* PROCESS_QUERY_LIMITED_INFORMATION */
        "me",
      );
      const nul = await t.call("NtRegisterThreadTerminatePort", null);
      const proc = await t.call("NtRegisterThreadTerminatePort", arg.h("me"));
      return {
        expected: {
          open: st(0),
          nullHandle: st(NTSTATUS.STATUS_INVALID_HANDLE),
          processHandle: st(NTSTATUS.STATUS_OBJECT_TYPE_MISMATCH),
        },
        observed: { open: st(opened), nullHandle: st(nul), processHandle: st(proc) },
      };
    },
  },
];
