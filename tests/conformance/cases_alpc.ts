/**
 * Conformance cases: ALPC (`NtAlpc*`). Each case cites the Windows 11 kernel functions it is read
 * from (`ntoskrnl/` of the decompiled pseudocode) and needs "alpc": a Windows run skips it where
 * ntdll has no `NtAlpcCreatePort` (Wine 8.0).
 *
 * Statuses ffi/status.ts does not name yet are written as `st(value)`, so a case reads the same
 * once they are named.
 *
 * @module
 */

import {
  AlpcAttributeFlags as A,
  AlpcMessageFlags as F,
  AlpcPortFlags as P,
} from "../../ffi/alpc/constants.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { LpcMessageType as T } from "../../ffi/port_message.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { sidFromString } from "../../ffi/nt/tokens.ts";
import { arg } from "./types.ts";
import type { Case, Json } from "./types.ts";
import { HEADER, hex, rawHeader, readUint, st, u64, utf8 } from "./_util.ts";
import {
  attributeField,
  messageAttributes,
  securityAttr,
  validAttributes,
  viewAttr,
} from "./_alpc.ts";
import { portAttributes } from "./_alpc.ts";
import {
  ALPC_BUFFER,
  ALPC_CTX,
  alpcConnect,
  alpcConnected,
  alpcListen,
  alpcMessage,
  alpcReceive,
  type AlpcReceived,
  alpcReply,
  alpcRequest,
  alpcSend,
  basicInfo,
  contextOf,
} from "./_alpc_scenario.ts";
import { connected, fresh } from "./_scenario.ts";

const SEC = LAYOUTS.ALPC_SECURITY_ATTR;
const PM = LAYOUTS.PORT_MESSAGE;
const DBGKM = LAYOUTS.DBGKM_APIMSG.offsets;
const ER = LAYOUTS.EXCEPTION_RECORD.offsets;
/** The exception code these cases raise. */
const CODE = 0xE0A1C0DE;
const ALPC: Case["needs"] = ["alpc"];

/** The header fields of a received ALPC message a case reports. */
function headerOf(r: AlpcReceived): { [key: string]: Json } {
  return {
    status: r.status,
    type: hex(r.header.type),
    dataLength: r.header.dataLength,
    totalLength: r.header.totalLength,
  };
}

const text = (bytes: number[]): string => new TextDecoder().decode(Uint8Array.from(bytes));

