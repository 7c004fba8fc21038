/**
 * The conformance {@link Kernel} on the real ntdll (Windows only).
 *
 * - A {@link Thread} is a real OS thread: a Worker running `_actor.ts`, which makes each call
 *   synchronously on itself (never `nonblocking`) through the toolkit's symbol table
 *   (`ffi/ntdll.ts`), so the kernel sees that thread (its ClientId, its token, its death).
 *   `tid`/`pid` come from `GetCurrentThreadId`/`GetCurrentProcessId` on it, `createTime` from
 *   `NtQueryInformationThread(ThreadTimes)`.
 * - A {@link Process} is `self` (this process; its threads are Workers here) or a child from
 *   `spawn()`: `deno run --allow-ffi --allow-read _actor_host.ts`, driven by JSON lines over its
 *   stdin/stdout, whose threads are Workers in the child.
 * - **Buffers are per process**: a `SharedArrayBuffer` per name, shared by all the Workers of
 *   that process (`_actor_process.ts`), so any thread of the process can use or `read` it.
 *   **Handles are per process too**, kept here in the test process for every process: names are
 *   resolved before a request leaves (`_actor_marshal.ts`), so `handleValue` is synchronous.
 * - Every request has a deadline: `call()` fails the case with a message naming the call, the
 *   thread and the time when a thread does not answer; `Pending.result(ms)` says `"blocked"`.
 * - `exit()` closes the Worker and waits on the OS thread's handle until the kernel signals it
 *   (the thread has run its exit path), so a thread that "exited" really has.
 * - Disposing kills every child (`NtTerminateProcess`) and waits for it, closes every handle the
 *   scenario opened in this process, lets idle Workers exit and terminates the others, on every
 *   path. A Worker still blocked in a call after that is reported on stderr: its OS thread stays
 *   blocked until the kernel releases it, or until this process ends.
 *
 * @module
 */

import { assertWindows } from "../../ffi/status.ts";
import { deserializeError, type SerializedError } from "../../ffi/_errors_wire.ts";
import { type NtHandle, pointerFrom } from "../../ffi/nt/handle.ts";
import { ntdll } from "../../ffi/ntdll.ts";
import { openProcessToken, tokenUserSid } from "../../ffi/nt/tokens.ts";
import { exitCodeOf, openProcess, ProcessAccess, waitFor } from "../../ffi/nt/processes.ts";
import { ntSuccess } from "../../ffi/status.ts";
import {
  type CallReply,
  fromBase64,
  type HardErrorReply,
  type OpenReply,
  type RaiseReply,
  type ThreadOp,
  toHostCall,
} from "./_actor_marshal.ts";
import {
  ActorProcess,
  deadline,
  type Settled,
  type ThreadInfo,
  TIMED_OUT,
  within,
} from "./_actor_process.ts";
import type { Arg, CallName, Kernel, Pending, Process, RaiseOutcome, Thread } from "./types.ts";

/** Deadlines of {@link createWindowsKernel}. */
export interface WindowsKernelOptions {
  /** How long `call()` (and the other non-blocking requests) may take (ms, default 15 000). */
  callTimeoutMs?: number;
  /** How long a new thread (a Worker) or a new process may take to start (ms, default 60 000). */
  startTimeoutMs?: number;
}

/** The calls whose out-cell at this index receives a new handle (closed at dispose if still open). */
const HANDLE_OUT: Readonly<Record<string, number>> = {
  NtCreatePort: 0,
  NtConnectPort: 0,
  NtAcceptConnectPort: 0,
  NtCreateSection: 0,
};

/** Where a process's threads and buffers are: here, or in a child. */
interface Backend {
  readonly pid: number;
  newThread(ms: number): Promise<ThreadInfo>;
  send(thread: number, op: ThreadOp): Promise<Settled>;
  read(name: string): Promise<Uint8Array>;
  exitThread(thread: number, ms: number): Promise<void>;
}

/** This process: the threads are Workers here. */
class LocalBackend implements Backend {
  readonly actors = new ActorProcess();
  get pid(): number {
    return this.actors.pid;
  }
  newThread(ms: number): Promise<ThreadInfo> {
    return this.actors.newThread(ms);
  }
  send(thread: number, op: ThreadOp): Promise<Settled> {
    return this.actors.send(thread, op);
  }
  read(name: string): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.actors.read(name));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  exitThread(thread: number, ms: number): Promise<void> {
    return this.actors.exitThread(thread, ms);
  }
}

