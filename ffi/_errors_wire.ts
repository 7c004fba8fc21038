/**
 * Errors crossing a thread boundary (Worker ↔ host): `NtError` and `UnsupportedError` keep their
 * type, call, code and context, so the host classifies them (exit codes, hints) as if thrown here.
 *
 * @module
 */

import { NtError, UnsupportedError } from "./status.ts";

/** An error crossing the thread boundary. */
export interface SerializedError {
  /** `NtError`, `UnsupportedError` or another error name. */
  name: string;
  /** The message. */
  message: string;
  /** For `NtError`: the call, the code, its kind and context. */
  nt?: { call: string; code: number; kind: "ntstatus" | "win32"; context?: string };
}

/** Turns an error into something `postMessage` can carry. */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof NtError) {
    return {
      name: e.name,
      message: e.message,
      nt: {
        call: e.call,
        code: e.code,
        kind: e.kind,
        ...(e.context !== undefined ? { context: e.context } : {}),
      },
    };
  }
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: "Error", message: String(e) };
}

/** Rebuilds an error serialized by {@link serializeError}. */
export function deserializeError(s: SerializedError): Error {
  if (s.nt) return new NtError(s.nt.call, s.nt.code, s.nt.kind, s.nt.context);
  if (s.name === "UnsupportedError") return new UnsupportedError(s.message);
  const e = new Error(s.message);
  e.name = s.name;
  return e;
}
