/**
 * The scenario steps the cases share: receiving a message, connecting a client, sending a
 * request, and how a case reports the kernel's own notifications (`LPC_CLIENT_DIED`,
 * `LPC_PORT_CLOSED`). They only chain the ntdll-shaped calls a real server and client make, so
 * they run the same on both kernels.
 *
 * @module
 */

import { LAYOUTS } from "../../ffi/layouts.ts";
import { LpcMessageType as T, PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH } from "../../ffi/port_message.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { arg } from "./types.ts";
import type { Arg, Json, Kernel, Pending, Thread } from "./types.ts";
import { HEADER, hex, message, rawHeader, readUint, st, utf8 } from "./_util.ts";
import type { RawHeader } from "./_util.ts";

const DIED = LAYOUTS.LPC_CLIENT_DIED_MSG;

/**
 * The size of every receive and reply buffer: `PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH` (0x2B0 on x64)
 * holds any legacy message, a 648-byte one and connection requests included.
 */
export const RECEIVE_BUFFER: number = PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH;

/** The PortContext the death and exception scenarios accept their connections with. */
export const CTX = 0xC0FFEE00n;

let serial = 0;
/** A buffer name not used before (buffers are reused by name, and the kernel writes into some). */
export const fresh = (prefix: string): string => `${prefix}${++serial}`;

/** What one receive came to: its status, the message and the PortContext. */
export interface Received {
  /** What the call returned: `STATUS_SUCCESS`, another status's name, `"blocked"` or `"killed"`. */
  status: string;
  /** The receive buffer's name in the receiving thread's process (to accept or reply to it). */
  buffer: string;
  /** Its header, raw (that of the untouched buffer when the call did not return). */
  header: RawHeader;
  /** The PortContext the receive wrote. */
  context: bigint;
  /** The whole receive buffer as it is after the call. */
  bytes: Uint8Array;
  /** The header and the DataLength bytes after it (a copy, cut at the buffer's end). */
  message: Uint8Array;
  /** The DataLength bytes after the header. */
  data: number[];
}

/** How {@link receive} receives. */
export interface ReceiveOptions {
  /** The receive buffer's name (default: a fresh one); the PortContext goes to `buffer.ctx`. */
  buffer?: string;
  /** The receive's timeout (default 2 s). */
  ms?: number;
  /** The byte the receive buffer is filled with before the call (default 0). */
  fill?: number;
}

/** `NtReplyWaitReceivePortEx(port, &ctx, NULL, buffer, ms)` on `t`, into fresh buffer contents. */
export async function receive(
  t: Thread,
  port: string,
  opts: ReceiveOptions = {},
): Promise<Received> {
  const buffer = opts.buffer ?? fresh("rx");
  const ms = opts.ms ?? 2000;
  const init = new Uint8Array(RECEIVE_BUFFER).fill(opts.fill ?? 0);
  const p = t.start(
    "NtReplyWaitReceivePortEx",
    arg.h(port),
    arg.buf(`${buffer}.ctx`, 8),
    null,
    arg.buf(buffer, init),
    arg.timeout(ms),
  );
  const result = await p.result(Math.min(ms + 2000, 5000));
  // A call that has not returned (still waiting, or its thread ended) has written nothing yet.
  const returned = typeof result === "number";
  const bytes = returned ? await t.read(buffer) : init;
  const context = returned ? readUint(await t.read(`${buffer}.ctx`), 0, 8) as bigint : 0n;
  const header = rawHeader(bytes);
  const msg = bytes.slice(0, HEADER + header.dataLength);
  return {
    status: st(result),
    buffer,
    header,
    context,
    bytes,
    message: msg,
    data: [...msg.subarray(HEADER)],
  };
}

/** The message type (low byte) a receive got, or its status when it got none. */
export const typeOrStatus = (r: Received): number | string =>
  r.status === "STATUS_SUCCESS" ? r.header.type & 0xff : r.status;

