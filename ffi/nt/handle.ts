/**
 * Handles: a disposable owner for every kernel handle the toolkit returns, out-cells for
 * `PHANDLE` parameters, pseudo-handles, and the Win32 failure check.
 *
 * @module
 */

import { kernel32 } from "../kernel32.ts";
import { ntdll } from "../ntdll.ts";
import { check, NtError } from "../status.ts";
import { wideString } from "../strings.ts";

/** The address of a JS buffer (what native code sees for a `"buffer"` argument). */
export function addressOf(buffer: ArrayBufferView): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer as BufferSource));
}

/** A pointer object for a raw value (`null` for 0). */
export function pointerFrom(value: bigint | number): Deno.PointerValue {
  return Deno.UnsafePointer.create(BigInt.asUintN(64, BigInt(value)));
}

/** `NtCurrentProcess()`: the pseudo-handle `(HANDLE)-1`. Never closed. */
export function currentProcess(): Deno.PointerObject {
  return pointerFrom(-1n) as Deno.PointerObject;
}

/** `NtCurrentThread()`: the pseudo-handle `(HANDLE)-2`. Never closed. */
export function currentThread(): Deno.PointerObject {
  return pointerFrom(-2n) as Deno.PointerObject;
}

/** An 8-byte out-cell for a `PHANDLE` / `PVOID*` parameter. */
export function handleCell(): BigUint64Array<ArrayBuffer> {
  return new BigUint64Array(1);
}

/** Closes a raw handle and returns an NTSTATUS (`NtClose`, or a fake kernel's). */
export type HandleCloser = (handle: Deno.PointerValue) => number;

/**
 * What a handle refers to. It is the type parameter of {@link NtHandle}, so that `deno check`
 * refuses a process handle where a token is wanted, or a communication port where a connection
 * port is wanted.
 *
 * - `"file"`: a file, a file-system directory or a pipe (`NtCreateFile`, `CreatePipe`);
 * - `"directory"`: an object-manager directory (`NtOpenDirectoryObject`);
 * - `"symlink"`: an object-manager symbolic link;
 * - `"connection-port"`: the named port a server listens on (`NtCreatePort`);
 * - `"port"`: one end of a connection (`NtConnectPort`, `NtAcceptConnectPort`);
 * - `"section"`: a section object, memory two processes can map (`NtCreateSection`);
 * - `"process"`, `"thread"`, `"token"`, `"job"`: what the names say.
 */
export type HandleKind =
  | "file"
  | "directory"
  | "symlink"
  | "port"
  | "connection-port"
  | "process"
  | "thread"
  | "token"
  | "job"
  | "section";

/**
 * Owns one kernel handle and closes it (`NtClose`) exactly once: on `close()`, or at the end of a
 * `using` scope. `K` says what the handle refers to ({@link HandleKind}); the bare `NtHandle`
 * accepts any kind.
 *
 * @typeParam K what the handle refers to
 * @example Ownership, kinds and inspection (a fake closer: this runs anywhere)
 * ```ts
 * import { NtHandle } from "@deno-lpc/deno-lpc";
 * import { assertEquals, assertStringIncludes } from "jsr:@std/assert@^1.0.19";
 *
 * const closed: bigint[] = [];
 * const closer = (p: Deno.PointerValue) => {
 *   closed.push(Deno.UnsafePointer.value(p));
 *   return 0; // STATUS_SUCCESS
 * };
 * {
 *   using h = new NtHandle("token", 0x1a4n, "process token", closer);
 *   assertEquals(h.kind, "token");
 *   assertStringIncludes(Deno.inspect(h), "0x1a4");
 * } // closed here, on every path
 * assertEquals(closed, [0x1a4n]);
 * ```
 */
export class NtHandle<K extends HandleKind = HandleKind> implements Disposable {
  /** What the handle refers to; also the brand that keeps kinds apart in `deno check`. */
  readonly kind: K;
  #value: bigint;
  #what: string;
  #closer: HandleCloser;

