/**
 * A fake of the LPC and ALPC part of the Windows 11 kernel, behind the same ntdll signatures the
 * toolkit binds. It reads the real buffers and native pointers our code passes (so marshalling is
 * tested too) and follows the kernel's own code, rule by rule: every rule below names the
 * `ntoskrnl/` function file it is read from (the public Hex-Rays pseudocode of Windows 11,
 * repository nohuto/decompiled-pseudocode). Each rule has a conformance case
 * (`tests/conformance/`) that runs against this fake on Linux and against the real kernel on
 * Windows, so a rule this fake gets wrong fails there.
 *
 * ## Using it
 *
 * ```ts
 * const k = new FakeKernel();
 * const server = { pid: 100, tid: 101 };         // identities appear when first used
 * k.as(server, () => createConnectionPort("\\RPC Control\\x", { nt: k.symbols }));
 * k.actor(server, () => lpcServer.step(0));       // runs whenever a blocking call waits
 * k.as(client, () => LpcClient.connect("\\RPC Control\\x", { nt: k.symbols }));
 * k.exitThread(client);                           // PspExitThread for one thread
 * k.killProcess(client.pid);                      // every thread exits, then the handles close
 * ```
 *
 * - `symbols`: the ntdll stand-in (`FakeSymbols`); each call acts as `current`, the identity
 *   set with `as(who, fn)`.
 * - Blocking calls (connect, request, a receive with no timeout, a raise) wait in one of two ways:
 *   synchronously, by running the registered actors (`actor`) until they can finish (and throwing
 *   "would block forever" if nothing moves), or, inside `begin(who, fn)`, by returning a
 *   {@link FakePending} that settles when another thread's call lets them go (the conformance
 *   driver uses this, so a case can run two threads as on Windows).
 * - Processes and threads: `spawnProcess()`, `spawnThread(pid)`, `exitThread(who)`,
 *   `killProcess(pid, exitCode)`; `createTime(tid)`, `exitCode(pid)`; `grantTcb(tid)` gives a
 *   thread SeTcbPrivilege (what `becomeSystem` does on Windows); `openProcess(who, pid, access)`,
 *   `openThread(who, tid, access)`; `sessionIds` (a process's session, 1 unless set).
 * - Kernel-originated messages: `raiseException(who, code, parameters)` (second chance through
 *   the exception port), `raiseHardError(who, status)`.
 * - For assertions: `calls`, `openHandles(pid)`, `impersonating`, `deniedConnect`.
 *
 * - ALPC: `symbols` also holds the `NtAlpc*` functions and the attribute helpers; their rules are in
 *   `tests/fake_kernel_alpc.ts` (which says what it models), on the same ports, handles and messages
 *   (one port object type, as in the kernel). `userSids` sets a process's user SID (the
 *   RequiredServerSid check).
 *
 * Time is virtual: a receive with a finite timeout and nothing queued returns `STATUS_TIMEOUT` at
 * once (nothing else can happen while the caller waits). Sections and legacy port views are in
 * `tests/fake_kernel_views.ts`. Not modelled: large messages, the debugger (a debugger delays
 * `LPC_CLIENT_DIED`: PspExitThread.c), WER (the error port
 * that `DBG_EXCEPTION_NOT_HANDLED` goes to: DbgkpSendErrorMessage.c; here the process then ends
 * with the exception code, the path without a WER answer), security descriptors (except
 * `deniedConnect`) and the QoS level's effect on impersonation.
 *
 * @module
 */

import { LAYOUTS } from "../ffi/layouts.ts";
import type { LpcSymbols } from "../ffi/lpc/port.ts";
import type { NtdllSymbols } from "../ffi/ntdll.ts";
import { LPC_LEGACY_MAX_MESSAGE_LENGTH, LpcMessageType } from "../ffi/port_message.ts";
import { NTSTATUS } from "../ffi/status.ts";
import { decodeUtf16 } from "../ffi/strings.ts";
import { sidFromString } from "../ffi/nt/tokens.ts";
import { message, rawHeader } from "./conformance/_util.ts";
import { type FakeSection, FakeViews } from "./fake_kernel_views.ts";
import { AlpcRules, type AlpcSymbols } from "./fake_kernel_alpc.ts";

const PM = LAYOUTS.PORT_MESSAGE;
const CID = LAYOUTS.CLIENT_ID;
const OA = LAYOUTS.OBJECT_ATTRIBUTES;
const US = LAYOUTS.UNICODE_STRING;
const DBGKM = LAYOUTS.DBGKM_APIMSG;
const ER = LAYOUTS.EXCEPTION_RECORD;
const S = NTSTATUS;

/**
 * The LPC symbols, none missing, plus the process call the exception port needs and the ALPC
 * functions (tests/fake_kernel_alpc.ts).
 */
export type FakeSymbols =
  & { [K in keyof LpcSymbols]: NonNullable<LpcSymbols[K]> }
  & Pick<NtdllSymbols, "NtSetInformationProcess" | "NtCreateSection">
  & AlpcSymbols;

/** A thread identity (ClientId). */
export interface Identity {
  pid: number;
  tid: number;
}

/** A blocking call started with {@link FakeKernel.begin}. */
export interface FakePending<T> {
  /** Whether it has returned (or its thread died). */
  readonly settled: boolean;
  /** What it returned, or `"killed"` when its thread ended while it waited. */
  readonly promise: Promise<T | "killed">;
}

/** `LPC_CLIENT_DIED` and `LPC_PORT_CLOSED`: DataLength 8, TotalLength 0x30 (PspExitThread.c). */
const DIED_TOTAL = 0x30;
/** `LPC_EXCEPTION` on the exception port: DataLength 0xA8, TotalLength 0xD0 (DbgkForwardException.c). */
const EXCEPTION_TOTAL = 0xd0;
/** `LPC_ERROR_EVENT`: DataLength 0x48, TotalLength 0x70 (ExpRaiseHardError.c). */
const HARD_ERROR_TOTAL = 0x70;
/** Type bits a legacy receive keeps (AlpcpReceiveLegacyMessage.c: `& 0xC00F`). */
const LEGACY_TYPE_MASK = 0xc00f;
/** `LPC_NO_IMPERSONATE`: a sender's flag that refuses impersonation (AlpcpImpersonateMessage.c). */
const LPC_NO_IMPERSONATE = 0x4000;
/** `LPC_ERROR_EVENT` (hard error) type. */
const LPC_ERROR_EVENT = 9;
/** `LPC_UNREGISTER_PROCESS`: the old exception port's notice (NtSetInformationProcess.c case 8). */
const LPC_UNREGISTER_PROCESS = 13;

type PortKind = "connection" | "server" | "client";

/** A port (legacy or ALPC: one object type); exported for the ALPC rules. */
export interface Port {
  id: number;
  kind: PortKind;
  /** Its name, lower-cased (the lookup key: the object manager compares names case-blind). */
  name?: string;
  /** Its name as created (what ObQueryNameStringMode.c gives back). */
  fullName?: string;
  maxMessage: number;
  queue: Message[];
  /** Communication ports: their connection port. */
  connection?: Port;
  /** Communication ports: the other end. */
  peer?: Port;
  /** Server communication port: the PortContext given at accept. */
  context: bigint;
  /** Open handles to it. */
  handles: number;
  /** References the kernel holds (queued messages sent on its behalf, termination registrations). */
  refs: number;
  /** All handles closed (AlpcpClosePort.c: the port is disconnected at its last handle). */
  closed: boolean;
  /** The object is gone (AlpcpDeletePort.c). */
  deleted: boolean;
  /** The process whose handle created it. */
  ownerPid: number;
  /** Client port: the QoS of the connect (AlpcpCreateClientPort.c). */
  qos?: { level: number; dynamic: boolean };
  /** Client port: LPC_PORT_CLOSED already sent. */
  closeSent?: boolean;
  /** Made by an `NtAlpc*` call (its rules: tests/fake_kernel_alpc.ts). */
  alpc?: true;
}

type MessageKind = "connect" | "request" | "datagram" | "kernel" | "exception" | "hardError";

/** A message; exported for the ALPC rules. */
export interface Message {
  messageId: number;
  callbackId: number;
  kind: MessageKind;
  /** The header and data as the receiver will see them (Type before masking). */
  bytes: Uint8Array;
  /** The PortContext the receiver gets. */
  context: bigint;
  from: Identity;
  /** queued → received → replied; cancelled when its sender died (AlpcpCancelMessage.c). */
  state: "queued" | "received" | "replied" | "cancelled" | "freed";
  /** The port it was queued on. */
  queuedOn: Port;
  /** For requests: the server communication port of the connection (whose replies it takes). */
  owner?: Port;
  /** The port whose reference this message holds until it is freed. */
  holds?: Port;
  /** What the waiting sender gets. */
  reply?: Uint8Array;
  /** Why the waiting sender was let go without a reply. */
  failure?: number;
  // connection requests
  connInfo?: Uint8Array;
  serverPort?: Port;
  clientCapacity?: number;
  qos?: { level: number; dynamic: boolean };
  connect?: "accepted" | "refused";
}

