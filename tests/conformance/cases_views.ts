/**
 * Conformance cases: legacy port views, the `PORT_VIEW` a client (or server) names in
 * `NtConnectPort` (`NtAcceptConnectPort`) and the `REMOTE_PORT_VIEW` the other side gets. Each
 * case cites the Windows 11 kernel functions it is read from (`ntoskrnl/` of the decompiled
 * pseudocode). Addresses differ between processes on Windows and are one buffer in the fake, so
 * the cases compare sizes, lengths and bytes, and only ask addresses to be non-zero.
 *
 * @module
 */

import { LAYOUTS } from "../../ffi/layouts.ts";
import { arg } from "./types.ts";
import type { Case, Json, Kernel, Thread } from "./types.ts";
import { HEADER, hex, message, pattern, readUint, replyTo, st, u64 } from "./_util.ts";
import { fresh, receive, RECEIVE_BUFFER } from "./_scenario.ts";

const PV = LAYOUTS.PORT_VIEW;
const RPV = LAYOUTS.REMOTE_PORT_VIEW;
const PM = LAYOUTS.PORT_MESSAGE;
/** `SECTION_QUERY | SECTION_MAP_WRITE | SECTION_MAP_READ`, `PAGE_READWRITE`, `SEC_COMMIT`. */
const SECTION_ACCESS = 7;
const PAGE_READWRITE = 4;
const SEC_COMMIT = 0x8000000;

/** A PORT_VIEW: Length (48 unless told), SectionHandle, SectionOffset, ViewSize. */
function portView(section: bigint, viewSize: bigint, length: number = PV.size): Uint8Array {
  const b = new Uint8Array(PV.size).fill(0xcc);
  const v = new DataView(b.buffer);
  v.setUint32(PV.offsets.Length, length, true);
  v.setUint32(PV.offsets.Length + 4, 0, true);
  v.setBigUint64(PV.offsets.SectionHandle, section, true);
  v.setUint32(PV.offsets.SectionOffset, 0, true);
  v.setUint32(PV.offsets.SectionOffset + 4, 0, true);
  v.setBigUint64(PV.offsets.ViewSize, viewSize, true);
  return b;
}

/** A REMOTE_PORT_VIEW for the kernel to fill: Length (24 unless told), the rest 0xCC. */
function remoteView(length: number = RPV.size): Uint8Array {
  const b = new Uint8Array(RPV.size).fill(0xcc);
  new DataView(b.buffer).setUint32(RPV.offsets.Length, length, true);
  return b;
}

/** What a PORT_VIEW says (addresses only as "non-zero"). */
function readPv(b: Uint8Array): { [key: string]: Json } {
  return {
    length: readUint(b, PV.offsets.Length, 4) as number,
    viewSize: hex(readUint(b, PV.offsets.ViewSize, 8)),
    viewBase: readUint(b, PV.offsets.ViewBase, 8) !== 0n,
    viewRemoteBase: readUint(b, PV.offsets.ViewRemoteBase, 8) !== 0n,
  };
}

/** What a REMOTE_PORT_VIEW says: every byte when it is all zeros, else its fields. */
function readRpv(b: Uint8Array): Json {
  if (b.subarray(0, RPV.size).every((x) => x === 0)) return "all zeros";
  return {
    length: readUint(b, RPV.offsets.Length, 4) as number,
    viewSize: hex(readUint(b, RPV.offsets.ViewSize, 8)),
    viewBase: readUint(b, RPV.offsets.ViewBase, 8) !== 0n,
  };
}

/** `NtCreateSection` of `size` bytes on `t` (page file, read-write, committed) as handle `name`. */
async function createSection(t: Thread, name: string, size: bigint): Promise<string> {
  return st(
    await t.call(
      "NtCreateSection",
      arg.out(name),
      SECTION_ACCESS,
      null,
      arg.buf(fresh("secsize"), u64(size)),
      PAGE_READWRITE,
      SEC_COMMIT,
      null,
    ),
  );
}