  /**
   * Adopts a raw handle value: the new owner closes it.
   *
   * @param kind what the handle refers to
   * @param value the raw handle value (must not be 0 or a pseudo-handle)
   * @param what a short description for messages, e.g. `port \RPC Control\LabPort`
   * @param closer how to close it (default `ntdll!NtClose`; a fake kernel passes its own)
   */
  constructor(kind: K, value: bigint, what: string, closer?: HandleCloser) {
    if (value === 0n) throw new TypeError(`A null handle cannot be owned: ${what}`);
    this.kind = kind;
    this.#value = value;
    this.#what = what;
    this.#closer = closer ?? ((h) => ntdll().NtClose(h));
  }

  /** Takes ownership of the handle an API wrote into `cell`. */
  static fromCell<K extends HandleKind>(
    kind: K,
    cell: BigUint64Array,
    what: string,
    closer?: HandleCloser,
  ): NtHandle<K> {
    return new NtHandle(kind, cell[0] ?? 0n, what, closer);
  }

  /** Takes ownership of a handle returned as a pointer (`null` is refused). */
  static fromPointer<K extends HandleKind>(
    kind: K,
    p: Deno.PointerValue,
    what: string,
  ): NtHandle<K> {
    return new NtHandle(kind, p === null ? 0n : Deno.UnsafePointer.value(p), what);
  }

  /** What the handle refers to (for messages). */
  get what(): string {
    return this.#what;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#value === 0n;
  }

  /** **UNSAFE**: the raw handle value; valid only until `close()`. */
  get unsafeValue(): bigint {
    if (this.#value === 0n) throw new TypeError(`Handle already closed: ${this.#what}`);
    return this.#value;
  }

  /** **UNSAFE**: the handle as an FFI pointer; valid only until `close()`. */
  get unsafePointer(): Deno.PointerObject {
    return Deno.UnsafePointer.create(this.unsafeValue) as Deno.PointerObject;
  }

  /** **UNSAFE**: gives up ownership without closing, returning the raw value (the caller closes it). */
  unsafeRelease(): bigint {
    const v = this.unsafeValue;
    this.#value = 0n;
    return v;
  }

  /** Closes the handle (idempotent). */
  close(): void {
    if (this.#value === 0n) return;
    const p = Deno.UnsafePointer.create(this.#value);
    this.#value = 0n;
    check(this.#closer(p), "NtClose", this.#what);
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * `console.log(handle)` shows its kind, value and description:
   * `NtHandle<port>(0x1a4, port \RPC Control\x)`.
   */
  [Symbol.for("Deno.customInspect")](): string {
    const v = this.#value === 0n ? "closed" : `0x${this.#value.toString(16)}`;
    return `NtHandle<${this.kind}>(${v}, ${this.#what})`;
  }
}

/**
 * Throws {@link NtError} (kind `"win32"`, code from `GetLastError`) when a Win32 `BOOL` result is
 * 0; returns the result otherwise.
 */
export function checkWin32(result: number, call: string, context?: string): number {
  if (result === 0) throw new NtError(call, kernel32().GetLastError(), "win32", context);
  return result;
}

/** Like {@link checkWin32} for calls that return a handle or pointer (`NULL` on failure). */
export function checkWin32Pointer(
  result: Deno.PointerValue,
  call: string,
  context?: string,
): Deno.PointerObject {
  if (result === null) throw new NtError(call, kernel32().GetLastError(), "win32", context);
  return result;
}

/**
 * The address of an export (`GetModuleHandleW` + `GetProcAddress`) of a module already loaded in
 * this process; system DLLs sit at the same address in every process of a boot session, so it is
 * also a valid start address for a thread created in another process.
 */
export function procAddress(module: string, name: string): Deno.PointerObject {
  const mod = checkWin32Pointer(
    kernel32().GetModuleHandleW(wideString(module)),
    "GetModuleHandleW",
    module,
  );
  return checkWin32Pointer(
    kernel32().GetProcAddress(mod, new TextEncoder().encode(`${name}\0`)),
    "GetProcAddress",
    `${module}!${name}`,
  );
}
