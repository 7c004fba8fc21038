/**
 * Conformance cases: requests, replies, datagrams, impersonation and closing. Each case cites the
 * Windows 11 kernel functions it is read from (`ntoskrnl/` of the decompiled pseudocode).
 *
 * Replies go through the server communication port unless the case says otherwise. A legacy
 * connection port carries the same legacy flag 0x2000 (`AlpcpCreateConnectionPort.c` sets 0x3000),
 * so `NtReplyPort.c` takes `AlpcpReplyLegacySynchronousRequest` through either handle.
 *
 * @module
 */

import { NTSTATUS } from "../../ffi/status.ts";
import { arg } from "./types.ts";
import type { Case, Json, Kernel, Pending, Thread } from "./types.ts";
import { HEADER, hex, message, pattern, rawHeader, replyTo, st, utf8 } from "./_util.ts";
import type { RawHeader } from "./_util.ts";
import {
  connect,
  type Connection,
  receive,
  RECEIVE_BUFFER,
  type Received,
  request,
  startConnect,
} from "./_scenario.ts";

const STATUS_INVALID_MESSAGE = NTSTATUS.STATUS_INVALID_MESSAGE;

/** A MessageId no message can have: beyond any allocated slot of the kernel's message table. */
const UNKNOWN_ID = 0x03fffffc;

/** Overwrites header fields of a message buffer (a copy). */
function patch(
  buf: Uint8Array,
  f: {
    totalLength?: number;
    type?: number;
    pid?: number;
    tid?: number;
    messageId?: number;
    callbackId?: number;
  },
): Uint8Array {
  const b = buf.slice();
  const dv = new DataView(b.buffer);
  if (f.totalLength !== undefined) dv.setUint16(2, f.totalLength, true);
  if (f.type !== undefined) dv.setUint16(4, f.type, true);
  if (f.pid !== undefined) dv.setBigUint64(8, BigInt(f.pid), true);
  if (f.tid !== undefined) dv.setBigUint64(16, BigInt(f.tid), true);
  if (f.messageId !== undefined) dv.setUint32(24, f.messageId, true);
  if (f.callbackId !== undefined) dv.setUint32(32, f.callbackId, true);
  return b;
}

/** A CallbackId that is non-zero and differs from `cb`. */
const otherCallback = (cb: number): number => (cb === 0xffffffff || cb === 0 ? 1 : cb + 1);

/**
 * The client sends "ping" (its reply into "c_rep") and the server receives it on the connection
 * port into "s_rx".
 */
async function pinged(
  k: Kernel,
  label: string,
  client?: Thread,
): Promise<{ link: Connection; pr: Pending; rq: Received }> {
  const link = await connect(k, client === undefined ? { label } : { label, client });
  const pr = request(link, "ping", "c_rep");
  const rq = await receive(link.server, "conn", { buffer: "s_rx" });
  return { link, pr, rq };
}

/** The reply the client got in "c_rep" ({@link pinged}): its header and its DataLength bytes. */
async function replyAtClient(link: Connection): Promise<{ header: RawHeader; data: number[] }> {
  const got = await link.client.read("c_rep");
  const header = rawHeader(got);
  return { header, data: [...got.subarray(HEADER, HEADER + header.dataLength)] };
}

/** Replies properly to `rq` through "srv" (so the client is released) and names what both got. */
async function release(
  link: Connection,
  rq: Received,
  pr: Pending,
): Promise<{ reply: string; client: string }> {
  const reply = st(
    await link.server.call(
      "NtReplyPort",
      arg.h("srv"),
      arg.buf("s_fin", replyTo(rq.bytes, utf8("pong"))),
    ),
  );
  return { reply, client: st(await pr.result(3000)) };
}

const RELEASED = { reply: "STATUS_SUCCESS", client: "STATUS_SUCCESS" };

/** What a case observes while a client waits for its reply. */
type Observed = { [key: string]: Json };

/**
 * The client sends "ping" and the server receives it ({@link pinged}); `step` runs while the client
 * waits; then the server's proper reply releases the client ({@link release}). Observes
 * `{ setup, ...what step observed, reply, client }`.
 */
async function whileWaiting(
  k: Kernel,
  label: string,
  step: (p: { link: Connection; pr: Pending; rq: Received }) => Promise<Observed>,
): Promise<Observed> {
  const p = await pinged(k, label);
  const seen = await step(p);
  return { setup: p.link.setup, ...seen, ...await release(p.link, p.rq, p.pr) };
}

