/**
 * Experiment 2's server logic, loaded by the LPC server Worker or the ALPC one and run on its
 * thread:
 *
 * - `prepare`: the thread takes a SYSTEM token with SeTcbPrivilege enabled (the privilege
 *   `ProcessExceptionPort` needs; an elevated administrator does not hold it);
 * - `command({ op: "set-exception-port", pid })`: makes the server's connection port the
 *   client's exception port, on this thread;
 * - requests: a tiny text protocol (`HELLO`, `READY?` → `GO` once the exception port is set,
 *   `RAISE <code> <address>` announcing the exception the client is about to raise, `DONE ...`),
 *   every other text refused;
 * - exceptions: the verdict chosen by `--reply` goes only to the lab's own exception (the announced
 *   code and address, from that pid, once); any other exception gets `DBG_EXCEPTION_NOT_HANDLED`.
 *   The exception port's reply decides (DbgkForwardException.c): any status >= 0 other than
 *   DBG_EXCEPTION_NOT_HANDLED counts as handled, so "continuing" a real crash would resume a
 *   faulting thread at its fault (KiDispatchException.c).
 *
 * @module
 */

import {
  type AlpcHandler,
  impersonateSystem,
  type LpcHandler,
  type NtHandle,
  openProcess,
  type PortMessageHeader,
  setExceptionPort,
  type SystemImpersonation,
} from "../../mod.ts";
import { type ExceptionMessage, NTSTATUS, ProcessAccess } from "../../raw.ts";
import {
  type AnnouncedRaise,
  exchangeNote,
  isAnnounced,
  parseRaiseRequest,
} from "./exp2_control.ts";

/** The handler's options (sent to the Worker). */
export interface Exp2HandlerOptions {
  /** Take SYSTEM with SeTcbPrivilege on the server thread first. */
  system: boolean;
  /** With `system`: a failure to take SYSTEM is recorded (the `system` command says why), not thrown. */
  systemOptional?: boolean;
  /** The verdict for `LPC_EXCEPTION`: `continue` = DBG_CONTINUE, `not-handled` = DBG_EXCEPTION_NOT_HANDLED. */
  reply: "continue" | "not-handled";
}

/** Pids whose exception port is ours. */
const ours = new Set<number>();
/** The exception each pid announced it is about to raise (consumed by the exception it matches). */
const announced = new Map<number, AnnouncedRaise>();
let system: SystemImpersonation | undefined;
let systemFailed: string | undefined;

/** On the server's thread, before the port exists: become SYSTEM with SeTcbPrivilege. */
export function prepare(options: Exp2HandlerOptions): void {
  if (!options.system) return;
  try {
    system = impersonateSystem();
  } catch (e) {
    if (!options.systemOptional) throw e;
    systemFailed = e instanceof Error ? e.message : String(e);
  }
}

/**
 * The verdict for one exception (pure; exported for tests): `reply` for the announced exception,
 * DBG_EXCEPTION_NOT_HANDLED for any other.
 */
export function exceptionVerdict(
  exception: { code: number; address: bigint },
  announcedRaise: AnnouncedRaise | undefined,
  reply: Exp2HandlerOptions["reply"],
): { verdict: number; ours: boolean } {
  const isOurs = isAnnounced(exception, announcedRaise);
  return {
    verdict: isOurs && reply === "continue"
      ? NTSTATUS.DBG_CONTINUE
      : NTSTATUS.DBG_EXCEPTION_NOT_HANDLED,
    ours: isOurs,
  };
}

/** The control protocol's answer to one request (pure; exported for tests). */
export function controlReply(
  text: string,
  pid: number,
  exceptionPortSet: (pid: number) => boolean,
  announce: (pid: number, raise: AnnouncedRaise) => void = () => {},
): string {
  if (text.length > 64 || !/^[\x20-\x7e]*$/.test(text)) return "ERR malformed";
  if (text === "HELLO") return "WELCOME";
  if (text === "READY?") return exceptionPortSet(pid) ? "GO" : "WAIT";
  if (text.startsWith("RAISE ")) {
    const raise = parseRaiseRequest(text);
    if (!raise) return "ERR malformed";
    announce(pid, raise);
    return "OK";
  }
  if (text.startsWith("DONE")) return "BYE";
  return "ERR unknown command";
}

/** Builds the handler: the same for an LPC server and an ALPC one. */
export function createHandler(options: Exp2HandlerOptions): LpcHandler & AlpcHandler {
  return {
    request: (req: { header: PortMessageHeader; data: Uint8Array }) => {
      const text = new TextDecoder().decode(req.data);
      const reply = controlReply(
        text,
        req.header.clientId.process,
        (pid) => ours.has(pid),
        (pid, raise) => announced.set(pid, raise),
      );
      return { data: new TextEncoder().encode(reply), note: exchangeNote(text, reply) };
    },
    exception: (m: ExceptionMessage) => {
      const pid = m.header.clientId.process;
      const { verdict, ours: isOurs } = exceptionVerdict(
        { code: m.record.code, address: m.record.address },
        announced.get(pid),
        options.reply,
      );
      if (isOurs) announced.delete(pid); // once: a repeat of it is not the one raised on purpose
      return verdict;
    },
  };
}

/**
 * Commands from the host, run on the server's thread (LPC or ALPC: the server's connection port
 * becomes the exception port; NtSetInformationProcess.c takes any port object).
 */
export function command(
  request: { op: string; pid?: number },
  ctx: { server: { port: NtHandle<"connection-port"> } },
): unknown {
  if (request.op === "system") {
    if (systemFailed !== undefined) return { failed: systemFailed };
    return system
      ? {
        user: system.user,
        fromPid: system.fromPid,
        fromImage: system.fromImage,
        tcbEnabled: system.tcbEnabled,
      }
      : null;
  }
  if (request.op === "set-exception-port" && typeof request.pid === "number") {
    using process = openProcess(
      request.pid,
      ProcessAccess.PROCESS_SUSPEND_RESUME | ProcessAccess.PROCESS_SET_INFORMATION,
    );
    const result = setExceptionPort(process, ctx.server.port);
    ours.add(request.pid);
    return result;
  }
  throw new Error(`unknown command ${JSON.stringify(request)}`);
}
