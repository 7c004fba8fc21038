/**
 * The two ALPC queries of the port graph, until the library has them (issue 15, HL: ffi/alpc/):
 * each throws, so the graph falls back to handle duplication and reports why.
 *
 * @module
 */

import type { NtHandle } from "../../mod.ts";
import type { ServerInformation, ServerSession } from "./port_graph.ts";

const MISSING = "not in this build of the library (awaiting ffi/alpc)";

/** `AlpcServerSessionInformation` on a port (class 12). */
export function queryServerSession(_port: NtHandle<"port">): ServerSession {
  throw new Error(MISSING);
}

/** `AlpcServerInformation` on a thread (class 4). */
export function queryServerInformation(_thread: NtHandle<"thread">): ServerInformation {
  throw new Error(MISSING);
}