/**
 * A {@link whileWaiting} step: the server impersonates the client through its handle `port`, then
 * reverts (`NtSetInformationThread(ThreadImpersonationToken, NULL)`).
 */
function impersonateAndRevert(port: "srv" | "conn") {
  return async ({ link }: { link: Connection }): Promise<Observed> => {
    const impersonate = st(
      await link.server.call("NtImpersonateClientOfPort", arg.h(port), arg.buf("s_rx")),
    );
    const revert = st(
      await link.server.call("NtSetInformationThread", arg.self(), 5, arg.buf("nulltok", 8), 8),
    );
    return { impersonate, revert };
  };
}

/**
 * A {@link whileWaiting} step: the server replies through `port` with the request's header but
 * MessageId `id`.
 */
async function replyWithId(
  { link, rq }: { link: Connection; rq: Received },
  port: "srv" | "conn",
  id: number,
): Promise<string> {
  const bytes = patch(replyTo(rq.bytes), { messageId: id });
  return st(await link.server.call("NtReplyPort", arg.h(port), arg.buf("s_rep", bytes)));
}

/**
 * A {@link whileWaiting} step: the server impersonates through "srv" with the request's header but
 * MessageId `id`.
 */
async function impersonateWithId(
  { link, rq }: { link: Connection; rq: Received },
  id: number,
): Promise<string> {
  const bytes = patch(rq.bytes, { messageId: id });
  return st(
    await link.server.call("NtImpersonateClientOfPort", arg.h("srv"), arg.buf("s_mid", bytes)),
  );
}

