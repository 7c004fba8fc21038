/**
 * A scripted fake of the LPC part of the NT kernel, behind the same ntdll signatures the toolkit
 * binds. It reads the real buffers and native pointers our code passes (so marshalling is tested
 * too) and enforces NT's rules (nt-abi-facts.md §4, nt-semantics.md §1):
 *
 * - a reply needs a received, still-waiting REQUEST's MessageId and ClientId (else
 *   STATUS_REPLY_MESSAGE_MISMATCH; MessageId 0 is STATUS_INVALID_PARAMETER);
 * - accept only after a CONNECTION_REQUEST, once; a refused connect fails with
 *   STATUS_PORT_CONNECTION_REFUSED; completion wakes the client;
 * - datagrams are never waited for, so a "reply" to one is a mismatch;
 * - `DataLength + 40 > TotalLength` is STATUS_INVALID_PARAMETER, `TotalLength` over the port's
 *   maximum STATUS_PORT_MESSAGE_TOO_LONG;
 * - after the peer closed: STATUS_PORT_DISCONNECTED; a request whose server went away:
 *   STATUS_LPC_REPLY_LOST;
 * - process death: per thread, LPC_CLIENT_DIED to each registered termination port (with the
 *   connection's PortContext) and to the exception port (PortContext 0), then LPC_PORT_CLOSED.
 *
 * A call that would block (connect, request) runs the registered actors (the server's `step`)
 * until it can complete; if nothing can make progress the fake throws instead of hanging.
 */

import { LAYOUTS } from "../ffi/layouts.ts";
import type { LpcSymbols } from "../ffi/lpc.ts";
import { LpcMessageType } from "../ffi/port_message.ts";
import { NTSTATUS } from "../ffi/status.ts";
import { decodeUtf16 } from "../ffi/strings.ts";

const PM = LAYOUTS.PORT_MESSAGE;
const CID = LAYOUTS.CLIENT_ID;
const OA = LAYOUTS.OBJECT_ATTRIBUTES;
const US = LAYOUTS.UNICODE_STRING;
const DBGKM = LAYOUTS.DBGKM_APIMSG;
const ER = LAYOUTS.EXCEPTION_RECORD;
const S = NTSTATUS;

/** The LPC symbols, none missing. */
export type FakeSymbols = { [K in keyof LpcSymbols]: NonNullable<LpcSymbols[K]> };

/** A thread identity (ClientId). */
export interface Identity {
  pid: number;
  tid: number;
}

interface Port {
  id: number;
  kind: "connection" | "server" | "client";
  name?: string;
  maxMessage: number;
  maxConnInfo: number;
  queue: { bytes: Uint8Array; context: bigint }[];
  connection?: Port; // for communication ports: their connection port
  peer?: Port;
  context: bigint; // server comm port: the PortContext given at accept
  closed: boolean;
  owner: number;
}

interface Pending {
  kind: "connect" | "request" | "exception";
  messageId: number;
  client: Identity;
  state: "waiting" | "accepted" | "completed" | "refused" | "replied" | "lost" | "dead";
  port: Port; // connect: the connection port; request: the server comm port
  connInfo?: Uint8Array;
  serverPort?: Port;
  reply?: Uint8Array;
}

const u8 = (b: AllowSharedBufferSource | null): Uint8Array | null =>
  b === null
    ? null
    : ArrayBuffer.isView(b)
    ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
    : new Uint8Array(b);
const ptrValue = (p: Deno.PointerValue): bigint => (p === null ? 0n : Deno.UnsafePointer.value(p));

function header(buf: Uint8Array) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    dataLength: dv.getUint16(PM.offsets.DataLength, true),
    totalLength: dv.getUint16(PM.offsets.TotalLength, true),
    type: dv.getUint16(PM.offsets.Type, true),
    dataInfoOffset: dv.getUint16(PM.offsets.DataInfoOffset, true),
    pid: Number(dv.getBigUint64(PM.offsets.ClientId + CID.offsets.UniqueProcess, true)),
    tid: Number(dv.getBigUint64(PM.offsets.ClientId + CID.offsets.UniqueThread, true)),
    messageId: dv.getUint32(PM.offsets.MessageId, true),
  };
}