/** Receives until a receive fails (each waits `ms`), `until` holds, or `max` messages came. */
export async function collect(
  t: Thread,
  port: string,
  opts: { ms?: number; max?: number; until?: (got: Received[]) => boolean } = {},
): Promise<Received[]> {
  const got: Received[] = [];
  const max = opts.max ?? 24;
  while (got.length < max && !(opts.until?.(got) ?? false)) {
    const r = await receive(t, port, { ms: opts.ms ?? 1000 });
    if (r.status !== "STATUS_SUCCESS") break;
    got.push(r);
  }
  return got;
}

/** Creates a named connection port as handle `handle` on `server`; returns its name. */
export async function listen(
  k: Kernel,
  server: Thread,
  label: string,
  handle: string,
  maxMessageLength = 0x200,
): Promise<string> {
  const name = k.portName(label);
  const s = await server.call(
    "NtCreatePort",
    arg.out(handle),
    arg.oa(name),
    0,
    maxMessageLength,
    0,
  );
  if (s !== NTSTATUS.STATUS_SUCCESS) throw new Error(`setup: NtCreatePort(${name}) -> ${st(s)}`);
  return name;
}

/** The optional arguments of {@link startConnect} (each NULL unless given). */
export interface ConnectCall {
  /** The client port's handle name (default "cli"). */
  cli?: string;
  /** SecurityQos (default `arg.qos()`: Impersonation, static; `null` passes NULL). */
  qos?: Arg;
  /** MaxMessageLength, an out ULONG. */
  max?: Arg;
  /** ConnectionInformation. */
  info?: Arg;
  /** ConnectionInformationLength, an in/out ULONG. */
  infoLength?: Arg;
}

/**
 * Starts `NtConnectPort(&cli, name, qos, NULL, NULL, max, info, infoLength)` on `client` (no
 * views); it waits until the server accepts or refuses.
 */
export function startConnect(client: Thread, name: string, o: ConnectCall = {}): Pending {
  return client.start(
    "NtConnectPort",
    arg.out(o.cli ?? "cli"),
    arg.us(name),
    o.qos === undefined ? arg.qos() : o.qos,
    null,
    null,
    o.max ?? null,
    o.info ?? null,
    o.infoLength ?? null,
  );
}

/** An established connection: who serves, who is the client, and whether setting it up worked. */
export interface Connection {
  /** The server thread (it created the connection port and accepted). */
  server: Thread;
  /** The client thread (it connected). */
  client: Thread;
  /** "ok", or the first setup step that did not succeed and what it returned. */
  setup: string;
  /** The port name used. */
  name: string;
  /**
   * The handle names: the connection port and the server communication port (in the server's
   * process), the client port (in the client's).
   */
  conn: string;
  srv: string;
  cli: string;
}

/** How {@link connect} sets the connection up. */
export type ConnectOptions =
  & {
    /** The client thread (default: a new thread of the suite's process). */
    client?: Thread;
    /** The server thread (default: `k.self.main`). */
    server?: Thread;
    /** MaxMessageLength of a connection port `connect` creates (default 0x148). */
    max?: number;
    /** PortContext given to NtAcceptConnectPort (default 0x5EC0DE; null passes NULL). */
    context?: bigint | null;
    /**
     * Handle names: the connection port (default "conn"), the server communication port ("srv";
     * the connection request is received into `srv + "_crq"`), the client port ("cli").
     */
    conn?: string;
    srv?: string;
    cli?: string;
    /** The client's QoS argument (default `arg.qos()`: Impersonation, static). */
    qos?: Arg;
  }
  & (
    /** A new connection port, named `k.portName(label)` (unique per case). */
    | { label: string }
    /** The connection port of that name, which the server already holds as `conn`. */
    | { name: string }
  );

/**
 * Creates the connection port (for a `label`), connects the client, receives the
 * CONNECTION_REQUEST, accepts it, completes it and waits for the client's NtConnectPort.
 */
