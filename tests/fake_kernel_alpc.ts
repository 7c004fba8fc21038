/**
 * The ALPC part of the fake kernel (`tests/fake_kernel.ts`): `NtAlpc*` and the two ntdll-side
 * attribute helpers, read rule by rule from the Windows 11 kernel's code (every rule names the
 * `ntoskrnl/` function file it comes from). A legacy LPC port and an ALPC port are one object type
 * (ALPC Port) in the kernel, and here too: the ports, handles and messages are the fake kernel's
 * own, so `NtAlpcQueryInformation` works on a port made by `NtCreatePort`, an ALPC connection port
 * can be a process's exception port (`raiseException` queues its `LPC_EXCEPTION` there and an
 * ALPC reply lets the thread go), and a dying client's handles close through the same path.
 *
 * Use it through `FakeKernel.symbols`, which holds these functions beside the legacy ones:
 *
 * ```ts
 * const k = new FakeKernel();
 * const attrs = portAttributes({ flags: AlpcPortFlags.ALLOW_IMPERSONATION });
 * k.as(server, () => k.symbols.NtAlpcCreatePort(cell, oa.struct, attrs));
 * ```
 *
 * Modelled: connection, client and server communication ports (attributes and their checks),
 * connect (synchronous or not; a RequiredServerSid; connection data both ways; message
 * attributes), accept and refuse with a PortContext, new messages (requests, synchronous requests,
 * datagrams) and replies (to a waiting thread or, for an asynchronous request, to the requester's
 * port), receive (timeout, buffer too small, the context and security attributes), disconnect,
 * the close message (`LPC_PORT_CLOSED`) at a port's last handle, `AlpcBasicInformation`, `AlpcServerInformation` (a thread waiting in a synchronous request) and `AlpcServerSessionInformation`,
 * impersonation (by message, with or without a security context; of the connected port),
 * security contexts, port sections and views (the view attribute; a delivered view is mapped
 * anew for the receiving port, `FakeKernel.alpcViews(pid)` counts a process's views). Each port
 * section owns one shared memory object (tests/fake_shared_memory.ts) and every view of it is a
 * mapping of its region of that memory, at an address of its own (the sender's and the receiver's
 * differ, as on Windows), so the library's pointer reads and writes of a view work here. Not
 * modelled: completion lists, resource reserves, a
 * caller's own section in `NtAlpcCreatePortSection`, the handle, token, direct and work-on-behalf
 * attributes (never marked valid), a message's MessageContext, 32-bit callers, the connect's
 * timeout (it waits), what AlpcpDisconnectPort.c does beyond marking the port disconnected (for
 * `NtAlpcDisconnectPort` and at a port's last close: Flags bit 0's 0x80,
 * `AlpcpWalkConnectionList.c` for a connection port, and AlpcpCancelMessagesByRequestor.c, which
 * cancels the messages this port sent that still wait in the other side's queues, wakes their
 * waiting senders and returns the others as LPC_CANCELED to this side's receive port (a client port
 * itself, a server port's connection port); no conformance case disconnects or closes a port with
 * messages outstanding), ALPC calls on legacy ports other than `NtAlpcQueryInformation` (they
 * return STATUS_NOT_IMPLEMENTED), information classes other than basic, server (4; waits in an
 * ALPC synchronous request only) and server session (12) (STATUS_NOT_IMPLEMENTED), and
 * sessions beyond a number per process (`FakeKernel.sessionIds`).
 *
 * @module
 */

import { LAYOUTS } from "../ffi/layouts.ts";
import {
  ALPC_SERVER_INFORMATION_SIZES,
  ALPC_SERVER_INFORMATION_THREAD_ACCESS,
  AlpcAttributeFlags as A,
  AlpcInformationClass,
  AlpcMessageFlags as F,
  AlpcPortFlags as P,
} from "../ffi/alpc/constants.ts";
import type { AlpcSymbols as LibraryAlpcSymbols } from "../ffi/alpc/port.ts";
import type { NtdllSymbols } from "../ffi/ntdll.ts";
import { LpcMessageFlag, LpcMessageType as T } from "../ffi/port_message.ts";
import { NTSTATUS } from "../ffi/status.ts";
import { decodeUtf16, encodeUtf16 } from "../ffi/strings.ts";
import { createSharedMemory, type SharedMemory } from "./fake_shared_memory.ts";
import { attributeOffset, attributesSize } from "./conformance/_alpc.ts";
import { message, rawHeader } from "./conformance/_util.ts";
import type {
  HandleEntry,
  Identity,
  Message,
  Port,
  ProcessState,
  ThreadState,
} from "./fake_kernel.ts";

const PM = LAYOUTS.PORT_MESSAGE;
const PA = LAYOUTS.ALPC_PORT_ATTRIBUTES;
const MA = LAYOUTS.ALPC_MESSAGE_ATTRIBUTES;
const QOS = LAYOUTS.SECURITY_QUALITY_OF_SERVICE;
const CTX = LAYOUTS.ALPC_CONTEXT_ATTR;
const SEC = LAYOUTS.ALPC_SECURITY_ATTR;
const VIEW = LAYOUTS.ALPC_DATA_VIEW_ATTR;
const BASIC = LAYOUTS.ALPC_BASIC_INFORMATION;
const SI = LAYOUTS.ALPC_SERVER_INFORMATION;
const SSI = LAYOUTS.ALPC_SERVER_SESSION_INFORMATION;
const SI_SIZES = ALPC_SERVER_INFORMATION_SIZES;
/**
 * NtCurrentThread(): the pseudo-handle ObpReferenceObjectByHandleWithTag.c takes for the caller
 * when the type asked for is PsThreadType (granted 0x1FFFFF; another type: type mismatch).
 */
const CURRENT_THREAD = 0xfffffffffffffffen;
/** `THREAD_QUERY_INFORMATION`, what AlpcpPortQueryServerInfo.c references the thread with. */
const THREAD_QUERY_INFORMATION = ALPC_SERVER_INFORMATION_THREAD_ACCESS;
const US = LAYOUTS.UNICODE_STRING;
const S = NTSTATUS;

/**
 * The ALPC functions of ntdll the fake implements: every `NtAlpc*` call the library binds
 * (`AlpcSymbols` in ffi/alpc/port.ts, the one list), and ntdll's two attribute helpers.
 */
export type AlpcCallName =
  | Extract<keyof LibraryAlpcSymbols, `NtAlpc${string}`>
  | "AlpcInitializeMessageAttribute"
  | "AlpcGetMessageAttribute";

/** Those functions, none missing. */
export type AlpcSymbols = { [K in AlpcCallName]: NonNullable<NtdllSymbols[K]> };

/** A security context (AlpcpCreateSecurityContext.c): whose token it captured. */
interface SecurityContext {
  handle: bigint;
  port: Port;
  pid: number;
  level: number;
  deleted: boolean;
}

/** A port section (NtAlpcCreatePortSection.c): its size, its memory and its regions. */
interface Section {
  handle: bigint;
  port: Port;
  pid: number;
  size: bigint;
  /** The memory every view of it maps (`size` bytes). */
  memory: SharedMemory;
  /** Its regions, by offset (AlpcpCreateRegion.c keeps them in the section's list). */
  regions: Region[];
  deleted: boolean;
}

/** A region of a port section (AlpcpCreateRegion.c): where in the section, how large. */
interface Region {
  offset: bigint;
  /** The size rounded up to the region granularity. */
  size: bigint;
}

/** A view of a port section mapped in one process, a resource of the port (AlpcpCreateView.c). */
interface View {
  section: Section;
  port: Port;
  pid: number;
  base: bigint;
  size: bigint;
  /** Its region: every mapping of one region (AlpcpCreateView.c) shares it. */
  region: Region;
  /** Made by NtAlpcCreateSectionView (else mapped for a delivery). */
  own: boolean;
}

/** What the ALPC rules keep for a port (the kernel's ALPC_PORT fields they read). */
export interface AlpcPortState {
  /** Made by the legacy calls (`PortAttributes.Flags` 0x1000, AlpcpCreateConnectionPort.c). */
  legacy: boolean;
  /** `PortAttributes.Flags` as kept (AlpcpValidateAndSetPortAttributes.c). */
  flags: number;
  /** The port's SECURITY_QUALITY_OF_SERVICE. */
  qos: { level: number; dynamic: boolean };
  /** `PortAttributes.MaxViewSize` (0: no limit; AlpcpValidateAndSetPortAttributes.c). */
  maxViewSize: bigint;
  /** SequenceNo: messages sent with this port as their communication port. */
  seq: number;
  /** PortContext (a client port: its handle; a server port: the accept's context). */
  portContext: bigint;
  /** A connect not answered yet (AlpcpCreateClientPort.c sets 8). */
  connecting: boolean;
  /** The connect was refused (AlpcpAcceptConnectPort.c sets 0x10). */
  refused: boolean;
  /** Disconnected (AlpcpDisconnectPort.c sets 0x20). */
  disconnected: boolean;
  /** Client port: the process whose token it captured at connect. */
  clientPid?: number;
}

/** Port attributes as AlpcpValidateAndSetPortAttributes.c keeps them (the parts the fake reads). */
interface PortAttributes {
  flags: number;
  max: number;
  qos: { level: number; dynamic: boolean };
  maxView: bigint;
}

/** AlpcpCreateView.c: a view larger than its port's non-zero MaxViewSize. */
const tooLarge = (s: AlpcPortState, size: bigint) => s.maxViewSize !== 0n && s.maxViewSize < size;

/** What the ALPC rules keep for a message. */
interface AlpcMessage {
  /** The Type word as the receiver sees it. */
  type: number;
  /** A message that takes no reply (RELEASE_MESSAGE at its send: AlpcpDispatchNewMessage.c). */
  noReply: boolean;
  /** Its sequence number on its communication port. */
  sequence: number;
  /** The sender waits in the send call. */
  sync: boolean;
  /** The communication (its server port, or the connection port for one of its own). */
  comm: Port;
  /** The port it came from (a reply to an asynchronous request goes there). */
  requester: Port;
  security?: SecurityContext | undefined;
  view?: View | undefined;
  /** A reply queued on the requester's port (AlpcpDispatchReplyToPort.c). */
  isReply?: boolean;
}

/** What the ALPC rules use of the fake kernel. */
export interface KernelInternals {
  current(): Identity;
  port(p: Deno.PointerValue): Port | number;
  newHandle(entry: HandleEntry): bigint;
  handles(): Iterable<[bigint, HandleEntry]>;
  names: Map<string, Port>;
  nextPortId(): number;
  message(id: number): Message | undefined;
  /** Every message the kernel holds (the ports' queues and the received ones). */
  messages(): Iterable<Message>;
  /** A process's session id (MmGetSessionIdEx.c). */
  sessionId(pid: number): number;
  allocMessage(m: Omit<Message, "messageId" | "callbackId">): Message;
  free(msg: Message): void;
  enqueue(port: Port, msg: Message): boolean;
  block<T>(what: string, cond: () => boolean, finish: () => T): T;
  changed(): void;
  log(name: string, status: number): number;
  thread(who: Identity): ThreadState;
  threadAlive(tid: number): boolean;
  proc(pid: number): ProcessState;
  userSid(pid: number): Uint8Array;
  /** Closes one of the current process's handles (as `NtClose` does). */
  close(handle: bigint): void;
}

const u8 = (b: AllowSharedBufferSource | null): Uint8Array | null =>
  b === null
    ? null
    : ArrayBuffer.isView(b)
    ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
    : new Uint8Array(b);
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const ptrValue = (p: Deno.PointerValue): bigint => (p === null ? 0n : Deno.UnsafePointer.value(p));
const bytesAt = (p: Deno.PointerValue, n: number): Uint8Array => {
  const b = new Uint8Array(n);
  if (p !== null && n > 0) Deno.UnsafePointerView.copyInto(p, b);
  return b;
};

