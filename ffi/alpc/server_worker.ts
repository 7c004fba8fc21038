/**
 * Runs an {@link AlpcServer} on its own Worker thread and collects its timeline, as `ServerWorker`
 * does for LPC. `await using` stops it: the stop flag is set, the server's receive times out, it
 * closes every handle, and the Worker ends.
 *
 * @module
 */

import type { AlpcEvent, AlpcServer } from "./server.ts";
import type { AlpcPortAttributes } from "./port.ts";
import { ServerWorkerHost } from "../_server_worker.ts";
import type { AlpcServerInitFields } from "./_server_worker_entry.ts";

/**
 * What a handler module's `command(request, ctx)` receives besides the request: the server it
 * runs in. `command` runs on the server's thread, between two receives.
 */
export interface AlpcCommandContext {
  /** The server (its connection port, its connections). */
  server: AlpcServer;
}

/** Options for {@link AlpcServerWorker.start}. */
export interface AlpcServerWorkerOptions {
  /** The port's name. */
  portName: string;
  /** Who may connect, as SDDL. */
  sddl?: string;
  /** The connection port's attributes (also each accepted connection's). */
  portAttributes?: AlpcPortAttributes;
  /**
   * Log every request and reply on the timeline (default true); false for a server that must not
   * allocate or post an event per message (`AlpcServerOptions.logRequests`).
   */
  logRequests?: boolean;
  /**
   * The handler module (a URL): it exports `createHandler(options)` returning an `AlpcHandler`,
   * and optionally `prepare(options)` (run first, on the server's thread) and
   * `command(request, ctx)`.
   */
  handlerModule: string | URL;
  /** Options passed to the handler module on the server's thread (structured-cloneable). */
  handlerOptions?: unknown;
  /** How often the stop flag is checked (ms, default 100). */
  pollMs?: number;
  /** Called with each event as it arrives. */
  onEvent?: (e: AlpcEvent) => void;
  /** How long to wait for the port to be ready (ms, default 30 000). */
  readyTimeoutMs?: number;
}

/**
 * An {@link AlpcServer} on its own Worker thread, serving a handler module, with its timeline of
 * events. Receive, accept, reply, impersonate, revert and view releases all run synchronously on
 * that one thread. `await using` stops it.
 *
 * @example Serve an echo handler module and talk to it (Windows only, not run here: Wine 8.0 has
 * no ALPC)
 * ```ts ignore
 * import { AlpcClient, AlpcServerWorker } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * // echo_handler.ts: export const createHandler = () => ({ request: ({ data }) => data });
 * await using server = await AlpcServerWorker.start({
 *   portName: "\\RPC Control\\echo-alpc-doc",
 *   handlerModule: new URL("./echo_handler.ts", import.meta.url),
 * });
 * using client = AlpcClient.connect("\\RPC Control\\echo-alpc-doc");
 * assertEquals(client.request(new Uint8Array([7])).data, new Uint8Array([7]));
 * ```
 */
export class AlpcServerWorker implements AsyncDisposable {
  readonly #host: ServerWorkerHost<AlpcEvent>;
  /** The server thread's id. */
  threadId: number;
  /** The server's process id. */
  processId: number;
  /** Every event so far. */
  readonly events: AlpcEvent[];

  private constructor(host: ServerWorkerHost<AlpcEvent>) {
    this.#host = host;
    this.threadId = host.threadId;
    this.processId = host.processId;
    this.events = host.events;
  }

  /** Starts the Worker and waits until its port exists (rejects with the server's error). */
  static async start(options: AlpcServerWorkerOptions): Promise<AlpcServerWorker> {
    const entry = new URL("./_server_worker_entry.ts", import.meta.url);
    const init: AlpcServerInitFields = {
      portAttributes: options.portAttributes ?? {},
      logRequests: options.logRequests ?? true,
    };
    const host = await ServerWorkerHost.start({ entry, what: "ALPC server", init }, options);
    return new AlpcServerWorker(host);
  }

  /**
   * Runs a command of the handler module on the server's thread (between two receives) and
   * returns its result; rejects with the error it threw.
   */
  command(request: unknown, timeoutMs = 30_000): Promise<unknown> {
    return this.#host.command(request, timeoutMs);
  }

  /** The error the server thread ended with, if any. */
  get error(): Error | undefined {
    return this.#host.error;
  }

  /** Asks the server to stop, waits for it (up to 10 s), then ends the Worker. */
  stop(): Promise<void> {
    return this.#host.stop();
  }

  /** Stops the server. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
