/**
 * ALPC views: shared memory a message carries by reference, for data larger than a message. The
 * sender creates a section on its port (`NtAlpcCreatePortSection`) and maps a view of it
 * (`NtAlpcCreateSectionView`), writes into it, and sends it with the view attribute; the kernel
 * maps it into the receiver, which reads it and must release it (`NtAlpcDeleteSectionView`): a
 * receiver that never does keeps every view mapped, a known way to exhaust a server's memory.
 *
 * @module
 */

import { viewRangeProblem } from "../nt/sections.ts";
import { requireSymbol } from "../_loader.ts";
import { LAYOUTS } from "../layouts.ts";
import type { NtHandle } from "../nt/handle.ts";
import { ntdll } from "../ntdll.ts";
import { check, NtError, ntSuccess } from "../status.ts";
import type { ViewAttribute } from "./attributes.ts";
import { AlpcViewFlags } from "./constants.ts";
import type { AlpcSymbols } from "./port.ts";

const VIEW = LAYOUTS.ALPC_DATA_VIEW_ATTR;

/** The symbols views use. */
export type AlpcViewSymbols = Pick<
  AlpcSymbols,
  | "NtAlpcCreatePortSection"
  | "NtAlpcDeletePortSection"
  | "NtAlpcCreateSectionView"
  | "NtAlpcDeleteSectionView"
>;

/** Checks `offset..offset+length` against a view's size (one rule for every view). */
function span(size: number, offset: number, length: number, what: string): void {
  if (viewRangeProblem(offset, length, size) !== null) {
    throw new RangeError(`${what}: ${length} bytes at ${offset} outside the ${size}-byte view`);
  }
}

/** Copies `length` bytes at `base + offset` of native memory. */
function readNative(base: bigint, offset: number, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  if (length === 0) return out;
  const p = Deno.UnsafePointer.create(base);
  if (p === null) throw new RangeError("a view at address 0");
  new Deno.UnsafePointerView(p).copyInto(out, offset);
  return out;
}

/**
 * A section and a view of it, created on a port this process holds, to send with a message's
 * view attribute. Disposing unmaps the view and deletes the section, in that order.
 *
 * @example Send 64 KiB with a request (Windows only, not run here: Wine 8.0 has no ALPC)
 * ```ts ignore
 * import { AlpcClient } from "@deno-lpc/deno-lpc";
 *
 * using client = AlpcClient.connect("\\RPC Control\\demo-alpc");
 * using view = client.createView(64 * 1024);
 * view.write(new Uint8Array(64 * 1024).fill(7));
 * client.request(new Uint8Array(0), { view });
 * ```
 */
export class AlpcView implements Disposable {
  readonly #port: NtHandle<"port" | "connection-port">;
  readonly #nt: AlpcViewSymbols;
  #section: bigint;
  #base: bigint;
  /** The view's size in bytes (what the kernel mapped, at least what was asked). */
  readonly size: number;

  private constructor(
    port: NtHandle<"port" | "connection-port">,
    nt: AlpcViewSymbols,
    section: bigint,
    base: bigint,
    size: number,
  ) {
    this.#port = port;
    this.#nt = nt;
    this.#section = section;
    this.#base = base;
    this.size = size;
  }

