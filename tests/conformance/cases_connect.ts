/**
 * Conformance cases: creating ports, connecting, accepting and refusing. Each case cites the
 * Windows 11 kernel functions it is read from (`ntoskrnl/` of the decompiled pseudocode).
 *
 * @module
 */

import { NTSTATUS } from "../../ffi/status.ts";
import { arg } from "./types.ts";
import type { Arg, Case, Json, Kernel, Thread } from "./types.ts";
import { hex, message, pattern, readUint, replyTo, st, u32, utf8 } from "./_util.ts";
import { connect, receive, type Received, request, startConnect } from "./_scenario.ts";

/** A SECURITY_QUALITY_OF_SERVICE as raw bytes (for values `arg.qos` cannot express). */
function rawQos(
  length: number,
  level: number,
  tracking: number,
  effectiveOnly: number,
): Uint8Array {
  const b = new Uint8Array(12);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, length, true);
  dv.setUint32(4, level, true);
  b[8] = tracking;
  b[9] = effectiveOnly;
  return b;
}

/**
 * A client connects with `qos`; the server looks for a connection request for `ms`. Returns the
 * client's status and what the server's receive came to.
 */
async function connectWithQos(k: Kernel, label: string, qos: Arg): Promise<Json> {
  const s = k.self.main;
  const c = await k.self.thread();
  const name = k.portName(label);
  const created = st(await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0));
  const pc = startConnect(c, name, { qos });
  const rq = await receive(s, "conn", { buffer: "s_rx", ms: 1000 });
  let client = st(await pc.result(rq.status === "STATUS_SUCCESS" ? 50 : 2000));
  if (rq.status === "STATUS_SUCCESS") {
    // Let the client go so nothing waits at disposal.
    await s.call("NtAcceptConnectPort", arg.out("srv"), null, arg.buf("s_rx"), 1, null, null);
    await s.call("NtCompleteConnectPort", arg.h("srv"));
    client = st(await pc.result(3000));
  }
  return {
    created,
    client,
    serverSaw: rq.status === "STATUS_SUCCESS" ? "CONNECTION_REQUEST" : rq.status,
  };
}

/**
 * The client connects with `sent` bytes of connection data in a buffer of 64 bytes and with
 * ConnectionInformationLength = `inLength`; the server accepts with `back` bytes. Returns what the
 * client's length and buffer say afterwards.
 */
async function connectionInfoRoundTrip(
  k: Kernel,
  label: string,
  inLength: number,
  back: Uint8Array,
): Promise<Json> {
  const s = k.self.main;
  const c = await k.self.thread();
  const name = k.portName(label);
  const created = st(await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0));
  const ci = new Uint8Array(64).fill(0xcc);
  ci.set(utf8("hello").subarray(0, Math.min(5, inLength)));
  const pc = startConnect(c, name, {
    info: arg.buf("c_ci", ci),
    infoLength: arg.buf("c_cil", u32(inLength)),
  });
  const rq = await receive(s, "conn", { buffer: "s_rx" });
  const accept = st(
    await s.call(
      "NtAcceptConnectPort",
      arg.out("srv"),
      null,
      arg.buf("s_acc", replyTo(rq.bytes, back)),
      1,
      null,
      null,
    ),
  );
  const client = st(await pc.result(3000));
  await s.call("NtCompleteConnectPort", arg.h("srv"));
  const length = readUint(await c.read("c_cil"), 0, 4) as number;
  const buf = await c.read("c_ci");
  return {
    created,
    requestDataLength: rq.header.dataLength,
    accept,
    client,
    length,
    // the first 16 bytes of the client's buffer (0xCC = never written)
    buffer: [...buf.subarray(0, 16)],
  };
}

/**
 * `client` connects with `data` as its connection information to a new port of MaxMessageLength
 * `max`; the server receives the connection request into "s_rx" and refuses it. Returns
 * NtCreatePort's status, the request, and what the client's NtConnectPort came to.
 */