/** How {@link viewConnect} connects. */
interface ViewConnect {
  label: string;
  /** The client thread (default: a new thread of the suite's process). */
  client?: Thread;
  /** The client's section size; 0n: no section, the PORT_VIEW names handle `sectionHandle`. */
  sectionSize: bigint;
  /** The PORT_VIEW's ViewSize (null: no PORT_VIEW at all). */
  viewSize: bigint | null;
  /** A server view: its section size and ViewSize. */
  serverView?: { sectionSize: bigint; viewSize: bigint };
}

/** What {@link viewConnect} saw. */
interface ViewLink {
  server: Thread;
  client: Thread;
  section: string;
  connect: string;
  /** The request's status, its ClientViewSize, and the accept's status ("-" when not reached). */
  request: string;
  clientViewSize: Json;
  accept: string;
  /** The client's PORT_VIEW as sent, and the buffers after the calls. */
  sentPv: Uint8Array | null;
  clientPv: Uint8Array | null;
  clientRpv: Uint8Array;
  serverRpv: Uint8Array;
  serverPv: Uint8Array | null;
  /** Handle names. */
  srv: string;
  cli: string;
}

/**
 * The client makes a section and connects with a PORT_VIEW of it (and a ServerView to fill); the
 * server receives the request and accepts with a ClientView to fill (and its own PORT_VIEW if
 * asked).
 */
async function viewConnect(k: Kernel, o: ViewConnect): Promise<ViewLink> {
  const server = k.self.main;
  const client = o.client ?? await k.self.thread();
  const name = k.portName(o.label);
  const created = st(await server.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0));
  if (created !== "STATUS_SUCCESS") throw new Error(`setup: NtCreatePort ${created}`);
  const section = o.sectionSize > 0n ? await createSection(client, "sec", o.sectionSize) : "-";
  const pv = o.viewSize === null
    ? null
    : portView(o.sectionSize > 0n ? client.handleValue("sec") : 0n, o.viewSize);
  const pc = client.start(
    "NtConnectPort",
    arg.out("cli"),
    arg.us(name),
    arg.qos(),
    pv ? arg.buf("c_pv", pv) : null,
    arg.buf("c_rpv", remoteView()),
    null,
    null,
    null,
  );
  const rq = await receive(server, "conn", { buffer: "s_crq", ms: 1000 });
  let accept = "-";
  let serverPv: Uint8Array | null = null;
  if (rq.status === "STATUS_SUCCESS") {
    let spv: Uint8Array | null = null;
    if (o.serverView) {
      await createSection(server, "ssec", o.serverView.sectionSize);
      spv = portView(server.handleValue("ssec"), o.serverView.viewSize);
    }
    accept = st(
      await server.call(
        "NtAcceptConnectPort",
        arg.out("srv"),
        arg.ptr(0x7ee0n),
        arg.buf("s_crq"),
        1,
        spv ? arg.buf("s_pv", spv) : null,
        arg.buf("s_rpv", remoteView()),
      ),
    );
    if (accept === "STATUS_SUCCESS") await server.call("NtCompleteConnectPort", arg.h("srv"));
    if (spv) serverPv = await server.read("s_pv");
  }
  const connect = st(await pc.result(3000));
  return {
    server,
    client,
    section,
    connect,
    request: rq.status,
    clientViewSize: rq.status === "STATUS_SUCCESS" ? hex(rq.header.clientViewSize) : "-",
    accept,
    sentPv: pv,
    clientPv: pv ? await client.read("c_pv") : null,
    clientRpv: await client.read("c_rpv"),
    serverRpv: accept === "-" ? new Uint8Array(0) : await server.read("s_rpv"),
    serverPv,
    srv: "srv",
    cli: "cli",
  };
}

