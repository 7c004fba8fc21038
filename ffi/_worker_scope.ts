/**
 * The global scope a Worker entry talks through, typed without `/// <reference lib="deno.worker" />`
 * (JSR refuses that directive in a published module: it changes the globals of every importer).
 *
 * @module
 */

/** What a Worker entry uses of its global scope (a subset of lib "deno.worker"'s `self`). */
export interface WorkerScope<In> {
  /** Set once: the entry's handler for the host's messages. */
  onmessage: ((ev: MessageEvent<In>) => unknown) | null;
  /** A message to the host (structured clone). */
  postMessage(message: unknown): void;
  /** Ends this Worker. */
  close(): void;
}

/** This Worker's global scope; call it only inside a Worker entry. */
export function workerScope<In>(): WorkerScope<In> {
  return globalThis as unknown as WorkerScope<In>;
}
