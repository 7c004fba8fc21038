/**
 * The threads and buffers of one OS process of a conformance scenario on the real kernel: each
 * thread is a Worker running `_actor.ts` (a real OS thread that makes its calls synchronously),
 * and the process's named buffers are `SharedArrayBuffer`s in one {@link Memory}, shared by all
 * its Workers, so a buffer one thread received into can be replied from by another and read by
 * any, as in NT, where memory belongs to the process. Handle values are not kept here: the test
 * process keeps every process's handle table and resolves names before a request leaves it.
 *
 * Used in the test process for `Kernel.self`, and in each child by `_actor_host.ts`.
 *
 * @module
 */

import { deserializeError, type SerializedError } from "../../ffi/_errors_wire.ts";
import { handleCell, NtHandle } from "../../ffi/nt/handle.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { LAYOUTS } from "../../ffi/layouts.ts";
import { ntdll } from "../../ffi/ntdll.ts";
import { ObjectAttributes } from "../../ffi/nt/object_attributes.ts";
import { check } from "../../ffi/status.ts";
import {
  attachMemory,
  Memory,
  type ThreadHello,
  type ThreadOp,
  type WorkerOp,
} from "./_actor_marshal.ts";

const CID = LAYOUTS.CLIENT_ID;
/** SYNCHRONIZE | THREAD_QUERY_LIMITED_INFORMATION: enough to wait for the thread's end. */
const THREAD_WAIT_ACCESS = 0x0010_0000 | 0x0800;
const WAIT_OBJECT_0 = 0;

/** How a request to a thread settled: its answer, or the thread (or process) ended first. */
export type Settled = { ok: unknown } | { killed: true };

/** A started thread, as the host reports it. */
export interface ThreadInfo extends ThreadHello {
  /** Its index in its process (requests name a thread by it). */
  index: number;
}

/** Rejects with `message` unless `p` settles within `ms`; the timer never outlives the race. */
export async function deadline<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message())), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What {@link within} answers when the time ran out. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/** `p`'s value if it settles within `ms`, else {@link TIMED_OUT} (`p` goes on). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One thread: its Worker, its OS thread's handle, its requests in flight. */
class ActorThread {
  readonly worker: Worker;
  readonly info: ThreadInfo;
  readonly #handle: NtHandle;
  readonly #pending = new Map<
    number,
    { op: string; resolve: (s: Settled) => void; reject: (e: Error) => void }
  >();
  #next = 1;
  state: "alive" | "exited" | "failed" = "alive";
  #failure: Error | undefined;

