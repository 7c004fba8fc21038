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

import { LpcClient, type LpcEvent, ServerWorker, UnsupportedError } from "../../mod.ts";
import type { ImpersonationLevelName } from "../../raw.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import type { Transport } from "../_transport.ts";

/** The running server, whatever the transport: who it is, its timeline, and how it stops. */
export interface Exp1Server extends AsyncDisposable {
  /** The server's process id. */
  readonly processId: number;
  /** The server thread's id. */
  readonly threadId: number;
  /** Its timeline (the LPC server's event shape on both transports). */
  readonly events: LpcEvent[];
  /** Stops it: every port closed, the Worker ended. */
  stop(): Promise<void>;
}

/** A client's connection to the server. */
export interface Exp1Connection extends Disposable {
  /** Sends one request and waits for the reply's payload. */
  request(data: Uint8Array): Uint8Array;
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
  /** Connects a client to `port`, allowing the server `level`. */
  connect(port: string, o: { level: ImpersonationLevelName }): Exp1Connection;
}

const HANDLER = new URL("./exp1_handler.ts", import.meta.url);

/** Over legacy LPC: the seed's experiment. */
export const LPC_TRANSPORT: Exp1Transport = {
  name: "lpc",
  startServer: (o) =>
    ServerWorker.start({
      portName: o.portName,
      sddl: o.sddl,
      handlerModule: HANDLER,
      handlerOptions: o.handlerOptions,
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    }),
  connect(port, o) {
    const client = LpcClient.connect(port, { impersonationLevel: o.level });
    return {
      request: (data) => client.request(data).data,
      [Symbol.dispose]: () => client.close(),
    };
  },
};

/** Why the ALPC side is not wired in this build. */
const ALPC_PENDING = "experiment 1 over ALPC needs the ALPC library (ffi/alpc/), not in this build";

/** Over ALPC. */
export const ALPC_TRANSPORT: Exp1Transport = {
  name: "alpc",
  startServer: () => Promise.reject(new UnsupportedError(ALPC_PENDING)),
  connect: () => {
    throw new UnsupportedError(ALPC_PENDING);
  },
};

/** The implementation of `t`. */
export function exp1Transport(t: Transport): Exp1Transport {
  return t === "lpc" ? LPC_TRANSPORT : ALPC_TRANSPORT;
}