type Answer = { id: number; ok?: unknown; error?: SerializedError; killed?: true };

/** A child process running `_actor_host.ts`. */
class RemoteBackend implements Backend {
  readonly pid: number;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, { resolve: (a: Answer) => void; killed: () => void }>();
  #next = 1;
  #ended = false;
  /** Settles when its stdout has closed (every answer read). */
  readonly closed: Promise<void>;
  /** Its status, once it has ended. */
  readonly status: Promise<Deno.CommandStatus>;
  /** A process handle of ours (terminate, wait, exit code). */
  readonly handle: NtHandle<"process">;
  readonly #stderr: { text: string };
  readonly #drain: Promise<void>;

  private constructor(
    child: Deno.ChildProcess,
    pid: number,
    handle: NtHandle<"process">,
    lines: AsyncGenerator<string>,
    stderr: { text: string; drain: Promise<void> },
  ) {
    this.#child = child;
    this.#stderr = stderr;
    this.#drain = stderr.drain;
    this.pid = pid;
    this.handle = handle;
    this.#stdin = child.stdin.getWriter();
    this.status = child.status;
    this.closed = (async () => {
      try {
        for (let r = await lines.next(); !r.done; r = await lines.next()) {
          const a = JSON.parse(r.value) as Answer;
          const p = this.#pending.get(a.id);
          if (!p) continue;
          this.#pending.delete(a.id);
          p.resolve(a);
        }
      } catch {
        // a broken pipe is the process ending
      } finally {
        this.#ended = true;
        for (const p of this.#pending.values()) p.killed();
        this.#pending.clear();
      }
    })();
  }

  /** Spawns the child with exactly `--allow-ffi --allow-read` and waits until it is ready. */
  static async start(ms: number): Promise<RemoteBackend> {
    const host = new URL("./_actor_host.ts", import.meta.url).href;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "--allow-read", host],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = { text: "", drain: Promise.resolve() };
    stderr.drain = (async () => {
      const d = new TextDecoder();
      for await (const chunk of child.stderr) {
        stderr.text = (stderr.text + d.decode(chunk, { stream: true })).slice(-4000);
      }
    })().catch(() => {});
    const lines = readLines(child.stdout);
    let handle: NtHandle<"process"> | undefined;
    try {
      const first = await deadline(
        lines.next(),
        ms,
        () => `the child process did not start within ${ms} ms`,
      );
      if (first.done) throw new Error("the child process ended before it was ready");
      const { ready } = JSON.parse(first.value) as { ready: { pid: number } };
      handle = openProcess(
        ready.pid,
        ProcessAccess.PROCESS_TERMINATE | ProcessAccess.SYNCHRONIZE |
          ProcessAccess.PROCESS_QUERY_LIMITED_INFORMATION,
      );
      return new RemoteBackend(child, ready.pid, handle, lines, stderr);
    } catch (e) {
      handle?.close();
      try {
        child.kill();
      } catch { /* already gone */ }
      await child.status;
      await stderr.drain;
      await lines.return(undefined);
      throw new Error(
        `spawn: ${e instanceof Error ? e.message : e}${
          stderr.text ? `; its stderr: ${stderr.text}` : ""
        }`,
      );
    }
  }

  /** The end of what the child wrote on stderr (for messages). */
  get stderr(): string {
    return this.#stderr.text;
  }

  /** True once the process has ended. */
  get ended(): boolean {
    return this.handle.closed || waitFor(this.handle, 0);
  }

