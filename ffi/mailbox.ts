/**
 * A one-slot command mailbox in a `SharedArrayBuffer`, for Workers that run a synchronous loop
 * on their own thread (the LPC server, the debugger) and so cannot take `postMessage` while they
 * work. The host writes a JSON request and waits without blocking its event loop; the Worker
 * checks the slot between two iterations, runs the command **on its thread** and writes the reply.
 *
 * Layout: Int32 state (0 idle, 1 request written, 2 reply written), Int32 length, then the text.
 *
 * @module
 */

import { deserializeError, type SerializedError, serializeError } from "./errors_wire.ts";

/** Offsets and size of the mailbox. */
export const MAILBOX = { state: 0, length: 1, textOffset: 8, size: 64 * 1024 } as const;

/** Allocates a mailbox. */
export function createMailbox(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAILBOX.size);
}

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

/**
 * Worker side: if a request is waiting, runs `handle` on it and writes the reply (or the error).
 * Returns true when it handled one.
 */
export function serviceMailbox(
  box: SharedArrayBuffer,
  handle: (request: unknown) => unknown,
): boolean {
  const ints = new Int32Array(box, 0, 2);
  if (Atomics.load(ints, MAILBOX.state) !== 1) return false;
  const text = new Uint8Array(box, MAILBOX.textOffset);
  let reply: { ok: unknown } | { error: SerializedError };
  try {
    reply = {
      ok: handle(
        JSON.parse(new TextDecoder().decode(text.slice(0, Atomics.load(ints, MAILBOX.length)))),
      ) ?? null,
    };
  } catch (e) {
    reply = { error: serializeError(e) };
  }
  const bytes = new TextEncoder().encode(json(reply));
  text.set(bytes.subarray(0, text.byteLength));
  Atomics.store(ints, MAILBOX.length, Math.min(bytes.byteLength, text.byteLength));
  Atomics.store(ints, MAILBOX.state, 2);
  Atomics.notify(ints, MAILBOX.state);
  return true;
}

/**
 * Host side: writes `request`, waits (asynchronously) for the reply, returns it or rejects with
 * the Worker's error. `failed()` is polled so a Worker that died does not leave us waiting.
 */
export async function callMailbox(
  box: SharedArrayBuffer,
  request: unknown,
  options: { timeoutMs?: number; failed?: () => Error | undefined } = {},
): Promise<unknown> {
  const ints = new Int32Array(box, 0, 2);
  if (Atomics.load(ints, MAILBOX.state) !== 0) throw new Error("a command is already running");
  const text = new Uint8Array(box, MAILBOX.textOffset);
  const bytes = new TextEncoder().encode(json(request));
  if (bytes.byteLength > text.byteLength) throw new RangeError("command too large");
  text.set(bytes);
  Atomics.store(ints, MAILBOX.length, bytes.byteLength);
  Atomics.store(ints, MAILBOX.state, 1);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Atomics.load(ints, MAILBOX.state) !== 2) {
    const failure = options.failed?.();
    if (Date.now() > deadline || failure) {
      Atomics.store(ints, MAILBOX.state, 0);
      throw failure ?? new Error("the worker did not run the command in time");
    }
    const w = Atomics.waitAsync(ints, MAILBOX.state, 1, 200);
    if (w.async) await w.value;
  }
  const reply = JSON.parse(
    new TextDecoder().decode(text.slice(0, Atomics.load(ints, MAILBOX.length))),
  );
  Atomics.store(ints, MAILBOX.state, 0);
  if (reply.error) throw deserializeError(reply.error);
  return reply.ok;
}
