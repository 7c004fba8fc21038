/**
 * The conformance {@link Kernel} on the fake kernel (`tests/fake_kernel.ts`): processes are pids,
 * threads are identities, and a blocking call waits inside the fake until another thread's call
 * lets it go (`FakeKernel.begin`), as it would on its own OS thread.
 *
 * @module
 */

import { sidToString } from "../../ffi/nt/tokens.ts";
import { DEFAULT_USER_SID, FakeKernel, type Identity, ThreadEnded } from "../fake_kernel.ts";
import { marshal, type ProcessMemory, processMemory } from "./_marshal.ts";
import type { Arg, CallName, Kernel, Pending, Process, RaiseOutcome, Thread } from "./types.ts";

/**
 * What a blocking call that the case lets go itself (a raise, a hard error: the case's server
 * thread receives and replies while it waits) comes to within `ms`.
 */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "blocked"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<"blocked">((r) => (timer = setTimeout(() => r("blocked"), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Gives a settled-or-not promise a deadline in the fake's terms: not settled now = blocked. */
async function settle<T>(
  pending: { readonly settled: boolean; readonly promise: Promise<T | "killed"> },
): Promise<T | "killed" | "blocked"> {
  // Let any microtask resolution run, then look: the fake has no clock, so a call that has not
  // returned by now will not return until some other thread of the case acts.
  await Promise.resolve();
  return pending.settled ? await pending.promise : "blocked";
}

class FakeProcess implements Process {
  readonly memory: ProcessMemory = processMemory();
  readonly main: FakeThread;
  constructor(readonly k: FakeKernel, main: Identity) {
    this.main = new FakeThread(k, this, main);
  }
  get pid(): number {
    return this.main.who.pid;
  }
  thread(): Promise<Thread> {
    return Promise.resolve(new FakeThread(this.k, this, this.k.spawnThread(this.pid)));
  }
  kill(exitCode: number): Promise<void> {
    this.k.killProcess(this.pid, exitCode);
    return Promise.resolve();
  }
  exitCode(): Promise<number | null> {
    return Promise.resolve(this.k.exitCode(this.pid));
  }
}

class FakeThread implements Thread {
  constructor(readonly k: FakeKernel, readonly process: FakeProcess, readonly who: Identity) {}
  get tid(): number {
    return this.who.tid;
  }
  get createTime(): bigint {
    return this.k.createTime(this.who.tid);
  }

  #invoke(name: CallName, args: Arg[]) {
    const m = marshal(name, args, this.process.memory);
    const fn = this.k.symbols[name] as unknown as (...a: unknown[]) => number;
    return { m, run: () => fn(...m.args) };
  }

  call(name: CallName, ...args: Arg[]): Promise<number> {
    const { m, run } = this.#invoke(name, args);
    const p = this.k.begin(this.who, run);
    if (!p.settled) {
      return Promise.reject(
        new Error(`${name} blocked on the fake kernel: a case must start() a call that waits`),
      );
    }
    return p.promise.then((s) => {
      if (s === "killed") throw new ThreadEnded();
      m.collect();
      return s;
    });
  }

  start(name: CallName, ...args: Arg[]): Pending {
    const { m, run } = this.#invoke(name, args);
    const p = this.k.begin(this.who, run);
    const done = p.promise.then((s) => {
      if (s !== "killed") m.collect();
      return s;
    });
    return {
      result: async () => {
        const r = await settle({ settled: p.settled, promise: done });
        return r;
      },
    };
  }

  read(name: string): Promise<Uint8Array> {
    const b = this.process.memory.buffers.get(name);
    if (!b) return Promise.reject(new Error(`no buffer named ${JSON.stringify(name)}`));
    return Promise.resolve(b.slice());
  }

  handleValue(name: string): bigint {
    const v = this.process.memory.handles.get(name);
    if (v === undefined) throw new Error(`no handle named ${JSON.stringify(name)}`);
    return v;
  }

  becomeSystem(): Promise<void> {
    this.k.grantTcb(this.who.tid);
    return Promise.resolve();
  }

  openProcess(target: Process, access: number, name: string): Promise<number> {
    const h = this.k.openProcess(this.who, target.pid, access);
    this.process.memory.handles.set(name, h);
    return Promise.resolve(0);
  }

  openThread(target: Thread, access: number, name: string): Promise<number> {
    const h = this.k.openThread(this.who, target.tid, access);
    this.process.memory.handles.set(name, h);
    return Promise.resolve(0);
  }

  async raise(code: number, parameters: bigint[], ms: number): Promise<RaiseOutcome> {
    const p = this.k.begin(this.who, () => this.k.raiseException(this.who, code, parameters));
    const r = await within(p.promise, ms);
    if (r === "blocked") return { outcome: "blocked" };
    const exitCode = this.k.exitCode(this.who.pid);
    if (r === "killed" || r === "dead" || r === "no port") {
      return { outcome: "exited", exitCode: exitCode ?? code >>> 0 };
    }
    return { outcome: "returned", status: r };
  }

  async hardError(
    status: number,
    ms: number,
  ): Promise<{ status: number; response: number } | "blocked"> {
    const p = this.k.begin(this.who, () => this.k.raiseHardError(this.who, status));
    const r = await within(p.promise, ms);
    if (r === "blocked" || r === "killed") return "blocked";
    return r;
  }

  exit(): Promise<void> {
    this.k.exitThread(this.who);
    return Promise.resolve();
  }
}

/** A fresh fake kernel for one case. */
export function createFakeKernel(): Promise<Kernel> {
  const k = new FakeKernel();
  const self = new FakeProcess(k, k.spawnProcess());
  const processes: FakeProcess[] = [self];
  let names = 0;
  const kernel: Kernel = {
    name: "fake",
    self,
    spawn() {
      const p = new FakeProcess(k, k.spawnProcess());
      processes.push(p);
      return Promise.resolve(p);
    },
    userSid() {
      return Promise.resolve(sidToString(k.userSids.get(self.pid) ?? DEFAULT_USER_SID));
    },
    portName(label: string) {
      return `\\RPC Control\\deno-lpc-conf-${self.pid}-${++names}-${label}`;
    },
    [Symbol.asyncDispose]() {
      for (const p of processes.reverse()) k.killProcess(p.pid, 0);
      return Promise.resolve();
    },
  };
  return Promise.resolve(kernel);
}
