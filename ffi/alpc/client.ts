/**
 * An ALPC client: connect (`NtAlpcConnectPort`, optionally requiring the server's SID), send
 * synchronous requests and datagrams with attributes (a view, a security context), disconnect.
 *
 * @module
 */

import { requireSymbol } from "../_loader.ts";
import { handleCell, NtHandle } from "../nt/handle.ts";
import {
  type ImpersonationLevelName,
  securityQos,
  UnicodeString,
} from "../nt/object_attributes.ts";
import { sidFromString, sidToString } from "../nt/tokens.ts";
import { ntdll } from "../ntdll.ts";
import { decodePortMessage, type PortMessageHeader } from "../port_message.ts";
import { check, NtError } from "../status.ts";
import { type AlpcAttributeName, MessageAttributes } from "./attributes.ts";
import { AlpcMessageFlags, AlpcPortFlags } from "./constants.ts";
import {
  alpcCloser,
  type AlpcPortAttributes,
  type AlpcSymbols,
  encodeAlpcMessage,
  encodeAlpcPortAttributes,
  portAttributesMaxMessage,
  relativeTimeout,
} from "./port.ts";
import { AlpcSecurityContext } from "./security.ts";
import { AlpcView } from "./view.ts";

/** Options for {@link AlpcClient.connect}. */
export interface AlpcConnectOptions {
  /**
   * The SID the server process's token must have (`"S-1-5-18"` or the binary SID): the kernel
   * refuses a server with another user SID, or one in an AppContainer, with
   * STATUS_SERVER_SID_MISMATCH before the server sees the connection (AlpcpCreateClientPort.c,
   * AlpcpCheckConnectionSecurity.c).
   */
  requiredServerSid?: string | Uint8Array;
  /** How far the server may impersonate us (the client port's QoS; default `Impersonation`). */
  impersonationLevel?: ImpersonationLevelName;
  /**
   * Let the server impersonate us without a security attribute, from the connection's client
   * context (`ALPC_PORFLG_ALLOW_IMPERSONATION` on our port; default true, as the kernel's
   * default attributes: AlpcpValidateAndSetPortAttributes.c).
   */
  allowImpersonation?: boolean;
  /** The rest of the client port's attributes (`flags` are added to the above). */
  portAttributes?: AlpcPortAttributes;
  /** Connection data for the server (it may send data back: {@link AlpcClient.connectInfo}). */
  connectInfo?: Uint8Array;
  /** How long to wait for the server to accept (default: forever). */
  timeoutMs?: number;
  /** The ntdll symbols (default: the real ones). */
  nt?: AlpcSymbols;
}

/** Options of one message sent by {@link AlpcClient.request} or {@link AlpcClient.send}. */
export interface AlpcSendOptions {
  /** A view to send with the message (the view attribute). */
  view?: AlpcView;
  /**
   * The security attribute: a context from {@link AlpcClient.createSecurityContext}, or
   * `"message"` to have the kernel capture this thread's security for this message alone.
   */
  security?: AlpcSecurityContext | "message";
  /** The impersonation level for `security: "message"` (default `Impersonation`). */
  impersonationLevel?: ImpersonationLevelName;
  /** How long to wait for the reply (`request` only; default: forever). */
  timeoutMs?: number;
}

/** A reply, as {@link AlpcClient.request} returns it. */
export interface AlpcReply {
  /** The reply's header. */
  header: PortMessageHeader;
  /** The reply's payload. */
  data: Uint8Array;
}

/** The binary form of a SID given as text or bytes (checked). */
function sidBytes(sid: string | Uint8Array): Uint8Array<ArrayBuffer> {
  if (typeof sid === "string") return sidFromString(sid);
  sidToString(sid); // throws RangeError for bytes that are not a revision-1 SID
  return new Uint8Array(sid);
}

/** Throws unless the status is exactly STATUS_SUCCESS (a timeout is a success code, no result). */
function checkExact(status: number, call: string, context?: string): void {
  check(status, call, context);
  if (status !== 0) throw new NtError(call, status, "ntstatus", context);
}