/** The cases of this group. */
export const cases: Case[] = [
  // AlpcpValidateAndSetPortAttributes.c: `if (MaxMessageLength < 0x28 || MaxMessageLength > 0xFFFF
  // || (Flags & 0x100000) && PreviousMode) return 0xC000000D`.
  {
    name:
      "NtAlpcCreatePort refuses a MaxMessageLength below 0x28 or above 0xFFFF, and the SYSTEM_PROCESS flag from user mode",
    sources: [
      "NtAlpcCreatePort.c",
      "AlpcpCreateConnectionPort.c",
      "AlpcpValidateAndSetPortAttributes.c",
    ],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      const { portAttributes } = await import("./_alpc.ts");
      const create = async (init: Parameters<typeof portAttributes>[0]) =>
        st(
          await t.call(
            "NtAlpcCreatePort",
            arg.out(fresh("p")),
            null,
            arg.buf(fresh("pa"), portAttributes(init)),
          ),
        );
      return {
        expected: {
          below: "STATUS_INVALID_PARAMETER",
          smallest: "STATUS_SUCCESS",
          largest: "STATUS_SUCCESS",
          above: "STATUS_INVALID_PARAMETER",
          systemProcess: "STATUS_INVALID_PARAMETER",
        },
        observed: {
          below: await create({ maxMessageLength: 0x27 }),
          smallest: await create({ maxMessageLength: 0x28 }),
          largest: await create({ maxMessageLength: 0xffff }),
          above: await create({ maxMessageLength: 0x10000 }),
          systemProcess: await create({ flags: P.SYSTEM_PROCESS }),
        },
      };
    },
  },

  // AlpcpPortQueryBasicInfo.c: `Flags = port->PortAttributes.Flags & 0x3FF0000`.
  // AlpcpValidateAndSetPortAttributes.c: a connection port always gets 0x20000; NULL attributes
  // mean Flags 0, or 0x1000 for a legacy port (NtCreatePort.c passes NULL and "legacy"), which the
  // mask hides; given attributes keep `Flags & 0x3FF0000`.
  {
    name:
      "AlpcBasicInformation shows Flags & 0x3FF0000: 0x20000 on a legacy NtCreatePort port and on an NtAlpcCreatePort port alike (the legacy bit 0x1000 is masked off)",
    sources: [
      "AlpcpPortQueryBasicInfo.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpCreateConnectionPort.c",
      "NtCreatePort.c",
      "NtAlpcQueryInformation.c",
    ],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      await t.call("NtCreatePort", arg.out("legacy"), null, 0, 0x100, 0);
      await alpcListen(k, t, "bi-null", null, "alpcNull");
      await alpcListen(k, t, "bi-imp", { flags: P.ALLOW_IMPERSONATION | 0x1000 }, "alpcImp");
      const at = (flags: number) => ({
        status: "STATUS_SUCCESS",
        flags: hex(flags),
        sequenceNo: 0,
        portContext: hex(0),
      });
      return {
        expected: {
          legacy: at(0x20000),
          alpcNullAttributes: at(0x20000),
          alpcWithFlags: at(0x30000),
        },
        observed: {
          legacy: await basicInfo(t, "legacy"),
          alpcNullAttributes: await basicInfo(t, "alpcNull"),
          alpcWithFlags: await basicInfo(t, "alpcImp"),
        },
      };
    },
  },

  // The legacy calls' ports through AlpcpPortQueryBasicInfo.c (Flags & 0x3FF0000):
  // NtSecureConnectPort.c creates the client port with NULL attributes and "legacy"
  // (AlpcpCreateClientPort.c), so AlpcpValidateAndSetPortAttributes.c gives it 0x1000 | 0x10000
  // (NULL attributes) | 0x20000 (legacy client) → 0x30000, and its PortContext is its handle;
  // NtAcceptConnectPort.c's server port (NULL attributes, legacy) keeps 0x1000 without 0x20000
  // → 0, with the accept's PortContext.
  {
    name:
      "AlpcBasicInformation on a legacy connection: the NtConnectPort client port shows 0x30000 and its own handle as PortContext, the NtAcceptConnectPort server port 0 and the accept's PortContext",
    sources: [
      "AlpcpPortQueryBasicInfo.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "NtSecureConnectPort.c",
      "AlpcpCreateClientPort.c",
      "NtAcceptConnectPort.c",
      "AlpcpAcceptConnectPort.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await connected(k, { label: "legacy-bi", context: 0x1E6AC7n });
      const cli = await basicInfo(link.client, link.cli);
      const srv = await basicInfo(link.server, link.srv);
      return {
        expected: {
          client: {
            status: "STATUS_SUCCESS",
            flags: hex(0x30000),
            portContext: hex(link.client.handleValue(link.cli)),
          },
          server: { status: "STATUS_SUCCESS", flags: hex(0), portContext: hex(0x1E6AC7) },
        },
        observed: {
          client: { status: cli.status!, flags: cli.flags!, portContext: cli.portContext! },
          server: { status: srv.status!, flags: srv.flags!, portContext: srv.portContext! },
        },
      };
    },
  },

  // NtAlpcQueryInformation.c: a NULL buffer → 0xC000000D before the handle; a class outside
  // {0, 3, 4, 11, 12} → 0xC000000D. AlpcpPortQueryBasicInfo.c: Length < 0x10 → 0xC0000004,
  // and `*ReturnLength = 16` either way.
  {
    name:
      "NtAlpcQueryInformation: a NULL buffer or an unknown class is STATUS_INVALID_PARAMETER; AlpcBasicInformation into fewer than 16 bytes is STATUS_INFO_LENGTH_MISMATCH with ReturnLength 16",
    sources: ["NtAlpcQueryInformation.c", "AlpcpPortQueryBasicInfo.c"],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      await alpcListen(k, t, "qi");
      const q = async (cls: number, buf: number | null, length: number) => {
        const ret = fresh("ret");
        const s = await t.call(
          "NtAlpcQueryInformation",
          arg.h("conn"),
          cls,
          buf === null ? null : arg.buf(fresh("qb"), buf),
          length,
          arg.buf(ret, 4),
        );
        return { status: st(s), returnLength: readUint(await t.read(ret), 0, 4) as number };
      };
      return {
        expected: {
          nullBuffer: { status: "STATUS_INVALID_PARAMETER", returnLength: 0 },
          unknownClass: { status: "STATUS_INVALID_PARAMETER", returnLength: 0 },
          short: { status: "STATUS_INFO_LENGTH_MISMATCH", returnLength: 16 },
          exact: { status: "STATUS_SUCCESS", returnLength: 16 },
        },
        observed: {
          nullBuffer: await q(0, null, 16),
          unknownClass: await q(1, 16, 16),
          short: await q(0, 8, 8),
          exact: await q(0, 16, 16),
        },
      };
    },
  },

  // AlpcpDispatchConnectionRequest.c: the request is Type 10 | 0x2000, with the client's ClientId
  // and its connection data; PortContext 0 (the context attribute is not marked valid:
  // AlpcpExposeContextAttribute.c). AlpcpAcceptConnectPort.c: the server port's PortContext is the
  // one given; LPC_CONNECTION_REPLY (11) carries the accept's data to the client
  // (AlpcpProcessConnectionRequest.c copies it into ConnectionMessage and sets *BufferLength).
  {
    name:
      "An ALPC connect: the server receives LPC_CONNECTION_REQUEST (0x200A) with the client's data, the client gets LPC_CONNECTION_REPLY (11) with the server's data",
    sources: [
      "AlpcpConnectPort.c",
      "AlpcpProcessConnectionRequest.c",
      "AlpcpDispatchConnectionRequest.c",
      "AlpcpFormatConnectionRequest.c",
      "AlpcpAcceptConnectPort.c",
      "AlpcpDispatchReplyToWaitingThread.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnect(k, "connect", { data: "hello", replyData: "welcome!" });
      const r = link.request;
      const reply = await link.client.read(link.connBuffer);
      const rh = reply.subarray(0, HEADER);
      const rv = new DataView(rh.buffer, rh.byteOffset, rh.byteLength);
      const len = readUint(await link.client.read(`${link.connBuffer}.len`), 0, 8) as bigint;
      const replyLength = rv.getUint16(PM.offsets.DataLength, true);
      return {
        expected: {
          setup: "ok",
          request: {
            status: "STATUS_SUCCESS",
            type: hex(0x2000 | T.LPC_CONNECTION_REQUEST),
            dataLength: 5,
            totalLength: HEADER + 5,
          },
          from: { pid: link.client.process.pid, tid: link.client.tid },
          data: "hello",
          context: { valid: hex(0), portContext: hex(0) },
          reply: {
            type: hex(T.LPC_CONNECTION_REPLY),
            data: "welcome!",
            bufferLength: hex(HEADER + 8),
            tid: link.server.tid,
          },
        },
        observed: {
          setup: link.setup,
          request: headerOf(r),
          from: { pid: r.header.pid, tid: r.header.tid },
          data: text(r.data),
          context: { valid: contextOf(r)!.valid!, portContext: contextOf(r)!.portContext! },
          reply: {
            type: hex(rv.getUint16(PM.offsets.Type, true)),
            data: text([...reply.subarray(HEADER, HEADER + replyLength)]),
            bufferLength: hex(len),
            tid: Number(rv.getBigUint64(PM.offsets.ClientId + 8, true)),
          },
        },
      };
    },
  },

  // AlpcpAcceptConnectPort.c: the server port's PortContext (offset 56) is the accept's, or the
  // handle when NULL; AlpcpCreateClientPort.c: the client port's is its own handle value;
  // AlpcpPortQueryBasicInfo.c reads it. AlpcpValidateAndSetPortAttributes.c: a server port loses
  // 0x20000; a client port with NULL attributes gets ALLOW_IMPERSONATION.
  {
    name:
      "NtAlpcQueryInformation shows the accept's PortContext on the server port and the client port's own handle value as its PortContext",
    sources: [
      "AlpcpAcceptConnectPort.c",
      "AlpcpCreateClientPort.c",
      "AlpcpPortQueryBasicInfo.c",
      "AlpcpValidateAndSetPortAttributes.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "bi-ctx", {
        clientAttrs: null,
        serverAttrs: { flags: P.ALLOW_LPC_REQUESTS | P.ALLOW_IMPERSONATION },
      });
      const srv = await basicInfo(link.server, "srv");
      const cli = await basicInfo(link.client, "cli");
      return {
        expected: {
          server: {
            status: "STATUS_SUCCESS",
            flags: hex(P.ALLOW_IMPERSONATION),
            portContext: hex(ALPC_CTX),
          },
          client: {
            status: "STATUS_SUCCESS",
            flags: hex(P.ALLOW_IMPERSONATION),
            portContext: hex(link.client.handleValue("cli")),
          },
        },
        observed: {
          server: { status: srv.status!, flags: srv.flags!, portContext: srv.portContext! },
          client: { status: cli.status!, flags: cli.flags!, portContext: cli.portContext! },
        },
      };
    },
  },

  // AlpcpAcceptConnectPort.c: AcceptConnection FALSE marks the client port refused (0x10) and
  // returns success; AlpcpProcessConnectionRequest.c: the waiting connect then returns
  // STATUS_PORT_CONNECTION_REFUSED and no handle.
  {
    name:
      "Refusing an ALPC connect: the accept returns STATUS_SUCCESS and the client's NtAlpcConnectPort STATUS_PORT_CONNECTION_REFUSED",
    sources: ["AlpcpAcceptConnectPort.c", "AlpcpProcessConnectionRequest.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnect(k, "refuse", { accept: false });
      return {
        expected: { accept: "STATUS_SUCCESS", connect: "STATUS_PORT_CONNECTION_REFUSED" },
        observed: { accept: link.accept, connect: link.connect },
      };
    },
  },

  // AlpcpCreateClientPort.c → AlpcpCheckConnectionSecurity.c: a RequiredServerSid is compared with
  // the user SID of the connection port's owner process (`RtlEqualSid`), else 0xC00002A0, before
  // any connection request is queued. The NULL SID S-1-0-0 is no process's user.
  {
    name:
      "NtAlpcConnectPort with a RequiredServerSid that is not the server process's user is STATUS_SERVER_SID_MISMATCH, and the server receives nothing",
    sources: ["AlpcpConnectPort.c", "AlpcpCreateClientPort.c", "AlpcpCheckConnectionSecurity.c"],
    needs: ALPC,
    async run(k) {
      const server = k.self.main;
      const client = await k.self.thread();
      const name = await alpcListen(k, server, "sid");
      const s = await client.call(
        "NtAlpcConnectPort",
        arg.out("cli"),
        arg.us(name),
        null,
        null,
        F.SYNC_REQUEST,
        arg.buf("nullsid", sidFromString("S-1-0-0")),
        null,
        null,
        null,
        null,
        null,
      );
      const r = await alpcReceive(server, "conn", { ms: 300 });
      return {
        expected: { connect: "STATUS_SERVER_SID_MISMATCH", server: "STATUS_TIMEOUT" },
        observed: { connect: st(s), server: r.status },
      };
    },
  },

  // AlpcpCheckConnectionSecurity.c: the RequiredServerSid equal to the user SID of the server
  // process's primary token (and that token not an AppContainer's) passes; the connect goes on.
  {
    name:
      "NtAlpcConnectPort with the server process's own user SID as RequiredServerSid reaches the server and is accepted",
    sources: ["AlpcpConnectPort.c", "AlpcpCreateClientPort.c", "AlpcpCheckConnectionSecurity.c"],
    needs: ALPC,
    async run(k) {
      const server = k.self.main;
      const client = await k.self.thread();
      const name = await alpcListen(k, server, "sid-ok");
      const pc = client.start(
        "NtAlpcConnectPort",
        arg.out("cli"),
        arg.us(name),
        null,
        null,
        F.SYNC_REQUEST,
        arg.buf("mysid", sidFromString(await k.userSid())),
        null,
        null,
        null,
        null,
        null,
      );
      const r = await alpcReceive(server, "conn");
      const accept = r.status === "STATUS_SUCCESS"
        ? st(
          await server.call(
            "NtAlpcAcceptConnectPort",
            arg.out("srv"),
            arg.h("conn"),
            0,
            null,
            null,
            null,
            arg.buf("acc", alpcReply(r, "")),
            null,
            1,
          ),
        )
        : "-";
      return {
        expected: {
          received: hex(0x2000 | T.LPC_CONNECTION_REQUEST),
          accept: "STATUS_SUCCESS",
          connect: "STATUS_SUCCESS",
        },
        observed: {
          received: r.status === "STATUS_SUCCESS" ? hex(r.header.type) : r.status,
          accept,
          connect: st(await pc.result(3000)),
        },
      };
    },
  },

  // AlpcpProcessConnectionRequest.c: `if ((Flags & 0x10000) != 0) return 0xC000000D`.
  {
    name: "NtAlpcConnectPort with ALPC_MSGFLG_RELEASE_MESSAGE is STATUS_INVALID_PARAMETER",
    sources: ["AlpcpConnectPort.c", "AlpcpProcessConnectionRequest.c"],
    needs: ALPC,
    async run(k) {
      const server = k.self.main;
      const name = await alpcListen(k, server, "connrel");
      const s = await server.call(
        "NtAlpcConnectPort",
        arg.out("cli"),
        arg.us(name),
        null,
        null,
        F.SYNC_REQUEST | F.RELEASE_MESSAGE,
        null,
        null,
        null,
        null,
        null,
        null,
      );
      return { expected: "STATUS_INVALID_PARAMETER", observed: st(s) };
    },
  },

  // AlpcpSendMessage.c (user mode, ALPC port): a new message without RELEASE_MESSAGE is
  // LPC_REQUEST; AlpcpDispatchNewMessage.c sets 0x2000 (a reply is expected), gives it the server
  // port's next sequence number and PortContext; AlpcpExposeContextAttribute.c shows them (valid:
  // the PortContext is not 0). A reply with RELEASE_MESSAGE is LPC_REPLY without 0x2000
  // (AlpcpDispatchReplyToWaitingThread.c), with the replier's ClientId and the request's
  // MessageId; AlpcpProcessSynchronousRequest.c sets *BufferLength to its length.
  {
    name:
      "A synchronous ALPC request: the server gets LPC_REQUEST|0x2000 with the client's ClientId and the PortContext in the context attribute; the client gets LPC_REPLY (2) and *BufferLength = the reply's length",
    sources: [
      "NtAlpcSendWaitReceivePort.c",
      "AlpcpProcessSynchronousRequest.c",
      "AlpcpSendMessage.c",
      "AlpcpDispatchNewMessage.c",
      "AlpcpExposeContextAttribute.c",
      "AlpcpDispatchReplyToWaitingThread.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "sync");
      const pr = alpcRequest(link.client, "cli", alpcMessage("ping"), "rep");
      const r = await alpcReceive(link.server, "conn");
      const replied = st(
        await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "pong!")),
      );
      const got = st(await pr.result(3000));
      const rep = await link.client.read("rep");
      const rv = new DataView(rep.buffer);
      const ctx = contextOf(r)!;
      return {
        expected: {
          request: {
            status: "STATUS_SUCCESS",
            type: hex(0x2000 | T.LPC_REQUEST),
            dataLength: 4,
            totalLength: HEADER + 4,
          },
          from: { pid: link.client.process.pid, tid: link.client.tid },
          data: "ping",
          context: {
            valid: hex(A.CONTEXT),
            portContext: hex(ALPC_CTX),
            messageId: r.header.messageId,
          },
          replied: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          reply: {
            type: hex(T.LPC_REPLY),
            data: "pong!",
            tid: link.server.tid,
            messageId: r.header.messageId,
            bufferLength: hex(HEADER + 5),
          },
        },
        observed: {
          request: headerOf(r),
          from: { pid: r.header.pid, tid: r.header.tid },
          data: text(r.data),
          context: { valid: ctx.valid!, portContext: ctx.portContext!, messageId: ctx.messageId! },
          replied,
          client: got,
          reply: {
            type: hex(rv.getUint16(PM.offsets.Type, true)),
            data: text([...rep.subarray(HEADER, HEADER + rv.getUint16(0, true))]),
            tid: Number(rv.getBigUint64(PM.offsets.ClientId + 8, true)),
            messageId: rv.getUint32(PM.offsets.MessageId, true),
            bufferLength: hex(readUint(await link.client.read("rep.len"), 0, 8)),
          },
        },
      };
    },
  },

  // AlpcpSendMessage.c: a new message with RELEASE_MESSAGE is LPC_DATAGRAM (3);
  // AlpcpDispatchNewMessage.c clears 0x2000 and marks it reply-less (0x200); it still gets a
  // MessageId. AlpcpReceiveMessagePort.c frees it once received (no attribute asked for keeps
  // it), so AlpcpLookupMessage.c no longer finds its MessageId: a reply is STATUS_INVALID_MESSAGE.
  {
    name:
      "An ALPC datagram (RELEASE_MESSAGE, no SYNC_REQUEST): the send returns at once, the server gets LPC_DATAGRAM (3) with a MessageId, and a reply to it afterwards is STATUS_INVALID_MESSAGE",
    sources: [
      "AlpcpSendMessage.c",
      "AlpcpDispatchNewMessage.c",
      "AlpcpReceiveMessagePort.c",
      "AlpcpLookupMessage.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "dgram");
      const sent = st(await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage("fire")));
      const r = await alpcReceive(link.server, "conn");
      const reply = st(await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "x")));
      return {
        expected: {
          sent: "STATUS_SUCCESS",
          got: {
            status: "STATUS_SUCCESS",
            type: hex(T.LPC_DATAGRAM),
            dataLength: 4,
            totalLength: HEADER + 4,
          },
          data: "fire",
          hasMessageId: true,
          reply: "STATUS_INVALID_MESSAGE",
        },
        observed: {
          sent,
          got: headerOf(r),
          data: text(r.data),
          hasMessageId: r.header.messageId !== 0,
          reply,
        },
      };
    },
  },

  // AlpcpSendMessage.c: `if (!MessageId && ClientId != 0) return 0xC0000702`; AlpcpValidateMessage.c
  // on an ALPC port: TotalLength must be exactly DataLength + 40, else 0xC000000D.
  {
    name:
      "An ALPC send with a non-zero ClientId in a new message is STATUS_INVALID_MESSAGE; TotalLength other than DataLength + 40 is STATUS_INVALID_PARAMETER",
    sources: ["AlpcpSendMessage.c", "AlpcpValidateMessage.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "hdr");
      const send = async (init: Parameters<typeof alpcMessage>[1]) =>
        st(await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage("abcd", init)));
      return {
        expected: {
          clientId: "STATUS_INVALID_MESSAGE",
          totalTooBig: "STATUS_INVALID_PARAMETER",
          totalTooSmall: "STATUS_INVALID_PARAMETER",
          clean: "STATUS_SUCCESS",
        },
        observed: {
          clientId: await send({ pid: 4, tid: 8 }),
          totalTooBig: await send({ totalLength: HEADER + 8, size: HEADER + 8 }),
          totalTooSmall: await send({ totalLength: HEADER + 2 }),
          clean: await send({}),
        },
      };
    },
  },

  // AlpcpValidateAndSetPortAttributes.c: a client port keeps at most the connection port's
  // MaxMessageLength; AlpcpSendMessage.c: TotalLength above the sending port's →
  // STATUS_PORT_MESSAGE_TOO_LONG (0xC000002F).
  {
    name:
      "ALPC message size: a client port asking for more than the connection port's MaxMessageLength gets the connection port's, and a longer send is STATUS_PORT_MESSAGE_TOO_LONG",
    sources: ["AlpcpValidateAndSetPortAttributes.c", "AlpcpSendMessage.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "size", {
        portAttrs: { maxMessageLength: 0x100 },
        clientAttrs: { maxMessageLength: 0x1000 },
      });
      const send = async (n: number) =>
        st(await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage(new Uint8Array(n))));
      return {
        expected: { fits: "STATUS_SUCCESS", tooLong: "STATUS_PORT_MESSAGE_TOO_LONG" },
        observed: { fits: await send(0x100 - HEADER), tooLong: await send(0x101 - HEADER) },
      };
    },
  },

  // The largest ALPC message: AlpcpValidateAndSetPortAttributes.c allows MaxMessageLength up to
  // 0xFFFF; AlpcpValidateMessage.c needs DataLength + 40 to fit 16 bits (`DataLength <
  // (USHORT)(DataLength + 40)`), so DataLength 0xFFD7 (TotalLength 0xFFFF) is the most, and
  // 0xFFD8 is STATUS_INVALID_PARAMETER whatever TotalLength says.
  {
    name:
      "The largest ALPC message is TotalLength 0xFFFF (DataLength 0xFFD7) on ports of MaxMessageLength 0xFFFF; DataLength 0xFFD8 is STATUS_INVALID_PARAMETER",
    sources: [
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpValidateMessage.c",
      "AlpcpSendMessage.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "largest", {
        portAttrs: { maxMessageLength: 0xffff },
        clientAttrs: { maxMessageLength: 0xffff },
      });
      const send = async (dataLength: number, totalLength: number) =>
        st(
          await alpcSend(
            link.client,
            "cli",
            F.RELEASE_MESSAGE,
            alpcMessage(new Uint8Array(Math.min(dataLength, 0xffd7)), {
              dataLength,
              totalLength,
              size: HEADER + dataLength,
            }),
          ),
        );
      return {
        expected: { largest: "STATUS_SUCCESS", overflow: "STATUS_INVALID_PARAMETER" },
        observed: { largest: await send(0xffd7, 0xffff), overflow: await send(0xffd8, 0xffff) },
      };
    },
  },

  // AlpcpDispatchReplyToWaitingThread.c: `if (TotalLength <= requester port's MaxMessageLength)`
  // … `else return 0xC0000023` — the reply is refused and the request still waits; a reply that
  // fits then releases the client.
  {
    name:
      "An ALPC reply longer than the requesting client port's MaxMessageLength is STATUS_BUFFER_TOO_SMALL and the request still waits; a shorter reply then releases the client",
    sources: [
      "AlpcpDispatchReplyToWaitingThread.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpSendMessage.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "reply-size", {
        clientAttrs: { maxMessageLength: 0x80 },
      });
      const pr = alpcRequest(link.client, "cli", alpcMessage("small please"));
      const r = await alpcReceive(link.server, "conn");
      const big = st(
        await alpcSend(
          link.server,
          "conn",
          F.RELEASE_MESSAGE,
          alpcReply(r, new Uint8Array(0x81 - HEADER)),
        ),
      );
      const waiting = await pr.result(100);
      const fits = st(
        await alpcSend(
          link.server,
          "conn",
          F.RELEASE_MESSAGE,
          alpcReply(r, new Uint8Array(0x80 - HEADER)),
        ),
      );
      return {
        expected: {
          big: "STATUS_BUFFER_TOO_SMALL",
          waiting: "blocked",
          fits: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
        },
        observed: { big, waiting: st(waiting), fits, client: st(await pr.result(3000)) },
      };
    },
  },

  // AlpcpDispatchNewMessage.c: the target port needs Flags 0x20000 (else 0xC0000707); a message
  // longer than the target's MaxMessageLength is 0xC0000023. A server sends to the client port,
  // which has 0x20000 only when its attributes say so (AlpcpValidateAndSetPortAttributes.c).
  {
    name:
      "A server's new message to an ALPC client port is STATUS_LPC_REQUESTS_NOT_ALLOWED unless the client port has ALLOW_LPC_REQUESTS, and STATUS_BUFFER_TOO_SMALL above the client port's MaxMessageLength",
    sources: [
      "AlpcpDispatchNewMessage.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c",
    ],
    needs: ALPC,
    async run(k) {
      const plain = await alpcConnected(k, "s2c-plain", {
        clientAttrs: { maxMessageLength: 0x100 },
      });
      const notAllowed = st(
        await alpcSend(plain.server, "srv", F.RELEASE_MESSAGE, alpcMessage("hi")),
      );
      const other = await k.spawn();
      const open = await alpcConnected(k, "s2c-open", {
        client: other.main,
        clientAttrs: { flags: P.ALLOW_LPC_REQUESTS, maxMessageLength: 0x100 },
        serverAttrs: { maxMessageLength: 0x1000 },
      });
      const delivered = st(
        await alpcSend(open.server, "srv", F.RELEASE_MESSAGE, alpcMessage("hi")),
      );
      const tooBig = st(
        await alpcSend(
          open.server,
          "srv",
          F.RELEASE_MESSAGE,
          alpcMessage(new Uint8Array(0x101 - HEADER)),
        ),
      );
      const r = await alpcReceive(open.client, "cli");
      return {
        expected: {
          notAllowed: "STATUS_LPC_REQUESTS_NOT_ALLOWED",
          delivered: "STATUS_SUCCESS",
          tooBig: "STATUS_BUFFER_TOO_SMALL",
          received: {
            status: "STATUS_SUCCESS",
            type: hex(T.LPC_DATAGRAM),
            dataLength: 2,
            totalLength: HEADER + 2,
          },
        },
        observed: { notAllowed, delivered, tooBig, received: headerOf(r) },
      };
    },
  },

  // AlpcpReceiveMessagePort.c: nothing queued, the wait with the caller's timeout ends with
  // STATUS_TIMEOUT (0x102).
  {
    name: "An ALPC receive with a timeout and nothing queued returns STATUS_TIMEOUT",
    sources: ["AlpcpReceiveMessage.c", "AlpcpReceiveMessagePort.c"],
    needs: ALPC,
    async run(k) {
      await alpcListen(k, k.self.main, "timeout");
      const r = await alpcReceive(k.self.main, "conn", { ms: 100 });
      return { expected: "STATUS_TIMEOUT", observed: r.status };
    },
  },

  // AlpcpReceiveMessage.c: DataLength + 40 above *BufferLength → AlpcpReturnMessageOnInsufficientBuffer.c
  // (0xC0000023; the message goes back, to the large-message queue, which the next receive takes
  // first: AlpcpReceiveMessagePort.c) and *BufferLength = the required length; a receive that
  // takes it leaves *BufferLength as it was.
  {
    name:
      "An ALPC receive into a too small *BufferLength is STATUS_BUFFER_TOO_SMALL with the required length; the message stays and the next receive gets it (leaving *BufferLength alone)",
    sources: [
      "AlpcpReceiveMessage.c",
      "AlpcpReturnMessageOnInsufficientBuffer.c",
      "AlpcpReceiveMessagePort.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "small");
      await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage("0123456789"));
      const small = await alpcReceive(link.server, "conn", { length: BigInt(HEADER + 4) });
      const big = await alpcReceive(link.server, "conn", { length: BigInt(ALPC_BUFFER) });
      return {
        expected: {
          small: { status: "STATUS_BUFFER_TOO_SMALL", length: hex(HEADER + 10) },
          big: { status: "STATUS_SUCCESS", data: "0123456789", length: hex(ALPC_BUFFER) },
          sameMessage: true,
        },
        observed: {
          small: { status: small.status, length: hex(small.length ?? -1n) },
          big: { status: big.status, data: text(big.data), length: hex(big.length ?? -1n) },
          sameMessage: contextOf(small)!.messageId === big.header.messageId,
        },
      };
    },
  },

  // NtAlpcSendWaitReceivePort.c: SYNC_REQUEST without a send message, or with RELEASE_MESSAGE →
  // 0xC00000F0; without a receive buffer → 0xC0000705.
  {
    name:
      "NtAlpcSendWaitReceivePort: SYNC_REQUEST without a message or with RELEASE_MESSAGE is STATUS_INVALID_PARAMETER_2, without a receive buffer STATUS_LPC_RECEIVE_BUFFER_EXPECTED",
    sources: ["NtAlpcSendWaitReceivePort.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "syncflags");
      const c = link.client;
      const call = async (flags: number, send: boolean, recv: boolean) =>
        st(
          await c.call(
            "NtAlpcSendWaitReceivePort",
            arg.h("cli"),
            flags,
            send ? arg.buf(fresh("m"), alpcMessage("x")) : null,
            null,
            recv ? arg.buf(fresh("r"), ALPC_BUFFER) : null,
            null,
            null,
            null,
          ),
        );
      return {
        expected: {
          noMessage: st(NTSTATUS.STATUS_INVALID_PARAMETER_2),
          release: st(NTSTATUS.STATUS_INVALID_PARAMETER_2),
          noReceive: st(NTSTATUS.STATUS_LPC_RECEIVE_BUFFER_EXPECTED),
        },
        observed: {
          noMessage: await call(F.SYNC_REQUEST, false, true),
          release: await call(F.SYNC_REQUEST | F.RELEASE_MESSAGE, true, true),
          noReceive: await call(F.SYNC_REQUEST, true, false),
        },
      };
    },
  },

  // AlpcpCaptureAttributes.c: `if ((~AllocatedAttributes & ValidAttributes) != 0) return 0xC000000D`.
  {
    name: "An ALPC send whose ValidAttributes are not all allocated is STATUS_INVALID_PARAMETER",
    sources: ["AlpcpCaptureAttributes.c", "AlpcpSendMessage.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "attrs");
      const s = await alpcSend(
        link.client,
        "cli",
        F.RELEASE_MESSAGE,
        alpcMessage("x"),
        arg.buf("badattrs", messageAttributes(A.CONTEXT, A.CONTEXT | A.VIEW)),
      );
      return { expected: "STATUS_INVALID_PARAMETER", observed: st(s) };
    },
  },

  // AlpcInitializeMessageAttribute.c: `*RequiredBufferSize = AlpcGetHeaderSize(flags)`; more than
  // BufferSize → 0xC0000023; else AllocatedAttributes = flags, ValidAttributes = 0.
  // AlpcGetHeaderSize.c: 8 + security 24 + view 32 + context 32 + handle 24 + token 24 + direct 8
  // + work-on-behalf 8.
  {
    name:
      "AlpcInitializeMessageAttribute writes the required size (8 + each attribute: 160 for all seven, 40 for the context) and refuses a smaller buffer with STATUS_BUFFER_TOO_SMALL",
    sources: ["AlpcInitializeMessageAttribute.c", "AlpcGetHeaderSize.c"],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      const all = A.SECURITY | A.VIEW | A.CONTEXT | A.HANDLE | A.TOKEN | A.DIRECT |
        A.WORK_ON_BEHALF;
      const init = async (flags: number, size: number) => {
        const b = fresh("ma");
        const s = await t.call(
          "AlpcInitializeMessageAttribute",
          flags >>> 0,
          arg.buf(b, new Uint8Array(Math.max(size, 8)).fill(0xff)),
          size,
          arg.buf(`${b}.req`, 8),
        );
        const buf = await t.read(b);
        return {
          status: st(s),
          required: readUint(await t.read(`${b}.req`), 0, 8) as bigint,
          allocated: hex(readUint(buf, 0, 4)),
          valid: hex(readUint(buf, 4, 4)),
        };
      };
      const all160 = await init(all, 160);
      const small = await init(all, 159);
      const context = await init(A.CONTEXT, 40);
      return {
        expected: {
          all: {
            status: "STATUS_SUCCESS",
            required: "160",
            allocated: hex(all >>> 0),
            valid: hex(0),
          },
          small: { status: "STATUS_BUFFER_TOO_SMALL", required: "160", untouched: hex(0xffffffff) },
          context: { status: "STATUS_SUCCESS", required: "40", allocated: hex(A.CONTEXT) },
        },
        observed: {
          all: { ...all160, required: String(all160.required) },
          small: {
            status: small.status,
            required: String(small.required),
            untouched: small.allocated,
          },
          context: {
            status: context.status,
            required: String(context.required),
            allocated: context.allocated,
          },
        },
      };
    },
  },

  // AlpcpImpersonateMessage.c: a message without a security attribute impersonates through the
  // connected (client) port, which needs ALLOW_IMPERSONATION (0x10000) in its Flags, else
  // 0xC0000022. AlpcpValidateAndSetPortAttributes.c keeps a client's given Flags as they are.
  {
    name:
      "NtAlpcImpersonateClientOfPort on a request without the security attribute is STATUS_ACCESS_DENIED when the client port lacks ALLOW_IMPERSONATION, and succeeds when it has it",
    sources: [
      "NtAlpcImpersonateClientOfPort.c",
      "AlpcpImpersonateMessage.c",
      "AlpcpReferenceConnectedPort.c",
      "AlpcpValidateAndSetPortAttributes.c",
    ],
    needs: ALPC,
    async run(k) {
      const attempt = async (label: string, flags: number) => {
        const link = await alpcConnected(k, label, { clientAttrs: { flags } });
        const pr = alpcRequest(link.client, "cli", alpcMessage("who"));
        const r = await alpcReceive(link.server, "conn");
        const imp = st(
          await link.server.call(
            "NtAlpcImpersonateClientOfPort",
            arg.h("srv"),
            arg.buf(r.buffer),
            null,
          ),
        );
        const revert = st(
          await link.server.call(
            "NtSetInformationThread",
            arg.self(),
            5,
            arg.buf(fresh("nt"), 8),
            8,
          ),
        );
        await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "ok"));
        await pr.result(3000);
        await link.server.call("NtClose", arg.h("srv"));
        await link.server.call("NtClose", arg.h("conn"));
        return { impersonate: imp, revert };
      };
      return {
        expected: {
          without: { impersonate: "STATUS_ACCESS_DENIED", revert: "STATUS_SUCCESS" },
          with: { impersonate: "STATUS_SUCCESS", revert: "STATUS_SUCCESS" },
        },
        observed: {
          without: await attempt("imp-no", 0),
          with: await attempt("imp-yes", P.ALLOW_IMPERSONATION),
        },
      };
    },
  },

  // NtAlpcCreateSecurityContext.c: Flags 0, a NULL QoS takes the port's; the handle goes to
  // ContextHandle. AlpcpCaptureSecurityAttributeInternal.c: the send's security attribute names
  // it; AlpcpExposeAttributes.c shows it to the receiver (ValidAttributes SECURITY, the
  // ContextHandle); AlpcpImpersonateMessage.c impersonates from the message's context, whatever
  // the client port's Flags.
  {
    name:
      "With the security attribute (a context from NtAlpcCreateSecurityContext), the server sees SECURITY valid and impersonates even though the client port lacks ALLOW_IMPERSONATION",
    sources: [
      "NtAlpcCreateSecurityContext.c",
      "AlpcpCreateSecurityContext.c",
      "AlpcpCaptureSecurityAttributeInternal.c",
      "AlpcpExposeAttributes.c",
      "AlpcpImpersonateMessage.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "imp-sec", { clientAttrs: { flags: 0 } });
      const created = st(
        await link.client.call(
          "NtAlpcCreateSecurityContext",
          arg.h("cli"),
          0,
          arg.buf("sc", securityAttr()),
        ),
      );
      const handle = readUint(await link.client.read("sc"), SEC.offsets.ContextHandle, 8) as bigint;
      const pr = alpcRequest(link.client, "cli", alpcMessage("who"), fresh("arep"), {
        sendAttrs: arg.buf(
          "sa",
          messageAttributes(A.SECURITY, A.SECURITY, [{
            flag: A.SECURITY,
            bytes: securityAttr(handle),
          }]),
        ),
      });
      const r = await alpcReceive(link.server, "conn", { attributes: A.SECURITY | A.CONTEXT });
      const imp = st(
        await link.server.call(
          "NtAlpcImpersonateClientOfPort",
          arg.h("srv"),
          arg.buf(r.buffer),
          null,
        ),
      );
      const revert = st(
        await link.server.call("NtSetInformationThread", arg.self(), 5, arg.buf("nt", 8), 8),
      );
      await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "ok"));
      const client = st(await pr.result(3000));
      return {
        expected: {
          created: "STATUS_SUCCESS",
          handleSet: true,
          valid: hex((A.SECURITY | A.CONTEXT) >>> 0),
          contextHandle: hex(handle),
          impersonate: "STATUS_SUCCESS",
          revert: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
        },
        observed: {
          created,
          handleSet: handle !== 0n,
          valid: hex(validAttributes(r.attrs!)),
          contextHandle: hex(
            attributeField(r.attrs!, A.SECURITY, SEC.offsets.ContextHandle, 8) ?? -1n,
          ),
          impersonate: imp,
          revert,
          client,
        },
      };
    },
  },

  // NtAlpcImpersonateClientOfPort.c: a message whose MessageId is 0 → 0xC000000D; Flags >> 2
  // above 3 (an impersonation level past SecurityDelegation) → 0xC000000D.
  {
    name:
      "NtAlpcImpersonateClientOfPort: a message with MessageId 0, or a level above 3 in Flags, is STATUS_INVALID_PARAMETER",
    sources: ["NtAlpcImpersonateClientOfPort.c", "AlpcpCaptureIdMessage.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "imp-args");
      const s = link.server;
      const zero = st(
        await s.call(
          "NtAlpcImpersonateClientOfPort",
          arg.h("srv"),
          arg.buf("z", alpcMessage("")),
          null,
        ),
      );
      const level = st(
        await s.call("NtAlpcImpersonateClientOfPort", arg.h("srv"), null, arg.ptr(4n * 4n | 2n)),
      );
      return {
        expected: { messageIdZero: "STATUS_INVALID_PARAMETER", level4: "STATUS_INVALID_PARAMETER" },
        observed: { messageIdZero: zero, level4: level },
      };
    },
  },

  // NtAlpcDisconnectPort.c: Flags other than bit 0 → 0xC000000D. AlpcpDisconnectPort.c: the
  // second disconnect → 0xC0000037. AlpcpSendMessage.c: a disconnected ALPC port's send →
  // 0xC0000037; AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c: a send toward a
  // disconnected server port → 0xC0000037 too.
  {
    name:
      "NtAlpcDisconnectPort: Flags beyond bit 0 are STATUS_INVALID_PARAMETER, a second disconnect STATUS_PORT_DISCONNECTED, and sends from or toward a disconnected port STATUS_PORT_DISCONNECTED",
    sources: [
      "NtAlpcDisconnectPort.c",
      "AlpcpDisconnectPort.c",
      "AlpcpSendMessage.c",
      "AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c",
    ],
    needs: ALPC,
    async run(k) {
      const a = await alpcConnected(k, "disc-a");
      const badFlags = st(await a.client.call("NtAlpcDisconnectPort", arg.h("cli"), 2));
      const first = st(await a.client.call("NtAlpcDisconnectPort", arg.h("cli"), 0));
      const second = st(await a.client.call("NtAlpcDisconnectPort", arg.h("cli"), 0));
      const fromDisconnected = st(
        await alpcSend(a.client, "cli", F.RELEASE_MESSAGE, alpcMessage("x")),
      );
      const other = await k.spawn();
      const b = await alpcConnected(k, "disc-b", { client: other.main });
      const server = st(await b.server.call("NtAlpcDisconnectPort", arg.h("srv"), 0));
      const towardDisconnected = st(
        await alpcSend(b.client, "cli", F.RELEASE_MESSAGE, alpcMessage("x")),
      );
      return {
        expected: {
          badFlags: "STATUS_INVALID_PARAMETER",
          first: "STATUS_SUCCESS",
          second: "STATUS_PORT_DISCONNECTED",
          fromDisconnected: "STATUS_PORT_DISCONNECTED",
          server: "STATUS_SUCCESS",
          towardDisconnected: "STATUS_PORT_DISCONNECTED",
        },
        observed: { badFlags, first, second, fromDisconnected, server, towardDisconnected },
      };
    },
  },

  // AlpcpClosePort.c: an ALPC port's last handle → AlpcpDoPortCleanup.c, then
  // AlpcpSendCloseMessage.c: LPC_PORT_CLOSED (Type 5, 0x300008: DataLength 8, TotalLength 0x30,
  // ClientId 0) to the connection port, with the server port's PortContext
  // (AlpcpDispatchCloseMessage.c clears 0x2000).
  {
    name:
      "Closing an ALPC client port's last handle sends LPC_PORT_CLOSED (5, 8/0x30, ClientId 0) to the connection port with the server port's PortContext",
    sources: [
      "AlpcpClosePort.c",
      "AlpcpSendCloseMessage.c",
      "AlpcpDispatchCloseMessage.c",
      "AlpcpDoPortCleanup.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "close");
      const closed = st(await link.client.call("NtClose", arg.h("cli")));
      const r = await alpcReceive(link.server, "conn");
      const ctx = contextOf(r)!;
      return {
        expected: {
          closed: "STATUS_SUCCESS",
          got: {
            status: "STATUS_SUCCESS",
            type: hex(T.LPC_PORT_CLOSED),
            dataLength: 8,
            totalLength: 0x30,
          },
          from: { pid: 0, tid: 0 },
          context: { valid: hex(A.CONTEXT), portContext: hex(ALPC_CTX) },
        },
        observed: {
          closed,
          got: headerOf(r),
          from: { pid: r.header.pid, tid: r.header.tid },
          context: { valid: ctx.valid!, portContext: ctx.portContext! },
        },
      };
    },
  },

  // PspExitThread.c: the last thread's exit runs down the handle table; the client port's last
  // handle closes (AlpcpClosePort.c) and AlpcpSendCloseMessage.c sends LPC_PORT_CLOSED, whose
  // data is the CreateTime of the process that closed it (the dying client).
  {
    name:
      "An ALPC client process that dies: the server receives LPC_PORT_CLOSED with the server port's PortContext (no LPC_CLIENT_DIED without a termination port)",
    sources: ["PspExitThread.c", "AlpcpClosePort.c", "AlpcpSendCloseMessage.c"],
    needs: ["process", "alpc"],
    async run(k) {
      const client = await k.spawn();
      const link = await alpcConnected(k, "dies", { client: client.main });
      await client.kill(0x1234);
      const r = await alpcReceive(link.server, "conn", { ms: 3000 });
      const ctx = contextOf(r)!;
      return {
        expected: {
          got: {
            status: "STATUS_SUCCESS",
            type: hex(T.LPC_PORT_CLOSED),
            dataLength: 8,
            totalLength: 0x30,
          },
          portContext: hex(ALPC_CTX),
          exitCode: 0x1234,
        },
        observed: {
          got: headerOf(r),
          portContext: ctx.portContext!,
          exitCode: (await client.exitCode())!,
        },
      };
    },
  },

  // AlpcpClosePort.c / AlpcpSendCloseMessage.c: a server port's close sends LPC_PORT_CLOSED to
  // the client port, but AlpcpDispatchCloseMessage.c needs the target's Flags 0x20000 (else
  // nothing is sent). The client's next send: the server port is disconnected
  // (AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c: 0xC0000037).
  {
    name:
      "Closing an ALPC server port: a client port with ALLOW_LPC_REQUESTS receives LPC_PORT_CLOSED, one without receives nothing; both clients' sends are then STATUS_PORT_DISCONNECTED",
    sources: [
      "AlpcpClosePort.c",
      "AlpcpSendCloseMessage.c",
      "AlpcpDispatchCloseMessage.c",
      "AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c",
    ],
    needs: ["process", "alpc"],
    async run(k) {
      const run = async (label: string, flags: number) => {
        const p = await k.spawn();
        const link = await alpcConnected(k, label, { client: p.main, clientAttrs: { flags } });
        await link.server.call("NtClose", arg.h("srv"));
        const r = await alpcReceive(link.client, "cli", { ms: 300 });
        const send = st(await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage("x")));
        await link.server.call("NtClose", arg.h("conn"));
        return { received: r.status === "STATUS_SUCCESS" ? hex(r.header.type) : r.status, send };
      };
      return {
        expected: {
          allowing: { received: hex(T.LPC_PORT_CLOSED), send: "STATUS_PORT_DISCONNECTED" },
          plain: { received: "STATUS_TIMEOUT", send: "STATUS_PORT_DISCONNECTED" },
        },
        observed: {
          allowing: await run("srvclose-a", P.ALLOW_LPC_REQUESTS),
          plain: await run("srvclose-b", 0),
        },
      };
    },
  },

  // AlpcpCreateClientPort.c: a client port is "connecting" (8) until the connection reply
  // (AlpcpDispatchReplyToWaitingThread.c clears it for Type 11); AlpcpSendMessage.c: a send then →
  // 0xC0000707. AlpcpProcessConnectionRequest.c: without SYNC_REQUEST the connect returns at once.
  {
    name:
      "An ALPC connect without SYNC_REQUEST returns the handle at once; sending before the accept is STATUS_LPC_REQUESTS_NOT_ALLOWED, after it STATUS_SUCCESS",
    sources: [
      "AlpcpProcessConnectionRequest.c",
      "AlpcpCreateClientPort.c",
      "AlpcpSendMessage.c",
      "AlpcpDispatchReplyToWaitingThread.c",
    ],
    needs: ALPC,
    async run(k) {
      const server = k.self.main;
      const client = await k.self.thread();
      const name = await alpcListen(k, server, "async-connect");
      const connect = st(
        await client.call(
          "NtAlpcConnectPort",
          arg.out("cli"),
          arg.us(name),
          null,
          null,
          0,
          null,
          null,
          null,
          null,
          null,
          null,
        ),
      );
      const before = st(await alpcSend(client, "cli", F.RELEASE_MESSAGE, alpcMessage("early")));
      const rq = await alpcReceive(server, "conn");
      const accept = st(
        await server.call(
          "NtAlpcAcceptConnectPort",
          arg.out("srv"),
          arg.h("conn"),
          0,
          null,
          null,
          arg.ptr(ALPC_CTX),
          arg.buf("acc", alpcReply(rq, "")),
          null,
          1,
        ),
      );
      const after = st(await alpcSend(client, "cli", F.RELEASE_MESSAGE, alpcMessage("late")));
      return {
        expected: {
          connect: "STATUS_SUCCESS",
          before: "STATUS_LPC_REQUESTS_NOT_ALLOWED",
          request: hex(0x2000 | T.LPC_CONNECTION_REQUEST),
          accept: "STATUS_SUCCESS",
          after: "STATUS_SUCCESS",
        },
        observed: { connect, before, request: hex(rq.header.type), accept, after },
      };
    },
  },

  // AlpcpCreateClientPort.c: the name is looked up (ObReferenceObjectByName): none →
  // STATUS_OBJECT_NAME_NOT_FOUND.
  {
    name: "NtAlpcConnectPort to a name no port has is STATUS_OBJECT_NAME_NOT_FOUND",
    sources: ["AlpcpConnectPort.c", "AlpcpCreateClientPort.c"],
    needs: ALPC,
    async run(k) {
      const s = await k.self.main.call(
        "NtAlpcConnectPort",
        arg.out("cli"),
        arg.us(k.portName("nobody")),
        null,
        null,
        F.SYNC_REQUEST,
        null,
        null,
        null,
        null,
        null,
        null,
      );
      return { expected: "STATUS_OBJECT_NAME_NOT_FOUND", observed: st(s) };
    },
  },

  // AlpcpFormatConnectionRequest.c → AlpcpValidateConnectionMessage.c: the connection message is
  // checked like any ALPC message (TotalLength = DataLength + 40); AlpcpDispatchConnectionRequest.c:
  // a TotalLength above the connection port's MaxMessageLength → 0xC0000023.
  {
    name:
      "An ALPC connection message longer than the connection port's MaxMessageLength is STATUS_BUFFER_TOO_SMALL; a bad TotalLength STATUS_INVALID_PARAMETER",
    sources: [
      "AlpcpFormatConnectionRequest.c",
      "AlpcpValidateConnectionMessage.c",
      "AlpcpDispatchConnectionRequest.c",
    ],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      const name = await alpcListen(k, t, "connbig", { maxMessageLength: 0x100 });
      const connect = async (msg: Uint8Array) =>
        st(
          await t.call(
            "NtAlpcConnectPort",
            arg.out(fresh("c")),
            arg.us(name),
            null,
            null,
            F.SYNC_REQUEST,
            null,
            arg.buf(fresh("cm"), msg),
            null,
            null,
            null,
            arg.timeout(200),
          ),
        );
      return {
        expected: { tooLong: "STATUS_BUFFER_TOO_SMALL", badTotal: "STATUS_INVALID_PARAMETER" },
        observed: {
          tooLong: await connect(alpcMessage(new Uint8Array(0x101 - HEADER))),
          badTotal: await connect(alpcMessage("x", { totalLength: HEADER })),
        },
      };
    },
  },

  // AlpcpAcceptConnectPort.c: MessageId 0 → 0xC000021F; a message that is not a connection
  // request (`(Type & 0xFFFF00FF) != 0xA`) → 0xC000021F.
  {
    name:
      "NtAlpcAcceptConnectPort with MessageId 0, or with a request that is not a connection request, is STATUS_REPLY_MESSAGE_MISMATCH",
    sources: ["NtAlpcAcceptConnectPort.c", "AlpcpAcceptConnectPort.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "accept-bad");
      const pr = alpcRequest(link.client, "cli", alpcMessage("req"));
      const r = await alpcReceive(link.server, "conn");
      const accept = async (msg: Uint8Array) =>
        st(
          await link.server.call(
            "NtAlpcAcceptConnectPort",
            arg.out(fresh("s")),
            arg.h("conn"),
            0,
            null,
            null,
            null,
            arg.buf(fresh("am"), msg),
            null,
            1,
          ),
        );
      const zero = await accept(alpcMessage(""));
      const notConnect = await accept(alpcReply(r, ""));
      await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "ok"));
      await pr.result(3000);
      return {
        expected: {
          zero: "STATUS_REPLY_MESSAGE_MISMATCH",
          notConnect: "STATUS_REPLY_MESSAGE_MISMATCH",
        },
        observed: { zero, notConnect },
      };
    },
  },

  // AlpcpSendMessage.c: a reply looks its message up (AlpcpLookupMessage.c); once the waiting
  // requester took the reply the message is gone: a second reply → 0xC0000702.
  {
    name: "A second reply to the same ALPC request is STATUS_INVALID_MESSAGE",
    sources: ["AlpcpSendMessage.c", "AlpcpLookupMessage.c", "AlpcpReceiveSynchronousReply.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "reply2");
      const pr = alpcRequest(link.client, "cli", alpcMessage("once"));
      const r = await alpcReceive(link.server, "conn");
      const first = st(await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "1")));
      const client = st(await pr.result(3000));
      const second = st(await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "2")));
      return {
        expected: {
          first: "STATUS_SUCCESS",
          client: "STATUS_SUCCESS",
          second: "STATUS_INVALID_MESSAGE",
        },
        observed: { first, client, second },
      };
    },
  },

  // AlpcpSendMessage.c, user-mode branch: `v16 = Type & 0x7FFF`, then
  // `Type = v21 | (v16 & 0xFF00) & 0xEFFF`: of the caller's high byte 0x8000
  // (LPC_KERNELMODE_MESSAGE) and 0x1000 are dropped; AlpcpDispatchNewMessage.c clears 0x2000 for
  // a datagram.
  {
    name:
      "An ALPC send drops the caller's Type bits 0x8000 and 0x1000: a datagram sent with Type 0x9000 arrives as LPC_DATAGRAM (3)",
    sources: ["AlpcpSendMessage.c", "AlpcpDispatchNewMessage.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "type-bits");
      const sent = st(
        await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage("t", { type: 0x9000 })),
      );
      const r = await alpcReceive(link.server, "conn");
      return {
        expected: { sent: "STATUS_SUCCESS", type: hex(T.LPC_DATAGRAM) },
        observed: { sent, type: hex(r.header.type) },
      };
    },
  },

  // AlpcpReceiveMessagePort.c: a message without reply (0x200) that carries an attribute the
  // receiver allocated (a security context: 0x80000000) is kept, `Type |= 0x2000`, on the
  // pending queue. AlpcpImpersonateMessage.c tests only the state (3), LPC_NO_IMPERSONATE and the
  // port, not 0x200: it can be impersonated. AlpcpSendMessage.c: a reply to it answers 0 and
  // cancels it (AlpcpCancelMessage.c), so a second reply fails its lookup
  // (AlpcpLookupMessage.c: 0xC0000702).
  {
    name:
      "An ALPC datagram with a security context, received with SECURITY allocated, is kept with 0x2000, can be impersonated, takes one reply (STATUS_SUCCESS) and then is gone (STATUS_INVALID_MESSAGE)",
    sources: [
      "AlpcpCaptureSecurityAttributeInternal.c",
      "AlpcpReceiveMessagePort.c",
      "AlpcpImpersonateMessage.c",
      "AlpcpSendMessage.c",
      "AlpcpCancelMessage.c",
      "AlpcpLookupMessage.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "kept-dgram", { clientAttrs: { flags: 0 } });
      const attrs = messageAttributes(A.SECURITY, A.SECURITY, [{
        flag: A.SECURITY,
        bytes: securityAttr(0xfffffffffffffffen),
      }]);
      const sent = st(
        await alpcSend(
          link.client,
          "cli",
          F.RELEASE_MESSAGE,
          alpcMessage("dg"),
          arg.buf("kd.sa", attrs),
        ),
      );
      const r = await alpcReceive(link.server, "conn", { attributes: A.SECURITY | A.CONTEXT });
      const imp = st(
        await link.server.call(
          "NtAlpcImpersonateClientOfPort",
          arg.h("srv"),
          arg.buf(r.buffer),
          null,
        ),
      );
      await link.server.call("NtSetInformationThread", arg.self(), 5, arg.buf("kd.nt", 8), 8);
      const first = st(await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "1")));
      const second = st(await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "2")));
      return {
        expected: {
          sent: "STATUS_SUCCESS",
          type: hex(0x2000 | T.LPC_DATAGRAM),
          valid: hex((A.SECURITY | A.CONTEXT) >>> 0),
          impersonate: "STATUS_SUCCESS",
          first: "STATUS_SUCCESS",
          second: "STATUS_INVALID_MESSAGE",
        },
        observed: {
          sent,
          type: hex(r.header.type),
          valid: hex(validAttributes(r.attrs!)),
          impersonate: imp,
          first,
          second,
        },
      };
    },
  },

  // AlpcpCaptureSecurityAttributeInternal.c, an existing ContextHandle with Flags 0x10000: the
  // context is deleted (AlpcpDeleteBlob) and `v13 = 0` before `*(a5 + 32) = v13`, so the message
  // carries no context: AlpcpExposeAttributes.c marks no SECURITY valid.
  {
    name:
      "An ALPC send with the security attribute's RELEASE flag (0x10000) on an existing context deletes it and the message carries none: the receiver sees only CONTEXT valid",
    sources: [
      "NtAlpcCreateSecurityContext.c",
      "AlpcpCaptureSecurityAttributeInternal.c",
      "AlpcpExposeAttributes.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "sec-release");
      const created = st(
        await link.client.call(
          "NtAlpcCreateSecurityContext",
          arg.h("cli"),
          0,
          arg.buf("sr.sc", securityAttr()),
        ),
      );
      const handle = readUint(await link.client.read("sr.sc"), SEC.offsets.ContextHandle, 8);
      const attrs = messageAttributes(A.SECURITY, A.SECURITY, [{
        flag: A.SECURITY,
        bytes: securityAttr(handle as bigint, 0x10000),
      }]);
      const sent = st(
        await alpcSend(
          link.client,
          "cli",
          F.RELEASE_MESSAGE,
          alpcMessage("r"),
          arg.buf("sr.a", attrs),
        ),
      );
      const r = await alpcReceive(link.server, "conn", { attributes: A.SECURITY | A.CONTEXT });
      const again = st(
        await link.client.call(
          "NtAlpcDeleteSecurityContext",
          arg.h("cli"),
          0,
          arg.ptr(handle as bigint),
        ),
      );
      return {
        expected: {
          created: "STATUS_SUCCESS",
          sent: "STATUS_SUCCESS",
          type: hex(T.LPC_DATAGRAM),
          valid: hex(A.CONTEXT),
          deleteAgain: "STATUS_INVALID_HANDLE",
        },
        observed: {
          created,
          sent,
          type: hex(r.header.type),
          valid: hex(validAttributes(r.attrs!)),
          deleteAgain: again,
        },
      };
    },
  },

  // SeValidateSecurityQos.c: `if (ContextTrackingMode >= 2) return 0xC000000D; return
  // ImpersonationLevel > 3 ? 0xC00000A5 : 0`: with both bad, the tracking mode wins.
  {
    name:
      "NtAlpcCreatePort with a QoS whose tracking mode (2) and level (4) are both bad is STATUS_INVALID_PARAMETER (the tracking mode is checked first); the level alone is STATUS_BAD_IMPERSONATION_LEVEL",
    sources: ["AlpcpValidateAndSetPortAttributes.c", "SeValidateSecurityQos.c"],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      const QOS = LAYOUTS.SECURITY_QUALITY_OF_SERVICE.offsets;
      const PA = LAYOUTS.ALPC_PORT_ATTRIBUTES.offsets;
      const create = async (level: number, tracking: number) => {
        const pa = portAttributes({ level });
        new DataView(pa.buffer).setUint8(PA.SecurityQos + QOS.ContextTrackingMode, tracking);
        return st(
          await t.call("NtAlpcCreatePort", arg.out(fresh("p")), null, arg.buf(fresh("pa"), pa)),
        );
      };
      return {
        expected: { both: "STATUS_INVALID_PARAMETER", level: "STATUS_BAD_IMPERSONATION_LEVEL" },
        observed: { both: await create(4, 2), level: await create(4, 0) },
      };
    },
  },

  // AlpcpSendMessage.c: a non-zero MessageId is looked up (AlpcpLookupMessage.c); a negative one
  // names a resource reserve in the communication's table: none there → 0xC00002F0
  // (STATUS_OBJECTID_NOT_FOUND).
  {
    name:
      "An ALPC send with a negative MessageId (a reserve the port has not made) is STATUS_OBJECTID_NOT_FOUND",
    sources: ["AlpcpSendMessage.c", "AlpcpLookupMessage.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "reserve-id");
      const s = st(
        await alpcSend(
          link.client,
          "cli",
          F.RELEASE_MESSAGE,
          alpcMessage("r", { messageId: 0x80000004 }),
        ),
      );
      return {
        expected: { status: st(NTSTATUS.STATUS_OBJECTID_NOT_FOUND) },
        observed: { status: s },
      };
    },
  },

  // AlpcpSendMessage.c, user-mode branch: a non-zero DataInfoOffset → AlpcpValidateDataInformation.c:
  // the offset must be >= 0x28 and <= TotalLength - 24, and the ULONG there at most
  // (TotalLength - offset - 8) / 16, else 0xC000000D.
  {
    name:
      "An ALPC send validates a non-zero DataInfoOffset: below 0x28, past TotalLength - 24, or with a count over (TotalLength - offset - 8) / 16 is STATUS_INVALID_PARAMETER",
    sources: ["AlpcpSendMessage.c", "AlpcpValidateDataInformation.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "datainfo");
      const send = async (offset: number, count: number, dataLength = 24) => {
        const data = new Uint8Array(dataLength);
        if (offset >= HEADER && offset - HEADER + 4 <= dataLength) {
          new DataView(data.buffer).setUint32(offset - HEADER, count, true);
        }
        const m = alpcMessage(data);
        new DataView(m.buffer).setUint16(PM.offsets.DataInfoOffset, offset, true);
        return st(await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, m));
      };
      // TotalLength 64: offsets 0x28..40 pass; (64 - 40 - 8) / 16 = 1 entry at most.
      const below = await send(0x24, 0);
      const past = await send(0x2c, 0);
      const one = await send(0x28, 1);
      const two = await send(0x28, 2);
      return {
        expected: {
          below: "STATUS_INVALID_PARAMETER",
          past: "STATUS_INVALID_PARAMETER",
          one: "STATUS_SUCCESS",
          two: "STATUS_INVALID_PARAMETER",
        },
        observed: { below, past, one, two },
      };
    },
  },

  // AlpcpCreateClientPort.c: `if (connection->Flags & 0x1000000) { client->Flags |= 0x1000000;
  // client->MaxMessageLength = connection->MaxMessageLength; }` (after
  // AlpcpValidateAndSetPortAttributes.c capped it); AlpcpPortQueryBasicInfo.c shows the flag.
  {
    name:
      "A connection port with Flags 0x1000000 passes the flag and its MaxMessageLength to its client ports",
    sources: [
      "AlpcpCreateClientPort.c",
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpPortQueryBasicInfo.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "inherit", {
        portAttrs: { flags: 0x1000000, maxMessageLength: 0x400 },
        clientAttrs: { flags: 0, maxMessageLength: 0x100 },
      });
      const info = await basicInfo(link.client, "cli");
      const big = st(
        await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage(new Uint8Array(0x200))),
      );
      return {
        expected: { flags: hex(0x1000000), big: "STATUS_SUCCESS" },
        observed: { flags: info.flags!, big },
      };
    },
  },

  // NtAlpcImpersonateClientOfPort.c without a message: AlpcpReferenceConnectedPort.c gives a
  // connection port itself; its Flags need 0x10000 and no 0x400 (else 0xC0000022), then
  // SeImpersonateClientEx.c on its client context, which AlpcpCreatePort.c zeroed (no token):
  // PsImpersonateClient.c with a NULL token reverts the thread and returns 0.
  // AlpcpCreateClientPort.c sets 0x400 only on a client port with dynamic tracking, so a client
  // impersonating through its own port reaches its server port's (empty) context the same way,
  // whatever the server port's QoS says.
  {
    name:
      "NtAlpcImpersonateClientOfPort without a message through a connection port, or through a client port toward a server port with dynamic tracking: STATUS_ACCESS_DENIED without ALLOW_IMPERSONATION, else STATUS_SUCCESS (an empty context: the thread is not impersonating)",
    sources: [
      "NtAlpcImpersonateClientOfPort.c",
      "AlpcpReferenceConnectedPort.c",
      "AlpcpCreatePort.c",
      "AlpcpCreateClientPort.c",
      "SeImpersonateClientEx.c",
      "PsImpersonateClient.c",
      "NtOpenThreadTokenEx.c",
    ],
    needs: ALPC,
    async run(k) {
      const t = k.self.main;
      await alpcListen(k, t, "imp-conn-a", {}, "ica");
      await alpcListen(k, t, "imp-conn-b", { flags: P.ALLOW_IMPERSONATION }, "icb");
      const imp = async (th: typeof t, h: string) =>
        st(await th.call("NtAlpcImpersonateClientOfPort", arg.h(h), null, null));
      const token = async (th: typeof t) =>
        st(await th.call("NtOpenThreadToken", arg.self(), 8, 1, arg.out(fresh("tok"))));
      const plain = await imp(t, "ica");
      const allowing = await imp(t, "icb");
      const afterConnection = await token(t);
      const link = await alpcConnected(k, "imp-srvport", {
        serverAttrs: { flags: P.ALLOW_IMPERSONATION, dynamic: true },
      });
      const throughClient = await imp(link.client, "cli");
      const afterClient = await token(link.client);
      return {
        expected: {
          plain: "STATUS_ACCESS_DENIED",
          allowing: "STATUS_SUCCESS",
          afterConnection: "STATUS_NO_TOKEN",
          throughClient: "STATUS_SUCCESS",
          afterClient: "STATUS_NO_TOKEN",
        },
        observed: { plain, allowing, afterConnection, throughClient, afterClient },
      };
    },
  },

  // AlpcpImpersonateMessage.c: without a security context, a client port with static tracking
  // gives its client context, captured at connect with its QoS (level 2 here); one with dynamic
  // tracking (NULL attributes: AlpcpValidateAndSetPortAttributes.c gives QoS level 0,
  // SecurityAnonymous) gets a context of the waiting thread made with that QoS
  // (SeCreateClientSecurity.c), and PsImpersonateClient.c impersonates at level 0.
  // NtOpenThreadTokenEx.c: an anonymous-level token → 0xC00000A6.
  {
    name:
      "ALPC impersonation keeps the client's QoS level: a static client (SecurityImpersonation) gives a thread token that opens, a NULL-attributes client (SecurityAnonymous) one that is STATUS_CANT_OPEN_ANONYMOUS",
    sources: [
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpImpersonateMessage.c",
      "PsImpersonateClient.c",
      "NtOpenThreadTokenEx.c",
    ],
    needs: ALPC,
    async run(k) {
      const run = async (label: string, clientAttrs: { flags: number } | null) => {
        const link = await alpcConnected(k, label, { clientAttrs });
        const pr = alpcRequest(link.client, "cli", alpcMessage("who"));
        const r = await alpcReceive(link.server, "conn");
        const imp = st(
          await link.server.call(
            "NtAlpcImpersonateClientOfPort",
            arg.h("srv"),
            arg.buf(r.buffer),
            null,
          ),
        );
        const cell = fresh("tok");
        const open = st(
          await link.server.call("NtOpenThreadToken", arg.self(), 8, 1, arg.out(cell)),
        );
        if (open === "STATUS_SUCCESS") await link.server.call("NtClose", arg.h(cell));
        await link.server.call("NtSetInformationThread", arg.self(), 5, arg.buf(fresh("nt"), 8), 8);
        await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "ok"));
        await pr.result(3000);
        return { impersonate: imp, open };
      };
      return {
        expected: {
          static: { impersonate: "STATUS_SUCCESS", open: "STATUS_SUCCESS" },
          anonymous: { impersonate: "STATUS_SUCCESS", open: "STATUS_CANT_OPEN_ANONYMOUS" },
        },
        observed: {
          static: await run("imp-lvl-s", { flags: P.ALLOW_IMPERSONATION }),
          anonymous: await run("imp-lvl-a", null),
        },
      };
    },
  },

  // AlpcpProcessSynchronousRequest.c: a reply longer than `*BufferLength` →
  // AlpcpReturnMessageOnInsufficientBuffer.c queues it on the receive port (the client port here),
  // `*BufferLength` = the required length, 0xC0000023; the client's next receive there gets it.
  {
    name:
      "A synchronous ALPC request whose reply does not fit *BufferLength is STATUS_BUFFER_TOO_SMALL with the required length; the reply waits on the client port for its next receive",
    sources: [
      "AlpcpProcessSynchronousRequest.c",
      "AlpcpReturnMessageOnInsufficientBuffer.c",
      "AlpcpExposeCapturedContextAttribute.c",
      "AlpcpReceiveMessagePort.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "sync-small");
      const reply = fresh("arep");
      const pr = alpcRequest(link.client, "cli", alpcMessage("q"), reply, {
        length: BigInt(HEADER),
      });
      const r = await alpcReceive(link.server, "conn");
      const replied = st(
        await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "a long reply")),
      );
      const client = st(await pr.result(3000));
      const length = readUint(await link.client.read(`${reply}.len`), 0, 8);
      const next = await alpcReceive(link.client, "cli");
      return {
        expected: {
          replied: "STATUS_SUCCESS",
          client: "STATUS_BUFFER_TOO_SMALL",
          length: hex(HEADER + 12),
          next: { status: "STATUS_SUCCESS", type: hex(T.LPC_REPLY), messageId: r.header.messageId },
          data: "a long reply",
        },
        observed: {
          replied,
          client,
          length: hex(length),
          next: {
            status: next.status,
            type: hex(next.header.type & 0xff),
            messageId: next.header.messageId,
          },
          data: text(next.data),
        },
      };
    },
  },

  // AlpcpSendMessage.c: a reply to the connection request (its MessageId) through
  // NtAlpcSendWaitReceivePort wakes the connecting thread (AlpcpDispatchReplyToWaitingThread.c,
  // which clears the client port's 8 only for Type 11); AlpcpProcessConnectionRequest.c returns 0
  // with the handle and the reply's data. The client port is still "connecting":
  // AlpcpSendMessage.c → 0xC0000707 for its sends.
  {
    name:
      "Replying to an ALPC connection request with NtAlpcSendWaitReceivePort instead of accepting: the connect returns STATUS_SUCCESS with the reply, and the client port's sends are STATUS_LPC_REQUESTS_NOT_ALLOWED",
    sources: [
      "AlpcpSendMessage.c",
      "AlpcpDispatchReplyToWaitingThread.c",
      "AlpcpProcessConnectionRequest.c",
    ],
    needs: ALPC,
    async run(k) {
      const server = k.self.main;
      const client = await k.self.thread();
      const name = await alpcListen(k, server, "conn-replied");
      const cm = fresh("acm");
      const pc = client.start(
        "NtAlpcConnectPort",
        arg.out("cli"),
        arg.us(name),
        null,
        null,
        F.SYNC_REQUEST,
        null,
        arg.buf(cm, alpcMessage("hello", { size: ALPC_BUFFER })),
        arg.buf(`${cm}.len`, u64(BigInt(ALPC_BUFFER))),
        null,
        null,
        null,
      );
      const rq = await alpcReceive(server, "conn");
      const replied = st(await alpcSend(server, "conn", F.RELEASE_MESSAGE, alpcReply(rq, "plain")));
      const connect = st(await pc.result(3000));
      const got = await client.read(cm);
      const h = rawHeader(got);
      const send = connect === "STATUS_SUCCESS"
        ? st(await alpcSend(client, "cli", F.RELEASE_MESSAGE, alpcMessage("x")))
        : "-";
      return {
        expected: {
          replied: "STATUS_SUCCESS",
          connect: "STATUS_SUCCESS",
          reply: { type: hex(T.LPC_REPLY), data: "plain" },
          send: "STATUS_LPC_REQUESTS_NOT_ALLOWED",
        },
        observed: {
          replied,
          connect,
          reply: {
            type: hex(h.type & 0xff),
            data: text([...got.subarray(HEADER, HEADER + h.dataLength)]),
          },
          send,
        },
      };
    },
  },

  // AlpcpSendMessage.c: a reply to a message no thread waits on goes to
  // AlpcpDispatchReplyToPort.c, an asynchronous connect's too: it is queued on the requester, the
  // client port (its 8 cleared only for Type 11, so its sends stay 0xC0000707).
  {
    name:
      "A plain reply to an asynchronous ALPC connect's request is queued on the client port as LPC_REPLY; the client port's sends stay STATUS_LPC_REQUESTS_NOT_ALLOWED",
    sources: [
      "AlpcpSendMessage.c",
      "AlpcpDispatchReplyToPort.c",
      "AlpcpProcessConnectionRequest.c",
    ],
    needs: ALPC,
    async run(k) {
      const server = k.self.main;
      const client = await k.self.thread();
      const name = await alpcListen(k, server, "async-replied");
      const connect = st(
        await client.call(
          "NtAlpcConnectPort",
          arg.out("cli"),
          arg.us(name),
          null,
          null,
          0,
          null,
          null,
          null,
          null,
          null,
          null,
        ),
      );
      const rq = await alpcReceive(server, "conn");
      const replied = st(await alpcSend(server, "conn", F.RELEASE_MESSAGE, alpcReply(rq, "plain")));
      const got = await alpcReceive(client, "cli");
      const send = st(await alpcSend(client, "cli", F.RELEASE_MESSAGE, alpcMessage("x")));
      return {
        expected: {
          connect: "STATUS_SUCCESS",
          replied: "STATUS_SUCCESS",
          got: { status: "STATUS_SUCCESS", type: hex(T.LPC_REPLY), data: "plain" },
          send: "STATUS_LPC_REQUESTS_NOT_ALLOWED",
        },
        observed: {
          connect,
          replied,
          got: { status: got.status, type: hex(got.header.type & 0xff), data: text(got.data) },
          send,
        },
      };
    },
  },

  // AlpcpAcceptConnectPort.c: the server port is made, linked and its handle written to
  // *PortHandle before AlpcpDispatchMessage.c; a connection reply longer than the client port's
  // MaxMessageLength fails there (AlpcpDispatchReplyToWaitingThread.c: 0xC0000023) and the
  // handle is closed (NtClose), so the value written names no handle.
  {
    name:
      "An ALPC accept whose connection reply exceeds the client port's MaxMessageLength is STATUS_BUFFER_TOO_SMALL; the server port handle it wrote is already closed (STATUS_INVALID_HANDLE)",
    sources: [
      "AlpcpAcceptConnectPort.c",
      "AlpcpDispatchMessage.c",
      "AlpcpDispatchReplyToWaitingThread.c",
      "NtClose.c",
    ],
    needs: ALPC,
    async run(k) {
      const server = k.self.main;
      const client = await k.self.thread();
      const name = await alpcListen(k, server, "accept-long");
      const cm = fresh("acm");
      const pc = client.start(
        "NtAlpcConnectPort",
        arg.out("cli"),
        arg.us(name),
        null,
        arg.buf(fresh("pa"), portAttributes({ maxMessageLength: 0x30 })),
        F.SYNC_REQUEST,
        null,
        arg.buf(cm, alpcMessage("hello", { size: ALPC_BUFFER })),
        arg.buf(`${cm}.len`, u64(BigInt(ALPC_BUFFER))),
        null,
        null,
        null,
      );
      const rq = await alpcReceive(server, "conn");
      const accept = st(
        await server.call(
          "NtAlpcAcceptConnectPort",
          arg.out("al.srv"),
          arg.h("conn"),
          0,
          null,
          null,
          arg.ptr(ALPC_CTX),
          arg.buf(fresh("aacc"), alpcReply(rq, "a reply longer than 8 bytes")),
          null,
          1,
        ),
      );
      const written = server.handleValue("al.srv") !== 0n;
      const close = st(await server.call("NtClose", arg.h("al.srv")));
      await server.call("NtClose", arg.h("conn"));
      await pc.result(3000);
      return {
        expected: {
          accept: "STATUS_BUFFER_TOO_SMALL",
          written: true,
          close: "STATUS_INVALID_HANDLE",
        },
        observed: { accept, written, close },
      };
    },
  },

  // SequenceNo (AlpcpPortQueryBasicInfo.c reads it): AlpcpDispatchConnectionRequest.c counts the
  // connection request on the connection port; AlpcpDispatchReplyToWaitingThread.c counts the
  // connection reply on the client port (the requester's); AlpcpDispatchNewMessage.c counts each
  // client message on the server port and stamps it into the message (the context attribute's
  // Sequence: AlpcpExposeContextAttribute.c).
  {
    name:
      "ALPC sequence numbers: the connection request counts on the connection port, the connection reply on the client port, each client message on the server port (1, 2 in the context attribute)",
    sources: [
      "AlpcpDispatchConnectionRequest.c",
      "AlpcpDispatchReplyToWaitingThread.c",
      "AlpcpDispatchNewMessage.c",
      "AlpcpExposeContextAttribute.c",
      "AlpcpPortQueryBasicInfo.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "seq");
      await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage("a"));
      await alpcSend(link.client, "cli", F.RELEASE_MESSAGE, alpcMessage("b"));
      const seqOf = (r: AlpcReceived) =>
        attributeField(r.attrs!, A.CONTEXT, LAYOUTS.ALPC_CONTEXT_ATTR.offsets.Sequence, 4);
      const a = await alpcReceive(link.server, "conn");
      const b = await alpcReceive(link.server, "conn");
      return {
        expected: { connection: 1, client: 1, server: 2, messages: [1, 2] },
        observed: {
          connection: (await basicInfo(link.server, "conn")).sequenceNo!,
          client: (await basicInfo(link.client, "cli")).sequenceNo!,
          server: (await basicInfo(link.server, "srv")).sequenceNo!,
          messages: [seqOf(a) as number, seqOf(b) as number],
        },
      };
    },
  },

  // AlpcpValidateAndSetPortAttributes.c: NULL client attributes give ALLOW_IMPERSONATION and a QoS
  // with dynamic tracking (ContextTrackingMode 1); AlpcpCreateClientPort.c then marks the port
  // dynamic (0x400). AlpcpImpersonateMessage.c: dynamic tracking impersonates the message's
  // waiting thread, so a synchronous request can be impersonated and a request whose sender does
  // not wait cannot (0xC0000022).
  {
    name:
      "A client connecting with NULL attributes (dynamic tracking): its synchronous request can be impersonated, its asynchronous request cannot (STATUS_ACCESS_DENIED)",
    sources: [
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpCreateClientPort.c",
      "AlpcpImpersonateMessage.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "imp-dyn", { clientAttrs: null });
      const impersonate = async (r: AlpcReceived) => {
        const s = st(
          await link.server.call(
            "NtAlpcImpersonateClientOfPort",
            arg.h("srv"),
            arg.buf(r.buffer),
            null,
          ),
        );
        await link.server.call("NtSetInformationThread", arg.self(), 5, arg.buf(fresh("nt"), 8), 8);
        return s;
      };
      const pr = alpcRequest(link.client, "cli", alpcMessage("sync"));
      const sync = await alpcReceive(link.server, "conn");
      const syncImp = await impersonate(sync);
      await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(sync, "ok"));
      await pr.result(3000);
      const sent = st(await alpcSend(link.client, "cli", 0, alpcMessage("async")));
      const async = await alpcReceive(link.server, "conn");
      const asyncImp = await impersonate(async);
      return {
        expected: {
          sync: "STATUS_SUCCESS",
          sent: "STATUS_SUCCESS",
          asyncType: hex(0x2000 | T.LPC_REQUEST),
          async: "STATUS_ACCESS_DENIED",
        },
        observed: { sync: syncImp, sent, asyncType: hex(async.header.type), async: asyncImp },
      };
    },
  },

  // AlpcpDispatchReplyToPort.c: the reply to a request whose sender does not wait is queued on
  // the requester's client port (no ALLOW_LPC_REQUESTS needed), as LPC_REPLY with RELEASE_MESSAGE,
  // with the request's MessageId, the replier's ClientId and the client port's PortContext (its
  // handle).
  {
    name:
      "The reply to an asynchronous ALPC request is queued on the client port: LPC_REPLY with the request's MessageId and the client port's PortContext",
    sources: ["AlpcpSendMessage.c", "AlpcpDispatchReplyToPort.c", "AlpcpExposeContextAttribute.c"],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "async-reply");
      await alpcSend(link.client, "cli", 0, alpcMessage("later"));
      const r = await alpcReceive(link.server, "conn");
      const replied = st(
        await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "now")),
      );
      const got = await alpcReceive(link.client, "cli");
      const ctx = contextOf(got)!;
      return {
        expected: {
          replied: "STATUS_SUCCESS",
          got: {
            status: "STATUS_SUCCESS",
            type: hex(T.LPC_REPLY),
            dataLength: 3,
            totalLength: HEADER + 3,
          },
          messageId: r.header.messageId,
          tid: link.server.tid,
          portContext: hex(link.client.handleValue("cli")),
        },
        observed: {
          replied,
          got: headerOf(got),
          messageId: got.header.messageId,
          tid: got.header.tid,
          portContext: ctx.portContext!,
        },
      };
    },
  },

  // NtAlpcCreatePortSection.c: Flags other than 0x40000 → 0xC000000D; AlpcpCreateSection.c:
  // SectionSize 0 → 0xC000000D, else rounded up to AlpcpRegionGranularity (the 64 KiB allocation
  // granularity, AlpcpInitSystem.c) into *ActualSectionSize. NtAlpcCreateSectionView.c: the
  // attribute's Flags 0, ViewSize non-zero, ViewBase 0 (else 0xC000000D), a known section
  // handle (else 0xC0000008); AlpcpCreateRegion.c: ViewSize rounded up to a page.
  {
    name:
      "NtAlpcCreatePortSection rounds the size up to 64 KiB and refuses size 0 or unknown flags; NtAlpcCreateSectionView needs ViewBase 0, a non-zero ViewSize and a known section",
    sources: [
      "NtAlpcCreatePortSection.c",
      "AlpcpCreateSection.c",
      "AlpcpInitSystem.c",
      "NtAlpcCreateSectionView.c",
      "AlpcpCreateRegion.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "section");
      const c = link.client;
      const section = async (flags: number, size: number) => {
        const b = fresh("sec");
        const s = await c.call(
          "NtAlpcCreatePortSection",
          arg.h("cli"),
          flags,
          null,
          size,
          arg.buf(b, 8),
          arg.buf(`${b}.size`, 8),
        );
        return {
          status: st(s),
          handle: readUint(await c.read(b), 0, 8) as bigint,
          size: readUint(await c.read(`${b}.size`), 0, 8) as bigint,
        };
      };
      const ok = await section(0, 0x1000);
      const createView = async (f: Parameters<typeof viewAttr>[0]) => {
        const b = fresh("va");
        const s = await c.call("NtAlpcCreateSectionView", arg.h("cli"), 0, arg.buf(b, viewAttr(f)));
        const v = await c.read(b);
        return {
          status: st(s),
          base: readUint(v, LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets.ViewBase, 8) as bigint,
          size: readUint(v, LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets.ViewSize, 8) as bigint,
        };
      };
      const good = await createView({ section: ok.handle, size: 0x1800n });
      return {
        expected: {
          section: { status: "STATUS_SUCCESS", actual: hex(0x10000) },
          sizeZero: "STATUS_INVALID_PARAMETER",
          badFlags: "STATUS_INVALID_PARAMETER",
          view: { status: "STATUS_SUCCESS", baseSet: true, size: hex(0x2000) },
          viewSizeZero: "STATUS_INVALID_PARAMETER",
          viewBaseGiven: "STATUS_INVALID_PARAMETER",
          unknownSection: "STATUS_INVALID_HANDLE",
        },
        observed: {
          section: { status: ok.status, actual: hex(ok.size) },
          sizeZero: (await section(0, 0)).status,
          badFlags: (await section(1, 0x1000)).status,
          view: { status: good.status, baseSet: good.base !== 0n, size: hex(good.size) },
          viewSizeZero: (await createView({ section: ok.handle, size: 0n })).status,
          viewBaseGiven:
            (await createView({ section: ok.handle, size: 0x1000n, base: 0x10000n })).status,
          unknownSection:
            (await createView({ section: ok.handle + 0x1000n, size: 0x1000n })).status,
        },
      };
    },
  },

  // A view round trip. AlpcpCaptureViewAttributeInternal.c: the send's view attribute names the
  // section and the view's base (a NULL base → 0xC0000141; AlpcpLocateSectionView.c finds the
  // view among the sending port's resources). AlpcpCompleteDispatchMessage.c →
  // AlpcpExposeViewAttributeInSenderContext.c: the target port (the connection port) has no view
  // of that region (AlpcpLocateView.c), so AlpcpCreateView.c maps one for it, in its process;
  // AlpcpExposeAttributes.c gives the receiver that view's ViewBase and ViewSize and marks VIEW
  // valid. So the server sees another mapping of the same size, even in the same process.
  {
    name:
      "An ALPC view round trip: a view sent with the view attribute reaches the server as a valid VIEW attribute, a new mapping (another ViewBase) of the same ViewSize; a view attribute with no ViewBase is STATUS_INVALID_ADDRESS",
    sources: [
      "NtAlpcCreatePortSection.c",
      "NtAlpcCreateSectionView.c",
      "AlpcpCaptureViewAttributeInternal.c",
      "AlpcpLocateSectionView.c",
      "AlpcpCompleteDispatchMessage.c",
      "AlpcpExposeViewAttributeInSenderContext.c",
      "AlpcpLocateView.c",
      "AlpcpCreateView.c",
      "AlpcpExposeAttributes.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "view");
      const c = link.client;
      await c.call(
        "NtAlpcCreatePortSection",
        arg.h("cli"),
        0,
        null,
        0x1000,
        arg.buf("sh", 8),
        arg.buf("ss", 8),
      );
      const sh = readUint(await c.read("sh"), 0, 8) as bigint;
      const made = st(
        await c.call(
          "NtAlpcCreateSectionView",
          arg.h("cli"),
          0,
          arg.buf("va", viewAttr({ section: sh, size: 0x1000n })),
        ),
      );
      const va = await c.read("va");
      const VA = LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets;
      const base = readUint(va, VA.ViewBase, 8) as bigint;
      const size = readUint(va, VA.ViewSize, 8) as bigint;
      const withView = (b: bigint) =>
        arg.buf(
          fresh("sva"),
          messageAttributes(A.VIEW, A.VIEW, [{
            flag: A.VIEW,
            bytes: viewAttr({ section: sh, base: b, size }),
          }]),
        );
      const noBase = st(
        await alpcSend(c, "cli", F.RELEASE_MESSAGE, alpcMessage("v"), withView(0n)),
      );
      const pr = alpcRequest(c, "cli", alpcMessage("view"), fresh("arep"), {
        sendAttrs: withView(base),
      });
      const r = await alpcReceive(link.server, "conn", { attributes: (A.VIEW | A.CONTEXT) >>> 0 });
      await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "ok"));
      const client = st(await pr.result(3000));
      return {
        expected: {
          made: "STATUS_SUCCESS",
          noBase: st(NTSTATUS.STATUS_INVALID_ADDRESS),
          received: "STATUS_SUCCESS",
          valid: hex((A.VIEW | A.CONTEXT) >>> 0),
          anotherMapping: true,
          viewSize: hex(size),
          client: "STATUS_SUCCESS",
        },
        observed: {
          made,
          noBase,
          received: r.status,
          valid: hex(validAttributes(r.attrs!)),
          anotherMapping: ((b) => b !== null && b !== 0n && b !== base)(
            attributeField(r.attrs!, A.VIEW, VA.ViewBase, 8),
          ),
          viewSize: hex(attributeField(r.attrs!, A.VIEW, VA.ViewSize, 8) ?? -1n),
          client,
        },
      };
    },
  },

  // MaxViewSize. AlpcpValidateAndSetPortAttributes.c keeps the given MaxViewSize (the port's
  // +304). AlpcpCreateView.c refuses a view larger than its port's non-zero MaxViewSize with
  // STATUS_QUOTA_EXCEEDED (0xC0000044): for NtAlpcCreateSectionView on the client's port
  // (AlpcpCreateSectionView.c), and for the view a message delivers to the connection port
  // (AlpcpExposeViewAttributeInSenderContext.c), which then clears the message's view: the request
  // arrives all the same (AlpcpCompleteDispatchMessage.c ignores the failure), without VIEW.
  {
    name:
      "MaxViewSize: a view above the client port's is STATUS_QUOTA_EXCEEDED; a view above the connection port's is dropped: the request arrives without a VIEW attribute",
    sources: [
      "AlpcpValidateAndSetPortAttributes.c",
      "AlpcpCreateSectionView.c",
      "AlpcpCreateView.c",
      "AlpcpExposeViewAttributeInSenderContext.c",
      "AlpcpCompleteDispatchMessage.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "maxview", {
        portAttrs: { maxViewSize: 0x1000n },
        clientAttrs: { maxViewSize: 0x2000n },
      });
      const c = link.client;
      await c.call(
        "NtAlpcCreatePortSection",
        arg.h("cli"),
        0,
        null,
        0x10000,
        arg.buf("mvsh", 8),
        arg.buf("mvss", 8),
      );
      const sh = readUint(await c.read("mvsh"), 0, 8) as bigint;
      const makeView = (label: string, size: bigint) =>
        c.call(
          "NtAlpcCreateSectionView",
          arg.h("cli"),
          0,
          arg.buf(label, viewAttr({ section: sh, size })),
        );
      const tooBig = st(await makeView("mvva1", 0x3000n));
      const made = st(await makeView("mvva2", 0x2000n));
      const VA = LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets;
      const base = readUint(await c.read("mvva2"), VA.ViewBase, 8) as bigint;
      const pr = alpcRequest(c, "cli", alpcMessage("view"), fresh("mvrep"), {
        sendAttrs: arg.buf(
          fresh("mvsva"),
          messageAttributes(A.VIEW, A.VIEW, [{
            flag: A.VIEW,
            bytes: viewAttr({ section: sh, base, size: 0x2000n }),
          }]),
        ),
      });
      const r = await alpcReceive(link.server, "conn", { attributes: (A.VIEW | A.CONTEXT) >>> 0 });
      await alpcSend(link.server, "conn", F.RELEASE_MESSAGE, alpcReply(r, "ok"));
      const client = st(await pr.result(3000));
      return {
        expected: {
          tooBig: st(0xc0000044),
          made: "STATUS_SUCCESS",
          received: "STATUS_SUCCESS",
          valid: hex(A.CONTEXT),
          client: "STATUS_SUCCESS",
        },
        observed: {
          tooBig,
          made,
          received: r.status,
          valid: hex(validAttributes(r.attrs!)),
          client,
        },
      };
    },
  },

  // NtAlpcDeleteSectionView.c: Flags must be 0; the view at ViewBase among the port's resources,
  // else 0xC0000141 (so a second delete). NtAlpcDeleteSecurityContext.c: the context is looked up
  // in the communication's table (unknown: 0xC0000008) and must have been made on this very port
  // (the server port of the same connection: 0xC0000022). NtAlpcDeletePortSection.c: unknown →
  // 0xC0000008.
  {
    name:
      "Deleting ALPC resources: a view twice (STATUS_INVALID_ADDRESS the second time), a security context through the peer's port (STATUS_ACCESS_DENIED) or unknown (STATUS_INVALID_HANDLE), a section",
    sources: [
      "NtAlpcDeleteSectionView.c",
      "NtAlpcDeleteSecurityContext.c",
      "NtAlpcDeletePortSection.c",
      "AlpcpCreateSecurityContext.c",
    ],
    needs: ALPC,
    async run(k) {
      const link = await alpcConnected(k, "delete");
      const c = link.client;
      await c.call(
        "NtAlpcCreatePortSection",
        arg.h("cli"),
        0,
        null,
        0x1000,
        arg.buf("sh", 8),
        arg.buf("ss", 8),
      );
      const sh = readUint(await c.read("sh"), 0, 8) as bigint;
      await c.call(
        "NtAlpcCreateSectionView",
        arg.h("cli"),
        0,
        arg.buf("va", viewAttr({ section: sh, size: 0x1000n })),
      );
      const base = readUint(
        await c.read("va"),
        LAYOUTS.ALPC_DATA_VIEW_ATTR.offsets.ViewBase,
        8,
      ) as bigint;
      const view = async (flags: number) =>
        st(await c.call("NtAlpcDeleteSectionView", arg.h("cli"), flags, arg.ptr(base)));
      await c.call("NtAlpcCreateSecurityContext", arg.h("cli"), 0, arg.buf("sc", securityAttr()));
      const ctx = readUint(await c.read("sc"), SEC.offsets.ContextHandle, 8) as bigint;
      const context = async (t: typeof c, port: string, handle: bigint) =>
        st(await t.call("NtAlpcDeleteSecurityContext", arg.h(port), 0, arg.ptr(handle)));
      return {
        expected: {
          viewFlags: "STATUS_INVALID_PARAMETER",
          view: "STATUS_SUCCESS",
          viewAgain: st(NTSTATUS.STATUS_INVALID_ADDRESS),
          contextThroughServer: "STATUS_ACCESS_DENIED",
          contextUnknown: "STATUS_INVALID_HANDLE",
          context: "STATUS_SUCCESS",
          sectionUnknown: "STATUS_INVALID_HANDLE",
          section: "STATUS_SUCCESS",
        },
        observed: {
          viewFlags: await view(1),
          view: await view(0),
          viewAgain: await view(0),
          contextThroughServer: await context(link.server, "srv", ctx),
          contextUnknown: await context(c, "cli", ctx + 0x1000n),
          context: await context(c, "cli", ctx),
          sectionUnknown: st(
            await c.call("NtAlpcDeletePortSection", arg.h("cli"), 0, arg.ptr(sh + 0x1000n)),
          ),
          section: st(await c.call("NtAlpcDeletePortSection", arg.h("cli"), 0, arg.ptr(sh))),
        },
      };
    },
  },

  // An ALPC connection port as a process's exception port (NtSetInformationProcess.c case 8 takes
  // any port). DbgkForwardException.c builds LPC_EXCEPTION (0x800D000A8 then Type 7: DataLength
  // 0xA8, TotalLength 0xD0) and DbgkpSendApiMessageLpc.c sends it with LpcSendWaitReceivePort.c:
  // AlpcpProcessSynchronousRequest.c → AlpcpSendMessage.c (an ALPC port, a kernel sender) →
  // AlpcpDispatchNewMessage.c, which sets 0x2000 and the connection port's own PortContext (0:
  // the context attribute is not valid). No attributes are sent with it. An ALPC reply with
  // ReturnedStatus DBG_CONTINUE lets the raise return (DbgkForwardException.c: `>= 0`).
  {
    name:
      "A second-chance exception on an ALPC exception port arrives as LPC_EXCEPTION|0x2000 (0xA8/0xD0, the raiser's process) with no valid attributes, and an ALPC reply with DBG_CONTINUE lets the raise return",
    sources: [
      "NtSetInformationProcess.c",
      "DbgkForwardException.c",
      "DbgkpSendApiMessageLpc.c",
      "LpcSendWaitReceivePort.c",
      "AlpcpProcessSynchronousRequest.c",
      "AlpcpSendMessage.c",
      "AlpcpDispatchNewMessage.c",
    ],
    needs: ["process", "system", "alpc"],
    async run(k) {
      const server = await k.self.thread();
      await alpcListen(k, server, "alpc-ep", {}, "ep");
      await server.becomeSystem();
      const client = await k.spawn();
      const o = await server.openProcess(client, 0x800, "cproc");
      if (o !== 0) throw new Error(`setup: NtOpenProcess -> ${st(o)}`);
      const set = st(
        await server.call(
          "NtSetInformationProcess",
          arg.h("cproc"),
          8,
          arg.buf("epi", u64(server.handleValue("ep"), 0n)),
          16,
        ),
      );
      const t = await client.thread();
      const raised = t.raise(CODE, [0x11n], 4500);
      let r: AlpcReceived | null = null;
      for (const deadline = Date.now() + 3000; Date.now() < deadline;) {
        const got = await alpcReceive(server, "ep", {
          attributes: (A.CONTEXT | A.SECURITY | A.VIEW) >>> 0,
        });
        if (got.status !== "STATUS_SUCCESS") break;
        if ((got.header.type & 0xff) === T.LPC_EXCEPTION) {
          r = got;
          break;
        }
      }
      let reply = "no LPC_EXCEPTION";
      if (r) {
        const data = Uint8Array.from(r.data);
        new DataView(data.buffer).setUint32(
          DBGKM.ReturnedStatus - HEADER,
          NTSTATUS.DBG_CONTINUE,
          true,
        );
        reply = st(await alpcSend(server, "ep", F.RELEASE_MESSAGE, alpcReply(r, data)));
      }
      const outcome = await raised;
      return {
        expected: {
          set: "STATUS_SUCCESS",
          message: {
            status: "STATUS_SUCCESS",
            type: hex(0x2000 | T.LPC_EXCEPTION),
            dataLength: 0xa8,
            totalLength: 0xd0,
          },
          pid: client.pid,
          code: hex(CODE),
          valid: hex(0),
          reply: "STATUS_SUCCESS",
          outcome: "returned",
        },
        observed: {
          set,
          message: r ? headerOf(r) : "none",
          pid: r?.header.pid ?? 0,
          code: r
            ? hex(
              readUint(
                Uint8Array.from(r.data),
                DBGKM.ExceptionRecord + ER.ExceptionCode - HEADER,
                4,
              ),
            )
            : null,
          valid: r?.attrs ? hex(validAttributes(r.attrs)) : null,
          reply,
          outcome: outcome.outcome,
        },
      };
    },
  },
];

void u64;
void utf8;
