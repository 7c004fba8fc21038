/**
 * An ALPC server on one connection port: receive with attributes, accept or refuse connections
 * with a PortContext, reply to synchronous requests, impersonate the sender, release the views
 * messages carry, disconnect clients.
 *
 * Thread affinity: `AlpcServer.step()` / `run()` receive, reply, impersonate and revert on the
 * calling thread; run them synchronously on one dedicated Worker ({@link AlpcServerWorker}),
 * never `nonblocking`.
 *
 * @module
 */

import { requireSymbol } from "../_loader.ts";
import { LAYOUTS } from "../layouts.ts";
import type { ImpersonationLevelName } from "../nt/object_attributes.ts";
import { handleCell, NtHandle } from "../nt/handle.ts";
import { ntdll } from "../ntdll.ts";
import {
  type ClientId,
  decodePortMessage,
  type ExceptionMessage,
  type HardErrorMessage,
  LpcMessageType,
  messageTypeName,
  type PortMessageHeader,
  PortMessageHeaderView,
} from "../port_message.ts";
import { check, describeStatus, NtError, NTSTATUS, ntSuccess, toUnsigned } from "../status.ts";
import {
  answerException,
  answerHardError,
  clientDiedEventFields,
  headerEventFields,
  type ServerEvent,
} from "../server_events.ts";
import { type AlpcAttributeName, alpcAttributeOffset, MessageAttributes } from "./attributes.ts";
import { AlpcAttributeFlags, AlpcMessageFlags } from "./constants.ts";
import { impersonateSender } from "./_impersonation.ts";
import {
  alpcCloser,
  type AlpcPortAttributes,
  type AlpcSymbols,
  encodeAlpcMessage,
  encodeAlpcPortAttributes,
  portAttributesMaxMessage,
  relativeTimeout,
} from "./port.ts";
import { ReceivedView } from "./view.ts";
import { callRequestInto, requestIntoConnection } from "../_request_into.ts";

const PM = LAYOUTS.PORT_MESSAGE;

/** The largest receive buffer the server grows to (a TotalLength is 16 bits). */
const RECEIVE_BUFFER_MOST = 0x10000;

/** The attributes an {@link AlpcServer} asks the kernel for on each receive, by default. */
export const ALPC_SERVER_RECEIVE_ATTRIBUTES: readonly AlpcAttributeName[] = [
  "SECURITY",
  "VIEW",
  "CONTEXT",
  "TOKEN",
];

/** One accepted connection, as the server sees it. */
export interface AlpcConnection {
  /** The PortContext given to `NtAlpcAcceptConnectPort` (the kernel hands it back on messages). */
  readonly context: bigint;
  /** The client that connected. */
  readonly clientId: ClientId;
  /** The connection message's data. */
  readonly connectInfo: Uint8Array;
  /** The server's communication port for this client (impersonation and disconnects use it). */
  readonly port: NtHandle<"port">;
}

/** A message as the server's handler sees it. */
export interface AlpcRequest {
  /** The header (sender, MessageId, CallbackId, lengths). */
  header: PortMessageHeader;
  /** The payload. */
  data: Uint8Array;
  /** The connection it came on (by the PortContext of its context attribute). */
  connection: AlpcConnection;
  /** The receive attributes, as the kernel filled them (context, security, view, token...). */
  attributes: MessageAttributes;
  /** The view the message carried, mapped until the handler returns (then released). */
  view?: ReceivedView;
  /**
   * Runs `fn` while this thread impersonates the sender (`NtAlpcImpersonateClientOfPort` on the
   * connection's port), then puts the thread's token back, also when `fn` throws. The kernel
   * uses the message's security attribute if it carried one, else the connection's client
   * context, which exists only if the client port allows impersonation (AlpcpImpersonateMessage.c;
   * otherwise STATUS_ACCESS_DENIED). `options.level` asks for a level, at most the client's.
   */
  impersonate<T>(fn: () => T, options?: { level?: ImpersonationLevelName }): T;
}

