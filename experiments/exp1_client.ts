#!/usr/bin/env -S deno run --allow-ffi
/**
 * Experiment 1, the client: who am I, can I open the file myself, and what does the server read
 * for me? And, as a hostile client: does the server follow a junction I plant in its `drop\`
 * folder to a folder only administrators may read? Started unprivileged by `exp1.ts`, or by hand
 * in a second terminal:
 *
 * ```sh
 * deno run --allow-ffi experiments/exp1_client.ts --port "\RPC Control\deno-lpc-exp1" --root C:\lab --path secret.txt
 * ```
 *
 * @module
 */

import { createJunction, readFileRange } from "../ffi/files.ts";
import { LpcClient } from "../ffi/lpc.ts";
import { assertWindows } from "../ffi/_loader.ts";
import type { ImpersonationLevelName } from "../ffi/objects.ts";
import { currentProcessId } from "../ffi/processes.ts";
import { kernel32 } from "../ffi/kernel32.ts";
import { formatHex, NtError, statusName } from "../ffi/status.ts";
import {
  openProcessToken,
  tokenGroups,
  tokenIntegrity,
  tokenIsElevated,
  tokenUserSid,
  WellKnownSid,
} from "../ffi/tokens.ts";
import {
  decodeReadReply,
  encodeReadRequest,
  MAX_READ_LENGTH,
  Op,
  PROTOCOL_VERSION,
} from "./exp1_protocol.ts";
import { EXIT, EXIT_CODES_HELP, parseCli, runMain, toJson, UsageError } from "./_cli.ts";

const HELP = `exp1_client: ask the experiment-1 LPC server to read part of a file for us.

Usage: deno run --allow-ffi experiments/exp1_client.ts --port <name> --path <file> [options]

Options:
  --port <name>     the server's port (e.g. "\\RPC Control\\deno-lpc-exp1")
  --path <file>     the file to read, relative to the server's root (e.g. secret.txt)
  --root <folder>   the server's root as we see it: we open <root>\\<file> ourselves first
                    (without it, no direct attempt)
  --junction-to <folder>
                    the hostile request: make a junction <root>\\drop\\j-<pid> to this folder
                    (needs --root and a drop folder we may write) and ask the server for
                    drop\\j-<pid>\\<--junction-file>; the junction is removed afterwards
  --junction-file <name>
                    the file to ask for through the junction (default: vault.txt)
  --offset <n>      where to start (default 0)
  --length <n>      how many bytes (1..${MAX_READ_LENGTH}, default 32)
  --level <l>       impersonation level we allow the server: Anonymous, Identification,
                    Impersonation (default), Delegation
  --no-direct       do not try to open the file ourselves first
  --no-probes       do not send the malformed requests that check the server refuses them
  --json            print one JSON document (schema deno-lpc/exp1-client@1)
  --help            this text

${EXIT_CODES_HELP}`;

/** The result of one attempt to read. */
export interface Attempt {
  /** NTSTATUS in hex. */
  status: string;
  /** Its name. */
  name: string;
  /** What was read, as text (control characters escaped). */
  text?: string;
  /** How many bytes. */
  bytes?: number;
  /** The server's reason for a refusal. */
  reason?: string;
  /** Which of the server's checks answered (`served`, `path`, `open`, `finalPath`, ...). */
  stage?: string;
  /** Whether the server's open ran while it impersonated us. */
  impersonated?: boolean;
  /** When it finished (epoch ms). */
  at: number;
}

/** The client's JSON document. */
export interface ClientDocument {
  /** Always `deno-lpc/exp1-client@1`. */
  schema: "deno-lpc/exp1-client@1";
  /** Who the client is. */
  identity: {
    pid: number;
    tid: number;
    user: string;
    integrity: string;
    elevated: boolean;
    administrators: "enabled" | "deny-only" | "absent";
  };
  /** The direct open of the file. */
  direct?: Attempt;
  /** The same bytes through the server. */
  viaServer?: Attempt;
  /** Malformed requests and the server's answer to each. */
  probes?: { what: string; status: string; name: string; reason: string; stage?: string }[];
  /** The hostile request through a junction, when asked for. */
  junction?: {
    /** The junction we made (`<root>\drop\j-<pid>`) and where it points. */
    path: string;
    target: string;
    /** Whether we could make it; if not, the status that stopped us. */
    made: boolean;
    createStatus?: string;
    createName?: string;
    /** What we asked the server for, and its answer (when the junction was made). */
    request?: string;
    reply?: Attempt;
  };
}