/** A thread; exported for the ALPC rules. */
export interface ThreadState {
  tid: number;
  pid: number;
  createTime: bigint;
  alive: boolean;
  /** Termination ports, newest first (NtRegisterThreadTerminatePort.c pushes at the head). */
  terminatePorts: Port[];
  /**
   * The thread's token: a client's (by pid) while impersonating it, `"system"` (a SYSTEM token
   * with SeTcbPrivilege, what `grantTcb` gives), or null (the process token).
   */
  impersonating: number | "system" | null;
  /**
   * The impersonation level of an ALPC impersonation (PsImpersonateClient.c), undefined
   * otherwise; SecurityAnonymous (0) makes NtOpenThreadTokenEx.c refuse the token.
   */
  impersonationLevel?: number | undefined;
}

/** A process; exported for the ALPC rules. */
export interface ProcessState {
  pid: number;
  createTime: bigint;
  alive: boolean;
  exitCode: number | null;
  exceptionPort: Port | null;
  exceptionState: number;
}

/** A handle table entry; exported for the ALPC rules. */
export type HandleEntry =
  | { type: "port"; port: Port; pid: number }
  | { type: "process"; target: number; access: number; pid: number }
  | { type: "thread"; target: number; access: number; pid: number }
  | { type: "token"; client: number | "system"; pid: number }
  | { type: "section"; section: FakeSection; pid: number };

/** Thrown inside {@link FakeKernel.begin} when a call must wait; the driver keeps it. */
class Blocked<T> {
  constructor(readonly cond: () => boolean, readonly finish: () => T, readonly who: Identity) {}
}

const u8 = (b: AllowSharedBufferSource | null): Uint8Array | null =>
  b === null
    ? null
    : ArrayBuffer.isView(b)
    ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
    : new Uint8Array(b);
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const ptrValue = (p: Deno.PointerValue): bigint => (p === null ? 0n : Deno.UnsafePointer.value(p));

/** A message as the kernel builds it: header fields, then the data. */
function build(
  type: number,
  from: Identity,
  messageId: number,
  callbackId: number,
  data: Uint8Array,
  totalLength = PM.size + data.byteLength,
): Uint8Array {
  return message({
    data,
    type,
    pid: from.pid,
    tid: from.tid,
    messageId,
    callbackId,
    totalLength,
    size: totalLength,
  });
}

/** Reads a UNICODE_STRING given the address of the struct. */
function readUnicodeStringAt(address: bigint): string {
  const p = Deno.UnsafePointer.create(address)!;
  const v = new Deno.UnsafePointerView(p);
  const length = v.getUint16(US.offsets.Length);
  const buffer = v.getBigUint64(US.offsets.Buffer);
  const bytes = new Uint8Array(length);
  if (length) Deno.UnsafePointerView.copyInto(Deno.UnsafePointer.create(buffer)!, bytes);
  return decodeUtf16(bytes);
}

const FILETIME_2026 = 134_000_000_000_000_000n;

/** The user SID every fake process runs as unless told: S-1-5-21-1000-2000-3000-1001. */
export const DEFAULT_USER_SID: Uint8Array = sidFromString("S-1-5-21-1000-2000-3000-1001");

/** The fake kernel. `symbols` stands in for ntdll. */
export class FakeKernel {
  #nextHandle = 0x100n;
  #freeMessageIds: number[] = [];
  #nextMessageId = 4;
  #nextCallbackId = 1;
  #nextPortId = 1;
  #nextPid = 1000;
  #clock = FILETIME_2026;
  #handles = new Map<bigint, HandleEntry>();
  #names = new Map<string, Port>();
  #messages = new Map<number, Message>();
  #threads = new Map<number, ThreadState>();
  #processes = new Map<number, ProcessState>();
  #actors: { who: Identity; step: () => unknown }[] = [];
  #waiters: { b: Blocked<unknown>; resolve: (v: unknown) => void; settled: { v: boolean } }[] = [];
  #progress = 0;
  #async = false;
  /** The thread making the current call. */
  current: Identity = { pid: 200, tid: 201 };
  /** Every call made, for assertions: `Name status`. */
  readonly calls: string[] = [];
  /** PIDs refused at connect with STATUS_ACCESS_DENIED (a DACL without PORT_CONNECT for them). */
  readonly deniedConnect = new Set<number>();
  /**
   * Each process's user SID (what a RequiredServerSid is compared with:
   * AlpcpCheckConnectionSecurity.c); {@link DEFAULT_USER_SID} when not set.
   */
  readonly userSids = new Map<number, Uint8Array>();
  /** Each process's session (what `AlpcServerSessionInformation` reports); 1 when not set. */
  readonly sessionIds = new Map<number, number>();