  #request(body: Record<string, unknown>): Promise<Answer> {
    if (this.#ended) return Promise.resolve({ id: 0, killed: true });
    const id = this.#next++;
    return new Promise<Answer>((resolve) => {
      this.#pending.set(id, { resolve, killed: () => resolve({ id, killed: true }) });
      this.#stdin.write(new TextEncoder().encode(JSON.stringify({ id, ...body }) + "\n")).catch(
        () => {}, // the process ended: the reader settles this request as killed
      );
    });
  }

  async #value(body: Record<string, unknown>): Promise<unknown> {
    const a = await this.#request(body);
    if (a.killed) throw new Error(`process ${this.pid} has ended`);
    if (a.error) throw deserializeError(a.error);
    return a.ok ?? null;
  }

  newThread(ms: number): Promise<ThreadInfo> {
    return this.#value({ op: "thread", ms }) as Promise<ThreadInfo>;
  }

  async send(thread: number, op: ThreadOp): Promise<Settled> {
    const a = await this.#request({ op: "send", thread, request: op });
    if (a.killed) return { killed: true };
    if (a.error) throw deserializeError(a.error);
    return { ok: a.ok ?? null };
  }

  async read(name: string): Promise<Uint8Array> {
    return fromBase64((await this.#value({ op: "read", name })) as string);
  }

  async exitThread(thread: number, ms: number): Promise<void> {
    await this.#value({ op: "exitThread", thread, ms });
  }

  /** `NtTerminateProcess(exitCode)` if it still runs, then waits (up to `ms`) until it is gone. */
  async kill(exitCode: number, ms: number): Promise<void> {
    if (!this.ended) {
      ntdll().NtTerminateProcess(this.handle.unsafePointer, exitCode | 0);
    }
    await deadline(
      Promise.all([this.status, this.closed]),
      ms,
      () => `process ${this.pid} did not end within ${ms} ms of NtTerminateProcess`,
    );
  }

  /** Its exit code (unsigned) once it has ended, else null. */
  exitCode(): number | null {
    return this.ended ? exitCodeOf(this.handle) >>> 0 : null;
  }

  /** Ends it (kill if needed), closes its pipes and our handle; never throws. */
  async dispose(ms: number): Promise<string[]> {
    const problems: string[] = [];
    try {
      await this.#stdin.close().catch(() => {});
      if (!this.handle.closed) await this.kill(1, ms);
    } catch (e) {
      problems.push(String(e instanceof Error ? e.message : e));
      try {
        this.#child.kill();
      } catch { /* gone */ }
      await within(this.status, ms);
    } finally {
      await within(this.#drain, ms);
      this.handle.close();
    }
    return problems;
  }
}

/** Splits a byte stream into lines. */
async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const d = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += d.decode(chunk, { stream: true });
    let nl;
    while ((nl = text.indexOf("\n")) >= 0) {
      const line = text.slice(0, nl).trim();
      text = text.slice(nl + 1);
      if (line) yield line;
    }
  }
}

let portNames = 0;

/** The real kernel for one case (Windows only). */
export async function createWindowsKernel(options: WindowsKernelOptions = {}): Promise<Kernel> {
  assertWindows("the Windows conformance driver");
  const kernel = new WindowsKernel({
    callMs: options.callTimeoutMs ?? 15_000,
    startMs: options.startTimeoutMs ?? 60_000,
  });
  try {
    await kernel.start();
    return kernel;
  } catch (e) {
    await kernel[Symbol.asyncDispose]();
    throw e;
  }
}

interface Times {
  callMs: number;
  startMs: number;
}

class WindowsKernel implements Kernel {
  readonly name = "windows" as const;
  readonly times: Times;
  readonly local = new LocalBackend();
  readonly children: RemoteBackend[] = [];
  #self: WinProcess | undefined;

  constructor(times: Times) {
    this.times = times;
  }

  async start(): Promise<void> {
    this.#self = await WinProcess.start(this, this.local, null);
  }

