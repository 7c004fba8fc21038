/**
 * Experiment 1's lab: the folders and files it creates and their DACLs (a secret only SYSTEM and
 * Administrators may read, a `drop\\` folder the client may write, a vault outside the root), and
 * its set-up: our token, the lab, and the server on its own Worker thread.
 *
 * @module
 */

import { Token, wineVersion } from "../../mod.ts";
import { TokenAccess } from "../../raw.ts";
import { LabFolder } from "./lab_folder.ts";
import type { Exp1HandlerOptions } from "./exp1_handler.ts";
import { type Exp1Server, exp1Transport } from "./exp1_transport.ts";
import type { Log } from "../_runner.ts";
import { formatEvent } from "../_server_events.ts";
import { portSddl, runStamp } from "../_setup.ts";
import { type Transport, TRANSPORT_LABEL } from "../_transport.ts";

/** The secret's DACL: SYSTEM and Administrators only, not inherited. */
export const SECRET_SDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";
/** The vault (outside the root, the junction's target) and its file: SYSTEM and Administrators only. */
export const VAULT_SDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/** `FILE_GENERIC_READ | FILE_GENERIC_EXECUTE`: list, traverse, read data, attributes and EAs. */
const READ_EXECUTE = "0x1200a9";
/** {@link READ_EXECUTE} plus `FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY`. */
const READ_EXECUTE_ADD = "0x1200af";
/** "Modify": read, write, execute, delete; not `WRITE_DAC`, not `WRITE_OWNER`. */
const MODIFY = "0x1301bf";

/**
 * The lab folder's DACL: protected (nothing inherited from `%TEMP%`, where the user has Full
 * Control); SYSTEM and Administrators full, also on what they create inside; the client (the
 * restricted token keeps our user SID enabled, so that SID names it) read & execute on the
 * folder itself only: it may list it and reach `drop\`, never create in it.
 */
export function labSddl(clientSid: string): string {
  return `D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;${READ_EXECUTE};;;${clientSid})`;
}

/**
 * `drop\`: the lab's DACL, and the client may also add files and folders to it and modify (not
 * re-permission) what it created there. With `low`, a Low mandatory label (no-write-up), so a
 * low-integrity client may write there too.
 */
export function dropSddl(clientSid: string, low: boolean): string {
  return `D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;${READ_EXECUTE_ADD};;;${clientSid})` +
    `(A;OICIIO;${MODIFY};;;${clientSid})${low ? "S:(ML;OICI;NW;;;LW)" : ""}`;
}

const SECRET =
  "TOP SECRET: the LPC lab's hidden file. Only SYSTEM and Administrators may read this.\r\n";
const VAULT = "VAULT: outside the server's root. A junction must not lead the server here.\r\n";

/** What {@link setUpExp1} made. */
export interface Exp1SetUp {
  /** Our own token (the restricted copy for the client is made from it). */
  self: Token;
  user: string;
  environment: {
    pid: number;
    user: string;
    elevated: boolean;
    integrity: string;
    wine: string | null;
  };
  folderSddl: string;
  lab: LabFolder;
  secret: string;
  dropFolderSddl: string;
  drop: string;
  vault: LabFolder;
  vaultFile: string;
  portName: string;
  sddl: string;
  server: Exp1Server;
}

/** Set up: our token, the lab folder, its files and the vault, and the server. */
export async function setUpExp1(
  cleanup: AsyncDisposableStack,
  o: { impersonate: boolean; low: boolean; transport: Transport; log: Log },
): Promise<Exp1SetUp> {
  const me = Deno.pid;
  const stamp = runStamp();
  const self = cleanup.use(Token.open(TokenAccess.TOKEN_ALL_ACCESS));
  const user = self.user();
  const environment = {
    pid: me,
    user,
    elevated: self.elevated(),
    integrity: self.integrity().name,
    wine: wineVersion(),
  };
  // The restricted client keeps our user SID (only Administrators becomes deny-only), so the
  // lab's ACEs for the client name that SID.
  const folderSddl = labSddl(user);
  const lab = cleanup.use(LabFolder.create(`deno-lpc-lab-${stamp}`, { sddl: folderSddl }));
  const secret = lab.createFile("secret.txt", new TextEncoder().encode(SECRET), SECRET_SDDL);
  const dropFolderSddl = dropSddl(user, o.low);
  const drop = lab.createFolder("drop", dropFolderSddl);
  // The junction's target: a sibling of the root (same name prefix), administrators only.
  const vault = cleanup.use(LabFolder.create(`deno-lpc-lab-${stamp}-vault`, { sddl: VAULT_SDDL }));
  const vaultFile = vault.createFile("vault.txt", new TextEncoder().encode(VAULT), SECRET_SDDL);
  const portName = `\\RPC Control\\deno-lpc-exp1-${o.transport}-${stamp}`;
  const sddl = portSddl(user, o.low);
  const handlerOptions: Exp1HandlerOptions = { root: lab.path, impersonate: o.impersonate };
  const server = cleanup.use(
    await exp1Transport(o.transport).startServer({
      portName,
      sddl,
      handlerOptions,
      onEvent: (e) => o.log(`server ${formatEvent(e)}`),
    }),
  );
  // Logged once the server runs: without LPC its start is where the run ends, in one line.
  o.log(`lab folder ${lab.path} (${folderSddl}); secret ${secret} (${SECRET_SDDL})`);
  o.log(`drop folder ${drop} (${dropFolderSddl}); vault ${vault.path} (${VAULT_SDDL})`);
  o.log(
    `${
      TRANSPORT_LABEL[o.transport]
    } server pid ${server.processId} thread ${server.threadId} on ${portName} (${
      o.impersonate ? "safe mode: impersonating" : "confused deputy"
    })`,
  );
  if (!environment.elevated) {
    throw new Error(
      "exp1 needs an elevated prompt: the server must be able to read a file only SYSTEM and Administrators may read",
    );
  }

  return {
    self,
    user,
    environment,
    folderSddl,
    lab,
    secret,
    dropFolderSddl,
    drop,
    vault,
    vaultFile,
    portName,
    sddl,
    server,
  };
}
