/**
 * A one-slot command mailbox in a `SharedArrayBuffer`, for Workers that run a synchronous loop
 * on their own thread (the LPC server, the debugger) and so cannot take `postMessage` while they
 * work. The host writes a JSON request and waits without blocking its event loop; the Worker
 * checks the slot between two iterations, runs the command **on its thread** and writes the reply.
 *
 * Layout: Int32 state (0 idle, 1 request written, 2 reply written), Int32 length of the text,
 * Int32 death flag (0 alive, 1 being written, 2 the note is there), Int32 length of the note; the
 * death note (why the Worker can no longer answer, a serialized error) at `noteOffset`; the
 * request or reply text at `textOffset`.
 *
 * Two things keep a waiting host from hanging (nt-semantics E12):
 *
 * - A pending `Atomics.waitAsync` does not keep Deno's event loop alive: once the Worker is gone
 *   (and nothing else is pending) the host would end with "Top-level await promise never
 *   resolved". {@link callMailbox} holds a ref'd timer while it waits and clears it after.
 * - A Worker that dies in the middle of a command never writes its reply. The Worker's own
 *   {@link guardMailbox} writes a death note when it throws, rejects or calls `self.close()`;
 *   the host's {@link watchWorker} writes one when the Worker's `error` or `messageerror` event
 *   arrives. Either wakes the waiting command, which rejects with that error.
 *
 * @module
 */

import { deserializeError, type SerializedError, serializeError } from "./_errors_wire.ts";

/** Offsets (Int32 indexes, then bytes) and size of the mailbox. */
export const MAILBOX = {
  state: 0,
  length: 1,
  dead: 2,
  noteLength: 3,
  noteOffset: 16,
  noteSize: 4096,
  textOffset: 16 + 4096,
  size: 64 * 1024,
} as const;

/** Allocates a mailbox. */
export function createMailbox(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAILBOX.size);
}

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

const ints = (box: SharedArrayBuffer) => new Int32Array(box, 0, 4);

/**
 * Worker side: if a request is waiting, runs `handle` on it and writes the reply (or the error).
 * Returns true when it handled one.
 */
export function serviceMailbox(
  box: SharedArrayBuffer,
  handle: (request: unknown) => unknown,
): boolean {
  const i = ints(box);
  if (Atomics.load(i, MAILBOX.state) !== 1) return false;
  const text = new Uint8Array(box, MAILBOX.textOffset);
  let reply: { ok: unknown } | { error: SerializedError };
  try {
    reply = {
      ok: handle(
        JSON.parse(new TextDecoder().decode(text.slice(0, Atomics.load(i, MAILBOX.length)))),
      ) ?? null,
    };
  } catch (e) {
    reply = { error: serializeError(e) };
  }
  const bytes = new TextEncoder().encode(json(reply));
  text.set(bytes.subarray(0, text.byteLength));
  Atomics.store(i, MAILBOX.length, Math.min(bytes.byteLength, text.byteLength));
  Atomics.store(i, MAILBOX.state, 2);
  Atomics.notify(i, MAILBOX.state);
  return true;
}

/**
 * Either side: records why the Worker can no longer answer (the first reason wins) and wakes a
 * waiting {@link callMailbox}, which then rejects with `error`; later calls reject at once.
 */
export function markMailboxDead(box: SharedArrayBuffer, error: unknown): void {
  const i = ints(box);
  if (Atomics.compareExchange(i, MAILBOX.dead, 0, 1) !== 0) return;
  const note = new TextEncoder().encode(json(serializeError(error)));
  const room = new Uint8Array(box, MAILBOX.noteOffset, MAILBOX.noteSize);
  // A note cut short would not parse: keep it whole, or keep only the message.
  const bytes = note.byteLength <= room.byteLength ? note : new TextEncoder().encode(
    json({ name: "Error", message: String((error as Error)?.message ?? error).slice(0, 1000) }),
  );
  room.set(bytes);
  Atomics.store(i, MAILBOX.noteLength, bytes.byteLength);
  Atomics.store(i, MAILBOX.dead, 2);
  Atomics.notify(i, MAILBOX.state);
}

