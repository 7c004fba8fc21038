/**
 * A handler module for the legacy view tests on Windows (ServerWorker loads it on the server's
 * thread): a request `offset u32 | length u32` reads that range of the client's port view, writes
 * it back inverted in place, and replies with the bytes' sum.
 *
 * @module
 */

import type { LpcHandler } from "../../../mod.ts";

/** The handler. */
export function createHandler(): LpcHandler {
  return {
    request: ({ data, connection }) => {
      const view = connection.view;
      if (!view) return new TextEncoder().encode("no view");
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const offset = dv.getUint32(0, true);
      const bytes = view.read(offset, dv.getUint32(4, true));
      view.write(offset, bytes.map((b) => b ^ 0xff));
      const out = new Uint8Array(8);
      new DataView(out.buffer).setUint32(0, bytes.reduce((a, b) => a + b, 0), true);
      new DataView(out.buffer).setUint32(4, view.size, true);
      return out;
    },
  };
}