  /** The ALPC rules (tests/fake_kernel_alpc.ts), on this kernel's ports, handles and messages. */
  readonly #alpc: AlpcRules = new AlpcRules({
    current: () => this.current,
    port: (p) => this.#port(p),
    newHandle: (e) => this.#newHandle(e),
    handles: () => this.#handles.entries(),
    names: this.#names,
    nextPortId: () => this.#nextPortId++,
    message: (id) => this.#messages.get(id),
    messages: () => this.#messages.values(),
    sessionId: (pid) => this.sessionIds.get(pid) ?? 1,
    allocMessage: (m) => this.#allocMessage(m),
    free: (m) => this.#free(m),
    enqueue: (port, m) => this.#enqueue(port, m),
    block: (what, cond, finish) => this.#block(what, cond, finish),
    changed: () => this.#changed(),
    log: (name, status) => this.#log(name, status),
    thread: (who) => this.#thread(who),
    threadAlive: (tid) => this.#threads.get(tid)?.alive ?? false,
    proc: (pid) => this.#proc(pid),
    userSid: (pid) => this.userSids.get(pid) ?? DEFAULT_USER_SID,
    close: (h) => {
      const entry = this.#handles.get(h);
      if (entry) this.#close(h, entry);
    },
  });
  /** Sections and legacy port views (tests/fake_kernel_views.ts). */
  readonly views = new FakeViews();

  /** ObReferenceObjectByHandle.c for a section handle of the current process. */
  #section = (h: bigint): FakeSection | number => {
    const entry = this.#handles.get(h);
    if (!entry || entry.pid !== this.current.pid) return S.STATUS_INVALID_HANDLE;
    return entry.type === "section" ? entry.section : S.STATUS_OBJECT_TYPE_MISMATCH;
  };

  /** Threads impersonating a client: tid -> the client's pid. */
  get impersonating(): ReadonlyMap<number, number> {
    const m = new Map<number, number>();
    for (const t of this.#threads.values()) {
      if (typeof t.impersonating === "number") m.set(t.tid, t.impersonating);
    }
    return m;
  }

  /** Threads impersonating through an ALPC call: tid -> the impersonation level (0 anonymous). */
  get impersonationLevels(): ReadonlyMap<number, number> {
    const m = new Map<number, number>();
    for (const t of this.#threads.values()) {
      if (typeof t.impersonating === "number" && t.impersonationLevel !== undefined) {
        m.set(t.tid, t.impersonationLevel);
      }
    }
    return m;
  }

  // ---------------------------------------------------------------- processes and threads

  #proc(pid: number): ProcessState {
    let p = this.#processes.get(pid);
    if (!p) {
      p = {
        pid,
        createTime: this.#tick(),
        alive: true,
        exitCode: null,
        exceptionPort: null,
        exceptionState: 0,
      };
      this.#processes.set(pid, p);
    }
    return p;
  }

  #thread(who: Identity): ThreadState {
    let t = this.#threads.get(who.tid);
    if (!t) {
      this.#proc(who.pid);
      t = {
        tid: who.tid,
        pid: who.pid,
        createTime: this.#tick(),
        alive: true,
        terminatePorts: [],
        impersonating: null,
      };
      this.#threads.set(who.tid, t);
    }
    return t;
  }

  #tick(): bigint {
    this.#clock += 10_000n;
    return this.#clock;
  }

  /** A new process with one thread; returns that thread. */
  spawnProcess(): Identity {
    while (this.#processes.has(this.#nextPid)) this.#nextPid += 4;
    const pid = this.#nextPid;
    this.#nextPid += 4;
    return this.spawnThread(pid);
  }

  /** A new thread in process `pid`. */
  spawnThread(pid: number): Identity {
    let tid = pid + 4;
    while (this.#threads.has(tid)) tid += 4;
    const who = { pid, tid };
    this.#thread(who);
    return who;
  }

  /** The thread's creation time (FILETIME). */
  createTime(tid: number): bigint {
    return this.#thread({ pid: this.current.pid, tid }).createTime;
  }

  /** Sets a thread's creation time (FILETIME) before it is first used. */
  setCreateTime(tid: number, fileTime: bigint): void {
    const t = this.#threads.get(tid);
    if (t) t.createTime = fileTime;
    else this.#pendingCreateTimes.set(tid, fileTime);
  }
  #pendingCreateTimes = new Map<number, bigint>();

  /** A process's exit code, or null while it runs. */
  exitCode(pid: number): number | null {
    return this.#processes.get(pid)?.exitCode ?? null;
  }

  /** Gives a thread a SYSTEM impersonation token, with SeTcbPrivilege (what `becomeSystem` does on Windows). */
  grantTcb(tid: number): void {
    this.#thread({ pid: this.current.pid, tid }).impersonating = "system";
  }

  /** Whether the thread's token holds SeTcbPrivilege (it runs as SYSTEM). */
  hasTcb(tid: number): boolean {
    return this.#threads.get(tid)?.impersonating === "system";
  }

  /** Opens process `target` from `who`'s process with `access`; returns the handle value. */
  openProcess(who: Identity, target: number, access: number): bigint {
    if (!this.#processes.get(target)?.alive) throw new Error(`openProcess: no process ${target}`);
    return this.#newHandle({ type: "process", target, access, pid: who.pid });
  }

  /** Opens thread `tid` from `who`'s process with `access`; returns the handle value. */
  openThread(who: Identity, tid: number, access: number): bigint {
    if (!this.#threads.get(tid)?.alive) throw new Error(`openThread: no thread ${tid}`);
    return this.#newHandle({ type: "thread", target: tid, access, pid: who.pid });
  }

  /** Runs `fn` as `who`. */
  as<T>(who: Identity, fn: () => T): T {
    const saved = this.current;
    this.current = who;
    const t = this.#threads.get(who.tid);
    if (!t) {
      this.#thread(who);
      const pending = this.#pendingCreateTimes.get(who.tid);
      if (pending !== undefined) this.#threads.get(who.tid)!.createTime = pending;
    }
    try {
      return fn();
    } finally {
      this.current = saved;
    }
  }

  /** Registers an actor run (as `who`) whenever a blocking call waits synchronously. */
  actor(who: Identity, step: () => unknown): void {
    this.#actors.push({ who, step });
  }

  /**
   * Runs `fn` as `who`; a call in it that must wait returns a pending result instead of running
   * the actors (how the conformance driver runs a blocking call on "its own thread").
   */
  begin<T>(who: Identity, fn: () => T): FakePending<T> {
    const saved = this.#async;
    this.#async = true;
    try {
      const value = this.as(who, fn);
      return { settled: true, promise: Promise.resolve(value) };
    } catch (e) {
      if (!(e instanceof Blocked)) throw e;
      const settled = { v: false };
      let resolve!: (v: unknown) => void;
      const promise = new Promise<unknown>((r) => (resolve = r));
      this.#waiters.push({ b: e, resolve, settled });
      return {
        get settled() {
          return settled.v;
        },
        promise: promise as Promise<T | "killed">,
      };
    } finally {
      this.#async = saved;
    }
  }

  /** Waits until `cond()`, then returns `finish()` (synchronously, or by blocking in `begin`). */
  #block<T>(what: string, cond: () => boolean, finish: () => T): T {
    if (cond()) return finish();
    const who = { ...this.current };
    if (this.#async) throw new Blocked(cond, finish, who);
    for (let rounds = 0; rounds < 10_000; rounds++) {
      const before = this.#progress;
      for (const a of this.#actors) {
        if (this.#threads.get(a.who.tid)?.alive === false) continue;
        this.as(a.who, a.step);
      }
      if (cond()) return finish();
      if (this.#threads.get(who.tid)?.alive === false) throw new ThreadEnded();
      if (this.#progress === before) throw new Error(`fake kernel: ${what} would block forever`);
    }
    throw new Error(`fake kernel: ${what} did not finish`);
  }

  /** Something changed: let go every waiter whose condition now holds. */
  #changed(): void {
    this.#progress++;
    for (let again = true; again;) {
      again = false;
      for (const w of [...this.#waiters]) {
        const t = this.#threads.get(w.b.who.tid);
        if (t && !t.alive) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.settled.v = true;
          w.resolve("killed");
          continue;
        }
        if (!w.b.cond()) continue;
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        const saved = this.#async;
        this.#async = true;
        try {
          const v = this.as(w.b.who, w.b.finish);
          w.settled.v = true;
          w.resolve(v);
        } finally {
          this.#async = saved;
        }
        again = true;
      }
    }
  }

  // ---------------------------------------------------------------- handles and ports

  #newHandle(entry: HandleEntry): bigint {
    const h = this.#nextHandle;
    this.#nextHandle += 4n;
    this.#handles.set(h, entry);
    if (entry.type === "port") entry.port.handles++;
    return h;
  }

  /** Any port kind is one object type (ALPC Port); the kind is decided inside each call. */
  #port(p: Deno.PointerValue): Port | number {
    const entry = this.#handles.get(ptrValue(p));
    if (!entry || entry.pid !== this.current.pid) return S.STATUS_INVALID_HANDLE;
    if (entry.type !== "port") return S.STATUS_OBJECT_TYPE_MISMATCH;
    return entry.port;
  }

  /** Open handles owned by `pid`. */
  openHandles(pid: number): number {
    return [...this.#handles.values()].filter((h) => h.pid === pid).length;
  }

  #allocMessage(m: Omit<Message, "messageId" | "callbackId">): Message {
    // AlpcpAllocateMessage.c / AlpcpLookupMessage.c: MessageIds index a handle table (multiples of
    // 4, slots reused after a message is freed); every message gets a fresh non-zero CallbackId.
    const messageId = this.#freeMessageIds.pop() ?? (this.#nextMessageId += 4) - 4;
    const callbackId = this.#nextCallbackId++ || this.#nextCallbackId++;
    const msg: Message = { ...m, messageId, callbackId };
    const dv = view(msg.bytes);
    dv.setUint32(PM.offsets.MessageId, messageId, true);
    dv.setUint32(PM.offsets.CallbackId, callbackId, true);
    this.#messages.set(messageId, msg);
    if (msg.holds) msg.holds.refs++;
    return msg;
  }

  #free(msg: Message): void {
    if (msg.state === "freed") return;
    msg.state = "freed";
    this.#messages.delete(msg.messageId);
    this.#freeMessageIds.push(msg.messageId);
    const held = msg.holds;
    if (held) {
      held.refs--;
      this.#maybeDelete(held);
    }
  }

  /**
   * Queues a message on `port` unless it is too large for it: AlpcpSendMessage.c and
   * AlpcpDispatchNewMessage.c drop a kernel message whose TotalLength exceeds the receiving port's
   * MaxMessageLength. Returns false when dropped or when the port is gone.
   */
  #enqueue(port: Port, msg: Message): boolean {
    if (port.closed || rawHeader(msg.bytes).totalLength > port.maxMessage) {
      this.#free(msg);
      return false;
    }
    port.queue.push(msg);
    this.#changed();
    return true;
  }

  #close(h: bigint, entry: HandleEntry): void {
    this.#handles.delete(h);
    if (entry.type !== "port") return;
    const port = entry.port;
    port.handles--;
    // AlpcpClosePort.c cleans up (AlpcpDoPortCleanup.c, AlpcpSendCloseMessage.c) when the closing
    // process's handle count reaches 1 and it is the port's owner (or the port has 0x100000).
    // Here a port's handles all live in the process that made it, its owner (no handle is
    // duplicated or inherited), so the port's own count stands for both tests.
    if (port.handles > 0) return;
    port.closed = true;
    this.views.portClosed(port);
    if (port.name && this.#names.get(port.name) === port) this.#names.delete(port.name); // ObpDecrementHandleCount.c
    if (port.kind === "connection") {
      // AlpcpDoPortCleanup.c, AlpcpFlushQueue.c: the queues are flushed; pending connects fail
      // (AlpcpReceiveLegacyConnectionReply.c: STATUS_PORT_CONNECTION_REFUSED), waiting requesters
      // get STATUS_LPC_REPLY_LOST (NtRequestWaitReplyPort.c).
      for (const msg of [...port.queue]) this.#flush(msg);
      port.queue = [];
      for (const msg of [...this.#messages.values()]) {
        if (msg.queuedOn === port && msg.state === "received") this.#flush(msg);
      }
    } else if (port.kind === "server") {
      // AlpcpFlushMessagesPort.c: requests waiting on this connection lose their reply; a legacy
      // client gets no close message (AlpcpSendCloseMessage.c sends only for a client port).
      for (const msg of [...this.#messages.values()]) {
        if (msg.owner === port && (msg.state === "queued" || msg.state === "received")) {
          this.#flush(msg);
        }
      }
    }
    if (port.alpc) this.#alpc.portClosed(port); // AlpcpClosePort.c: the close message
    this.#maybeDelete(port);
    this.#changed();
  }

  #flush(msg: Message): void {
    if (msg.state === "freed" || msg.state === "replied") return;
    const q = msg.queuedOn.queue;
    if (q.includes(msg)) q.splice(q.indexOf(msg), 1);
    if (msg.kind === "connect") msg.failure = S.STATUS_PORT_CONNECTION_REFUSED;
    else if (msg.kind === "request" || msg.kind === "exception" || msg.kind === "hardError") {
      msg.failure = S.STATUS_LPC_REPLY_LOST;
    }
    if (msg.kind === "connect" || msg.kind === "datagram" || msg.kind === "kernel") this.#free(msg);
    else msg.state = "cancelled";
  }

  /**
   * AlpcpDeletePort.c: a legacy client port sends `LPC_PORT_CLOSED` when the object is deleted
   * (no handle and no kernel reference left), which can be after the `LPC_CLIENT_DIED` messages
   * that held references to it were received. AlpcpSendCloseMessage.c: ClientId {0, 0}, DataLength
   * 8, TotalLength 0x30, and the data is the CreateTime of the process current at deletion.
   */
  #maybeDelete(port: Port): void {
    if (port.deleted || port.handles > 0 || port.refs > 0) return;
    port.deleted = true;
    if (port.kind !== "client" || port.closeSent) return;
    port.closeSent = true;
    const server = port.peer;
    const connection = server?.connection;
    if (!server || server.closed || !connection || connection.closed) return; // AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c
    const data = new Uint8Array(8);
    view(data).setBigUint64(0, this.#proc(this.current.pid).createTime, true);
    const msg = this.#allocMessage({
      kind: "kernel",
      bytes: build(LpcMessageType.LPC_PORT_CLOSED, { pid: 0, tid: 0 }, 0, 0, data),
      context: server.context,
      from: { pid: 0, tid: 0 },
      state: "queued",
      queuedOn: connection,
    });
    this.#enqueue(connection, msg);
  }

  // ---------------------------------------------------------------- thread and process exit

  /**
   * PspExitThread.c for one thread: `LPC_CLIENT_DIED` (Type 6, 8/0x30, the thread's CreateTime)
   * to each termination port, newest registration first, then (for an inserted thread) to the
   * process's exception port with PortContext 0; then its waiting messages are cancelled
   * (AlpcpCancelMessage.c).
   */
  exitThread(who: Identity): void {
    const t = this.#thread(who);
    if (!t.alive) return;
    const time = new Uint8Array(8);
    view(time).setBigUint64(0, t.createTime, true);
    for (const port of t.terminatePorts) {
      this.#sendDied(port, who, time);
      port.refs--;
      this.#maybeDelete(port);
    }
    t.terminatePorts = [];
    const exc = this.#proc(who.pid).exceptionPort;
    if (exc && !exc.closed) {
      this.#enqueue(
        exc,
        this.#allocMessage({
          kind: "kernel",
          bytes: build(LpcMessageType.LPC_CLIENT_DIED, who, 0, 0, time, DIED_TOTAL),
          context: 0n,
          from: who,
          state: "queued",
          queuedOn: exc,
        }),
      );
    }
    t.alive = false;
    t.impersonating = null;
    // AlpcpCancelMessage.c: the messages this thread waits on are cancelled. Legacy receive skips
    // a cancelled message (AlpcpReceiveLegacyMessage.c), so one not yet received is gone; one
    // already received answers a late reply with STATUS_PORT_DISCONNECTED. A connection request
    // already received stays, and its accept fails with STATUS_INVALID_CID. Datagrams and kernel
    // messages it sent have no waiter and stay queued.
    for (const msg of [...this.#messages.values()]) {
      if (msg.from.tid !== who.tid || msg.from.pid !== who.pid) continue;
      if (msg.kind === "datagram" || msg.kind === "kernel") continue;
      if (msg.state === "queued") {
        const q = msg.queuedOn.queue;
        if (q.includes(msg)) q.splice(q.indexOf(msg), 1);
        this.#free(msg);
      } else if (msg.state === "received" && msg.kind !== "connect") msg.state = "cancelled";
    }
    this.#changed();
  }

  /**
   * What a termination registration targets (E16; AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c):
   * a client port → its connection port with the server port's context; a connection port →
   * itself with context 0; a server port → the client (its own queue).
   */
  #sendDied(port: Port, who: Identity, time: Uint8Array): void {
    let target: Port | undefined;
    let context = 0n;
    if (port.kind === "client") {
      const server = port.peer;
      if (!server || server.closed) return;
      target = server.connection;
      context = server.context;
    } else if (port.kind === "connection") {
      target = port;
    } else {
      target = port.peer;
    }
    if (!target || target.closed) return;
    this.#enqueue(
      target,
      this.#allocMessage({
        kind: "kernel",
        bytes: build(LpcMessageType.LPC_CLIENT_DIED, who, 0, 0, time, DIED_TOTAL),
        context,
        from: who,
        state: "queued",
        queuedOn: target,
        ...(port.kind === "client" ? { holds: port } : {}),
      }),
    );
  }

  /**
   * Terminates a process: every thread exits (`tids` first, in that order, then the others the
   * fake knows), then its handles are closed (PspExitThread.c: the last thread's exit runs the
   * handle-table rundown).
   */
  killProcess(pid: number, tidsOrExitCode?: number[] | number, exitCode = 1): void {
    const proc = this.#proc(pid);
    if (!proc.alive) return;
    const order = Array.isArray(tidsOrExitCode) ? [...tidsOrExitCode] : [];
    const code = typeof tidsOrExitCode === "number" ? tidsOrExitCode : exitCode;
    for (const tid of order) this.#thread({ pid, tid });
    for (const t of this.#threads.values()) {
      if (t.pid === pid && !order.includes(t.tid)) order.push(t.tid);
    }
    const saved = this.current;
    for (const tid of order) {
      this.current = { pid, tid };
      this.exitThread({ pid, tid });
    }
    this.current = { pid, tid: order.at(-1) ?? 0 };
    try {
      for (const [h, entry] of [...this.#handles]) if (entry.pid === pid) this.#close(h, entry);
    } finally {
      this.current = saved;
    }
    proc.alive = false;
    proc.exitCode = code >>> 0;
    proc.exceptionPort = null;
    this.#changed();
  }

  // ---------------------------------------------------------------- exception port

  /**
   * NtSetInformationProcess.c case 8 (ProcessExceptionPort), after its privilege and length checks:
   * any port kind is accepted; the 8-byte form fails when the old value has state bits; the old
   * port, if any, receives type 13 (`LPC_UNREGISTER_PROCESS`, 8/0x30) with the pid.
   */
  #setExceptionPort(pid: number, port: Port, state: number, form: 8 | 16): number {
    const proc = this.#proc(pid);
    if (form === 8 && proc.exceptionState !== 0) return S.STATUS_INVALID_PARAMETER;
    const old = proc.exceptionPort;
    proc.exceptionPort = port;
    proc.exceptionState = state;
    if (old && !old.closed) {
      const data = new Uint8Array(8);
      view(data).setBigUint64(0, BigInt(pid), true);
      this.#enqueue(
        old,
        this.#allocMessage({
          kind: "kernel",
          bytes: build(LPC_UNREGISTER_PROCESS, this.current, 0, 0, data, DIED_TOTAL),
          context: 0n,
          from: { ...this.current },
          state: "queued",
          queuedOn: old,
        }),
      );
    }
    return S.STATUS_SUCCESS;
  }

  /**
   * Test hook: what a server with SeTcbPrivilege does with `NtSetInformationProcess(client,
   * ProcessExceptionPort, &port, 8)`; `portHandle` is one of the current process's handles.
   */
  setExceptionPort(pid: number, portHandle: bigint): number {
    const port = this.#port(Deno.UnsafePointer.create(portHandle));
    if (typeof port === "number") return port;
    return this.#setExceptionPort(pid, port, 0, 8);
  }

  /**
   * A second-chance exception in `who` (KiDispatchException.c; DbgkForwardException.c): with no
   * debugger, `LPC_EXCEPTION` (Type 7, 0xA8/0xD0, ApiNumber 0, ReturnedStatus STATUS_PENDING, the
   * record, FirstChance 0) is a request to the exception port and the thread waits. A reply whose
   * ReturnedStatus is >= 0 and not `DBG_EXCEPTION_NOT_HANDLED` means handled: the raise returns
   * that status. Otherwise, or when the port cannot take it (none, or MaxMessageLength < 0xD0),
   * the process is terminated with the exception code (`"dead"`; here no WER port answers).
   * Returns `"no port"` when the process has no exception port (it is terminated too).
   */
  raiseException(
    who: Identity,
    code: number,
    parameters: bigint[] = [],
  ): number | "dead" | "no port" {
    return this.as(who, () => this.#raiseException(who, code, parameters));
  }

  #raiseException(who: Identity, code: number, parameters: bigint[]): number | "dead" | "no port" {
    const port = this.#proc(who.pid).exceptionPort;
    const data = new Uint8Array(EXCEPTION_TOTAL - PM.size);
    const dv = view(data);
    const at = (off: number) => off - PM.size;
    dv.setUint32(at(DBGKM.offsets.ApiNumber), 0, true);
    dv.setUint32(at(DBGKM.offsets.ReturnedStatus), S.STATUS_PENDING, true);
    dv.setUint32(at(DBGKM.offsets.ExceptionRecord + ER.offsets.ExceptionCode), code >>> 0, true);
    dv.setBigUint64(
      at(DBGKM.offsets.ExceptionRecord + ER.offsets.ExceptionAddress),
      0x7ff600001000n,
      true,
    );
    dv.setUint32(
      at(DBGKM.offsets.ExceptionRecord + ER.offsets.NumberParameters),
      parameters.length,
      true,
    );
    parameters.forEach((v, i) =>
      dv.setBigUint64(
        at(DBGKM.offsets.ExceptionRecord + ER.offsets.ExceptionInformation + 8 * i),
        v,
        true,
      )
    );
    dv.setUint32(at(DBGKM.offsets.FirstChance), 0, true);
    const terminate = (): "dead" => {
      this.killProcess(who.pid, code);
      return "dead";
    };
    if (!port || port.closed) {
      this.killProcess(who.pid, code);
      return "no port";
    }
    const msg = this.#allocMessage({
      kind: "exception",
      bytes: build(LpcMessageType.LPC_EXCEPTION, who, 0, 0, data),
      context: 0n,
      from: { ...who },
      state: "queued",
      queuedOn: port,
    });
    if (!this.#enqueue(port, msg)) return terminate(); // KiDispatchException.c: the send failed
    return this.#block(
      "an exception waiting for its reply",
      () =>
        msg.state === "replied" || msg.state === "cancelled" || msg.failure !== undefined ||
        msg.state === "freed",
      () => {
        const reply = msg.reply;
        this.#free(msg);
        if (!reply) return terminate();
        const verdict = view(reply).getUint32(DBGKM.offsets.ReturnedStatus, true);
        if ((verdict | 0) < 0) return terminate(); // includes DBG_EXCEPTION_NOT_HANDLED
        return verdict;
      },
    );
  }

  /** ALPC views mapped in process `pid` (tests/fake_kernel_alpc.ts), for bounds in tests. */
  alpcViews(pid: number): number {
    return this.#alpc.mappedViews(pid);
  }

  /** Exceptions still waiting for their reply. */
  pendingExceptions(): number {
    return [...this.#messages.values()].filter((m) =>
      m.kind === "exception" && (m.state === "queued" || m.state === "received")
    ).length;
  }

  /**
   * A hard error in `who` (ExpRaiseHardError.c): with an exception port and the
   * HARDERROR_OVERRIDE_ERRORMODE bit (0x10000000) in `status` (the path a process without the
   * default-hard-error-mode flag takes), a request of Type 9, 0x48/0x70: Status (without that bit)
   * at 40, ErrorTime at 48, ValidResponseOptions at 56, Response at 60, NumberOfParameters at 64,
   * ParameterMask at 68. The thread waits for the reply; the caller gets the reply's Response when
   * it is at most 10, else 0. With no port the call returns success and Response 0.
   */
  raiseHardError(who: Identity, status: number, responseOption = 1): {
    status: number;
    response: number;
  } {
    return this.as(who, () => this.#raiseHardError(who, status, responseOption));
  }

  #raiseHardError(who: Identity, status: number, responseOption: number): {
    status: number;
    response: number;
  } {
    const port = this.#proc(who.pid).exceptionPort;
    if (!port || port.closed || (status & 0x10000000) === 0) {
      return { status: S.STATUS_SUCCESS, response: 0 };
    }
    const data = new Uint8Array(HARD_ERROR_TOTAL - PM.size);
    const dv = view(data);
    dv.setUint32(0, (status & 0xefffffff) >>> 0, true);
    dv.setBigUint64(8, this.#tick(), true);
    dv.setUint32(16, responseOption, true);
    const msg = this.#allocMessage({
      kind: "hardError",
      bytes: build(LPC_ERROR_EVENT, who, 0, 0, data),
      context: 0n,
      from: { ...who },
      state: "queued",
      queuedOn: port,
    });
    if (!this.#enqueue(port, msg)) return { status: S.STATUS_SUCCESS, response: 0 };
    return this.#block(
      "a hard error waiting for its reply",
      () => msg.state === "replied" || msg.failure !== undefined,
      () => {
        const reply = msg.reply;
        const failure = msg.failure;
        this.#free(msg);
        if (!reply) return { status: failure ?? S.STATUS_LPC_REPLY_LOST, response: 0 };
        const r = reply.byteLength >= 64 ? view(reply).getUint32(60, true) : 0;
        return { status: S.STATUS_SUCCESS, response: r <= 10 ? r : 0 };
      },
    );
  }

  // ---------------------------------------------------------------- replies

  /**
   * A legacy reply (AlpcpReplyLegacySynchronousRequest.c, AlpcpLookupMessage.c): validated like any
   * message; found by MessageId and, when non-zero, CallbackId — the ClientId is never read.
   * MessageId 0, unknown or freed → STATUS_INVALID_MESSAGE; a message whose sender died →
   * STATUS_PORT_DISCONNECTED; not received yet, already replied, not a request, or another port's
   * → STATUS_ACCESS_DENIED. The requester gets LPC_REPLY with the replying thread's ClientId.
   */
  #reply(port: Port, buf: Uint8Array): number {
    const h = rawHeader(buf);
    const invalid = this.#validate(buf);
    if (invalid) return invalid;
    const msg = this.#messages.get(h.messageId);
    if (h.messageId === 0 || !msg || (h.callbackId !== 0 && h.callbackId !== msg.callbackId)) {
      return S.STATUS_INVALID_MESSAGE;
    }
    if (msg.state === "cancelled") {
      this.#free(msg);
      return S.STATUS_PORT_DISCONNECTED;
    }
    const waits = msg.kind === "request" || msg.kind === "exception" || msg.kind === "hardError";
    if (!waits || msg.state !== "received") return S.STATUS_ACCESS_DENIED;
    const ownsIt = port === msg.queuedOn || port === msg.owner ||
      (msg.owner !== undefined && port === msg.owner.connection);
    if (!ownsIt) return S.STATUS_ACCESS_DENIED;
    const reply = buf.slice(0, PM.size + h.dataLength);
    const dv = view(reply);
    dv.setUint16(PM.offsets.TotalLength, PM.size + h.dataLength, true);
    dv.setUint16(PM.offsets.Type, LpcMessageType.LPC_REPLY, true);
    dv.setBigUint64(
      PM.offsets.ClientId + CID.offsets.UniqueProcess,
      BigInt(this.current.pid),
      true,
    );
    dv.setBigUint64(PM.offsets.ClientId + CID.offsets.UniqueThread, BigInt(this.current.tid), true);
    msg.reply = reply;
    msg.state = "replied";
    this.#changed();
    return S.STATUS_SUCCESS;
  }

  /**
   * AlpcpValidateMessage.c (legacy): DataLength + 40 must not exceed TotalLength; a valid
   * DataInfoOffset is accepted (AlpcpValidateDataInformation.c).
   */
  #validate(buf: Uint8Array): number {
    if (buf.byteLength < PM.size) return S.STATUS_INVALID_PARAMETER; // harness guard
    const h = rawHeader(buf);
    if (h.dataLength + PM.size > h.totalLength) return S.STATUS_INVALID_PARAMETER;
    if (PM.size + h.dataLength > buf.byteLength) return S.STATUS_ACCESS_VIOLATION; // harness guard
    return 0;
  }

  #log(name: string, status: number): number {
    this.calls.push(`${name} 0x${(status >>> 0).toString(16)}`);
    return status;
  }

  /** Writes a received message into the caller's buffer (header + DataLength bytes only). */
  #copyOut(msg: Message, receive: Uint8Array): void {
    const h = rawHeader(msg.bytes);
    // AlpcpReceiveLegacyMessage.c: only the header and DataLength bytes are written; Type is
    // masked with 0xC00F on the way out.
    const n = Math.min(PM.size + h.dataLength, receive.byteLength);
    receive.set(msg.bytes.subarray(0, n));
    view(receive).setUint16(PM.offsets.Type, h.type & LEGACY_TYPE_MASK, true);
  }

  /** The ntdll stand-in (every function present, typed as the real table). */
  readonly symbols: FakeSymbols = {
    NtCreatePort: (cellB, oaB, _maxConnInfo, maxMessage, _pool) => {
      const cell = u8(cellB)!;
      let name: string | undefined;
      const oaBytes = u8(oaB);
      if (oaBytes) {
        // ObpCaptureObjectCreateInformation.c: Length must be sizeof(OBJECT_ATTRIBUTES); NULL
        // attributes (an unnamed port) are allowed.
        const oa = view(oaBytes);
        if (oa.getUint32(OA.offsets.Length, true) !== OA.size) {
          return this.#log("NtCreatePort", S.STATUS_INVALID_PARAMETER);
        }
        const nameAddress = oa.getBigUint64(OA.offsets.ObjectName, true);
        name = nameAddress ? readUnicodeStringAt(nameAddress) : undefined;
      }
      // NtCreatePort.c passes only MaxMessageLength on (MaxConnectionInfoLength and MaxPoolUsage
      // are ignored); AlpcpValidateAndSetPortAttributes.c refuses more than
      // LpcLegacyMaxMessageLength (648 on x64, Phase1InitializationDiscard.c).
      if (maxMessage > LPC_LEGACY_MAX_MESSAGE_LENGTH) {
        return this.#log("NtCreatePort", S.STATUS_INVALID_PARAMETER);
      }
      const key = name?.toLowerCase();
      if (key && this.#names.has(key)) {
        return this.#log("NtCreatePort", S.STATUS_OBJECT_NAME_COLLISION);
      }
      const port: Port = {
        id: this.#nextPortId++,
        kind: "connection",
        ...(key ? { name: key, fullName: name! } : {}),
        maxMessage,
        queue: [],
        context: 0n,
        handles: 0,
        refs: 0,
        closed: false,
        deleted: false,
        ownerPid: this.current.pid,
      };
      if (key) this.#names.set(key, port);
      view(cell).setBigUint64(
        0,
        this.#newHandle({ type: "port", port, pid: this.current.pid }),
        true,
      );
      return this.#log("NtCreatePort", S.STATUS_SUCCESS);
    },

    NtConnectPort: (cellB, nameB, qosB, cvB, svB, maxB, infoB, infoLenB) => {
      const lengths = this.views.checkLengths(cvB, svB); // NtSecureConnectPort.c
      if (lengths) return this.#log("NtConnectPort", lengths);
      const nameStruct = u8(nameB)!;
      const name = readUnicodeStringAt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(nameStruct)));
      const port = this.#names.get(name.toLowerCase());
      if (!port || port.closed) return this.#log("NtConnectPort", S.STATUS_OBJECT_NAME_NOT_FOUND);
      if (this.deniedConnect.has(this.current.pid)) {
        return this.#log("NtConnectPort", S.STATUS_ACCESS_DENIED);
      }
      // AlpcpCreateClientPort.c (after the name lookup) copies 12 bytes of QoS without reading
      // its Length; a NULL QoS is allowed; SeValidateSecurityQos.c refuses a level above
      // Delegation (3) with STATUS_BAD_IMPERSONATION_LEVEL and a tracking mode above 1 with
      // STATUS_INVALID_PARAMETER.
      const qosBytes = u8(qosB);
      let qos = { level: 2, dynamic: false };
      if (qosBytes) {
        const q = view(qosBytes);
        const level = q.getUint32(4, true);
        const tracking = q.getUint8(8);
        if (tracking > 1) return this.#log("NtConnectPort", S.STATUS_INVALID_PARAMETER);
        if (level > 3) return this.#log("NtConnectPort", S.STATUS_BAD_IMPERSONATION_LEVEL);
        qos = { level, dynamic: tracking === 1 };
      }
      const info = u8(infoB);
      const infoLen = u8(infoLenB);
      const capacity = info && infoLen ? view(infoLen).getUint32(0, true) : 0;
      // AlpcpValidateConnectionMessage.c: connection data longer than MaxMessageLength - 40 is
      // cut to that length (not refused).
      const sent = (info ?? new Uint8Array(0)).slice(
        0,
        Math.min(capacity, port.maxMessage - PM.size),
      );
      // AlpcpFormatConnectionRequest.c maps the client's view first (AlpcpMapLegacyPortView.c).
      const clientView = cvB === null ? null : this.views.mapLegacyView(
        u8(cvB)!,
        this.current.pid,
        this.#section,
      );
      if (typeof clientView === "number") return this.#log("NtConnectPort", clientView);
      // AlpcpFormatConnectionRequest.c: Type 10, the caller's ClientId, context 0.
      const msg = this.#allocMessage({
        kind: "connect",
        bytes: build(LpcMessageType.LPC_CONNECTION_REQUEST, this.current, 0, 0, sent),
        context: 0n,
        from: { ...this.current },
        state: "queued",
        queuedOn: port,
        connInfo: sent,
        clientCapacity: capacity,
        qos,
      });
      this.views.attachToConnect(msg, msg.bytes, clientView, port.ownerPid);
      if (!this.#enqueue(port, msg)) {
        this.views.dropConnect(msg);
        return this.#log("NtConnectPort", S.STATUS_PORT_CONNECTION_REFUSED);
      }
      const status = this.#block(
        "NtConnectPort",
        () => msg.connect !== undefined || msg.failure !== undefined,
        () => {
          if (msg.connect !== "accepted") {
            // AlpcpReceiveLegacyConnectionReply.c: refused, or flushed → connection refused.
            this.views.dropConnect(msg);
            return S.STATUS_PORT_CONNECTION_REFUSED;
          }
          const clientPort = msg.serverPort!.peer!;
          this.views.connected(msg, u8(cvB), u8(svB), msg.serverPort!, clientPort);
          view(u8(cellB)!).setBigUint64(
            0,
            this.#newHandle({ type: "port", port: clientPort, pid: this.current.pid }),
            true,
          );
          clientPort.refs--; // the handle now keeps it
          const max = u8(maxB);
          if (max) view(max).setUint32(0, port.maxMessage, true); // NtSecureConnectPort.c
          if (info && infoLen) {
            // E14: min(the caller's length, the server's).
            const back = msg.connInfo!.subarray(0, Math.min(capacity, msg.connInfo!.byteLength));
            info.set(back);
            view(infoLen).setUint32(0, back.byteLength, true);
          }
          return S.STATUS_SUCCESS;
        },
      );
      return this.#log("NtConnectPort", status);
    },

    NtAcceptConnectPort: (cellB, contextP, msgB, accept, svB, cvB) => {
      const lengths = this.views.checkLengths(svB, cvB); // AlpcpAcceptConnectPort.c
      if (lengths) return this.#log("NtAcceptConnectPort", lengths);
      const buf = u8(msgB)!;
      const h = rawHeader(buf);
      // AlpcpAcceptConnectPort.c: MessageId 0 → STATUS_REPLY_MESSAGE_MISMATCH; the lookup's own
      // errors (unknown, freed) → STATUS_INVALID_MESSAGE; not a connection request → MISMATCH;
      // already answered → STATUS_INVALID_MESSAGE. The ClientId is not compared.
      if (h.messageId === 0) {
        return this.#log("NtAcceptConnectPort", S.STATUS_REPLY_MESSAGE_MISMATCH);
      }
      const msg = this.#messages.get(h.messageId);
      if (!msg) return this.#log("NtAcceptConnectPort", S.STATUS_INVALID_MESSAGE);
      if (msg.kind !== "connect") {
        return this.#log("NtAcceptConnectPort", S.STATUS_REPLY_MESSAGE_MISMATCH);
      }
      if (msg.connect !== undefined || msg.state !== "received") {
        return this.#log("NtAcceptConnectPort", S.STATUS_INVALID_MESSAGE);
      }
      if (msg.queuedOn.ownerPid !== this.current.pid) {
        return this.#log("NtAcceptConnectPort", S.STATUS_ACCESS_DENIED); // only the owner accepts
      }
      if (!this.#threads.get(msg.from.tid)?.alive) {
        this.#free(msg);
        return this.#log("NtAcceptConnectPort", S.STATUS_INVALID_CID);
      }
      if (!accept) {
        msg.connect = "refused";
        this.#free(msg);
        this.#changed();
        return this.#log("NtAcceptConnectPort", S.STATUS_SUCCESS);
      }
      if (svB !== null) {
        // AlpcpAcceptConnectPort.c: the server's own view (a failure leaves the request pending).
        const mapped = this.views.acceptServerView(
          msg,
          u8(svB)!,
          this.current.pid,
          msg.from.pid,
          this.#section,
        );
        if (mapped) return this.#log("NtAcceptConnectPort", mapped);
      }
      const common = {
        maxMessage: msg.queuedOn.maxMessage,
        queue: [],
        connection: msg.queuedOn,
        handles: 0,
        refs: 0,
        closed: false,
        deleted: false,
      };
      const server: Port = {
        ...common,
        id: this.#nextPortId++,
        kind: "server",
        context: 0n,
        ownerPid: this.current.pid,
      };
      const client: Port = {
        ...common,
        queue: [],
        id: this.#nextPortId++,
        kind: "client",
        context: 0n,
        ownerPid: msg.from.pid,
        qos: msg.qos!,
        refs: 1, // held for the connecting thread until NtConnectPort returns
      };
      server.peer = client;
      client.peer = server;
      const handle = this.#newHandle({ type: "port", port: server, pid: this.current.pid });
      // AlpcpAcceptConnectPort.c: a NULL PortContext becomes the server port's handle value.
      server.context = contextP === null ? handle : ptrValue(contextP);
      view(u8(cellB)!).setBigUint64(0, handle, true);
      // The server's connection data goes back (capped by the client's length in NtConnectPort).
      msg.connInfo = buf.slice(
        PM.size,
        PM.size + Math.min(h.dataLength, msg.queuedOn.maxMessage - PM.size),
      );
      msg.serverPort = server;
      this.views.acceptClientView(msg, u8(cvB), server, client);
      // E9: the client is released here (AlpcpDispatchReplyToWaitingThread.c), not by
      // NtCompleteConnectPort.
      msg.connect = "accepted";
      this.#free(msg);
      this.#changed();
      return this.#log("NtAcceptConnectPort", S.STATUS_SUCCESS);
    },

    // NtCompleteConnectPort's code is not in the snapshot; Wine's port.c (which passes on Windows)
    // expects success right after the accept: a formality on a communication port.
    NtCompleteConnectPort: (p) => {
      const port = this.#port(p);
      if (typeof port === "number") return this.#log("NtCompleteConnectPort", port);
      return this.#log("NtCompleteConnectPort", S.STATUS_SUCCESS);
    },

    NtReplyWaitReceivePortEx: (p, contextB, replyB, receiveB, timeoutB) => {
      const port = this.#port(p);
      if (typeof port === "number") return this.#log("NtReplyWaitReceivePortEx", port);
      const reply = u8(replyB);
      if (reply) {
        // NtReplyWaitReceivePortEx.c: the reply first; if it fails, that status, nothing received.
        const status = this.#reply(port, reply);
        if (status !== 0) return this.#log("NtReplyWaitReceivePortEx(reply)", status);
      }
      // AlpcpReceiveLegacyMessage.c: any port kind receives from its own queue (a server port's
      // messages are queued on its connection port, so it is usually empty).
      const from = port;
      const next = () => from.queue.find((m) => m.state === "queued");
      const deliver = () => {
        const msg = next()!;
        from.queue.splice(from.queue.indexOf(msg), 1);
        this.#copyOut(msg, u8(receiveB)!);
        const ctx = u8(contextB);
        if (ctx) view(ctx).setBigUint64(0, msg.context, true);
        if (msg.kind === "request" || msg.kind === "exception" || msg.kind === "hardError") {
          msg.state = "received";
        } else if (msg.kind === "connect") msg.state = "received";
        else this.#free(msg); // datagrams and kernel datagrams are freed once received
        this.#changed();
        return S.STATUS_SUCCESS;
      };
      if (next()) return this.#log("NtReplyWaitReceivePortEx", deliver());
      if (u8(timeoutB) !== null) {
        return this.#log("NtReplyWaitReceivePortEx", S.STATUS_TIMEOUT); // virtual time
      }
      const status = this.#block(
        "NtReplyWaitReceivePortEx",
        () => !!next() || from.closed,
        () => next() ? deliver() : S.STATUS_PORT_DISCONNECTED,
      );
      return this.#log("NtReplyWaitReceivePortEx", status);
    },

    NtRequestWaitReplyPort: (p, requestB, replyB) => {
      const port = this.#port(p);
      if (typeof port === "number") return this.#log("NtRequestWaitReplyPort", port);
      const request = u8(requestB)!;
      const invalid = this.#validate(request);
      if (invalid) return this.#log("NtRequestWaitReplyPort", invalid);
      const h = rawHeader(request);
      // AlpcpSendLegacySynchronousRequest.c: the raw TotalLength above the port's maximum is
      // refused (checked before the validation resets it), and so is DataLength + 40.
      if (h.totalLength > port.maxMessage || PM.size + h.dataLength > port.maxMessage) {
        return this.#log("NtRequestWaitReplyPort", S.STATUS_PORT_MESSAGE_TOO_LONG);
      }
      // AlpcpProcessSynchronousRequest.c: from a client port to its server (through the
      // connection port), or from a server port to its client.
      const target = this.#target(port);
      if (typeof target === "number") return this.#log("NtRequestWaitReplyPort", target);
      // The request is stamped 0x2001 (LPC_REQUEST | LPC_CONTINUATION_REQUIRED) whatever the
      // sender wrote; the receive masks it (AlpcpReceiveLegacyMessage.c).
      const msg = this.#allocMessage({
        kind: "request",
        bytes: build(
          0x2000 | LpcMessageType.LPC_REQUEST,
          this.current,
          0,
          0,
          request.subarray(PM.size, PM.size + h.dataLength),
        ),
        context: target.context,
        from: { ...this.current },
        state: "queued",
        queuedOn: target.queue,
        ...(port.kind === "client" ? { owner: port.peer!, holds: port } : { owner: port }),
      });
      if (!this.#enqueue(target.queue, msg)) {
        return this.#log("NtRequestWaitReplyPort", S.STATUS_PORT_DISCONNECTED);
      }
      const status = this.#block(
        "NtRequestWaitReplyPort",
        () => msg.state === "replied" || msg.failure !== undefined,
        () => {
          const reply = msg.reply;
          const failure = msg.failure;
          this.#free(msg);
          if (!reply) return failure ?? S.STATUS_LPC_REPLY_LOST;
          const out = u8(replyB)!;
          out.set(reply.subarray(0, Math.min(out.byteLength, reply.byteLength)));
          const r = rawHeader(reply);
          view(out).setUint16(PM.offsets.Type, r.type & LEGACY_TYPE_MASK, true); // AlpcpProcessSynchronousRequest.c
          return S.STATUS_SUCCESS;
        },
      );
      return this.#log("NtRequestWaitReplyPort", status);
    },

    NtRequestPort: (p, requestB) => {
      const port = this.#port(p);
      if (typeof port === "number") return this.#log("NtRequestPort", port);
      const request = u8(requestB)!;
      const invalid = this.#validate(request);
      if (invalid) return this.#log("NtRequestPort", invalid);
      const h = rawHeader(request);
      // AlpcpSendMessage.c: a datagram's Type & 0xFF must be 0 (the sender's flag bits stay);
      // TotalLength above the port's maximum is refused.
      if ((h.type & 0xff) !== 0) return this.#log("NtRequestPort", S.STATUS_INVALID_PARAMETER);
      if (PM.size + h.dataLength > port.maxMessage) {
        return this.#log("NtRequestPort", S.STATUS_PORT_MESSAGE_TOO_LONG);
      }
      const target = this.#target(port);
      if (typeof target === "number") return this.#log("NtRequestPort", target);
      const msg = this.#allocMessage({
        kind: "datagram",
        bytes: build(
          (h.type & 0xdf00) | LpcMessageType.LPC_DATAGRAM,
          this.current,
          0,
          0,
          request.subarray(PM.size, PM.size + h.dataLength),
        ),
        context: target.context,
        from: { ...this.current },
        state: "queued",
        queuedOn: target.queue,
        ...(port.kind === "client" ? { holds: port } : {}),
      });
      const ok = this.#enqueue(target.queue, msg);
      return this.#log("NtRequestPort", ok ? S.STATUS_SUCCESS : S.STATUS_PORT_DISCONNECTED);
    },

    NtReplyPort: (p, replyB) => {
      const port = this.#port(p);
      if (typeof port === "number") return this.#log("NtReplyPort", port);
      return this.#log("NtReplyPort", this.#reply(port, u8(replyB)!));
    },

    NtImpersonateClientOfPort: (p, msgB) => {
      const port = this.#port(p);
      if (typeof port === "number") return this.#log("NtImpersonateClientOfPort", port);
      const h = rawHeader(u8(msgB)!);
      // NtImpersonateClientOfPort.c: MessageId 0 → STATUS_INVALID_PARAMETER; a failed lookup
      // (STATUS_INVALID_MESSAGE) becomes STATUS_REPLY_MESSAGE_MISMATCH.
      if (h.messageId === 0) {
        return this.#log("NtImpersonateClientOfPort", S.STATUS_INVALID_PARAMETER);
      }
      const msg = this.#messages.get(h.messageId);
      if (!msg || (h.callbackId !== 0 && h.callbackId !== msg.callbackId)) {
        return this.#log("NtImpersonateClientOfPort", S.STATUS_REPLY_MESSAGE_MISMATCH);
      }
      // AlpcpImpersonateMessage.c: the message must be a received request awaiting its reply,
      // without LPC_NO_IMPERSONATE, and belong to this server port's connection (the connection
      // port itself is refused: AlpcpReferenceConnectedPort.c) → else STATUS_ACCESS_DENIED.
      const type = rawHeader(msg.bytes).type;
      if (msg.kind !== "request" || msg.state !== "received" || (type & LPC_NO_IMPERSONATE)) {
        return this.#log("NtImpersonateClientOfPort", S.STATUS_ACCESS_DENIED);
      }
      if (port.kind !== "server" || msg.owner !== port) {
        return this.#log("NtImpersonateClientOfPort", S.STATUS_ACCESS_DENIED);
      }
      this.#thread(this.current).impersonating = msg.from.pid;
      this.#thread(this.current).impersonationLevel = undefined;
      return this.#log("NtImpersonateClientOfPort", S.STATUS_SUCCESS);
    },

    NtSetInformationThread: (thread, cls, infoB, length) => {
      // NtSetInformationThread.c, ThreadImpersonationToken (5): 8 bytes holding a token handle or
      // NULL (revert to self). Only that class and the current-thread pseudo-handle are modelled.
      if (ptrValue(thread) !== 0xfffffffffffffffen || cls !== 5) {
        return this.#log("NtSetInformationThread", S.STATUS_NOT_IMPLEMENTED);
      }
      if (length !== 8) return this.#log("NtSetInformationThread", S.STATUS_INFO_LENGTH_MISMATCH);
      const token = view(u8(infoB)!).getBigUint64(0, true);
      const t = this.#thread(this.current);
      t.impersonationLevel = undefined;
      if (token === 0n) {
        t.impersonating = null;
        return this.#log("NtSetInformationThread", S.STATUS_SUCCESS);
      }
      const entry = this.#handles.get(token);
      if (!entry || entry.pid !== this.current.pid) {
        return this.#log("NtSetInformationThread", S.STATUS_INVALID_HANDLE);
      }
      if (entry.type !== "token") {
        return this.#log("NtSetInformationThread", S.STATUS_OBJECT_TYPE_MISMATCH);
      }
      t.impersonating = entry.client;
      return this.#log("NtSetInformationThread", S.STATUS_SUCCESS);
    },

    NtOpenThreadToken: (thread, _access, _asSelf, cellB) => {
      // NtOpenThreadToken.c: STATUS_NO_TOKEN when the thread is not impersonating.
      if (ptrValue(thread) !== 0xfffffffffffffffen) {
        return this.#log("NtOpenThreadToken", S.STATUS_NOT_IMPLEMENTED);
      }
      const t = this.#thread(this.current);
      if (t.impersonating === null) {
        return this.#log("NtOpenThreadToken", S.STATUS_NO_TOKEN);
      }
      // NtOpenThreadTokenEx.c: an anonymous-level impersonation → STATUS_CANT_OPEN_ANONYMOUS.
      if (t.impersonationLevel === 0) {
        return this.#log("NtOpenThreadToken", S.STATUS_CANT_OPEN_ANONYMOUS);
      }
      const h = this.#newHandle({ type: "token", client: t.impersonating, pid: this.current.pid });
      view(u8(cellB)!).setBigUint64(0, h, true);
      return this.#log("NtOpenThreadToken", S.STATUS_SUCCESS);
    },

    NtRegisterThreadTerminatePort: (p) => {
      const port = this.#port(p);
      if (typeof port === "number") return this.#log("NtRegisterThreadTerminatePort", port);
      // NtRegisterThreadTerminatePort.c: any port, repeatedly; pushed at the head of the list.
      const t = this.#thread(this.current);
      t.terminatePorts.unshift(port);
      port.refs++;
      return this.#log("NtRegisterThreadTerminatePort", S.STATUS_SUCCESS);
    },

    NtSetInformationProcess: (processP, cls, infoB, length) => {
      if (cls !== 8) return this.#log("NtSetInformationProcess", S.STATUS_NOT_IMPLEMENTED);
      // NtSetInformationProcess.c case 8: length 8 or 16, state flags <= 7, SeTcbPrivilege in the
      // effective token (SePrivilegeCheck.c), a port handle of any kind, the process handle with
      // 0x800 (PROCESS_SUSPEND_RESUME).
      if (length !== 8 && length !== 16) {
        return this.#log("NtSetInformationProcess", S.STATUS_INFO_LENGTH_MISMATCH);
      }
      const info = u8(infoB)!;
      const state = length === 16 ? view(info).getUint32(8, true) : 0;
      if (state & ~7) return this.#log("NtSetInformationProcess", S.STATUS_INVALID_PARAMETER);
      if (this.#thread(this.current).impersonating !== "system") {
        return this.#log("NtSetInformationProcess", S.STATUS_PRIVILEGE_NOT_HELD);
      }
      const port = this.#port(Deno.UnsafePointer.create(view(info).getBigUint64(0, true)));
      if (typeof port === "number") return this.#log("NtSetInformationProcess", port);
      const proc = this.#handles.get(ptrValue(processP));
      if (!proc || proc.pid !== this.current.pid) {
        return this.#log("NtSetInformationProcess", S.STATUS_INVALID_HANDLE);
      }
      if (proc.type !== "process") {
        return this.#log("NtSetInformationProcess", S.STATUS_OBJECT_TYPE_MISMATCH);
      }
      if ((proc.access & 0x800) === 0) {
        return this.#log("NtSetInformationProcess", S.STATUS_ACCESS_DENIED);
      }
      if (length === 16) view(info).setUint32(8, this.#proc(proc.target).exceptionState, true);
      return this.#log(
        "NtSetInformationProcess",
        this.#setExceptionPort(proc.target, port, state, length),
      );
    },

    NtCreateSection: (cellB, access, _oa, sizeB, protection, attributes, file) => {
      // NtCreateSection.c → MiCreateSectionCommon.c → MiCreatePagingFileMap.c (unnamed only).
      const section = this.views.createSection(
        access,
        u8(sizeB),
        protection,
        attributes,
        ptrValue(file),
      );
      if (typeof section === "number") return this.#log("NtCreateSection", section);
      const h = this.#newHandle({ type: "section", section, pid: this.current.pid });
      view(u8(cellB)!).setBigUint64(0, h, true);
      return this.#log("NtCreateSection", S.STATUS_SUCCESS);
    },

    NtClose: (p) => {
      const h = ptrValue(p);
      const entry = this.#handles.get(h);
      if (!entry || entry.pid !== this.current.pid) {
        return this.#log("NtClose", S.STATUS_INVALID_HANDLE);
      }
      this.#close(h, entry);
      return this.#log("NtClose", S.STATUS_SUCCESS);
    },

    ...this.#alpc.symbols,
  };

  /**
   * Where a send from `port` goes: a client port's messages to the server (queued on the
   * connection port, with the server port's context); a server port's to its client (the client
   * port's queue). A closed peer → STATUS_PORT_DISCONNECTED
   * (AlpcpSendLegacySynchronousRequest.c; AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c).
   */
  #target(port: Port): { queue: Port; context: bigint } | number {
    if (port.kind === "client") {
      const server = port.peer!;
      if (server.closed || !server.connection || server.connection.closed) {
        return S.STATUS_PORT_DISCONNECTED;
      }
      return { queue: server.connection, context: server.context };
    }
    if (port.kind === "server") {
      const client = port.peer!;
      if (client.closed) return S.STATUS_PORT_DISCONNECTED;
      return { queue: client, context: 0n };
    }
    return S.STATUS_INVALID_PORT_HANDLE;
  }
}

/** Thrown to a synchronous caller whose thread was ended while it waited. */
export class ThreadEnded extends Error {
  constructor() {
    super("fake kernel: the calling thread was terminated while it waited");
  }
}
