/**
 * The fake kernel's sections and legacy port views (`tests/fake_kernel.ts` calls in here from
 * `NtCreateSection`, `NtConnectPort`, `NtAcceptConnectPort` and the port cleanup). Every rule names
 * the Windows 11 function it is read from, as in the fake itself.
 *
 * How the fake "maps" a view: each section owns one native buffer (an `ArrayBuffer` larger than a
 * page, which V8 never moves), and every view of it, in any process, is that buffer at the view's
 * offset. So the client's `ViewBase`, the server's `ViewBase` and `ViewRemoteBase` are one address
 * here (on Windows they are two mappings at two addresses) and the library's pointer reads and
 * writes work on it. Not modelled: a non-zero `SectionOffset` (AlpcpCreateRegion.c rounds the
 * region's offset up to the 64 KiB region granularity and leaves the rest to MmMapViewOfSection),
 * file-backed sections (AlpcpMapLegacyPortView.c refuses them with STATUS_NOT_SUPPORTED; the fake
 * creates none), a port's MaxViewSize (AlpcpCreateView.c; legacy ports have none).
 *
 * @module
 */

import { LAYOUTS } from "../ffi/layouts.ts";
import { NTSTATUS } from "../ffi/status.ts";

const PV = LAYOUTS.PORT_VIEW;
const RPV = LAYOUTS.REMOTE_PORT_VIEW;
const PM = LAYOUTS.PORT_MESSAGE;
const S = NTSTATUS;

/**
 * `AlpcpViewGranularity`: the page size, from SYSTEM_BASIC_INFORMATION.PageSize
 * (AlpcpInitSystem.c).
 */
export const VIEW_GRANULARITY = 0x1000;
/** `SECTION_MAP_WRITE | SECTION_MAP_READ`: what AlpcpMapLegacyPortView.c references a section with. */
const SECTION_MAP_READ_WRITE = 0x6;
/** `SEC_COMMIT`: the one page-file section kind the fake creates. */
const SEC_COMMIT = 0x8000000;
/** The largest page-file section on x64 (MiCreatePagingFileMap.c: 0xFFFFF001000 - one page). */
const PAGEFILE_SECTION_MAX = 0xfffff001000n - 0x1000n;

const roundUp = (n: bigint, unit: bigint) => (n + unit - 1n) & ~(unit - 1n);

/** A section object: its size and the memory every view of it shares. */
export interface FakeSection {
  readonly id: number;
  /** The size asked for (SizeOfSection, what MmGetSectionInformation.c reports). */
  readonly size: bigint;
  /** The access the handle was opened with. */
  readonly access: number;
  /** The memory (whole pages). */
  readonly memory: Uint8Array<ArrayBuffer>;
  /** Its address. */
  readonly base: bigint;
}

/** One mapping of a section in a process. */
export interface FakeView {
  readonly section: FakeSection;
  readonly pid: number;
  readonly offset: bigint;
  readonly size: bigint;
  readonly base: bigint;
  /** The port whose resources hold it (unmapped when that port is cleaned up); null until bound. */
  port: object | null;
  mapped: boolean;
}

/** What a connection request carries: the client's view, mapped in both processes. */
interface ConnectViews {
  client: FakeView;
  server: FakeView | null;
}

/** How the fake kernel resolves a section handle for the calling process. */
export type SectionLookup = (handle: bigint) => FakeSection | number;

const u8 = (b: AllowSharedBufferSource | null): Uint8Array | null =>
  b === null
    ? null
    : ArrayBuffer.isView(b)
    ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
    : new Uint8Array(b);
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Sections and views, for one {@link FakeKernel}. */
export class FakeViews {
  #nextId = 1;
  readonly #views: FakeView[] = [];
  readonly #connects = new WeakMap<object, ConnectViews>();

  /** Views mapped now in process `pid` (every process when omitted). */
  mapped(pid?: number): number {
    return this.#views.filter((v) => v.mapped && (pid === undefined || v.pid === pid)).length;
  }

  /** Every mapped view (for assertions). */
  get views(): readonly FakeView[] {
    return this.#views.filter((v) => v.mapped);
  }

  /**
   * `NtCreateSection` for a page-file section (no file): MiCreatePagingFileMap.c refuses a
   * MaximumSize of 0 (STATUS_INVALID_PARAMETER_4) or above the x64 limit (STATUS_SECTION_TOO_BIG).
   * Only SEC_COMMIT, PAGE_READWRITE sections are modelled. Returns the section or a status.
   */
  createSection(
    access: number,
    maximumSize: Uint8Array | null,
    protection: number,
    attributes: number,
    file: bigint,
  ): FakeSection | number {
    if (file !== 0n) throw new Error("fake kernel: file-backed sections are not modelled");
    if (attributes !== SEC_COMMIT || protection !== 0x04) {
      throw new Error("fake kernel: only SEC_COMMIT, PAGE_READWRITE sections are modelled");
    }
    const size = maximumSize ? dv(maximumSize).getBigInt64(0, true) : 0n;
    if (size <= 0n) return S.STATUS_INVALID_PARAMETER_4;
    if (size > PAGEFILE_SECTION_MAX) return S.STATUS_SECTION_TOO_BIG;
    const bytes = Number(roundUp(size, BigInt(VIEW_GRANULARITY)));
    if (bytes > 64 * 1024 * 1024) {
      throw new Error("fake kernel: sections above 64 MiB not modelled");
    }
    const memory = new Uint8Array(bytes);
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(memory));
    return { id: this.#nextId++, size, access, memory, base };
  }