/** What the server does with each kind of message. */
export interface AlpcHandler {
  /**
   * Accept this connection? (Default: yes.) Return `{ accept, data }` to send data back in the
   * connection reply (default: the client's own connection data, as the kernel received it).
   */
  accept?(
    clientId: ClientId,
    connectInfo: Uint8Array,
  ): boolean | { accept: boolean; data?: Uint8Array };
  /**
   * The reply payload for a synchronous request, optionally with a note for the timeline's `reply`
   * event. Throwing sends an empty reply and logs an `error` event. Give this or
   * {@link requestInto}.
   */
  request?(req: AlpcRequest): Uint8Array | { data: Uint8Array; note: string };
  /**
   * The request path that allocates nothing (preferred over {@link request} when both are given):
   * write the reply payload into `reply` (the reply buffer's payload, the port's
   * `maxMessageLength` - 40 bytes) and return its length. `req` and everything in it (`header`,
   * `data`, a view of the receive buffer) is one object the server reuses: valid until this
   * returns, so copy what you keep. A message that carries a view still gets `req.view` (made for
   * it, released after). Throwing, or a length outside 0..`reply.byteLength`, sends an empty reply
   * and logs an `error` event. With the server's `logRequests: false` an inline request costs no
   * allocation at all.
   */
  requestInto?(req: AlpcRequest, reply: Uint8Array): number;
  /** A datagram (never replied to). */
  datagram?(req: AlpcRequest): void;
  /** A connection ended: `LPC_PORT_CLOSED` arrived for it (its client's port closed). */
  closed?(connection: AlpcConnection): void;
  /**
   * A client thread registered with `registerThreadTerminatePort()` ended (`LPC_CLIENT_DIED`);
   * the connection stays until its port closes.
   */
  clientDied?(connection: AlpcConnection, thread: ClientId): void;
  /**
   * An `LPC_EXCEPTION` from a process whose exception port this connection port is: the verdict
   * to reply with. Default `DBG_EXCEPTION_NOT_HANDLED` (any status >= 0 but that one counts as
   * handled: DbgkForwardException.c), so continue only an exception you raised on purpose.
   */
  exception?(message: ExceptionMessage, attributes: MessageAttributes): number;
  /** An `LPC_ERROR_EVENT` (a hard error): the `Response` to reply with (default ReturnToCaller). */
  hardError?(message: HardErrorMessage, attributes: MessageAttributes): number;
}

/**
 * An event of the ALPC server's timeline: the fields every server's timeline has
 * ({@link ServerEvent}, shared with the LPC server's: the header's, `context`, `client`,
 * `createTime`, `exception`, `hardError`, `note`), and what only ALPC has.
 */
export interface AlpcEvent extends ServerEvent {
  /**
   * What happened: the message type name, or `accept`, `refuse`, `reply`, `reply-failed`,
   * `released` (a datagram), `view-released`, `disconnect`, `receive-buffer-grown`, `error`.
   */
  event: string;
  /** `CallbackId`. */
  callbackId?: number;
  /** The PortContext of the context attribute, hex (`0x0` = none: the connection port's own). */
  context?: string;
  /** The context attribute's sequence number. */
  sequence?: number;
  /** The receive attributes the kernel marked valid. */
  attributes?: string[];
  /** The size of the view the message carried. */
  viewSize?: number;
}

/** Options for {@link AlpcServer}. */
export interface AlpcServerOptions {
  /** The ntdll symbols (default: the real ones). */
  nt?: AlpcSymbols;
  /**
   * The port attributes each accepted connection's port gets (`NtAlpcAcceptConnectPort`); give the
   * connection port's, so that `maxMessageLength` (the receive buffer's size) agrees.
   */
  portAttributes?: AlpcPortAttributes;
  /** The attributes to receive (default {@link ALPC_SERVER_RECEIVE_ATTRIBUTES}). */
  receiveAttributes?: readonly AlpcAttributeName[];
  /** Receives each timeline event as it happens. */
  onEvent?: (e: AlpcEvent) => void;
  /** The clock for event times (default `performance.now`). */
  now?: () => number;
  /**
   * Log an `LPC_REQUEST` and a `reply` event for every request (default true). False keeps the
   * timeline to connections, views, kernel messages and errors: what a server that must not
   * allocate per message (a {@link AlpcHandler.requestInto} handler, a benchmark) needs.
   */
  logRequests?: boolean;
}

