/**
 * Impersonating the sender of an ALPC message on this thread, and putting the thread's own token
 * back after: private to the ALPC server.
 *
 * @module
 */

import { requireSymbol } from "../_loader.ts";
import type { NtHandle } from "../nt/handle.ts";
import { withThreadTokenRestored } from "../nt/_thread_token.ts";
import { ImpersonationLevel, type ImpersonationLevelName } from "../nt/object_attributes.ts";
import { check } from "../status.ts";
import type { AlpcSymbols } from "./port.ts";

/**
 * Runs `fn` while this thread impersonates the sender of `message`
 * (`NtAlpcImpersonateClientOfPort(port, message, flags)`), then restores the token the thread had
 * before (or reverts to self), also when `fn` throws. With `level`, the flags ask for that level
 * (bit 1, the level in bits 2-3: NtAlpcImpersonateClientOfPort.c), which may not exceed what the
 * client's QoS allows (else STATUS_ACCESS_DENIED: AlpcpImpersonateMessage.c).
 *
 * @param nt the symbols
 * @param port the port the message was received on
 * @param message the received message (its MessageId and CallbackId name it to the kernel)
 * @param fn what to run impersonated
 * @param level the impersonation level to ask for (default: the client's)
 */
export function impersonateSender<T>(
  nt: Pick<
    AlpcSymbols,
    "NtAlpcImpersonateClientOfPort" | "NtOpenThreadToken" | "NtSetInformationThread" | "NtClose"
  >,
  port: NtHandle<"port" | "connection-port">,
  message: Uint8Array<ArrayBuffer>,
  fn: () => T,
  level?: ImpersonationLevelName,
): T {
  const impersonate = requireSymbol(
    nt.NtAlpcImpersonateClientOfPort,
    "ntdll!NtAlpcImpersonateClientOfPort",
  );
  return withThreadTokenRestored(nt, () => {
    const flags = level === undefined ? null : Deno.UnsafePointer.create(
      BigInt((ImpersonationLevel[level] << 2) | 2),
    );
    check(
      impersonate(port.unsafePointer, message, flags),
      "NtAlpcImpersonateClientOfPort",
      level === undefined ? undefined : `at level ${level}`,
    );
  }, fn);
}
