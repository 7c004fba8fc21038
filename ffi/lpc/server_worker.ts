/**
 * Runs an LPC server on its own Worker thread (entry `_server_worker_entry.ts`) and collects its
 * timeline. `await using` stops it: the stop flag is set, the server's receive times out, it
 * closes every handle, and the Worker ends.
 *
 * @module
 */

import type { LpcEvent, LpcServer } from "./port.ts";
import { ServerWorkerHost } from "../_server_worker.ts";
import type { LpcServerInitFields } from "./_server_worker_entry.ts";

/**
 * What a handler module's `command(request, ctx)` receives besides the request: the server it
 * runs in (its connection port, its connections). `command` runs on the server's thread.
 */
export interface CommandContext {
  /** The server (its connection port, its connections). */
  server: LpcServer;
}

/** Options for {@link ServerWorker.start}. */
export interface ServerWorkerOptions {
  /** The port's name. */
  portName: string;
  /** Who may connect, as SDDL. */
  sddl?: string;
  /** The port's maximum message length (default 512). */
  maxMessageLength?: number;
  /**
   * Log every request and reply on the timeline (default true); false for a server that must not
   * allocate or post an event per message (`LpcServerOptions.logRequests`).
   */
  logRequests?: boolean;
  /** The handler module (a URL; it exports `createHandler` and optionally `prepare`). */
  handlerModule: string | URL;
  /** Options passed to the handler module on the server's thread. */
  handlerOptions?: unknown;
  /** How often the stop flag is checked (ms, default 100). */
  pollMs?: number;
  /** Called with each event as it arrives. */
  onEvent?: (e: LpcEvent) => void;
  /** How long to wait for the port to be ready (ms, default 30 000). */
  readyTimeoutMs?: number;
}

/**
 * An {@link LpcServer} on its own Worker thread, serving a handler module (which exports
 * `createHandler(options)`, optionally `prepare(options)` and `command(request, ctx)`), with its
 * timeline of events. `await using` stops it: the server closes every handle and the Worker ends.
 *
 * @example Serve an echo handler module and talk to it (Windows only, not run here: real LPC needs Windows, Wine 8.0 stubs it)
 * ```ts ignore
 * import { LpcClient, ServerWorker } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * // echo_handler.ts: export const createHandler = () => ({ request: ({ data }) => data });
 * await using server = await ServerWorker.start({
 *   portName: "\\RPC Control\\echo-doc",
 *   handlerModule: new URL("./echo_handler.ts", import.meta.url),
 * });
 * using client = LpcClient.connect("\\RPC Control\\echo-doc");
 * assertEquals(client.request(new Uint8Array([7])).data, new Uint8Array([7]));
 * ```
 */
export class ServerWorker implements AsyncDisposable {
  readonly #host: ServerWorkerHost<LpcEvent>;
  /** The server thread's id (the `ClientId.UniqueThread` of its replies). */
  threadId: number;
  /** The server's process id. */
  processId: number;
  /** Every event so far. */
  readonly events: LpcEvent[];

  private constructor(host: ServerWorkerHost<LpcEvent>) {
    this.#host = host;
    this.threadId = host.threadId;
    this.processId = host.processId;
    this.events = host.events;
  }

  /** Starts the Worker and waits until its port exists (rejects with the server's error). */
  static async start(options: ServerWorkerOptions): Promise<ServerWorker> {
    const entry = new URL("./_server_worker_entry.ts", import.meta.url);
    const init: LpcServerInitFields = {
      maxMessageLength: options.maxMessageLength ?? 512,
      logRequests: options.logRequests ?? true,
    };
    return new ServerWorker(await ServerWorkerHost.start({ entry, what: "server", init }, options));
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
