/**
 * The zero-cost kernel: a minimal ntdll stand-in for timing and counting the allocations of the
 * server loops' own per-message work. Its receive hands back a canned request at once (one copy
 * into the receive buffer, the PortContext of the one connection), its reply is counted and
 * dropped; the first receive is a connection request, accepted with a made-up handle. Everything
 * else answers STATUS_NOT_IMPLEMENTED. Nothing here allocates per call, so what a loop over it
 * allocates is the server's.
 *
 * Not the fake kernel of the tests (tests/fake_kernel.ts): that one keeps queues, handle tables and
 * timelines, and its own work would dominate what is measured here.
 *
 * @module
 */

import { encodePortMessage, LpcMessageType, NtHandle } from "../../mod.ts";
import {
  ALPC_SERVER_RECEIVE_ATTRIBUTES,
  type AlpcSymbols,
  type LpcSymbols,
  MessageAttributes,
  NTSTATUS,
  writePortMessage,
} from "../../raw.ts";

/** What a stand-in saw: the replies the server sent and their bytes. */
export interface StandInStats {
  /** Replies received from the server. */
  replies: number;
  /** The sum of their TotalLengths. */
  replyBytes: number;
}

/** A stand-in symbol table, what it counted, and its receive called alone (the baseline). */
export interface StandIn<S> {
  /** The symbols, for the server's `nt` option. */
  readonly nt: S;
  /** What it saw. */
  readonly stats: StandInStats;
  /**
   * One message's worth of the stand-in's own work, without a server: the calls the server makes
   * per message (LPC one reply-and-receive, ALPC a receive and a reply), each with the same
   * buffers.
   */
  readonly baseline: () => void;
}

const NOT_IMPLEMENTED = NTSTATUS.STATUS_NOT_IMPLEMENTED | 0;
/** The made-up handle of the connection port and of the one connection. */
const HANDLE = new BigUint64Array([0x1f4n]);
const CONTEXT_ONE = new BigUint64Array([1n]);
const CLIENT = { process: 4242, thread: 4343 };

/** The canned request: `payload` bytes of 0x5A from the made-up client. */
function cannedRequest(payload: number, max: number): Uint8Array<ArrayBuffer> {
  return writePortMessage({
    data: new Uint8Array(payload).fill(0x5a),
    type: LpcMessageType.LPC_REQUEST,
    clientId: CLIENT,
    messageId: 7,
  }, { max, ceiling: 0xffff });
}

/** A TotalLength out of a message, without a DataView. */
function totalLength(message: Uint8Array): number {
  return message[2]! | (message[3]! << 8);
}

/** The connection port a server over a stand-in is made on: the made-up handle; closing it does nothing. */
export function standInPort(): NtHandle<"connection-port"> {
  return new NtHandle("connection-port", HANDLE[0]!, "stand-in port", () => 0);
}

function notImplemented(): number {
  return NOT_IMPLEMENTED;
}

/** Counts a reply the server sent (`null`: none with this call). */
function countReply(stats: StandInStats, reply: unknown): void {
  if (reply === null) return;
  stats.replies++;
  stats.replyBytes += totalLength(reply as Uint8Array);
}

/**
 * The receive side of both stand-ins: the connection request on the first call, `request` on
 * every later one. True when it handed back the request.
 */
function cannedReceive(request: Uint8Array): (receive: unknown) => boolean {
  const connect = encodePortMessage({
    type: LpcMessageType.LPC_CONNECTION_REQUEST,
    clientId: CLIENT,
    messageId: 1,
  });
  let connected = false;
  return (receive) => {
    if (!connected) {
      connected = true;
      (receive as Uint8Array).set(connect);
      return false;
    }
    (receive as Uint8Array).set(request);
    return true;
  };
}

/**
 * The LPC stand-in: `NtReplyWaitReceivePortEx` counts the reply, then hands back the connection
 * request (first call) or the canned request of `payload` bytes on PortContext 1.
 *
 * @param payload the request's DataLength
 * @param maxTotalLength the port's message limit (the server's `maxMessageLength`)
 */