/** The cases of this group. */
export const cases: Case[] = [
  // AlpcpSendLegacySynchronousRequest.c: the fast path stamps Type 0x2001 whatever the sender wrote, the
  // sender's Cid, the server port's context, TotalLength = DataLength + 40 (AlpcpValidateMessage.c);
  // AlpcpAllocateMessage.c: a fresh non-zero CallbackId; AlpcpReceiveLegacyMessage.c: Type & 0xC00F on copy-out.
  {
    name:
      "a request arrives as Type 0x0001 exactly (sender wrote 0x4007), with the client's ClientId, the accept's context, a MessageId, a non-zero CallbackId and TotalLength reset",
    sources: [
      "AlpcpSendLegacySynchronousRequest.c",
      "AlpcpValidateMessage.c",
      "AlpcpAllocateMessage.c",
      "AlpcpReceiveLegacyMessage.c",
    ],
    needs: ["process"],
    async run(k) {
      const cp = await k.spawn();
      const link = await connect(k, { label: "req", client: cp.main });
      const data = utf8("request-data");
      const pr = request(
        link,
        message({ data, type: 0x4007, totalLength: HEADER + data.byteLength + 16 }),
      );
      const rq = await receive(link.server, "conn", { buffer: "s_rx" });
      const rel = await release(link, rq, pr);
      return {
        expected: {
          setup: "ok",
          status: "STATUS_SUCCESS",
          type: 0x0001,
          pid: cp.pid,
          tid: cp.main.tid,
          context: "0x5ec0de",
          messageIdNonZero: true,
          callbackIdNonZero: true,
          dataLength: data.byteLength,
          totalLength: HEADER + data.byteLength,
          data: [...data],
          ...RELEASED,
        },
        observed: {
          setup: link.setup,
          status: rq.status,
          type: rq.header.type,
          pid: rq.header.pid,
          tid: rq.header.tid,
          context: hex(rq.context),
          messageIdNonZero: rq.header.messageId !== 0,
          callbackIdNonZero: rq.header.callbackId !== 0,
          dataLength: rq.header.dataLength,
          totalLength: rq.header.totalLength,
          data: rq.data,
          ...rel,
        },
      };
    },
  },
  // AlpcpReplyLegacySynchronousRequest.c: the reply is written into the request's own message: Type 2, the
  // replying thread's Cid, DataLength/TotalLength from the validated header (TotalLength reset by
  // AlpcpValidateMessage.c); AlpcpProcessSynchronousRequest.c copies that header out, Type & 0xC00F.
  {
    name:
      "the client receives the reply as Type 0x0002 with the replying server thread's ClientId, the request's MessageId and CallbackId, and TotalLength reset",
    sources: [
      "AlpcpReplyLegacySynchronousRequest.c",
      "AlpcpProcessSynchronousRequest.c",
      "AlpcpValidateMessage.c",
    ],
    async run(k) {
      const { link, pr, rq } = await pinged(k, "reply");
      const replier = await k.self.thread();
      const data = utf8("pong!!");
      const rep = patch(replyTo(rq.bytes, data), {
        type: 0,
        totalLength: HEADER + data.byteLength + 24,
      });
      const reply = st(await replier.call("NtReplyPort", arg.h("srv"), arg.buf("s_rep", rep)));
      const client = st(await pr.result(3000));
      const { header: h, data: got } = await replyAtClient(link);
      return {
        expected: {
          setup: "ok",
          reply: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          type: 0x0002,
          pid: k.self.pid,
          tid: replier.tid,
          sameMessageId: true,
          sameCallbackId: true,
          dataLength: data.byteLength,
          totalLength: HEADER + data.byteLength,
          data: [...data],
        },
        observed: {
          setup: link.setup,
          reply,
          client,
          type: h.type,
          pid: h.pid,
          tid: h.tid,
          sameMessageId: h.messageId === rq.header.messageId,
          sameCallbackId: h.callbackId === rq.header.callbackId,
          dataLength: h.dataLength,
          totalLength: h.totalLength,
          data: got,
        },
      };
    },
  },
  // AlpcpReplyLegacySynchronousRequest.c + AlpcpLookupMessage.c: the reply is found by MessageId and CallbackId;
  // the ClientId the server wrote is never read (the kernel overwrites it with the replier's).
  {
    name:
      "a reply is matched by MessageId and CallbackId, not ClientId: a reply with a wrong ClientId is delivered",
    sources: ["AlpcpReplyLegacySynchronousRequest.c", "AlpcpLookupMessage.c"],
    async run(k) {
      const { link, pr, rq } = await pinged(k, "wrongcid");
      const data = utf8("still");
      const rep = patch(replyTo(rq.bytes, data), { pid: 0x1234, tid: 0x5678 });
      const reply = st(await link.server.call("NtReplyPort", arg.h("srv"), arg.buf("s_rep", rep)));
      const client = st(await pr.result(3000));
      const { header: h, data: got } = await replyAtClient(link);
      return {
        expected: {
          setup: "ok",
          reply: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          pid: k.self.pid,
          data: [...data],
        },
        observed: {
          setup: link.setup,
          reply,
          client,
          pid: h.pid,
          data: got,
        },
      };
    },
  },
  // AlpcpLookupMessage.c: a non-zero CallbackId that differs from the message's returns 0xC0000702; nothing is
  // consumed, so the right reply still goes through.
  {
    name:
      "a reply with the right MessageId but a wrong CallbackId fails with STATUS_INVALID_MESSAGE and the client keeps waiting",
    sources: ["AlpcpLookupMessage.c", "AlpcpReplyLegacySynchronousRequest.c"],
    async run(k) {
      const observed = await whileWaiting(k, "wrongcb", async ({ link, pr, rq }) => {
        const rep = patch(replyTo(rq.bytes), { callbackId: otherCallback(rq.header.callbackId) });
        const wrong = st(
          await link.server.call("NtReplyPort", arg.h("srv"), arg.buf("s_rep", rep)),
        );
        return { wrong, waiting: st(await pr.result(200)) };
      });
      return {
        expected: {
          setup: "ok",
          wrong: st(STATUS_INVALID_MESSAGE),
          waiting: "blocked",
          ...RELEASED,
        },
        observed,
      };
    },
  },
  // AlpcpLookupMessage.c: MessageId 0 has no table slot ((id & 0x3FC) == 0) → 0xC0000702; NtReplyPort.c takes
  // AlpcpReplyLegacySynchronousRequest.c on a server communication port (flag 0x2000).
  {
    name:
      "a reply with MessageId 0 on the server communication port fails with STATUS_INVALID_MESSAGE",
    sources: ["NtReplyPort.c", "AlpcpReplyLegacySynchronousRequest.c", "AlpcpLookupMessage.c"],
    async run(k) {
      const observed = await whileWaiting(k, "rep0", async (p) => ({
        zero: await replyWithId(p, "srv", 0),
      }));
      return {
        expected: { setup: "ok", zero: st(STATUS_INVALID_MESSAGE), ...RELEASED },
        observed,
      };
    },
  },
  // AlpcpCreateConnectionPort.c: a legacy connection port gets flags 0x3000, so NtReplyPort.c replies through
  // AlpcpReplyLegacySynchronousRequest.c there too, and AlpcpLookupMessage.c refuses MessageId 0 with 0xC0000702.
  {
    name:
      "a reply with MessageId 0 through the connection port also fails with STATUS_INVALID_MESSAGE",
    sources: [
      "AlpcpCreateConnectionPort.c",
      "NtReplyPort.c",
      "AlpcpReplyLegacySynchronousRequest.c",
      "AlpcpLookupMessage.c",
    ],
    async run(k) {
      const observed = await whileWaiting(k, "rep0conn", async (p) => ({
        zero: await replyWithId(p, "conn", 0),
      }));
      return {
        expected: { setup: "ok", zero: st(STATUS_INVALID_MESSAGE), ...RELEASED },
        observed,
      };
    },
  },
  // AlpcpReplyLegacySynchronousRequest.c: through the connection port (flag 0x2000, AlpcpCreateConnectionPort.c)
  // the message is found because it targets that port (+192, AlpcpLookupMessage.c) and was received there
  // (+16 == the port, state 3), and the waiting client is released.
  {
    name: "a reply sent through the connection port handle reaches the waiting client",
    sources: [
      "NtReplyPort.c",
      "AlpcpReplyLegacySynchronousRequest.c",
      "AlpcpLookupMessage.c",
      "AlpcpCreateConnectionPort.c",
    ],
    async run(k) {
      const { link, pr, rq } = await pinged(k, "repconn");
      const data = utf8("via-conn");
      const reply = st(
        await link.server.call(
          "NtReplyPort",
          arg.h("conn"),
          arg.buf("s_rep", replyTo(rq.bytes, data)),
        ),
      );
      const client = st(await pr.result(3000));
      const { header: h, data: got } = await replyAtClient(link);
      return {
        expected: {
          setup: "ok",
          reply: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          type: 0x0002,
          data: [...data],
        },
        observed: {
          setup: link.setup,
          reply,
          client,
          type: h.type,
          data: got,
        },
      };
    },
  },
  // AlpcpLookupMessage.c: an id past every allocated slot of the message table returns 0xC0000702.
  {
    name: "a reply with a MessageId no message has fails with STATUS_INVALID_MESSAGE",
    sources: ["AlpcpLookupMessage.c", "AlpcpReplyLegacySynchronousRequest.c"],
    async run(k) {
      const observed = await whileWaiting(k, "repunk", async (p) => ({
        unknown: await replyWithId(p, "srv", UNKNOWN_ID),
      }));
      return {
        expected: { setup: "ok", unknown: st(STATUS_INVALID_MESSAGE), ...RELEASED },
        observed,
      };
    },
  },
  // AlpcpProcessSynchronousRequest.c: once the client has its reply the message is cleaned up or freed
  // (AlpcMessageCleanupProcedure.c sets bit 31 of its MessageId), so AlpcpLookupMessage.c no longer matches it.
  {
    name: "replying again after the client has taken its reply fails with STATUS_INVALID_MESSAGE",
    sources: [
      "AlpcpProcessSynchronousRequest.c",
      "AlpcMessageCleanupProcedure.c",
      "AlpcpLookupMessage.c",
    ],
    async run(k) {
      const { link, pr, rq } = await pinged(k, "rep2");
      const rel = await release(link, rq, pr);
      const again = st(
        await link.server.call("NtReplyPort", arg.h("srv"), arg.buf("s_rep2", replyTo(rq.bytes))),
      );
      return {
        expected: { setup: "ok", ...RELEASED, again: st(STATUS_INVALID_MESSAGE) },
        observed: { setup: link.setup, ...rel, again },
      };
    },
  },
  // AlpcpLookupMessage.c: with a port given, the message must belong to that port's connection (+184) or target
  // it (+192), else 0xC0000022: another connection's server port cannot answer it.
  {
    name: "a reply through another connection's server port fails with STATUS_ACCESS_DENIED",
    sources: ["AlpcpLookupMessage.c", "AlpcpReplyLegacySynchronousRequest.c"],
    async run(k) {
      const first = await connect(k, { label: "other" });
      const second = await connect(k, {
        name: first.name,
        srv: "srv2",
        cli: "cli2",
        server: first.server,
      });
      const pr = request(first, "mine");
      const rq = await receive(first.server, "conn", { buffer: "s_rx" });
      const foreign = st(
        await first.server.call("NtReplyPort", arg.h("srv2"), arg.buf("s_rep", replyTo(rq.bytes))),
      );
      const rel = await release(first, rq, pr);
      return {
        expected: { setup: ["ok", "ok"], foreign: "STATUS_ACCESS_DENIED", ...RELEASED },
        observed: { setup: [first.setup, second.setup], foreign, ...rel },
      };
    },
  },
  // AlpcpSendMessage.c: a datagram (flag 0x10000) with Type & 0xFF == 0 becomes Type 3 with no MessageId
  // reuse; AlpcpDispatchNewMessage.c stamps the sender's Cid and the target's context; receive masks 0xC00F.
  {
    name:
      "a datagram (NtRequestPort) arrives as Type 0x0003 with the client's ClientId and the connection's context",
    sources: [
      "NtRequestPort.c",
      "AlpcpSendMessage.c",
      "AlpcpDispatchNewMessage.c",
      "AlpcpReceiveLegacyMessage.c",
    ],
    needs: ["process"],
    async run(k) {
      const cp = await k.spawn();
      const link = await connect(k, { label: "dgram", client: cp.main });
      const data = utf8("datagram");
      const sent = st(
        await link.client.call("NtRequestPort", arg.h("cli"), arg.buf("c_dg", message({ data }))),
      );
      const rq = await receive(link.server, "conn", { buffer: "s_rx" });
      return {
        expected: {
          setup: "ok",
          sent: "STATUS_SUCCESS",
          status: "STATUS_SUCCESS",
          type: 0x0003,
          pid: cp.pid,
          tid: cp.main.tid,
          context: "0x5ec0de",
          data: [...data],
        },
        observed: {
          setup: link.setup,
          sent,
          status: rq.status,
          type: rq.header.type,
          pid: rq.header.pid,
          tid: rq.header.tid,
          context: hex(rq.context),
          data: rq.data,
        },
      };
    },
  },
  // AlpcpSendMessage.c: for a datagram from user mode only Type & 0xFF == 0 is allowed; 1 returns 0xC000000D.
  {
    name: "a datagram whose Type & 0xFF is not 0 is refused with STATUS_INVALID_PARAMETER",
    sources: ["NtRequestPort.c", "AlpcpSendMessage.c"],
    async run(k) {
      const link = await connect(k, { label: "dgtype" });
      const sent = st(
        await link.client.call(
          "NtRequestPort",
          arg.h("cli"),
          arg.buf("c_dg", message({ data: utf8("x"), type: 1 })),
        ),
      );
      return {
        expected: { setup: "ok", sent: "STATUS_INVALID_PARAMETER" },
        observed: { setup: link.setup, sent },
      };
    },
  },
  // AlpcpReceiveLegacyMessage.c: a received datagram is unlocked and, with nobody waiting for it, freed;
  // AlpcpLookupMessage.c then finds no message with its id/CallbackId: 0xC0000702.
  {
    name: "replying to a received datagram fails with STATUS_INVALID_MESSAGE",
    sources: [
      "AlpcpReceiveLegacyMessage.c",
      "AlpcpLookupMessage.c",
      "AlpcpReplyLegacySynchronousRequest.c",
    ],
    async run(k) {
      const link = await connect(k, { label: "dgreply" });
      await link.client.call(
        "NtRequestPort",
        arg.h("cli"),
        arg.buf("c_dg", message({ data: utf8("dg") })),
      );
      const rq = await receive(link.server, "conn", { buffer: "s_rx" });
      const reply = st(
        await link.server.call("NtReplyPort", arg.h("srv"), arg.buf("s_rep", replyTo(rq.bytes))),
      );
      return {
        expected: { setup: "ok", type: 0x0003, reply: st(STATUS_INVALID_MESSAGE) },
        observed: { setup: link.setup, type: rq.header.type, reply },
      };
    },
  },
  // AlpcpValidateMessage.c: DataLength + 40 above TotalLength returns 0xC000000D (after the fast path of
  // AlpcpSendLegacySynchronousRequest.c has checked TotalLength against the port's maximum).
  {
    name:
      "a request whose DataLength + 40 exceeds its TotalLength is refused with STATUS_INVALID_PARAMETER",
    sources: ["AlpcpValidateMessage.c", "AlpcpSendLegacySynchronousRequest.c"],
    async run(k) {
      const link = await connect(k, { label: "dlong" });
      const pr = request(link, message({ data: pattern(8), totalLength: HEADER }));
      return {
        expected: { setup: "ok", client: "STATUS_INVALID_PARAMETER" },
        observed: { setup: link.setup, client: st(await pr.result(3000)) },
      };
    },
  },
  // AlpcpSendLegacySynchronousRequest.c: TotalLength as written is compared with the port's MaxMessageLength
  // first: above it → 0xC000002F, even when DataLength is small.
  {
    name:
      "a request whose TotalLength exceeds the port's MaxMessageLength is refused with STATUS_PORT_MESSAGE_TOO_LONG",
    sources: ["AlpcpSendLegacySynchronousRequest.c"],
    async run(k) {
      const link = await connect(k, { label: "tlong", max: 0x148 });
      const pr = request(link, message({ data: pattern(4), totalLength: 0x200 }));
      return {
        expected: { setup: "ok", client: "STATUS_PORT_MESSAGE_TOO_LONG" },
        observed: { setup: link.setup, client: st(await pr.result(3000)) },
      };
    },
  },
  // AlpcpSendMessage.c: for a datagram TotalLength is first reset to DataLength + 40 and only then compared with
  // the maximum; so an oversized TotalLength with a small DataLength is sent, and arrives reset.
  {
    name:
      "a datagram with TotalLength above MaxMessageLength but a small DataLength is sent and arrives with TotalLength = DataLength + 40",
    sources: ["AlpcpSendMessage.c", "NtRequestPort.c"],
    async run(k) {
      const link = await connect(k, { label: "dgtl", max: 0x148 });
      const data = pattern(4, 9);
      const sent = st(
        await link.client.call(
          "NtRequestPort",
          arg.h("cli"),
          arg.buf("c_dg", message({ data, totalLength: 0x200 })),
        ),
      );
      const rq = await receive(link.server, "conn", { buffer: "s_rx" });
      return {
        expected: {
          setup: "ok",
          sent: "STATUS_SUCCESS",
          status: "STATUS_SUCCESS",
          totalLength: HEADER + 4,
          data: [...data],
        },
        observed: {
          setup: link.setup,
          sent,
          status: rq.status,
          totalLength: rq.header.totalLength,
          data: rq.data,
        },
      };
    },
  },
  // AlpcpSendMessage.c: a datagram's DataLength + 40 above the port's MaxMessageLength returns 0xC000002F.
  {
    name:
      "a datagram whose DataLength + 40 exceeds MaxMessageLength is refused with STATUS_PORT_MESSAGE_TOO_LONG",
    sources: ["AlpcpSendMessage.c", "NtRequestPort.c"],
    async run(k) {
      const link = await connect(k, { label: "dglong", max: 0x100 });
      const data = pattern(0x100 - HEADER + 1);
      const sent = st(
        await link.client.call("NtRequestPort", arg.h("cli"), arg.buf("c_dg", message({ data }))),
      );
      return {
        expected: { setup: "ok", sent: "STATUS_PORT_MESSAGE_TOO_LONG" },
        observed: { setup: link.setup, sent },
      };
    },
  },
  // AlpcpReceiveLegacyMessage.c: copies the 40-byte header and AlpcpReadMessageData.c copies DataLength bytes;
  // the rest of the receive buffer is not written.
  {
    name:
      "receive writes only the header and DataLength bytes: the rest of the buffer keeps its old bytes",
    sources: ["AlpcpReceiveLegacyMessage.c", "AlpcpReadMessageData.c"],
    async run(k) {
      const link = await connect(k, { label: "e19" });
      const data = utf8("abcd");
      const pr = request(link, message({ data }));
      const rq = await receive(link.server, "conn", { buffer: "s_rx", fill: 0xcc });
      const rel = await release(link, rq, pr);
      return {
        expected: { setup: "ok", data: [...data], after: 0xcc, last: 0xcc, ...RELEASED },
        observed: {
          setup: link.setup,
          data: [...rq.bytes.subarray(HEADER, HEADER + 4)],
          after: rq.bytes[HEADER + 4],
          last: rq.bytes[RECEIVE_BUFFER - 1],
          ...rel,
        },
      };
    },
  },
  // NtAlpcImpersonateClientOfPort.c → AlpcpLookupMessage.c finds the received request through the server port,
  // AlpcpImpersonateMessage.c impersonates the client's captured context (AlpcpCreateClientPort.c, static QoS);
  // NtSetInformationThread.c: ThreadImpersonationToken with a NULL handle and length 8 reverts and returns 0.
  {
    name:
      "NtImpersonateClientOfPort on the server communication port succeeds, and NtSetInformationThread(ThreadImpersonationToken, NULL) reverts",
    sources: [
      "NtImpersonateClientOfPort.c",
      "NtAlpcImpersonateClientOfPort.c",
      "AlpcpImpersonateMessage.c",
      "NtSetInformationThread.c",
    ],
    async run(k) {
      const observed = await whileWaiting(k, "imp", impersonateAndRevert("srv"));
      return {
        expected: {
          setup: "ok",
          impersonate: "STATUS_SUCCESS",
          revert: "STATUS_SUCCESS",
          ...RELEASED,
        },
        observed,
      };
    },
  },
  // AlpcpImpersonateMessage.c: through the connection port, AlpcpReferenceConnectedPort.c returns the connection
  // port itself, which lacks the client-port attribute flag 0x10000 → 0xC0000022.
  {
    name: "NtImpersonateClientOfPort on the connection port fails with STATUS_ACCESS_DENIED",
    sources: [
      "AlpcpImpersonateMessage.c",
      "AlpcpReferenceConnectedPort.c",
      "NtAlpcImpersonateClientOfPort.c",
    ],
    async run(k) {
      const observed = await whileWaiting(k, "impconn", impersonateAndRevert("conn"));
      return {
        expected: {
          setup: "ok",
          impersonate: "STATUS_ACCESS_DENIED",
          revert: "STATUS_SUCCESS",
          ...RELEASED,
        },
        observed,
      };
    },
  },
  // NtAlpcImpersonateClientOfPort.c: a message whose MessageId (AlpcpCaptureIdMessage.c) is 0 returns 0xC000000D.
  {
    name: "NtImpersonateClientOfPort with MessageId 0 fails with STATUS_INVALID_PARAMETER",
    sources: ["NtAlpcImpersonateClientOfPort.c", "AlpcpCaptureIdMessage.c"],
    async run(k) {
      const observed = await whileWaiting(k, "imp0", async (p) => ({
        impersonate: await impersonateWithId(p, 0),
      }));
      return {
        expected: { setup: "ok", impersonate: "STATUS_INVALID_PARAMETER", ...RELEASED },
        observed,
      };
    },
  },
  // AlpcpLookupMessage.c: no message → 0xC0000702, which NtImpersonateClientOfPort.c turns into 0xC000021F.
  {
    name:
      "NtImpersonateClientOfPort with a MessageId no message has fails with STATUS_REPLY_MESSAGE_MISMATCH",
    sources: ["NtImpersonateClientOfPort.c", "AlpcpLookupMessage.c"],
    async run(k) {
      const observed = await whileWaiting(k, "impunk", async (p) => ({
        impersonate: await impersonateWithId(p, UNKNOWN_ID),
      }));
      return {
        expected: { setup: "ok", impersonate: "STATUS_REPLY_MESSAGE_MISMATCH", ...RELEASED },
        observed,
      };
    },
  },
  // NtSetInformationThread.c: ThreadImpersonationToken with a length other than 8 returns 0xC0000004.
  {
    name:
      "NtSetInformationThread(ThreadImpersonationToken) with a length other than 8 fails with STATUS_INFO_LENGTH_MISMATCH",
    sources: ["NtSetInformationThread.c"],
    async run(k) {
      const s = await k.self.main.call(
        "NtSetInformationThread",
        arg.self(),
        5,
        arg.buf("nulltok", 8),
        4,
      );
      return { expected: "STATUS_INFO_LENGTH_MISMATCH", observed: st(s) };
    },
  },
  // AlpcpSendCloseMessage.c: a legacy client port's deletion sends Type 5, DataLength 8 / TotalLength 0x30, with
  // ClientId zeroed; AlpcpDispatchCloseMessage.c gives it the server port's context and clears 0x2000.
  {
    name:
      "closing the client port sends LPC_PORT_CLOSED (Type 5, 8/0x30) to the connection port with ClientId {0, 0} and the connection's context",
    sources: [
      "AlpcpSendCloseMessage.c",
      "AlpcpDispatchCloseMessage.c",
      "AlpcpDeletePort.c",
      "AlpcpClosePort.c",
    ],
    needs: ["process"],
    async run(k) {
      const cp = await k.spawn();
      const link = await connect(k, { label: "closed", client: cp.main, context: 0xc105edn });
      const closed = st(await link.client.call("NtClose", arg.h("cli")));
      const rq = await receive(link.server, "conn", { buffer: "s_rx" });
      return {
        expected: {
          setup: "ok",
          closed: "STATUS_SUCCESS",
          status: "STATUS_SUCCESS",
          type: 0x0005,
          dataLength: 8,
          totalLength: 0x30,
          pid: 0,
          tid: 0,
          context: "0xc105ed",
        },
        observed: {
          setup: link.setup,
          closed,
          status: rq.status,
          type: rq.header.type,
          dataLength: rq.header.dataLength,
          totalLength: rq.header.totalLength,
          pid: rq.header.pid,
          tid: rq.header.tid,
          context: hex(rq.context),
        },
      };
    },
  },
  // AlpcpSendLegacySynchronousRequest.c: a server port marked closed (flag 0x20, set by AlpcpDoPortCleanup.c)
  // gives 0xC0000037 before anything is queued.
  {
    name:
      "a request after the server closed its communication port fails with STATUS_PORT_DISCONNECTED",
    sources: ["AlpcpSendLegacySynchronousRequest.c", "AlpcpDoPortCleanup.c", "AlpcpClosePort.c"],
    async run(k) {
      const link = await connect(k, { label: "disc" });
      const closed = st(await link.server.call("NtClose", arg.h("srv")));
      const pr = request(link, "anyone?");
      return {
        expected: { setup: "ok", closed: "STATUS_SUCCESS", client: "STATUS_PORT_DISCONNECTED" },
        observed: { setup: link.setup, closed, client: st(await pr.result(3000)) },
      };
    },
  },
  // AlpcpFlushMessagesPort.c: closing a server port flushes its client's messages from the connection port's
  // queues; the waiting client's 0xC0000701 becomes 0xC0000253 in NtRequestWaitReplyPort.c.
  {
    name:
      "the server closing its communication port while the client waits for a reply gives the client STATUS_LPC_REPLY_LOST",
    sources: ["AlpcpFlushMessagesPort.c", "AlpcpFlushQueue.c", "NtRequestWaitReplyPort.c"],
    async run(k) {
      const { link, pr, rq } = await pinged(k, "lost");
      const waiting = st(await pr.result(100));
      const closed = st(await link.server.call("NtClose", arg.h("srv")));
      return {
        expected: {
          setup: "ok",
          received: "STATUS_SUCCESS",
          waiting: "blocked",
          closed: "STATUS_SUCCESS",
          client: "STATUS_LPC_REPLY_LOST",
        },
        observed: {
          setup: link.setup,
          received: rq.status,
          waiting,
          closed,
          client: st(await pr.result(3000)),
        },
      };
    },
  },
  // AlpcpDoPortCleanup.c → AlpcpFlushMessagesPort.c flushes the connection port's main queue; the queued
  // connection request is cancelled and AlpcpReceiveLegacyConnectionReply.c turns 0xC0000701 into 0xC0000041.
  {
    name:
      "closing the connection port while a connect is pending gives the client STATUS_PORT_CONNECTION_REFUSED",
    sources: ["AlpcpDoPortCleanup.c", "AlpcpFlushQueue.c", "AlpcpReceiveLegacyConnectionReply.c"],
    async run(k) {
      const s = k.self.main;
      const c = await k.self.thread();
      const name = k.portName("pendconn");
      const created = st(await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0));
      const pc = startConnect(c, name);
      const waiting = st(await pc.result(300));
      const closed = st(await s.call("NtClose", arg.h("conn")));
      return {
        expected: {
          created: "STATUS_SUCCESS",
          waiting: "blocked",
          closed: "STATUS_SUCCESS",
          client: "STATUS_PORT_CONNECTION_REFUSED",
        },
        observed: { created, waiting, closed, client: st(await pc.result(3000)) },
      };
    },
  },
  // AlpcpDoPortCleanup.c → AlpcpFlushMessagesPort.c flushes the connection port's queues, so a request not yet
  // received is cancelled: NtRequestWaitReplyPort.c maps 0xC0000701 to 0xC0000253.
  {
    name:
      "closing the connection port while a request waits unreceived gives the client STATUS_LPC_REPLY_LOST",
    sources: ["AlpcpDoPortCleanup.c", "AlpcpFlushMessagesPort.c", "NtRequestWaitReplyPort.c"],
    async run(k) {
      const link = await connect(k, { label: "connlost" });
      const pr = request(link, "queued");
      const waiting = st(await pr.result(300));
      const closed = st(await link.server.call("NtClose", arg.h("conn")));
      return {
        expected: {
          setup: "ok",
          waiting: "blocked",
          closed: "STATUS_SUCCESS",
          client: "STATUS_LPC_REPLY_LOST",
        },
        observed: { setup: link.setup, waiting, closed, client: st(await pr.result(3000)) },
      };
    },
  },
  // ObpCloseHandle.c: a handle that is not in the table returns 0xC0000008 (NtClose.c).
  {
    name: "NtClose of a handle already closed fails with STATUS_INVALID_HANDLE",
    sources: ["NtClose.c", "ObpCloseHandle.c"],
    async run(k) {
      const t = k.self.main;
      await t.call("NtCreatePort", arg.out("p"), arg.oa(null), 0, 0x100, 0);
      const first = st(await t.call("NtClose", arg.h("p")));
      const second = st(await t.call("NtClose", arg.h("p")));
      return {
        expected: { first: "STATUS_SUCCESS", second: "STATUS_INVALID_HANDLE" },
        observed: { first, second },
      };
    },
  },
];