/**
 * A connected ALPC client. `request()` sends a synchronous request and waits for the reply,
 * `send()` sends a datagram, both optionally with a view or a security attribute;
 * `createView()` and `createSecurityContext()` make what those carry (owned by the client, released
 * when it closes); `disconnect()` ends the connection, and disposing closes the port, at which the
 * server receives `LPC_PORT_CLOSED` (AlpcpClosePort.c, AlpcpSendCloseMessage.c).
 *
 * @example Connect, requiring a server that runs as SYSTEM (Windows only, not run here)
 * ```ts ignore
 * import { AlpcClient, NtError } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * const e = assertThrows(
 *   () => AlpcClient.connect("\\RPC Control\\my-user-server", { requiredServerSid: "S-1-5-18" }),
 *   NtError,
 * );
 * assertEquals(e.symbol, "STATUS_SERVER_SID_MISMATCH");
 * ```
 */
export class AlpcClient implements Disposable {
  readonly #port: NtHandle<"port">;
  readonly #nt: AlpcSymbols;
  readonly #owned: Disposable[] = [];
  /** The largest message this client sends or receives (its port's `MaxMessageLength`). */
  readonly maxMessageLength: number;
  /** The data the server sent back with its acceptance. */
  readonly connectInfo: Uint8Array;

  private constructor(
    port: NtHandle<"port">,
    nt: AlpcSymbols,
    maxMessageLength: number,
    connectInfo: Uint8Array,
  ) {
    this.#port = port;
    this.#nt = nt;
    this.maxMessageLength = maxMessageLength;
    this.connectInfo = connectInfo;
  }

  /**
   * Connects to a named ALPC (or legacy LPC) connection port, synchronously
   * (`ALPC_MSGFLG_SYNC_REQUEST`: without it the call returns before the server answers,
   * AlpcpProcessConnectionRequest.c). Throws `NtError` (refused, not found, SID mismatch, timeout).
   *
   * @param name the port's path
   * @param options the server SID, QoS, attributes, connection data, timeout and `nt`
   */
  static connect(name: string, options: AlpcConnectOptions = {}): AlpcClient {
    const nt = options.nt ?? ntdll();
    const connect = requireSymbol(nt.NtAlpcConnectPort, "ntdll!NtAlpcConnectPort");
    const allow = options.allowImpersonation ?? true;
    const pa = encodeAlpcPortAttributes({
      ...options.portAttributes,
      flags: ((options.portAttributes?.flags ?? 0) |
        (allow ? AlpcPortFlags.ALLOW_IMPERSONATION : 0)) >>> 0,
      impersonationLevel: options.impersonationLevel ??
        options.portAttributes?.impersonationLevel ??
        "Impersonation",
    });
    const max = portAttributesMaxMessage(pa);
    const sid = options.requiredServerSid === undefined
      ? undefined
      : sidBytes(options.requiredServerSid);
    const portName = new UnicodeString(name);
    const message = encodeAlpcMessage({
      ...(options.connectInfo ? { data: options.connectInfo } : {}),
      maxTotalLength: max,
      capacity: max,
    });
    const length = new BigUint64Array([BigInt(message.byteLength)]);
    const cell = handleCell();
    const status = connect(
      cell,
      portName.struct,
      null,
      pa,
      AlpcMessageFlags.SYNC_REQUEST,
      sid ? Deno.UnsafePointer.of(sid) : null,
      message,
      length,
      null,
      null,
      options.timeoutMs === undefined ? null : relativeTimeout(options.timeoutMs),
    );
    checkExact(status, "NtAlpcConnectPort", name);
    const port = NtHandle.fromCell("port", cell, `ALPC client port ${name}`, alpcCloser(nt));
    let info: Uint8Array;
    try {
      info = decodePortMessage(message).data;
    } catch {
      info = new Uint8Array(0);
    }
    return new AlpcClient(port, nt, max, info);
  }

