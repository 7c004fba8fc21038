/**
 * Processes: create (as ourselves or with a given token), open, wait, read exit codes, count
 * handles. A {@link ChildProcess} owns its process and thread handles, and on dispose ends a
 * child that is still running, so nothing is left behind.
 *
 * @module
 */

import { advapi32 } from "../advapi32.ts";
import {
  addressOf,
  checkWin32,
  checkWin32Pointer,
  currentProcess,
  handleCell,
  NtHandle,
} from "./handle.ts";
import { kernel32 } from "../kernel32.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll } from "../ntdll.ts";
import { ObjectAttributes, readCountedUnicodeString } from "./object_attributes.ts";
import { check, NTSTATUS, toUnsigned } from "../status.ts";
import { decodeUtf16, wideString } from "../strings.ts";

const SI = LAYOUTS.STARTUPINFOW;
const PI = LAYOUTS.PROCESS_INFORMATION;

/** Process access rights (winnt.h). */
export const ProcessAccess = {
  PROCESS_TERMINATE: 0x0001,
  PROCESS_CREATE_THREAD: 0x0002,
  PROCESS_VM_OPERATION: 0x0008,
  PROCESS_VM_READ: 0x0010,
  PROCESS_VM_WRITE: 0x0020,
  PROCESS_DUP_HANDLE: 0x0040,
  PROCESS_SET_INFORMATION: 0x0200,
  PROCESS_QUERY_INFORMATION: 0x0400,
  PROCESS_SUSPEND_RESUME: 0x0800,
  PROCESS_QUERY_LIMITED_INFORMATION: 0x1000,
  SYNCHRONIZE: 0x00100000,
  PROCESS_ALL_ACCESS: 0x001fffff,
} as const;

/** `PROCESSINFOCLASS` values used here. */
export const ProcessInfoClass = {
  ProcessBasicInformation: 0,
  ProcessDebugPort: 7,
  ProcessExceptionPort: 8,
  ProcessHandleCount: 20,
  /** One byte, PS_PROTECTION (`NtQueryInformationProcess.c`, case 61). */
  ProcessProtectionInformation: 61,
} as const;

/**
 * The type bits of PS_PROTECTION (0: none, 1: protected light, 2: protected); the signer is in the
 * high nibble. `PsIsProtectedProcess.c` calls a process protected when these bits are non-zero.
 */
export const PS_PROTECTED_TYPE_MASK = 0x7;

/** `CREATE_NO_WINDOW`: a console child gets no window of its own. */
export const CREATE_NO_WINDOW = 0x08000000;

/** `WaitForSingleObject` results. */
export const WAIT_OBJECT_0 = 0;
/** The wait timed out. */
export const WAIT_TIMEOUT = 258;
/** `GetExitCodeProcess` while the process runs. */
export const STILL_ACTIVE = 259;
/** `INFINITE` for waits. */
export const INFINITE = 0xffffffff;

/**
 * Quotes one argument for a Windows command line (the rules `CommandLineToArgvW` and the C runtime
 * use: backslashes are literal except before a quote).
 *
 * @example
 * ```ts
 * import { quoteWindowsArg } from "./processes.ts";
 * quoteWindowsArg('C:\\Program Files\\x'); // '"C:\\Program Files\\x"'
 * ```
 */
export function quoteWindowsArg(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  let out = '"';
  let slashes = 0;
  for (const ch of arg) {
    if (ch === "\\") {
      slashes++;
    } else if (ch === '"') {
      out += "\\".repeat(slashes * 2 + 1) + '"';
      slashes = 0;
    } else {
      out += "\\".repeat(slashes) + ch;
      slashes = 0;
    }
  }
  return out + "\\".repeat(slashes * 2) + '"';
}

/** Joins arguments into one Windows command line. */
export function windowsCommandLine(args: string[]): string {
  return args.map(quoteWindowsArg).join(" ");
}

