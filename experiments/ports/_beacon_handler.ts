/**
 * The lab beacon's handler module (loaded by ServerWorker / AlpcServerWorker on the server's
 * thread): every request is answered with its own payload.
 *
 * @module
 */

/** The handler: the reply echoes the request. */
export function createHandler(): { request(req: { data: Uint8Array }): Uint8Array } {
  return { request: ({ data }) => data.slice() };
}
