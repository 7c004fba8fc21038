/**
 * The ALPC scenario steps the ALPC cases share: a connection port, a connect that is accepted or
 * refused, a receive with attributes, a send. They chain the `NtAlpc*` calls an ALPC server and
 * client make, so they run the same on the fake kernel and on Windows.
 *
 * @module
 */

import { AlpcAttributeFlags as A, AlpcMessageFlags as F } from "../../ffi/alpc/constants.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { arg } from "./types.ts";
import type { Arg, Json, Kernel, Pending, Thread } from "./types.ts";
import { HEADER, hex, message, rawHeader, readUint, st, u64, utf8 } from "./_util.ts";
import type { RawHeader } from "./_util.ts";
import { attributeField, messageAttributes, portAttributes, validAttributes } from "./_alpc.ts";
import type { PortAttributesInit } from "./_alpc.ts";
import { fresh } from "./_scenario.ts";

const CTX = LAYOUTS.ALPC_CONTEXT_ATTR;

/** A receive buffer big enough for any message the cases send (header + 0x200 bytes). */
export const ALPC_BUFFER = HEADER + 0x200;

/** The PortContext the ALPC cases accept with. */
export const ALPC_CTX = 0xA1BC0000n;

/** Creates a named ALPC connection port as handle `conn` on `server`; returns its name. */
export async function alpcListen(
  k: Kernel,
  server: Thread,
  label: string,
  attrs: PortAttributesInit | null = {},
  conn = "conn",
): Promise<string> {
  const name = k.portName(label);
  const s = await server.call(
    "NtAlpcCreatePort",
    arg.out(conn),
    arg.oa(name),
    attrs === null ? null : arg.buf(fresh("pa"), portAttributes(attrs)),
  );
  if (s !== NTSTATUS.STATUS_SUCCESS) throw new Error(`setup: NtAlpcCreatePort -> ${st(s)}`);
  return name;
}

/** What one ALPC receive came to. */
export interface AlpcReceived {
  status: string;
  buffer: string;
  header: RawHeader;
  data: number[];
  /** The receive attributes buffer after the call (when one was given). */
  attrs: Uint8Array | null;
  /** `*BufferLength` after the call (when one was given). */
  length: bigint | null;
}

/** How {@link alpcReceive} receives. */
export interface AlpcReceiveOptions {
  /** AllocatedAttributes of the receive attributes (default CONTEXT; null: no attributes). */
  attributes?: number | null;
  /** `*BufferLength` (default the buffer's size; null passes NULL). */
  length?: bigint | null;
  /** The timeout in ms (default 2000; null: none, wait). */
  ms?: number | null;
  /** The receive buffer's name (default fresh). */
  buffer?: string;
}

/** `NtAlpcSendWaitReceivePort(port, 0, NULL, NULL, buffer, &length, attrs, timeout)` on `t`. */
export async function alpcReceive(
  t: Thread,
  port: string,
  o: AlpcReceiveOptions = {},
): Promise<AlpcReceived> {
  const buffer = o.buffer ?? fresh("arx");
  const lenName = `${buffer}.len`;
  const attrName = `${buffer}.attrs`;
  const allocated = o.attributes === undefined ? A.CONTEXT : o.attributes;
  const length = o.length === undefined ? BigInt(ALPC_BUFFER) : o.length;
  const ms = o.ms === undefined ? 2000 : o.ms;
  const p = t.start(
    "NtAlpcSendWaitReceivePort",
    arg.h(port),
    0,
    null,
    null,
    arg.buf(buffer, ALPC_BUFFER),
    length === null ? null : arg.buf(lenName, u64(length)),
    allocated === null ? null : arg.buf(attrName, messageAttributes(allocated)),
    ms === null ? null : arg.timeout(ms),
  );
  const result = await p.result(Math.min((ms ?? 3000) + 2000, 5000));
  const returned = typeof result === "number";
  const bytes = returned ? await t.read(buffer) : new Uint8Array(ALPC_BUFFER);
  const header = rawHeader(bytes);
  return {
    status: st(result),
    buffer,
    header,
    data: [...bytes.subarray(HEADER, HEADER + Math.min(header.dataLength, ALPC_BUFFER - HEADER))],
    attrs: returned && allocated !== null ? await t.read(attrName) : null,
    length: returned && length !== null ? readUint(await t.read(lenName), 0, 8) as bigint : null,
  };
}

