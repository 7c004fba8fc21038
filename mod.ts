/**
 * deno-lpc: Windows NT LPC (Local Procedure Call) from Deno, for people who study Windows
 * internals and audit its attack surface.
 *
 * This entry point holds the concepts a program is written with: {@link LpcServer} and
 * {@link LpcClient} on a connection port, the Worker host {@link ServerWorker}, the
 * {@link Debugger}, typed handles ({@link NtHandle}, {@link Token}, {@link NtFile},
 * {@link ChildProcess}), errors with names and hints ({@link NtError}), the namespace walk, who
 * serves a port, and the `PORT_MESSAGE` codec. The symbol tables, `LAYOUTS`, constants and the
 * low-level codecs are in `./raw`.
 *
 * Importing this module loads no library and has no side effect on any OS; each DLL is opened on
 * first use, on Windows only. Run scripts with `--allow-ffi` (unscoped: a scoped grant cannot load
 * a DLL by bare name, and FFI is full access in any case).
 *
 * @example The message codec and the errors run anywhere
 * ```ts
 * import { decodePortMessage, encodePortMessage, LpcMessageType, NtError } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const wire = encodePortMessage({ data: new TextEncoder().encode("hello") });
 * const { header, data } = decodePortMessage(wire);
 * assertEquals(header.totalLength, 45);
 * assertEquals(new TextDecoder().decode(data), "hello");
 * assertEquals(LpcMessageType.LPC_CLIENT_DIED, 6);
 * assertEquals(new NtError("NtConnectPort", 0xC0000034).symbol, "STATUS_OBJECT_NAME_NOT_FOUND");
 * ```
 *
 * @module
 */

export {
  assertWindows,
  type ErrorKind,
  isUnsupported,
  NtError,
  UnsupportedError,
} from "./ffi/status.ts";
export {
  type ClientId,
  decodePortMessage,
  encodePortMessage,
  LpcMessageType,
  type PortMessage,
  PortMessageError,
  type PortMessageHeader,
  type PortMessageInit,
} from "./ffi/port_message.ts";
export { wineVersion } from "./ffi/ntdll.ts";
export { type HandleKind, NtHandle } from "./ffi/nt/handle.ts";
export { SecurityDescriptor } from "./ffi/nt/object_attributes.ts";
export {
  type NamespaceEntry,
  type NamespaceError,
  type NamespaceObject,
  type QueryMode,
  walkNamespace,
  type WalkOptions,
} from "./ffi/nt/namespace.ts";
export {
  type CapturedChild,
  type CapturedRun,
  ChildProcess,
  currentThreadId,
  openProcess,
} from "./ffi/nt/processes.ts";
export {
  impersonateSystem,
  type SystemImpersonation,
  type SystemTokenAttempt,
  Token,
} from "./ffi/nt/tokens.ts";
export { NtFile, type OpenFileOptions } from "./ffi/nt/files.ts";
export { unavailable } from "./ffi/nt/capabilities.ts";
export {
  type Connection,
  type ConnectOptions,
  createConnectionPort,
  LpcClient,
  type LpcEvent,
  type LpcHandler,
  type LpcRequest,
  LpcServer,
  type LpcServerOptions,
  type PortOptions,
} from "./ffi/lpc/port.ts";
export {
  type CommandContext,
  ServerWorker,
  type ServerWorkerOptions,
} from "./ffi/lpc/server_worker.ts";
export { findPortServers, type PortServer, type PortServerReport } from "./ffi/lpc/port_servers.ts";
export { type ExceptionPortResult, setExceptionPort } from "./ffi/lpc/exception_port.ts";
export {
  type AlpcBasicInformation,
  type AlpcPortAttributes,
  type AlpcPortOptions,
  createAlpcPort,
  queryAlpcBasicInformation,
} from "./ffi/alpc/port.ts";
export {
  type AlpcConnection,
  type AlpcEvent,
  type AlpcHandler,
  type AlpcRequest,
  AlpcServer,
  type AlpcServerOptions,
} from "./ffi/alpc/server.ts";
export {
  AlpcClient,
  type AlpcConnectOptions,
  type AlpcReply,
  type AlpcSendOptions,
} from "./ffi/alpc/client.ts";
export {
  type AlpcCommandContext,
  AlpcServerWorker,
  type AlpcServerWorkerOptions,
} from "./ffi/alpc/server_worker.ts";
export { AlpcView, ReceivedView } from "./ffi/alpc/view.ts";
export { AlpcSecurityContext } from "./ffi/alpc/security.ts";
export { type AttachOptions, Debugger, type HandledEvent } from "./ffi/debug/debugger.ts";
export {
  type RaiseOptions,
  type RaiseResult,
  raiseSecondChance,
} from "./ffi/debug/raise_exception.ts";
