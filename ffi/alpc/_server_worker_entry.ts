/**
 * Worker entry: owns one OS thread for an ALPC server. Everything thread-bound (the handler
 * module's `prepare`; receive, accept, reply, impersonate, revert, view releases) runs
 * synchronously here. Started by `server_worker.ts`; never imported directly.
 *
 * Messages in: one `init`. Messages out: `ready`, `event` (each timeline event), `error`,
 * `stopped`.
 *
 * @module
 */

import { kernel32 } from "../kernel32.ts";
import { SecurityDescriptor } from "../nt/object_attributes.ts";
import { serializeError } from "../_errors_wire.ts";
import { guardMailbox, serviceMailbox } from "../_mailbox.ts";
import { workerScope } from "../_worker_scope.ts";
import { type AlpcPortAttributes, createAlpcPort } from "./port.ts";
import { type AlpcHandler, AlpcServer } from "./server.ts";
import type { AlpcCommandContext } from "./server_worker.ts";

/** What the host sends to start the server. */
export interface AlpcServerInit {
  /** The port's name. */
  portName: string;
  /** Who may connect, as SDDL. */
  sddl?: string;
  /** The connection port's attributes. */
  portAttributes: AlpcPortAttributes;
  /** The module that exports `createHandler(options)` (and optionally `prepare`, `command`). */
  handlerModule: string;
  /** Options for that module (structured-cloneable). */
  handlerOptions: unknown;
  /** A 4-byte shared flag: 1 = stop. */
  stop: SharedArrayBuffer;
  /** The command mailbox (`_mailbox.ts`). */
  control: SharedArrayBuffer;
  /** How often the stop flag is checked (the receive timeout), in ms. */
  pollMs: number;
}

interface HandlerModule {
  createHandler(options: unknown): AlpcHandler;
  prepare?(options: unknown): void;
  command?(request: unknown, ctx: AlpcCommandContext): unknown;
}

const scope = workerScope<AlpcServerInit>();
scope.onmessage = async (ev) => {
  const init = ev.data;
  guardMailbox(init.control);
  const stop = new Int32Array(init.stop);
  try {
    const mod = (await import(init.handlerModule)) as HandlerModule;
    // From here on, synchronous: this worker's thread is the server's thread.
    mod.prepare?.(init.handlerOptions);
    const handler = mod.createHandler(init.handlerOptions);
    let port;
    {
      using sd = init.sddl ? SecurityDescriptor.fromSddl(init.sddl) : undefined;
      port = createAlpcPort(init.portName, {
        ...init.portAttributes,
        ...(sd ? { securityDescriptor: sd } : {}),
      });
    }
    let made;
    try {
      made = new AlpcServer(port, handler, {
        portAttributes: init.portAttributes,
        onEvent: (event) => scope.postMessage({ kind: "event", event }),
      });
    } catch (e) {
      port.close(); // the server never owned it
      throw e;
    }
    using server = made;
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