  #attributes(options: AlpcSendOptions): MessageAttributes | null {
    const names: AlpcAttributeName[] = [];
    if (options.security) names.push("SECURITY");
    if (options.view) names.push("VIEW");
    if (names.length === 0) return null;
    const attrs = new MessageAttributes(names);
    if (options.security === "message") {
      attrs.setSecurity({ qos: securityQos(options.impersonationLevel ?? "Impersonation") });
    } else if (options.security) {
      attrs.setSecurity({
        qos: options.security.qos,
        contextHandle: options.security.unsafeHandle,
      });
    }
    if (options.view) attrs.setView(options.view.attribute);
    return attrs;
  }

  /**
   * Sends a synchronous request (`ALPC_MSGFLG_SYNC_REQUEST`) and waits for the reply.
   *
   * @param data the payload (at most `maxMessageLength - 40` bytes: larger data goes in a view)
   * @param options a view, a security attribute, a timeout
   */
  request(data: Uint8Array, options: AlpcSendOptions = {}): AlpcReply {
    const send = requireSymbol(
      this.#nt.NtAlpcSendWaitReceivePort,
      "ntdll!NtAlpcSendWaitReceivePort",
    );
    const message = encodeAlpcMessage({ data, maxTotalLength: this.maxMessageLength });
    const attrs = this.#attributes(options);
    const reply = new Uint8Array(this.maxMessageLength);
    const length = new BigUint64Array([BigInt(reply.byteLength)]);
    const status = send(
      this.#port.unsafePointer,
      AlpcMessageFlags.SYNC_REQUEST,
      message,
      attrs?.buffer ?? null,
      reply,
      length,
      null,
      options.timeoutMs === undefined ? null : relativeTimeout(options.timeoutMs),
    );
    checkExact(status, "NtAlpcSendWaitReceivePort", "synchronous request");
    return decodePortMessage(reply);
  }

  /**
   * Sends a datagram (`ALPC_MSGFLG_RELEASE_MESSAGE` with MessageId 0: the kernel types it
   * `LPC_DATAGRAM`, AlpcpSendMessage.c); there is no reply.
   *
   * @param data the payload
   * @param options a view, a security attribute
   */
  send(data: Uint8Array, options: Omit<AlpcSendOptions, "timeoutMs"> = {}): void {
    const send = requireSymbol(
      this.#nt.NtAlpcSendWaitReceivePort,
      "ntdll!NtAlpcSendWaitReceivePort",
    );
    const message = encodeAlpcMessage({ data, maxTotalLength: this.maxMessageLength });
    const attrs = this.#attributes(options);
    check(
      send(
        this.#port.unsafePointer,
        AlpcMessageFlags.RELEASE_MESSAGE,
        message,
        attrs?.buffer ?? null,
        null,
        null,
        null,
        null,
      ),
      "NtAlpcSendWaitReceivePort",
      "datagram",
    );
  }

  /**
   * A view of a new section on this client's port (owned by the client: released when it closes,
   * or earlier by disposing it).
   *
   * @param size bytes
   */
  createView(size: number): AlpcView {
    const view = AlpcView.create(this.#port, size, { nt: this.#nt });
    this.#owned.push(view);
    return view;
  }

  /**
   * Captures this thread's security on the client's port (`NtAlpcCreateSecurityContext`), to send
   * with requests; owned by the client.
   *
   * @param level how far the server may impersonate (default `Impersonation`)
   */
  createSecurityContext(level: ImpersonationLevelName = "Impersonation"): AlpcSecurityContext {
    const context = AlpcSecurityContext.create(this.#port, level, { nt: this.#nt });
    this.#owned.push(context);
    return context;
  }

  /**
   * Registers the calling thread so that the server gets `LPC_CLIENT_DIED` when it exits
   * (`NtRegisterThreadTerminatePort`, which takes any port: NtRegisterThreadTerminatePort.c
   * references LpcPortObjectType, the one ALPC port type; thread-bound).
   */
  registerThreadTerminatePort(): void {
    check(
      this.#nt.NtRegisterThreadTerminatePort(this.#port.unsafePointer),
      "NtRegisterThreadTerminatePort",
      this.#port.what,
    );
  }

  /** The client communication port, borrowed: the client closes it, do not. */
  get port(): NtHandle<"port"> {
    return this.#port;
  }

  /**
   * Ends the connection (`NtAlpcDisconnectPort`): the port is marked disconnected and its pending
   * messages cancelled (AlpcpDisconnectPort.c), so every later call on it fails with
   * STATUS_PORT_DISCONNECTED; the server hears of it (`LPC_PORT_CLOSED`) when the port closes.
   */
  disconnect(): void {
    check(
      requireSymbol(this.#nt.NtAlpcDisconnectPort, "ntdll!NtAlpcDisconnectPort")(
        this.#port.unsafePointer,
        0,
      ),
      "NtAlpcDisconnectPort",
      this.#port.what,
    );
  }

  /** Releases the views and security contexts it made, then closes the port (idempotent). */
  close(): void {
    if (this.#port.closed) return;
    const errors: unknown[] = [];
    for (const r of this.#owned.splice(0).reverse()) {
      try {
        r[Symbol.dispose]();
      } catch (e) {
        errors.push(e);
      }
    }
    this.#port.close();
    if (errors.length > 0) throw errors[0];
  }

  /** Closes the client. */
  [Symbol.dispose](): void {
    this.close();
  }
}
