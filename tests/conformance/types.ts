/**
 * The conformance suite's contract: what a case is, and the kernel a case drives.
 *
 * A case is one kernel behaviour the lab depends on, read from the Windows 11 kernel's code (the
 * `ntoskrnl/` files of the public pseudocode repository, named in {@link Case.sources}). Its
 * scenario talks to the kernel only through ntdll-shaped calls with real buffers
 * ({@link Thread.call} / {@link Thread.start}), so the same case runs against the fake kernel on
 * Linux (`fake_driver.ts`) and against the real ntdll on Windows (`windows_driver.ts`), where each
 * thread of the scenario is a real OS thread (a Worker) and each process a real child process.
 *
 * @module
 */

import type { LpcSymbols } from "../../ffi/lpc/port.ts";
import type { AlpcCallName } from "../fake_kernel_alpc.ts";

/** A JSON value (what a case expects and observes). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * An argument of an ntdll-shaped call. Buffers live in the calling thread's *process* (by name),
 * so a case can read them back after the call, and handles are per process, as in NT.
 */
export type Arg =
  | number // a 32-bit integer argument (ULONG, BOOLEAN, an enum)
  | null // a NULL pointer
  | { kind: "out"; name: string } // an 8-byte handle cell; the value is remembered as `name`
  | { kind: "handle"; name: string } // the value of handle `name` (from an `out` earlier)
  | { kind: "handleValue"; name: string } // a pointer to 8 bytes holding handle `name`'s value
  | { kind: "buffer"; name: string; init?: number | Uint8Array } // a named buffer (size or bytes; reused if it exists)
  | { kind: "objectAttributes"; objectName: string | null; attributes?: number } // OBJECT_ATTRIBUTES (+ UNICODE_STRING)
  | { kind: "unicodeString"; value: string } // a pointer to a UNICODE_STRING
  | { kind: "qos"; level: number; dynamic: boolean; length?: number } // SECURITY_QUALITY_OF_SERVICE
  | { kind: "timeout"; ms: number } // a pointer to a relative LARGE_INTEGER timeout (-ms * 10_000)
  | { kind: "pointer"; value: bigint } // a raw pointer value (e.g. a PortContext)
  | { kind: "currentThread" } // NtCurrentThread(), the pseudo-handle -2
  // `length` bytes of the calling process's memory at `address` (a mapped view), as a buffer or
  // pointer argument: `init` is written there before the call; afterwards buffer `name` holds a
  // copy of those bytes, so a case reads them back with `read(name)`.
  | { kind: "memory"; name: string; address: bigint; length: number; init?: Uint8Array };

/** Argument constructors, so cases read like C. */
export const arg = {
  out: (name: string): Arg => ({ kind: "out", name }),
  h: (name: string): Arg => ({ kind: "handle", name }),
  hval: (name: string): Arg => ({ kind: "handleValue", name }),
  buf: (name: string, init?: number | Uint8Array): Arg =>
    init === undefined ? { kind: "buffer", name } : { kind: "buffer", name, init },
  oa: (objectName: string | null, attributes?: number): Arg =>
    attributes === undefined
      ? { kind: "objectAttributes", objectName }
      : { kind: "objectAttributes", objectName, attributes },
  us: (value: string): Arg => ({ kind: "unicodeString", value }),
  /** SecurityImpersonation (2), static tracking, unless told otherwise. */
  qos: (level = 2, dynamic = false, length?: number): Arg =>
    length === undefined
      ? { kind: "qos", level, dynamic }
      : { kind: "qos", level, dynamic, length },
  timeout: (ms: number): Arg => ({ kind: "timeout", ms }),
  ptr: (value: bigint): Arg => ({ kind: "pointer", value }),
  self: (): Arg => ({ kind: "currentThread" }),
  mem: (name: string, address: bigint, length: number, init?: Uint8Array): Arg =>
    init === undefined
      ? { kind: "memory", name, address, length }
      : { kind: "memory", name, address, length, init },
} as const;

/**
 * The ntdll functions a case may call: the LPC code's symbol table ({@link LpcSymbols}),
 * `NtSetInformationProcess` (the exception port), `NtCreateSection` (port views) and the ALPC
 * functions ({@link AlpcCallName}; a case calling them `needs` "alpc"). The fake implements exactly
 * these.
 */
export type CallName =
  | keyof LpcSymbols
  | "NtSetInformationProcess"
  | "NtCreateSection"
  | AlpcCallName;

/** A blocking call in flight on its own thread. */
export interface Pending {
  /**
   * The call's NTSTATUS once it returned within `ms`, `"blocked"` if it is still waiting then,
   * `"killed"` if its thread or process was ended while it waited.
   */
  result(ms: number): Promise<number | "blocked" | "killed">;
}