  /**
   * NtSecureConnectPort.c (user mode): a ClientView whose Length is not 48 or a ServerView whose
   * Length is not 24 is STATUS_INVALID_PARAMETER, before the port is even looked up. The same in
   * AlpcpAcceptConnectPort.c for its ServerView (48) and ClientView (24).
   */
  checkLengths(
    portView: AllowSharedBufferSource | null,
    remote: AllowSharedBufferSource | null,
  ): number {
    const pv = u8(portView);
    if (pv && dv(pv).getUint32(PV.offsets.Length, true) !== PV.size) {
      return S.STATUS_INVALID_PARAMETER;
    }
    const rv = u8(remote);
    if (rv && dv(rv).getUint32(RPV.offsets.Length, true) !== RPV.size) {
      return S.STATUS_INVALID_PARAMETER;
    }
    return 0;
  }

  /**
   * AlpcpMapLegacyPortView.c: maps the section a PORT_VIEW names into `pid`. A NULL SectionHandle
   * is STATUS_INVALID_HANDLE; the handle is referenced for SECTION_MAP_READ | SECTION_MAP_WRITE;
   * the offset and the size are rounded up to pages; their sum overflowing is
   * STATUS_INVALID_PARAMETER, beyond the section STATUS_INSUFFICIENT_RESOURCES; ViewSize 0 maps the
   * rest of the section (AlpcpCreateSectionView.c, AlpcpCreateView.c). It reads a captured copy:
   * the caller's PORT_VIEW is written only when the whole call succeeds (NtSecureConnectPort.c,
   * AlpcpAcceptConnectPort.c; {@link writePortView}).
   */
  mapLegacyView(portView: Uint8Array, pid: number, lookup: SectionLookup): FakeView | number {
    const v = dv(portView);
    const handle = v.getBigUint64(PV.offsets.SectionHandle, true);
    if (handle === 0n) return S.STATUS_INVALID_HANDLE;
    const section = lookup(handle);
    if (typeof section === "number") return section;
    if ((section.access & SECTION_MAP_READ_WRITE) !== SECTION_MAP_READ_WRITE) {
      return S.STATUS_ACCESS_DENIED; // ObReferenceObjectByHandle.c
    }
    const page = BigInt(VIEW_GRANULARITY);
    const offset = roundUp(BigInt(v.getUint32(PV.offsets.SectionOffset, true)), page);
    const asked = v.getBigUint64(PV.offsets.ViewSize, true);
    const size = roundUp(asked, page);
    if (asked !== 0n && size < asked) return S.STATUS_INVALID_PARAMETER; // the rounding wrapped
    if (BigInt.asUintN(64, offset + size) < offset) return S.STATUS_INVALID_PARAMETER;
    if (offset + size > section.size) return S.STATUS_INSUFFICIENT_RESOURCES;
    if (offset !== 0n) throw new Error("fake kernel: a non-zero SectionOffset is not modelled");
    const viewSize = roundUp(size === 0n ? section.size - offset : size, page);
    return this.#map(section, pid, offset, viewSize);
  }

  /**
   * A PORT_VIEW as the call leaves it (AlpcpMapLegacyPortView.c): Length 48, ViewBase, the mapped
   * ViewSize (whole pages: MmMapViewOfSection), and ViewRemoteBase, the peer's mapping.
   */
  writePortView(portView: Uint8Array, view: FakeView, remote: FakeView | null): void {
    const v = dv(portView);
    v.setUint32(PV.offsets.Length, PV.size, true);
    v.setBigUint64(PV.offsets.ViewBase, view.base, true);
    v.setBigUint64(PV.offsets.ViewSize, view.size, true);
    v.setBigUint64(PV.offsets.ViewRemoteBase, remote?.base ?? 0n, true);
  }

