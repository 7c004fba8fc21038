/**
 * The transport benchmark (Windows): request/reply round trips for legacy LPC and ALPC, inline
 * messages of 0, 256 and the largest payload, and 64 KiB / 1 MiB through views, each done twice
 * in one run: by the toolkit (the server in a ServerWorker / AlpcServerWorker, one dedicated
 * Worker thread, with the allocation-free `requestInto` handler of `_bench_handler.ts` and
 * `logRequests: false`; the client on the main thread, connected with LpcClient / AlpcClient and
 * sending through the ntdll symbols with buffers made once), and by the C program of
 * native/bench_c.c (server thread and client in one process), built here with MinGW gcc into a
 * temporary folder that is removed afterwards. The ratio Deno / C per row; the goal (Deno within
 * 1.2x of C) is marked on the inline rows.
 *
 * @module
 */

import {
  AlpcClient,
  AlpcServerWorker,
  LpcClient,
  ServerWorker,
  unavailable,
  UnsupportedError,
} from "../../mod.ts";
import {
  AlpcMessageFlags,
  check,
  LAYOUTS,
  LPC_LEGACY_MAX_MESSAGE_LENGTH,
  MessageAttributes,
  ntdll,
} from "../../raw.ts";
import { runPortName } from "../_setup.ts";
import type { Log } from "../_runner.ts";
import type { BenchHandlerOptions } from "./_bench_handler.ts";
import { buildC, cRow, type CSide, side } from "./native_bench.ts";
import { alpcMaxMessageLength, loopPayloads } from "./_loop_cases.ts";

const PM = LAYOUTS.PORT_MESSAGE;

/** The goal: Deno within this factor of C on every inline row. */
export const GOAL_RATIO = 1.2;

/** One row's shape. */
export interface TransportCase {
  /** `lpc` or `alpc`. */
  transport: "lpc" | "alpc";
  /** Inline payload, or through a view. */
  kind: "inline" | "view";
  /** Payload bytes (inline) or bytes written to and read from the view. */
  bytes: number;
}

/** A side's measurement. */
export interface SideResult {
  /** Nanoseconds per round trip. */
  nsPerRoundTrip: number;
  /** Round trips per second. */
  roundTripsPerSecond: number;
  /** Payload megabytes (10^6) per second, one way. */
  mbPerSecond: number;
}

/** One row of the table. */
export interface TransportRow extends TransportCase {
  /** Round trips measured (after the warm-up). */
  roundTrips: number;
  /** The toolkit's, or why not. */
  deno: SideResult | { error: string };
  /** The C program's, or why not. */
  c: SideResult | { error: string } | null;
  /** Deno / C (null without both). */
  ratio: number | null;
  /** Inline rows: whether Deno is within {@link GOAL_RATIO} of C (null: no ratio, or a view row). */
  goalMet: boolean | null;
}

/** Every row, in table order. */
export function transportCases(): TransportCase[] {
  const out: TransportCase[] = [];
  for (const transport of ["lpc", "alpc"] as const) {
    for (const bytes of loopPayloads(transport)) {
      out.push({ transport, kind: "inline", bytes });
    }
    for (const bytes of [64 * 1024, 1024 * 1024]) out.push({ transport, kind: "view", bytes });
  }
  return out;
}

/** The ALPC ports' section and view limits (bench_c.c's alpc_port_attributes: the same). */
const SECTION_LIMIT = 0x1000_0000;

/** The ALPC port's message limit for a row (the C program picks the same). */
function alpcMaxMessage(c: TransportCase): number {
  return alpcMaxMessageLength(c.kind === "inline" ? c.bytes : 0);
}

/** A message header (DataLength, TotalLength) written into a reused buffer, as the C client does. */
function resetHeader(dv: DataView, message: Uint8Array, dataLength: number): void {
  message.fill(0, 0, PM.size);
  dv.setUint16(PM.offsets.DataLength, dataLength, true);
  dv.setUint16(PM.offsets.TotalLength, PM.size + dataLength, true);
}

