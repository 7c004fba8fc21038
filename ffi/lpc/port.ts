/**
 * Legacy LPC: a connection-port server with its receive loop, and a client.
 *
 * Every function takes the ntdll symbols it calls as a parameter ({@link LpcSymbols}, by default
 * the real ntdll), so the same code runs against Windows and against the scripted fake kernel the
 * tests use. Thread affinity: `LpcServer.step()` / `run()` receive, reply, impersonate and revert
 * on the calling thread; run them synchronously on one dedicated Worker (never `nonblocking`).
 *
 * @module
 */

import { handleCell, type HandleCloser, NtHandle } from "../nt/handle.ts";
import { requireSymbol } from "../_loader.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll, type NtdllSymbols } from "../ntdll.ts";
import {
  type ImpersonationLevelName,
  ObjectAttributes,
  type SecurityDescriptor,
  securityQos,
  UnicodeString,
} from "../nt/object_attributes.ts";
import {
  type ClientId,
  decodePortMessage,
  encodePortMessage,
  type ExceptionMessage,
  type HardErrorMessage,
  LARGEST_KERNEL_MESSAGE,
  LPC_LEGACY_MAX_MESSAGE_LENGTH,
  LpcMessageType,
  messageTypeName,
  PORT_MAXIMUM_MESSAGE_LENGTH,
  PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH,
  PortMessageError,
  type PortMessageHeader,
  PortMessageHeaderView,
  relativeTimeout,
  rewriteAsReply,
} from "../port_message.ts";
import { check, describeStatus, NTSTATUS, ntSuccess, toUnsigned } from "../status.ts";
import {
  answerException,
  answerHardError,
  clientDiedEventFields,
  headerEventFields,
  type ServerEvent,
} from "../server_events.ts";
import { roundToPages, Section, type SectionSymbols } from "../nt/sections.ts";
import { withThreadTokenRestored } from "../nt/_thread_token.ts";
import { callRequestInto, requestIntoConnection } from "../_request_into.ts";
import {
  PortView,
  portViewStruct,
  readPortView,
  readRemotePortView,
  remotePortViewStruct,
} from "./port_view.ts";

const PM = LAYOUTS.PORT_MESSAGE;

/** The ntdll functions the LPC code calls (the real table, or a fake with the same signatures). */
export type LpcSymbols = Pick<
  NtdllSymbols,
  | "NtCreatePort"
  | "NtConnectPort"
  | "NtAcceptConnectPort"
  | "NtCompleteConnectPort"
  | "NtReplyWaitReceivePortEx"
  | "NtRequestWaitReplyPort"
  | "NtRequestPort"
  | "NtReplyPort"
  | "NtImpersonateClientOfPort"
  | "NtRegisterThreadTerminatePort"
  | "NtSetInformationThread"
  | "NtOpenThreadToken"
  | "NtClose"
>;

function closerOf(nt: LpcSymbols): HandleCloser {
  return (h) => nt.NtClose(h);
}

/** Options for {@link createConnectionPort}. */
export interface PortOptions {
  /**
   * The largest `TotalLength` (header included) a message may have: default 512, at most 648
   * (`LpcLegacyMaxMessageLength` on x64; the kernel refuses more with STATUS_INVALID_PARAMETER).
   */
  maxMessageLength?: number;
  /**
   * Ignored by the kernel (NtCreatePort.c passes only MaxMessageLength on; connection data is
   * capped at MaxMessageLength - 40). Kept for callers of the documented prototype.
   */
  maxConnectionInfoLength?: number;
  /**
   * The port will receive kernel messages (it is an exception or termination port): refuse a
   * `maxMessageLength` below 0xD0, since the kernel silently drops a message larger than the
   * port's limit (AlpcpSendMessage.c), and an `LPC_EXCEPTION` it cannot deliver kills the process
   * unseen (KiDispatchException.c).
   */
  kernelMessages?: boolean;
  /** Who may connect (`PORT_CONNECT` = 0x1 in the DACL). */
  securityDescriptor?: SecurityDescriptor;
  /** The ntdll symbols (default: the real ones; a fake kernel passes its own). */
  nt?: LpcSymbols;
}