/** The death note, if the Worker can no longer answer. */
export function mailboxDeath(box: SharedArrayBuffer): Error | undefined {
  const i = ints(box);
  if (Atomics.load(i, MAILBOX.dead) !== 2) return undefined;
  const note = new Uint8Array(box, MAILBOX.noteOffset, Atomics.load(i, MAILBOX.noteLength));
  return deserializeError(JSON.parse(new TextDecoder().decode(note.slice())));
}

/** What {@link guardMailbox} needs of the Worker's global scope. */
interface WorkerScope {
  close(): void;
  addEventListener(type: "error", listener: (e: ErrorEvent) => void): void;
  addEventListener(type: "unhandledrejection", listener: (e: PromiseRejectionEvent) => void): void;
}

/**
 * Worker side, called once at the start: if this Worker throws an uncaught error, leaves a
 * rejection unhandled or calls `self.close()`, the mailbox gets a death note first, so a command
 * the host is waiting for rejects with that error instead of waiting out its timeout. (The error
 * still reaches the host's `error` event as before.)
 */
export function guardMailbox(box: SharedArrayBuffer): void {
  const scope = globalThis as unknown as WorkerScope;
  scope.addEventListener("error", (e) => markMailboxDead(box, e.error ?? new Error(e.message)));
  scope.addEventListener("unhandledrejection", (e) => markMailboxDead(box, e.reason));
  const close = scope.close.bind(scope);
  scope.close = () => {
    markMailboxDead(box, new Error("the worker ended itself (self.close())"));
    close();
  };
}

/**
 * Host side: when `worker` reports an uncaught error (its `error` event) or a message it could not
 * deserialize (`messageerror`), writes a death note naming `label` and the Worker's error, so a
 * waiting command rejects at once. The `error` event is marked handled (`preventDefault`): the
 * error is delivered through the mailbox and the owner's own handler, not by ending the process.
 */
export function watchWorker(worker: Worker, box: SharedArrayBuffer, label: string): void {
  worker.addEventListener("error", (e) => {
    e.preventDefault();
    markMailboxDead(box, new Error(`${label}: ${e.message}`));
  });
  worker.addEventListener("messageerror", () => {
    markMailboxDead(box, new Error(`${label}: a message from the worker could not be read`));
  });
}

/**
 * Host side: writes `request`, waits (asynchronously, keeping the event loop alive) for the reply,
 * returns it or rejects with the Worker's error: the one the command threw, or the death note of a
 * Worker that died before answering. `failed()` is polled too (the owner's own record of a
 * failure, e.g. the Worker's `error` message), and a failure it returns is also recorded as the
 * mailbox's death.
 */
export async function callMailbox(
  box: SharedArrayBuffer,
  request: unknown,
  options: { timeoutMs?: number; failed?: () => Error | undefined } = {},
): Promise<unknown> {
  const i = ints(box);
  const dead = mailboxDeath(box);
  if (dead) throw dead;
  if (Atomics.load(i, MAILBOX.state) !== 0) throw new Error("a command is already running");
  const text = new Uint8Array(box, MAILBOX.textOffset);
  const bytes = new TextEncoder().encode(json(request));
  if (bytes.byteLength > text.byteLength) throw new RangeError("command too large");
  text.set(bytes);
  Atomics.store(i, MAILBOX.length, bytes.byteLength);
  Atomics.store(i, MAILBOX.state, 1);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  // E12: the wait below does not keep the event loop alive; this timer does, until we are done.
  const keepAlive = setInterval(() => {}, 1_000);
  try {
    while (Atomics.load(i, MAILBOX.state) !== 2) {
      const failure = options.failed?.();
      if (failure) markMailboxDead(box, failure);
      const death = mailboxDeath(box);
      if (death) {
        Atomics.store(i, MAILBOX.state, 0);
        throw death;
      }
      if (Date.now() > deadline) {
        Atomics.store(i, MAILBOX.state, 0);
        throw new Error("the worker did not run the command in time");
      }
      const w = Atomics.waitAsync(i, MAILBOX.state, 1, 200);
      if (w.async) await w.value;
    }
  } finally {
    clearInterval(keepAlive);
  }
  const reply = JSON.parse(
    new TextDecoder().decode(text.slice(0, Atomics.load(i, MAILBOX.length))),
  );
  Atomics.store(i, MAILBOX.state, 0);
  if (reply.error) throw deserializeError(reply.error);
  return reply.ok;
}