/** Options for {@link createProcess}. */
export interface CreateProcessOptions {
  /** Start with this primary token (`CreateProcessAsUserW`); default: our own (`CreateProcessW`). */
  token?: NtHandle<"token">;
  /** The working directory. */
  cwd?: string;
  /** `dwCreationFlags` (e.g. `CREATE_SUSPENDED` 0x4, `CREATE_NO_WINDOW` 0x08000000). */
  creationFlags?: number;
  /**
   * Inherit our inheritable handles (for redirected standard handles). With {@link inheritOnly}
   * the child inherits only those.
   */
  inheritHandles?: boolean;
  /**
   * Inherit exactly these handles (each must be inheritable), nothing else we hold
   * (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST` in a `STARTUPINFOEXW`); implies `inheritHandles`.
   */
  inheritOnly?: bigint[];
  /**
   * Put the child in a job of its own that ends it (and whatever it starts) when the job's last
   * handle closes: when the child is disposed, or when this process ends, however it ends
   * (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`). It is created suspended, assigned, then resumed
   * (unless `creationFlags` asks for `CREATE_SUSPENDED`).
   */
  killOnClose?: boolean;
  /** Standard handles for the child (sets `STARTF_USESTDHANDLES`). */
  stdHandles?: { input?: bigint; output?: bigint; error?: bigint };
}

/** `STARTF_USESTDHANDLES`. */
const STARTF_USESTDHANDLES = 0x100;
/** `CREATE_SUSPENDED`. */
export const CREATE_SUSPENDED = 0x4;
/** `EXTENDED_STARTUPINFO_PRESENT`: the STARTUPINFO is a STARTUPINFOEXW. */
const EXTENDED_STARTUPINFO_PRESENT = 0x00080000;
/** `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` (ProcThreadAttributeHandleList 2, input flag 0x20000). */
const PROC_THREAD_ATTRIBUTE_HANDLE_LIST = 0x20002n;
/** `JobObjectExtendedLimitInformation` (JOBOBJECTINFOCLASS). */
const JobObjectExtendedLimitInformation = 9;
/** `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`. */
export const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000;
const SIX = LAYOUTS.STARTUPINFOEXW;
const JELI = LAYOUTS.JOBOBJECT_EXTENDED_LIMIT_INFORMATION;

/**
 * A child process: its pid, its process, thread and (with `killOnClose`) job handles, a wait, its
 * exit code and an end. Disposing it ends the process if it is still running (exit code 1) and
 * closes every handle. {@link ChildProcess.spawnCaptured} and {@link ChildProcess.runCaptured}
 * start one with its output captured, optionally under another token.
 *
 * @example Run a child as a restricted copy of our token (Windows only: not run here)
 * ```ts ignore
 * import { ChildProcess, Token } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * using me = Token.open(0xf01ff); // TOKEN_ALL_ACCESS
 * using low = me.restricted();
 * const run = await ChildProcess.runCaptured(["cmd.exe", "/c", "echo hi"], { token: low });
 * assertEquals(run.exitCode, 0);
 * assertEquals(run.stdout.trim(), "hi");
 * ```
 */
export class ChildProcess implements Disposable {
  /** The process id. */
  readonly pid: number;
  /** The initial thread id. */
  readonly tid: number;
  /** The process handle. */
  readonly process: NtHandle<"process">;
  /** The initial thread's handle. */
  readonly thread: NtHandle<"thread">;
  /** Its kill-on-close job (`killOnClose`), closed last on dispose. */
  job: NtHandle<"job"> | undefined;
  /** Why `killOnClose` could not put it in a job (it runs without one), if so. */
  jobError: string | undefined;

  /** Wraps the handles `CreateProcess*` returned. */
  constructor(
    pid: number,
    tid: number,
    process: NtHandle<"process">,
    thread: NtHandle<"thread">,
  ) {
    this.pid = pid;
    this.tid = tid;
    this.process = process;
    this.thread = thread;
  }

  /**
   * Starts a program (optionally with another primary token) with its stdout and stderr on pipes
   * read in the background. The child inherits only the two pipe ends and runs in a kill-on-close
   * job (it ends when we do). Disposing the result ends the child if it still runs.
   *
   * @param args the program and its arguments (quoted for Windows here)
   * @param options `token`: a primary token to run as; `cwd`: its working directory
   */
  static spawnCaptured(
    args: string[],
    options: { token?: NtHandle<"token">; cwd?: string } = {},
  ): CapturedChild {
    return spawnCaptured(args, options);
  }

