/**
 * Runs an {@link AlpcServer} on its own Worker thread and collects its timeline, as `ServerWorker`
 * does for LPC. `await using` stops it: the stop flag is set, the server's receive times out, it
 * closes every handle, and the Worker ends.
 *
 * @module
 */

import type { AlpcEvent, AlpcServer } from "./server.ts";
import type { AlpcPortAttributes } from "./port.ts";
import { deserializeError, type SerializedError } from "../_errors_wire.ts";
import type { AlpcServerInit } from "./_server_worker_entry.ts";
import { callMailbox, createMailbox, markMailboxDead, watchWorker } from "../_mailbox.ts";

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

type FromWorker =
  | { kind: "ready"; tid: number; pid: number }
  | { kind: "event"; event: AlpcEvent }
  | { kind: "error"; error: SerializedError }
  | { kind: "stopped" };

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
  readonly #worker: Worker;
  readonly #stop: Int32Array;
  readonly #stopped: Promise<void>;
  readonly #control = createMailbox();
  #error: Error | undefined;
  /** The server thread's id. */
  threadId = 0;
  /** The server's process id. */
  processId = 0;
  /** Every event so far. */
  readonly events: AlpcEvent[] = [];

  private constructor(worker: Worker, stop: Int32Array, stopped: Promise<void>) {
    this.#worker = worker;
    this.#stop = stop;
    this.#stopped = stopped;
  }

  /** Starts the Worker and waits until its port exists (rejects with the server's error). */
  static async start(options: AlpcServerWorkerOptions): Promise<AlpcServerWorker> {
    const worker = new Worker(new URL("./_server_worker_entry.ts", import.meta.url), {
      type: "module",
    });
    const stopBuffer = new SharedArrayBuffer(4);
    let ready!: (v: { tid: number; pid: number }) => void;
    let failed!: (e: Error) => void;
    const readyP = new Promise<{ tid: number; pid: number }>((res, rej) => {
      ready = res;
      failed = rej;
    });
    let done!: () => void;
    const stopped = new Promise<void>((res) => (done = res));
    const self = new AlpcServerWorker(worker, new Int32Array(stopBuffer), stopped);
    watchWorker(worker, self.#control, "ALPC server worker");
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.kind === "ready") ready({ tid: m.tid, pid: m.pid });
      else if (m.kind === "event") {
        self.events.push(m.event);
        options.onEvent?.(m.event);
      } else if (m.kind === "error") {
        self.#error = deserializeError(m.error);
        markMailboxDead(self.#control, self.#error);
        failed(self.#error);
      } else if (m.kind === "stopped") {
        markMailboxDead(self.#control, new Error("the ALPC server worker has stopped"));
        failed(new Error("the ALPC server stopped before it was ready"));
        done();
      }
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      self.#error = new Error(`ALPC server worker: ${ev.message}`);
      failed(self.#error);
      done();
    };
    const init: AlpcServerInit = {
      portName: options.portName,
      ...(options.sddl ? { sddl: options.sddl } : {}),
      portAttributes: options.portAttributes ?? {},
      handlerModule: String(options.handlerModule),
      handlerOptions: options.handlerOptions ?? null,
      stop: stopBuffer,
      control: self.#control,
      pollMs: options.pollMs ?? 100,
    };
    worker.postMessage(init);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const who = await Promise.race([
        readyP,
        new Promise<never>((_, rej) => {
          timer = setTimeout(
            () => rej(new Error("the ALPC server did not become ready in time")),
            options.readyTimeoutMs ?? 30_000,
          );
        }),
      ]);
      self.threadId = who.tid;
      self.processId = who.pid;
      return self;
    } catch (e) {
      await self.stop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs a command of the handler module on the server's thread (between two receives) and
   * returns its result; rejects with the error it threw.
   */
  command(request: unknown, timeoutMs = 30_000): Promise<unknown> {
    return callMailbox(this.#control, request, { timeoutMs, failed: () => this.#error });
  }

  /** The error the server thread ended with, if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Asks the server to stop, waits for it (up to 10 s), then ends the Worker. */
  async stop(): Promise<void> {
    Atomics.store(this.#stop, 0, 1);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#stopped,
      new Promise<void>((res) => (timer = setTimeout(res, 10_000))),
    ]);
    clearTimeout(timer);
    this.#worker.terminate();
    markMailboxDead(this.#control, new Error("the ALPC server worker has stopped"));
  }

  /** Stops the server. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