/** What a raise in the scenario's client came to. */
export type RaiseOutcome =
  | { outcome: "returned"; status: number } // the raising call came back (the exception was handled)
  | { outcome: "exited"; exitCode: number } // the process ended (with this code)
  | { outcome: "blocked" }; // neither within the time given

/** A thread of the scenario: a real OS thread on Windows, an identity in the fake. */
export interface Thread {
  /** Its ClientId.UniqueThread. */
  readonly tid: number;
  /** Its process. */
  readonly process: Process;
  /** Its creation time (FILETIME, 100 ns since 1601), as `NtQueryInformationThread(ThreadTimes)` says. */
  readonly createTime: bigint;
  /** Makes the call on this thread and waits for it (use only for calls that do not block). */
  call(name: CallName, ...args: Arg[]): Promise<number>;
  /** Starts a call that may block (connect, request, a long receive) on this thread. */
  start(name: CallName, ...args: Arg[]): Pending;
  /** This thread's copy of the buffer `name` (in its process), as it is now. */
  read(name: string): Promise<Uint8Array>;
  /** The value of handle `name` in this thread's process. */
  handleValue(name: string): bigint;
  /** Gives this thread the SYSTEM token (SeTcbPrivilege held): on Windows, impersonation of a SYSTEM process's token. */
  becomeSystem(): Promise<void>;
  /**
   * Opens `target` from this thread's process with `access` (`NtOpenProcess`); the handle is
   * remembered as `name`. Returns the status.
   */
  openProcess(target: Process, access: number, name: string): Promise<number>;
  /**
   * Opens thread `target` from this thread's process with `access` (`NtOpenThread` by its
   * ClientId); the handle is remembered as `name`. Returns the status.
   */
  openThread(target: Thread, access: number, name: string): Promise<number>;
  /**
   * Raises a noncontinuable-safe, second-chance exception (`NtRaiseException(..., FALSE)`) with
   * `code` on this thread, and waits up to `ms` for what it comes to.
   */
  raise(code: number, parameters: bigint[], ms: number): Promise<RaiseOutcome>;
  /**
   * Raises a hard error (`NtRaiseHardError(status, 0, 0, NULL, OptionOk, &response)`) on this thread
   * and waits up to `ms`: the call's status and the response, or `"blocked"`.
   */
  hardError(status: number, ms: number): Promise<{ status: number; response: number } | "blocked">;
  /** Ends this thread (it returns from its start routine; the kernel runs its exit path). */
  exit(): Promise<void>;
}

/** A process of the scenario: a child process on Windows, a pid in the fake. */
export interface Process {
  /** Its ClientId.UniqueProcess. */
  readonly pid: number;
  /** Its first thread. */
  readonly main: Thread;
  /** Starts another thread in this process. */
  thread(): Promise<Thread>;
  /** Terminates the process (`NtTerminateProcess`) and waits until it is gone. */
  kill(exitCode: number): Promise<void>;
  /** Its exit code once ended, else null. */
  exitCode(): Promise<number | null>;
}

/** The kernel a case runs against. Disposing it ends every process, thread and handle it made. */
export interface Kernel extends AsyncDisposable {
  /** Which kernel: the fake, or the real one. */
  readonly name: "fake" | "windows";
  /** The process the suite runs in (its threads are new threads of this process). */
  readonly self: Process;
  /** Starts a new process (a client). */
  spawn(): Promise<Process>;
  /** A port name unique to this run, in a directory any user may create objects in. */
  portName(label: string): string;
  /**
   * The user SID (`S-1-…`) of the suite's process's primary token: what a RequiredServerSid must
   * name to reach a server of this process (AlpcpCheckConnectionSecurity.c).
   */
  userSid(): Promise<string>;
}

/** What a case saw and what the kernel's code says it should see. */
export interface Outcome {
  expected: Json;
  observed: Json;
}

/** One kernel behaviour, with where it comes from and how to see it. */
export interface Case {
  /** A sentence that names the rule (unique in the suite). */
  name: string;
  /** The Windows 11 function files it comes from, e.g. `AlpcpSendCloseMessage.c` (at least one). */
  sources: string[];
  /**
   * What it needs beyond one thread of the suite's process; "alpc": the NtAlpc* exports (a
   * Windows run skips the case, with the reason, where ntdll lacks `NtAlpcCreatePort`).
   */
  needs?: ("process" | "system" | "alpc")[];
  /** Runs the scenario and returns the expectation beside the observation (deep-equal to pass). */
  run(k: Kernel): Promise<Outcome>;
}