/** `LPC_PORT_CLOSED`: DataLength 8, TotalLength 0x30 (AlpcpSendCloseMessage.c). */
const CLOSED_TOTAL = 0x30;
/** Type bit of a message waiting for its reply (AlpcpDispatchNewMessage.c). */
const CONTINUATION = LpcMessageFlag.LPC_CONTINUATION_REQUIRED;
/** `LPC_NO_IMPERSONATE` (AlpcpImpersonateMessage.c refuses a message with it). */
const NO_IMPERSONATE = LpcMessageFlag.LPC_NO_IMPERSONATE;
/** Flag bits a direct receive uses; not modelled (NtAlpcSendWaitReceivePort.c refuses it on a send). */
const DIRECT_RECEIVE = 0x1000000;
/** The security attribute's flags (AlpcpCaptureSecurityAttributeInternal.c). */
const SEC_RELEASE = 0x10000;
const SEC_CREATE_HANDLE = 0x20000;
/** AlpcpRegionGranularity: the allocation granularity (AlpcpInitSystem.c reads it at boot). */
const REGION_GRANULARITY = 0x10000n;
/** "Create a context now" as a ContextHandle (AlpcpCaptureSecurityAttributeInternal.c: -2). */
const ALPC_HANDLE_CREATE = 0xfffffffffffffffen;

/** The ALPC rules on one fake kernel. */
export class AlpcRules {
  #state = new WeakMap<Port, AlpcPortState>();
  #msgs = new WeakMap<Message, AlpcMessage>();
  #securityContexts = new Map<bigint, SecurityContext>();
  #sections = new Map<bigint, Section>();
  #views: View[] = [];
  #nextAlpcHandle = 0x10n;

  constructor(readonly k: KernelInternals) {}

  // ---------------------------------------------------------------- port state

  /**
   * The ALPC state of a port. A legacy port's is what the legacy calls set up
   * (AlpcpValidateAndSetPortAttributes.c with NULL attributes: Flags 0x1000, a connection port
   * adds 0x20000 (AlpcpCreateConnectionPort.c via NtCreatePort.c), a client port 0x10000 and
   * 0x20000 (AlpcpCreateClientPort.c via NtSecureConnectPort.c), a server port drops 0x20000;
   * PortContext: a client port's handle (AlpcpCreateClientPort.c), a server port's accept context.
   */
  stateOf(port: Port): AlpcPortState {
    let s = this.#state.get(port);
    if (s) return s;
    const flags = port.kind === "connection" ? 0x21000 : port.kind === "client" ? 0x31000 : 0x1000;
    let portContext = port.kind === "server" ? port.context : 0n;
    if (port.kind === "client") {
      for (const [h, e] of this.k.handles()) {
        if (e.type === "port" && e.port === port) {
          portContext = h;
          break;
        }
      }
    }
    s = {
      legacy: true,
      maxViewSize: 0n,
      flags,
      qos: port.qos ?? { level: 2, dynamic: false },
      seq: 0,
      portContext,
      connecting: false,
      refused: false,
      disconnected: false,
    };
    this.#state.set(port, s);
    return s;
  }

