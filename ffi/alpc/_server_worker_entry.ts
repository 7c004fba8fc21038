/**
 * Worker entry: owns one OS thread for an ALPC server. Everything thread-bound (the handler
 * module's `prepare`; receive, accept, reply, impersonate, revert, view releases) runs
 * synchronously here. Started by `server_worker.ts`; never imported directly. The loop, the
 * handler module and the messages are `../_server_thread.ts`'s (shared with the LPC server's
 * entry); this file opens the ALPC connection port and its {@link AlpcServer}.
 *
 * @module
 */

import { SecurityDescriptor } from "../nt/object_attributes.ts";
import { type ServerThreadInit, serveServerThread } from "../_server_thread.ts";
import { type AlpcPortAttributes, createAlpcPort } from "./port.ts";
import { type AlpcHandler, AlpcServer } from "./server.ts";

/** The ALPC server's own init fields. */
export interface AlpcServerInitFields {
  /** The connection port's attributes (also each accepted connection's). */
  portAttributes: AlpcPortAttributes;
  /** Log every request and reply on the timeline (`AlpcServerOptions.logRequests`). */
  logRequests: boolean;
}

/** What the host sends to start the server. */
export type AlpcServerInit = ServerThreadInit & AlpcServerInitFields;

serveServerThread({
  port(init: AlpcServerInit) {
    using sd = init.sddl ? SecurityDescriptor.fromSddl(init.sddl) : undefined;
    return createAlpcPort(init.portName, {
      ...init.portAttributes,
      ...(sd ? { securityDescriptor: sd } : {}),
    });
  },
  server: (port, handler: AlpcHandler, init, onEvent) =>
    new AlpcServer(port, handler, {
      portAttributes: init.portAttributes,
      logRequests: init.logRequests,
      onEvent,
    }),
});
