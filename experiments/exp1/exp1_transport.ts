/**
 * Experiment 1's transport seam: the kernel-facing steps of its server (create the port, serve
 * READ requests on its own Worker thread, impersonate the client in safe mode) and of its client
 * (connect with an impersonation level, send a request and wait for the reply) go through one
 * small interface, {@link Exp1Transport}, with one implementation per transport. The READ
 * protocol and the server's checks (`exp1_protocol.ts`, `exp1_handler.ts`) are the same on both.
 *
 * - LPC: `ServerWorker` (NtCreatePort, NtReplyWaitReceivePort, NtImpersonateClientOfPort) and
 *   `LpcClient` (NtConnectPort, NtRequestWaitReplyPort): the seed's experiment, unchanged.
 * - ALPC: the ALPC library's server Worker and client (NtAlpcCreatePort,
 *   NtAlpcSendWaitReceivePort, NtAlpcImpersonateClientOfPort; NtAlpcConnectPort).
 *
 * @module
 */

import {
  AlpcClient,
  AlpcServerWorker,
  type AlpcView,
  LpcClient,
  type LpcEvent,
  ServerWorker,
} from "../../mod.ts";
import type { AlpcSymbols, ImpersonationLevelName } from "../../raw.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import { isViewRequest } from "./exp1_view.ts";
import { type PortInfo, portInfoOf, type Transport } from "../_transport.ts";

/** The running server, whatever the transport: who it is, its timeline, and how it stops. */
export interface Exp1Server extends AsyncDisposable {
  /** The server's process id. */
  readonly processId: number;
  /** The server thread's id. */
  readonly threadId: number;
  /** Its timeline (the LPC server's event shape on both transports). */
  readonly events: LpcEvent[];
  /** What `NtAlpcQueryInformation` shows of its connection port (asked on its thread). */
  portInfo(): Promise<PortInfo>;
  /** Stops it: every port closed, the Worker ended. */
  stop(): Promise<void>;
}

/** A client's connection to the server. */
export interface Exp1Connection extends Disposable {
  /** Sends one request and waits for the reply's payload. */
  request(data: Uint8Array): Uint8Array;
  /** What `NtAlpcQueryInformation` shows of the client's own port. */
  portInfo(): PortInfo;
  /**
   * The connection's view (asked with `viewSize`), where READ_VIEW answers: over LPC the
   * connection's port view, over ALPC a view of a section on the client's port that goes with
   * each READ_VIEW request.
   */
  readonly view: { readonly size: number; read(offset: number, length: number): Uint8Array } | null;
}

/** What starting the server takes. */
export interface Exp1ServerOptions {
  /** The connection port's name. */
  portName: string;
  /** Who may connect. */
  sddl: string;
  /** The READ handler's options (root, safe mode). */
  handlerOptions: Exp1HandlerOptions;
  /** Each event as it arrives. */
  onEvent?: (e: LpcEvent) => void;
}

/** Experiment 1's kernel-facing steps over one transport. */
export interface Exp1Transport {
  /** Which. */
  readonly name: Transport;
  /** Starts the server on its own Worker thread (the handler is `exp1_handler.ts`). */
  startServer(o: Exp1ServerOptions): Promise<Exp1Server>;
  /**
   * Connects a client to `port`, allowing the server `level`; with `viewSize`, the LPC client
   * connects with a port view of that many bytes (exp1_view.ts), the ALPC one makes a view of that
   * many bytes on its port and sends it with every READ_VIEW request.
   */
  connect(port: string, o: { level: ImpersonationLevelName; viewSize?: number }): Exp1Connection;
}

const HANDLER = new URL("./exp1_handler.ts", import.meta.url);

/** A server Worker of either transport, as an {@link Exp1Server}. */
function asServer(w: ServerWorker | AlpcServerWorker): Exp1Server {
  return {
    get processId() {
      return w.processId;
    },
    get threadId() {
      return w.threadId;
    },
    events: w.events,
    portInfo: async () => await w.command({ op: "port-info" }) as PortInfo,
    stop: () => w.stop(),
    [Symbol.asyncDispose]: () => w[Symbol.asyncDispose](),
  };
}

/** Over legacy LPC: the seed's experiment. */
export const LPC_TRANSPORT: Exp1Transport = {
  name: "lpc",
  startServer: async (o) =>
    asServer(
      await ServerWorker.start({
        portName: o.portName,
        sddl: o.sddl,
        handlerModule: HANDLER,
        handlerOptions: o.handlerOptions,
        ...(o.onEvent ? { onEvent: o.onEvent } : {}),
      }),
    ),
  connect(port, o) {
    const client = LpcClient.connect(port, {
      impersonationLevel: o.level,
      ...(o.viewSize ? { view: { size: o.viewSize } } : {}),
    });
    return {
      request: (data) => client.request(data).data,
      portInfo: () => portInfoOf(client.port),
      view: client.view,
      [Symbol.dispose]: () => client.close(),
    };
  },
};

/**
 * Over ALPC: the connection port is `NtAlpcCreatePort`'s, each client is accepted with a
 * PortContext of its own (`NtAlpcAcceptConnectPort`), requests arrive and are replied to with
 * `NtAlpcSendWaitReceivePort`, and safe mode impersonates with `NtAlpcImpersonateClientOfPort`
 * (from the connection's client context: the client port allows impersonation, as the kernel's
 * default attributes do, AlpcpValidateAndSetPortAttributes.c).
 */
export const ALPC_TRANSPORT: Exp1Transport = {
  name: "alpc",
  startServer: async (o) =>
    asServer(
      await AlpcServerWorker.start({
        portName: o.portName,
        sddl: o.sddl,
        handlerModule: HANDLER,
        handlerOptions: o.handlerOptions,
        ...(o.onEvent ? { onEvent: o.onEvent } : {}),
      }),
    ),
  connect: (port, o) => connectAlpc(port, o),
};

/**
 * The ALPC client's side of {@link ALPC_TRANSPORT} (`nt`: the symbols, for the fake kernel's tests).
 *
 * @param port the connection port's name
 * @param o the level the server may impersonate, the view's size, the symbols
 */
export function connectAlpc(
  port: string,
  o: { level: ImpersonationLevelName; viewSize?: number; nt?: AlpcSymbols },
): Exp1Connection {
  const client = AlpcClient.connect(port, {
    impersonationLevel: o.level,
    ...(o.nt ? { nt: o.nt } : {}),
  });
  // The server writes into its mapping of this view (AlpcpCreateView.c maps a non-secure view
  // read-write for the receiver) and releases it after its reply; ours goes with close().
  const view = ((): AlpcView | null => {
    try {
      return o.viewSize ? client.createView(o.viewSize) : null;
    } catch (e) {
      client.close();
      throw e;
    }
  })();
  return {
    request: (data) => client.request(data, view && isViewRequest(data) ? { view } : {}).data,
    portInfo: () => portInfoOf(client.port),
    view: view && { size: view.size, read: (offset, length) => view.read(offset, length) },
    [Symbol.dispose]: () => client.close(),
  };
}

/** The implementation of `t`. */
export function exp1Transport(t: Transport): Exp1Transport {
  return t === "lpc" ? LPC_TRANSPORT : ALPC_TRANSPORT;
}
