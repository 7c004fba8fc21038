/**
 * The calling thread's impersonation token, saved and put back around an impersonation: what the
 * LPC and the ALPC servers both do around `NtImpersonateClientOfPort` /
 * `NtAlpcImpersonateClientOfPort`. Thread-bound: call it on the thread that impersonates.
 *
 * @module
 */

import type { NtdllSymbols } from "../ntdll.ts";
import { check, NTSTATUS, toUnsigned } from "../status.ts";
import { currentThread, handleCell } from "./handle.ts";

/** `ThreadImpersonationToken`: set a token handle (or NULL: revert to self). */
const ThreadImpersonationToken = 5;
/** `TOKEN_IMPERSONATE`: what setting the token back needs. */
const TOKEN_IMPERSONATE = 0x4;

/** The calls {@link withThreadTokenRestored} makes. */
export type ThreadTokenSymbols = Pick<
  NtdllSymbols,
  "NtOpenThreadToken" | "NtSetInformationThread" | "NtClose"
>;

/**
 * Saves this thread's token (a thread running as SYSTEM has one), runs `impersonate` then `fn`,
 * and puts the saved token back (or reverts to self) on every path, `impersonate` failing included.
 *
 * @param nt the symbols
 * @param impersonate makes this thread impersonate (throws when it cannot)
 * @param fn what to run impersonated
 * @returns what `fn` returned
 */
export function withThreadTokenRestored<T>(
  nt: ThreadTokenSymbols,
  impersonate: () => void,
  fn: () => T,
): T {
  const saved = handleCell();
  const open = nt.NtOpenThreadToken(currentThread(), TOKEN_IMPERSONATE, 1, saved);
  const noToken = toUnsigned(open) === NTSTATUS.STATUS_NO_TOKEN;
  if (!noToken) check(open, "NtOpenThreadToken");
  const restore = noToken ? new BigUint64Array(1) : saved;
  try {
    impersonate();
    return fn();
  } finally {
    try {
      check(
        nt.NtSetInformationThread(currentThread(), ThreadImpersonationToken, restore, 8),
        "NtSetInformationThread",
        noToken ? "revert to self" : "back to the thread's own token",
      );
    } finally {
      if (!noToken) nt.NtClose(Deno.UnsafePointer.create(saved[0]!));
    }
  }
}