export async function connect(k: Kernel, o: ConnectOptions): Promise<Connection> {
  const server = o.server ?? k.self.main;
  const client = o.client ?? await k.self.thread();
  const name = "name" in o ? o.name : k.portName(o.label);
  const conn = o.conn ?? "conn";
  const srv = o.srv ?? "srv";
  const cli = o.cli ?? "cli";
  const done = (setup: string): Connection => ({ server, client, setup, name, conn, srv, cli });
  if (!("name" in o)) {
    const s = await server.call(
      "NtCreatePort",
      arg.out(conn),
      arg.oa(name),
      0,
      o.max ?? 0x148,
      0,
    );
    if (s !== 0) return done(`NtCreatePort: ${st(s)}`);
  }
  const pc = startConnect(client, name, o.qos === undefined ? { cli } : { cli, qos: o.qos });
  const rq = await receive(server, conn, { buffer: `${srv}_crq` });
  if (rq.status !== "STATUS_SUCCESS" || (rq.header.type & 0xff) !== T.LPC_CONNECTION_REQUEST) {
    return done(`receive CONNECTION_REQUEST: ${rq.status} type ${rq.header.type}`);
  }
  const ctx = o.context === undefined
    ? arg.ptr(0x5ec0den)
    : o.context === null
    ? null
    : arg.ptr(o.context);
  const a = await server.call(
    "NtAcceptConnectPort",
    arg.out(srv),
    ctx,
    arg.buf(rq.buffer),
    1,
    null,
    null,
  );
  if (a !== 0) return done(`NtAcceptConnectPort: ${st(a)}`);
  const c = await server.call("NtCompleteConnectPort", arg.h(srv));
  if (c !== 0) return done(`NtCompleteConnectPort: ${st(c)}`);
  const r = await pc.result(3000);
  if (r !== 0) return done(`NtConnectPort: ${st(r)}`);
  return done("ok");
}

/** {@link connect} for a case about something else: a setup step that fails throws. */
export async function connected(k: Kernel, o: ConnectOptions): Promise<Connection> {
  const link = await connect(k, o);
  if (link.setup !== "ok") throw new Error(`setup: ${link.setup}`);
  return link;
}

/**
 * Starts `NtRequestWaitReplyPort` on the client port of `link` with `msg` (a string: a request
 * carrying its text), from a fresh request buffer into the reply buffer `reply` (default fresh).
 */
export function request(
  link: Connection,
  msg: Uint8Array | string,
  reply: string = fresh("reply"),
): Pending {
  const bytes = typeof msg === "string" ? message({ data: utf8(msg) }) : msg;
  return link.client.start(
    "NtRequestWaitReplyPort",
    arg.h(link.cli),
    arg.buf(fresh("rq"), bytes),
    arg.buf(reply, RECEIVE_BUFFER),
  );
}

/** The type, the lengths and the sender: how a case reports a kernel message's header. */
export function headerOf(h: RawHeader): { [key: string]: Json } {
  return {
    type: h.type,
    dataLength: h.dataLength,
    totalLength: h.totalLength,
    pid: h.pid,
    tid: h.tid,
  };
}

/** A 0x30-byte kernel notification (`LPC_CLIENT_DIED`, `LPC_PORT_CLOSED`) as a case reports it. */
export function summary(m: Received): { [key: string]: Json } {
  return {
    ...headerOf(m.header),
    createTime: m.message.length >= DIED.size
      ? hex(readUint(m.message, DIED.offsets.CreateTime, 8))
      : null,
    context: hex(m.context),
  };
}

/** The messages of `got` that `t` sent, as {@link summary} reports them. */
export const byTid = (got: Received[], t: Thread): { [key: string]: Json }[] =>
  got.filter((m) => m.header.tid === t.tid).map(summary);

/**
 * The `LPC_CLIENT_DIED` the kernel sends when `t` exits (PspExitThread.c: the literal 0x600300008 is
 * DataLength 8, TotalLength 0x30, Type 6, the data the thread's CreateTime; AlpcpDispatchNewMessage.c
 * stamps the exiting thread's ClientId and the target's PortContext).
 */
export function diedOf(t: Thread, context: bigint): { [key: string]: Json } {
  return {
    type: T.LPC_CLIENT_DIED,
    dataLength: DIED.size - HEADER,
    totalLength: DIED.size,
    pid: t.process.pid,
    tid: t.tid,
    createTime: hex(t.createTime),
    context: hex(context),
  };
}