  /**
   * Runs a program to its end with its output captured; one still running after `timeoutMs`
   * (default 120 s) is ended (exit code `undefined`). Nothing is left behind.
   *
   * @param args the program and its arguments
   * @param options `token`, `cwd` as for {@link ChildProcess.spawnCaptured}; `timeoutMs`
   */
  static runCaptured(
    args: string[],
    options: { token?: NtHandle<"token">; cwd?: string; timeoutMs?: number } = {},
  ): Promise<CapturedRun> {
    return runCaptured(args, options);
  }

  /** Waits up to `ms` (synchronously, on this thread); true when the process has exited. */
  wait(ms: number = INFINITE): boolean {
    return waitFor(this.process, ms);
  }

  /** Waits without blocking the event loop (a self-contained nonblocking wait). */
  async waitAsync(ms: number = INFINITE): Promise<boolean> {
    const r = await kernel32().WaitForSingleObjectAsync(this.process.unsafePointer, ms >>> 0);
    return r === WAIT_OBJECT_0;
  }

  /** The exit code, or `undefined` while it runs. */
  exitCode(): number | undefined {
    const code = exitCodeOf(this.process);
    return code === STILL_ACTIVE && !this.wait(0) ? undefined : code;
  }

  /**
   * Ends the process (`NtTerminateProcess`, whose failure is thrown as before) and waits for it.
   * In a job (`killOnClose`), the rest of the job ends too (`TerminateJobObject`): what the child
   * started goes with it. Under Wine a console child ended while it starts can leave its
   * `conhost.exe` running, holding the child's output pipes open, so that a read of its output
   * never ended (measured: 10 of 62 children ended 150 to 350 ms after their creation; one hung
   * the Wine suite).
   */
  terminate(exitCode = 1): void {
    try {
      this.#terminateProcess(exitCode);
    } finally {
      if (this.job) {
        checkWin32(
          kernel32().TerminateJobObject(this.job.unsafePointer, exitCode >>> 0),
          "TerminateJobObject",
          `job of pid ${this.pid}`,
        );
      }
    }
    this.wait(5000);
  }

  #terminateProcess(exitCode: number): void {
    check(
      ntdll().NtTerminateProcess(this.process.unsafePointer, exitCode | 0),
      "NtTerminateProcess",
      `pid ${this.pid}`,
    );
  }

  /** Ends the child if it still runs, then closes its handles (the job last: it ends the rest). */
  [Symbol.dispose](): void {
    try {
      if (!this.process.closed && !this.wait(0)) {
        this.#terminateProcess(1); // the child alone: closing the job ends the rest
        this.wait(5000);
      }
    } finally {
      this.thread.close();
      this.process.close();
      this.job?.close();
    }
  }
}

/**
 * Starts `args` (program first) with `CreateProcessW`, or with `CreateProcessAsUserW` when
 * `options.token` is given.
 */