/**
 * Creates a named connection port (`NtCreatePort`). The message limit must hold the largest
 * message the port will receive: for kernel messages that is 0xD0 (`LPC_EXCEPTION`), 0x70 for a
 * hard error and 0x30 for `LPC_CLIENT_DIED`/`LPC_PORT_CLOSED` (`KERNEL_MESSAGE_LENGTH` in `./raw`).
 *
 * @param name the port's path (e.g. `\RPC Control\my-port`), or `null` for an unnamed port
 * @param options limits, who may connect, and `nt` (the symbol table; a fake kernel's in tests)
 * @returns the connection port, to give to an {@link LpcServer} (which then owns it)
 * @example A limit too large for legacy LPC is refused before any call (Windows only, not run here: real LPC needs Windows, Wine 8.0 stubs it)
 * ```ts ignore
 * import { createConnectionPort } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * assertThrows(() => createConnectionPort(null, { maxMessageLength: 649 }), RangeError);
 * using port = createConnectionPort("\\RPC Control\\demo");
 * assertEquals(port.kind, "connection-port");
 * ```
 */
export function createConnectionPort(
  name: string | null,
  options: PortOptions = {},
): NtHandle<"connection-port"> {
  const nt = options.nt ?? ntdll();
  const maxMessage = options.maxMessageLength ?? PORT_MAXIMUM_MESSAGE_LENGTH;
  const least = options.kernelMessages ? LARGEST_KERNEL_MESSAGE : PM.size;
  if (maxMessage < least || maxMessage > LPC_LEGACY_MAX_MESSAGE_LENGTH) {
    throw new RangeError(
      `maxMessageLength ${maxMessage} outside ${least}..${LPC_LEGACY_MAX_MESSAGE_LENGTH}` +
        (options.kernelMessages && maxMessage < least
          ? ` (a port that receives kernel messages needs 0x${
            least.toString(16)
          } for LPC_EXCEPTION)`
          : ""),
    );
  }
  const oa = new ObjectAttributes(
    name,
    options.securityDescriptor ? { securityDescriptor: options.securityDescriptor } : {},
  );
  const cell = handleCell();
  check(
    nt.NtCreatePort(cell, oa.struct, options.maxConnectionInfoLength ?? 0x80, maxMessage, 0),
    "NtCreatePort",
    name ?? "(unnamed)",
  );
  return NtHandle.fromCell("connection-port", cell, `port ${name ?? "(unnamed)"}`, closerOf(nt));
}

/** One accepted connection, as the server sees it. */
export interface Connection {
  /** The value given to `NtAcceptConnectPort` as PortContext; the kernel hands it back. */
  readonly context: bigint;
  /** The client that connected. */
  readonly clientId: ClientId;
  /** The connection information it sent. */
  readonly connectInfo: Uint8Array;
  /** The server's communication port for this client. */
  readonly port: NtHandle<"port">;
  /**
   * The client's port view as mapped in this process (the REMOTE_PORT_VIEW of the accept), or
   * null when the client connected without one. It lives as long as `port`.
   */
  readonly view: PortView | null;
}

/** A request as the server's handler sees it. */
export interface LpcRequest {
  /** The header (sender, MessageId, lengths). */
  header: PortMessageHeader;
  /** The payload. */
  data: Uint8Array;
  /** The connection it came on. */
  connection: Connection;
  /**
   * Runs `fn` while this thread impersonates the client (`NtImpersonateClientOfPort`), then
   * reverts, also when `fn` throws.
   */
  impersonate<T>(fn: () => T): T;
}

/**
 * An event of the server's timeline: the fields every server's timeline has
 * ({@link ServerEvent}, shared with the ALPC server's).
 */
export type LpcEvent = ServerEvent;

