/**
 * Experiment 1's server logic, loaded by the LPC server Worker (`ffi/lpc/_server_worker_entry.ts`)
 * or the ALPC one (`ffi/alpc/_server_worker_entry.ts`) and run on its thread: the same handler
 * for both transports. For each READ request: the path's text is checked, the file is opened relative to
 * a handle on the root with `OBJ_DONT_REPARSE` **as the server** (the deliberate confused deputy)
 * or, in safe mode, while impersonating the client; then the final path of what was opened must
 * lie under the root's final path, and only then is it read (nt-semantics.md E13).
 *
 * @module
 */

import {
  type AlpcHandler,
  type LpcHandler,
  NtFile,
  type NtHandle,
  type ReceivedView,
} from "../../mod.ts";
import { decodeReadReply, type OpenedFile, serveRead } from "./exp1_protocol.ts";
import { portInfoOf } from "../_transport.ts";
import { isViewRequest, receivedWindow, serveViewRead, type ViewWindow } from "./exp1_view.ts";

/** The handler's options (sent to the Worker). */
export interface Exp1HandlerOptions {
  /** The only folder the server reads from. */
  root: string;
  /** Safe mode: impersonate the client (`NtImpersonateClientOfPort`) before opening the file. */
  impersonate: boolean;
}

function opened(file: NtFile): OpenedFile {
  return {
    finalPath: () => file.finalPath(),
    read: (offset, length) => file.readAt(offset, length),
    [Symbol.dispose]: () => file.close(),
  };
}

/**
 * Serves one READ or READ_VIEW request from `root` (Windows): opens the root (as the calling
 * thread, which must not be impersonating), then runs {@link serveRead} (or `serveViewRead`, into
 * the connection's `view`) with the real relative open, final path and read; `impersonate`, when
 * given, wraps only the open.
 */
export function serveFromRoot(
  root: string,
  request: Uint8Array,
  impersonate?: <T>(fn: () => T) => T,
  view: ViewWindow | null = null,
): Uint8Array<ArrayBuffer> {
  using dir = NtFile.openDirectory(root);
  const ctx = {
    rootFinalPath: () => dir.finalPath(),
    open: (relative: string) => opened(dir.openRelative(relative)),
    ...(impersonate ? { impersonate } : {}),
  };
  return isViewRequest(request)
    ? serveViewRead(request, { ...ctx, view })
    : serveRead(request, ctx);
}

/**
 * Builds the handler (called on the server's thread). The root is opened once here, so a missing
 * root fails the server's start, and again (as the server, never impersonated) for each request,
 * so no handle outlives a request.
 */
export function createHandler(options: Exp1HandlerOptions): LpcHandler & AlpcHandler {
  NtFile.openDirectory(options.root).close();
  return {
    // An LPC request and an ALPC one alike: the payload, and impersonation of its sender. READ_VIEW
    // writes into the legacy connection's port view, or into the view an ALPC request carried
    // (the server's own mapping of it, released by AlpcServer after the reply).
    request: (req: {
      data: Uint8Array;
      impersonate<T>(fn: () => T): T;
      connection: { view?: ViewWindow | null };
      view?: ReceivedView;
    }) => {
      const data = serveFromRoot(
        options.root,
        req.data,
        options.impersonate ? req.impersonate : undefined,
        req.connection.view ?? (req.view ? receivedWindow(req.view) : null),
      );
      const reply = decodeReadReply(data);
      return {
        data,
        note: `${reply.statusName ?? reply.status} (${reply.stage}${
          reply.impersonated ? ", impersonating" : ""
        }${reply.inView ? ", in the view" : ""})${reply.reason ? `: ${reply.reason}` : ""}`,
      };
    },
  };
}

/**
 * Commands from the host, run on the server's thread: `port-info`, what NtAlpcQueryInformation
 * shows of the connection port (`portInfoOf`).
 */
export function command(
  request: { op: string },
  ctx: { server: { port: NtHandle<"connection-port"> } },
): unknown {
  if (request.op === "port-info") return portInfoOf(ctx.server.port);
  throw new Error(`unknown command ${JSON.stringify(request)}`);
}
