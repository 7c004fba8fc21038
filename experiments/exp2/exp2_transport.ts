/**
 * Experiment 2's transport seam (experiment 3 reuses it: its server is experiment 2's): the
 * server that becomes the client's exception port (its port, its Worker thread with a SYSTEM
 * token, the commands run there) and the client's connection (control requests, the termination
 * port registration) go through {@link Exp2Transport}, one implementation per transport. The
 * control protocol and the verdicts (`exp2_control.ts`, `exp2_handler.ts`) are the same on both.
 *
 * - LPC: `ServerWorker` and `LpcClient`: the seed's experiment, unchanged.
 * - ALPC: an ALPC connection port as the exception port (NtSetInformationProcess accepts any
 *   port object, NtSetInformationProcess.c), served with NtAlpcSendWaitReceivePort.
 *
 * @module
 */

import {
  AlpcClient,
  type AlpcEvent,
  AlpcServerWorker,
  LpcClient,
  type LpcEvent,
  ServerWorker,
} from "../../mod.ts";
import type { Exp2HandlerOptions } from "./exp2_handler.ts";
import type { Transport } from "../_transport.ts";

/** The running server, whatever the transport. */
export interface Exp2Server extends AsyncDisposable {
  /** The server's process id. */
  readonly processId: number;
  /** The server thread's id. */
  readonly threadId: number;
  /** Its timeline (the LPC server's event shape on both transports). */
  readonly events: LpcEvent[];
  /** Runs a handler command on the server's thread (`system`, `set-exception-port`). */
  command(request: unknown, timeoutMs?: number): Promise<unknown>;
  /** Stops it. */
  stop(): Promise<void>;
}

/** A client's connection to the server. */
export interface Exp2Connection extends Disposable {
  /** Sends one control request and waits for the reply's payload. */
  request(data: Uint8Array): Uint8Array;
  /** Asks for `LPC_CLIENT_DIED` when the calling thread exits (NtRegisterThreadTerminatePort). */
  registerThreadTerminatePort(): void;
}

/** What starting the server takes. */
export interface Exp2ServerOptions {
  /** The connection port's name. */
  portName: string;
  /** Who may connect. */
  sddl: string;
  /** The port's maximum message length. */
  maxMessageLength?: number;
  /** The handler's options (SYSTEM, the verdict). */
  handlerOptions: Exp2HandlerOptions;
  /** Each event as it arrives. */
  onEvent?: (e: LpcEvent) => void;
}

/** Experiment 2's kernel-facing steps over one transport. */
export interface Exp2Transport {
  /** Which. */
  readonly name: Transport;
  /** Starts the server on its own Worker thread (the handler is `exp2_handler.ts`). */
  startServer(o: Exp2ServerOptions): Promise<Exp2Server>;
  /** Connects a client to `port`. */
  connect(port: string): Exp2Connection;
}

const HANDLER = new URL("./exp2_handler.ts", import.meta.url);

/** Over legacy LPC: the seed's experiment. */
export const LPC_TRANSPORT: Exp2Transport = {
  name: "lpc",
  startServer: (o) =>
    ServerWorker.start({
      portName: o.portName,
      sddl: o.sddl,
      ...(o.maxMessageLength ? { maxMessageLength: o.maxMessageLength } : {}),
      handlerModule: HANDLER,
      handlerOptions: o.handlerOptions,
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    }),
  connect(port) {
    const client = LpcClient.connect(port);
    return {
      request: (data) => client.request(data).data,
      registerThreadTerminatePort: () => client.registerThreadTerminatePort(),
      [Symbol.dispose]: () => client.close(),
    };
  },
};

/**
 * An ALPC server's event in the shape the experiments read (the LPC server's): the same typed
 * fields (`createTime`, `exception`, `hardError`, `client`...: ffi/server_events.ts), with the
 * ALPC-only ones (sequence, attributes, viewSize, callbackId) kept.
 */
export function fromAlpcEvent(e: AlpcEvent): LpcEvent {
  return { ...e };
}

/**
 * Over ALPC: the exception port is an ALPC connection port (NtSetInformationProcess.c references
 * any LpcPortObjectType object), served with NtAlpcSendWaitReceivePort; `LPC_EXCEPTION` arrives
 * there as a request the faulting thread waits on, `LPC_CLIENT_DIED` as a datagram. A termination
 * port registration takes the client's ALPC port the same way (NtRegisterThreadTerminatePort.c
 * references any LpcPortObjectType object).
 */
export const ALPC_TRANSPORT: Exp2Transport = {
  name: "alpc",
  async startServer(o) {
    // One live timeline, read as it grows (as ServerWorker's): each event as it arrives, mapped.
    const events: LpcEvent[] = [];
    const w = await AlpcServerWorker.start({
      portName: o.portName,
      sddl: o.sddl,
      ...(o.maxMessageLength ? { portAttributes: { maxMessageLength: o.maxMessageLength } } : {}),
      handlerModule: HANDLER,
      handlerOptions: o.handlerOptions,
      onEvent: (e: AlpcEvent) => {
        const mapped = fromAlpcEvent(e);
        events.push(mapped);
        o.onEvent?.(mapped);
      },
    });
    return {
      get processId() {
        return w.processId;
      },
      get threadId() {
        return w.threadId;
      },
      events,
      command: (request, timeoutMs) => w.command(request, timeoutMs),
      stop: () => w.stop(),
      [Symbol.asyncDispose]: () => w[Symbol.asyncDispose](),
    };
  },
  connect(port) {
    const client = AlpcClient.connect(port);
    return {
      request: (data) => client.request(data).data,
      registerThreadTerminatePort: () => client.registerThreadTerminatePort(),
      [Symbol.dispose]: () => client.close(),
    };
  },
};

/** The implementation of `t`. */
export function exp2Transport(t: Transport): Exp2Transport {
  return t === "lpc" ? LPC_TRANSPORT : ALPC_TRANSPORT;
}