export const cases: Case[] = [
  {
    name:
      "A client view: Length 48, ViewBase, the page-rounded ViewSize and ViewRemoteBase come back; the request carries ClientViewSize; the server's ClientView has Length 24 and that size",
    sources: [
      "NtSecureConnectPort.c",
      "AlpcpFormatConnectionRequest.c",
      "AlpcpMapLegacyPortView.c",
      "AlpcpMapLegacyPortRemoteView.c",
      "AlpcpReceiveLegacyConnectionReply.c",
      "AlpcpQueryRemoteView.c",
    ],
    needs: ["process"],
    async run(k) {
      const p = await k.spawn();
      const l = await viewConnect(k, {
        label: "view-fill",
        client: p.main,
        sectionSize: 0x3000n,
        viewSize: 0x2800n,
      });
      const observed = {
        section: l.section,
        connect: l.connect,
        request: l.request,
        clientViewSize: l.clientViewSize,
        accept: l.accept,
        clientPortView: readPv(l.clientPv!),
        serverClientView: readRpv(l.serverRpv),
        clientServerView: readRpv(l.clientRpv),
      };
      const expected = {
        section: "STATUS_SUCCESS",
        connect: "STATUS_SUCCESS",
        request: "STATUS_SUCCESS",
        clientViewSize: "0x3000",
        accept: "STATUS_SUCCESS",
        clientPortView: { length: 48, viewSize: "0x3000", viewBase: true, viewRemoteBase: true },
        serverClientView: { length: 24, viewSize: "0x3000", viewBase: true },
        clientServerView: "all zeros",
      };
      return { expected, observed };
    },
  },
  {
    name:
      "A view round trip: a request the client builds in its view is read back by the server at the same offset of its own mapping",
    sources: [
      "AlpcpCreateView.c",
      "AlpcpExposeViewAttributeInSenderContext.c",
      "AlpcpMapLegacyPortRemoteView.c",
    ],
    needs: ["process"],
    async run(k) {
      const p = await k.spawn();
      const l = await viewConnect(k, {
        label: "view-trip",
        client: p.main,
        sectionSize: 0x4000n,
        viewSize: 0x4000n,
      });
      if (l.connect !== "STATUS_SUCCESS") throw new Error(`setup: connect ${l.connect}`);
      const clientBase = readUint(l.clientPv!, PV.offsets.ViewBase, 8) as bigint;
      const serverBase = readUint(l.serverRpv, RPV.offsets.ViewBase, 8) as bigint;
      const at = 0x1230n;
      const data = pattern(200, 0x40);
      // The client's request lives in the view: the kernel copies it from there.
      const rq = l.client.start(
        "NtRequestWaitReplyPort",
        arg.h(l.cli),
        arg.mem("c_req", clientBase + at, HEADER + data.byteLength, message({ data })),
        arg.buf("c_reply", RECEIVE_BUFFER),
      );
      const got = await receive(l.server, "conn", { ms: 2000 });
      // The server replies from its own mapping at the same offset, writing only the header:
      // the 200 bytes after it are whatever the view holds there.
      const header = replyTo(got.bytes, new Uint8Array(data.byteLength)).subarray(0, HEADER);
      const replied = st(
        await l.server.call(
          "NtReplyPort",
          arg.h(l.srv),
          arg.mem("s_reply", serverBase + at, HEADER + data.byteLength, header),
        ),
      );
      const request = st(await rq.result(3000));
      const reply = await l.client.read("c_reply");
      const replyLength = (readUint(reply, PM.offsets.DataLength, 4) as number) & 0xffff;
      return {
        expected: {
          receivedData: true,
          replied: "STATUS_SUCCESS",
          request: "STATUS_SUCCESS",
          replyData: [...data.subarray(0, 8)],
          replyLength: data.byteLength,
          sameBytes: true,
        },
        observed: {
          receivedData: got.data.length === data.byteLength &&
            got.data.every((b, i) => b === data[i]),
          replied,
          request,
          replyData: [...reply.subarray(HEADER, HEADER + 8)],
          replyLength,
          sameBytes: reply.subarray(HEADER, HEADER + data.byteLength).every((b, i) =>
            b === data[i]
          ),
        },
      };
    },
  },
  {
    name:
      "A view larger than its section fails NtConnectPort with STATUS_INSUFFICIENT_RESOURCES; the server never sees a request",
    sources: ["AlpcpMapLegacyPortView.c", "AlpcpFormatConnectionRequest.c"],
    async run(k) {
      const l = await viewConnect(k, {
        label: "view-big",
        sectionSize: 0x2000n,
        viewSize: 0x3000n,
      });
      return {
        expected: {
          section: "STATUS_SUCCESS",
          connect: "STATUS_INSUFFICIENT_RESOURCES",
          request: "STATUS_TIMEOUT",
          clientPortViewUntouched: true,
        },
        observed: {
          section: l.section,
          connect: l.connect,
          request: l.request,
          clientPortViewUntouched: l.clientPv!.every((b, i) => b === l.sentPv![i]),
        },
      };
    },
  },
  {
    name: "A ViewSize of 0 maps the rest of the section",
    sources: ["AlpcpMapLegacyPortView.c", "AlpcpCreateSectionView.c"],
    async run(k) {
      const l = await viewConnect(k, { label: "view-zero", sectionSize: 0x5000n, viewSize: 0n });
      return {
        expected: {
          connect: "STATUS_SUCCESS",
          clientViewSize: "0x5000",
          viewSize: "0x5000",
          serverViewSize: "0x5000",
        },
        observed: {
          connect: l.connect,
          clientViewSize: l.clientViewSize,
          viewSize: hex(readUint(l.clientPv!, PV.offsets.ViewSize, 8)),
          serverViewSize: hex(readUint(l.serverRpv, RPV.offsets.ViewSize, 8)),
        },
      };
    },
  },
  {
    name:
      "NtConnectPort checks the views' lengths first: a PORT_VIEW of Length 40, or a ServerView of Length 0, is STATUS_INVALID_PARAMETER even for a port that does not exist",
    sources: ["NtSecureConnectPort.c"],
    async run(k) {
      const c = await k.self.thread();
      const missing = k.portName("view-nowhere");
      const tryConnect = async (pv: Uint8Array | null, rpv: Uint8Array | null) =>
        st(
          await c.call(
            "NtConnectPort",
            arg.out(fresh("cli")),
            arg.us(missing),
            arg.qos(),
            pv ? arg.buf(fresh("pv"), pv) : null,
            rpv ? arg.buf(fresh("rpv"), rpv) : null,
            null,
            null,
            null,
          ),
        );
      return {
        expected: {
          plain: "STATUS_OBJECT_NAME_NOT_FOUND",
          portView40: "STATUS_INVALID_PARAMETER",
          serverView0: "STATUS_INVALID_PARAMETER",
        },
        observed: {
          plain: await tryConnect(null, remoteView()),
          portView40: await tryConnect(portView(0n, 0x1000n, 40), null),
          serverView0: await tryConnect(null, remoteView(0)),
        },
      };
    },
  },
  {
    name:
      "A PORT_VIEW with a NULL SectionHandle is STATUS_INVALID_HANDLE; one naming a port is STATUS_OBJECT_TYPE_MISMATCH",
    sources: ["AlpcpMapLegacyPortView.c", "ObReferenceObjectByHandle.c"],
    async run(k) {
      const s = k.self.main;
      const c = await k.self.thread();
      const name = k.portName("view-handle");
      await s.call("NtCreatePort", arg.out("conn"), arg.oa(name), 0, 0x148, 0);
      const tryConnect = async (section: bigint) =>
        st(
          await c.call(
            "NtConnectPort",
            arg.out(fresh("cli")),
            arg.us(name),
            arg.qos(),
            arg.buf(fresh("pv"), portView(section, 0x1000n)),
            null,
            null,
            null,
            null,
          ),
        );
      const nullHandle = await tryConnect(0n);
      // The connection port's handle: a valid handle of this process, of the wrong type.
      const portHandle = await tryConnect(s.handleValue("conn"));
      const rq = await receive(s, "conn", { ms: 200 });
      return {
        expected: {
          nullHandle: "STATUS_INVALID_HANDLE",
          portHandle: "STATUS_OBJECT_TYPE_MISMATCH",
          serverSaw: "STATUS_TIMEOUT",
        },
        observed: { nullHandle, portHandle, serverSaw: rq.status },
      };
    },
  },
  {
    name:
      "Without a client view the server's ClientView and the client's ServerView are written all zeros",
    sources: [
      "AlpcpAcceptConnectPort.c",
      "NtSecureConnectPort.c",
      "AlpcpReceiveLegacyConnectionReply.c",
    ],
    async run(k) {
      const l = await viewConnect(k, { label: "view-none", sectionSize: 0n, viewSize: null });
      return {
        expected: {
          connect: "STATUS_SUCCESS",
          clientViewSize: "0x0",
          serverClientView: "all zeros",
          clientServerView: "all zeros",
        },
        observed: {
          connect: l.connect,
          clientViewSize: l.clientViewSize,
          serverClientView: readRpv(l.serverRpv),
          clientServerView: readRpv(l.clientRpv),
        },
      };
    },
  },
  {
    name:
      "NtAcceptConnectPort checks its views' lengths before the message: a ClientView of Length 0 is STATUS_INVALID_PARAMETER even with MessageId 0",
    sources: ["NtAcceptConnectPort.c", "AlpcpAcceptConnectPort.c"],
    async run(k) {
      const s = k.self.main;
      const accept = async (rpv: Uint8Array | null) =>
        st(
          await s.call(
            "NtAcceptConnectPort",
            arg.out(fresh("srv")),
            null,
            arg.buf(fresh("crq"), message({})),
            1,
            null,
            rpv ? arg.buf(fresh("rpv"), rpv) : null,
          ),
        );
      return {
        expected: {
          plain: "STATUS_REPLY_MESSAGE_MISMATCH",
          clientView0: "STATUS_INVALID_PARAMETER",
          serverView40: "STATUS_INVALID_PARAMETER",
        },
        observed: {
          plain: await accept(remoteView()),
          clientView0: await accept(remoteView(0)),
          serverView40: st(
            await s.call(
              "NtAcceptConnectPort",
              arg.out(fresh("srv")),
              null,
              arg.buf(fresh("crq"), message({})),
              1,
              arg.buf(fresh("spv"), portView(0n, 0x1000n, 40)),
              null,
            ),
          ),
        },
      };
    },
  },
  {
    name:
      "A server view at accept: the server's PORT_VIEW gets Length 48, ViewBase, the page-rounded size and ViewRemoteBase; the client's ServerView gets Length 24 and that size",
    sources: [
      "AlpcpAcceptConnectPort.c",
      "AlpcpMapLegacyPortView.c",
      "AlpcpMapLegacyPortRemoteView.c",
      "AlpcpReceiveLegacyConnectionReply.c",
    ],
    needs: ["process"],
    async run(k) {
      const p = await k.spawn();
      const l = await viewConnect(k, {
        label: "view-server",
        client: p.main,
        sectionSize: 0n,
        viewSize: null,
        serverView: { sectionSize: 0x2000n, viewSize: 0x1800n },
      });
      return {
        expected: {
          accept: "STATUS_SUCCESS",
          connect: "STATUS_SUCCESS",
          serverPortView: { length: 48, viewSize: "0x2000", viewBase: true, viewRemoteBase: true },
          clientServerView: { length: 24, viewSize: "0x2000", viewBase: true },
          serverClientView: "all zeros",
        },
        observed: {
          accept: l.accept,
          connect: l.connect,
          serverPortView: readPv(l.serverPv!),
          clientServerView: readRpv(l.clientRpv),
          serverClientView: readRpv(l.serverRpv),
        },
      };
    },
  },
];
