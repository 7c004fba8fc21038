/**
 * What the experiments' set-up shares: who this process is (its token, summarised), a name no
 * other run uses, and the command line of a client script started as a child.
 *
 * @module
 */

import { fromFileUrl } from "jsr:@std/path@^1.1.6/from-file-url";
import { Token } from "../mod.ts";
import { scriptFlags } from "./_permissions.ts";

/** This process's user SID and whether its token is elevated (the token is closed again). */
export function processIdentity(): { user: string; elevated: boolean } {
  using token = Token.open();
  return { user: token.user(), elevated: token.elevated() };
}

/** `<pid>-<time in base 36>`: unique to this run, for port and folder names. */
export function runStamp(): string {
  return `${Deno.pid}-${Date.now().toString(36)}`;
}

/** A port name in `\RPC Control` (where any user may create objects) unique to this run. */
export function runPortName(experiment: string): string {
  return `\\RPC Control\\deno-lpc-${experiment}-${runStamp()}`;
}

/**
 * The command line that runs a client script (a sibling module, by URL) with this Deno and
 * exactly its shebang's flags (`_permissions.ts`; reading it needs `--allow-read`).
 */
export async function clientCommand(script: URL, args: readonly string[]): Promise<string[]> {
  return [Deno.execPath(), "run", ...(await scriptFlags(script)), fromFileUrl(script), ...args];
}

/** The port's DACL: PORT_CONNECT (0x1) for the given SID, all for SYSTEM and Administrators. */
export function portSddl(connectSid: string, low: boolean): string {
  return `D:(A;;0x1;;;${connectSid})(A;;GA;;;SY)(A;;GA;;;BA)${low ? "S:(ML;;NW;;;LW)" : ""}`;
}