/** What the server does with each kind of message. */
export interface LpcHandler {
  /** Accept this connection? (Default: yes.) */
  accept?(clientId: ClientId, connectInfo: Uint8Array): boolean;
  /**
   * The reply payload for a request, optionally with a note for the timeline's `reply` event.
   * Throwing sends an empty reply and logs an `error` event. Give this or {@link requestInto}.
   */
  request?(req: LpcRequest): Uint8Array | { data: Uint8Array; note: string };
  /**
   * The request path that allocates nothing (preferred over {@link request} when both are given):
   * write the reply payload into `reply` (the reply buffer's payload, `maxMessageLength` - 40
   * bytes) and return its length. `req` and everything in it (`header`, `data`, a view of the
   * receive buffer) is one object the server reuses: valid until this returns, so copy what you
   * keep. Throwing, or a length outside 0..`reply.byteLength`, sends an empty reply and logs an
   * `error` event. With the server's `logRequests: false` a request costs no allocation at all.
   */
  requestInto?(req: LpcRequest, reply: Uint8Array): number;
  /** A datagram (never replied to). */
  datagram?(header: PortMessageHeader, data: Uint8Array, connection: Connection | undefined): void;
  /**
   * An `LPC_EXCEPTION` from a process whose exception port this is: the verdict to reply with.
   * Default `DBG_EXCEPTION_NOT_HANDLED`: any status >= 0 but that one counts as handled
   * (DbgkForwardException.c), so continue only an exception you raised on purpose.
   */
  exception?(message: ExceptionMessage): number;
  /**
   * An `LPC_ERROR_EVENT` (a hard error, ExpRaiseHardError.c): the `Response` to reply with.
   * Default `ResponseReturnToCaller`. The raising thread waits until the reply.
   */
  hardError?(message: HardErrorMessage): number;
}

/** Options for {@link LpcServer}. */
export interface LpcServerOptions {
  /** The ntdll symbols (default: the real ones). */
  nt?: LpcSymbols;
  /** The port's maximum message length (for reply checks); default 512. */
  maxMessageLength?: number;
  /** Receives each timeline event as it happens. */
  onEvent?: (e: LpcEvent) => void;
  /** The clock for event times (default `performance.now`). */
  now?: () => number;
  /**
   * Log an `LPC_REQUEST` and a `reply` event for every request (default true). False keeps the
   * timeline to connections, kernel messages and errors: what a server that must not allocate per
   * message (a {@link LpcHandler.requestInto} handler, a benchmark) needs.
   */
  logRequests?: boolean;
}

/**
 * A legacy LPC server on one connection port: receives (`NtReplyWaitReceivePortEx`), dispatches on
 * `Type & 0xFF`, replies with the received MessageId and ClientId, keeps a context per connection
 * and closes every handle when disposed. `step()` serves one message; `run()` serves until told to
 * stop. It is thread-bound (impersonation, `LPC_CLIENT_DIED`): to serve while the main thread
 * goes on, run it in a {@link ServerWorker}.
 *
 * @example An echo server that serves for ten seconds on this thread (Windows only, not run here:
 * real LPC needs Windows, Wine 8.0 stubs it; a client connects from another thread or process)
 * ```ts ignore
 * import { createConnectionPort, LpcServer } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * using server = new LpcServer(createConnectionPort("\\RPC Control\\echo-doc"), {
 *   request: ({ data }) => data, // the reply is the request
 * });
 * assertEquals(server.port.kind, "connection-port");
 * const until = Date.now() + 10_000;
 * server.run(() => Date.now() > until);
 * assertEquals(server.events.filter((e) => e.event === "error"), []);
 * ```
 */
export class LpcServer implements Disposable {
  readonly #port: NtHandle<"connection-port">;
  readonly #nt: LpcSymbols;
  readonly #handler: LpcHandler;
  readonly #maxMessage: number;
  readonly #onEvent: (e: LpcEvent) => void;
  readonly #now: () => number;
  readonly #t0: number;
  readonly #connections = new Map<bigint, Connection>();
  readonly #receive = new Uint8Array(PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH);
  readonly #context = new BigUint64Array(1);
  /** The PortContext's two halves, read without making a BigInt. */
  readonly #contextWords = new Uint32Array(this.#context.buffer);
  #pendingReply: Uint8Array<ArrayBuffer> | null = null;
  #nextContext = 1n;
  // The per-message path's reused parts (requestInto): nothing below is allocated per message.
  readonly #logRequests: boolean;
  readonly #portPointer: Deno.PointerObject;
  readonly #byNumber = new Map<number, Connection>();
  readonly #header = new PortMessageHeaderView(this.#receive);
  readonly #replyBuffer = new Uint8Array(PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH);
  readonly #replyView = new DataView(this.#replyBuffer.buffer);
  readonly #requestHeader = this.#receive.subarray(0, PM.size);
  readonly #replyPayload: Uint8Array;
  readonly #payloads: Uint8Array[] = [];
  readonly #request: LpcRequest;
  #timeoutMs = -1; // none yet
  #timeout = relativeTimeout(0);
  /** Every event so far. */
  readonly events: LpcEvent[] = [];