/**
 * An ALPC server on one connection port: receives (`NtAlpcSendWaitReceivePort` with receive
 * attributes), dispatches on `Type & 0xFF`, accepts connections with a PortContext of its own,
 * tells clients apart by the PortContext of each message's context attribute, replies to
 * synchronous requests (`ALPC_MSGFLG_RELEASE_MESSAGE`, the request's MessageId and CallbackId),
 * releases every view a message carried, and closes every handle when disposed. `step()` serves one
 * message; `run()` serves until told to stop. It is thread-bound: to serve while the main thread
 * goes on, run it in an {@link AlpcServerWorker}.
 *
 * @example An echo server for ten seconds on this thread (Windows only, not run here: Wine 8.0
 * has no ALPC)
 * ```ts ignore
 * import { AlpcServer, createAlpcPort } from "@deno-lpc/deno-lpc";
 *
 * using server = new AlpcServer(createAlpcPort("\\RPC Control\\echo-alpc"), {
 *   request: ({ data }) => data,
 * });
 * const until = Date.now() + 10_000;
 * server.run(() => Date.now() > until);
 * ```
 */
export class AlpcServer implements Disposable {
  readonly #port: NtHandle<"connection-port">;
  readonly #nt: AlpcSymbols;
  readonly #handler: AlpcHandler;
  readonly #portAttributes: Uint8Array<ArrayBuffer>;
  readonly #attrs: MessageAttributes;
  #receive: Uint8Array<ArrayBuffer>;
  readonly #maxMessage: number;
  readonly #onEvent: (e: AlpcEvent) => void;
  readonly #now: () => number;
  readonly #t0: number;
  readonly #connections = new Map<bigint, AlpcConnection>();
  #nextContext = 1n;
  // The per-message path's reused parts (requestInto): nothing below is allocated per message.
  readonly #logRequests: boolean;
  readonly #portPointer: Deno.PointerObject;
  readonly #byNumber = new Map<number, AlpcConnection>();
  /** Where the context attribute's PortContext is in the attribute buffer (null: not asked for). */
  readonly #contextAt: number | null;
  readonly #attrsView: DataView;
  readonly #length = new BigUint64Array(1);
  readonly #lengthWords = new Uint32Array(this.#length.buffer);
  readonly #replyBuffer: Uint8Array<ArrayBuffer>;
  readonly #replyView: DataView;
  readonly #replyPayload: Uint8Array;
  readonly #request: AlpcRequest;
  #header: PortMessageHeaderView;
  #payloads: Uint8Array[] = [];
  #timeoutMs = -1; // none yet
  #timeout = relativeTimeout(0);
  /** Every event so far. */
  readonly events: AlpcEvent[] = [];