export function createProcess(args: string[], options: CreateProcessOptions = {}): ChildProcess {
  const cmd = wideString(windowsCommandLine(args));
  const only = options.inheritOnly;
  // A STARTUPINFOEXW when a handle list goes with it; its first member is the STARTUPINFOW.
  const si = new Uint8Array(only ? SIX.size : SI.size);
  const sv = new DataView(si.buffer);
  sv.setUint32(SI.offsets.cb, si.byteLength, true);
  if (options.stdHandles) {
    sv.setUint32(SI.offsets.dwFlags, STARTF_USESTDHANDLES, true);
    sv.setBigUint64(SI.offsets.hStdInput, options.stdHandles.input ?? 0n, true);
    sv.setBigUint64(SI.offsets.hStdOutput, options.stdHandles.output ?? 0n, true);
    sv.setBigUint64(SI.offsets.hStdError, options.stdHandles.error ?? 0n, true);
  }
  using attributes = only ? handleListAttribute(only) : undefined;
  if (attributes) {
    sv.setBigUint64(SIX.offsets.lpAttributeList, addressOf(attributes.list), true);
  }
  const pi = new Uint8Array(PI.size);
  const cwd = options.cwd === undefined ? null : wideString(options.cwd);
  const inherit = options.inheritHandles || only ? 1 : 0;
  const callerFlags = options.creationFlags ?? 0;
  const flags = callerFlags | (only ? EXTENDED_STARTUPINFO_PRESENT : 0) |
    (options.killOnClose ? CREATE_SUSPENDED : 0);
  if (options.token) {
    checkWin32(
      advapi32().CreateProcessAsUserW(
        options.token.unsafePointer,
        null,
        cmd,
        null,
        null,
        inherit,
        flags,
        null,
        cwd,
        si,
        pi,
      ),
      "CreateProcessAsUserW",
      args[0],
    );
  } else {
    checkWin32(
      kernel32().CreateProcessW(null, cmd, null, null, inherit, flags, null, cwd, si, pi),
      "CreateProcessW",
      args[0],
    );
  }
  const pv = new DataView(pi.buffer);
  const child = new ChildProcess(
    pv.getUint32(PI.offsets.dwProcessId, true),
    pv.getUint32(PI.offsets.dwThreadId, true),
    new NtHandle("process", pv.getBigUint64(PI.offsets.hProcess, true), `process ${args[0]}`),
    new NtHandle("thread", pv.getBigUint64(PI.offsets.hThread, true), `thread of ${args[0]}`),
  );
  if (options.killOnClose) {
    try {
      child.job = killOnCloseJob(child.process);
    } catch (e) {
      // It runs without a job (a parent job may forbid nesting); the caller can see why.
      child.jobError = e instanceof Error ? e.message : String(e);
    }
    if ((callerFlags & CREATE_SUSPENDED) === 0) {
      if (kernel32().ResumeThread(child.thread.unsafePointer) === 0xffffffff) {
        child[Symbol.dispose]();
        checkWin32(0, "ResumeThread", args[0]);
      }
    }
  }
  return child;
}

/**
 * A `PROC_THREAD_ATTRIBUTE_LIST` holding one `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` entry; the list
 * and the handle array live until it is disposed (`DeleteProcThreadAttributeList`).
 */
function handleListAttribute(handles: bigint[]): { list: Uint8Array } & Disposable {
  if (handles.length === 0) throw new RangeError("inheritOnly: at least one handle");
  const size = new BigUint64Array(1);
  // The first call only reports the size (it fails with ERROR_INSUFFICIENT_BUFFER).
  kernel32().InitializeProcThreadAttributeList(null, 1, 0, size);
  if (size[0] === 0n) checkWin32(0, "InitializeProcThreadAttributeList", "size");
  const list = new Uint8Array(Number(size[0]!));
  checkWin32(
    kernel32().InitializeProcThreadAttributeList(list, 1, 0, size),
    "InitializeProcThreadAttributeList",
  );
  const value = new BigUint64Array(handles);
  try {
    checkWin32(
      kernel32().UpdateProcThreadAttribute(
        list,
        0,
        PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
        value,
        BigInt(value.byteLength),
        null,
        null,
      ),
      "UpdateProcThreadAttribute",
      "PROC_THREAD_ATTRIBUTE_HANDLE_LIST",
    );
  } catch (e) {
    kernel32().DeleteProcThreadAttributeList(list);
    throw e;
  }
  return {
    list,
    [Symbol.dispose]: () => {
      kernel32().DeleteProcThreadAttributeList(list);
      void value; // the array the list points to lives until here
    },
  };
}

/** A new job with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, and `process` assigned to it. */
function killOnCloseJob(process: NtHandle<"process">): NtHandle<"job"> {
  const job = NtHandle.fromPointer(
    "job",
    checkWin32Pointer(kernel32().CreateJobObjectW(null, null), "CreateJobObjectW"),
    "job (kill on close)",
  );
  try {
    const info = new Uint8Array(JELI.size);
    new DataView(info.buffer).setUint32(
      JELI.offsets.LimitFlags,
      JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
      true,
    );
    checkWin32(
      kernel32().SetInformationJobObject(
        job.unsafePointer,
        JobObjectExtendedLimitInformation,
        info,
        info.byteLength,
      ),
      "SetInformationJobObject",
      "JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE",
    );
    checkWin32(
      kernel32().AssignProcessToJobObject(job.unsafePointer, process.unsafePointer),
      "AssignProcessToJobObject",
      process.what,
    );
    return job;
  } catch (e) {
    job.close();
    throw e;
  }
}

