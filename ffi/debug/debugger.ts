/**
 * A debugger on its own Worker thread (see `debugger_worker.ts`): attach, see and continue every
 * event, break in, hold the debuggee frozen, inject a thread, and end by detaching or by killing
 * (kill-on-exit). `await using` detaches if the session is still open.
 *
 * @module
 */

import type { DebugEvent } from "../debug_events.ts";
import { deserializeError, type SerializedError } from "../_errors_wire.ts";
import { callMailbox, createMailbox, markMailboxDead, watchWorker } from "../_mailbox.ts";

/** A debug event as the debugger handled it. */
export interface HandledEvent extends DebugEvent {
  /** When it was received (epoch ms). */
  at: number;
  /** How it was continued (`DBG_CONTINUE` or `DBG_EXCEPTION_NOT_HANDLED`). */
  continued: string;
  /** How long the debugger held the process before continuing (breakpoints only). */
  heldMs?: number;
  /** CREATE_PROCESS / LOAD_DLL: the image's path, from its file handle. */
  image?: string;
  /** The thread that handled it (the debugger's own thread). */
  debuggerTid: number;
  /** The raw DEBUG_EVENT, in hex (with `recordRaw`). */
  raw?: string;
}

type FromWorker =
  | { kind: "attached"; debuggerTid: number }
  | { kind: "event"; event: HandledEvent }
  | { kind: "ended"; how: string }
  | { kind: "error"; error: SerializedError }
  | { kind: "stopped" };

/** Options for {@link Debugger.attach}. */
export interface AttachOptions {
  /** Hold the attach breakpoint this long (ms) before continuing it. */
  holdAttachMs?: number;
  /** Called with each event. */
  onEvent?: (e: HandledEvent) => void;
  /** Keep each event's raw bytes (for recording fixtures). */
  recordRaw?: boolean;
}

/**
 * A debugger on its own Worker thread: `attach(pid)`, every event seen and continued
 * ({@link HandledEvent}), break in, inject a thread, end by detaching or killing. `await using`
 * detaches if the session is still open.
 *
 * @example Attach to a child, break in, detach (Windows only, not run here: it debugs a real
 * process)
 * ```ts ignore
 * import { ChildProcess, Debugger } from "@deno-lpc/deno-lpc";
 * import { assert } from "jsr:@std/assert@^1.0.19";
 *
 * using spawned = ChildProcess.spawnCaptured(["cmd.exe", "/c", "pause"]);
 * await using dbg = await Debugger.attach(spawned.child.pid);
 * await dbg.breakIn();
 * assert(dbg.events.some((e) => e.kind === "CREATE_PROCESS"));
 * await dbg.detach();
 * ```
 */
export class Debugger implements AsyncDisposable {
  readonly #worker: Worker;
  readonly #control = createMailbox();
  readonly #stopped: Promise<void>;
  #error: Error | undefined;
  #ended: string | undefined;
  /** The debugger thread's id (every debug call ran on it). */
  debuggerTid = 0;
  /** The debuggee. */
  readonly pid: number;
  /** Every event, as continued. */
  readonly events: HandledEvent[] = [];
  /** Threads created with {@link inject}. */
  readonly remoteThreads: { tid: number; startAddress: string; routine: string; at: number }[] = [];

  private constructor(worker: Worker, pid: number, stopped: Promise<void>) {
    this.#worker = worker;
    this.pid = pid;
    this.#stopped = stopped;
  }

  /** Starts the Worker and attaches (`DebugActiveProcess` on its thread). */
  static async attach(pid: number, options: AttachOptions = {}): Promise<Debugger> {
    const worker = new Worker(new URL("./_debugger_worker.ts", import.meta.url), {
      type: "module",
    });
    let done!: () => void;
    const stopped = new Promise<void>((r) => (done = r));
    const d = new Debugger(worker, pid, stopped);
    // A Worker that dies mid-command wakes the command, which rejects with its error.
    watchWorker(worker, d.#control, "debugger worker");
    let attached!: () => void;
    let failed!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      attached = res;
      failed = rej;
    });
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.kind === "attached") {
        d.debuggerTid = m.debuggerTid;
        attached();
      } else if (m.kind === "event") {
        d.events.push(m.event);
        options.onEvent?.(m.event);
      } else if (m.kind === "ended") d.#ended = m.how;
      else if (m.kind === "error") {
        d.#error = deserializeError(m.error);
        markMailboxDead(d.#control, d.#error);
        failed(d.#error);
      } else if (m.kind === "stopped") {
        markMailboxDead(d.#control, new Error("the debugger worker has stopped"));
        failed(new Error("the debugger stopped before attaching"));
        done();
      }
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      d.#error = new Error(`debugger worker: ${ev.message}`);
      failed(d.#error);
      done();
    };
    worker.postMessage({
      pid,
      holdAttachMs: options.holdAttachMs ?? 0,
      control: d.#control,
      pollMs: 50,
      recordRaw: options.recordRaw ?? false,
    });
    try {
      await ready;
    } catch (e) {
      worker.terminate();
      markMailboxDead(d.#control, e);
      throw e;
    }
    return d;
  }

  #call(request: unknown): Promise<unknown> {
    return callMailbox(this.#control, request, { failed: () => this.#error });
  }

  /** The thread id the debugger's commands run on (for checking thread affinity). */
  async thread(): Promise<number> {
    return ((await this.#call({ op: "thread" })) as { tid: number }).tid;
  }

  /** Breaks in (`DebugBreakProcess`: a new thread in the debuggee); holds the breakpoint `holdMs`. */
  async breakIn(holdMs = 0): Promise<void> {
    await this.#call({ op: "break", ms: holdMs });
  }

  /** Starts a thread in the debuggee at `kernel32!Sleep(arg)` or `kernel32!ExitThread(arg)`. */
  async inject(
    routine: "Sleep" | "ExitThread" = "Sleep",
    arg = 100,
  ): Promise<{ tid: number; startAddress: string }> {
    const r = (await this.#call({ op: "inject", start: routine, arg })) as {
      tid: number;
      startAddress: string;
      routine: string;
      at: number;
    };
    this.remoteThreads.push(r);
    return r;
  }

  /** Detaches (`DebugActiveProcessStop`): the debuggee runs on. */
  async detach(): Promise<void> {
    if (this.#ended) return;
    await this.#call({ op: "detach" });
    await this.#finish();
  }

  /** Ends the session with kill-on-exit: the debuggee is terminated (0xC0000354, STATUS_DEBUGGER_INACTIVE). */
  async kill(): Promise<void> {
    if (this.#ended) return;
    await this.#call({ op: "kill" });
    await this.#finish();
  }

  /** Waits for the debuggee to exit while attached (its EXIT_PROCESS event). */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.events.some((e) => e.kind === "EXIT_PROCESS")) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  }

  /** Resolves when an event matching `test` has been handled (rejects after `timeoutMs`). */
  async until(
    what: string,
    test: (e: HandledEvent) => boolean,
    timeoutMs = 30_000,
  ): Promise<HandledEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.find(test);
      if (e) return e;
      if (this.#error) throw this.#error;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** How the session ended (`detach`, `kill`, `exited`), if it has. */
  get ended(): string | undefined {
    return this.#ended;
  }

  /** The error the debugger thread ended with, if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  async #finish(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#stopped, new Promise<void>((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    this.#worker.terminate();
    markMailboxDead(this.#control, new Error("the debugger worker has stopped"));
  }

  /** Detaches if still attached, then ends the Worker. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      if (!this.#ended && !this.#error) await this.detach();
    } finally {
      await this.#finish();
    }
  }
}
