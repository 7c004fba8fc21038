/**
 * The benchmark server's handler module (loaded by ServerWorker / AlpcServerWorker on the
 * server's thread): the allocation-free `requestInto` path, the same work as the C server of
 * native/bench_c.c. Inline: the reply echoes the request's payload. View: the request's first 4
 * bytes are a length; that many bytes are copied out of the view (LPC: the connection's port view;
 * ALPC: the view the message carried, which the server then releases) and the 8-byte request is
 * echoed.
 *
 * @module
 */

/** What the host passes (`handlerOptions`). */
export interface BenchHandlerOptions {
  /** The rows through a view, not inline. */
  view: boolean;
}

/** What either server's request offers the handler (LPC's connection view, ALPC's message view). */
interface BenchRequest {
  data: Uint8Array;
  view?: { read(offset: number, length: number): Uint8Array };
  connection: { view?: { read(offset: number, length: number): Uint8Array } | null };
}

/** The handler: `requestInto` only. */
export function createHandler(options: unknown): {
  requestInto(req: BenchRequest, reply: Uint8Array): number;
} {
  const { view } = options as BenchHandlerOptions;
  return {
    requestInto(req, reply) {
      const data = req.data;
      if (view) {
        const length = data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24);
        const from = req.view ?? req.connection.view;
        if (!from) throw new Error("a view request without a view");
        from.read(0, length >>> 0); // the copy out of the view: the work C does with memcpy
      }
      reply.set(data);
      return data.byteLength;
    },
  };
}