/**
 * Opens a process by id (`OpenProcess(access, FALSE, pid)`); throws `NtError` (kind `win32`).
 *
 * @param pid the process id
 * @param access the rights wanted (`ProcessAccess` in `./raw`)
 * @example Our own process (Windows only, not run here: kernel32)
 * ```ts ignore
 * import { openProcess } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * using me = openProcess(Deno.pid, 0x1000); // PROCESS_QUERY_LIMITED_INFORMATION
 * assertEquals(me.kind, "process");
 * ```
 */
export function openProcess(pid: number, access: number): NtHandle<"process"> {
  return NtHandle.fromPointer(
    "process",
    checkWin32Pointer(kernel32().OpenProcess(access, 0, pid), "OpenProcess", `pid ${pid}`),
    `process ${pid}`,
  );
}

/** Waits up to `ms` on a process (or any waitable) handle; true when signalled. */
export function waitFor(handle: NtHandle<"process" | "thread">, ms: number = INFINITE): boolean {
  const r = kernel32().WaitForSingleObject(handle.unsafePointer, ms >>> 0);
  if (r === 0xffffffff) checkWin32(0, "WaitForSingleObject", handle.what);
  return r === WAIT_OBJECT_0;
}

/** `GetExitCodeProcess` (259 = still running). */
export function exitCodeOf(process: NtHandle<"process">): number {
  const code = new Uint32Array(1);
  checkWin32(
    kernel32().GetExitCodeProcess(process.unsafePointer, code),
    "GetExitCodeProcess",
    process.what,
  );
  return code[0]!;
}

/** How many handles a process has open (`ProcessHandleCount`); default: ours. */
export function processHandleCount(process?: NtHandle<"process">): number {
  const out = new Uint32Array(1);
  check(
    ntdll().NtQueryInformationProcess(
      process ? process.unsafePointer : currentProcess(),
      ProcessInfoClass.ProcessHandleCount,
      out,
      4,
      null,
    ),
    "NtQueryInformationProcess",
    "ProcessHandleCount",
  );
  return out[0]!;
}

/** The full Win32 path of a process's image (`QueryFullProcessImageNameW`). */
export function processImagePath(process: NtHandle<"process">): string {
  const buf = new Uint8Array(2 * 1024);
  const size = new Uint32Array([1024]);
  checkWin32(
    kernel32().QueryFullProcessImageNameW(process.unsafePointer, 0, buf, size),
    "QueryFullProcessImageNameW",
    process.what,
  );
  return decodeUtf16(buf.subarray(0, size[0]! * 2));
}

/** Whether a debugger is attached to the process (`ProcessDebugPort`, 8 bytes). */
export function hasDebugPort(process: NtHandle<"process">): boolean {
  const out = new BigUint64Array(1);
  check(
    ntdll().NtQueryInformationProcess(
      process.unsafePointer,
      ProcessInfoClass.ProcessDebugPort,
      out,
      8,
      null,
    ),
    "NtQueryInformationProcess",
    "ProcessDebugPort",
  );
  return out[0] !== 0n;
}

/**
 * A process's PS_PROTECTION byte (`ProcessProtectionInformation`, 1 byte): `NtQueryInformationProcess.c`
 * (case 61) copies the byte `PsGetProcessProtection.c` returns. Asked on a handle opened with
 * `PROCESS_QUERY_LIMITED_INFORMATION` (what a protected process grants); the decompiled reference
 * call there does not show the access it asks, so a refusal is reported, not assumed. Protected
 * when `(byte & PS_PROTECTED_TYPE_MASK) !== 0` (`PsIsProtectedProcess.c`).
 */
