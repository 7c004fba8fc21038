/**
 * Worker entry: owns one OS thread for an LPC server. Everything thread-bound (the handler module's
 * `prepare`, e.g. impersonating SYSTEM; receive, reply, impersonate, revert) runs synchronously
 * here. Started by `server_worker.ts`; never imported directly. The loop, the handler module and
 * the messages are `../_server_thread.ts`'s (shared with the ALPC server's entry); this file opens
 * the LPC connection port and its {@link LpcServer}.
 *
 * @module
 */

import { createConnectionPort, type LpcHandler, LpcServer } from "./port.ts";
import { SecurityDescriptor } from "../nt/object_attributes.ts";
import { type ServerThreadInit, serveServerThread } from "../_server_thread.ts";

/** The LPC server's own init fields. */
export interface LpcServerInitFields {
  /** The port's maximum message length. */
  maxMessageLength: number;
  /** Log every request and reply on the timeline (`LpcServerOptions.logRequests`). */
  logRequests: boolean;
}

/** What the host sends to start the server. */
export type ServerInit = ServerThreadInit & LpcServerInitFields;

serveServerThread({
  port(init: ServerInit) {
    using sd = init.sddl ? SecurityDescriptor.fromSddl(init.sddl) : undefined;
    return createConnectionPort(init.portName, {
      maxMessageLength: init.maxMessageLength,
      ...(sd ? { securityDescriptor: sd } : {}),
    });
  },
  server: (port, handler: LpcHandler, init, onEvent) =>
    new LpcServer(port, handler, {
      maxMessageLength: init.maxMessageLength,
      logRequests: init.logRequests,
      onEvent,
    }),
});