function message(
  type: number,
  from: Identity,
  messageId: number,
  data: Uint8Array,
  totalLength?: number,
): Uint8Array {
  const total = totalLength ?? PM.size + data.byteLength;
  const buf = new Uint8Array(Math.max(total, PM.size + data.byteLength));
  const dv = new DataView(buf.buffer);
  dv.setUint16(PM.offsets.DataLength, data.byteLength, true);
  dv.setUint16(PM.offsets.TotalLength, total, true);
  dv.setUint16(PM.offsets.Type, type, true);
  dv.setBigUint64(PM.offsets.ClientId + CID.offsets.UniqueProcess, BigInt(from.pid), true);
  dv.setBigUint64(PM.offsets.ClientId + CID.offsets.UniqueThread, BigInt(from.tid), true);
  dv.setUint32(PM.offsets.MessageId, messageId, true);
  buf.set(data, PM.size);
  return buf;
}

/** Reads a UNICODE_STRING given the address of the struct. */
function readUnicodeStringAt(address: bigint): string {
  const p = Deno.UnsafePointer.create(address)!;
  const view = new Deno.UnsafePointerView(p);
  const length = view.getUint16(US.offsets.Length);
  const buffer = view.getBigUint64(US.offsets.Buffer);
  const bytes = new Uint8Array(length);
  if (length) Deno.UnsafePointerView.copyInto(Deno.UnsafePointer.create(buffer)!, bytes);
  return decodeUtf16(bytes);
}

/** The fake kernel. `symbols` stands in for ntdll. */
export class FakeKernel {
  #nextHandle = 0x100n;
  #nextMessageId = 1;
  #nextPortId = 1;
  #handles = new Map<bigint, { port: Port; pid: number }>();
  #names = new Map<string, Port>();
  #pending: Pending[] = [];
  #actors: { who: Identity; step: () => unknown }[] = [];
  #progress = 0;
  #terminatePorts = new Map<number, Port[]>(); // tid -> ports
  #exceptionPorts = new Map<number, Port>(); // pid -> connection port
  #threadCreateTimes = new Map<number, bigint>();
  /** The thread making the current call. */
  current: Identity = { pid: 200, tid: 201 };
  /** Threads impersonating: server tid -> client pid. */
  readonly impersonating = new Map<number, number>();
  /** Every call made, for assertions: `Name status`. */
  readonly calls: string[] = [];
  /** PIDs refused at connect with STATUS_ACCESS_DENIED (a DACL without PORT_CONNECT for them). */
  readonly deniedConnect = new Set<number>();

  /** Runs `fn` as `who`. */
  as<T>(who: Identity, fn: () => T): T {
    const saved = this.current;
    this.current = who;
    try {
      return fn();
    } finally {
      this.current = saved;
    }
  }

  /** Registers an actor run (as `who`) whenever a blocking call waits. */
  actor(who: Identity, step: () => unknown): void {
    this.#actors.push({ who, step });
  }

  #pump(done: () => boolean, what: string): void {
    for (let rounds = 0; rounds < 10_000; rounds++) {
      if (done()) return;
      const before = this.#progress;
      for (const a of this.#actors) this.as(a.who, a.step);
      if (done()) return;
      if (this.#progress === before) throw new Error(`fake kernel: ${what} would block forever`);
    }
    throw new Error(`fake kernel: ${what} did not finish`);
  }

  #handle(port: Port, pid: number): bigint {
    const h = this.#nextHandle;
    this.#nextHandle += 4n;
    this.#handles.set(h, { port, pid });
    return h;
  }