  /**
   * Serves `port` (a connection port this server owns and will close).
   *
   * @param port the connection port
   * @param handler what to do with each message
   * @param options symbols, limits, event sink
   */
  constructor(
    port: NtHandle<"connection-port">,
    handler: LpcHandler,
    options: LpcServerOptions = {},
  ) {
    this.#port = port;
    this.#handler = handler;
    this.#nt = options.nt ?? ntdll();
    this.#maxMessage = options.maxMessageLength ?? PORT_MAXIMUM_MESSAGE_LENGTH;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    this.#t0 = this.#now();
    if (!handler.request && !handler.requestInto) {
      throw new TypeError("an LpcHandler needs request() or requestInto()");
    }
    this.#logRequests = options.logRequests ?? true;
    this.#portPointer = port.unsafePointer;
    this.#replyPayload = this.#replyBuffer.subarray(
      PM.size,
      Math.min(this.#maxMessage, this.#replyBuffer.byteLength),
    );
    const request: LpcRequest = {
      header: this.#header,
      data: this.#requestHeader.subarray(0, 0),
      connection: undefined as unknown as Connection,
      impersonate: (fn) => this.#impersonate(request.connection, fn),
    };
    this.#request = request;
  }

  /**
   * The connection port, borrowed: the server closes it, do not (for calls that take it, such as
   * setting an exception port).
   */
  get port(): NtHandle<"connection-port"> {
    return this.#port;
  }

  /** The live connections, by context. */
  get connections(): ReadonlyMap<bigint, Connection> {
    return this.#connections;
  }

  /** A `requestInto` handler's error, logged against the message being served (made once). */
  readonly #intoError = (note: string): void =>
    this.#log("error", this.#header.snapshot(), { note });

