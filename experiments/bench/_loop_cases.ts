/**
 * The cases of the server-loop measure (experiments/bench/server_loop.ts): what each one serves
 * with (transport, handler path, payload), and {@link openCase}, which opens one against the
 * zero-cost kernel of `_standin.ts`, its server past the one connection.
 *
 * @module
 */

import { AlpcServer, LpcServer } from "../../mod.ts";
import {
  ALPC_MESSAGE_LENGTH_LIMITS,
  LPC_LEGACY_MAX_MESSAGE_LENGTH,
  PORT_MESSAGE_HEADER_SIZE,
} from "../../raw.ts";
import {
  alpcStandIn,
  lpcStandIn,
  type StandIn,
  standInPort,
  type StandInStats,
} from "./_standin.ts";

/** The transports the loop is measured for. */
export type LoopTransport = "lpc" | "alpc";
/**
 * What serves each message: `baseline` the stand-in alone (no server), `requestInto` the
 * allocation-free handler path with `logRequests: false`, `request` the general path (a
 * `request()` handler returning its reply, every request and reply logged on the timeline),
 * `allocating` the `requestInto` path with a handler that keeps one small array per message (the
 * case the zero-allocation test must catch).
 */
export type LoopPath = "baseline" | "requestInto" | "request" | "allocating";

/** One measured case. */
export interface LoopCase {
  /** The transport. */
  transport: LoopTransport;
  /** The handler path. */
  path: LoopPath;
  /** The request's payload bytes (the reply echoes it). */
  payload: number;
}

/** The largest inline payload of each transport: LPC 648 - 40 (LpcLegacyMaxMessageLength), ALPC 0xFFFF - 40. */
export const LOOP_MAX_PAYLOAD: Record<LoopTransport, number> = {
  lpc: LPC_LEGACY_MAX_MESSAGE_LENGTH - PORT_MESSAGE_HEADER_SIZE,
  // AlpcpValidateAndSetPortAttributes.c: MaxMessageLength 0x28..0xFFFF; a message's DataLength + 40
  // must fit the 16-bit TotalLength (AlpcpValidateMessage.c).
  alpc: ALPC_MESSAGE_LENGTH_LIMITS.max - PORT_MESSAGE_HEADER_SIZE,
};

/**
 * The ALPC port's MaxMessageLength for an inline payload: 0x1000, or the most a port allows
 * ({@link ALPC_MESSAGE_LENGTH_LIMITS}) when the message does not fit in 0x1000 (bench_c.c picks the
 * same).
 */
export function alpcMaxMessageLength(payload: number): number {
  return payload + PORT_MESSAGE_HEADER_SIZE > 0x1000 ? ALPC_MESSAGE_LENGTH_LIMITS.max : 0x1000;
}

/** The payloads of the inline rows (the loop's and the transport table's): 0, 256 and the maximum. */
export function loopPayloads(transport: LoopTransport): number[] {
  return [0, 256, LOOP_MAX_PAYLOAD[transport]];
}

/** The cases `deno task bench` measures on Linux: per transport and payload, baseline, requestInto, request. */
export function defaultLoopCases(): LoopCase[] {
  const out: LoopCase[] = [];
  for (const transport of ["lpc", "alpc"] as const) {
    for (const payload of loopPayloads(transport)) {
      for (const path of ["baseline", "requestInto", "request"] as const) {
        out.push({ transport, path, payload });
      }
    }
  }
  return out;
}

/** A case, opened: one message per `step()`. */
export interface Stepper extends Disposable {
  step(): void;
  stats: StandInStats;
}

/** Where the allocating handler keeps its array (so no compiler can drop the allocation). */
export let allocationSink: unknown = null;

const echo = {
  request: ({ data }: { data: Uint8Array }) => data,
  requestInto: ({ data }: { data: Uint8Array }, reply: Uint8Array): number => {
    reply.set(data);
    return data.byteLength;
  },
  allocating: ({ data }: { data: Uint8Array }, reply: Uint8Array): number => {
    allocationSink = [data.byteLength];
    reply.set(data);
    return data.byteLength;
  },
};

function handlerFor(path: LoopPath) {
  if (path === "request") return { request: echo.request };
  return { requestInto: path === "allocating" ? echo.allocating : echo.requestInto };
}

/** A stand-in alone: its baseline per step. */
function baselineStepper(s: StandIn<unknown>): Stepper {
  return { step: s.baseline, stats: s.stats, [Symbol.dispose]() {} };
}

/** A server over a stand-in, past the stand-in's one connection. */
function serverStepper(server: LpcServer | AlpcServer, stats: StandInStats): Stepper {
  server.step(100); // the connection
  return {
    step: () => void server.step(100),
    stats,
    [Symbol.dispose]: () => server[Symbol.dispose](),
  };
}

/** Opens a case; its server (if any) has accepted the stand-in's one connection. */
export function openCase(c: LoopCase): Stepper {
  const logRequests = c.path === "request";
  if (c.transport === "lpc") {
    const s = lpcStandIn(c.payload);
    if (c.path === "baseline") return baselineStepper(s);
    const server = new LpcServer(standInPort(), handlerFor(c.path), {
      nt: s.nt,
      maxMessageLength: LPC_LEGACY_MAX_MESSAGE_LENGTH,
      logRequests,
    });
    return serverStepper(server, s.stats);
  }
  const maxMessageLength = alpcMaxMessageLength(c.payload);
  const s = alpcStandIn(c.payload, maxMessageLength);
  if (c.path === "baseline") return baselineStepper(s);
  const server = new AlpcServer(standInPort(), handlerFor(c.path), {
    nt: s.nt,
    portAttributes: { maxMessageLength },
    logRequests,
  });
  return serverStepper(server, s.stats);
}
