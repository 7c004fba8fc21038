/**
 * A handler module for the ALPC server Worker tests: echoes a request, or returns the first bytes
 * of the view it carried; `whoami` answers the user SID of the thread's token while impersonating
 * the sender (an empty reply when impersonation is refused).
 *
 * @module
 */

import type { AlpcHandler } from "../../../ffi/alpc/server.ts";
import { Token } from "../../../ffi/nt/tokens.ts";

/** Builds the handler (on the server's thread). */
export function createHandler(): AlpcHandler {
  return {
    request: ({ data, view, impersonate }) => {
      if (view) return view.read(0, Math.min(view.size, 16));
      if (new TextDecoder().decode(data) !== "whoami") return data;
      try {
        return new TextEncoder().encode(impersonate(() => {
          using token = Token.openThread();
          return token?.user() ?? "";
        }));
      } catch {
        return new Uint8Array(0);
      }
    },
  };
}