export function lpcStandIn(payload: number, maxTotalLength = 648): StandIn<LpcSymbols> {
  const stats: StandInStats = { replies: 0, replyBytes: 0 };
  const request = cannedRequest(payload, maxTotalLength);
  const receiveNext = cannedReceive(request);
  const replyWaitReceive = (
    _port: unknown,
    context: unknown,
    reply: unknown,
    receive: unknown,
    _timeout: unknown,
  ): number => {
    countReply(stats, reply);
    if (receiveNext(receive)) (context as BigUint64Array).set(CONTEXT_ONE);
    return 0;
  };
  const nt = {
    NtCreatePort: (cell: unknown) => ((cell as BigUint64Array).set(HANDLE), 0),
    NtConnectPort: notImplemented,
    NtAcceptConnectPort: (cell: unknown) => ((cell as BigUint64Array).set(HANDLE), 0),
    NtCompleteConnectPort: () => 0,
    NtReplyWaitReceivePortEx: replyWaitReceive,
    NtRequestWaitReplyPort: notImplemented,
    NtRequestPort: notImplemented,
    NtReplyPort: notImplemented,
    NtImpersonateClientOfPort: notImplemented,
    NtRegisterThreadTerminatePort: notImplemented,
    NtSetInformationThread: notImplemented,
    NtOpenThreadToken: notImplemented,
    NtClose: () => 0,
  } as unknown as LpcSymbols;
  const context = new BigUint64Array(1);
  const receive = new Uint8Array(0x2b0);
  const reply = request.slice();
  const timeout = new BigInt64Array([-1000000n]);
  return {
    nt,
    stats,
    baseline: () => {
      replyWaitReceive(null, context, reply, receive, timeout);
    },
  };
}

/**
 * The ALPC stand-in: `NtAlpcSendWaitReceivePort` counts a sent reply; a receive hands back the
 * connection request (first call) or the canned request of `payload` bytes with a valid context
 * attribute of PortContext 1.
 *
 * @param payload the request's DataLength
 * @param maxTotalLength the port's `maxMessageLength`
 */
export function alpcStandIn(payload: number, maxTotalLength = 0x1000): StandIn<AlpcSymbols> {
  const stats: StandInStats = { replies: 0, replyBytes: 0 };
  const request = cannedRequest(payload, maxTotalLength);
  const receiveNext = cannedReceive(request);
  const attributes = new MessageAttributes(ALPC_SERVER_RECEIVE_ATTRIBUTES);
  attributes.setContext({ portContext: 1n, sequence: 1, messageId: 7 });
  const cannedAttributes = attributes.buffer;
  const sendWaitReceive = (
    _port: unknown,
    _flags: unknown,
    send: unknown,
    _sendAttributes: unknown,
    receive: unknown,
    _length: unknown,
    receiveAttributes: unknown,
    _timeout: unknown,
  ): number => {
    countReply(stats, send);
    if (receive === null) return 0;
    if (receiveNext(receive)) (receiveAttributes as Uint8Array).set(cannedAttributes);
    return 0;
  };
  const nt = {
    NtAlpcCreatePort: (cell: unknown) => ((cell as BigUint64Array).set(HANDLE), 0),
    NtAlpcConnectPort: notImplemented,
    NtAlpcAcceptConnectPort: (cell: unknown) => ((cell as BigUint64Array).set(HANDLE), 0),
    NtAlpcSendWaitReceivePort: sendWaitReceive,
    NtAlpcDisconnectPort: notImplemented,
    NtAlpcQueryInformation: notImplemented,
    NtAlpcImpersonateClientOfPort: notImplemented,
    NtAlpcCreatePortSection: notImplemented,
    NtAlpcDeletePortSection: notImplemented,
    NtAlpcCreateSectionView: notImplemented,
    NtAlpcDeleteSectionView: notImplemented,
    NtAlpcCreateSecurityContext: notImplemented,
    NtAlpcDeleteSecurityContext: notImplemented,
    NtRegisterThreadTerminatePort: notImplemented,
    NtSetInformationThread: notImplemented,
    NtOpenThreadToken: notImplemented,
    NtClose: () => 0,
  } as unknown as AlpcSymbols;
  const receive = new Uint8Array(maxTotalLength);
  const length = new BigUint64Array([BigInt(maxTotalLength)]);
  const receiveAttributes = new Uint8Array(cannedAttributes.byteLength);
  const reply = request.slice();
  const timeout = new BigInt64Array([-1000000n]);
  return {
    nt,
    stats,
    baseline: () => {
      sendWaitReceive(null, 0, null, null, receive, length, receiveAttributes, timeout);
      sendWaitReceive(null, 0x10000, reply, null, null, null, null, null);
    },
  };
}