const now = () => Math.round((performance.timeOrigin + performance.now()) * 10) / 10;
/** The text, with control characters shown as `\xNN`. */
const printable = (b: Uint8Array) =>
  [...new TextDecoder().decode(b)].map((c) => {
    const n = c.charCodeAt(0);
    return n < 0x20 || n === 0x7f ? `\\x${n.toString(16).padStart(2, "0")}` : c;
  }).join("");

function answer(reply: ReturnType<typeof decodeReadReply>): Attempt {
  return {
    status: formatHex(reply.status),
    name: reply.statusName ?? formatHex(reply.status),
    ...(reply.bytes.byteLength
      ? { text: printable(reply.bytes), bytes: reply.bytes.byteLength }
      : {}),
    ...(reply.reason ? { reason: reply.reason } : {}),
    ...(reply.stage ? { stage: reply.stage } : {}),
    impersonated: reply.impersonated,
    at: now(),
  };
}

function failed(e: unknown): Attempt {
  if (e instanceof NtError) {
    return { status: e.hex, name: e.symbol ?? e.hex, reason: `${e.call}`, at: now() };
  }
  throw e;
}

/** Malformed or hostile requests; each must be refused with a status, and the server must live on. */
function probes(path: string): { what: string; bytes: Uint8Array }[] {
  const one = (p: string) => encodeReadRequest({ path: p, offset: 0n, length: 8 });
  const good = encodeReadRequest({ path, offset: 0n, length: 8 });
  const badMagic = good.slice();
  badMagic[0] = 0x58;
  return [
    {
      what: "'..' escape",
      bytes: encodeReadRequest({ path: "..\\..\\Windows\\win.ini", offset: 0n, length: 8 }),
    },
    { what: "absolute path", bytes: one("C:\\Windows\\win.ini") },
    { what: "rooted path", bytes: one("\\Windows\\win.ini") },
    { what: "NT namespace path", bytes: one("\\??\\C:\\Windows\\win.ini") },
    { what: "Win32 device path", bytes: one("\\\\?\\C:\\Windows\\win.ini") },
    { what: "UNC path", bytes: one("\\\\localhost\\C$\\Windows\\win.ini") },
    {
      what: "alternate data stream",
      bytes: encodeReadRequest({ path: `${path}:hidden`, offset: 0n, length: 8 }),
    },
    {
      what: "length beyond one reply",
      bytes: encodeReadRequest({ path, offset: 0n, length: MAX_READ_LENGTH + 1 }),
    },
    {
      what: "unknown operation",
      bytes: encodeReadRequest({ path, offset: 0n, length: 8 }, PROTOCOL_VERSION, Op.READ + 41),
    },
    {
      what: "unknown version",
      bytes: encodeReadRequest({ path, offset: 0n, length: 8 }, PROTOCOL_VERSION + 8),
    },
    { what: "bad magic", bytes: badMagic },
    { what: "truncated request", bytes: good.subarray(0, good.byteLength - 3) },
    { what: "empty request", bytes: new Uint8Array(0) },
  ];
}

/** Runs the client's part (Windows only). */
export function runClient(o: {
  port: string;
  path: string;
  root: string | undefined;
  junctionTo: string | undefined;
  junctionFile: string;
  offset: bigint;
  length: number;
  level: ImpersonationLevelName;
  direct: boolean;
  probes: boolean;
}): ClientDocument {
  using token = openProcessToken();
  const admins = tokenGroups(token).find((g) => g.sid === WellKnownSid.Administrators);
  const doc: ClientDocument = {
    schema: "deno-lpc/exp1-client@1",
    identity: {
      pid: currentProcessId(),
      tid: kernel32().GetCurrentThreadId(),
      user: tokenUserSid(token),
      integrity: tokenIntegrity(token).name,
      elevated: tokenIsElevated(token),
      administrators: admins === undefined
        ? "absent"
        : admins.denyOnly
        ? "deny-only"
        : admins.enabled
        ? "enabled"
        : "deny-only",
    },
  };
  if (o.direct && o.root !== undefined) {
    try {
      const b = readFileRange(`${o.root.replace(/\\$/, "")}\\${o.path}`, o.offset, o.length);
      doc.direct = {
        status: "0x00000000",
        name: "STATUS_SUCCESS",
        text: printable(b),
        bytes: b.byteLength,
        at: now(),
      };
    } catch (e) {
      doc.direct = failed(e);
    }
  }
  using client = LpcClient.connect(o.port, { impersonationLevel: o.level });
  const reply = decodeReadReply(
    client.request(encodeReadRequest({ path: o.path, offset: o.offset, length: o.length })).data,
  );
  doc.viaServer = answer(reply);
  if (o.probes) {
    doc.probes = probes(o.path).map((p) => {
      const r = decodeReadReply(client.request(p.bytes).data);
      return {
        what: p.what,
        status: formatHex(r.status),
        name: statusName(r.status) ?? "",
        reason: r.reason,
        ...(r.stage ? { stage: r.stage } : {}),
      };
    });
  }
  if (o.junctionTo !== undefined && o.root !== undefined) {
    doc.junction = hostileJunction(client, o.root, o.junctionTo, o.junctionFile);
  }
  return doc;
}

