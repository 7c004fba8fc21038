/**
 * ALPC security contexts: a snapshot of the calling thread's security, held by the kernel under
 * an ALPC handle of a port (`NtAlpcCreateSecurityContext`), that a client names in a message's
 * security attribute so that the server can impersonate it (AlpcpImpersonateMessage.c prefers a
 * message's security context to the connection's).
 *
 * @module
 */

import { requireSymbol } from "../_loader.ts";
import { LAYOUTS } from "../layouts.ts";
import type { NtHandle } from "../nt/handle.ts";
import { type ImpersonationLevelName, securityQos } from "../nt/object_attributes.ts";
import { ntdll } from "../ntdll.ts";
import { check } from "../status.ts";
import type { AlpcSymbols } from "./port.ts";

const SEC = LAYOUTS.ALPC_SECURITY_ATTR;

/** The symbols security contexts use. */
export type AlpcSecuritySymbols = Pick<
  AlpcSymbols,
  "NtAlpcCreateSecurityContext" | "NtAlpcDeleteSecurityContext"
>;

/**
 * A security context of this thread on a port; disposing deletes it
 * (`NtAlpcDeleteSecurityContext`). Send it with `request(data, { security: context })`.
 *
 * @example Capture this thread once, then send it with each request (Windows only, not run here)
 * ```ts ignore
 * import { AlpcClient } from "@deno-lpc/deno-lpc";
 *
 * using client = AlpcClient.connect("\\RPC Control\\demo-alpc");
 * using context = client.createSecurityContext("Impersonation");
 * client.request(new TextEncoder().encode("whoami"), { security: context });
 * ```
 */
export class AlpcSecurityContext implements Disposable {
  readonly #port: NtHandle<"port" | "connection-port">;
  readonly #nt: AlpcSecuritySymbols;
  readonly #handle: bigint;
  #deleted = false;
  /** The QoS the context was captured with (the security attribute points to it). */
  readonly qos: Uint8Array<ArrayBuffer>;

  private constructor(
    port: NtHandle<"port" | "connection-port">,
    nt: AlpcSecuritySymbols,
    handle: bigint,
    qos: Uint8Array<ArrayBuffer>,
  ) {
    this.#port = port;
    this.#nt = nt;
    this.#handle = handle;
    this.qos = qos;
  }

  /**
   * Captures the calling thread's security on `port` (NtAlpcCreateSecurityContext.c: Flags 0, a
   * QoS, the ALPC handle out).
   *
   * @param port the port the messages will be sent on
   * @param level how far the server may impersonate (default `Impersonation`)
   * @param options `nt`, the symbols
   */
  static create(
    port: NtHandle<"port" | "connection-port">,
    level: ImpersonationLevelName = "Impersonation",
    options: { nt?: AlpcSecuritySymbols } = {},
  ): AlpcSecurityContext {
    const nt = options.nt ?? ntdll();
    const create = requireSymbol(
      nt.NtAlpcCreateSecurityContext,
      "ntdll!NtAlpcCreateSecurityContext",
    );
    const qos = securityQos(level);
    const attr = new Uint8Array(SEC.size);
    const dv = new DataView(attr.buffer);
    dv.setBigUint64(SEC.offsets.QoS, Deno.UnsafePointer.value(Deno.UnsafePointer.of(qos)), true);
    check(create(port.unsafePointer, 0, attr), "NtAlpcCreateSecurityContext", port.what);
    return new AlpcSecurityContext(
      port,
      nt,
      dv.getBigUint64(SEC.offsets.ContextHandle, true),
      qos,
    );
  }

  /** **UNSAFE**: the context's ALPC handle (for a security attribute); valid until disposed. */
  get unsafeHandle(): bigint {
    if (this.#deleted) throw new TypeError("security context deleted");
    return this.#handle;
  }

  /** True once deleted. */
  get deleted(): boolean {
    return this.#deleted;
  }

  /** Deletes the context (idempotent). */
  [Symbol.dispose](): void {
    if (this.#deleted) return;
    this.#deleted = true;
    check(
      requireSymbol(this.#nt.NtAlpcDeleteSecurityContext, "ntdll!NtAlpcDeleteSecurityContext")(
        this.#port.unsafePointer,
        0,
        Deno.UnsafePointer.create(this.#handle),
      ),
      "NtAlpcDeleteSecurityContext",
      this.#port.what,
    );
  }
}