  #log(event: string, header?: PortMessageHeader, extra: Partial<LpcEvent> = {}): void {
    const now = this.#now();
    const e: LpcEvent = {
      t: Math.round((now - this.#t0) * 10) / 10,
      at: Math.round((performance.timeOrigin + now) * 10) / 10,
      event,
    };
    if (header) {
      Object.assign(e, headerEventFields(header), {
        context: `0x${this.#context[0]!.toString(16)}`,
      });
      const c = this.#connections.get(this.#context[0]!);
      if (c) e.client = { pid: c.clientId.process, tid: c.clientId.thread };
    }
    Object.assign(e, extra);
    this.events.push(e);
    this.#onEvent(e);
  }

  /**
   * Sends the pending reply (if any) and waits up to `timeoutMs` for one message, then handles it.
   * Returns false when the wait timed out.
   */
  step(timeoutMs = 100): boolean {
    const receiveEx = requireSymbol(
      this.#nt.NtReplyWaitReceivePortEx,
      "ntdll!NtReplyWaitReceivePortEx",
    );
    if (timeoutMs !== this.#timeoutMs) {
      this.#timeout = relativeTimeout(timeoutMs);
      this.#timeoutMs = timeoutMs;
    }
    const timeout = this.#timeout;
    const reply = this.#pendingReply;
    this.#pendingReply = null;
    this.#contextWords[0] = 0;
    this.#contextWords[1] = 0;
    const status = receiveEx(
      // The pointer made once; a closed port still throws (unsafePointer).
      this.#port.closed ? this.#port.unsafePointer : this.#portPointer,
      this.#context,
      reply,
      this.#receive,
      timeout,
    );
    if (!ntSuccess(status)) {
      if (reply) {
        // The reply could not be delivered (the client went away): note it and go on.
        this.#log("reply-failed", undefined, { note: describeStatus(status) });
        return true;
      }
      check(status, "NtReplyWaitReceivePortEx", this.#port.what);
    }
    if (toUnsigned(status) === NTSTATUS.STATUS_TIMEOUT) return false;
    // Not through #dispatch: its closures give it a context, allocated on every call.
    if (!this.#dispatchInto()) this.#dispatch();
    return true;
  }

  /** Loops {@link step} until `shouldStop()` returns true (checked at least every `pollMs`). */
  run(shouldStop: () => boolean, pollMs = 100): void {
    while (!shouldStop()) this.step(pollMs);
  }

  /**
   * The connection a message came on, by the PortContext the kernel handed back: our contexts are
   * small numbers, so the lookup makes no BigInt.
   */
  #connectionOf(): Connection | undefined {
    const w = this.#contextWords;
    return w[1] === 0 ? this.#byNumber.get(w[0]!) : this.#connections.get(this.#context[0]!);
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
    if (this.#logRequests) this.#log(messageTypeName(header.type), header.snapshot());
    const dataLength = header.dataLength;
    const req = this.#request;
    req.connection = connection;
    req.data = this.#payloads[dataLength] ??= this.#receive.subarray(
      PM.size,
      PM.size + dataLength,
    );
    const length = callRequestInto(this.#handler, into, req, this.#replyPayload, this.#intoError);
    // The reply is the request's header (MessageId, CallbackId, ClientId, Type: what
    // rewriteAsReply keeps) with the new lengths.
    const dv = this.#replyView;
    const from = header.dataView;
    for (let at = 0; at < PM.size; at += 4) dv.setUint32(at, from.getUint32(at, true), true);
    dv.setUint16(PM.offsets.DataLength, length, true);
    dv.setUint16(PM.offsets.TotalLength, PM.size + length, true);
    dv.setUint16(PM.offsets.DataInfoOffset, 0, true);
    this.#pendingReply = this.#replyBuffer;
    if (this.#logRequests) {
      this.#log("reply", header.snapshot(), { dataLength: length, totalLength: PM.size + length });
    }
    return true;
  }

  #dispatch(): void {
    let msg;
    try {
      msg = decodePortMessage(this.#receive);
    } catch (e) {
      // A message the kernel delivered but we cannot parse: log it, never crash.
      this.#log("error", undefined, { note: e instanceof Error ? e.message : String(e) });
      return;
    }
    const { header, data } = msg;
    const context = this.#context[0]!;
    const connection = this.#connections.get(context);
    switch (header.type) {
      case LpcMessageType.LPC_CONNECTION_REQUEST:
        return this.#connect(header, data);
      case LpcMessageType.LPC_REQUEST: {
        this.#log(messageTypeName(header.type), header);
        if (!connection) {
          this.#queueReply(new Uint8Array(0), header, "no connection for this PortContext");
          return;
        }
        let payload: Uint8Array;
        let note: string | undefined;
        try {
          if (!this.#handler.request) {
            // A requestInto handler whose request the fast path did not take.
            const length = this.#handler.requestInto!(
              {
                header,
                data,
                connection,
                impersonate: (fn) => this.#impersonate(connection, fn),
              },
              this.#replyPayload,
            );
            payload = this.#replyPayload.slice(0, length);
            this.#queueReply(payload, header);
            return;
          }
          const r = this.#handler.request({
            header,
            data,
            connection,
            impersonate: (fn) => this.#impersonate(connection, fn),
          });
          if (r instanceof Uint8Array) payload = r;
          else ({ data: payload, note } = r);
        } catch (e) {
          this.#log("error", header, { note: e instanceof Error ? e.message : String(e) });
          payload = new Uint8Array(0);
        }
        this.#queueReply(payload, header, note);
        return;
      }
      case LpcMessageType.LPC_DATAGRAM:
        this.#log(messageTypeName(header.type), header);
        this.#handler.datagram?.(header, data, connection);
        return; // never replied to
      case LpcMessageType.LPC_PORT_CLOSED:
      case LpcMessageType.LPC_CLIENT_DIED: {
        const extra = clientDiedEventFields(this.#receive);
        this.#log(messageTypeName(header.type), header, extra);
        if (header.type === LpcMessageType.LPC_PORT_CLOSED && connection) {
          this.#connections.delete(context);
          this.#byNumber.delete(Number(context));
          connection.port.close();
        }
        return;
      }
      case LpcMessageType.LPC_EXCEPTION: {
        // The faulting thread waits for this reply: send the message back with the verdict.
        const reply = this.#receive.slice(0, header.totalLength);
        const fields = answerException(
          this.#receive,
          reply,
          this.#handler.exception?.bind(this.#handler),
        );
        this.#log(messageTypeName(header.type), header, fields);
        this.#pendingReply = reply;
        return;
      }
      case LpcMessageType.LPC_ERROR_EVENT: {
        // A hard error (ExpRaiseHardError.c): a request the raising thread waits on.
        const reply = this.#receive.slice(0, header.totalLength);
        const fields = answerHardError(
          this.#receive,
          reply,
          this.#handler.hardError?.bind(this.#handler),
        );
        this.#log(messageTypeName(header.type), header, fields);
        this.#pendingReply = reply;
        return;
      }
      default:
        this.#log(messageTypeName(header.type), header, {
          note: `message type ${header.type} (raw 0x${header.rawType.toString(16)})`,
        });
        return;
    }
  }

  #queueReply(payload: Uint8Array, header: PortMessageHeader, note?: string): void {
    const reply = this.#receive.slice(
      0,
      Math.max(PM.size, header.totalLength, PM.size + payload.byteLength),
    );
    try {
      rewriteAsReply(reply, payload, this.#maxMessage);
    } catch (e) {
      this.#log("error", header, { note: e instanceof PortMessageError ? e.message : String(e) });
      rewriteAsReply(reply, new Uint8Array(0), this.#maxMessage);
    }
    this.#pendingReply = reply;
    this.#log("reply", header, {
      dataLength: payload.byteLength,
      totalLength: PM.size + payload.byteLength,
      ...(note ? { note } : {}),
    });
  }

  #connect(header: PortMessageHeader, connectInfo: Uint8Array): void {
    const accept = this.#handler.accept?.(header.clientId, connectInfo) ?? true;
    const id = this.#nextContext++;
    const cell = handleCell();
    // The client's view, if it sent one (AlpcpMapLegacyPortRemoteView.c fills it; all zeros
    // when there is none: AlpcpAcceptConnectPort.c).
    const clientView = remotePortViewStruct();
    const status = this.#nt.NtAcceptConnectPort(
      cell,
      Deno.UnsafePointer.create(id),
      this.#receive,
      accept ? 1 : 0,
      null,
      clientView,
    );
    if (!ntSuccess(status)) {
      this.#log("error", header, { note: `NtAcceptConnectPort: ${describeStatus(status)}` });
      return;
    }
    if (!accept) {
      this.#log("refuse", header);
      return;
    }
    const port = NtHandle.fromCell(
      "port",
      cell,
      `connection ${header.clientId.process}.${header.clientId.thread}`,
      closerOf(this.#nt),
    );
    const remote = readRemotePortView(clientView);
    const view = remote === null ? null : new PortView(
      remote.base,
      Number(remote.size),
      null,
      port,
      `view of client ${header.clientId.process}.${header.clientId.thread}`,
    );
    // The client is already connected: NtAcceptConnectPort released it (AlpcpAcceptConnectPort.c),
    // so a failing NtCompleteConnectPort is logged and the connection kept.
    const connection = { context: id, clientId: header.clientId, connectInfo, port, view };
    this.#connections.set(id, connection);
    this.#byNumber.set(Number(id), connection);
    this.#log("accept", header, {
      context: `0x${id.toString(16)}`,
      ...(view ? { note: `client view of ${view.size} bytes` } : {}),
    });
    const complete = this.#nt.NtCompleteConnectPort(port.unsafePointer);
    if (!ntSuccess(complete)) {
      this.#log("error", header, {
        note: `NtCompleteConnectPort: ${describeStatus(complete)} (connection kept)`,
      });
    }
  }

  #impersonate<T>(connection: Connection, fn: () => T): T {
    const impersonate = requireSymbol(
      this.#nt.NtImpersonateClientOfPort,
      "ntdll!NtImpersonateClientOfPort",
    );
    return withThreadTokenRestored(this.#nt, () => {
      check(
        impersonate(connection.port.unsafePointer, this.#receive),
        "NtImpersonateClientOfPort",
      );
    }, fn);
  }

  /** Closes every connection's port, then the connection port. */
  [Symbol.dispose](): void {
    for (const c of this.#connections.values()) c.port.close();
    this.#connections.clear();
    this.#byNumber.clear();
    this.#port.close();
  }
}

