/**
 * The server's side of a server Worker (LPC's `ServerWorker`, ALPC's `AlpcServerWorker`): what
 * both Worker entries do, once. The entry passes how to open its kind of server; this module takes
 * the one `init` message, loads the handler module, runs its `prepare` and `createHandler`, opens
 * the server, says `ready` with the thread's ids, then serves: one `step(pollMs)`, then the command
 * mailbox, until the stop flag is set. Everything from `prepare` on runs synchronously, so this
 * Worker's OS thread is the server's thread (impersonation, the thread token).
 *
 * Messages in: one {@link ServerThreadInit} (with the entry's own fields). Messages out
 * ({@link ServerThreadMessage}): `ready`, `event` (each timeline event), `error`, `stopped`.
 *
 * @module
 */

import { kernel32 } from "./kernel32.ts";
import { type SerializedError, serializeError } from "./_errors_wire.ts";
import { guardMailbox, serviceMailbox } from "./_mailbox.ts";
import { workerScope } from "./_worker_scope.ts";

/** What the host sends to start a server, whatever its kind (each entry adds its own fields). */
export interface ServerThreadInit {
  /** The port's name (e.g. `\RPC Control\deno-lpc-exp1-1234`). */
  portName: string;
  /** Who may connect, as SDDL. */
  sddl?: string;
  /** The module that exports `createHandler(options)` (and optionally `prepare`, `command`). */
  handlerModule: string;
  /** Options for that module (structured-cloneable). */
  handlerOptions: unknown;
  /** A 4-byte shared flag: 1 = stop. */
  stop: SharedArrayBuffer;
  /** The command mailbox (`_mailbox.ts`). */
  control: SharedArrayBuffer;
  /** How often the stop flag is checked (the receive timeout), in ms. */
  pollMs: number;
}

/** What the server's thread tells the host. */
export type ServerThreadMessage<E> =
  | { kind: "ready"; tid: number; pid: number }
  | { kind: "event"; event: E }
  | { kind: "error"; error: SerializedError }
  | { kind: "stopped" };

/** What the loop needs of a server: one receive-and-dispatch with a timeout, and disposal. */
export interface SteppingServer extends Disposable {
  /** Serves at most one message, waiting up to `timeoutMs`. */
  step(timeoutMs: number): unknown;
}

/** What a handler module exports, for a server of type `S` taking handlers of type `H`. */
export interface ServerHandlerModule<H, S> {
  /** Makes the handler (on the server's thread). */
  createHandler(options: unknown): H;
  /** Runs first, on the server's thread (e.g. impersonating SYSTEM). */
  prepare?(options: unknown): void;
  /** A command from the host, run between two receives. */
  command?(request: unknown, ctx: { server: S }): unknown;
}

/**
 * How an entry opens its kind of server on this thread: its connection port, then the server on
 * that port with `handler`, posting each timeline event with `onEvent`. If `server` throws, the
 * port is closed here (the server never owned it).
 */
export interface ServerOpener<Init, P extends { close(): void }, H, S> {
  /** Creates the connection port `init` asks for. */
  port(init: Init): P;
  /** Makes the server on `port`; from then on the server owns the port. */
  server(port: P, handler: H, init: Init, onEvent: (event: unknown) => void): S;
}

/** The ids the `ready` message carries: this OS thread's and this process's. */
export type ThreadIds = () => { tid: number; pid: number };

const currentIds: ThreadIds = () => ({
  tid: kernel32().GetCurrentThreadId(),
  pid: kernel32().GetCurrentProcessId(),
});

/**
 * Makes this Worker a server Worker: call it once, at the top of a Worker entry. `ids` is for tests
 * without Windows (default: `GetCurrentThreadId`, `GetCurrentProcessId`).
 */
export function serveServerThread<
  Init extends ServerThreadInit,
  P extends { close(): void },
  H,
  S extends SteppingServer,
>(open: ServerOpener<Init, P, H, S>, ids: ThreadIds = currentIds): void {
  const scope = workerScope<Init>();
  const post = (m: ServerThreadMessage<unknown>) => scope.postMessage(m);
  scope.onmessage = async (ev) => {
    const init = ev.data;
    guardMailbox(init.control); // dying mid-command rejects the host's command (_mailbox.ts)
    const stop = new Int32Array(init.stop);
    try {
      const mod = (await import(init.handlerModule)) as ServerHandlerModule<H, S>;
      // From here on, synchronous: this worker's thread is the server's thread.
      mod.prepare?.(init.handlerOptions);
      const handler = mod.createHandler(init.handlerOptions);
      const port = open.port(init);
      let made: S;
      try {
        made = open.server(port, handler, init, (event) => post({ kind: "event", event }));
      } catch (e) {
        port.close(); // the server never owned it
        throw e;
      }
      using server = made;
      post({ kind: "ready", ...ids() });
      while (Atomics.load(stop, 0) !== 1) {
        server.step(init.pollMs);
        serviceMailbox(init.control, (request) => {
          if (!mod.command) throw new Error("this handler module takes no commands");
          return mod.command(request, { server });
        });
      }
    } catch (e) {
      post({ kind: "error", error: serializeError(e) });
    } finally {
      post({ kind: "stopped" });
    }
  };
}