  #map(section: FakeSection, pid: number, offset: bigint, size: bigint): FakeView {
    const view: FakeView = {
      section,
      pid,
      offset,
      size,
      base: section.base + offset,
      port: null,
      mapped: true,
    };
    this.#views.push(view);
    return view;
  }

  /** Unmaps a view (once). */
  unmap(view: FakeView | null | undefined): void {
    if (!view || !view.mapped) return;
    view.mapped = false;
    this.#views.splice(this.#views.indexOf(view), 1);
  }

  /**
   * A legacy connection request: AlpcpFormatConnectionRequest.c overwrites the CallbackId that
   * AlpcpAllocateMessage.c gave it with ClientViewSize (the same 8 bytes, PORT_MESSAGE + 32): the
   * mapped ViewSize, or 0 without a view. With a view, the delivery to the server maps it into the
   * connection port's process as well (AlpcpExposeViewAttributeInSenderContext.c, from
   * AlpcpCompleteDispatchMessage.c).
   */
  attachToConnect(
    message: object,
    bytes: Uint8Array,
    client: FakeView | null,
    serverPid: number,
  ): void {
    dv(bytes).setBigUint64(PM.offsets.ClientViewSize, client?.size ?? 0n, true);
    if (!client) return;
    const server = this.#map(client.section, serverPid, client.offset, client.size);
    this.#connects.set(message, { client, server });
  }

  /** The views a connection request carries, if any. */
  connectViews(message: object): ConnectViews | undefined {
    return this.#connects.get(message);
  }

  /**
   * The connection did not happen (refused, flushed): NtSecureConnectPort.c closes the new client
   * port, whose cleanup unmaps the client's view (AlpcpDoPortCleanup.c, AlpcpFlushResourcesPort.c);
   * the server-side mapping goes with the cancelled message.
   */
  dropConnect(message: object): void {
    const c = this.#connects.get(message);
    if (!c) return;
    this.unmap(c.client);
    this.unmap(c.server);
    this.#connects.delete(message);
  }

  /**
   * AlpcpMapLegacyPortRemoteView.c at accept: the server's mapping of the client's view moves to
   * the new server port, and the server's REMOTE_PORT_VIEW (ClientView) gets Length 24, ViewBase
   * and ViewSize. Without a client view it is written all zeros (AlpcpAcceptConnectPort.c copies
   * its zeroed capture back). The client's mapping belongs to the client port.
   */
  acceptClientView(
    message: object,
    remote: Uint8Array | null,
    serverPort: object,
    clientPort: object,
  ): void {
    const c = this.#connects.get(message);
    if (c) {
      c.client.port = clientPort;
      if (c.server) c.server.port = serverPort;
    }
    if (!remote) return;
    remote.fill(0, 0, RPV.size);
    if (!c?.server) return;
    const v = dv(remote);
    v.setUint32(RPV.offsets.Length, RPV.size, true);
    v.setBigUint64(RPV.offsets.ViewBase, c.server.base, true);
    v.setBigUint64(RPV.offsets.ViewSize, c.server.size, true);
  }

  /**
   * The server's own view at accept (a ServerView PORT_VIEW): AlpcpAcceptConnectPort.c maps it with
   * AlpcpMapLegacyPortView.c for the server port, then AlpcpMapLegacyPortRemoteView.c gives its
   * base as the PORT_VIEW's ViewRemoteBase; the client sees it through its ServerView when the
   * reply is delivered (AlpcpReceiveLegacyConnectionReply.c). Returns a status on failure.
   */
  acceptServerView(
    message: object,
    portView: Uint8Array,
    pid: number,
    clientPid: number,
    lookup: SectionLookup,
  ): number {
    const view = this.mapLegacyView(portView, pid, lookup);
    if (typeof view === "number") return view;
    const mirror = this.#map(view.section, clientPid, view.offset, view.size);
    this.writePortView(portView, view, mirror);
    this.#serverViews.set(message, { server: view, client: mirror });
    return 0;
  }
  readonly #serverViews = new WeakMap<object, { server: FakeView; client: FakeView }>();

  /**
   * The client's side once accepted (NtSecureConnectPort.c, AlpcpReceiveLegacyConnectionReply.c):
   * its PORT_VIEW gets ViewRemoteBase, the server's mapping of it (AlpcpQueryRemoteView.c); its
   * ServerView (REMOTE_PORT_VIEW) gets Length 24, ViewBase and ViewSize of the server's view, or
   * all zeros when the server gave none.
   */
  connected(
    message: object,
    portView: Uint8Array | null,
    remote: Uint8Array | null,
    serverPort: object,
    clientPort: object,
  ): void {
    const c = this.#connects.get(message);
    if (portView && c) this.writePortView(portView, c.client, c.server);
    const s = this.#serverViews.get(message);
    if (s) {
      s.server.port = serverPort;
      s.client.port = clientPort;
    }
    if (!remote) return;
    remote.fill(0, 0, RPV.size);
    if (!s) return;
    const v = dv(remote);
    v.setUint32(RPV.offsets.Length, RPV.size, true);
    v.setBigUint64(RPV.offsets.ViewBase, s.client.base, true);
    v.setBigUint64(RPV.offsets.ViewSize, s.client.size, true);
  }

  /** AlpcpDoPortCleanup.c → AlpcpFlushResourcesPort.c: a port's views go with its last handle. */
  portClosed(port: object): void {
    for (const v of [...this.#views]) if (v.port === port) this.unmap(v);
  }
}