/**
 * The hostile request (nt-semantics.md E13): in the server's `drop\` folder, which we may write,
 * make a junction to a folder only administrators may read, and ask the server for a file
 * through it. A server that confines itself by the path's text alone would follow it.
 */
function hostileJunction(
  client: LpcClient,
  root: string,
  target: string,
  file: string,
): NonNullable<ClientDocument["junction"]> {
  const name = `j-${currentProcessId()}`;
  const path = `${root.replace(/\\$/, "")}\\drop\\${name}`;
  let junction;
  try {
    junction = createJunction(path, target);
  } catch (e) {
    if (!(e instanceof NtError)) throw e;
    return { path, target, made: false, createStatus: e.hex, createName: e.symbol ?? e.hex };
  }
  using _junction = junction; // closing it removes the junction (never its target)
  const request = `drop\\${name}\\${file}`;
  const reply = decodeReadReply(
    client.request(encodeReadRequest({ path: request, offset: 0n, length: 16 })).data,
  );
  return { path, target, made: true, request, reply: answer(reply) };
}

function main(args: string[]): number {
  const v = parseCli(args, {
    port: { type: "string" },
    path: { type: "string" },
    root: { type: "string" },
    "junction-to": { type: "string" },
    "junction-file": { type: "string", default: "vault.txt" },
    offset: { type: "string", default: "0" },
    length: { type: "string", default: "32" },
    level: { type: "string", default: "Impersonation" },
    "no-direct": { type: "boolean", default: false },
    "no-probes": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (v.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  if (!v.port || !v.path) throw new UsageError("--port and --path are required");
  if (v["junction-to"] !== undefined && v.root === undefined) {
    throw new UsageError("--junction-to needs --root (the junction goes in <root>\\drop)");
  }
  const length = Number(v.length);
  if (!Number.isInteger(length) || length < 1 || length > MAX_READ_LENGTH) {
    throw new UsageError(`--length must be 1..${MAX_READ_LENGTH}`);
  }
  if (!/^\d+$/.test(v.offset!)) throw new UsageError("--offset must be a whole number");
  const levels = ["Anonymous", "Identification", "Impersonation", "Delegation"];
  if (!levels.includes(v.level!)) {
    throw new UsageError(`--level must be one of ${levels.join(", ")}`);
  }
  assertWindows("exp1_client");
  const doc = runClient({
    port: v.port,
    path: v.path,
    root: v.root,
    junctionTo: v["junction-to"],
    junctionFile: v["junction-file"]!,
    offset: BigInt(v.offset!),
    length,
    level: v.level as ImpersonationLevelName,
    direct: !v["no-direct"],
    probes: !v["no-probes"],
  });
  if (v.json) console.log(toJson(doc));
  else {
    const id = doc.identity;
    console.log(
      `client pid ${id.pid} tid ${id.tid}, ${id.user}, ${id.integrity} integrity, Administrators ${id.administrators}`,
    );
    if (doc.direct) {
      console.log(
        `direct open:    ${doc.direct.name}${
          doc.direct.text !== undefined ? ` "${doc.direct.text}"` : ""
        }`,
      );
    }
    const s = doc.viaServer!;
    console.log(
      `through server: ${s.name}${s.text !== undefined ? ` "${s.text}"` : ""}${
        s.reason ? ` (${s.reason})` : ""
      }`,
    );
    for (const p of doc.probes ?? []) {
      console.log(`probe ${p.what}: ${p.name || p.status} (${p.reason})`);
    }
    const j = doc.junction;
    if (j) {
      console.log(
        j.made
          ? `junction ${j.path} -> ${j.target}: the server answered ${j.reply!.name} at its ${
            j.reply!.stage
          } check (${j.reply!.reason ?? ""})`
          : `junction ${j.path} -> ${j.target}: could not be made (${j.createName})`,
      );
    }
  }
  return EXIT.OK;
}

if (import.meta.main) {
  await runMain("exp1_client", main);
}