  private constructor(worker: Worker, info: ThreadInfo, handle: NtHandle) {
    this.worker = worker;
    this.info = info;
    this.#handle = handle;
    worker.onmessage = (
      ev: MessageEvent<{ id: number; ok?: unknown; error?: SerializedError }>,
    ) => {
      const m = ev.data;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error) p.reject(deserializeError(m.error));
      else p.resolve({ ok: m.ok ?? null });
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      this.fail(new Error(`thread ${info.tid}: its Worker failed: ${ev.message}`));
    };
  }

  /** Starts a Worker and waits (up to `ms`) for it to say who it is. */
  static async start(index: number, ms: number): Promise<ActorThread> {
    const worker = new Worker(new URL("./_actor.ts", import.meta.url), { type: "module" });
    try {
      const hello = await deadline(
        new Promise<ThreadHello>((resolve, reject) => {
          worker.onmessage = (
            ev: MessageEvent<{ hello?: ThreadHello; helloError?: SerializedError }>,
          ) => {
            if (ev.data.hello) resolve(ev.data.hello);
            else reject(deserializeError(ev.data.helloError!));
          };
          worker.onerror = (ev) => {
            ev.preventDefault();
            reject(new Error(`a thread's Worker failed to start: ${ev.message}`));
          };
          worker.postMessage({ op: "init" });
        }),
        ms,
        () => `a thread's Worker did not start within ${ms} ms`,
      );
      return new ActorThread(worker, { index, ...hello }, openThread(hello.tid));
    } catch (e) {
      worker.terminate();
      throw e;
    }
  }

  /** What is in flight (for messages). */
  get busy(): string[] {
    return [...this.#pending.values()].map((p) => p.op);
  }

  send(op: WorkerOp): Promise<Settled> {
    if (this.state !== "alive") {
      return Promise.reject(
        this.#failure ?? new Error(`thread ${this.info.tid} has exited; it takes no more calls`),
      );
    }
    const id = this.#next++;
    return new Promise<Settled>((resolve, reject) => {
      this.#pending.set(id, { op: op.op === "call" ? op.name : op.op, resolve, reject });
      this.worker.postMessage({ id, ...op });
    });
  }

  /** The thread's Worker failed: its requests reject with the failure. */
  fail(e: Error): void {
    if (this.state !== "alive") return;
    this.state = "failed";
    this.#failure = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.worker.terminate();
    this.#handle.close();
  }

  /** True once the OS thread has ended (its handle is signalled). */
  get osThreadEnded(): boolean {
    if (this.#handle.closed) return true;
    return kernel32().WaitForSingleObject(this.#handle.unsafePointer, 0) === WAIT_OBJECT_0;
  }

  /**
   * Ends the thread: the Worker closes itself, and this waits (up to `ms`) until the OS thread's
   * handle is signalled, which the kernel does only once the thread has run its exit path.
   */
  async exit(ms: number): Promise<void> {
    if (this.state !== "alive") return;
    if (this.#pending.size) {
      throw new Error(
        `thread ${this.info.tid} is still in ${
          this.busy.join(", ")
        }; it can exit only after that returns`,
      );
    }
    this.worker.postMessage({ op: "exit" });
    const until = Date.now() + ms;
    while (!this.osThreadEnded) {
      if (Date.now() > until) {
        this.worker.terminate();
        throw new Error(
          `thread ${this.info.tid}: its Worker was closed but the OS thread had not ended after ${ms} ms`,
        );
      }
      await sleep(10);
    }
    this.state = "exited";
    this.worker.terminate(); // already ended; releases the host's side
    this.#handle.close();
  }

  /** Ends the Worker however it is: idle ones exit (up to `ms`), blocked ones are terminated. */
  async end(ms: number): Promise<"exited" | "stuck"> {
    if (this.state !== "alive") return "exited";
    if (!this.#pending.size) {
      try {
        await this.exit(ms);
        return "exited";
      } catch {
        // fall through: terminate below
      }
    }
    for (const p of this.#pending.values()) p.resolve({ killed: true });
    this.#pending.clear();
    this.state = "failed";
    this.#failure = new Error(`thread ${this.info.tid} was ended with its kernel`);
    this.worker.terminate();
    const ended = this.osThreadEnded;
    this.#handle.close();
    return ended ? "exited" : "stuck";
  }
}

/** `NtOpenThread(SYNCHRONIZE | THREAD_QUERY_LIMITED_INFORMATION)` on a thread of this process. */
function openThread(tid: number): NtHandle {
  const cell = handleCell();
  const oa = new ObjectAttributes(null, { attributes: 0 });
  const cid = new Uint8Array(CID.size);
  new DataView(cid.buffer).setBigUint64(CID.offsets.UniqueThread, BigInt(tid), true);
  check(
    ntdll().NtOpenThread(cell, THREAD_WAIT_ACCESS, oa.struct, cid),
    "NtOpenThread",
    `tid ${tid}`,
  );
  return NtHandle.fromCell("thread", cell, `thread ${tid}`);
}

/** The threads and buffers of the process this code runs in. */
export class ActorProcess {
  /** This process's id. */
  readonly pid: number = kernel32().GetCurrentProcessId();
  /** Its named buffers. */
  readonly memory: Memory = new Memory();
  readonly #threads: ActorThread[] = [];

  #thread(index: number): ActorThread {
    const t = this.#threads[index];
    if (!t) throw new Error(`no thread ${index} in process ${this.pid}`);
    return t;
  }

  /** Starts a thread (up to `ms` for its Worker to start). */
  async newThread(ms: number): Promise<ThreadInfo> {
    const t = await ActorThread.start(this.#threads.length, ms);
    this.#threads.push(t);
    return t.info;
  }

  /** Sends `op` to thread `index`, its buffers attached; settles when the thread answers. */
  send(index: number, op: ThreadOp): Promise<Settled> {
    try {
      const t = this.#thread(index);
      const wire: WorkerOp = op.op === "call"
        ? { op: "call", ...attachMemory(op, this.memory) }
        : op;
      return t.send(wire);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** What thread `index` is doing (the calls in flight). */
  busy(index: number): string[] {
    return this.#thread(index).busy;
  }

  /** True while some thread has a call in flight. */
  get anyBusy(): boolean {
    return this.#threads.some((t) => t.state === "alive" && t.busy.length > 0);
  }

  /** A copy of buffer `name`. */
  read(name: string): Uint8Array<ArrayBuffer> {
    return this.memory.read(name);
  }

  /** Ends thread `index` and waits (up to `ms`) until its OS thread has ended. */
  exitThread(index: number, ms: number): Promise<void> {
    return this.#thread(index).exit(ms);
  }

  /**
   * Ends every thread: idle ones exit, blocked ones are terminated (their OS thread stays blocked
   * in its call until the kernel lets it go). Returns how many OS threads were still there.
   */
  async dispose(ms: number): Promise<{ stuck: number }> {
    const ends = await Promise.all(this.#threads.map((t) => t.end(ms)));
    return { stuck: ends.filter((e) => e === "stuck").length };
  }
}
