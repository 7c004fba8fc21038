/**
 * Worker entry: owns one OS thread for an LPC server. Everything thread-bound (the handler module's
 * `prepare`, e.g. impersonating SYSTEM; receive, reply, impersonate, revert) runs synchronously
 * here. Started by `lpc_server_host.ts`; never imported directly.
 *
 * Messages in: one `init`. Messages out: `ready`, `event` (each timeline event), `error`,
 * `stopped`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { kernel32 } from "./kernel32.ts";
import { createConnectionPort, type LpcHandler, LpcServer } from "./lpc.ts";
import { SecurityDescriptor } from "./objects.ts";
import { NtError, UnsupportedError } from "./status.ts";

/** What the host sends to start the server. */
export interface ServerInit {
  /** The port's name (e.g. `\RPC Control\deno-lpc-exp1-1234`). */
  portName: string;
  /** Who may connect, as SDDL. */
  sddl?: string;
  /** The port's maximum message length. */
  maxMessageLength: number;
  /** The module that exports `createHandler(options)` (and optionally `prepare(options)`). */
  handlerModule: string;
  /** Options for that module (structured-cloneable). */
  handlerOptions: unknown;
  /** A 4-byte shared flag: 1 = stop. */
  stop: SharedArrayBuffer;
  /** The command mailbox (see {@link MAILBOX}). */
  control: SharedArrayBuffer;
  /** How often the stop flag is checked (the receive timeout), in ms. */
  pollMs: number;
}

/** An error crossing the thread boundary. */
export interface SerializedError {
  /** `NtError`, `UnsupportedError` or another error name. */
  name: string;
  /** The message. */
  message: string;
  /** For `NtError`: the call, the code, its kind and context. */
  nt?: { call: string; code: number; kind: "ntstatus" | "win32"; context?: string };
}

/** Turns an error into something `postMessage` can carry. */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof NtError) {
    return {
      name: e.name,
      message: e.message,
      nt: {
        call: e.call,
        code: e.code,
        kind: e.kind,
        ...(e.context !== undefined ? { context: e.context } : {}),
      },
    };
  }
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: "Error", message: String(e) };
}

/** Rebuilds an error serialized by {@link serializeError}. */
export function deserializeError(s: SerializedError): Error {
  if (s.nt) return new NtError(s.nt.call, s.nt.code, s.nt.kind, s.nt.context);
  if (s.name === "UnsupportedError") return new UnsupportedError(s.message);
  const e = new Error(s.message);
  e.name = s.name;
  return e;
}

/**
 * The command mailbox: an Int32 state (0 idle, 1 request written, 2 reply written), an Int32
 * length, then the JSON text. The host writes a request; the server thread runs it between two
 * receives (so thread-bound work, such as setting an exception port while impersonating SYSTEM,
 * happens on the server's thread) and writes the reply.
 */
export const MAILBOX = { state: 0, length: 1, textOffset: 8, size: 64 * 1024 } as const;

/** What a handler module's `command` receives besides the request. */
export interface CommandContext {
  /** The server (its connection port, its connections). */
  server: LpcServer;
}

interface HandlerModule {
  createHandler(options: unknown): LpcHandler;
  prepare?(options: unknown): void;
  command?(request: unknown, ctx: CommandContext): unknown;
}

function serviceCommand(control: SharedArrayBuffer, mod: HandlerModule, server: LpcServer): void {
  const ints = new Int32Array(control, 0, 2);
  if (Atomics.load(ints, MAILBOX.state) !== 1) return;
  const text = new Uint8Array(control, MAILBOX.textOffset);
  let reply: unknown;
  try {
    const request = JSON.parse(
      new TextDecoder().decode(text.slice(0, Atomics.load(ints, MAILBOX.length))),
    );
    if (!mod.command) throw new Error("this handler module takes no commands");
    reply = { ok: mod.command(request, { server }) ?? null };
  } catch (e) {
    reply = { error: serializeError(e) };
  }
  const bytes = new TextEncoder().encode(
    JSON.stringify(reply, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
  );
  text.set(bytes.subarray(0, text.byteLength));
  Atomics.store(ints, MAILBOX.length, Math.min(bytes.byteLength, text.byteLength));
  Atomics.store(ints, MAILBOX.state, 2);
  Atomics.notify(ints, MAILBOX.state);
}

self.onmessage = async (ev: MessageEvent<ServerInit>) => {
  const init = ev.data;
  const stop = new Int32Array(init.stop);
  try {
    const mod = (await import(init.handlerModule)) as HandlerModule;
    // From here on, synchronous: this worker's thread is the server's thread.
    mod.prepare?.(init.handlerOptions);
    const handler = mod.createHandler(init.handlerOptions);
    let port;
    {
      using sd = init.sddl ? SecurityDescriptor.fromSddl(init.sddl) : undefined;
      port = createConnectionPort(init.portName, {
        maxMessageLength: init.maxMessageLength,
        ...(sd ? { securityDescriptor: sd } : {}),
      });
    }
    using server = new LpcServer(port, handler, {
      maxMessageLength: init.maxMessageLength,
      onEvent: (event) => self.postMessage({ kind: "event", event }),
    });
    self.postMessage({
      kind: "ready",
      tid: kernel32().GetCurrentThreadId(),
      pid: kernel32().GetCurrentProcessId(),
    });
    while (Atomics.load(stop, 0) !== 1) {
      server.step(init.pollMs);
      serviceCommand(init.control, mod, server);
    }
  } catch (e) {
    self.postMessage({ kind: "error", error: serializeError(e) });
  } finally {
    self.postMessage({ kind: "stopped" });
  }
};
