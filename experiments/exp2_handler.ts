/**
 * Experiment 2's server logic, loaded by the LPC server Worker and run on its thread:
 *
 * - `prepare`: the thread takes a SYSTEM token with SeTcbPrivilege enabled (the privilege
 *   `ProcessExceptionPort` needs; an elevated administrator does not hold it);
 * - `command({ op: "set-exception-port", pid })`: makes the server's connection port the
 *   client's exception port, on this thread;
 * - requests: a tiny text protocol (`HELLO`, `READY?` → `GO` once the exception port is set,
 *   `DONE ...`), every other text refused;
 * - exceptions: replies with the verdict chosen by `--reply`.
 *
 * @module
 */

import { setExceptionPort } from "../ffi/exception_port.ts";
import type { LpcHandler } from "../ffi/lpc.ts";
import type { CommandContext } from "../ffi/lpc_server_worker.ts";
import { openProcess, ProcessAccess } from "../ffi/processes.ts";
import { NTSTATUS } from "../ffi/status.ts";
import { impersonateSystem, type SystemImpersonation } from "../ffi/tokens.ts";

/** The handler's options (sent to the Worker). */
export interface Exp2HandlerOptions {
  /** Take SYSTEM with SeTcbPrivilege on the server thread first. */
  system: boolean;
  /** The verdict for `LPC_EXCEPTION`: `continue` = DBG_CONTINUE, `not-handled` = DBG_EXCEPTION_NOT_HANDLED. */
  reply: "continue" | "not-handled";
}

/** Pids whose exception port is ours. */
const ours = new Set<number>();
let system: SystemImpersonation | undefined;

/** On the server's thread, before the port exists: become SYSTEM with SeTcbPrivilege. */
export function prepare(options: Exp2HandlerOptions): void {
  if (options.system) system = impersonateSystem();
}

/** The control protocol's answer to one request (pure; exported for tests). */
export function controlReply(
  text: string,
  pid: number,
  exceptionPortSet: (pid: number) => boolean,
): string {
  if (text.length > 64 || !/^[\x20-\x7e]*$/.test(text)) return "ERR malformed";
  if (text === "HELLO") return "WELCOME";
  if (text === "READY?") return exceptionPortSet(pid) ? "GO" : "WAIT";
  if (text.startsWith("DONE")) return "BYE";
  return "ERR unknown command";
}

/** Builds the handler. */
export function createHandler(options: Exp2HandlerOptions): LpcHandler {
  return {
    request: (req) => {
      const text = new TextDecoder().decode(req.data);
      const reply = controlReply(text, req.header.clientId.process, (pid) => ours.has(pid));
      return { data: new TextEncoder().encode(reply), note: `${text.slice(0, 16)} -> ${reply}` };
    },
    exception:
      () => (options.reply === "continue"
        ? NTSTATUS.DBG_CONTINUE
        : NTSTATUS.DBG_EXCEPTION_NOT_HANDLED),
  };
}

/** Commands from the host, run on the server's thread. */
export function command(request: { op: string; pid?: number }, ctx: CommandContext): unknown {
  if (request.op === "system") {
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