  get self(): Process {
    if (!this.#self) throw new Error("the kernel has not started");
    return this.#self;
  }

  async spawn(): Promise<Process> {
    const backend = await RemoteBackend.start(this.times.startMs);
    this.children.push(backend);
    return await WinProcess.start(this, backend, backend);
  }

  /** A new name on each call (a run-wide counter), as the fake's. */
  userSid(): Promise<string> {
    using token = openProcessToken();
    return Promise.resolve(tokenUserSid(token));
  }

  portName(label: string): string {
    return `\\RPC Control\\deno-lpc-conf-${this.local.pid}-${++portNames}-${label}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const problems: string[] = [];
    // 1. The children: their threads die, so ours waiting on them are let go.
    for (const c of this.children) {
      problems.push(...(await c.dispose(10_000)).map((p) => `child ${c.pid}: ${p}`));
    }
    // 2. Every handle the scenario opened here that is still open: waits on them end.
    for (const value of this.#self?.open ?? []) ntdll().NtClose(pointerFrom(value));
    this.#self?.open.clear();
    // 3. Our Workers: a call still returning gets a moment, then idle ones exit, others end.
    const until = Date.now() + 2_000;
    while (this.local.actors.anyBusy && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const { stuck } = await this.local.actors.dispose(5_000);
    if (stuck) {
      console.error(
        `windows driver: ${stuck} Worker thread(s) stayed blocked in a kernel call after their ` +
          "kernel was disposed; they end with this process",
      );
    }
    if (problems.length) throw new Error(`disposing the Windows kernel: ${problems.join("; ")}`);
  }
}

class WinProcess implements Process {
  readonly kernel: WindowsKernel;
  readonly backend: Backend;
  readonly remote: RemoteBackend | null;
  /** Handle names to values (this process's handle table, as the scenario named them). */
  readonly handles = new Map<string, bigint>();
  /** Handles the scenario opened and has not closed (closed at dispose). */
  readonly open = new Set<bigint>();
  #main: WinThread | undefined;

  private constructor(kernel: WindowsKernel, backend: Backend, remote: RemoteBackend | null) {
    this.kernel = kernel;
    this.backend = backend;
    this.remote = remote;
  }

  static async start(
    kernel: WindowsKernel,
    backend: Backend,
    remote: RemoteBackend | null,
  ): Promise<WinProcess> {
    const p = new WinProcess(kernel, backend, remote);
    p.#main = (await p.thread()) as WinThread;
    return p;
  }

  get pid(): number {
    return this.backend.pid;
  }

  get main(): Thread {
    return this.#main!;
  }

  async thread(): Promise<Thread> {
    const info = await this.backend.newThread(this.kernel.times.startMs);
    return new WinThread(this, info);
  }

  async kill(exitCode: number): Promise<void> {
    if (!this.remote) throw new Error("kill(): the suite's own process is not killed; spawn() one");
    await this.remote.kill(exitCode, 10_000);
  }

  exitCode(): Promise<number | null> {
    return Promise.resolve(this.remote ? this.remote.exitCode() : null);
  }

  /** Remembers handle `name` = `value`. */
  remember(name: string, value: bigint, opened: boolean): void {
    this.handles.set(name, value);
    if (opened && value !== 0n) this.open.add(value);
  }

  describe(): string {
    return this.remote ? `child process ${this.pid}` : `the suite's process ${this.pid}`;
  }
}

class WinThread implements Thread {
  readonly process: WinProcess;
  readonly tid: number;
  readonly createTime: bigint;
  readonly #index: number;

  constructor(process: WinProcess, info: ThreadInfo) {
    this.process = process;
    this.tid = info.tid;
    this.createTime = BigInt(info.createTime);
    this.#index = info.index;
  }

  get #where(): string {
    return `thread ${this.tid} of ${this.process.describe()}`;
  }

  /** Sends a call; its handles are remembered whenever it returns (even after a deadline). */
  #issue(name: CallName, args: Arg[]): Promise<Settled> {
    let host;
    try {
      host = toHostCall(name, args, this.process.handles);
    } catch (e) {
      return Promise.reject(e);
    }
    const settled = this.process.backend.send(this.#index, { op: "call", ...host });
    return settled.then((s) => {
      if ("ok" in s) {
        const r = s.ok as CallReply;
        const handleAt = HANDLE_OUT[name];
        args.forEach((a, i) => {
          if (a !== null && typeof a === "object" && a.kind === "out") {
            const v = BigInt(r.outs[a.name] ?? "0");
            this.process.remember(a.name, v, i === handleAt && ntSuccess(r.status));
          }
        });
        const closed = args[0];
        if (
          name === "NtClose" && ntSuccess(r.status) && closed !== null && typeof closed === "object"
        ) {
          const v = closed.kind === "handle"
            ? this.process.handles.get(closed.name)
            : closed.kind === "pointer"
            ? closed.value
            : undefined;
          if (v !== undefined) this.process.open.delete(v);
        }
      }
      return s;
    });
  }