/** The section calls, from the given table or the real ntdll. */
function sectionSymbols(
  nt: LpcSymbols & Partial<Pick<NtdllSymbols, "NtCreateSection">>,
): SectionSymbols {
  return nt.NtCreateSection
    ? { NtCreateSection: nt.NtCreateSection, NtClose: nt.NtClose }
    : ntdll();
}

/** Options for {@link LpcClient.connect}. */
export interface ConnectOptions {
  /** How far the server may impersonate us (default `Impersonation`). */
  impersonationLevel?: ImpersonationLevelName;
  /** Connection information for the server. */
  connectInfo?: Uint8Array;
  /**
   * How many bytes of connection information the server may send back (default 0x80). The
   * kernel returns min(the length the client passed, the server's), so the client passes its
   * buffer's whole capacity (NtSecureConnectPort.c, AlpcpReceiveLegacyConnectionReply.c); the
   * server then receives that many bytes, the rest zero.
   */
  connectInfoCapacity?: number;
  /**
   * Connect with a port view of `size` bytes (rounded up to pages): the client creates a
   * page-file section (or uses `section`), names it in the PORT_VIEW, and the kernel maps it here
   * and in the server. The client's own section handle is closed once connected (the mapping keeps
   * the section: AlpcpCreateSection.c references it); a given `section` stays the caller's.
   */
  view?: { size: number; section?: Section };
  /** The ntdll symbols (default: the real ones). */
  nt?: LpcSymbols & Partial<Pick<NtdllSymbols, "NtCreateSection">>;
}