async function refusedWithData(
  k: Kernel,
  client: Thread,
  label: string,
  max: number,
  data: Uint8Array,
): Promise<{ created: string; rq: Received; client: string }> {
  const s = k.self.main;
  const name = k.portName(label);
  const created = st(await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, max, 0));
  const pc = startConnect(client, name, {
    info: arg.buf("c_ci", data),
    infoLength: arg.buf("c_cil", u32(data.byteLength)),
  });
  const rq = await receive(s, "conn", { buffer: "s_rx" });
  await s.call("NtAcceptConnectPort", arg.out("srv"), null, arg.buf("s_rx"), 0, null, null);
  return { created, rq, client: st(await pc.result(3000)) };
}

const SERVER_DATA = pattern(8, 0xa0);

/** The cases of this group. */
export const cases: Case[] = [
  // NtCreatePort.c: passes only MaxMessageLength on (AlpcpCreateConnectionPort(a1, a2, 0, a4, 0, 1));
  // AlpcpValidateAndSetPortAttributes.c: a legacy connection port accepts a length <= LpcLegacyMaxMessageLength;
  // Phase1InitializationDiscard.c: LpcLegacyMaxMessageLength = 648.
  {
    name: "NtCreatePort accepts MaxMessageLength 648 (LpcLegacyMaxMessageLength on x64)",
    sources: [
      "NtCreatePort.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "Phase1InitializationDiscard.c",
    ],
    async run(k) {
      const s = await k.self.main.call(
        "NtCreatePort",
        arg.out("p"),
        arg.oa(k.portName("max648")),
        0,
        648,
        0,
      );
      return { expected: "STATUS_SUCCESS", observed: st(s) };
    },
  },
  // AlpcpValidateAndSetPortAttributes.c: a5 > LpcLegacyMaxMessageLength returns 0xC000000D.
  {
    name: "NtCreatePort refuses MaxMessageLength 649 with STATUS_INVALID_PARAMETER",
    sources: [
      "NtCreatePort.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "Phase1InitializationDiscard.c",
    ],
    async run(k) {
      const s = await k.self.main.call(
        "NtCreatePort",
        arg.out("p"),
        arg.oa(k.portName("max649")),
        0,
        649,
        0,
      );
      return { expected: "STATUS_INVALID_PARAMETER", observed: st(s) };
    },
  },
  // NtCreatePort.c: MaxConnectionInfoLength (a3) is never passed on; AlpcpFormatConnectionRequest.c: the
  // request carries the client's length, capped only by AlpcpValidateConnectionMessage.c (MaxMessageLength - 40).
  {
    name:
      "MaxConnectionInfoLength is ignored: a port created with 0 still receives 100 bytes of connection data",
    sources: [
      "NtCreatePort.c",
      "AlpcpFormatConnectionRequest.c",
      "AlpcpValidateConnectionMessage.c",
    ],
    async run(k) {
      const data = pattern(100, 7);
      const { created, rq, client } = await refusedWithData(
        k,
        await k.self.thread(),
        "mcil0",
        0x148,
        data,
      );
      return {
        expected: {
          created: "STATUS_SUCCESS",
          received: "STATUS_SUCCESS",
          dataLength: 100,
          data: [...data],
          client: "STATUS_PORT_CONNECTION_REFUSED",
        },
        observed: {
          created,
          received: rq.status,
          dataLength: rq.header.dataLength,
          data: rq.data,
          client,
        },
      };
    },
  },
  // AlpcpValidateConnectionMessage.c: legacy connection data longer than MaxMessageLength - 40 is cut to it
  // (the length is rewritten, no error); NtSecureConnectPort.c hands the client's length to AlpcpFormatConnectionRequest.c.
  {
    name:
      "connection data longer than MaxMessageLength - 40 is truncated to MaxMessageLength - 40, not refused",
    sources: [
      "AlpcpValidateConnectionMessage.c",
      "AlpcpFormatConnectionRequest.c",
      "NtSecureConnectPort.c",
    ],
    async run(k) {
      const data = pattern(300, 3);
      const { created, rq, client } = await refusedWithData(
        k,
        await k.self.thread(),
        "citrunc",
        0x100,
        data,
      );
      return {
        expected: {
          created: "STATUS_SUCCESS",
          received: "STATUS_SUCCESS",
          dataLength: 0x100 - 40,
          totalLength: 0x100,
          data: [...data.subarray(0, 0x100 - 40)],
          client: "STATUS_PORT_CONNECTION_REFUSED",
        },
        observed: {
          created,
          received: rq.status,
          dataLength: rq.header.dataLength,
          totalLength: rq.header.totalLength,
          data: rq.data,
          client,
        },
      };
    },
  },
  // ObpCaptureObjectCreateInformation.c: OBJECT_ATTRIBUTES.Length != 48 returns 0xC000000D (called from ObCreateObjectEx.c).
  {
    name:
      "NtCreatePort refuses OBJECT_ATTRIBUTES.Length other than 48 with STATUS_INVALID_PARAMETER",
    sources: ["ObpCaptureObjectCreateInformation.c", "ObCreateObjectEx.c", "AlpcpCreatePort.c"],
    async run(k) {
      const oa = new Uint8Array(48);
      new DataView(oa.buffer).setUint32(0, 40, true); // Length 40, ObjectName NULL
      const s = await k.self.main.call(
        "NtCreatePort",
        arg.out("p"),
        arg.buf("oa40", oa),
        0,
        0x100,
        0,
      );
      return { expected: "STATUS_INVALID_PARAMETER", observed: st(s) };
    },
  },
  // ObpCaptureObjectCreateInformation.c: a NULL ObjectName is not an error (an unnamed object), and a NULL
  // OBJECT_ATTRIBUTES pointer returns success at once.
  {
    name:
      "NtCreatePort creates an unnamed port from a NULL ObjectName and from NULL ObjectAttributes",
    sources: ["ObpCaptureObjectCreateInformation.c", "AlpcpCreateConnectionPort.c"],
    async run(k) {
      const t = k.self.main;
      const noName = st(await t.call("NtCreatePort", arg.out("p1"), arg.oa(null), 0, 0x100, 0));
      const noOa = st(await t.call("NtCreatePort", arg.out("p2"), null, 0, 0x100, 0));
      return {
        expected: { noName: "STATUS_SUCCESS", noObjectAttributes: "STATUS_SUCCESS" },
        observed: { noName, noObjectAttributes: noOa },
      };
    },
  },
  // ObpInsertOrLocateNamedObject.c: an existing name without OBJ_OPENIF returns 0xC0000035.
  {
    name: "NtCreatePort on a name that exists fails with STATUS_OBJECT_NAME_COLLISION",
    sources: ["ObpInsertOrLocateNamedObject.c", "ObInsertObjectEx.c"],
    async run(k) {
      const t = k.self.main;
      const name = k.portName("collide");
      const first = st(await t.call("NtCreatePort", arg.out("p1"), arg.oa(name), 0, 0x100, 0));
      const second = st(await t.call("NtCreatePort", arg.out("p2"), arg.oa(name), 0, 0x100, 0));
      return {
        expected: { first: "STATUS_SUCCESS", second: "STATUS_OBJECT_NAME_COLLISION" },
        observed: { first, second },
      };
    },
  },
  // AlpcpCreateClientPort.c: the name is looked up with ObReferenceObjectByName; its failure is returned as is.
  {
    name: "NtConnectPort to a name that does not exist fails with STATUS_OBJECT_NAME_NOT_FOUND",
    sources: ["AlpcpCreateClientPort.c", "NtSecureConnectPort.c"],
    async run(k) {
      const p = startConnect(k.self.main, k.portName("nobody"));
      return { expected: "STATUS_OBJECT_NAME_NOT_FOUND", observed: st(await p.result(3000)) };
    },
  },
  // AlpcpFormatConnectionRequest.c: Type 10, the caller's Cid, DataLength = the capped length, no client view
  // (ClientViewSize 0); AlpcpDispatchConnectionRequest.c: context 0, Type |= 0x2000; AlpcpReceiveLegacyMessage.c:
  // Type & 0xC00F on copy-out; AlpcpAllocateMessage.c: a MessageId slot.
  {
    name:
      "the CONNECTION_REQUEST arrives as Type 10 exactly, with the client's ClientId, a MessageId, the connection data and context 0",
    sources: [
      "AlpcpFormatConnectionRequest.c",
      "AlpcpDispatchConnectionRequest.c",
      "AlpcpReceiveLegacyMessage.c",
      "AlpcpAllocateMessage.c",
    ],
    needs: ["process"],
    async run(k) {
      const cp = await k.spawn();
      const c = cp.main;
      const data = utf8("conformance!");
      const { rq } = await refusedWithData(k, c, "crq", 0x148, data);
      return {
        expected: {
          status: "STATUS_SUCCESS",
          type: 10,
          pid: cp.pid,
          tid: c.tid,
          messageIdNonZero: true,
          dataLength: data.byteLength,
          totalLength: data.byteLength + 40,
          data: [...data],
          context: "0x0",
        },
        observed: {
          status: rq.status,
          type: rq.header.type,
          pid: rq.header.pid,
          tid: rq.header.tid,
          messageIdNonZero: rq.header.messageId !== 0,
          dataLength: rq.header.dataLength,
          totalLength: rq.header.totalLength,
          data: rq.data,
          context: hex(rq.context),
        },
      };
    },
  },
  // AlpcpAcceptConnectPort.c: accept dispatches the type-11 reply (AlpcpDispatchMessage) to the waiting
  // client; AlpcpDispatchReplyToWaitingThread.c releases it. NtCompleteConnectPort's body is not in the
  // snapshot (ZwCompleteConnectPort.c is only the stub); Wine's port.c expects success after the accept.
  {
    name:
      "NtAcceptConnectPort releases the client (its NtConnectPort returns before NtCompleteConnectPort), and NtCompleteConnectPort then succeeds",
    sources: [
      "AlpcpAcceptConnectPort.c",
      "AlpcpDispatchReplyToWaitingThread.c",
      "ZwCompleteConnectPort.c",
    ],
    needs: ["process"],
    async run(k) {
      const s = k.self.main;
      const cp = await k.spawn();
      const name = k.portName("release");
      const created = st(await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0));
      const pc = startConnect(cp.main, name);
      const rq = await receive(s, "conn", { buffer: "s_rx" });
      const beforeAccept = st(await pc.result(200));
      const accept = st(
        await s.call(
          "NtAcceptConnectPort",
          arg.out("srv"),
          arg.ptr(0x77n),
          arg.buf("s_rx"),
          1,
          null,
          null,
        ),
      );
      const clientBeforeComplete = st(await pc.result(3000));
      const complete = st(await s.call("NtCompleteConnectPort", arg.h("srv")));
      return {
        expected: {
          created: "STATUS_SUCCESS",
          received: "STATUS_SUCCESS",
          beforeAccept: "blocked",
          accept: "STATUS_SUCCESS",
          clientBeforeComplete: "STATUS_SUCCESS",
          complete: "STATUS_SUCCESS",
        },
        observed: {
          created,
          received: rq.status,
          beforeAccept,
          accept,
          clientBeforeComplete,
          complete,
        },
      };
    },
  },
  // AlpcpAcceptConnectPort.c: AcceptConnection FALSE sets the client port's refused flag (0x10), cancels the
  // message and returns 0; AlpcpReceiveLegacyConnectionReply.c: the refused flag gives 0xC0000041.
  {
    name:
      "a refused connection: NtAcceptConnectPort(FALSE) succeeds and the client gets STATUS_PORT_CONNECTION_REFUSED",
    sources: ["AlpcpAcceptConnectPort.c", "AlpcpReceiveLegacyConnectionReply.c"],
    needs: ["process"],
    async run(k) {
      const s = k.self.main;
      const cp = await k.spawn();
      const name = k.portName("refuse");
      await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0);
      const pc = startConnect(cp.main, name);
      const rq = await receive(s, "conn", { buffer: "s_rx" });
      const refuse = st(
        await s.call("NtAcceptConnectPort", arg.out("srv"), null, arg.buf("s_rx"), 0, null, null),
      );
      const client = st(await pc.result(3000));
      return {
        expected: {
          received: "STATUS_SUCCESS",
          refuse: "STATUS_SUCCESS",
          client: "STATUS_PORT_CONNECTION_REFUSED",
        },
        observed: { received: rq.status, refuse, client },
      };
    },
  },
  // AlpcpReceiveLegacyConnectionReply.c: when the client's length is above the reply's DataLength the length
  // becomes the reply's; NtSecureConnectPort.c writes it back.
  {
    name:
      "the client gets back the server's connection data when its own length is larger (length = server's)",
    sources: [
      "AlpcpReceiveLegacyConnectionReply.c",
      "NtSecureConnectPort.c",
      "AlpcpAcceptConnectPort.c",
    ],
    async run(k) {
      const observed = await connectionInfoRoundTrip(k, "cimin1", 16, SERVER_DATA);
      const buffer = [...SERVER_DATA, ...new Uint8Array(8).fill(0xcc)];
      return {
        expected: {
          created: "STATUS_SUCCESS",
          requestDataLength: 16,
          accept: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          length: 8,
          buffer,
        },
        observed,
      };
    },
  },
  // AlpcpReceiveLegacyConnectionReply.c: when the client's length is below the reply's DataLength only the
  // client's length is copied (the DataLength is lowered for the copy and restored), the length stays.
  {
    name:
      "the client gets back only its own input length of the server's connection data when that is smaller",
    sources: ["AlpcpReceiveLegacyConnectionReply.c", "NtSecureConnectPort.c"],
    async run(k) {
      const observed = await connectionInfoRoundTrip(k, "cimin2", 4, SERVER_DATA);
      const buffer = [...SERVER_DATA.subarray(0, 4), ...new Uint8Array(12).fill(0xcc)];
      // the 4 bytes the client sent ("hell") are overwritten by the server's first 4 bytes
      return {
        expected: {
          created: "STATUS_SUCCESS",
          requestDataLength: 4,
          accept: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          length: 4,
          buffer,
        },
        observed,
      };
    },
  },
  // AlpcpReceiveLegacyConnectionReply.c: min(0, server's) = 0 bytes are copied and the length stays 0.
  {
    name:
      "a client that passes ConnectionInformationLength 0 gets no connection data back (length stays 0)",
    sources: ["AlpcpReceiveLegacyConnectionReply.c", "NtSecureConnectPort.c"],
    async run(k) {
      const observed = await connectionInfoRoundTrip(k, "cimin0", 0, SERVER_DATA);
      return {
        expected: {
          created: "STATUS_SUCCESS",
          requestDataLength: 0,
          accept: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          length: 0,
          buffer: [...new Uint8Array(16).fill(0xcc)],
        },
        observed,
      };
    },
  },
  // AlpcpValidateAndSetPortAttributes.c: a client port takes the connection port's MaxMessageLength (a3 + 272);
  // NtSecureConnectPort.c: *MaxMessageLength = the client port's (v25[68]).
  {
    name: "NtConnectPort returns the connection port's MaxMessageLength to the client",
    sources: ["NtSecureConnectPort.c", "AlpcpValidateAndSetPortAttributes.c"],
    async run(k) {
      const s = k.self.main;
      const c = await k.self.thread();
      const name = k.portName("maxout");
      await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 400, 0);
      const pc = startConnect(c, name, { max: arg.buf("c_max", u32(0)) });
      await receive(s, "conn", { buffer: "s_rx" });
      await s.call("NtAcceptConnectPort", arg.out("srv"), null, arg.buf("s_rx"), 1, null, null);
      await s.call("NtCompleteConnectPort", arg.h("srv"));
      const client = st(await pc.result(3000));
      const max = readUint(await c.read("c_max"), 0, 4) as number;
      return { expected: { client: "STATUS_SUCCESS", max: 400 }, observed: { client, max } };
    },
  },
  // AlpcpAcceptConnectPort.c: a MessageId of 0 in the ConnectionRequest returns 0xC000021F before anything
  // else, so the client keeps waiting and a later proper accept still works.
  {
    name:
      "NtAcceptConnectPort with MessageId 0 fails with STATUS_REPLY_MESSAGE_MISMATCH and leaves the client waiting",
    sources: ["AlpcpAcceptConnectPort.c"],
    async run(k) {
      const s = k.self.main;
      const c = await k.self.thread();
      const name = k.portName("acc0");
      await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0);
      const pc = startConnect(c, name);
      const rq = await receive(s, "conn", { buffer: "s_rx" });
      const bad = message({ pid: rq.header.pid, tid: rq.header.tid, messageId: 0 });
      const zero = st(
        await s.call(
          "NtAcceptConnectPort",
          arg.out("srv"),
          null,
          arg.buf("s_bad", bad),
          1,
          null,
          null,
        ),
      );
      const clientAfter = st(await pc.result(200));
      const good = st(
        await s.call("NtAcceptConnectPort", arg.out("srv"), null, arg.buf("s_rx"), 1, null, null),
      );
      const client = st(await pc.result(3000));
      return {
        expected: {
          zero: "STATUS_REPLY_MESSAGE_MISMATCH",
          clientAfter: "blocked",
          good: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
        },
        observed: { zero, clientAfter, good, client },
      };
    },
  },
  // AlpcpAcceptConnectPort.c: the message found by MessageId must have Type & 0xFF == 10, else 0xC000021F
  // (AlpcpLookupMessage.c finds it: it is on a port of the caller's process).
  {
    name:
      "NtAcceptConnectPort on a request (not a connection request) fails with STATUS_REPLY_MESSAGE_MISMATCH",
    sources: ["AlpcpAcceptConnectPort.c", "AlpcpLookupMessage.c"],
    async run(k) {
      const link = await connect(k, { label: "accreq" });
      const pr = request(link, "ping");
      const rq = await receive(link.server, "conn", { buffer: "s_rx" });
      const accept = st(
        await link.server.call(
          "NtAcceptConnectPort",
          arg.out("srv2"),
          null,
          arg.buf("s_rx"),
          1,
          null,
          null,
        ),
      );
      const reply = st(
        await link.server.call("NtReplyPort", arg.h("srv"), arg.buf("s_rep", replyTo(rq.bytes))),
      );
      const client = st(await pr.result(3000));
      return {
        expected: {
          setup: "ok",
          request: 1,
          accept: "STATUS_REPLY_MESSAGE_MISMATCH",
          reply: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
        },
        observed: { setup: link.setup, request: rq.header.type & 0xff, accept, reply, client },
      };
    },
  },
  // AlpcpAcceptConnectPort.c + AlpcpLookupMessage.c: once the client has taken the connection reply the
  // message is freed (AlpcMessageCleanupProcedure.c marks its id), so a second accept of it finds nothing: 0xC0000702.
  {
    name:
      "accepting a connection request a second time, after the client has connected, fails with STATUS_INVALID_MESSAGE",
    sources: ["AlpcpAcceptConnectPort.c", "AlpcpLookupMessage.c", "AlpcMessageCleanupProcedure.c"],
    async run(k) {
      const link = await connect(k, { label: "acc2" });
      const again = st(
        await link.server.call(
          "NtAcceptConnectPort",
          arg.out("srv2"),
          null,
          arg.buf("srv_crq"),
          1,
          null,
          null,
        ),
      );
      return {
        expected: { setup: "ok", again: st(NTSTATUS.STATUS_INVALID_MESSAGE) },
        observed: { setup: link.setup, again },
      };
    },
  },
  // AlpcpAcceptConnectPort.c: the server port's context is PortContext, or the new handle when PortContext
  // is NULL; AlpcpSendLegacySynchronousRequest.c: a request carries the server port's context.
  {
    name:
      "a NULL PortContext at accept becomes the server communication port's handle value (the context requests carry)",
    sources: ["AlpcpAcceptConnectPort.c", "AlpcpSendLegacySynchronousRequest.c"],
    async run(k) {
      const link = await connect(k, { label: "nullctx", context: null });
      const pr = request(link, "ctx?");
      const rq = await receive(link.server, "conn", { buffer: "s_rx" });
      await link.server.call("NtReplyPort", arg.h("srv"), arg.buf("s_rep", replyTo(rq.bytes)));
      await pr.result(3000);
      const handle = link.setup === "ok" ? hex(link.server.handleValue("srv")) : null;
      return {
        expected: { setup: "ok", received: "STATUS_SUCCESS", context: handle },
        observed: { setup: link.setup, received: rq.status, context: hex(rq.context) },
      };
    },
  },
  // AlpcpLookupMessage.c: without a port (accept passes none) the message must sit on a port owned by the
  // calling process, else 0xC0000022; so a second process cannot accept a request it copied.
  {
    name:
      "only the process that received a connection request can accept it: another process gets STATUS_ACCESS_DENIED",
    sources: ["AlpcpLookupMessage.c", "AlpcpAcceptConnectPort.c", "NtAcceptConnectPort.c"],
    needs: ["process"],
    async run(k) {
      const s = k.self.main;
      const other = await k.spawn();
      const c = await k.self.thread();
      const name = k.portName("foreign");
      await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0);
      const pc = startConnect(c, name);
      const rq = await receive(s, "conn", { buffer: "s_rx" });
      const foreign = st(
        await other.main.call(
          "NtAcceptConnectPort",
          arg.out("o_srv"),
          null,
          arg.buf("o_rx", rq.bytes),
          1,
          null,
          null,
        ),
      );
      const owner = st(
        await s.call("NtAcceptConnectPort", arg.out("srv"), null, arg.buf("s_rx"), 1, null, null),
      );
      const client = st(await pc.result(3000));
      return {
        expected: {
          foreign: "STATUS_ACCESS_DENIED",
          owner: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
        },
        observed: { foreign, owner, client },
      };
    },
  },
  // NtSecureConnectPort.c: the 12 QoS bytes are copied without looking at Length; SeValidateSecurityQos.c checks
  // only the tracking mode and the level.
  {
    name: "NtConnectPort does not check SECURITY_QUALITY_OF_SERVICE.Length (Length 0 connects)",
    sources: [
      "NtSecureConnectPort.c",
      "SeValidateSecurityQos.c",
      "AlpcpValidateAndSetPortAttributes.c",
    ],
    async run(k) {
      const observed = await connectWithQos(k, "qoslen0", arg.qos(2, false, 0));
      return {
        expected: {
          created: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          serverSaw: "CONNECTION_REQUEST",
        },
        observed,
      };
    },
  },
  // NtSecureConnectPort.c: a NULL SecurityQos passes no QoS; AlpcpValidateAndSetPortAttributes.c uses its
  // default (Length 12, dynamic tracking) and SeValidateSecurityQos.c accepts it.
  {
    name: "NtConnectPort with a NULL SecurityQos connects",
    sources: [
      "NtSecureConnectPort.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "SeValidateSecurityQos.c",
    ],
    async run(k) {
      const observed = await connectWithQos(k, "qosnull", null);
      return {
        expected: {
          created: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          serverSaw: "CONNECTION_REQUEST",
        },
        observed,
      };
    },
  },
  // SeValidateSecurityQos.c: ImpersonationLevel > 3 returns 0xC00000A5; AlpcpCreateClientPort.c fails before
  // any connection request is sent (the server sees nothing).
  {
    name:
      "NtConnectPort with ImpersonationLevel 4 fails with STATUS_BAD_IMPERSONATION_LEVEL before the server sees a request",
    sources: [
      "SeValidateSecurityQos.c",
      "AlpcpCreateClientPort.c",
      "AlpcpValidateAndSetPortAttributes.c",
    ],
    async run(k) {
      const observed = await connectWithQos(k, "qoslvl4", arg.qos(4));
      return {
        expected: {
          created: "STATUS_SUCCESS",
          client: "STATUS_BAD_IMPERSONATION_LEVEL",
          serverSaw: "STATUS_TIMEOUT",
        },
        observed,
      };
    },
  },
  // SeValidateSecurityQos.c: ContextTrackingMode >= 2 returns 0xC000000D.
  {
    name:
      "NtConnectPort with ContextTrackingMode 2 fails with STATUS_INVALID_PARAMETER before the server sees a request",
    sources: ["SeValidateSecurityQos.c", "AlpcpCreateClientPort.c"],
    async run(k) {
      const observed = await connectWithQos(k, "qostrk2", arg.buf("c_qos", rawQos(12, 2, 2, 0)));
      return {
        expected: {
          created: "STATUS_SUCCESS",
          client: "STATUS_INVALID_PARAMETER",
          serverSaw: "STATUS_TIMEOUT",
        },
        observed,
      };
    },
  },
];