  async call(name: CallName, ...args: Arg[]): Promise<number> {
    const ms = this.process.kernel.times.callMs;
    const s = await deadline(
      this.#issue(name, args),
      ms,
      () =>
        `${name} on ${this.#where} did not return within ${ms} ms (start() is for calls that block)`,
    );
    if ("killed" in s) {
      throw new Error(`${name} on ${this.#where}: the thread was ended during the call`);
    }
    return (s.ok as CallReply).status;
  }

  start(name: CallName, ...args: Arg[]): Pending {
    const p = this.#issue(name, args);
    p.catch(() => {}); // seen by result(); never an unhandled rejection
    return {
      result: async (ms: number) => {
        const s = await within(p, ms);
        if (s === TIMED_OUT) return "blocked";
        if ("killed" in s) return "killed";
        return (s.ok as CallReply).status;
      },
    };
  }

  read(name: string): Promise<Uint8Array> {
    return this.process.backend.read(name);
  }

  handleValue(name: string): bigint {
    const v = this.process.handles.get(name);
    if (v === undefined) {
      throw new Error(`no handle named ${JSON.stringify(name)} in ${this.process.describe()}`);
    }
    return v;
  }

  async #request(op: ThreadOp, ms = this.process.kernel.times.callMs): Promise<unknown> {
    const s = await deadline(
      this.process.backend.send(this.#index, op),
      ms,
      () => `${op.op} on ${this.#where} did not answer within ${ms} ms`,
    );
    if ("killed" in s) throw new Error(`${op.op} on ${this.#where}: the thread was ended`);
    return s.ok;
  }

  async becomeSystem(): Promise<void> {
    await this.#request({ op: "becomeSystem" }, Math.max(this.process.kernel.times.callMs, 30_000));
  }

  async openProcess(target: Process, access: number, name: string): Promise<number> {
    const r = (await this.#request({ op: "openProcess", pid: target.pid, access })) as OpenReply;
    this.process.remember(name, BigInt(r.handle), ntSuccess(r.status));
    return r.status;
  }

  async openThread(target: Thread, access: number, name: string): Promise<number> {
    const r = (await this.#request({ op: "openThread", tid: target.tid, access })) as OpenReply;
    this.process.remember(name, BigInt(r.handle), ntSuccess(r.status));
    return r.status;
  }

  async raise(code: number, parameters: bigint[], ms: number): Promise<RaiseOutcome> {
    const remote = this.process.remote;
    if (!remote) {
      throw new Error(
        "raise(): only in a spawned process (an unhandled second-chance exception would end the suite)",
      );
    }
    const sent = this.process.backend.send(this.#index, {
      op: "raise",
      code,
      parameters: parameters.map(String),
      ms,
    });
    sent.catch(() => {});
    // The Worker waits up to ms for the raising thread; a little more for the answer to come back.
    const s = await within(sent, ms + 5_000);
    if (s === TIMED_OUT) return { outcome: "blocked" };
    if ("killed" in s || remote.ended) {
      await within(remote.status, 10_000);
      const exitCode = remote.exitCode();
      return exitCode === null ? { outcome: "blocked" } : { outcome: "exited", exitCode };
    }
    const r = s.ok as RaiseReply;
    // 0: the exception was handled and the thread continued at ExitThread(0) (ffi/debug/raise_exception.ts);
    // anything else is the NTSTATUS NtRaiseException itself returned.
    return r.exitCode === null
      ? { outcome: "blocked" }
      : { outcome: "returned", status: r.exitCode | 0 };
  }

  async hardError(
    status: number,
    ms: number,
  ): Promise<{ status: number; response: number } | "blocked"> {
    const sent = this.process.backend.send(this.#index, { op: "hardError", status });
    sent.catch(() => {});
    const s = await within(sent, ms);
    if (s === TIMED_OUT) return "blocked";
    if ("killed" in s) return "blocked"; // it never came back (as the fake driver says)
    return s.ok as HardErrorReply;
  }

  async exit(): Promise<void> {
    const ms = this.process.kernel.times.callMs;
    await deadline(
      this.process.backend.exitThread(this.#index, ms),
      ms + 5_000,
      () => `exit of ${this.#where} did not finish within ${ms} ms`,
    );
  }
}