/**
 * A connected LPC client: `request()` sends and waits for the reply (`NtRequestWaitReplyPort`),
 * `send()` sends a datagram, `registerThreadTerminatePort()` asks for `LPC_CLIENT_DIED`.
 * Disposing disconnects (the server sees `LPC_PORT_CLOSED`).
 *
 * @example Connect to a server started by ServerWorker (Windows only, not run here: real LPC needs Windows, Wine 8.0 stubs it)
 * ```ts ignore
 * import { LpcClient, NtError } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * const e = assertThrows(() => LpcClient.connect("\\RPC Control\\no-such-port"), NtError);
 * assertEquals(e.symbol, "STATUS_OBJECT_NAME_NOT_FOUND");
 * ```
 */
export class LpcClient implements Disposable {
  readonly #port: NtHandle<"port">;
  readonly #nt: LpcSymbols;
  /** The server's maximum message length (a total length, header included). */
  readonly maxMessageLength: number;
  /** The connection information the server returned. */
  readonly connectInfo: Uint8Array;
  /** The client's port view (`view` option), mapped here; `remoteBase` is the server's address. */
  readonly view: PortView | null;
  /** The server's port view, if the server gave one at accept. */
  readonly serverView: PortView | null;

  private constructor(
    port: NtHandle<"port">,
    nt: LpcSymbols,
    maxMessageLength: number,
    connectInfo: Uint8Array,
    views: { view: PortView | null; serverView: PortView | null },
  ) {
    this.#port = port;
    this.#nt = nt;
    this.maxMessageLength = maxMessageLength;
    this.connectInfo = connectInfo;
    this.view = views.view;
    this.serverView = views.serverView;
  }

