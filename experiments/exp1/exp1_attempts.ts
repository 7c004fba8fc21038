/**
 * Experiment 1's client, its attempts: who it is, the direct open of the file, the same bytes
 * through the server, the malformed requests the server must refuse, and the hostile request
 * through a junction; each answer as an {@link Attempt}, all in the client's document.
 *
 * @module
 */

import { currentThreadId, NtError, NtFile, Token } from "../../mod.ts";
import { formatHex, type ImpersonationLevelName, statusName, WellKnownSid } from "../../raw.ts";
import { decodeReadReply, encodeReadRequest, MAX_READ_LENGTH, Op } from "./exp1_protocol.ts";
import { PROTOCOL_VERSION, Refusal, validateRelativePath } from "./exp1_protocol.ts";
import { type Exp1Connection, exp1Transport } from "./exp1_transport.ts";
import { checkView, encodeViewReadRequest } from "./exp1_view.ts";
import type { PortInfo, Transport } from "../_transport.ts";

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
  /** A READ_VIEW's answer: where the bytes are in our view, and their SHA-256 checked there. */
  view?: { offset: number; length: number; sha256: string; matches: boolean };
  /** When it finished (epoch ms). */
  at: number;
}

/** The client's JSON document. */
export interface ClientDocument {
  /** Always `deno-lpc/exp1-client@2`. */
  schema: "deno-lpc/exp1-client@2";
  /** The transport it connected over. */
  transport: Transport;
  /** What `NtAlpcQueryInformation` shows of its own (client) port. */
  portInfo?: PortInfo;
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

/** A READ_VIEW reply: the bytes are read from our view, and their SHA-256 compared with the reply's. */
function viewAttempt(client: Exp1Connection, reply: ReturnType<typeof decodeReadReply>): Attempt {
  if (reply.status !== 0 || !reply.inView || !client.view) return answer(reply);
  const c = checkView(reply, (offset, length) => client.view!.read(offset, length));
  return {
    ...answer({ ...reply, bytes: c.bytes.subarray(0, 64) }),
    bytes: c.length,
    view: { offset: c.viewOffset, length: c.length, sha256: c.sha256, matches: c.matches },
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
  // A probe built from a path near the longest one a message carries may not fit: it is left out.
  const fits = (build: () => Uint8Array) => {
    try {
      return build();
    } catch (e) {
      if (e instanceof RangeError) return undefined;
      throw e;
    }
  };
  const stream = fits(() => encodeReadRequest({ path: `${path}:hidden`, offset: 0n, length: 8 }));
  const list: { what: string; bytes: Uint8Array | undefined }[] = [
    {
      what: "'..' escape",
      bytes: encodeReadRequest({ path: "..\\..\\Windows\\win.ini", offset: 0n, length: 8 }),
    },
    { what: "absolute path", bytes: one("C:\\Windows\\win.ini") },
    { what: "rooted path", bytes: one("\\Windows\\win.ini") },
    { what: "NT namespace path", bytes: one("\\??\\C:\\Windows\\win.ini") },
    { what: "Win32 device path", bytes: one("\\\\?\\C:\\Windows\\win.ini") },
    { what: "UNC path", bytes: one("\\\\localhost\\C$\\Windows\\win.ini") },
    { what: "alternate data stream", bytes: stream },
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
    {
      what: "view range outside the view",
      bytes: fits(() =>
        encodeViewReadRequest({ path, offset: 0n, length: 16, viewOffset: 0xffff_0000 })
      ),
    },
    { what: "bad magic", bytes: badMagic },
    { what: "truncated request", bytes: good.subarray(0, good.byteLength - 3) },
    { what: "empty request", bytes: new Uint8Array(0) },
  ];
  return list.flatMap((p) => (p.bytes ? [{ what: p.what, bytes: p.bytes }] : []));
}

/**
 * The file we open ourselves for the direct attempt: `<root>\<path>`, with `path` checked as the
 * server checks it ({@link validateRelativePath}), so both attempts name the same file. A path
 * the server would refuse is not tried (the {@link Attempt} says why).
 */
export function directTarget(root: string, path: string): string | Attempt {
  try {
    return `${root.replace(/\\+$/, "")}\\${validateRelativePath(path)}`;
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    return {
      status: formatHex(e.status),
      name: statusName(e.status) ?? formatHex(e.status),
      reason: `not tried: the server refuses this path too (${e.message})`,
      at: now(),
    };
  }
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
  transport: Transport;
}): ClientDocument {
  using token = Token.open();
  const admins = token.groups().find((g) => g.sid === WellKnownSid.Administrators);
  const doc: ClientDocument = {
    schema: "deno-lpc/exp1-client@2",
    transport: o.transport,
    identity: {
      pid: Deno.pid,
      tid: currentThreadId(),
      user: token.user(),
      integrity: token.integrity().name,
      elevated: token.elevated(),
      administrators: admins === undefined
        ? "absent"
        : admins.denyOnly || !admins.enabled
        ? "deny-only"
        : "enabled",
    },
  };
  const target = o.direct && o.root !== undefined ? directTarget(o.root, o.path) : undefined;
  if (typeof target === "object") doc.direct = target;
  else if (target !== undefined) {
    try {
      const b = NtFile.readRange(target, o.offset, o.length);
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
  // More than one reply holds: through a view (LPC: the connection's; ALPC: sent with READ_VIEW).
  const big = o.length > MAX_READ_LENGTH;
  using client = exp1Transport(o.transport).connect(o.port, {
    level: o.level,
    ...(big ? { viewSize: o.length } : {}),
  });
  doc.portInfo = client.portInfo();
  const read = { path: o.path, offset: o.offset, length: o.length };
  doc.viaServer = big
    ? viewAttempt(
      client,
      decodeReadReply(client.request(encodeViewReadRequest({ ...read, viewOffset: 0 }))),
    )
    : answer(decodeReadReply(client.request(encodeReadRequest(read))));
  if (o.probes) {
    doc.probes = probes(o.path).map((p) => {
      const r = decodeReadReply(client.request(p.bytes));
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
  client: Exp1Connection,
  root: string,
  target: string,
  file: string,
): NonNullable<ClientDocument["junction"]> {
  const name = `j-${Deno.pid}`;
  const path = `${root.replace(/\\$/, "")}\\drop\\${name}`;
  let junction;
  try {
    junction = NtFile.createJunction(path, target);
  } catch (e) {
    if (!(e instanceof NtError)) throw e;
    return { path, target, made: false, createStatus: e.hex, createName: e.symbol ?? e.hex };
  }
  using _junction = junction; // closing it removes the junction (never its target)
  const request = `drop\\${name}\\${file}`;
  const reply = decodeReadReply(
    client.request(encodeReadRequest({ path: request, offset: 0n, length: 16 })),
  );
  return { path, target, made: true, request, reply: answer(reply) };
}