/** The toolkit's side of one row. */
async function denoRow(c: TransportCase, trips: number, warmup: number): Promise<SideResult> {
  const portName = runPortName(`bench-${c.transport}`);
  const handlerModule = new URL("./_bench_handler.ts", import.meta.url);
  const handlerOptions: BenchHandlerOptions = { view: c.kind === "view" };
  const dataLength = c.kind === "view" ? 8 : c.bytes;
  const src = new Uint8Array(c.bytes).fill(0x5a);
  const nt = ntdll();
  if (c.transport === "lpc") {
    await using _server = await ServerWorker.start({
      portName,
      handlerModule,
      handlerOptions,
      maxMessageLength: LPC_LEGACY_MAX_MESSAGE_LENGTH,
      logRequests: false,
    });
    using client = LpcClient.connect(
      portName,
      c.kind === "view" ? { view: { size: c.bytes } } : {},
    );
    const message = new Uint8Array(LPC_LEGACY_MAX_MESSAGE_LENGTH);
    const dv = new DataView(message.buffer);
    const reply = new Uint8Array(0x2b0);
    const port = client.port.unsafePointer;
    let t0 = 0;
    for (let i = 0; i < warmup + trips; i++) {
      if (i === warmup) t0 = performance.now();
      resetHeader(dv, message, dataLength);
      if (client.view) {
        client.view.write(0, src);
        dv.setUint32(PM.size, c.bytes, true);
      } else message.set(src, PM.size);
      check(nt.NtRequestWaitReplyPort(port, message, reply), "NtRequestWaitReplyPort");
    }
    return side(((performance.now() - t0) * 1e6) / trips, c.bytes);
  }
  const maxMessageLength = alpcMaxMessage(c);
  // The section limits the C program sets too (the defaults, 0x4000 and 0x20000, refuse 1 MiB).
  const portAttributes = {
    maxMessageLength,
    maxSectionSize: SECTION_LIMIT,
    maxViewSize: SECTION_LIMIT,
    maxTotalSectionSize: SECTION_LIMIT,
  };
  await using _server = await AlpcServerWorker.start({
    portName,
    handlerModule,
    handlerOptions,
    portAttributes,
    logRequests: false,
  });
  using client = AlpcClient.connect(portName, { portAttributes });
  const view = c.kind === "view" ? client.createView(c.bytes) : null;
  const attrs = view ? new MessageAttributes(["VIEW"]) : null;
  const send = nt.NtAlpcSendWaitReceivePort;
  if (!send) throw new UnsupportedError("this ntdll lacks ntdll!NtAlpcSendWaitReceivePort");
  const message = new Uint8Array(maxMessageLength);
  const dv = new DataView(message.buffer);
  const reply = new Uint8Array(maxMessageLength);
  const length = new BigUint64Array(1);
  const lengthWords = new Uint32Array(length.buffer);
  const port = client.port.unsafePointer;
  let t0 = 0;
  for (let i = 0; i < warmup + trips; i++) {
    if (i === warmup) t0 = performance.now();
    resetHeader(dv, message, dataLength);
    if (view && attrs) {
      view.write(src);
      dv.setUint32(PM.size, c.bytes, true);
      attrs.reset();
      attrs.setView(view.attribute);
    } else message.set(src, PM.size);
    lengthWords[0] = maxMessageLength;
    lengthWords[1] = 0;
    const status = send(
      port,
      AlpcMessageFlags.SYNC_REQUEST,
      message,
      attrs?.buffer ?? null,
      reply,
      length,
      null,
      null,
    );
    check(status, "NtAlpcSendWaitReceivePort", "benchmark request");
  }
  return side(((performance.now() - t0) * 1e6) / trips, c.bytes);
}

/** The transport part's document. */
export type TransportPart =
  | { ran: false; reason: string }
  | {
    ran: true;
    server: string;
    client: string;
    c: CSide;
    goal: string;
    rows: TransportRow[];
  };

/** Why the transport part cannot run here (no LPC and no ALPC), or null. */
export function transportUnavailableHere(): string | null {
  const lpc = unavailable("lpc");
  const alpc = unavailable("alpc");
  return lpc !== null && alpc !== null ? `LPC: ${lpc}; ALPC: ${alpc}` : null;
}

/**
 * Runs every row the system has (a transport it lacks is left out, with its reason in each of its
 * rows), Deno then C, and removes the built C program.
 */
export async function runTransportBench(
  o: { roundTrips: number; log: Log },
): Promise<TransportPart> {
  const whyNot = transportUnavailableHere();
  if (whyNot) return { ran: false, reason: whyNot };
  const warmup = Math.max(100, Math.round(o.roundTrips / 10));
  const tmp = await Deno.makeTempDir({ prefix: "deno-lpc-bench-" });
  try {
    const { side: cside, exe } = await buildC(tmp);
    const rows: TransportRow[] = [];
    for (const c of transportCases()) {
      const missing = unavailable(c.transport);
      o.log(`bench: ${c.transport} ${c.kind} ${c.bytes} B`);
      let deno: TransportRow["deno"];
      if (missing) deno = { error: missing };
      else {
        try {
          deno = await denoRow(c, o.roundTrips, warmup);
        } catch (e) {
          deno = { error: e instanceof Error ? e.message : String(e) };
        }
      }
      const cr = cside.ran ? await cRow(exe, c, o.roundTrips, warmup) : null;
      const ratio = "nsPerRoundTrip" in deno && cr && "nsPerRoundTrip" in cr
        ? Math.round((deno.nsPerRoundTrip / cr.nsPerRoundTrip) * 100) / 100
        : null;
      rows.push({
        ...c,
        roundTrips: o.roundTrips,
        deno,
        c: cr,
        ratio,
        goalMet: c.kind === "inline" && ratio !== null ? ratio <= GOAL_RATIO : null,
      });
    }
    return {
      ran: true,
      server:
        "ServerWorker / AlpcServerWorker (one dedicated Worker thread), requestInto handler, logRequests: false",
      client:
        "main thread: LpcClient / AlpcClient connection, requests through ntdll with buffers made once",
      c: cside,
      goal: `Deno within ${GOAL_RATIO}x of C on every inline row`,
      rows,
    };
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