  #alpcPort(port: Port): AlpcPortState | null {
    const s = this.stateOf(port);
    return s.legacy ? null : s;
  }

  /**
   * AlpcpValidateAndSetPortAttributes.c: given attributes need 0x28 <= MaxMessageLength <= 0xFFFF
   * and no SYSTEM_PROCESS flag from user mode (else STATUS_INVALID_PARAMETER); Flags keep only
   * `& 0x3FF0000`. NULL attributes: Flags 0, MaxMessageLength 512, QoS SecurityAnonymous with
   * dynamic tracking. A connection port always gets ALLOW_LPC_REQUESTS (0x20000); a client port
   * with NULL attributes gets ALLOW_IMPERSONATION, and at most the connection port's
   * MaxMessageLength; a server port loses 0x20000. The QoS is checked by SeValidateSecurityQos.c
   * (tracking above 1: STATUS_INVALID_PARAMETER, checked first; level above 3:
   * STATUS_BAD_IMPERSONATION_LEVEL).
   */
  #attributes(
    b: Uint8Array | null,
    kind: Port["kind"],
    connection?: Port,
  ): PortAttributes | number {
    let flags = 0;
    let max = 512;
    let maxView = 0n; // NULL attributes: MaxViewSize 0, no limit
    let level = 0;
    let tracking = 1;
    if (b) {
      const dv = view(b);
      const given = dv.getBigUint64(PA.offsets.MaxMessageLength, true);
      const f = dv.getUint32(PA.offsets.Flags, true);
      if (given < 0x28n || given > 0xffffn || (f & P.SYSTEM_PROCESS) !== 0) {
        return S.STATUS_INVALID_PARAMETER;
      }
      flags = f & 0x3ff0000;
      max = Number(given);
      level = dv.getUint32(PA.offsets.SecurityQos + QOS.offsets.ImpersonationLevel, true);
      tracking = dv.getUint8(PA.offsets.SecurityQos + QOS.offsets.ContextTrackingMode);
      maxView = dv.getBigUint64(PA.offsets.MaxViewSize, true);
    }
    if (kind === "connection") flags |= P.ALLOW_LPC_REQUESTS;
    else if (kind === "client") {
      if (!b) flags |= P.ALLOW_IMPERSONATION;
      if (connection && max > connection.maxMessage) max = connection.maxMessage;
      // AlpcpCreateClientPort.c: a connection port with Flags 0x1000000 gives its client ports
      // that flag and its own MaxMessageLength.
      if (connection && (this.stateOf(connection).flags & 0x1000000) !== 0) {
        flags |= 0x1000000;
        max = connection.maxMessage;
      }
    } else flags &= ~P.ALLOW_LPC_REQUESTS;
    // SeValidateSecurityQos.c: the tracking mode first, then the level.
    if (tracking > 1) return S.STATUS_INVALID_PARAMETER;
    if (level > 3) return S.STATUS_BAD_IMPERSONATION_LEVEL;
    return { flags, max, qos: { level, dynamic: tracking === 1 }, maxView };
  }

  #newPort(
    kind: Port["kind"],
    a: PortAttributes,
    extra: Partial<Port> = {},
  ): Port {
    const port: Port = {
      id: this.k.nextPortId(),
      kind,
      maxMessage: a.max,
      queue: [],
      context: 0n,
      handles: 0,
      refs: 0,
      closed: false,
      deleted: false,
      ownerPid: this.k.current().pid,
      alpc: true,
      ...extra,
    };
    this.#state.set(port, {
      legacy: false,
      flags: a.flags,
      qos: a.qos,
      maxViewSize: a.maxView,
      seq: 0,
      portContext: 0n,
      connecting: false,
      refused: false,
      disconnected: false,
    });
    return port;
  }

  // ---------------------------------------------------------------- messages

  #info(msg: Message): AlpcMessage {
    let i = this.#msgs.get(msg);
    if (i) return i;
    // A message the legacy rules made (a kernel message, an exception, a hard error): queued on
    // its port by the kernel, a request when its sender waits (AlpcpDispatchNewMessage.c sets
    // 0x2000 then, clears it for a message without reply).
    const waits = msg.kind === "request" || msg.kind === "exception" || msg.kind === "hardError" ||
      msg.kind === "connect";
    const raw = rawHeader(msg.bytes).type;
    i = {
      type: waits ? raw | CONTINUATION : raw & ~CONTINUATION,
      noReply: !waits,
      sequence: 0,
      sync: waits,
      comm: msg.owner ?? msg.queuedOn,
      requester: msg.queuedOn,
    };
    this.#msgs.set(msg, i);
    return i;
  }

  /**
   * The communication a port belongs to: a client or server port's (one blob, keyed here by the
   * server port), a connection port's own (AlpcpCreateConnectionPort.c).
   */
  #comm(port: Port): Port {
    if (port.kind === "client") return port.peer ?? port;
    return port;
  }

  /**
   * AlpcpLookupMessage.c: the message by MessageId and (when non-zero) CallbackId, else
   * STATUS_INVALID_MESSAGE; it must belong to the port's communication or be queued for the port
   * as its connection port, else STATUS_ACCESS_DENIED.
   */
  #lookup(port: Port, id: number, callbackId: number): Message | number {
    const msg = this.k.message(id);
    if (!msg || msg.state === "freed" || (callbackId !== 0 && callbackId !== msg.callbackId)) {
      return S.STATUS_INVALID_MESSAGE;
    }
    const i = this.#info(msg);
    const connection = i.comm.kind === "connection" ? i.comm : i.comm.connection;
    if (i.comm !== this.#comm(port) && connection !== port) return S.STATUS_ACCESS_DENIED;
    return msg;
  }

  // ---------------------------------------------------------------- attributes

  /**
   * AlpcpCaptureAttributes.c: ValidAttributes must be a subset of AllocatedAttributes
   * (STATUS_INVALID_PARAMETER); the security attribute (AlpcpCaptureSecurityAttributeInternal.c:
   * Flags within 0x30000 and not both bits, else STATUS_INVALID_PARAMETER; ContextHandle -2 makes a
   * context of the sender now, else it must be one of the port's (STATUS_INVALID_HANDLE; another
   * port's: STATUS_ACCESS_DENIED); 0x10000 deletes it and the message carries no context) and the view attribute
   * (AlpcpCaptureViewAttributeInternal.c: a view of the sender's process).
   */
  #capture(
    port: Port,
    buf: Uint8Array | null,
  ): { security?: SecurityContext; view?: View } | number {
    if (!buf) return {};
    const dv = view(buf);
    const allocated = dv.getUint32(MA.offsets.AllocatedAttributes, true);
    const valid = dv.getUint32(MA.offsets.ValidAttributes, true);
    if ((~allocated & valid) !== 0) return S.STATUS_INVALID_PARAMETER;
    const out: { security?: SecurityContext; view?: View } = {};
    if (valid & A.SECURITY) {
      const at = attributeOffset(allocated, A.SECURITY)!;
      const flags = dv.getUint32(at + SEC.offsets.Flags, true);
      if ((flags & ~0x30000) !== 0 || (flags & 0x30000) === 0x30000) {
        return S.STATUS_INVALID_PARAMETER;
      }
      const handle = dv.getBigUint64(at + SEC.offsets.ContextHandle, true);
      if (handle === ALPC_HANDLE_CREATE) {
        if (flags & SEC_RELEASE) return S.STATUS_INVALID_HANDLE;
        const ctx = this.#newSecurityContext(port, this.stateOf(port).qos.level);
        if (flags & SEC_CREATE_HANDLE) {
          dv.setBigUint64(at + SEC.offsets.ContextHandle, ctx.handle, true);
        }
        out.security = ctx;
      } else {
        // The handle is looked up in the communication's table (the port's +16 blob).
        const ctx = this.#securityContexts.get(handle);
        if (!ctx || ctx.deleted || this.#comm(ctx.port) !== this.#comm(port)) {
          return S.STATUS_INVALID_HANDLE;
        }
        if (ctx.port !== port) return S.STATUS_ACCESS_DENIED;
        // AlpcpCaptureSecurityAttributeInternal.c: with 0x10000 the context is deleted and the
        // message carries none (`v13 = 0` before `*(a5 + 32) = v13`).
        if (flags & SEC_RELEASE) this.#deleteSecurityContext(ctx);
        else out.security = ctx;
      }
    }
    if (valid & A.VIEW) {
      // AlpcpCaptureViewAttributeInternal.c: Flags beyond 0x70000 → STATUS_INVALID_PARAMETER; no
      // SectionHandle: no view; a NULL ViewBase → STATUS_INVALID_ADDRESS; an unknown section →
      // STATUS_INVALID_HANDLE; AlpcpLocateSectionView.c: the view at ViewBase among the port's
      // resources, of that section, else STATUS_INVALID_ADDRESS.
      const at = attributeOffset(allocated, A.VIEW)!;
      if ((dv.getUint32(at + VIEW.offsets.Flags, true) & 0xfff8ffff) !== 0) {
        return S.STATUS_INVALID_PARAMETER;
      }
      const handle = dv.getBigUint64(at + VIEW.offsets.SectionHandle, true);
      if (handle !== 0n) {
        const base = dv.getBigUint64(at + VIEW.offsets.ViewBase, true);
        if (base === 0n) return S.STATUS_INVALID_ADDRESS;
        const section = this.#sections.get(handle);
        if (!section || section.deleted) return S.STATUS_INVALID_HANDLE;
        const v = this.#views.find((x) => x.base === base && x.port === port);
        if (!v || v.section !== section) return S.STATUS_INVALID_ADDRESS;
        out.view = v;
      }
    }
    return out;
  }

  /**
   * AlpcpExposeAttributes.c (64-bit caller): ValidAttributes starts at 0; the security attribute
   * (Flags 0, the ContextHandle) when the message carries a context; the view attribute (its
   * base and size; the receiver's own mapping); the context attribute is always written
   * (AlpcpExposeContextAttribute.c: PortContext, Sequence, MessageId, CallbackId) and marked
   * valid only when its PortContext is non-zero.
   */
  #expose(msg: Message, port: Port, buf: Uint8Array | null): void {
    if (!buf) return;
    const dv = view(buf);
    const allocated = dv.getUint32(MA.offsets.AllocatedAttributes, true);
    let valid = 0;
    const i = this.#info(msg);
    if ((allocated & A.SECURITY) && i.security) {
      const at = attributeOffset(allocated, A.SECURITY)!;
      dv.setUint32(at + SEC.offsets.Flags, 0, true);
      dv.setBigUint64(at + SEC.offsets.ContextHandle, i.security.handle, true);
      valid |= A.SECURITY;
    }
    if ((allocated & A.VIEW) && i.view) {
      // The message's view as it is (its ViewBase and ViewSize; SectionHandle 0).
      const at = attributeOffset(allocated, A.VIEW)!;
      buf.fill(0, at, at + VIEW.size);
      dv.setBigUint64(at + VIEW.offsets.ViewBase, i.view.base, true);
      dv.setBigUint64(at + VIEW.offsets.ViewSize, i.view.size, true);
      valid |= A.VIEW;
    }
    if (allocated & A.CONTEXT) {
      this.#exposeContext(msg, buf, allocated);
      if (msg.context !== 0n) valid |= A.CONTEXT;
    }
    void port;
    dv.setUint32(MA.offsets.ValidAttributes, valid >>> 0, true);
  }

  #exposeContext(msg: Message, buf: Uint8Array, allocated: number): void {
    const dv = view(buf);
    const at = attributeOffset(allocated, A.CONTEXT)!;
    const i = this.#info(msg);
    dv.setBigUint64(at + CTX.offsets.PortContext, msg.context, true);
    dv.setBigUint64(at + CTX.offsets.MessageContext, 0n, true);
    dv.setUint32(at + CTX.offsets.Sequence, i.sequence, true);
    dv.setUint32(at + CTX.offsets.MessageId, msg.messageId, true);
    dv.setUint32(at + CTX.offsets.CallbackId, msg.callbackId, true);
  }

  /**
   * AlpcpCreateRegion.c (SectionOffset 0, as NtAlpcCreateSectionView.c passes it): `size` rounded
   * up to the region granularity; walking the section's regions by offset, the first gap of exactly
   * that size, else the smallest larger gap, else after the last region if the section has room
   * (else STATUS_INSUFFICIENT_RESOURCES). Returns the region, inserted in order, or a status.
   */
  #createRegion(s: Section, size: bigint): Region | number {
    const need = (size + REGION_GRANULARITY - 1n) & ~(REGION_GRANULARITY - 1n);
    let at = 0n;
    let best: { offset: bigint; gap: bigint } | null = null;
    for (const r of s.regions) {
      const gap = r.offset - at;
      if (gap === need) {
        best = { offset: at, gap };
        break;
      }
      if (gap > need && (!best || best.gap > gap)) best = { offset: at, gap };
      at = r.offset + r.size;
    }
    const offset = best ? best.offset : at;
    if (!best && s.size - at < need) return S.STATUS_INSUFFICIENT_RESOURCES;
    const region: Region = { offset, size: need };
    s.regions.push(region);
    s.regions.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
    return region;
  }

  /**
   * The view a message carries, as its target port gets it (AlpcpCompleteDispatchMessage.c →
   * AlpcpExposeViewAttributeInSenderContext.c): the target port's own view of the region when it
   * has one (AlpcpLocateView.c), else a new mapping in the target port's process
   * (AlpcpCreateView.c), a resource of the target port, of the same size. AlpcpCreateView.c maps
   * a non-secure section with MmMapViewOfSection and PAGE_READWRITE (4), so the receiver may write
   * it too (a secure one, through MmMapSecureViewOfSection: the fake does not model that). The new
   * mapping maps the region's part of the section's memory again, at another address.
   */
  #deliverView(v: View | undefined, target: Port): View | undefined {
    if (!v) return undefined;
    const mine = this.#views.find((x) =>
      x.section === v.section && x.port === target && x.region === v.region
    );
    if (mine) return mine;
    // AlpcpCreateView.c refuses a view above the target port's MaxViewSize
    // (STATUS_QUOTA_EXCEEDED); AlpcpExposeViewAttributeInSenderContext.c then clears the message's
    // view (+144) and AlpcpCompleteDispatchMessage.c delivers it all the same, without its view.
    if (tooLarge(this.stateOf(target), v.size)) return undefined;
    const mapped: View = {
      section: v.section,
      port: target,
      pid: target.ownerPid,
      base: v.section.memory.map(Number(v.region.offset), Number(v.size)),
      size: v.size,
      region: v.region,
      own: false,
    };
    this.#views.push(mapped);
    return mapped;
  }

  /** A deleted section's memory is closed with its last view (mappings keep it until then). */
  #closeSection(s: Section): void {
    if (s.deleted && !this.#views.some((v) => v.section === s)) s.memory.close();
  }

  /** How many views are mapped in process `pid` (its own and those mapped for deliveries). */
  mappedViews(pid: number): number {
    return this.#views.filter((v) => v.pid === pid).length;
  }

  #newAlpcHandle(): bigint {
    const h = this.#nextAlpcHandle;
    this.#nextAlpcHandle += 4n;
    return h;
  }

  #newSecurityContext(port: Port, level: number): SecurityContext {
    const ctx: SecurityContext = {
      handle: this.#newAlpcHandle(),
      port,
      pid: this.k.current().pid,
      level,
      deleted: false,
    };
    this.#securityContexts.set(ctx.handle, ctx);
    return ctx;
  }

  #deleteSecurityContext(ctx: SecurityContext): void {
    ctx.deleted = true;
    this.#securityContexts.delete(ctx.handle);
  }

  // ---------------------------------------------------------------- sending

  /**
   * Where a new message from `port` goes (AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c):
   * a client port's to its connection port, with the server port as the communication port; a
   * server port's to its client port; a connection port's to itself. Either port gone or
   * disconnected: STATUS_PORT_DISCONNECTED.
   */
  #targets(port: Port): { target: Port; comm: Port } | number {
    let target: Port | undefined;
    let comm: Port | undefined;
    if (port.kind === "client") {
      comm = port.peer;
      target = comm?.connection;
    } else if (port.kind === "server") {
      target = port.peer;
      comm = port.peer;
    } else {
      target = port;
      comm = port;
    }
    if (!target || !comm || target.closed || comm.closed) return S.STATUS_PORT_DISCONNECTED;
    if (this.stateOf(target).disconnected || this.stateOf(comm).disconnected) {
      return S.STATUS_PORT_DISCONNECTED;
    }
    return { target, comm };
  }

  /**
   * AlpcpSendMessage.c for a user-mode caller on an ALPC port. Returns the status and, for a new
   * message, the message queued.
   */
  #send(
    port: Port,
    flags: number,
    buf: Uint8Array,
    attrs: Uint8Array | null,
  ): { status: number; msg?: Message } {
    const s = this.stateOf(port);
    if (s.refused) return { status: S.STATUS_PORT_CONNECTION_REFUSED };
    if (s.connecting) return { status: S.STATUS_LPC_REQUESTS_NOT_ALLOWED };
    if (s.disconnected) return { status: S.STATUS_PORT_DISCONNECTED };
    if (buf.byteLength < PM.size) return { status: S.STATUS_INVALID_PARAMETER }; // harness guard
    const h = rawHeader(buf);
    // AlpcpValidateMessage.c (neither a legacy port nor a kernel sender): TotalLength must be
    // exactly DataLength + 40, and that sum must fit 16 bits.
    if (h.dataLength + PM.size > 0xffff || h.totalLength !== h.dataLength + PM.size) {
      return { status: S.STATUS_INVALID_PARAMETER };
    }
    if (PM.size + h.dataLength > buf.byteLength) return { status: S.STATUS_ACCESS_VIOLATION }; // harness guard
    if (h.dataInfoOffset !== 0) {
      const invalid = validateDataInformation(buf);
      if (invalid !== 0) return { status: invalid };
    }
    const release = (flags & F.RELEASE_MESSAGE) !== 0;
    const id = h.messageId | 0;
    // The Type: the caller's low byte is ignored; a reply (MessageId > 0) is LPC_REPLY with
    // RELEASE_MESSAGE, else LPC_REQUEST; a new message is LPC_DATAGRAM with RELEASE_MESSAGE, else
    // LPC_REQUEST; of the caller's high byte only 0x6F00 stays (AlpcpSendMessage.c, user-mode
    // branch: `Type & 0x7FFF`, then `(Type & 0xFF00) & 0xEFFF`: 0x8000 and 0x1000 dropped).
    let type = id > 0
      ? (release ? T.LPC_REPLY : T.LPC_REQUEST)
      : (release ? T.LPC_DATAGRAM : T.LPC_REQUEST);
    type |= h.type & 0x6f00;
    // A new message's ClientId must be zero (STATUS_INVALID_MESSAGE).
    if (id === 0 && (h.pid !== 0 || h.tid !== 0)) return { status: S.STATUS_INVALID_MESSAGE };
    if (h.totalLength > port.maxMessage) return { status: S.STATUS_PORT_MESSAGE_TOO_LONG };
    // AlpcpLookupMessage.c: a negative MessageId names a resource reserve; no reserve is ever
    // made here, so the lookup finds none: STATUS_OBJECTID_NOT_FOUND (0xC00002F0).
    if (id < 0) return { status: S.STATUS_OBJECTID_NOT_FOUND };
    if (id > 0) return { status: this.#reply(port, flags, buf, type, attrs) };
    const captured = this.#capture(port, attrs);
    if (typeof captured === "number") return { status: captured };
    return this.#dispatchNew(port, flags, buf, type, captured);
  }

  /**
   * AlpcpDispatchNewMessage.c: the target port must allow requests (Flags 0x20000, else
   * STATUS_LPC_REQUESTS_NOT_ALLOWED) and take the TotalLength (its MaxMessageLength, else
   * STATUS_BUFFER_TOO_SMALL); the message gets the communication port's next sequence number and
   * PortContext; with RELEASE_MESSAGE it takes no reply (0x2000 cleared), else it waits for one
   * (0x2000 set); a synchronous request's sender waits.
   */
  #dispatchNew(
    port: Port,
    flags: number,
    buf: Uint8Array,
    type: number,
    captured: { security?: SecurityContext; view?: View },
  ): { status: number; msg?: Message } {
    const t = this.#targets(port);
    if (typeof t === "number") return { status: t };
    const h = rawHeader(buf);
    if ((this.stateOf(t.target).flags & P.ALLOW_LPC_REQUESTS) === 0) {
      return { status: S.STATUS_LPC_REQUESTS_NOT_ALLOWED };
    }
    if (h.totalLength > t.target.maxMessage) return { status: S.STATUS_BUFFER_TOO_SMALL };
    const release = (flags & F.RELEASE_MESSAGE) !== 0;
    const commState = this.stateOf(t.comm);
    const finalType = release ? type & ~CONTINUATION : type | CONTINUATION;
    const msg = this.k.allocMessage({
      kind: release ? "datagram" : "request",
      bytes: this.#bytes(
        finalType,
        this.k.current(),
        buf.subarray(PM.size, PM.size + h.dataLength),
        h.dataInfoOffset,
      ),
      context: commState.portContext,
      from: { ...this.k.current() },
      state: "queued",
      queuedOn: t.target,
      owner: port.kind === "client" ? port.peer! : port,
    });
    this.#msgs.set(msg, {
      type: finalType,
      noReply: release,
      sequence: ++commState.seq,
      sync: (flags & F.SYNC_REQUEST) !== 0,
      comm: this.#comm(port),
      requester: port,
      security: captured.security,
      view: this.#deliverView(captured.view, t.target),
    });
    if (!this.k.enqueue(t.target, msg)) return { status: S.STATUS_PORT_DISCONNECTED };
    return { status: S.STATUS_SUCCESS, msg };
  }

  /** A message's bytes: the header (Type, ClientId, DataInfoOffset) and the data. */
  #bytes(type: number, from: Identity, data: Uint8Array, dataInfoOffset = 0): Uint8Array {
    const b = message({ data, type, pid: from.pid, tid: from.tid });
    view(b).setUint16(PM.offsets.DataInfoOffset, dataInfoOffset, true);
    return b;
  }

  /**
   * A reply (AlpcpSendMessage.c with a MessageId): the message is looked up (AlpcpLookupMessage.c);
   * a cancelled one (its sender gone) answers STATUS_REQUEST_CANCELED, one that takes no reply is
   * answered with success, nothing sent, and freed; it must have been received, through this port or
   * (a server port) its connection port, else STATUS_ACCESS_DENIED. A waiting sender gets it
   * (AlpcpDispatchReplyToWaitingThread.c: the replier's ClientId, the same MessageId and
   * CallbackId); an asynchronous request's reply is queued on the requester's port
   * (AlpcpDispatchReplyToPort.c).
   */
  #reply(
    port: Port,
    flags: number,
    buf: Uint8Array,
    type: number,
    attrs: Uint8Array | null,
  ): number {
    const h = rawHeader(buf);
    const found = this.#lookup(port, h.messageId, h.callbackId);
    if (typeof found === "number") return found;
    const msg = found;
    const i = this.#info(msg);
    if (msg.state === "cancelled") {
      this.k.free(msg);
      return S.STATUS_REQUEST_CANCELED;
    }
    const through = port === msg.queuedOn ||
      (port.kind === "server" && port.connection === msg.queuedOn);
    if (!through || msg.state !== "received") return S.STATUS_ACCESS_DENIED;
    const captured = this.#capture(port, attrs);
    if (typeof captured === "number") return captured;
    if (i.noReply) {
      // AlpcpSendMessage.c: a reply to a message with 0x200 (no reply) answers 0, releases the
      // attributes and cancels the message (AlpcpCancelMessage.c, 0x10000): it is gone, and a
      // second reply fails its lookup (AlpcpLookupMessage.c: 0xC0000702).
      this.#cancel(msg);
      return S.STATUS_SUCCESS;
    }
    const release = (flags & F.RELEASE_MESSAGE) !== 0;
    const replyType = release ? type & ~CONTINUATION : type | CONTINUATION;
    const bytes = this.#bytes(
      replyType,
      this.k.current(),
      buf.subarray(PM.size, PM.size + h.dataLength),
      h.dataInfoOffset,
    );
    const dv = view(bytes);
    dv.setUint32(PM.offsets.MessageId, msg.messageId, true);
    dv.setUint32(PM.offsets.CallbackId, msg.callbackId, true);
    // AlpcpSendMessage.c: a message without a waiting thread takes its reply on the requester's
    // port (AlpcpDispatchReplyToPort.c), an asynchronous connect's too.
    if (!i.sync && (msg.kind === "request" || msg.kind === "connect")) {
      return this.#replyToPort(port, msg, bytes, release, captured);
    }
    // AlpcpDispatchReplyToWaitingThread.c: a reply longer than the requester's port takes →
    // STATUS_BUFFER_TOO_SMALL (the request stays, waiting); else the requester's port counts it
    // (SequenceNo) and gives its PortContext (a client port's: its handle).
    if (rawHeader(bytes).totalLength > i.requester.maxMessage) return S.STATUS_BUFFER_TOO_SMALL;
    const rs = this.stateOf(i.requester);
    i.sequence = ++rs.seq;
    msg.context = rs.portContext;
    msg.reply = bytes;
    msg.state = "replied";
    this.#replies.set(msg, {
      type: replyType,
      ...captured,
      view: this.#deliverView(captured.view, i.requester),
    });
    this.k.changed();
    return S.STATUS_SUCCESS;
  }

  /**
   * AlpcpDispatchReplyToPort.c: the reply to a request whose sender does not wait is queued as a
   * message on the requester's side (a client's: its client port; a server's: the connection
   * port, with the server port as communication port); the replying or the requesting port
   * disconnected → STATUS_PORT_DISCONNECTED (the message is cancelled); longer than the target's
   * MaxMessageLength → STATUS_BUFFER_TOO_SMALL; it takes the communication port's next sequence
   * number and PortContext; with RELEASE_MESSAGE it takes no reply. A connection reply (Type 11)
   * ends the client port's "connecting" state.
   */
  #replyToPort(
    port: Port,
    msg: Message,
    bytes: Uint8Array,
    release: boolean,
    captured: { security?: SecurityContext; view?: View },
  ): number {
    const i = this.#info(msg);
    const requester = i.requester;
    let target: Port | undefined = requester;
    let comm: Port | undefined = requester;
    if (requester.kind === "server") {
      target = requester.connection;
      comm = requester;
    }
    if (this.stateOf(port).disconnected || this.stateOf(requester).disconnected) {
      this.#cancel(msg);
      return S.STATUS_PORT_DISCONNECTED;
    }
    if (!target || !comm || target.closed) {
      this.#cancel(msg);
      return S.STATUS_PORT_DISCONNECTED;
    }
    if (rawHeader(bytes).totalLength > target.maxMessage) return S.STATUS_BUFFER_TOO_SMALL;
    const type = rawHeader(bytes).type;
    if (type === T.LPC_CONNECTION_REPLY) this.stateOf(requester).connecting = false;
    const cs = this.stateOf(comm);
    msg.bytes = bytes;
    msg.state = "queued";
    msg.queuedOn = target;
    msg.context = cs.portContext;
    msg.kind = release ? "datagram" : "request";
    i.type = type;
    i.noReply = release;
    i.isReply = true;
    i.sequence = ++cs.seq;
    i.security = captured.security;
    i.view = this.#deliverView(captured.view, target);
    if (!this.k.enqueue(target, msg)) return S.STATUS_PORT_DISCONNECTED;
    return S.STATUS_SUCCESS;
  }

  #replies = new WeakMap<
    Message,
    { type: number; security?: SecurityContext | undefined; view?: View | undefined }
  >();

  // ---------------------------------------------------------------- receiving

  /**
   * Copies a received message out (AlpcpReceiveMessage.c): the header as kept (an ALPC port does
   * not mask the Type) and the DataLength bytes, then the attributes.
   */
  #copyOut(msg: Message, bytes: Uint8Array, type: number, out: Uint8Array, port: Port): void {
    const h = rawHeader(bytes);
    const n = Math.min(PM.size + h.dataLength, out.byteLength);
    out.set(bytes.subarray(0, n));
    view(out).setUint16(PM.offsets.Type, type, true);
    void msg;
    void port;
  }

  /**
   * AlpcpReceiveMessage.c / AlpcpReceiveMessagePort.c: a refused port answers
   * STATUS_PORT_CONNECTION_REFUSED; the next message (one returned for a small buffer first); with
   * a timeout and nothing queued, STATUS_TIMEOUT (virtual time). A message longer than
   * `*BufferLength` is not taken: STATUS_BUFFER_TOO_SMALL, the required length in
   * `*BufferLength` and the context attribute exposed (AlpcpReturnMessageOnInsufficientBuffer.c);
   * on success `*BufferLength` is left alone. A message that takes no reply is freed once received
   * unless the receiver asked for an attribute it carries (security, view, handle); one that takes
   * a reply waits for it.
   */
  #receive(
    port: Port,
    recv: Uint8Array,
    lenB: Uint8Array | null,
    attrs: Uint8Array | null,
    timeout: Uint8Array | null,
  ): number {
    const s = this.stateOf(port);
    if (s.refused) return S.STATUS_PORT_CONNECTION_REFUSED;
    const next = () => port.queue.find((m) => m.state === "queued");
    const deliver = (): number => {
      const msg = next()!;
      const i = this.#info(msg);
      const h = rawHeader(msg.bytes);
      const required = PM.size + h.dataLength;
      if (lenB && BigInt(required) > view(lenB).getBigUint64(0, true)) {
        view(lenB).setBigUint64(0, BigInt(required), true);
        if (attrs) {
          const allocated = view(attrs).getUint32(MA.offsets.AllocatedAttributes, true);
          if (allocated & A.CONTEXT) this.#exposeContext(msg, attrs, allocated);
        }
        // Kept for the next receive, first in line (the large-message queue).
        port.queue.splice(port.queue.indexOf(msg), 1);
        port.queue.unshift(msg);
        return S.STATUS_BUFFER_TOO_SMALL;
      }
      port.queue.splice(port.queue.indexOf(msg), 1);
      // AlpcpReceiveMessagePort.c: a message that takes no reply is kept (Type |= 0x2000, the
      // pending queue) when the receiver allocated an attribute it carries (security 0x80000000,
      // view 0x40000000, handle 0x10000000), else Type &= ~0x2000 and it is dropped; the header
      // is copied out after that.
      let keep = !i.noReply;
      if (i.noReply) {
        const asked = attrs ? view(attrs).getUint32(MA.offsets.AllocatedAttributes, true) : 0;
        const carries = (i.security ? A.SECURITY : 0) | (i.view ? A.VIEW : 0);
        keep = (asked & carries) !== 0;
        i.type = keep ? i.type | CONTINUATION : i.type & ~CONTINUATION;
      }
      this.#copyOut(msg, msg.bytes, i.type, recv, port);
      this.#expose(msg, port, attrs);
      if (keep) msg.state = "received";
      else this.k.free(msg);
      this.k.changed();
      return S.STATUS_SUCCESS;
    };
    if (next()) return deliver();
    if (timeout !== null) return S.STATUS_TIMEOUT;
    return this.k.block(
      "NtAlpcSendWaitReceivePort(receive)",
      () => !!next() || port.closed,
      () => (next() ? deliver() : S.STATUS_PORT_CLOSED),
    );
  }

  /**
   * AlpcpProcessSynchronousRequest.c: the send, then the wait for the reply
   * (AlpcpReceiveSynchronousReply.c: a request cancelled or flushed is STATUS_MESSAGE_LOST). A
   * reply longer than `*BufferLength` gives STATUS_BUFFER_TOO_SMALL and the required length, and
   * waits on the receive port for the next receive;
   * else the reply is copied, `*BufferLength` set to its length and its attributes exposed.
   */
  #syncRequest(
    port: Port,
    flags: number,
    send: Uint8Array,
    sendAttrs: Uint8Array | null,
    recv: Uint8Array,
    lenB: Uint8Array | null,
    recvAttrs: Uint8Array | null,
  ): number {
    const sent = this.#send(port, flags, send, sendAttrs);
    if (sent.status !== S.STATUS_SUCCESS || !sent.msg) return sent.status;
    const msg = sent.msg;
    return this.k.block(
      "NtAlpcSendWaitReceivePort(synchronous request)",
      () => msg.state === "replied" || msg.failure !== undefined || msg.state === "freed",
      () => this.#takeReply(msg, port, recv, lenB, recvAttrs),
    );
  }

  #takeReply(
    msg: Message,
    port: Port,
    recv: Uint8Array,
    lenB: Uint8Array | null,
    attrs: Uint8Array | null,
  ): number {
    const reply = msg.reply;
    const r = this.#replies.get(msg);
    if (!reply || !r) {
      this.k.free(msg);
      return S.STATUS_MESSAGE_LOST;
    }
    const h = rawHeader(reply);
    const required = PM.size + h.dataLength;
    if (lenB && BigInt(required) > view(lenB).getBigUint64(0, true)) {
      // AlpcpProcessSynchronousRequest.c → AlpcpReturnMessageOnInsufficientBuffer.c: the reply
      // is queued on the receive port (the requesting port; a server port's connection port),
      // first in line, for the next receive there; `*BufferLength` = the required length and the
      // context attribute is exposed (AlpcpExposeCapturedContextAttribute.c: ValidAttributes 0).
      const at = port.kind === "server" && port.connection ? port.connection : port;
      const i = this.#info(msg);
      msg.bytes = reply;
      msg.kind = "datagram";
      msg.state = "queued";
      msg.queuedOn = at;
      i.type = r.type;
      i.noReply = true;
      i.isReply = true;
      i.security = r.security;
      i.view = r.view;
      at.queue.unshift(msg);
      view(lenB).setBigUint64(0, BigInt(required), true);
      if (attrs) {
        const allocated = view(attrs).getUint32(MA.offsets.AllocatedAttributes, true);
        if (allocated & A.CONTEXT) this.#exposeContext(msg, attrs, allocated);
        view(attrs).setUint32(MA.offsets.ValidAttributes, 0, true);
      }
      this.k.changed();
      return S.STATUS_BUFFER_TOO_SMALL;
    }
    this.#copyOut(msg, reply, r.type, recv, port);
    if (lenB) view(lenB).setBigUint64(0, BigInt(required), true);
    const i = this.#info(msg);
    i.security = r.security;
    i.view = r.view;
    this.#expose(msg, port, attrs);
    this.k.free(msg);
    return S.STATUS_SUCCESS;
  }

  // ---------------------------------------------------------------- close

  /**
   * An ALPC port's last handle closed (AlpcpClosePort.c): the port is disconnected
   * (AlpcpDoPortCleanup.c) and a client or server communication port sends `LPC_PORT_CLOSED`
   * (AlpcpSendCloseMessage.c: not while its connect is unanswered; Type 5 without 0x2000,
   * DataLength 8, TotalLength 0x30, ClientId 0, the CreateTime of the process current at the
   * close) to its peer's side: a client's to the connection port with the server port's context,
   * a server's to the client port, and only when that port allows requests
   * (AlpcpDispatchCloseMessage.c: else STATUS_LPC_REQUESTS_NOT_ALLOWED, nothing sent). The kernel
   * sends it here, not when the object is deleted (AlpcpDeletePort.c sends only for legacy ports).
   */
  portClosed(port: Port): void {
    const s = this.#alpcPort(port);
    if (!s) return;
    port.closeSent = true;
    const connecting = s.connecting;
    s.disconnected = true;
    if (port.kind === "connection" || connecting) return;
    let target: Port | undefined;
    let comm: Port | undefined;
    if (port.kind === "client") {
      comm = port.peer;
      target = comm?.connection;
    } else {
      target = port.peer;
      comm = port.peer;
    }
    if (!target || !comm || target.closed || comm.closed) return;
    if (this.stateOf(target).disconnected || this.stateOf(comm).disconnected) return;
    if ((this.stateOf(target).flags & P.ALLOW_LPC_REQUESTS) === 0) return;
    const data = new Uint8Array(8);
    view(data).setBigUint64(0, this.k.proc(this.k.current().pid).createTime, true);
    const commState = this.stateOf(comm);
    const msg = this.k.allocMessage({
      kind: "kernel",
      bytes: message({ data, type: T.LPC_PORT_CLOSED, totalLength: CLOSED_TOTAL }),
      context: commState.portContext,
      from: { pid: 0, tid: 0 },
      state: "queued",
      queuedOn: target,
    });
    this.#msgs.set(msg, {
      type: T.LPC_PORT_CLOSED,
      noReply: true,
      sequence: ++commState.seq,
      sync: false,
      comm,
      requester: port,
    });
    this.k.enqueue(target, msg);
  }

  // ---------------------------------------------------------------- server information

  /**
   * AlpcpPortQueryServerSessionInfo.c (class 12): a NULL port → STATUS_INVALID_PARAMETER; the
   * connected port (AlpcpReferenceConnectedPort.c: a client port's server port, a server port's
   * client port, a connection port itself) must exist and still have its owner (AlpcpDoPortCleanup.c
   * lets the owner go, bit 0 of the owner field, at the port's last close), else
   * STATUS_INVALID_PARAMETER; then fewer than 8 bytes → STATUS_INFO_LENGTH_MISMATCH, else the
   * owner's SessionId (MmGetSessionIdEx.c) and ProcessId; ReturnLength 8 either way.
   */
  #serverSessionInformation(
    port: Port | null,
    info: Uint8Array,
    length: number,
    ret: Uint8Array | null,
  ): number {
    if (!port) return S.STATUS_INVALID_PARAMETER;
    const connected = this.#connected(port);
    if (!connected || connected.closed || connected.deleted) return S.STATUS_INVALID_PARAMETER;
    const pid = connected.ownerPid;
    let status: number = S.STATUS_SUCCESS;
    if (length < SSI.size) status = S.STATUS_INFO_LENGTH_MISMATCH;
    else {
      const dv = view(info);
      dv.setUint32(SSI.offsets.SessionId, this.k.sessionId(pid), true);
      dv.setUint32(SSI.offsets.ProcessId, pid, true);
    }
    if (ret) view(ret).setUint32(0, SSI.size, true);
    return status;
  }

  /**
   * AlpcpPortQueryServerInfo.c (class 4): a non-NULL port or fewer than 8 bytes →
   * STATUS_INVALID_PARAMETER; the first 8 bytes are a thread handle, referenced with
   * THREAD_QUERY_INFORMATION (0x40; ObReferenceObjectByHandle.c through
   * ObpReferenceObjectByHandleWithTag.c: not a handle of this process →
   * STATUS_INVALID_HANDLE, not a thread → STATUS_OBJECT_TYPE_MISMATCH, without the access →
   * STATUS_ACCESS_DENIED; NtCurrentThread() is the caller with every right). Then the message the
   * thread waits on (AlpcpReferenceMessageByWaitingThread.c; its STATUS_NOT_FOUND becomes success,
   * not blocked); when it is the one the thread waits for a reply to, the answer: ThreadBlocked,
   * ConnectedProcessId (the owner of the connection port when the message went out on a client or
   * connection port, of the client port when it went out on a server port; nothing when that port's
   * owner is let go) and the connection port's name (AlpcpGetPortNameInformation.c,
   * ObQueryNameStringMode.c: MaximumLength = Length + 2, copied at offset 32, Buffer pointing
   * there). Size needed: 32 plus MaximumLength; fewer → STATUS_INFO_LENGTH_MISMATCH. ReturnLength
   * on success and on that status. Only `ThreadBlocked`'s byte is written at offset 0.
   *
   * Modelled waits: a thread in an ALPC synchronous request (queued or received, not yet
   * answered). Not modelled: legacy `NtRequestWaitReplyPort` and kernel messages (exceptions,
   * hard errors), and a connect in progress (each is a message with a waiting thread on Windows).
   */
  #serverInformation(
    port: Port | null,
    info: Uint8Array,
    length: number,
    ret: Uint8Array | null,
  ): number {
    if (port || length < SI_SIZES.minimum) return S.STATUS_INVALID_PARAMETER;
    const handle = view(info).getBigUint64(SI.offsets.ThreadHandle, true);
    let tid: number;
    if (handle === CURRENT_THREAD) tid = this.k.current().tid;
    else {
      const entry = [...this.k.handles()].find(([h]) => h === handle)?.[1];
      if (!entry || entry.pid !== this.k.current().pid) return S.STATUS_INVALID_HANDLE;
      if (entry.type !== "thread") return S.STATUS_OBJECT_TYPE_MISMATCH;
      if ((entry.access & THREAD_QUERY_INFORMATION) === 0) return S.STATUS_ACCESS_DENIED;
      tid = entry.target;
    }
    const msg = [...this.k.messages()].find((m) => this.#waitsForReply(m, tid));
    let answer: { pid: number; name: string } | null = null;
    if (msg) {
      const i = this.#info(msg);
      const connection = i.comm.kind === "connection" ? i.comm : i.comm.connection;
      const other = i.requester.kind === "server" ? i.requester.peer : connection;
      if (connection && !connection.deleted && other && !other.closed && !other.deleted) {
        answer = { pid: other.ownerPid, name: connection.fullName ?? "" };
      }
    }
    const name = answer ? encodeUtf16(answer.name) : new Uint8Array(0);
    const maximumLength = answer && name.byteLength > 0 ? name.byteLength + 2 : 0;
    const needed = SI.size + maximumLength;
    let status: number = S.STATUS_SUCCESS;
    if (length < needed) status = S.STATUS_INFO_LENGTH_MISMATCH;
    else {
      const dv = view(info);
      dv.setUint8(SI.offsets.ThreadBlocked, answer ? 1 : 0);
      dv.setBigUint64(SI.offsets.ConnectedProcessId, BigInt(answer?.pid ?? 0), true);
      const us = SI.offsets.ConnectionPortName;
      if (answer) {
        dv.setUint16(us + US.offsets.Length, name.byteLength, true);
        dv.setUint16(us + US.offsets.MaximumLength, maximumLength, true);
        const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(info));
        dv.setBigUint64(us + US.offsets.Buffer, BigInt(base) + BigInt(SI.size), true);
        info.fill(0, SI.size, SI.size + maximumLength);
        info.set(name, SI.size);
      } else {
        dv.setUint32(us, 0, true);
        dv.setBigUint64(us + US.offsets.Buffer, 0n, true);
      }
    }
    if (ret) view(ret).setUint32(0, needed, true);
    return status;
  }

  /** A message thread `tid` waits in its send for the reply to (an unanswered ALPC sync request). */
  #waitsForReply(msg: Message, tid: number): boolean {
    if (msg.from.tid !== tid || msg.kind !== "request") return false;
    if (msg.state !== "queued" && msg.state !== "received") return false;
    if (msg.reply !== undefined || msg.failure !== undefined) return false;
    const i = this.#msgs.get(msg);
    return i !== undefined && i.sync && !i.noReply;
  }

  // ---------------------------------------------------------------- impersonation

  /**
   * The connected port (AlpcpReferenceConnectedPort.c): a server port's client port, a client
   * port's server port, a connection port itself.
   */
  #connected(port: Port): Port | undefined {
    return port.kind === "connection" ? port : port.peer;
  }

  /**
   * The port's 0x400 state: AlpcpCreateClientPort.c sets it only on a client port whose QoS
   * ContextTrackingMode is 1 (dynamic); server and connection ports never have it.
   */
  #dynamic(port: Port): boolean {
    return port.kind === "client" && this.stateOf(port).qos.dynamic;
  }

  /**
   * A port's client context (its +64 SECURITY_CLIENT_CONTEXT): a client port's is the token
   * captured at connect with its QoS (AlpcpCreateClientPort.c → SeCreateClientSecurity.c); any
   * other port's is the zeroed one AlpcpCreatePort.c leaves (no token, level 0).
   */
  #clientContext(port: Port): { pid: number | null; level: number } {
    const s = this.stateOf(port);
    if (port.kind !== "client") return { pid: null, level: 0 };
    return { pid: s.clientPid ?? port.ownerPid, level: s.qos.level };
  }

  /**
   * PsImpersonateClient.c: a NULL token reverts the thread to its process token (success); else
   * the thread impersonates the token at the level given (SecurityAnonymous is 0).
   */
  #impersonate(pid: number | null, level: number): number {
    const t = this.k.thread(this.k.current());
    t.impersonating = pid;
    t.impersonationLevel = pid === null ? undefined : level;
    return S.STATUS_SUCCESS;
  }

  // ---------------------------------------------------------------- the ntdll stand-ins

  /** The `NtAlpc*` functions and the attribute helpers. */
  readonly symbols: AlpcSymbols = {
    // NtAlpcCreatePort.c → AlpcpCreateConnectionPort.c: OBJECT_ATTRIBUTES (Length checked,
    // ObpCaptureObjectCreateInformation.c), the attributes, a name unique in its directory.
    NtAlpcCreatePort: (cellB, oaB, attrB) => {
      const name = objectName(u8(oaB));
      if (typeof name === "number") return this.k.log("NtAlpcCreatePort", name);
      const a = this.#attributes(u8(attrB), "connection");
      if (typeof a === "number") return this.k.log("NtAlpcCreatePort", a);
      const key = name?.toLowerCase();
      if (key && this.k.names.has(key)) {
        return this.k.log("NtAlpcCreatePort", S.STATUS_OBJECT_NAME_COLLISION);
      }
      const port = this.#newPort("connection", a, key ? { name: key, fullName: name! } : {});
      if (key) this.k.names.set(key, port);
      const h = this.k.newHandle({ type: "port", port, pid: this.k.current().pid });
      view(u8(cellB)!).setBigUint64(0, h, true);
      return this.k.log("NtAlpcCreatePort", S.STATUS_SUCCESS);
    },

    NtAlpcConnectPort: (
      cellB,
      nameB,
      _oaB,
      attrB,
      flagsIn,
      sidP,
      msgB,
      lenB,
      outAttrB,
      inAttrB,
      _timeoutB,
    ) => {
      const L = (status: number) => this.k.log("NtAlpcConnectPort", status);
      const flags = (flagsIn & 0xffff0000) >>> 0; // AlpcpConnectPort.c
      const nameStruct = u8(nameB);
      if (!nameStruct) return L(S.STATUS_INVALID_PARAMETER);
      const name = readUnicodeString(nameStruct);
      // AlpcpCreateClientPort.c: the name must name a connection port.
      const connection = this.k.names.get(name.toLowerCase());
      if (!connection || connection.closed) return L(S.STATUS_OBJECT_NAME_NOT_FOUND);
      if (connection.kind !== "connection") return L(S.STATUS_INVALID_PORT_HANDLE);
      if (this.stateOf(connection).legacy) return L(S.STATUS_NOT_IMPLEMENTED); // not modelled
      // AlpcpCheckConnectionSecurity.c: a RequiredServerSid must be the user SID of the server
      // process (its primary token), else STATUS_SERVER_SID_MISMATCH.
      if (sidP !== null) {
        const head = bytesAt(sidP, 2);
        const want = bytesAt(sidP, 8 + 4 * head[1]!);
        const have = this.k.userSid(connection.ownerPid);
        if (!sameBytes(want, have)) return L(S.STATUS_SERVER_SID_MISMATCH);
      }
      const a = this.#attributes(u8(attrB), "client", connection);
      if (typeof a === "number") return L(a);
      // AlpcpProcessConnectionRequest.c: RELEASE_MESSAGE is refused.
      if (flags & F.RELEASE_MESSAGE) return L(S.STATUS_INVALID_PARAMETER);
      // AlpcpFormatConnectionRequest.c / AlpcpValidateConnectionMessage.c: the connection message
      // is validated like any ALPC message.
      const conn = u8(msgB);
      let data = new Uint8Array(0);
      let dataInfoOffset = 0;
      if (conn) {
        const h = rawHeader(conn);
        if (h.dataLength + PM.size > 0xffff || h.totalLength !== h.dataLength + PM.size) {
          return L(S.STATUS_INVALID_PARAMETER);
        }
        data = conn.slice(PM.size, PM.size + h.dataLength);
        dataInfoOffset = h.dataInfoOffset;
      }
      const client = this.#newPort("client", a, { connection, qos: a.qos });
      const cs = this.stateOf(client);
      cs.clientPid = this.k.current().pid;
      cs.connecting = true;
      const handle = this.k.newHandle({ type: "port", port: client, pid: this.k.current().pid });
      cs.portContext = handle; // AlpcpCreateClientPort.c: PortContext is the handle
      const fail = (status: number) => {
        this.#closeHandle(handle);
        return L(status);
      };
      const captured = this.#capture(client, u8(outAttrB));
      if (typeof captured === "number") return fail(captured);
      // AlpcpDispatchConnectionRequest.c: the connection port must be connected and take the
      // TotalLength (else STATUS_BUFFER_TOO_SMALL); Type 10 | 0x2000, PortContext 0.
      const conState = this.stateOf(connection);
      if (conState.disconnected) return fail(S.STATUS_PORT_DISCONNECTED);
      if (PM.size + data.byteLength > connection.maxMessage) return fail(S.STATUS_BUFFER_TOO_SMALL);
      const type = T.LPC_CONNECTION_REQUEST | CONTINUATION;
      const msg = this.k.allocMessage({
        kind: "connect",
        bytes: this.#bytes(type, this.k.current(), data, dataInfoOffset),
        context: 0n,
        from: { ...this.k.current() },
        state: "queued",
        queuedOn: connection,
        connInfo: data,
      });
      this.#msgs.set(msg, {
        type,
        noReply: false,
        sequence: ++conState.seq,
        sync: (flags & F.SYNC_REQUEST) !== 0,
        comm: client,
        requester: client,
        security: captured.security,
        view: this.#deliverView(captured.view, connection),
      });
      this.#connects.set(msg, client);
      if (!this.k.enqueue(connection, msg)) return fail(S.STATUS_PORT_DISCONNECTED);
      const cell = u8(cellB)!;
      if ((flags & F.SYNC_REQUEST) === 0) {
        // AlpcpProcessConnectionRequest.c: without SYNC_REQUEST the call returns at once.
        view(cell).setBigUint64(0, handle, true);
        return L(S.STATUS_SUCCESS);
      }
      const status = this.k.block(
        "NtAlpcConnectPort",
        () =>
          msg.connect !== undefined || msg.state === "replied" || msg.failure !== undefined ||
          msg.state === "freed",
        () => {
          // AlpcpProcessConnectionRequest.c returns 0 for any reply AlpcpReceiveSynchronousReply.c
          // gets: an accept's LPC_CONNECTION_REPLY, or a plain reply (NtAlpcSendWaitReceivePort
          // with the request's MessageId: AlpcpDispatchReplyToWaitingThread.c), which leaves the
          // client port "connecting" (it clears 8 only for Type 11), so its sends are then
          // STATUS_LPC_REQUESTS_NOT_ALLOWED.
          if (msg.connect !== "accepted" && msg.state !== "replied") {
            this.#closeHandle(handle);
            // AlpcpProcessConnectionRequest.c: a refused port → STATUS_PORT_CONNECTION_REFUSED;
            // AlpcpReceiveSynchronousReply.c: otherwise the request was lost.
            return cs.refused ? S.STATUS_PORT_CONNECTION_REFUSED : S.STATUS_MESSAGE_LOST;
          }
          const reply = msg.reply!;
          const r = this.#replies.get(msg)!;
          const h = rawHeader(reply);
          const required = PM.size + h.dataLength;
          const len = u8(lenB);
          if (len && BigInt(required) > view(len).getBigUint64(0, true)) {
            view(len).setBigUint64(0, BigInt(required), true);
            this.#closeHandle(handle);
            return S.STATUS_BUFFER_TOO_SMALL;
          }
          if (conn) this.#copyOut(msg, reply, r.type, conn, client);
          if (len) view(len).setBigUint64(0, BigInt(required), true);
          const i = this.#info(msg);
          i.security = r.security;
          i.view = r.view;
          this.#expose(msg, client, u8(inAttrB));
          this.k.free(msg);
          view(cell).setBigUint64(0, handle, true);
          return S.STATUS_SUCCESS;
        },
      );
      return L(status);
    },

    NtAlpcAcceptConnectPort: (
      cellB,
      connP,
      flagsIn,
      _oaB,
      attrB,
      ctxP,
      msgB,
      msgAttrB,
      accept,
    ) => {
      const L = (status: number) => this.k.log("NtAlpcAcceptConnectPort", status);
      void flagsIn; // NtAlpcAcceptConnectPort.c keeps only 0xC0000000 (32-bit callers)
      const buf = u8(msgB);
      if (!buf || buf.byteLength < PM.size) return L(S.STATUS_INVALID_PARAMETER); // harness guard
      const h = rawHeader(buf);
      // AlpcpAcceptConnectPort.c: MessageId 0 → STATUS_REPLY_MESSAGE_MISMATCH; a NULL connection
      // port handle → STATUS_INVALID_CONNECTION (only kernel callers may omit it).
      if (h.messageId === 0) return L(S.STATUS_REPLY_MESSAGE_MISMATCH);
      if (connP === null) return L(S.STATUS_INVALID_CONNECTION);
      const connection = this.k.port(connP);
      if (typeof connection === "number") return L(connection);
      const found = this.#lookup(connection, h.messageId, h.callbackId);
      if (typeof found === "number") return L(found);
      const msg = found;
      const client = this.#connects.get(msg);
      if (msg.state === "cancelled") {
        this.k.free(msg);
        return L(S.STATUS_REQUEST_CANCELED);
      }
      if (msg.kind !== "connect" || !client) return L(S.STATUS_REPLY_MESSAGE_MISMATCH);
      const through = msg.queuedOn === connection ||
        (connection.kind === "server" && connection.connection === msg.queuedOn);
      if (!through || msg.state !== "received" || msg.connect !== undefined) {
        return L(S.STATUS_INVALID_MESSAGE);
      }
      if (h.dataLength + PM.size > 0xffff || h.totalLength !== h.dataLength + PM.size) {
        return L(S.STATUS_INVALID_PARAMETER); // AlpcpValidateConnectionMessage.c
      }
      const cs = this.stateOf(client);
      if (cs.disconnected || client.closed) {
        this.#cancel(msg);
        return L(S.STATUS_PORT_DISCONNECTED);
      }
      const conn = msg.queuedOn;
      if (
        (this.stateOf(conn).flags & P.SYSTEM_PROCESS) === 0 &&
        conn.ownerPid !== this.k.current().pid
      ) {
        return L(S.STATUS_REPLY_MESSAGE_MISMATCH); // only the connection port's owner process
      }
      if (!accept) {
        // The client is refused: its connect returns STATUS_PORT_CONNECTION_REFUSED.
        cs.refused = true;
        msg.connect = "refused";
        this.#cancel(msg);
        return L(S.STATUS_SUCCESS);
      }
      const a = this.#attributes(u8(attrB), "server");
      if (typeof a === "number") return L(a);
      const captured = this.#capture(conn, u8(msgAttrB));
      if (typeof captured === "number") return L(captured);
      const server = this.#newPort("server", a, { connection: conn, peer: client });
      client.peer = server;
      const handle = this.k.newHandle({ type: "port", port: server, pid: this.k.current().pid });
      const ss = this.stateOf(server);
      // A NULL PortContext becomes the server port's handle value.
      ss.portContext = ctxP === null ? handle : ptrValue(ctxP);
      server.context = ss.portContext;
      view(u8(cellB)!).setBigUint64(0, handle, true);
      // AlpcpAcceptConnectPort.c: the server port is linked and its handle written before
      // AlpcpDispatchMessage.c; a connection reply the client port cannot take
      // (AlpcpDispatchReplyToWaitingThread.c / AlpcpDispatchReplyToPort.c:
      // STATUS_BUFFER_TOO_SMALL) leaves the request waiting and closes that handle (NtClose.c, so
      // AlpcpClosePort.c runs for the server port).
      if (PM.size + h.dataLength > client.maxMessage) {
        this.#closeHandle(handle);
        return L(S.STATUS_BUFFER_TOO_SMALL);
      }
      // The reply: LPC_CONNECTION_REPLY with the accept's data, released
      // (AlpcpDispatchReplyToWaitingThread.c clears the client's "connecting" state for Type 11).
      const type = T.LPC_CONNECTION_REPLY;
      const reply = this.#bytes(
        type,
        this.k.current(),
        buf.subarray(PM.size, PM.size + h.dataLength),
        h.dataInfoOffset,
      );
      view(reply).setUint32(PM.offsets.MessageId, msg.messageId, true);
      view(reply).setUint32(PM.offsets.CallbackId, msg.callbackId, true);
      msg.serverPort = server;
      msg.connect = "accepted";
      if (!this.#info(msg).sync) {
        // A connect that did not wait: the reply goes to its client port (AlpcpDispatchMessage.c
        // → AlpcpDispatchReplyToPort.c), with RELEASE_MESSAGE.
        this.#replyToPort(server, msg, reply, true, captured);
        this.k.changed();
        return L(S.STATUS_SUCCESS);
      }
      const rs = this.stateOf(client);
      this.#info(msg).sequence = ++rs.seq;
      msg.context = rs.portContext;
      msg.reply = reply;
      this.#replies.set(msg, { type, ...captured, view: this.#deliverView(captured.view, client) });
      cs.connecting = false; // AlpcpDispatchReplyToWaitingThread.c: Type 11
      this.k.changed();
      return L(S.STATUS_SUCCESS);
    },

    NtAlpcSendWaitReceivePort: (p, flagsIn, sendB, sendAttrB, recvB, lenB, recvAttrB, timeoutB) => {
      const L = (status: number) => this.k.log("NtAlpcSendWaitReceivePort", status);
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      if (this.stateOf(port).legacy) return L(S.STATUS_NOT_IMPLEMENTED); // not modelled
      // NtAlpcSendWaitReceivePort.c: only Flags & 0xFFFF0000 count. A synchronous request needs a
      // send message without RELEASE_MESSAGE or the direct bit (else STATUS_INVALID_PARAMETER_2)
      // and a receive buffer (else STATUS_LPC_RECEIVE_BUFFER_EXPECTED).
      const flags = (flagsIn & 0xffff0000) >>> 0;
      const send = u8(sendB);
      const recv = u8(recvB);
      if (flags & F.SYNC_REQUEST) {
        if (!send || (flags & F.RELEASE_MESSAGE) || (flags & DIRECT_RECEIVE)) {
          return L(S.STATUS_INVALID_PARAMETER_2);
        }
        if (!recv) return L(S.STATUS_LPC_RECEIVE_BUFFER_EXPECTED);
        return L(
          this.#syncRequest(port, flags, send, u8(sendAttrB), recv, u8(lenB), u8(recvAttrB)),
        );
      }
      let status: number = S.STATUS_SUCCESS;
      if (send) {
        if (flags & DIRECT_RECEIVE) return L(S.STATUS_INVALID_PARAMETER_2);
        status = this.#send(port, flags, send, u8(sendAttrB)).status;
        if (status !== S.STATUS_SUCCESS) return L(status);
      }
      if (recv) status = this.#receive(port, recv, u8(lenB), u8(recvAttrB), u8(timeoutB));
      return L(status);
    },

    // NtAlpcDisconnectPort.c: Flags other than bit 0 → STATUS_INVALID_PARAMETER;
    // AlpcpDisconnectPort.c: a second disconnect → STATUS_PORT_DISCONNECTED.
    NtAlpcDisconnectPort: (p, flags) => {
      const L = (status: number) => this.k.log("NtAlpcDisconnectPort", status);
      if ((flags & ~1) !== 0) return L(S.STATUS_INVALID_PARAMETER);
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      const s = this.stateOf(port);
      if (s.disconnected) return L(S.STATUS_PORT_DISCONNECTED);
      s.disconnected = true;
      this.k.changed();
      return L(S.STATUS_SUCCESS);
    },

    // NtAlpcQueryInformation.c: a NULL buffer → STATUS_INVALID_PARAMETER; classes 0, 3, 4, 11,
    // 12, else STATUS_INVALID_PARAMETER. AlpcpPortQueryBasicInfo.c: a NULL port →
    // STATUS_INVALID_PARAMETER; fewer than 16 bytes → STATUS_INFO_LENGTH_MISMATCH; Flags & 0x3FF0000,
    // SequenceNo, PortContext; ReturnLength 16 either way.
    NtAlpcQueryInformation: (p, cls, infoB, length, retB) => {
      const L = (status: number) => this.k.log("NtAlpcQueryInformation", status);
      const info = u8(infoB);
      if (!info) return L(S.STATUS_INVALID_PARAMETER);
      let port: Port | null = null;
      if (p !== null) {
        const found = this.k.port(p);
        if (typeof found === "number") return L(found);
        port = found;
      }
      const known = Object.values(AlpcInformationClass) as number[];
      if (!known.includes(cls)) return L(S.STATUS_INVALID_PARAMETER);
      if (cls === AlpcInformationClass.AlpcServerInformation) {
        return L(this.#serverInformation(port, info, length, u8(retB)));
      }
      if (cls === AlpcInformationClass.AlpcServerSessionInformation) {
        return L(this.#serverSessionInformation(port, info, length, u8(retB)));
      }
      if (cls !== AlpcInformationClass.AlpcBasicInformation) return L(S.STATUS_NOT_IMPLEMENTED);
      if (!port) return L(S.STATUS_INVALID_PARAMETER);
      const ret = u8(retB);
      let status: number = S.STATUS_SUCCESS;
      if (length < BASIC.size) status = S.STATUS_INFO_LENGTH_MISMATCH;
      else {
        const s = this.stateOf(port);
        const dv = view(info);
        dv.setUint32(BASIC.offsets.Flags, (s.flags & 0x3ff0000) >>> 0, true);
        dv.setUint32(BASIC.offsets.SequenceNo, s.seq, true);
        dv.setBigUint64(BASIC.offsets.PortContext, s.portContext, true);
      }
      if (ret) view(ret).setUint32(0, BASIC.size, true);
      return L(status);
    },

    NtAlpcImpersonateClientOfPort: (p, msgB, flagsP) => {
      const L = (status: number) => this.k.log("NtAlpcImpersonateClientOfPort", status);
      // NtAlpcImpersonateClientOfPort.c: a message with MessageId 0 → STATUS_INVALID_PARAMETER;
      // Flags: bit 0 (a fresh context for dynamic tracking), bit 1 (use the level in bits 2-3),
      // a level above 3 → STATUS_INVALID_PARAMETER.
      const m = u8(msgB);
      const h = m ? rawHeader(m) : null;
      if (h && h.messageId === 0) return L(S.STATUS_INVALID_PARAMETER);
      const flags = ptrValue(flagsP);
      const level = Number(flags >> 2n);
      if (level > 3) return L(S.STATUS_INVALID_PARAMETER);
      const useLevel = ((BigInt(4 * level) | 2n) & flags) !== 0n;
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      if (!h) {
        // NtAlpcImpersonateClientOfPort.c without a message: the connected port
        // (AlpcpReferenceConnectedPort.c; a connection port is its own) needs ALLOW_IMPERSONATION
        // and no dynamic tracking (0x400), else STATUS_ACCESS_DENIED; a requested level above the
        // context's is STATUS_ACCESS_DENIED; then SeImpersonateClientEx.c on its client context.
        const connected = this.#connected(port);
        if (!connected) return L(S.STATUS_ACCESS_DENIED);
        const cs = this.stateOf(connected);
        if ((cs.flags & P.ALLOW_IMPERSONATION) === 0 || this.#dynamic(connected)) {
          return L(S.STATUS_ACCESS_DENIED);
        }
        const ctx = this.#clientContext(connected);
        if (useLevel && level > ctx.level) return L(S.STATUS_ACCESS_DENIED);
        return L(this.#impersonate(ctx.pid, useLevel ? level : ctx.level));
      }
      const found = this.#lookup(port, h.messageId, h.callbackId);
      if (typeof found === "number") return L(found);
      const msg = found;
      const i = this.#info(msg);
      // AlpcpImpersonateMessage.c: a received message (state 3; a kept datagram too: 0x200 is
      // not tested), without LPC_NO_IMPERSONATE, through its port or (a server port) that port's
      // connection port.
      if (msg.state !== "received" || (i.type & NO_IMPERSONATE) !== 0) {
        return L(S.STATUS_ACCESS_DENIED);
      }
      const through = port === msg.queuedOn ||
        (port.kind === "server" && port.connection === msg.queuedOn);
      if (!through) return L(S.STATUS_ACCESS_DENIED);
      if (i.security) {
        // The message's security context (captured from the sender's thread).
        if (i.security.deleted) return L(S.STATUS_ACCESS_DENIED);
        if (useLevel && level > i.security.level) return L(S.STATUS_ACCESS_DENIED);
        return L(this.#impersonate(i.security.pid, useLevel ? level : i.security.level));
      }
      // Without one: the connected port must allow impersonation; static tracking uses its
      // client context (captured at connect), dynamic tracking (0x400) a context of the waiting
      // sender's thread made with the connected port's QoS (SeCreateClientSecurity.c).
      const connected = this.#connected(port);
      if (!connected) return L(S.STATUS_ACCESS_DENIED);
      const cs = this.stateOf(connected);
      if ((cs.flags & P.ALLOW_IMPERSONATION) === 0) return L(S.STATUS_ACCESS_DENIED);
      const ctx = this.#dynamic(connected)
        ? (i.sync ? { pid: msg.from.pid as number | null, level: cs.qos.level } : null)
        : this.#clientContext(connected);
      if (!ctx) return L(S.STATUS_ACCESS_DENIED);
      if (useLevel && level > ctx.level) return L(S.STATUS_ACCESS_DENIED);
      return L(this.#impersonate(ctx.pid, useLevel ? level : ctx.level));
    },

    // NtAlpcCreatePortSection.c: Flags other than 0x40000 (secure), or 0x40000 with a section
    // handle → STATUS_INVALID_PARAMETER. AlpcpCreateSection.c: SectionSize 0 →
    // STATUS_INVALID_PARAMETER; the size is rounded up to AlpcpRegionGranularity (the allocation
    // granularity, 64 KiB: AlpcpInitSystem.c); a disconnected port → STATUS_PORT_DISCONNECTED.
    // A section of the caller's (SectionHandle) is not modelled.
    NtAlpcCreatePortSection: (p, flags, sectionP, size, cellB, actualB) => {
      const L = (status: number) => this.k.log("NtAlpcCreatePortSection", status);
      if ((flags & ~0x40000) !== 0 || ((flags & 0x40000) !== 0 && sectionP !== null)) {
        return L(S.STATUS_INVALID_PARAMETER);
      }
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      if (sectionP !== null) return L(S.STATUS_NOT_IMPLEMENTED);
      const want = BigInt(size);
      if (want === 0n) return L(S.STATUS_INVALID_PARAMETER);
      if (this.stateOf(port).disconnected) return L(S.STATUS_PORT_DISCONNECTED);
      const actual = (want + REGION_GRANULARITY - 1n) & ~(REGION_GRANULARITY - 1n);
      if (actual > 64n * 1024n * 1024n) {
        throw new Error("fake kernel: ALPC port sections above 64 MiB are not modelled");
      }
      const section: Section = {
        handle: this.#newAlpcHandle(),
        port,
        pid: this.k.current().pid,
        size: actual,
        memory: createSharedMemory(Number(actual)),
        regions: [],
        deleted: false,
      };
      this.#sections.set(section.handle, section);
      view(u8(cellB)!).setBigUint64(0, section.handle, true);
      view(u8(actualB)!).setBigUint64(0, actual, true);
      return L(S.STATUS_SUCCESS);
    },

    // NtAlpcDeletePortSection.c: Flags must be 0 (STATUS_INVALID_PARAMETER); the section by its
    // handle in the communication's table (STATUS_INVALID_HANDLE).
    NtAlpcDeletePortSection: (p, flags, handleP) => {
      const L = (status: number) => this.k.log("NtAlpcDeletePortSection", status);
      if (flags !== 0) return L(S.STATUS_INVALID_PARAMETER);
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      const s = this.#sections.get(ptrValue(handleP));
      if (!s || s.deleted || this.#comm(s.port) !== this.#comm(port)) {
        return L(S.STATUS_INVALID_HANDLE);
      }
      s.deleted = true;
      this.#sections.delete(s.handle);
      this.#closeSection(s);
      return L(S.STATUS_SUCCESS);
    },

    // NtAlpcCreateSectionView.c: Flags must be 0, and the attribute's Flags 0, ViewSize non-zero
    // and ViewBase 0 (else STATUS_INVALID_PARAMETER); the SectionHandle one of the port's
    // (STATUS_INVALID_HANDLE). AlpcpCreateRegion.c: only the section's creating process
    // (STATUS_ACCESS_DENIED); the region (ViewSize rounded up to the region granularity) must fit
    // what is left (STATUS_INSUFFICIENT_RESOURCES); the view's size is ViewSize rounded up to a
    // page (AlpcpViewGranularity). ViewBase and ViewSize are written back.
    NtAlpcCreateSectionView: (p, flags, attrB) => {
      const L = (status: number) => this.k.log("NtAlpcCreateSectionView", status);
      const a = u8(attrB);
      if (flags !== 0 || !a) return L(S.STATUS_INVALID_PARAMETER);
      const dv = view(a);
      const size = dv.getBigUint64(VIEW.offsets.ViewSize, true);
      if (
        dv.getUint32(VIEW.offsets.Flags, true) !== 0 || size === 0n ||
        dv.getBigUint64(VIEW.offsets.ViewBase, true) !== 0n
      ) {
        return L(S.STATUS_INVALID_PARAMETER);
      }
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      const s = this.#sections.get(dv.getBigUint64(VIEW.offsets.SectionHandle, true));
      if (!s || s.deleted || this.#comm(s.port) !== this.#comm(port)) {
        return L(S.STATUS_INVALID_HANDLE);
      }
      if (s.pid !== this.k.current().pid) return L(S.STATUS_ACCESS_DENIED);
      const pageSize = (size + 0xfffn) & ~0xfffn;
      // AlpcpCreateView.c (after AlpcpCreateRegion.c): a view above the port's MaxViewSize.
      if (tooLarge(this.stateOf(port), pageSize)) return L(S.STATUS_QUOTA_EXCEEDED);
      const region = this.#createRegion(s, size);
      if (typeof region === "number") return L(region);
      // The view maps the section's memory at the region's offset (AlpcpCreateView.c).
      const v: View = {
        section: s,
        port,
        pid: this.k.current().pid,
        base: s.memory.map(Number(region.offset), Number(pageSize)),
        size: pageSize,
        region,
        own: true,
      };
      this.#views.push(v);
      dv.setBigUint64(VIEW.offsets.ViewBase, v.base, true);
      dv.setBigUint64(VIEW.offsets.ViewSize, v.size, true);
      return L(S.STATUS_SUCCESS);
    },

    // NtAlpcDeleteSectionView.c: Flags must be 0 (STATUS_INVALID_PARAMETER); the view at ViewBase
    // among the port's resources, else STATUS_INVALID_ADDRESS.
    NtAlpcDeleteSectionView: (p, flags, baseP) => {
      const L = (status: number) => this.k.log("NtAlpcDeleteSectionView", status);
      if (flags !== 0) return L(S.STATUS_INVALID_PARAMETER);
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      const base = ptrValue(baseP);
      const at = this.#views.findIndex((v) => v.base === base && v.port === port);
      if (at < 0) return L(S.STATUS_INVALID_ADDRESS);
      const [v] = this.#views.splice(at, 1);
      if (v!.own) v!.section.regions.splice(v!.section.regions.indexOf(v!.region), 1);
      v!.section.memory.unmap(v!.base, Number(v!.size));
      this.#closeSection(v!.section);
      return L(S.STATUS_SUCCESS);
    },

    // NtAlpcCreateSecurityContext.c: Flags must be 0 (STATUS_INVALID_PARAMETER); the QoS pointed
    // to, or the port's when NULL; the context's handle is written to ContextHandle
    // (AlpcpCreateSecurityContext.c: the caller's thread is captured).
    NtAlpcCreateSecurityContext: (p, flags, attrB) => {
      const L = (status: number) => this.k.log("NtAlpcCreateSecurityContext", status);
      if (flags !== 0) return L(S.STATUS_INVALID_PARAMETER);
      const a = u8(attrB);
      if (!a) return L(S.STATUS_INVALID_PARAMETER);
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      const dv = view(a);
      const qosAt = dv.getBigUint64(SEC.offsets.QoS, true);
      let level = this.stateOf(port).qos.level;
      if (qosAt !== 0n) {
        const q = bytesAt(Deno.UnsafePointer.create(qosAt), QOS.size);
        level = view(q).getUint32(QOS.offsets.ImpersonationLevel, true);
      }
      const ctx = this.#newSecurityContext(port, level);
      dv.setBigUint64(SEC.offsets.ContextHandle, ctx.handle, true);
      return L(S.STATUS_SUCCESS);
    },

    // NtAlpcDeleteSecurityContext.c: Flags must be 0 (STATUS_INVALID_PARAMETER); the context by
    // its handle in the communication's table (STATUS_INVALID_HANDLE), made on this very port (else
    // STATUS_ACCESS_DENIED).
    NtAlpcDeleteSecurityContext: (p, flags, handleP) => {
      const L = (status: number) => this.k.log("NtAlpcDeleteSecurityContext", status);
      if (flags !== 0) return L(S.STATUS_INVALID_PARAMETER);
      const port = this.k.port(p);
      if (typeof port === "number") return L(port);
      const ctx = this.#securityContexts.get(ptrValue(handleP));
      if (!ctx || this.#comm(ctx.port) !== this.#comm(port)) return L(S.STATUS_INVALID_HANDLE);
      if (ctx.port !== port) return L(S.STATUS_ACCESS_DENIED);
      this.#deleteSecurityContext(ctx);
      return L(S.STATUS_SUCCESS);
    },

    // AlpcInitializeMessageAttribute.c: the required size (AlpcGetHeaderSize.c) is always
    // written; a smaller BufferSize → STATUS_BUFFER_TOO_SMALL; else, with a buffer,
    // AllocatedAttributes = the flags as given, ValidAttributes = 0.
    AlpcInitializeMessageAttribute: (flags, bufB, size, requiredB) => {
      const required = attributesSize(flags);
      const req = u8(requiredB);
      if (req) view(req).setBigUint64(0, BigInt(required), true);
      if (BigInt(required) > BigInt(size)) return S.STATUS_BUFFER_TOO_SMALL;
      const b = u8(bufB);
      if (b) {
        view(b).setUint32(MA.offsets.ValidAttributes, 0, true);
        view(b).setUint32(MA.offsets.AllocatedAttributes, flags >>> 0, true);
      }
      return S.STATUS_SUCCESS;
    },

    // AlpcGetMessageAttribute.c: NULL unless the flag is one bit and allocated; else the buffer
    // plus the header size of the allocated flags above it.
    AlpcGetMessageAttribute: (bufB, flag) => {
      const b = u8(bufB)!;
      const at = attributeOffset(view(b).getUint32(MA.offsets.AllocatedAttributes, true), flag);
      if (at === null) return null;
      return Deno.UnsafePointer.create(
        Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)) + BigInt(at),
      );
    },
  };

  #connects = new WeakMap<Message, Port>();

  #cancel(msg: Message): void {
    msg.state = "cancelled";
    this.k.free(msg);
    this.k.changed();
  }

  #closeHandle(handle: bigint): void {
    this.k.close(handle);
  }
}