/** The context attribute of a receive, as the cases report it. */
export function contextOf(r: AlpcReceived): { [key: string]: Json } | null {
  if (!r.attrs) return null;
  const f = (off: number, n: 4 | 8) => attributeField(r.attrs!, A.CONTEXT, off, n);
  const pc = f(CTX.offsets.PortContext, 8);
  return {
    valid: hex(validAttributes(r.attrs)),
    portContext: pc === null ? null : hex(pc),
    messageId: f(CTX.offsets.MessageId, 4) as number,
    callbackId: f(CTX.offsets.CallbackId, 4) as number,
  };
}

/** A message to send: a clean header (DataLength, TotalLength) and `data`. */
export function alpcMessage(
  data: Uint8Array | string,
  init: Parameters<typeof message>[0] = {},
): Uint8Array {
  return message({ ...init, data: typeof data === "string" ? utf8(data) : data });
}

/** A reply to a received message: its MessageId and CallbackId, a clean ClientId, `data`. */
export function alpcReply(r: AlpcReceived, data: Uint8Array | string): Uint8Array {
  return alpcMessage(data, { messageId: r.header.messageId, callbackId: r.header.callbackId });
}

/** `NtAlpcSendWaitReceivePort(port, flags, msg, attrs, NULL, NULL, NULL, NULL)` on `t`. */
export function alpcSend(
  t: Thread,
  port: string,
  flags: number,
  msg: Uint8Array,
  attrs: Arg = null,
): Promise<number> {
  return t.call(
    "NtAlpcSendWaitReceivePort",
    arg.h(port),
    flags,
    arg.buf(fresh("atx"), msg),
    attrs,
    null,
    null,
    null,
    null,
  );
}

/**
 * Starts a synchronous request (`SYNC_REQUEST`) of `msg` on `t`; the reply goes to `reply`
 * (`reply.len` holds `*BufferLength`, `reply.attrs` the receive attributes, CONTEXT).
 */
export function alpcRequest(
  t: Thread,
  port: string,
  msg: Uint8Array,
  reply: string = fresh("arep"),
  o: { sendAttrs?: Arg; length?: bigint; flags?: number } = {},
): Pending {
  return t.start(
    "NtAlpcSendWaitReceivePort",
    arg.h(port),
    (o.flags ?? 0) | F.SYNC_REQUEST,
    arg.buf(fresh("atx"), msg),
    o.sendAttrs ?? null,
    arg.buf(reply, ALPC_BUFFER),
    arg.buf(`${reply}.len`, u64(o.length ?? BigInt(ALPC_BUFFER))),
    arg.buf(`${reply}.attrs`, messageAttributes(A.CONTEXT)),
    null,
  );
}

/** How {@link alpcConnect} connects. */
export interface AlpcConnectOptions {
  /** The client thread (default: a new thread of the suite's process). */
  client?: Thread;
  /** The server thread (default `k.self.main`). */
  server?: Thread;
  /** The connection port's attributes (default `{}`: MaxMessageLength 0x1000, no flags). */
  portAttrs?: PortAttributesInit | null;
  /** The client port's attributes (default `{}`; null passes NULL). */
  clientAttrs?: PortAttributesInit | null;
  /** The server port's attributes (default `{}`; null passes NULL). */
  serverAttrs?: PortAttributesInit | null;
  /** PortContext given to the accept (default {@link ALPC_CTX}; null passes NULL). */
  context?: bigint | null;
  /** Accept (default) or refuse. */
  accept?: boolean;
  /** The client's connection data (default "hello"). */
  data?: string;
  /** The server's connection reply data (default "welcome"). */
  replyData?: string;
}