  #lookup(p: Deno.PointerValue, kinds: Port["kind"][]): Port | number {
    const entry = this.#handles.get(ptrValue(p));
    if (!entry || entry.pid !== this.current.pid) return S.STATUS_INVALID_HANDLE;
    if (!kinds.includes(entry.port.kind)) return S.STATUS_OBJECT_TYPE_MISMATCH;
    return entry.port;
  }

  /** Open handles owned by `pid`. */
  openHandles(pid: number): number {
    return [...this.#handles.values()].filter((h) => h.pid === pid).length;
  }

  /** Records a thread's creation time (FILETIME) for CLIENT_DIED / PORT_CLOSED. */
  setCreateTime(tid: number, fileTime: bigint): void {
    this.#threadCreateTimes.set(tid, fileTime);
  }

  #checkLengths(buf: Uint8Array, max: number): number {
    const h = header(buf);
    if (h.dataLength + PM.size > h.totalLength) return S.STATUS_INVALID_PARAMETER;
    if (h.totalLength > max || h.totalLength <= h.dataLength || h.totalLength > buf.byteLength) {
      return S.STATUS_PORT_MESSAGE_TOO_LONG;
    }
    return 0;
  }

  #enqueue(port: Port, bytes: Uint8Array, context: bigint): void {
    if (this.kernelTypeFlags) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset);
      dv.setUint16(
        PM.offsets.Type,
        dv.getUint16(PM.offsets.Type, true) | this.kernelTypeFlags,
        true,
      );
    }
    port.queue.push({ bytes, context });
    this.#progress++;
  }

  /** Flag bits the kernel ORs into every message type it delivers (e.g. 0x2000 LPC_CONTINUATION_REQUIRED). */
  kernelTypeFlags = 0;

  /** Queues a raw kernel message of `type` (e.g. 11–13) on the connection port behind `portHandle`. */
  inject(
    portHandle: bigint,
    owner: number,
    type: number,
    from: Identity,
    data: Uint8Array,
    context = 0n,
  ): void {
    const entry = this.#handles.get(portHandle);
    if (!entry || entry.pid !== owner || entry.port.kind !== "connection") {
      throw new Error("inject: not a connection port handle");
    }
    this.#enqueue(entry.port, message(type, from, this.#nextMessageId++, data), context);
  }

  #died(type: number, who: Identity, port: Port, context: bigint): void {
    const time = new Uint8Array(8);
    new DataView(time.buffer).setBigInt64(
      0,
      this.#threadCreateTimes.get(who.tid) ?? 133_000_000_000_000_000n,
      true,
    );
    this.#enqueue(port, message(type, who, this.#nextMessageId++, time), context);
  }

  #deliverReply(buf: Uint8Array): number {
    const h = header(buf);
    if (h.messageId === 0) return S.STATUS_INVALID_PARAMETER;
    const p = this.#pending.find((x) =>
      (x.kind === "request" || x.kind === "exception") && x.messageId === h.messageId &&
      x.state === "waiting"
    );
    if (!p || p.client.pid !== h.pid || p.client.tid !== h.tid) {
      return S.STATUS_REPLY_MESSAGE_MISMATCH;
    }
    const lengths = this.#checkLengths(buf, p.port.maxMessage);
    if (lengths) return lengths;
    const reply = buf.slice(0, h.totalLength);
    new DataView(reply.buffer).setUint16(PM.offsets.Type, LpcMessageType.LPC_REPLY, true);
    p.reply = reply;
    p.state = "replied";
    this.#progress++;
    return S.STATUS_SUCCESS;
  }

  #close(h: bigint, entry: { port: Port; pid: number }, closer: Identity): void {
    this.#handles.delete(h);
    const port = entry.port;
    if ([...this.#handles.values()].some((e) => e.port === port)) return; // other handles remain
    port.closed = true;
    if (port.kind === "connection") {
      if (port.name && this.#names.get(port.name) === port) this.#names.delete(port.name);
      for (const p of this.#pending) if (p.port === port && p.state === "waiting") p.state = "lost";
    } else if (port.kind === "client") {
      const server = port.peer;
      if (server && !server.closed && server.connection && !server.connection.closed) {
        this.#died(LpcMessageType.LPC_PORT_CLOSED, closer, server.connection, server.context);
      }
    } else if (port.kind === "server") {
      for (const p of this.#pending) {
        if (p.serverPort === port && p.state === "waiting") p.state = "lost";
      }
    }
  }

  /**
   * Kills a process: for each of its threads, LPC_CLIENT_DIED to every termination port it
   * registered and to the process's exception port; its pending requests die; then its handles are
   * closed (LPC_PORT_CLOSED), all stamped with the last thread.
   */
  killProcess(pid: number, tids: number[]): void {
    for (const tid of tids) {
      for (const port of this.#terminatePorts.get(tid) ?? []) {
        const server = port.kind === "client" ? port.peer : undefined;
        if (server?.connection && !server.closed) {
          this.#died(
            LpcMessageType.LPC_CLIENT_DIED,
            { pid, tid },
            server.connection,
            server.context,
          );
        }
      }
      this.#terminatePorts.delete(tid);
      const exc = this.#exceptionPorts.get(pid);
      if (exc && !exc.closed) this.#died(LpcMessageType.LPC_CLIENT_DIED, { pid, tid }, exc, 0n);
    }
    for (const p of this.#pending) {
      if (p.client.pid === pid && p.state === "waiting") p.state = "dead";
    }
    const last = { pid, tid: tids.at(-1) ?? 0 };
    for (const [h, entry] of [...this.#handles]) if (entry.pid === pid) this.#close(h, entry, last);
    this.#exceptionPorts.delete(pid);
  }

  /** `NtSetInformationProcess(ProcessExceptionPort)` in the fake: `port` must be a connection port handle of the caller. */
  setExceptionPort(pid: number, portHandle: bigint): number {
    const port = this.#lookup(Deno.UnsafePointer.create(portHandle), ["connection"]);
    if (typeof port === "number") return port;
    this.#exceptionPorts.set(pid, port);
    return S.STATUS_SUCCESS;
  }

  /**
   * A second-chance exception in `who`: sends LPC_EXCEPTION (a request the thread waits on) to the
   * exception port, and returns the ReturnedStatus of the reply, or `"dead"` / `"no port"`.
   */
  raiseException(
    who: Identity,
    code: number,
    parameters: bigint[] = [],
    totalLength = 0xd0,
  ): number | "dead" | "no port" {
    const port = this.#exceptionPorts.get(who.pid);
    if (!port || port.closed) return "no port";
    const data = new Uint8Array(totalLength - PM.size);
    const dv = new DataView(data.buffer);
    const at = (off: number) => off - PM.size;
    dv.setUint32(at(DBGKM.offsets.ApiNumber), 0, true);
    dv.setUint32(at(DBGKM.offsets.ReturnedStatus), S.STATUS_PENDING, true);
    dv.setUint32(at(DBGKM.offsets.ExceptionRecord + ER.offsets.ExceptionCode), code >>> 0, true);
    dv.setBigUint64(
      at(DBGKM.offsets.ExceptionRecord + ER.offsets.ExceptionAddress),
      0x7ff600001000n,
      true,
    );
    dv.setUint32(
      at(DBGKM.offsets.ExceptionRecord + ER.offsets.NumberParameters),
      parameters.length,
      true,
    );
    parameters.forEach((v, i) =>
      dv.setBigUint64(
        at(DBGKM.offsets.ExceptionRecord + ER.offsets.ExceptionInformation + 8 * i),
        v,
        true,
      )
    );
    dv.setUint32(at(DBGKM.offsets.FirstChance), 0, true);
    const messageId = this.#nextMessageId++;
    const bytes = message(
      LpcMessageType.LPC_EXCEPTION,
      who,
      messageId,
      data.subarray(0, 0xa8),
      totalLength,
    );
    bytes.set(data.subarray(0xa8), PM.size + 0xa8);
    const pending: Pending = { kind: "exception", messageId, client: who, state: "waiting", port };
    this.#pending.push(pending);
    this.#enqueue(port, bytes, 0n);
    try {
      this.#pump(() => pending.state !== "waiting", "an exception waiting for its reply");
    } catch (e) {
      if (pending.state === "waiting") throw e;
    }
    if (pending.state !== "replied") return "dead";
    return new DataView(pending.reply!.buffer).getUint32(DBGKM.offsets.ReturnedStatus, true);
  }

  /** A process dies while `who` waits on an exception reply: mark it so the test can assert. */
  pendingExceptions(): number {
    return this.#pending.filter((p) => p.kind === "exception" && p.state === "waiting").length;
  }

  #log(name: string, status: number): number {
    this.calls.push(`${name} 0x${(status >>> 0).toString(16)}`);
    return status;
  }

  /** The ntdll stand-in (every function present, typed as the real table). */
  readonly symbols: FakeSymbols = {
    NtCreatePort: (cellB, oaB, maxConnInfo, maxMessage, _pool) => {
      const cell = u8(cellB)!;
      const oa = new DataView(u8(oaB)!.buffer, u8(oaB)!.byteOffset);
      const nameAddress = oa.getBigUint64(OA.offsets.ObjectName, true);
      const name = nameAddress ? readUnicodeStringAt(nameAddress) : undefined;
      if (oa.getUint32(OA.offsets.Length, true) !== OA.size) {
        return this.#log("NtCreatePort", S.STATUS_INVALID_PARAMETER);
      }
      if (maxMessage > 0x200) return this.#log("NtCreatePort", S.STATUS_INVALID_PARAMETER_4);
      if (name && this.#names.has(name.toLowerCase())) {
        return this.#log("NtCreatePort", S.STATUS_OBJECT_NAME_COLLISION);
      }
      const port: Port = {
        id: this.#nextPortId++,
        kind: "connection",
        ...(name ? { name: name.toLowerCase() } : {}),
        maxMessage,
        maxConnInfo,
        queue: [],
        context: 0n,
        closed: false,
        owner: this.current.pid,
      };
      if (name) this.#names.set(name.toLowerCase(), port);
      new DataView(cell.buffer, cell.byteOffset).setBigUint64(
        0,
        this.#handle(port, this.current.pid),
        true,
      );
      return this.#log("NtCreatePort", S.STATUS_SUCCESS);
    },

    NtConnectPort: (cellB, nameB, qosB, _cv, _sv, maxB, infoB, infoLenB) => {
      const nameStruct = u8(nameB)!;
      const name = readUnicodeStringAt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(nameStruct)));
      if (new DataView(u8(qosB)!.buffer, u8(qosB)!.byteOffset).getUint32(0, true) !== 12) {
        return this.#log("NtConnectPort", S.STATUS_INVALID_PARAMETER);
      }
      const port = this.#names.get(name.toLowerCase());
      if (!port || port.closed) return this.#log("NtConnectPort", S.STATUS_OBJECT_NAME_NOT_FOUND);
      if (this.deniedConnect.has(this.current.pid)) {
        return this.#log("NtConnectPort", S.STATUS_ACCESS_DENIED);
      }
      const info = u8(infoB);
      const infoLen = u8(infoLenB);
      const length = infoLen
        ? new DataView(infoLen.buffer, infoLen.byteOffset).getUint32(0, true)
        : 0;
      const sent = (info ?? new Uint8Array(0)).slice(0, Math.min(length, port.maxConnInfo));
      const messageId = this.#nextMessageId++;
      const pending: Pending = {
        kind: "connect",
        messageId,
        client: { ...this.current },
        state: "waiting",
        port,
        connInfo: sent,
      };
      this.#pending.push(pending);
      this.#enqueue(
        port,
        message(LpcMessageType.LPC_CONNECTION_REQUEST, this.current, messageId, sent),
        0n,
      );
      this.#pump(() => ["completed", "refused", "lost"].includes(pending.state), "NtConnectPort");
      if (pending.state === "refused") {
        return this.#log("NtConnectPort", S.STATUS_PORT_CONNECTION_REFUSED);
      }
      if (pending.state === "lost") return this.#log("NtConnectPort", S.STATUS_PORT_DISCONNECTED);
      const clientPort = pending.serverPort!.peer!;
      const cell = u8(cellB)!;
      new DataView(cell.buffer, cell.byteOffset).setBigUint64(
        0,
        this.#handle(clientPort, this.current.pid),
        true,
      );
      const max = u8(maxB);
      if (max) new DataView(max.buffer, max.byteOffset).setUint32(0, port.maxMessage, true);
      if (info && infoLen) {
        info.set(
          pending.connInfo!.subarray(0, Math.min(info.byteLength, pending.connInfo!.byteLength)),
        );
        new DataView(infoLen.buffer, infoLen.byteOffset).setUint32(
          0,
          pending.connInfo!.byteLength,
          true,
        );
      }
      return this.#log("NtConnectPort", S.STATUS_SUCCESS);
    },

    NtAcceptConnectPort: (cellB, contextP, msgB, accept, _sv, _cv) => {
      const msg = u8(msgB)!;
      const h = header(msg);
      if (h.messageId === 0) return this.#log("NtAcceptConnectPort", S.STATUS_INVALID_PARAMETER);
      const pending = this.#pending.find((p) =>
        p.kind === "connect" && p.messageId === h.messageId && p.state === "waiting"
      );
      if (!pending || pending.client.pid !== h.pid || pending.client.tid !== h.tid) {
        return this.#log("NtAcceptConnectPort", S.STATUS_REPLY_MESSAGE_MISMATCH);
      }
      this.#progress++;
      if (!accept) {
        pending.state = "refused";
        return this.#log("NtAcceptConnectPort", S.STATUS_SUCCESS);
      }
      const common = {
        maxMessage: pending.port.maxMessage,
        maxConnInfo: pending.port.maxConnInfo,
        queue: [],
        closed: false,
        connection: pending.port,
      };
      const server: Port = {
        ...common,
        id: this.#nextPortId++,
        kind: "server",
        context: ptrValue(contextP),
        owner: this.current.pid,
      };
      const client: Port = {
        ...common,
        id: this.#nextPortId++,
        kind: "client",
        context: 0n,
        owner: pending.client.pid,
        queue: [],
      };
      server.queue = [];
      server.peer = client;
      client.peer = server;
      pending.serverPort = server;
      pending.connInfo = msg.slice(
        PM.size,
        PM.size + Math.min(h.dataLength, pending.port.maxConnInfo),
      );
      pending.state = "accepted";
      const cell = u8(cellB)!;
      new DataView(cell.buffer, cell.byteOffset).setBigUint64(
        0,
        this.#handle(server, this.current.pid),
        true,
      );
      return this.#log("NtAcceptConnectPort", S.STATUS_SUCCESS);
    },

    NtCompleteConnectPort: (p) => {
      const port = this.#lookup(p, ["server"]);
      if (typeof port === "number") return this.#log("NtCompleteConnectPort", port);
      const pending = this.#pending.find((x) => x.serverPort === port && x.state === "accepted");
      if (!pending) return this.#log("NtCompleteConnectPort", S.STATUS_INVALID_PARAMETER);
      pending.state = "completed";
      this.#progress++;
      return this.#log("NtCompleteConnectPort", S.STATUS_SUCCESS);
    },

    NtReplyWaitReceivePortEx: (p, contextB, replyB, receiveB, _timeout) => {
      const port = this.#lookup(p, ["connection"]);
      if (typeof port === "number") return this.#log("NtReplyWaitReceivePortEx", port);
      const reply = u8(replyB);
      if (reply) {
        const status = this.#deliverReply(reply);
        if (status !== 0) return this.#log("NtReplyWaitReceivePortEx(reply)", status);
      }
      const next = port.queue.shift();
      if (!next) return this.#log("NtReplyWaitReceivePortEx", S.STATUS_TIMEOUT);
      this.#progress++;
      const receive = u8(receiveB)!;
      receive.fill(0);
      receive.set(next.bytes.subarray(0, Math.min(next.bytes.byteLength, receive.byteLength)));
      const ctx = u8(contextB);
      if (ctx) new DataView(ctx.buffer, ctx.byteOffset).setBigUint64(0, next.context, true);
      return this.#log("NtReplyWaitReceivePortEx", S.STATUS_SUCCESS);
    },

    NtRequestWaitReplyPort: (p, requestB, replyB) => {
      const port = this.#lookup(p, ["client"]);
      if (typeof port === "number") return this.#log("NtRequestWaitReplyPort", port);
      const server = port.peer!;
      if (port.closed || server.closed || server.connection!.closed) {
        return this.#log("NtRequestWaitReplyPort", S.STATUS_PORT_DISCONNECTED);
      }
      const request = u8(requestB)!;
      const lengths = this.#checkLengths(request, port.maxMessage);
      if (lengths) return this.#log("NtRequestWaitReplyPort", lengths);
      const h = header(request);
      if ((h.type & 0xff) !== 0 && (h.type & 0xff) !== LpcMessageType.LPC_REQUEST) {
        return this.#log("NtRequestWaitReplyPort", S.STATUS_INVALID_PARAMETER);
      }
      const messageId = this.#nextMessageId++;
      const pending: Pending = {
        kind: "request",
        messageId,
        client: { ...this.current },
        state: "waiting",
        port: server,
        serverPort: server,
      };
      this.#pending.push(pending);
      this.#enqueue(
        server.connection!,
        message(
          LpcMessageType.LPC_REQUEST,
          this.current,
          messageId,
          request.subarray(PM.size, PM.size + h.dataLength),
        ),
        server.context,
      );
      this.#pump(() => pending.state !== "waiting", "NtRequestWaitReplyPort");
      if (pending.state === "lost") {
        return this.#log("NtRequestWaitReplyPort", S.STATUS_LPC_REPLY_LOST);
      }
      if (pending.state === "dead") {
        return this.#log("NtRequestWaitReplyPort", S.STATUS_THREAD_IS_TERMINATING);
      }
      const reply = u8(replyB)!;
      reply.fill(0);
      reply.set(pending.reply!.subarray(0, Math.min(reply.byteLength, pending.reply!.byteLength)));
      return this.#log("NtRequestWaitReplyPort", S.STATUS_SUCCESS);
    },

    NtRequestPort: (p, requestB) => {
      const port = this.#lookup(p, ["client"]);
      if (typeof port === "number") return this.#log("NtRequestPort", port);
      const server = port.peer!;
      if (server.closed || server.connection!.closed) {
        return this.#log("NtRequestPort", S.STATUS_PORT_DISCONNECTED);
      }
      const request = u8(requestB)!;
      const lengths = this.#checkLengths(request, port.maxMessage);
      if (lengths) return this.#log("NtRequestPort", lengths);
      const h = header(request);
      if (h.dataInfoOffset !== 0 || (h.type & 0xff) !== 0) {
        return this.#log("NtRequestPort", S.STATUS_INVALID_PARAMETER);
      }
      this.#enqueue(
        server.connection!,
        message(
          LpcMessageType.LPC_DATAGRAM,
          this.current,
          this.#nextMessageId++,
          request.subarray(PM.size, PM.size + h.dataLength),
        ),
        server.context,
      );
      return this.#log("NtRequestPort", S.STATUS_SUCCESS);
    },

    NtReplyPort: (p, replyB) => {
      const port = this.#lookup(p, ["connection", "server"]);
      if (typeof port === "number") return this.#log("NtReplyPort", port);
      return this.#log("NtReplyPort", this.#deliverReply(u8(replyB)!));
    },

    NtImpersonateClientOfPort: (p, msgB) => {
      const port = this.#lookup(p, ["server"]);
      if (typeof port === "number") return this.#log("NtImpersonateClientOfPort", port);
      const h = header(u8(msgB)!);
      const pending = this.#pending.find((x) =>
        x.kind === "request" && x.messageId === h.messageId && x.state === "waiting"
      );
      if (
        !pending || pending.serverPort !== port || pending.client.pid !== h.pid ||
        pending.client.tid !== h.tid
      ) {
        return this.#log("NtImpersonateClientOfPort", S.STATUS_REPLY_MESSAGE_MISMATCH);
      }
      this.impersonating.set(this.current.tid, pending.client.pid);
      return this.#log("NtImpersonateClientOfPort", S.STATUS_SUCCESS);
    },

    NtSetInformationThread: (thread, cls, infoB, length) => {
      if (ptrValue(thread) !== 0xfffffffffffffffen || cls !== 5 || length !== 8) {
        return this.#log("NtSetInformationThread", S.STATUS_NOT_IMPLEMENTED);
      }
      const info = u8(infoB)!;
      if (new DataView(info.buffer, info.byteOffset).getBigUint64(0, true) !== 0n) {
        return this.#log("NtSetInformationThread", S.STATUS_NOT_IMPLEMENTED);
      }
      this.impersonating.delete(this.current.tid);
      return this.#log("NtSetInformationThread", S.STATUS_SUCCESS);
    },

    NtRegisterThreadTerminatePort: (p) => {
      const port = this.#lookup(p, ["client", "server", "connection"]);
      if (typeof port === "number") return this.#log("NtRegisterThreadTerminatePort", port);
      const list = this.#terminatePorts.get(this.current.tid) ?? [];
      list.push(port);
      this.#terminatePorts.set(this.current.tid, list);
      return this.#log("NtRegisterThreadTerminatePort", S.STATUS_SUCCESS);
    },

    NtClose: (p) => {
      const h = ptrValue(p);
      const entry = this.#handles.get(h);
      if (!entry || entry.pid !== this.current.pid) {
        return this.#log("NtClose", S.STATUS_INVALID_HANDLE);
      }
      this.#close(h, entry, this.current);
      return this.#log("NtClose", S.STATUS_SUCCESS);
    },
  };
}