  /**
   * Creates a section of `size` bytes on `port` and maps a view of all of it. The port borrows
   * nothing: keep it open until the view is disposed.
   *
   * @param port the port the view will be sent on (a client or server communication port)
   * @param size bytes (AlpcpCreateSection.c rounds it up to the region granularity)
   * @param options `nt`, the symbols
   */
  static create(
    port: NtHandle<"port" | "connection-port">,
    size: number,
    options: { nt?: AlpcViewSymbols } = {},
  ): AlpcView {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`view size ${size}`);
    const nt = options.nt ?? ntdll();
    const createSection = requireSymbol(
      nt.NtAlpcCreatePortSection,
      "ntdll!NtAlpcCreatePortSection",
    );
    const createView = requireSymbol(nt.NtAlpcCreateSectionView, "ntdll!NtAlpcCreateSectionView");
    const section = new BigUint64Array(1);
    const actual = new BigUint64Array(1);
    check(
      createSection(port.unsafePointer, 0, null, BigInt(size), section, actual),
      "NtAlpcCreatePortSection",
      `${size} bytes on ${port.what}`,
    );
    // NtAlpcCreateSectionView.c: Flags 0, ViewBase 0 and a non-zero ViewSize in; base and size out.
    const attr = new Uint8Array(VIEW.size);
    const dv = new DataView(attr.buffer);
    dv.setBigUint64(VIEW.offsets.SectionHandle, section[0]!, true);
    dv.setBigUint64(VIEW.offsets.ViewSize, BigInt(size), true);
    const status = createView(port.unsafePointer, 0, attr);
    if (!ntSuccess(status)) {
      requireSymbol(nt.NtAlpcDeletePortSection, "ntdll!NtAlpcDeletePortSection")(
        port.unsafePointer,
        0,
        Deno.UnsafePointer.create(section[0]!),
      );
      throw new NtError("NtAlpcCreateSectionView", status, "ntstatus", port.what);
    }
    return new AlpcView(
      port,
      nt,
      section[0]!,
      dv.getBigUint64(VIEW.offsets.ViewBase, true),
      Number(dv.getBigUint64(VIEW.offsets.ViewSize, true)),
    );
  }

  /** **UNSAFE**: where the view is mapped in this process; valid until disposed. */
  get unsafeBase(): bigint {
    if (this.#base === 0n) throw new TypeError("the view has been released");
    return this.#base;
  }

  /** True once disposed. */
  get released(): boolean {
    return this.#base === 0n;
  }

  /** The view attribute that sends this view (`Flags` 0, the section's ALPC handle, base, size). */
  get attribute(): ViewAttribute {
    return {
      flags: 0,
      sectionHandle: this.#section,
      viewBase: this.unsafeBase,
      viewSize: BigInt(this.size),
    };
  }

  /** Copies `bytes` into the view at `offset` (bounds checked). */
  write(bytes: Uint8Array, offset = 0): void {
    span(this.size, offset, bytes.byteLength, "write");
    if (bytes.byteLength === 0) return;
    const p = Deno.UnsafePointer.create(this.unsafeBase)!;
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.byteLength, offset)).set(bytes);
  }

  /** Copies `length` bytes out of the view at `offset` (bounds checked). */
  read(offset = 0, length: number = this.size - offset): Uint8Array<ArrayBuffer> {
    span(this.size, offset, length, "read");
    return readNative(this.unsafeBase, offset, length);
  }

  /** Unmaps the view, then deletes the section (idempotent); throws the first failure. */
  [Symbol.dispose](): void {
    if (this.#base === 0n) return;
    const base = this.#base;
    const section = this.#section;
    this.#base = 0n;
    this.#section = 0n;
    const port = this.#port.unsafePointer;
    const unmap = requireSymbol(this.#nt.NtAlpcDeleteSectionView, "ntdll!NtAlpcDeleteSectionView")(
      port,
      0,
      Deno.UnsafePointer.create(base),
    );
    const del = requireSymbol(this.#nt.NtAlpcDeletePortSection, "ntdll!NtAlpcDeletePortSection")(
      port,
      0,
      Deno.UnsafePointer.create(section),
    );
    check(unmap, "NtAlpcDeleteSectionView", this.#port.what);
    check(del, "NtAlpcDeletePortSection", this.#port.what);
  }
}

/**
 * A view a received message carried (its view attribute), mapped in this process by the kernel.
 * It is valid until released: an {@link AlpcServer} releases it after the handler returns.
 */
export class ReceivedView {
  readonly #base: bigint;
  /** The view's size in bytes. */
  readonly size: number;
  /** The attribute's `Flags` (0x40000: a secure view, which {@link write} refuses). */
  readonly flags: number;
  #released = false;

  /**
   * Wraps a view attribute the kernel filled in (`viewBase`, `viewSize`).
   *
   * @param attr the received view attribute
   */
  constructor(attr: ViewAttribute) {
    if (attr.viewBase === 0n) throw new RangeError("a received view at address 0");
    if (attr.viewSize > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`view size ${attr.viewSize}`);
    }
    this.#base = attr.viewBase;
    this.size = Number(attr.viewSize);
    this.flags = attr.flags;
  }

  /** **UNSAFE**: where it is mapped; valid until released. */
  get unsafeBase(): bigint {
    if (this.#released) throw new TypeError("the received view has been released");
    return this.#base;
  }

  /** True once released. */
  get released(): boolean {
    return this.#released;
  }

  /** Copies `length` bytes of the view at `offset` (bounds checked against the view's size). */
  read(offset = 0, length: number = this.size - offset): Uint8Array<ArrayBuffer> {
    span(this.size, offset, length, "read");
    return readNative(this.unsafeBase, offset, length);
  }

  /** Whether the receiver may write it: not a secure view (`flags` without 0x40000). */
  get writable(): boolean {
    return (this.flags & AlpcViewFlags.SECURE_VIEW) === 0;
  }

  /**
   * Copies `bytes` into the view at `offset` (bounds checked), for the sender to read once it has
   * the reply: AlpcpCreateView.c maps a non-secure section for the receiver with
   * MmMapViewOfSection and PAGE_READWRITE, the same memory as the sender's view. A secure view
   * ({@link AlpcViewFlags}.SECURE_VIEW, whose writes the kernel guards) is refused with a
   * `TypeError` before anything is written.
   */
  write(bytes: Uint8Array, offset = 0): void {
    if (!this.writable) {
      throw new TypeError("a secure view (Flags 0x40000) is not the receiver's to write");
    }
    span(this.size, offset, bytes.byteLength, "write");
    if (bytes.byteLength === 0) return;
    const p = Deno.UnsafePointer.create(this.unsafeBase)!;
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.byteLength, offset)).set(bytes);
  }

  /**
   * Unmaps it from this process (`NtAlpcDeleteSectionView` on the port it arrived on). Idempotent;
   * after a failure it is still mapped and may be released again (on another port).
   *
   * @param port the port the message was received on
   * @param nt the symbols
   */
  release(
    port: NtHandle<"port" | "connection-port">,
    nt: Pick<AlpcSymbols, "NtAlpcDeleteSectionView"> = ntdll(),
  ): void {
    if (this.#released) return;
    check(
      requireSymbol(nt.NtAlpcDeleteSectionView, "ntdll!NtAlpcDeleteSectionView")(
        port.unsafePointer,
        0,
        Deno.UnsafePointer.create(this.#base),
      ),
      "NtAlpcDeleteSectionView",
      `received view on ${port.what}`,
    );
    this.#released = true;
  }
}
