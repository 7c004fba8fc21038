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

import { kernel32 } from "../kernel32.ts";
import { createConnectionPort, type LpcHandler, LpcServer } from "./port.ts";
import { SecurityDescriptor } from "../nt/object_attributes.ts";
import { serializeError } from "../_errors_wire.ts";
import type { CommandContext } from "./server_worker.ts";
import { guardMailbox, serviceMailbox } from "../_mailbox.ts";
import { workerScope } from "../_worker_scope.ts";

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
  /** The command mailbox (`mailbox.ts`). */
  control: SharedArrayBuffer;
  /** How often the stop flag is checked (the receive timeout), in ms. */
  pollMs: number;
}

interface HandlerModule {
  createHandler(options: unknown): LpcHandler;
  prepare?(options: unknown): void;
  command?(request: unknown, ctx: CommandContext): unknown;
}

const scope = workerScope<ServerInit>();
scope.onmessage = async (ev) => {
  const init = ev.data;
  guardMailbox(init.control); // dying mid-command rejects the host's command (mailbox.ts)
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
      onEvent: (event) => scope.postMessage({ kind: "event", event }),
    });
    scope.postMessage({
      kind: "ready",
      tid: kernel32().GetCurrentThreadId(),
      pid: kernel32().GetCurrentProcessId(),
    });
    while (Atomics.load(stop, 0) !== 1) {
      server.step(init.pollMs);
      serviceMailbox(init.control, (request) => {
        if (!mod.command) throw new Error("this handler module takes no commands");
        return mod.command(request, { server });
      });
    }
  } catch (e) {
    scope.postMessage({ kind: "error", error: serializeError(e) });
  } finally {
    scope.postMessage({ kind: "stopped" });
  }
};