export function processProtection(process: NtHandle<"process">): number {
  const out = new Uint8Array(1);
  check(
    ntdll().NtQueryInformationProcess(
      process.unsafePointer,
      ProcessInfoClass.ProcessProtectionInformation,
      out,
      1,
      null,
    ),
    "NtQueryInformationProcess",
    "ProcessProtectionInformation",
  );
  return out[0]!;
}

/** This process's id. */
export function currentProcessId(): number {
  return kernel32().GetCurrentProcessId();
}

/**
 * The calling thread's id (`GetCurrentThreadId`; Windows only): what a server sees as the
 * client's `ClientId.thread`.
 *
 * @example Windows only, not run here (kernel32)
 * ```ts ignore
 * import { currentThreadId } from "@deno-lpc/deno-lpc";
 * import { assert } from "jsr:@std/assert@^1.0.19";
 *
 * assert(currentThreadId() > 0);
 * ```
 */
export function currentThreadId(): number {
  return kernel32().GetCurrentThreadId();
}

/** `HANDLE_FLAG_INHERIT`. */
const HANDLE_FLAG_INHERIT = 0x1;

/** An anonymous pipe: the read end stays here (not inheritable), the write end goes to a child. */
export function inheritablePipe(): { read: NtHandle<"file">; write: NtHandle<"file"> } {
  const sa = new Uint8Array(LAYOUTS.SECURITY_ATTRIBUTES.size);
  const dv = new DataView(sa.buffer);
  dv.setUint32(LAYOUTS.SECURITY_ATTRIBUTES.offsets.nLength, sa.byteLength, true);
  dv.setInt32(LAYOUTS.SECURITY_ATTRIBUTES.offsets.bInheritHandle, 1, true);
  const r = handleCell();
  const w = handleCell();
  checkWin32(kernel32().CreatePipe(r, w, sa, 1 << 16), "CreatePipe");
  const read = NtHandle.fromCell("file", r, "pipe (read end)");
  const write = NtHandle.fromCell("file", w, "pipe (write end)");
  checkWin32(
    kernel32().SetHandleInformation(read.unsafePointer, HANDLE_FLAG_INHERIT, 0),
    "SetHandleInformation",
  );
  return { read, write };
}

/** Reads a pipe to its end on pool threads (a self-contained nonblocking call per chunk). */
async function drain(pipe: NtHandle<"file">): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1 << 16);
  const n = new Uint32Array(1);
  for (;;) {
    const ok = await kernel32().ReadFileAsync(pipe.unsafePointer, buf, buf.byteLength, n, null);
    if (!ok || n[0] === 0) break; // ERROR_BROKEN_PIPE: the child closed its end
    chunks.push(buf.slice(0, n[0]!));
  }
  const all = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** What {@link runCaptured} returns. */
export interface CapturedRun {
  /** The child's pid. */
  pid: number;
  /** Its exit code (`undefined` if it had to be killed at the timeout). */
  exitCode: number | undefined;
  /** Everything it wrote to stdout. */
  stdout: string;
  /** Everything it wrote to stderr. */
  stderr: string;
}

/** A running child whose output is being collected (see {@link spawnCaptured}). */
export interface CapturedChild extends Disposable {
  /** The child (handles, pid, wait, terminate). */
  child: ChildProcess;
  /** Everything it writes, once it has closed its ends of the pipes. */
  output: Promise<{ stdout: string; stderr: string }>;
}

/**
 * Starts a program (optionally with another primary token) with its stdout and stderr on pipes
 * read in the background. The child inherits only the two pipe ends, and runs in a kill-on-close
 * job (it ends when we do). Disposing ends the child if it still runs and closes every handle.
 */
