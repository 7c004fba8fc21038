/**
 * Experiment 1's server logic, loaded by the LPC server Worker (`ffi/lpc_server_worker.ts`) and run
 * on its thread: each READ request is checked against the root, then the file is read **as the
 * server** (the deliberate confused deputy), or, in safe mode, while impersonating the client.
 *
 * @module
 */

import { readFileRange } from "../ffi/files.ts";
import type { LpcHandler } from "../ffi/lpc.ts";
import { decodeReadReply, serveRead } from "./exp1_protocol.ts";

/** The handler's options (sent to the Worker). */
export interface Exp1HandlerOptions {
  /** The only folder the server reads from. */
  root: string;
  /** Safe mode: impersonate the client (`NtImpersonateClientOfPort`) before opening the file. */
  impersonate: boolean;
}

/** Builds the handler (called on the server's thread). */
export function createHandler(options: Exp1HandlerOptions): LpcHandler {
  return {
    request: (req) => {
      const data = serveRead(req.data, {
        root: options.root,
        read: readFileRange,
        ...(options.impersonate ? { impersonate: req.impersonate } : {}),
      });
      const reply = decodeReadReply(data);
      return {
        data,
        note: `${reply.statusName ?? reply.status}${reply.reason ? `: ${reply.reason}` : ""}`,
      };
    },
  };
}
