/**
 * The host's side of a server Worker, once for both kinds: LPC's `ServerWorker` and ALPC's
 * `AlpcServerWorker` each start a {@link ServerWorkerHost} on their own Worker entry (which calls
 * `_server_thread.ts`) and add only their own init fields. The host collects the timeline, runs
 * commands through the mailbox, and stops the server: the stop flag is set, the server's receive
 * times out, it closes every handle, and the Worker ends.
 *
 * @module
 */

import { deserializeError } from "./_errors_wire.ts";
import { callMailbox, createMailbox, markMailboxDead, watchWorker } from "./_mailbox.ts";
import type { ServerThreadInit, ServerThreadMessage } from "./_server_thread.ts";

/** The options both server Workers take (each adds its own). */
export interface ServerWorkerCommonOptions<E> {
  /** The port's name. */
  portName: string;
  /** Who may connect, as SDDL. */
  sddl?: string;
  /** The handler module (a URL). */
  handlerModule: string | URL;
  /** Options passed to the handler module on the server's thread. */
  handlerOptions?: unknown;
  /** How often the stop flag is checked (ms, default 100). */
  pollMs?: number;
  /** Called with each event as it arrives. */
  onEvent?: (e: E) => void;
  /** How long to wait for the port to be ready (ms, default 30 000). */
  readyTimeoutMs?: number;
}

/** Which server Worker to start. */
export interface ServerWorkerKind<X> {
  /** The Worker entry (it calls `serveServerThread`). */
  entry: URL;
  /** The server's name in messages ("server", "ALPC server"). */
  what: string;
  /** The entry's own init fields. */
  init: X;
}

/** A server on its own Worker thread, seen from the host (see the module comment). */
export class ServerWorkerHost<E> {
  readonly #worker: Worker;
  readonly #what: string;
  readonly #stop: Int32Array;
  readonly #stopped: Promise<void>;
  readonly #control = createMailbox();
  #error: Error | undefined;
  /** The server thread's id. */
  threadId = 0;
  /** The server's process id. */
  processId = 0;
  /** Every event so far. */
  readonly events: E[] = [];

  private constructor(worker: Worker, what: string, stop: Int32Array, stopped: Promise<void>) {
    this.#worker = worker;
    this.#what = what;
    this.#stop = stop;
    this.#stopped = stopped;
  }

  /** Starts the Worker and waits until its port exists (rejects with the server's error). */
  static async start<E, X extends object>(
    kind: ServerWorkerKind<X>,
    options: ServerWorkerCommonOptions<E>,
  ): Promise<ServerWorkerHost<E>> {
    const { what } = kind;
    const worker = new Worker(kind.entry, { type: "module" });
    const stopBuffer = new SharedArrayBuffer(4);
    let ready!: (v: { tid: number; pid: number }) => void;
    let failed!: (e: Error) => void;
    const readyP = new Promise<{ tid: number; pid: number }>((res, rej) => {
      ready = res;
      failed = rej;
    });
    let done!: () => void;
    const stopped = new Promise<void>((res) => (done = res));
    const self = new ServerWorkerHost<E>(worker, what, new Int32Array(stopBuffer), stopped);
    // A Worker that dies mid-command wakes the command, which rejects with its error.
    watchWorker(worker, self.#control, `${what} worker`);
    worker.onmessage = (ev: MessageEvent<ServerThreadMessage<E>>) => {
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
        markMailboxDead(self.#control, new Error(`the ${what} worker has stopped`));
        failed(new Error(`the ${what} stopped before it was ready`));
        done();
      }
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      self.#error = new Error(`${what} worker: ${ev.message}`);
      failed(self.#error);
      done();
    };
    const init: ServerThreadInit & X = {
      portName: options.portName,
      ...(options.sddl ? { sddl: options.sddl } : {}),
      ...kind.init,
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
            () => rej(new Error(`the ${what} did not become ready in time`)),
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

  /** Runs a command on the server's thread; rejects with the error it threw. */
  command(request: unknown, timeoutMs: number): Promise<unknown> {
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
    markMailboxDead(this.#control, new Error(`the ${this.#what} worker has stopped`));
  }
}
