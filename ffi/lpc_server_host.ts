/**
 * Runs an LPC server on its own Worker thread (see `lpc_server_worker.ts`) and collects its
 * timeline. `await using` stops it: the stop flag is set, the server's receive times out, it
 * closes every handle, and the Worker ends.
 *
 * @module
 */

import type { LpcEvent } from "./lpc.ts";
import {
  deserializeError,
  MAILBOX,
  type SerializedError,
  type ServerInit,
} from "./lpc_server_worker.ts";

/** Options for {@link ServerWorker.start}. */
export interface ServerWorkerOptions {
  /** The port's name. */
  portName: string;
  /** Who may connect, as SDDL. */
  sddl?: string;
  /** The port's maximum message length (default 512). */
  maxMessageLength?: number;
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

type FromWorker =
  | { kind: "ready"; tid: number; pid: number }
  | { kind: "event"; event: LpcEvent }
  | { kind: "error"; error: SerializedError }
  | { kind: "stopped" };

/** A running server Worker. */
export class ServerWorker implements AsyncDisposable {
  readonly #worker: Worker;
  readonly #stop: Int32Array;
  readonly #stopped: Promise<void>;
  readonly #control = new SharedArrayBuffer(MAILBOX.size);
  #error: Error | undefined;
  /** The server thread's id (the `ClientId.UniqueThread` of its replies). */
  threadId = 0;
  /** The server's process id. */
  processId = 0;
  /** Every event so far. */
  readonly events: LpcEvent[] = [];

  private constructor(worker: Worker, stop: Int32Array, stopped: Promise<void>) {
    this.#worker = worker;
    this.#stop = stop;
    this.#stopped = stopped;
  }

  /** Starts the Worker and waits until its port exists (rejects with the server's error). */
  static async start(options: ServerWorkerOptions): Promise<ServerWorker> {
    const worker = new Worker(new URL("./lpc_server_worker.ts", import.meta.url), {
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
    const self = new ServerWorker(worker, new Int32Array(stopBuffer), stopped);
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.kind === "ready") ready({ tid: m.tid, pid: m.pid });
      else if (m.kind === "event") {
        self.events.push(m.event);
        options.onEvent?.(m.event);
      } else if (m.kind === "error") {
        self.#error = deserializeError(m.error);
        failed(self.#error);
      } else if (m.kind === "stopped") {
        failed(new Error("the server stopped before it was ready"));
        done();
      }
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      self.#error = new Error(`server worker: ${ev.message}`);
      failed(self.#error);
      done();
    };
    const init: ServerInit = {
      portName: options.portName,
      ...(options.sddl ? { sddl: options.sddl } : {}),
      maxMessageLength: options.maxMessageLength ?? 512,
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
            () => rej(new Error("the server did not become ready in time")),
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
  async command(request: unknown, timeoutMs = 30_000): Promise<unknown> {
    const ints = new Int32Array(this.#control, 0, 2);
    if (Atomics.load(ints, MAILBOX.state) !== 0) throw new Error("a command is already running");
    const text = new Uint8Array(this.#control, MAILBOX.textOffset);
    const bytes = new TextEncoder().encode(JSON.stringify(request));
    if (bytes.byteLength > text.byteLength) throw new RangeError("command too large");
    text.set(bytes);
    Atomics.store(ints, MAILBOX.length, bytes.byteLength);
    Atomics.store(ints, MAILBOX.state, 1);
    const deadline = Date.now() + timeoutMs;
    while (Atomics.load(ints, MAILBOX.state) !== 2) {
      if (Date.now() > deadline || this.#error) {
        Atomics.store(ints, MAILBOX.state, 0);
        throw this.#error ?? new Error("the server did not run the command in time");
      }
      const w = Atomics.waitAsync(ints, MAILBOX.state, 1, 200);
      if (w.async) await w.value;
    }
    const reply = JSON.parse(
      new TextDecoder().decode(text.slice(0, Atomics.load(ints, MAILBOX.length))),
    );
    Atomics.store(ints, MAILBOX.state, 0);
    if (reply.error) throw deserializeError(reply.error);
    return reply.ok;
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
  }

  /** Stops the server. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