/**
 * AlpcpValidateDataInformation.c (AlpcpSendMessage.c calls it for a user-mode send with a
 * non-zero DataInfoOffset): the offset must be at least 0x28 and at most TotalLength - 24, else
 * STATUS_INVALID_PARAMETER; the ULONG there (the entry count) must be at most
 * (TotalLength - offset - 8) / 16, else STATUS_INVALID_PARAMETER; a misaligned ULONG raises
 * (ExRaiseDatatypeMisalignment: STATUS_DATATYPE_MISALIGNMENT).
 */
function validateDataInformation(buf: Uint8Array): number {
  const h = rawHeader(buf);
  const at = h.dataInfoOffset;
  if (at < 0x28 || at > h.totalLength - 24) return S.STATUS_INVALID_PARAMETER;
  const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)) + BigInt(at);
  if ((address & 3n) !== 0n) return S.STATUS_DATATYPE_MISALIGNMENT;
  const count = view(buf).getUint32(at, true);
  return ((h.totalLength - at - 8) >>> 4) < count ? S.STATUS_INVALID_PARAMETER : 0;
}

/** The name in an OBJECT_ATTRIBUTES, undefined when unnamed, or the status that refuses it. */
function objectName(oa: Uint8Array | null): string | undefined | number {
  if (!oa) return undefined;
  const OA = LAYOUTS.OBJECT_ATTRIBUTES;
  const dv = view(oa);
  if (dv.getUint32(OA.offsets.Length, true) !== OA.size) return S.STATUS_INVALID_PARAMETER;
  const at = dv.getBigUint64(OA.offsets.ObjectName, true);
  if (at === 0n) return undefined;
  return readUnicodeString(bytesAt(Deno.UnsafePointer.create(at), US.size));
}

/** The text of a UNICODE_STRING struct. */
function readUnicodeString(us: Uint8Array): string {
  const dv = view(us);
  const length = dv.getUint16(US.offsets.Length, true);
  const buffer = dv.getBigUint64(US.offsets.Buffer, true);
  return decodeUtf16(bytesAt(Deno.UnsafePointer.create(buffer), length));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}