/** An ALPC connection, with what its setup saw. */
export interface AlpcConnection {
  server: Thread;
  client: Thread;
  name: string;
  /** "ok", or the first step that did not succeed and what it returned. */
  setup: string;
  /** The server's receive of the connection request. */
  request: AlpcReceived;
  /** What the client's NtAlpcConnectPort returned. */
  connect: string;
  /** What the accept returned. */
  accept: string;
  /** Handle names: "conn", "srv" (server's process), "cli" (client's). */
  conn: string;
  srv: string;
  cli: string;
  /** The client's ConnectionMessage buffer name (the reply is copied there). */
  connBuffer: string;
}

/**
 * Creates the connection port, starts `NtAlpcConnectPort(SYNC_REQUEST)` on the client, receives
 * the connection request, accepts (or refuses) it with a PortContext and waits for the connect.
 */
export async function alpcConnect(
  k: Kernel,
  label: string,
  o: AlpcConnectOptions = {},
): Promise<AlpcConnection> {
  const server = o.server ?? k.self.main;
  const client = o.client ?? await k.self.thread();
  const name = await alpcListen(k, server, label, o.portAttrs === undefined ? {} : o.portAttrs);
  const connBuffer = fresh("acm");
  const base = {
    server,
    client,
    name,
    conn: "conn",
    srv: "srv",
    cli: "cli",
    connBuffer,
  };
  const pc = client.start(
    "NtAlpcConnectPort",
    arg.out("cli"),
    arg.us(name),
    null,
    o.clientAttrs === null ? null : arg.buf(fresh("pa"), portAttributes(o.clientAttrs ?? {})),
    F.SYNC_REQUEST,
    null,
    arg.buf(connBuffer, alpcMessage(o.data ?? "hello", { size: ALPC_BUFFER })),
    arg.buf(`${connBuffer}.len`, u64(BigInt(ALPC_BUFFER))),
    null,
    null,
    null,
  );
  const request = await alpcReceive(server, "conn");
  if (request.status !== "STATUS_SUCCESS") {
    return { ...base, setup: `receive: ${request.status}`, request, connect: "-", accept: "-" };
  }
  const accept = st(
    await server.call(
      "NtAlpcAcceptConnectPort",
      arg.out("srv"),
      arg.h("conn"),
      0,
      null,
      o.serverAttrs === null ? null : arg.buf(fresh("pa"), portAttributes(o.serverAttrs ?? {})),
      o.context === null ? null : arg.ptr(o.context ?? ALPC_CTX),
      arg.buf(fresh("aacc"), alpcReply(request, o.replyData ?? "welcome")),
      null,
      o.accept === false ? 0 : 1,
    ),
  );
  const connect = st(await pc.result(3000));
  const want = o.accept === false ? "STATUS_PORT_CONNECTION_REFUSED" : "STATUS_SUCCESS";
  const setup = accept !== "STATUS_SUCCESS"
    ? `accept: ${accept}`
    : connect !== want
    ? `connect: ${connect}`
    : "ok";
  return { ...base, setup, request, connect, accept };
}

/** {@link alpcConnect} for a case about something else: a failing setup throws. */
export async function alpcConnected(
  k: Kernel,
  label: string,
  o: AlpcConnectOptions = {},
): Promise<AlpcConnection> {
  const link = await alpcConnect(k, label, o);
  if (link.setup !== "ok") throw new Error(`setup: ${link.setup}`);
  return link;
}

/** `NtAlpcQueryInformation(port, AlpcBasicInformation)` on `t`: status, Flags, SequenceNo, PortContext. */
export async function basicInfo(t: Thread, port: string): Promise<{ [key: string]: Json }> {
  const B = LAYOUTS.ALPC_BASIC_INFORMATION;
  const buf = fresh("abi");
  const s = await t.call(
    "NtAlpcQueryInformation",
    arg.h(port),
    0,
    arg.buf(buf, B.size),
    B.size,
    arg.buf(`${buf}.ret`, 4),
  );
  const b = await t.read(buf);
  return {
    status: st(s),
    flags: hex(readUint(b, B.offsets.Flags, 4)),
    sequenceNo: readUint(b, B.offsets.SequenceNo, 4) as number,
    portContext: hex(readUint(b, B.offsets.PortContext, 8)),
  };
}