  /**
   * Serves `port` (a connection port this server owns and will close).
   *
   * @param port the connection port (from {@link createAlpcPort})
   * @param handler what to do with each message
   * @param options symbols, port attributes, receive attributes, event sink
   */
  constructor(
    port: NtHandle<"connection-port">,
    handler: AlpcHandler,
    options: AlpcServerOptions = {},
  ) {
    this.#port = port;
    this.#handler = handler;
    this.#nt = options.nt ?? ntdll();
    this.#portAttributes = encodeAlpcPortAttributes(options.portAttributes);
    this.#attrs = new MessageAttributes(
      options.receiveAttributes ?? ALPC_SERVER_RECEIVE_ATTRIBUTES,
    );
    this.#maxMessage = portAttributesMaxMessage(this.#portAttributes);
    this.#receive = new Uint8Array(this.#maxMessage);
    this.#onEvent = options.onEvent ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    this.#t0 = this.#now();
    if (!handler.request && !handler.requestInto) {
      throw new TypeError("an AlpcHandler needs request() or requestInto()");
    }
    this.#logRequests = options.logRequests ?? true;
    this.#portPointer = port.unsafePointer;
    const ctxAt = alpcAttributeOffset(this.#attrs.allocated, AlpcAttributeFlags.CONTEXT);
    this.#contextAt = ctxAt === null ? null : ctxAt + LAYOUTS.ALPC_CONTEXT_ATTR.offsets.PortContext;
    this.#attrsView = new DataView(this.#attrs.buffer.buffer, this.#attrs.buffer.byteOffset);
    this.#header = new PortMessageHeaderView(this.#receive);
    this.#replyBuffer = new Uint8Array(this.#maxMessage);
    this.#replyView = new DataView(this.#replyBuffer.buffer);
    this.#replyPayload = this.#replyBuffer.subarray(PM.size);
    const request: AlpcRequest = {
      header: this.#header,
      data: this.#replyPayload.subarray(0, 0),
      connection: undefined as unknown as AlpcConnection,
      attributes: this.#attrs,
      impersonate: (fn, options) =>
        impersonateSender(this.#nt, request.connection.port, this.#receive, fn, options?.level),
    };
    this.#request = request;
  }

  /** The connection port, borrowed: the server closes it, do not. */
  get port(): NtHandle<"connection-port"> {
    return this.#port;
  }

  /** The live connections, by PortContext. */
  get connections(): ReadonlyMap<bigint, AlpcConnection> {
    return this.#connections;
  }

  /** A `requestInto` handler's error, logged against the message being served (made once). */
  readonly #intoError = (note: string): void =>
    this.#log("error", this.#header.snapshot(), { note });

  #log(event: string, header?: PortMessageHeader, extra: Partial<AlpcEvent> = {}): void {
    const now = this.#now();
    const e: AlpcEvent = {
      t: Math.round((now - this.#t0) * 10) / 10,
      at: Math.round((performance.timeOrigin + now) * 10) / 10,
      event,
    };
    if (header) {
      const ctx = this.#attrs.rawContext;
      Object.assign(e, headerEventFields(header), {
        callbackId: header.callbackId,
        attributes: this.#attrs.validNames,
      });
      if (ctx) {
        e.context = `0x${ctx.portContext.toString(16)}`;
        e.sequence = ctx.sequence;
        const c = this.#connections.get(ctx.portContext);
        if (c) e.client = { pid: c.clientId.process, tid: c.clientId.thread };
      }
    }
    Object.assign(e, extra);
    this.events.push(e);
    this.#onEvent(e);
  }

  /**
   * Waits up to `timeoutMs` for one message on the connection port and handles it. Returns false
   * when the wait timed out.
   */
  step(timeoutMs = 100): boolean {
    let status = this.#receiveOne(timeoutMs);
    if (status === "grown") status = this.#receiveOne(timeoutMs);
    if (status === "grown") return true;
    check(status, "NtAlpcSendWaitReceivePort", `receive on ${this.#port.what}`);
    // STATUS_TIMEOUT, or another success code with no message (an alert, an APC).
    if (status !== 0) return toUnsigned(status) !== NTSTATUS.STATUS_TIMEOUT;
    // Not through #dispatch: its closures give it a context, allocated on every call.
    if (!this.#dispatchInto()) this.#dispatch();
    return true;
  }

  /** One receive; `"grown"` when the message needed a larger buffer, which it now has. */
  #receiveOne(timeoutMs: number): number | "grown" {
    const receive = requireSymbol(
      this.#nt.NtAlpcSendWaitReceivePort,
      "ntdll!NtAlpcSendWaitReceivePort",
    );
    this.#attrs.reset();
    this.#receive.fill(0, 0, PM.size);
    if (timeoutMs !== this.#timeoutMs) {
      this.#timeout = relativeTimeout(timeoutMs);
      this.#timeoutMs = timeoutMs;
    }
    const length = this.#lengthWords;
    length[0] = this.#receive.byteLength;
    length[1] = 0;
    const status = receive(
      // The pointer made once; a closed port still throws (unsafePointer).
      this.#port.closed ? this.#port.unsafePointer : this.#portPointer,
      0,
      null,
      null,
      this.#receive,
      this.#length,
      this.#attrs.buffer,
      this.#timeout,
    );
    const need = length[0]! + length[1]! * 0x1_0000_0000;
    if (
      toUnsigned(status) === NTSTATUS.STATUS_BUFFER_TOO_SMALL && need > this.#receive.byteLength &&
      need <= RECEIVE_BUFFER_MOST
    ) {
      // AlpcpReceiveMessage.c writes the length needed; AlpcpReturnMessageOnInsufficientBuffer.c
      // keeps the message (the large-message queue) for a receive with a buffer that large.
      this.#receive = new Uint8Array(need);
      this.#header = new PortMessageHeaderView(this.#receive);
      // Every view over the old buffer goes with it: the reused request's header (requestInto
      // handlers read it), and the payload views (made again over the new buffer as needed).
      this.#request.header = this.#header;
      this.#request.data = this.#replyPayload.subarray(0, 0);
      this.#payloads = [];
      this.#log("receive-buffer-grown", undefined, { totalLength: need });
      return "grown";
    }
    return status;
  }

  /** Loops {@link step} until `shouldStop()` returns true (checked at least every `pollMs`). */
  run(shouldStop: () => boolean, pollMs = 100): void {
    while (!shouldStop()) this.step(pollMs);
  }

  /**
   * The connection a message came on, by its context attribute's PortContext: our contexts are
   * small numbers, so the lookup makes no BigInt.
   */
  #connectionOf(): AlpcConnection | undefined {
    const at = this.#contextAt;
    if (at === null) return undefined;
    const dv = this.#attrsView;
    const high = dv.getUint32(at + 4, true);
    return high === 0
      ? this.#byNumber.get(dv.getUint32(at, true))
      : this.#connections.get(dv.getBigUint64(at, true));
  }

  /**
   * The per-message path of a `requestInto` handler: an `LPC_REQUEST` on a known connection,
   * served from reused objects into the reply buffer. False: not such a message (the general path
   * takes it, malformed ones included).
   */
  #dispatchInto(): boolean {
    const into = this.#handler.requestInto;
    if (!into) return false;
    const header = this.#header;
    const connection = requestIntoConnection(header, this.#connectionOf());
    if (!connection) return false;
    const view = this.#attrs.isValid("VIEW") ? this.#receivedView(header.snapshot()) : undefined;
    if (this.#logRequests || view) {
      this.#log(
        messageTypeName(header.type),
        header.snapshot(),
        view ? { viewSize: view.size } : {},
      );
    }
    const dataLength = header.dataLength;
    const req = this.#request;
    req.connection = connection;
    req.data = this.#payloads[dataLength] ??= this.#receive.subarray(
      PM.size,
      PM.size + dataLength,
    );
    if (view) req.view = view;
    else delete req.view;
    try {
      this.#sendReplyInto(
        callRequestInto(this.#handler, into, req, this.#replyPayload, this.#intoError),
      );
    } finally {
      if (view) this.#releaseView(view, connection, header.snapshot());
    }
    return true;
  }

  /**
   * Sends the reply in the reply buffer: `length` payload bytes after the request's MessageId,
   * CallbackId and ClientId (what {@link encodeAlpcMessage} writes for a reply; Type 0).
   */
  #sendReplyInto(length: number): void {
    const send = requireSymbol(
      this.#nt.NtAlpcSendWaitReceivePort,
      "ntdll!NtAlpcSendWaitReceivePort",
    );
    const dv = this.#replyView;
    const from = this.#header.dataView;
    const cid = PM.offsets.ClientId;
    this.#replyBuffer.fill(0, 0, PM.size);
    dv.setUint16(PM.offsets.DataLength, length, true);
    dv.setUint16(PM.offsets.TotalLength, PM.size + length, true);
    for (let at = cid; at < cid + 16; at += 4) dv.setUint32(at, from.getUint32(at, true), true);
    dv.setUint32(PM.offsets.MessageId, from.getUint32(PM.offsets.MessageId, true), true);
    dv.setUint32(PM.offsets.CallbackId, from.getUint32(PM.offsets.CallbackId, true), true);
    // A final reply: AlpcpDispatchReplyToWaitingThread.c clears the continuation bit for it.
    const status = send(
      this.#port.closed ? this.#port.unsafePointer : this.#portPointer,
      AlpcMessageFlags.RELEASE_MESSAGE,
      this.#replyBuffer,
      null,
      null,
      null,
      null,
      null,
    );
    if (!ntSuccess(status)) {
      this.#log("reply-failed", this.#header.snapshot(), { note: describeStatus(status) });
    } else if (this.#logRequests) {
      this.#log("reply", this.#header.snapshot(), {
        dataLength: length,
        totalLength: PM.size + length,
      });
    }
  }

  #dispatch(): void {
    let msg;
    try {
      msg = decodePortMessage(this.#receive);
    } catch (e) {
      this.#log("error", undefined, { note: e instanceof Error ? e.message : String(e) });
      return;
    }
    const { header, data } = msg;
    const context = this.#attrs.rawContext?.portContext ?? 0n;
    const connection = this.#connections.get(context);
    switch (header.type) {
      case LpcMessageType.LPC_CONNECTION_REQUEST:
        return this.#connect(header, data);
      case LpcMessageType.LPC_REQUEST:
      case LpcMessageType.LPC_DATAGRAM: {
        const view = this.#receivedView(header);
        this.#log(messageTypeName(header.type), header, view ? { viewSize: view.size } : {});
        try {
          if (header.type === LpcMessageType.LPC_DATAGRAM) {
            try {
              if (connection) {
                this.#handler.datagram?.(this.#requestOf(header, data, connection, view));
              }
            } finally {
              this.#releaseDatagram(header);
            }
            return;
          }
          if (!connection) {
            this.#reply(header, new Uint8Array(0), "no connection for this PortContext");
            return;
          }
          let payload: Uint8Array;
          let note: string | undefined;
          try {
            const req = this.#requestOf(header, data, connection, view);
            const r = this.#handler.request
              ? this.#handler.request(req)
              : this.#replyPayload.slice(0, this.#handler.requestInto!(req, this.#replyPayload));
            if (r instanceof Uint8Array) payload = r;
            else ({ data: payload, note } = r);
          } catch (e) {
            this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
            payload = new Uint8Array(0);
          }
          this.#reply(header, payload, note);
        } catch (e) {
          this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
        } finally {
          if (view) this.#releaseView(view, connection, header);
        }
        return;
      }
      case LpcMessageType.LPC_CLIENT_DIED: {
        // A registered client thread ended (PspExitThread.c): the connection stays.
        this.#log(messageTypeName(header.type), header, clientDiedEventFields(this.#receive));
        try {
          if (connection) this.#handler.clientDied?.(connection, header.clientId);
        } catch (e) {
          this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
        }
        return;
      }
      case LpcMessageType.LPC_PORT_CLOSED: {
        // An LPC_CLIENT_DIED_MSG too: AlpcpSendCloseMessage.c writes a CreateTime (DataLength 8).
        this.#log(messageTypeName(header.type), header, clientDiedEventFields(this.#receive));
        if (connection) {
          this.#connections.delete(context);
          this.#byNumber.delete(Number(context));
          try {
            this.#handler.closed?.(connection);
          } catch (e) {
            this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
          } finally {
            connection.port.close();
          }
        }
        return;
      }
      case LpcMessageType.LPC_EXCEPTION:
      case LpcMessageType.LPC_ERROR_EVENT:
        return this.#kernelRequest(header);
      default:
        this.#log(messageTypeName(header.type), header, {
          note: `message type ${header.type} (raw 0x${header.rawType.toString(16)})`,
        });
    }
  }

  /**
   * A kernel message a thread waits on (an exception, a hard error): decode it, ask the handler,
   * and send it back with the verdict (the same MessageId and CallbackId).
   */
  #kernelRequest(header: PortMessageHeader): void {
    const reply = this.#receive.slice(0, header.totalLength);
    const fields = header.type === LpcMessageType.LPC_EXCEPTION
      ? answerException(this.#receive, reply, (m) => this.#handler.exception?.(m, this.#attrs))
      : answerHardError(this.#receive, reply, (m) => this.#handler.hardError?.(m, this.#attrs));
    this.#log(messageTypeName(header.type), header, fields);
    // A user-mode reply leaves Type to the kernel (AlpcpSendMessage.c sets it).
    new DataView(reply.buffer).setUint16(PM.offsets.Type, 0, true);
    this.#sendReply(header, reply, "");
  }

  /**
   * A datagram that carries a security, view or handle attribute the receive asked for stays with
   * the receiver (its pending queue: AlpcpReceiveMessagePort.c), else it is freed at receive. A
   * send of its MessageId and CallbackId with `ALPC_MSGFLG_RELEASE_MESSAGE` cancels (frees) such a
   * no-reply message (AlpcpSendMessage.c: AlpcpCancelMessage for a message flagged 0x200, which
   * AlpcpDispatchNewMessage.c sets for RELEASE_MESSAGE sends).
   */
  #releaseDatagram(header: PortMessageHeader): void {
    const kept = (["SECURITY", "VIEW", "HANDLE"] as const).some((a) => this.#attrs.isValid(a));
    if (!kept) return;
    const send = requireSymbol(
      this.#nt.NtAlpcSendWaitReceivePort,
      "ntdll!NtAlpcSendWaitReceivePort",
    );
    const release = encodeAlpcMessage({
      messageId: header.messageId,
      callbackId: header.callbackId,
      clientId: header.clientId,
    });
    const status = send(
      this.#port.unsafePointer,
      AlpcMessageFlags.RELEASE_MESSAGE,
      release,
      null,
      null,
      null,
      null,
      null,
    );
    if (ntSuccess(status)) this.#log("released", header);
    else this.#log("error", header, { note: `datagram not released: ${describeStatus(status)}` });
  }

  #receivedView(header: PortMessageHeader): ReceivedView | undefined {
    const attr = this.#attrs.view;
    if (!attr) return undefined;
    try {
      return new ReceivedView(attr);
    } catch (e) {
      this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }

  /**
   * Unmaps a received view. A client's message targets the connection port
   * (AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c, AlpcpDispatchNewMessage.c), and the
   * receiver's view of the section is made for that port (AlpcpCompleteDispatchMessage.c,
   * AlpcpExposeViewAttributeInSenderContext.c: AlpcpCreateView), so it is deleted there; the
   * connection's own port is tried next only if the kernel answers STATUS_INVALID_ADDRESS.
   */
  #releaseView(
    view: ReceivedView,
    connection: AlpcConnection | undefined,
    header: PortMessageHeader,
  ): void {
    const ports: NtHandle<"port" | "connection-port">[] = [this.#port];
    if (connection && !connection.port.closed) ports.push(connection.port);
    let last = "";
    for (const port of ports) {
      try {
        view.release(port, this.#nt);
        this.#log("view-released", header, { viewSize: view.size, note: port.what });
        return;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
        // Not among this port's views (NtAlpcDeleteSectionView.c: STATUS_INVALID_ADDRESS): try the
        // next port; anything else is final.
        if (!(e instanceof NtError && toUnsigned(e.code) === NTSTATUS.STATUS_INVALID_ADDRESS)) {
          break;
        }
      }
    }
    this.#log("error", header, { note: `view not released: ${last}` });
  }

  #requestOf(
    header: PortMessageHeader,
    data: Uint8Array,
    connection: AlpcConnection,
    view: ReceivedView | undefined,
  ): AlpcRequest {
    return {
      header,
      data,
      connection,
      attributes: this.#attrs,
      ...(view ? { view } : {}),
      impersonate: (fn, options) =>
        impersonateSender(this.#nt, connection.port, this.#receive, fn, options?.level),
    };
  }

  #reply(header: PortMessageHeader, payload: Uint8Array, note?: string): void {
    let reply: Uint8Array<ArrayBuffer>;
    const init = {
      messageId: header.messageId,
      callbackId: header.callbackId,
      clientId: header.clientId,
      maxTotalLength: this.#maxMessage,
    };
    try {
      reply = encodeAlpcMessage({ ...init, data: payload });
    } catch (e) {
      this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
      reply = encodeAlpcMessage(init);
      payload = new Uint8Array(0);
    }
    this.#sendReply(header, reply, note, payload.byteLength);
  }

  #sendReply(
    header: PortMessageHeader,
    reply: Uint8Array<ArrayBuffer>,
    note: string | undefined,
    dataLength = reply.byteLength - PM.size,
  ): void {
    const send = requireSymbol(
      this.#nt.NtAlpcSendWaitReceivePort,
      "ntdll!NtAlpcSendWaitReceivePort",
    );
    // A final reply: AlpcpDispatchReplyToWaitingThread.c clears the continuation bit for it.
    const status = send(
      this.#port.unsafePointer,
      AlpcMessageFlags.RELEASE_MESSAGE,
      reply,
      null,
      null,
      null,
      null,
      null,
    );
    if (!ntSuccess(status)) {
      this.#log("reply-failed", header, { note: describeStatus(status) });
      return;
    }
    this.#log("reply", header, {
      dataLength,
      totalLength: PM.size + dataLength,
      ...(note ? { note } : {}),
    });
  }

  #connect(header: PortMessageHeader, connectInfo: Uint8Array): void {
    const accept = requireSymbol(this.#nt.NtAlpcAcceptConnectPort, "ntdll!NtAlpcAcceptConnectPort");
    let verdict: boolean;
    let replyData: Uint8Array | undefined;
    try {
      const r = this.#handler.accept?.(header.clientId, connectInfo) ?? true;
      if (typeof r === "boolean") verdict = r;
      else ({ accept: verdict, data: replyData } = r);
    } catch (e) {
      this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
      verdict = false;
    }
    const id = this.#nextContext++;
    // The connection reply: the request's header (its MessageId names the request:
    // AlpcpAcceptConnectPort.c) with the data to send back.
    const message = replyData === undefined
      ? this.#receive.slice(0, header.totalLength)
      : encodeAlpcMessage({
        data: replyData,
        messageId: header.messageId,
        callbackId: header.callbackId,
        clientId: header.clientId,
        maxTotalLength: this.#maxMessage,
      });
    const cell = handleCell();
    const status = accept(
      cell,
      this.#port.unsafePointer,
      0,
      null,
      this.#portAttributes,
      Deno.UnsafePointer.create(id),
      message,
      null,
      verdict ? 1 : 0,
    );
    if (!ntSuccess(status)) {
      this.#log("error", header, { note: `NtAlpcAcceptConnectPort: ${describeStatus(status)}` });
      return;
    }
    if (!verdict) {
      this.#log("refuse", header);
      return;
    }
    const port = NtHandle.fromCell(
      "port",
      cell,
      `ALPC connection ${header.clientId.process}.${header.clientId.thread}`,
      alpcCloser(this.#nt),
    );
    const connection = { context: id, clientId: header.clientId, connectInfo, port };
    this.#connections.set(id, connection);
    this.#byNumber.set(Number(id), connection);
    this.#log("accept", header, { context: `0x${id.toString(16)}` });
  }

  /**
   * Disconnects one client (`NtAlpcDisconnectPort` on its communication port: the client's next
   * call fails with STATUS_PORT_DISCONNECTED, AlpcpDisconnectPort.c) and closes that port.
   *
   * @param context the connection's PortContext
   */
  disconnect(context: bigint): void {
    const connection = this.#connections.get(context);
    if (!connection) {
      throw new RangeError(`no connection with PortContext 0x${context.toString(16)}`);
    }
    this.#connections.delete(context);
    this.#byNumber.delete(Number(context));
    try {
      check(
        requireSymbol(this.#nt.NtAlpcDisconnectPort, "ntdll!NtAlpcDisconnectPort")(
          connection.port.unsafePointer,
          0,
        ),
        "NtAlpcDisconnectPort",
        connection.port.what,
      );
      this.#log("disconnect", undefined, { context: `0x${context.toString(16)}` });
    } finally {
      connection.port.close();
    }
  }

  /** Closes every connection's port, then the connection port. */
  [Symbol.dispose](): void {
    try {
      for (const c of this.#connections.values()) c.port.close();
    } finally {
      this.#connections.clear();
      this.#byNumber.clear();
      this.#port.close();
    }
  }
}