export function spawnCaptured(
  args: string[],
  options: { token?: NtHandle<"token">; cwd?: string } = {},
): CapturedChild {
  using pipes = new DisposableStack();
  const out = inheritablePipe();
  pipes.use(out.read);
  pipes.use(out.write);
  const errPipe = inheritablePipe();
  pipes.use(errPipe.read);
  pipes.use(errPipe.write);
  let child: ChildProcess;
  try {
    child = createProcess(args, {
      ...(options.token ? { token: options.token } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      // Only the two write ends: an orphaned child must not hold our own output pipes open.
      inheritOnly: [out.write.unsafeValue, errPipe.write.unsafeValue],
      // And it does not outlive us: its job ends it when our handle closes, however we end.
      killOnClose: true,
      creationFlags: CREATE_NO_WINDOW,
      stdHandles: { output: out.write.unsafeValue, error: errPipe.write.unsafeValue },
    });
  } finally {
    // The child holds its own copies; ours must close for the reads to end.
    out.write.close();
    errPipe.write.close();
  }
  const keep = pipes.move(); // the read ends live until the output is read
  const output = Promise.all([drain(out.read), drain(errPipe.read)])
    .then(([stdout, stderr]) => ({ stdout, stderr }))
    .finally(() => keep.dispose());
  const c = child;
  return { child: c, output, [Symbol.dispose]: () => c[Symbol.dispose]() };
}

/**
 * Runs a program (optionally with another primary token) and collects its stdout and stderr
 * through pipes. A child still running after `timeoutMs` is ended (exit code 1); nothing is left.
 */
export async function runCaptured(
  args: string[],
  options: { token?: NtHandle<"token">; cwd?: string; timeoutMs?: number } = {},
): Promise<CapturedRun> {
  using spawned = spawnCaptured(args, options);
  const c = spawned.child;
  const exited = await c.waitAsync(options.timeoutMs ?? 120_000);
  if (!exited) c.terminate(1);
  const { stdout, stderr } = await spawned.output;
  return { pid: c.pid, exitCode: exited ? c.exitCode() : undefined, stdout, stderr };
}

const SPI = LAYOUTS.SYSTEM_PROCESS_INFORMATION;

/** One process from {@link listProcesses}. */
export interface ProcessEntry {
  /** The process id. */
  pid: number;
  /** The parent's id (when it was created). */
  parentPid: number;
  /** The image name (`winlogon.exe`; empty for the idle process). */
  image: string;
  /** How many threads it has. */
  threads: number;
  /** Its session. */
  sessionId: number;
}

/**
 * Decodes a `SystemProcessInformation` buffer (entries chained by `NextEntryOffset`; image names
 * are absolute addresses inside the buffer, `base` being its address).
 */
export function decodeProcessList(buf: Uint8Array, base: bigint): ProcessEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: ProcessEntry[] = [];
  for (let at = 0; at + SPI.size <= buf.byteLength;) {
    let image = "";
    try {
      image = readCountedUnicodeString(buf, at + SPI.offsets.ImageName, base);
    } catch { /* a name outside the buffer: reported as unnamed */ }
    out.push({
      pid: Number(dv.getBigUint64(at + SPI.offsets.UniqueProcessId, true)),
      parentPid: Number(dv.getBigUint64(at + SPI.offsets.InheritedFromUniqueProcessId, true)),
      image,
      threads: dv.getUint32(at + SPI.offsets.NumberOfThreads, true),
      sessionId: dv.getUint32(at + SPI.offsets.SessionId, true),
    });
    const next = dv.getUint32(at + SPI.offsets.NextEntryOffset, true);
    if (next === 0) break;
    at += next;
  }
  return out;
}

/** `SystemProcessInformation`. */
export const SystemProcessInformation = 5;

/** The `SystemProcessInformation` bytes and their address (names point into them). */
function querySystemProcesses(): { buf: Uint8Array; base: bigint } {
  let size = 1 << 18;
  const needed = new Uint32Array(1);
  for (let attempt = 0; attempt < 8; attempt++) {
    const buf = new Uint8Array(size);
    const status = ntdll().NtQuerySystemInformation(SystemProcessInformation, buf, size, needed);
    if (toUnsigned(status) === NTSTATUS.STATUS_INFO_LENGTH_MISMATCH) {
      size = Math.max(size * 2, needed[0]! + (1 << 16));
      continue;
    }
    check(status, "NtQuerySystemInformation", "SystemProcessInformation");
    return { buf, base: addressOf(buf) };
  }
  check(
    NTSTATUS.STATUS_INFO_LENGTH_MISMATCH,
    "NtQuerySystemInformation",
    "SystemProcessInformation",
  );
  throw new Error("unreachable");
}

