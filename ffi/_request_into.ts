/**
 * The one call of a `requestInto` handler that both servers (`LpcServer`, `AlpcServer`) make on
 * their allocation-free path: the handler writes its reply payload into `reply` and returns its
 * length; a throw, or a length that is not an integer in `0..reply.byteLength`, is reported
 * through `onError` and becomes an empty reply. Nothing here allocates unless it reports.
 *
 * @module
 */

import type { PortMessageHeaderView } from "./port_message.ts";

/**
 * The connection of a message the allocation-free path takes: `connection` (the one its
 * PortContext names) when the message is a well-formed `LPC_REQUEST`
 * ({@link PortMessageHeaderView.isWellFormedRequest}); undefined for any other message (the general
 * path takes it, malformed ones included).
 *
 * @param header the receive buffer's header view
 * @param connection the connection the message's PortContext names (undefined: none)
 */
export function requestIntoConnection<C>(
  header: PortMessageHeaderView,
  connection: C | undefined,
): C | undefined {
  return connection !== undefined && header.isWellFormedRequest() ? connection : undefined;
}

/**
 * Calls `into` on `handler` and returns the reply's payload length (0 after an error).
 *
 * @param handler the handler object (`this` of the call)
 * @param into its `requestInto` method
 * @param req the reused request object
 * @param reply the reply payload buffer the handler writes into
 * @param onError told what went wrong (made once per server, not per message)
 */
export function callRequestInto<H, Q>(
  handler: H,
  into: (this: H, req: Q, reply: Uint8Array) => number,
  req: Q,
  reply: Uint8Array,
  onError: (note: string) => void,
): number {
  let length: number;
  try {
    length = into.call(handler, req, reply);
  } catch (e) {
    onError(e instanceof Error ? e.message : String(e));
    return 0;
  }
  if (!Number.isInteger(length) || length < 0 || length > reply.byteLength) {
    onError(`requestInto returned ${length}, not a length in 0..${reply.byteLength}`);
    return 0;
  }
  return length;
}
