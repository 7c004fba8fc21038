/**
 * Legacy LPC port views: a section the client names in `NtConnectPort` (a `PORT_VIEW`), which the
 * kernel maps into the client and into the server (the server sees it through the
 * `REMOTE_PORT_VIEW` of `NtAcceptConnectPort`). Messages then carry offsets into the view instead
 * of the data, so a request or reply is no longer capped at 648 bytes.
 *
 * What the kernel does (Windows 11): AlpcpMapLegacyPortView.c rounds the offset and the size up to
 * pages, refuses a view beyond the section (STATUS_INSUFFICIENT_RESOURCES), maps the rest of the
 * section for a size of 0, and writes back Length 48, ViewBase and the mapped ViewSize;
 * AlpcpFormatConnectionRequest.c puts that size in the connection request's ClientViewSize; the
 * delivery maps the view into the server (AlpcpExposeViewAttributeInSenderContext.c); the accept
 * gives the server its ViewBase and ViewSize (AlpcpMapLegacyPortRemoteView.c) and the client its
 * ViewRemoteBase (AlpcpQueryRemoteView.c). Both mappings live as long as their port: the cleanup
 * of the port at its last handle unmaps them (AlpcpDoPortCleanup.c, AlpcpFlushResourcesPort.c).
 *
 * @module
 */

import { viewRangeProblem } from "../nt/sections.ts";
export { viewRangeProblem };
import { LAYOUTS } from "../layouts.ts";

const PV = LAYOUTS.PORT_VIEW;
const RPV = LAYOUTS.REMOTE_PORT_VIEW;

/** A `PORT_VIEW` for `NtConnectPort`: Length 48, the section handle, offset 0 and `size`. */
export function portViewStruct(sectionHandle: bigint, size: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(PV.size);
  const v = new DataView(b.buffer);
  v.setUint32(PV.offsets.Length, PV.size, true);
  v.setBigUint64(PV.offsets.SectionHandle, sectionHandle, true);
  v.setUint32(PV.offsets.SectionOffset, 0, true);
  v.setBigUint64(PV.offsets.ViewSize, BigInt(size), true);
  return b;
}

/** An empty `REMOTE_PORT_VIEW` (Length 24) for the kernel to fill. */
export function remotePortViewStruct(): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(RPV.size);
  new DataView(b.buffer).setUint32(RPV.offsets.Length, RPV.size, true);
  return b;
}

/** What a `PORT_VIEW` says after the call: the local base, the mapped size, the remote base. */
export function readPortView(b: Uint8Array): { base: bigint; size: bigint; remoteBase: bigint } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    base: v.getBigUint64(PV.offsets.ViewBase, true),
    size: v.getBigUint64(PV.offsets.ViewSize, true),
    remoteBase: v.getBigUint64(PV.offsets.ViewRemoteBase, true),
  };
}

/**
 * What a `REMOTE_PORT_VIEW` says after the call, or null when there is no view (the kernel writes
 * it all zeros then: AlpcpAcceptConnectPort.c, NtSecureConnectPort.c).
 */
export function readRemotePortView(b: Uint8Array): { base: bigint; size: bigint } | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const base = v.getBigUint64(RPV.offsets.ViewBase, true);
  if (v.getUint32(RPV.offsets.Length, true) !== RPV.size || base === 0n) return null;
  return { base, size: v.getBigUint64(RPV.offsets.ViewSize, true) };
}

/** What a view belongs to: the port whose cleanup unmaps it. */
export interface ViewOwner {
  /** True once closed (the view is gone then). */
  readonly closed: boolean;
}

/**
 * A port view as one side of the connection sees it: its address in this process, its size and,
 * for the client, the address of the same memory in the server. Reads and writes are bounds
 * checked and refused once the port that holds the view is closed (the kernel unmapped it).
 *
 * @example Bounds and lifetime (a fake owner and a JS buffer as the memory: runs anywhere)
 * ```ts
 * import { PortView } from "./port_view.ts";
 * import { assertEquals, assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * const memory = new Uint8Array(4096);
 * const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(memory));
 * const owner = { closed: false };
 * const view = new PortView(base, 4096, null, owner, "demo view");
 * view.write(10, new Uint8Array([1, 2, 3]));
 * assertEquals([...memory.subarray(10, 13)], [1, 2, 3]);
 * assertEquals([...view.read(10, 3)], [1, 2, 3]);
 * assertThrows(() => view.read(4095, 2), RangeError);
 * owner.closed = true;
 * assertThrows(() => view.read(0, 1), TypeError);
 * ```
 */
export class PortView {
  /** The view's address in this process. */
  readonly base: bigint;
  /** Its size in bytes (whole pages, as mapped). */
  readonly size: number;
  /** The address of the same memory in the peer (the client learns the server's), else null. */
  readonly remoteBase: bigint | null;
  readonly #owner: ViewOwner;
  readonly #what: string;

  /**
   * Describes a mapped view; the library makes these from what the kernel returned.
   *
   * @param base its address in this process (non-zero)
   * @param size its size in bytes
   * @param remoteBase the peer's address of it, if known
   * @param owner the port whose cleanup unmaps it
   * @param what a description for messages
   */
  constructor(
    base: bigint,
    size: number,
    remoteBase: bigint | null,
    owner: ViewOwner,
    what: string,
  ) {
    if (base === 0n) throw new TypeError(`A view at address 0 cannot be used: ${what}`);
    this.base = base;
    this.size = size;
    this.remoteBase = remoteBase;
    this.#owner = owner;
    this.#what = what;
  }

  /** False once the port holding the view is closed. */
  get mapped(): boolean {
    return !this.#owner.closed;
  }

  #at(offset: number, length: number): Deno.PointerObject {
    if (this.#owner.closed) throw new TypeError(`${this.#what}: unmapped (its port is closed)`);
    const problem = viewRangeProblem(offset, length, this.size);
    if (problem) throw new RangeError(`${this.#what}: ${problem}`);
    return Deno.UnsafePointer.create(this.base + BigInt(offset)) as Deno.PointerObject;
  }

  /** A copy of `length` bytes at `offset`. */
  read(offset: number, length: number): Uint8Array<ArrayBuffer> {
    const p = this.#at(offset, length);
    const out = new Uint8Array(length);
    if (length > 0) Deno.UnsafePointerView.copyInto(p, out);
    return out;
  }

  /** Writes `bytes` at `offset`. */
  write(offset: number, bytes: Uint8Array): void {
    const p = this.#at(offset, bytes.byteLength);
    if (bytes.byteLength === 0) return;
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.byteLength)).set(bytes);
  }

  /** `PortView(0x..., N bytes, what)`. */
  [Symbol.for("Deno.customInspect")](): string {
    return `PortView(0x${this.base.toString(16)}, ${this.size} bytes, ${this.#what}${
      this.mapped ? "" : ", unmapped"
    })`;
  }
}