/** Every process on the system (`NtQuerySystemInformation(SystemProcessInformation)`). */
export function listProcesses(): ProcessEntry[] {
  const { buf, base } = querySystemProcesses();
  return decodeProcessList(buf, base);
}

const STI = LAYOUTS.SYSTEM_THREAD_INFORMATION;

/** One thread from {@link listThreads}: whose it is, and what it is doing. */
export interface ThreadEntry {
  /** The owning process id. */
  pid: number;
  /** The thread id. */
  tid: number;
  /** `KTHREAD_STATE` (5 = Waiting). */
  state: number;
  /** `KWAIT_REASON` while it waits (17 = WrLpcReply). */
  waitReason: number;
}

/** `KTHREAD_STATE` Waiting (Initialized 0, Ready 1, Running 2, Standby 3, Terminated 4, Waiting 5). */
export const THREAD_STATE_WAITING = 5;
/**
 * `KWAIT_REASON` WrLpcReply: the reason a thread waiting for the reply to its request waits with
 * (`AlpcpReceiveSynchronousReply.c` passes it to `AlpcpSignalAndWait` and `AlpcpWaitForSingleObject`;
 * its value, 0x11 on Windows 10 and 11, from the public `_KWAIT_REASON` type dumps, e.g.
 * can1357/selene `resources/sdk/nt/kwait_reason_t.hpp`).
 */
export const WAIT_REASON_WR_LPC_REPLY = 17;

/**
 * Decodes the thread entries of a `SystemProcessInformation` buffer: `NumberOfThreads`
 * `SYSTEM_THREAD_INFORMATION` entries follow each process entry (clamped to the buffer).
 *
 * @param buf the bytes the kernel returned
 */
export function decodeThreadList(buf: Uint8Array): ThreadEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: ThreadEntry[] = [];
  for (let at = 0; at + SPI.size <= buf.byteLength;) {
    const pid = Number(dv.getBigUint64(at + SPI.offsets.UniqueProcessId, true));
    const n = dv.getUint32(at + SPI.offsets.NumberOfThreads, true);
    for (let i = 0; i < n; i++) {
      const t = at + SPI.size + i * STI.size;
      if (t + STI.size > buf.byteLength) break;
      out.push({
        pid,
        tid: Number(
          dv.getBigUint64(t + STI.offsets.ClientId + LAYOUTS.CLIENT_ID.offsets.UniqueThread, true),
        ),
        state: dv.getUint32(t + STI.offsets.ThreadState, true),
        waitReason: dv.getUint32(t + STI.offsets.WaitReason, true),
      });
    }
    const next = dv.getUint32(at + SPI.offsets.NextEntryOffset, true);
    if (next === 0) break;
    at += next;
  }
  return out;
}

/** Every process and every thread, from one snapshot (`SystemProcessInformation`). */
export function listProcessesAndThreads(): { processes: ProcessEntry[]; threads: ThreadEntry[] } {
  const { buf, base } = querySystemProcesses();
  return { processes: decodeProcessList(buf, base), threads: decodeThreadList(buf) };
}

/**
 * Opens a thread by id (`NtOpenThread`); throws `NtError`.
 *
 * @param tid the thread id
 * @param access the rights wanted (e.g. `ALPC_SERVER_INFORMATION_THREAD_ACCESS` in `./raw`)
 */
export function openThread(tid: number, access: number): NtHandle<"thread"> {
  const cell = handleCell();
  const oa = new ObjectAttributes(null, { attributes: 0 });
  const cid = new Uint8Array(LAYOUTS.CLIENT_ID.size);
  new DataView(cid.buffer).setBigUint64(LAYOUTS.CLIENT_ID.offsets.UniqueThread, BigInt(tid), true);
  check(ntdll().NtOpenThread(cell, access >>> 0, oa.struct, cid), "NtOpenThread", `tid ${tid}`);
  return NtHandle.fromCell("thread", cell, `thread ${tid}`);
}