  /** Connects to a named port (`NtConnectPort`). Throws `NtError` (e.g. refused, not found). */
  static connect(name: string, options: ConnectOptions = {}): LpcClient {
    const nt = options.nt ?? ntdll();
    const portName = new UnicodeString(name);
    const qos = securityQos(options.impersonationLevel ?? "Impersonation");
    const sent = options.connectInfo ?? new Uint8Array(0);
    const capacity = Math.max(sent.byteLength, options.connectInfoCapacity ?? 0x80);
    const most = LPC_LEGACY_MAX_MESSAGE_LENGTH - PM.size;
    if (capacity > most) {
      throw new RangeError(
        `connection information of ${capacity} bytes exceeds ${most} (648 - 40 on x64)`,
      );
    }
    const info = new Uint8Array(capacity);
    info.set(sent);
    const infoLength = new Uint32Array([capacity]);
    const maxMessage = new Uint32Array(1);
    const cell = handleCell();
    const serverView = remotePortViewStruct();
    const asked = options.view;
    const size = asked ? roundToPages(asked.size) : 0;
    if (asked && (!Number.isSafeInteger(asked.size) || asked.size < 1)) {
      throw new RangeError(`view size ${asked.size} is not a positive byte count`);
    }
    let owned: Section | undefined;
    let clientView: Uint8Array<ArrayBuffer> | null = null;
    try {
      if (asked) {
        const section = asked.section ?? (owned = Section.create(size, { nt: sectionSymbols(nt) }));
        clientView = portViewStruct(section.handle.unsafeValue, size);
      }
      check(
        nt.NtConnectPort(
          cell,
          portName.struct,
          qos,
          clientView,
          serverView,
          maxMessage,
          info,
          infoLength,
        ),
        "NtConnectPort",
        name,
      );
    } finally {
      owned?.close();
    }
    const port = NtHandle.fromCell("port", cell, `client port ${name}`, closerOf(nt));
    const mine = clientView ? readPortView(clientView) : null;
    const theirs = readRemotePortView(serverView);
    return new LpcClient(port, nt, maxMessage[0]!, info.slice(0, infoLength[0]!), {
      view: mine && mine.base !== 0n
        ? new PortView(mine.base, Number(mine.size), mine.remoteBase, port, `view of ${name}`)
        : null,
      serverView: theirs
        ? new PortView(theirs.base, Number(theirs.size), null, port, `server view of ${name}`)
        : null,
    });
  }

  #encode(data: Uint8Array): Uint8Array<ArrayBuffer> {
    return encodePortMessage({
      data,
      maxTotalLength: Math.min(
        this.maxMessageLength || PORT_MAXIMUM_MESSAGE_LENGTH,
        LPC_LEGACY_MAX_MESSAGE_LENGTH,
      ),
    });
  }

  /** Sends a request and waits for the reply (`NtRequestWaitReplyPort`). */
  request(data: Uint8Array): { header: PortMessageHeader; data: Uint8Array } {
    const message = this.#encode(data);
    const reply = new Uint8Array(PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH);
    check(
      this.#nt.NtRequestWaitReplyPort(this.#port.unsafePointer, message, reply),
      "NtRequestWaitReplyPort",
    );
    return decodePortMessage(reply);
  }

  /** Sends a datagram (`NtRequestPort`); there is no reply. */
  send(data: Uint8Array): void {
    const requestPort = requireSymbol(this.#nt.NtRequestPort, "ntdll!NtRequestPort");
    check(requestPort(this.#port.unsafePointer, this.#encode(data)), "NtRequestPort");
  }

  /**
   * Registers the calling thread so that the server gets `LPC_CLIENT_DIED` when it exits
   * (`NtRegisterThreadTerminatePort`; thread-bound).
   */
  registerThreadTerminatePort(): void {
    check(
      this.#nt.NtRegisterThreadTerminatePort(this.#port.unsafePointer),
      "NtRegisterThreadTerminatePort",
    );
  }

  /** The client communication port, borrowed: the client closes it, do not. */
  get port(): NtHandle<"port"> {
    return this.#port;
  }

  /** Disconnects (closes the port; the server receives `LPC_PORT_CLOSED`). */
  close(): void {
    this.#port.close();
  }

  /** Disconnects. */
  [Symbol.dispose](): void {
    this.close();
  }
}
