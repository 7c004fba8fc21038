/** Experiment 1's protocol and server logic (runs everywhere; the kernel is the fake). */

import assert from "node:assert/strict";
import {
  decodeReadReply,
  decodeReadRequest,
  encodeReadReply,
  encodeReadRequest,
  MAX_PATH_CHARS,
  MAX_PAYLOAD,
  MAX_READ_LENGTH,
  Refusal,
  resolveInsideRoot,
  serveRead,
} from "../experiments/exp1_protocol.ts";
import { portSddl } from "../experiments/exp1_server.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../ffi/lpc.ts";
import { NtError, NTSTATUS } from "../ffi/status.ts";
import { FakeKernel, type Identity } from "./fake_kernel.ts";

const ROOT = "C:\\Users\\lab\\Temp\\deno-lpc-lab-1";
const SECRET = `${ROOT}\\secret.txt`;

Deno.test("READ request and reply round trip, within one legacy message", () => {
  const req = { path: SECRET, offset: 5n, length: 32 };
  assert.deepEqual(decodeReadRequest(encodeReadRequest(req)), req);
  const reply = decodeReadReply(encodeReadReply(0, new Uint8Array([1, 2, 3]), ""));
  assert.deepEqual({ ...reply, bytes: [...reply.bytes] }, {
    status: 0,
    statusName: "STATUS_SUCCESS",
    bytes: [1, 2, 3],
    reason: "",
  });
  assert.equal(MAX_PAYLOAD, 472);
  assert.ok(
    encodeReadRequest({ path: "x".repeat(MAX_PATH_CHARS), offset: 0n, length: 1 }).byteLength <=
      MAX_PAYLOAD,
  );
  assert.throws(
    () => encodeReadRequest({ path: "x".repeat(MAX_PATH_CHARS + 1), offset: 0n, length: 1 }),
    RangeError,
  );
  assert.ok(
    encodeReadReply(0, new Uint8Array(MAX_READ_LENGTH), "a long reason that must be cut")
      .byteLength <= MAX_PAYLOAD,
  );
});

Deno.test("malformed, truncated and unknown requests are refused with a status", () => {
  const good = encodeReadRequest({ path: "secret.txt", offset: 0n, length: 8 });
  const cases: [string, Uint8Array, number][] = [
    ["empty", new Uint8Array(0), NTSTATUS.STATUS_INVALID_PARAMETER],
    ["truncated", good.subarray(0, good.byteLength - 2), NTSTATUS.STATUS_INVALID_PARAMETER],
    ["padded", new Uint8Array([...good, 0, 0]), NTSTATUS.STATUS_INVALID_PARAMETER],
    [
      "bad magic",
      (() => {
        const b = good.slice();
        b[1] = 0;
        return b;
      })(),
      NTSTATUS.STATUS_INVALID_PARAMETER,
    ],
    [
      "version 2",
      encodeReadRequest({ path: "a", offset: 0n, length: 1 }, 2),
      NTSTATUS.STATUS_REVISION_MISMATCH,
    ],
    [
      "op 9",
      encodeReadRequest({ path: "a", offset: 0n, length: 1 }, 1, 9),
      NTSTATUS.STATUS_NOT_SUPPORTED,
    ],
    [
      "length 0",
      encodeReadRequest({ path: "a", offset: 0n, length: 0 }),
      NTSTATUS.STATUS_INVALID_PARAMETER,
    ],
    [
      "length too big",
      encodeReadRequest({ path: "a", offset: 0n, length: MAX_READ_LENGTH + 1 }),
      NTSTATUS.STATUS_INVALID_PARAMETER,
    ],
    [
      "odd path bytes",
      (() => {
        const b = good.slice(0, good.byteLength - 1);
        new DataView(b.buffer).setUint16(20, b.byteLength - 24, true);
        return b;
      })(),
      NTSTATUS.STATUS_INVALID_PARAMETER,
    ],
  ];
  for (const [what, bytes, status] of cases) {
    assert.throws(
      () => decodeReadRequest(bytes),
      (e) => e instanceof Refusal && e.status === status,
      what,
    );
    const reply = decodeReadReply(serveRead(bytes, { root: ROOT, read: () => new Uint8Array(1) }));
    assert.equal(reply.status, status, what);
    assert.ok(reply.reason.length > 0, `${what} has a reason`);
  }
});

Deno.test("resolveInsideRoot() refuses escapes: '..', device and NT paths, streams, other folders", () => {
  assert.equal(resolveInsideRoot(ROOT, "secret.txt"), SECRET);
  assert.equal(resolveInsideRoot(ROOT, SECRET), SECRET);
  assert.equal(resolveInsideRoot(ROOT, SECRET.toUpperCase()), SECRET.toUpperCase());
  const refused: [string, number][] = [
    ["..\\..\\Windows\\win.ini", NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    [`${ROOT}\\sub\\..\\..\\x`, NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    ["sub/../../x", NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    ["C:\\Windows\\win.ini", NTSTATUS.STATUS_ACCESS_DENIED],
    [`${ROOT}-other\\secret.txt`, NTSTATUS.STATUS_ACCESS_DENIED],
    ["\\\\?\\C:\\Windows\\win.ini", NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    ["\\\\server\\share\\x", NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    ["\\??\\C:\\x", NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    ["secret.txt:hidden", NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    ["secret.txt::$DATA", NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD],
    ["", NTSTATUS.STATUS_OBJECT_NAME_INVALID],
    ["a\0b", NTSTATUS.STATUS_OBJECT_NAME_INVALID],
  ];
  for (const [path, status] of refused) {
    assert.throws(
      () => resolveInsideRoot(ROOT, path),
      (e) => e instanceof Refusal && e.status === status,
      path,
    );
  }
});

Deno.test("serveRead(): reads inside the root; a failing read becomes its NTSTATUS; impersonation wraps the read", () => {
  const calls: string[] = [];
  const read = (p: string, o: bigint, n: number) => {
    calls.push(`${p}@${o}+${n}`);
    return new TextEncoder().encode("TOP SECRET").subarray(0, n);
  };
  const ok = decodeReadReply(
    serveRead(encodeReadRequest({ path: "secret.txt", offset: 0n, length: 3 }), {
      root: ROOT,
      read,
    }),
  );
  assert.equal(ok.status, 0);
  assert.equal(new TextDecoder().decode(ok.bytes), "TOP");
  assert.deepEqual(calls, [`${SECRET}@0+3`]);
  const denied = decodeReadReply(
    serveRead(encodeReadRequest({ path: "secret.txt", offset: 0n, length: 3 }), {
      root: ROOT,
      read: () => {
        throw new NtError("NtCreateFile", NTSTATUS.STATUS_ACCESS_DENIED);
      },
    }),
  );
  assert.equal(denied.statusName, "STATUS_ACCESS_DENIED");
  assert.match(denied.reason, /NtCreateFile/);
  let wrapped = 0;
  serveRead(encodeReadRequest({ path: "secret.txt", offset: 0n, length: 3 }), {
    root: ROOT,
    read,
    impersonate: (fn) => {
      wrapped++;
      return fn();
    },
  });
  assert.equal(wrapped, 1);
});

Deno.test("portSddl(): PORT_CONNECT for one SID only, all for SYSTEM and Administrators, a Low label on request", () => {
  assert.equal(
    portSddl("S-1-5-21-1-2-3-1001", false),
    "D:(A;;0x1;;;S-1-5-21-1-2-3-1001)(A;;GA;;;SY)(A;;GA;;;BA)",
  );
  assert.match(portSddl("WD", true), /S:\(ML;;NW;;;LW\)$/);
});

// ---- The whole exchange against the fake kernel: confused deputy vs safe mode ----

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 500, tid: 501 };

function exchange(
  impersonate: boolean,
): { status: string | undefined; bytes: string; refusedProbes: number; events: string[] } {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort("\\RPC Control\\exp1", {}, k.symbols));
  // The "file system": the secret is readable by the server's own identity only.
  const read = () => {
    if (k.impersonating.get(SERVER.tid) === CLIENT.pid) {
      throw new NtError("NtCreateFile", NTSTATUS.STATUS_ACCESS_DENIED, "ntstatus", SECRET);
    }
    return new TextEncoder().encode("TOP SECRET");
  };
  const server = new LpcServer(port, {
    request: (r) =>
      serveRead(r.data, {
        root: ROOT,
        read,
        ...(impersonate ? { impersonate: r.impersonate } : {}),
      }),
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(CLIENT, () => LpcClient.connect("\\RPC Control\\exp1", { nt: k.symbols }));
  const ask = (bytes: Uint8Array) =>
    decodeReadReply(k.as(CLIENT, () => client.request(bytes)).data);
  const main = ask(encodeReadRequest({ path: SECRET, offset: 0n, length: 10 }));
  const hostile = [
    encodeReadRequest({ path: "..\\x", offset: 0n, length: 1 }),
    encodeReadRequest({ path: "C:\\Windows\\win.ini", offset: 0n, length: 1 }),
    new Uint8Array(3),
    encodeReadRequest({ path: "a", offset: 0n, length: 1 }, 7),
  ];
  const refusedProbes = hostile.map(ask).filter((r) => r.status !== 0).length;
  const after = ask(encodeReadRequest({ path: SECRET, offset: 4n, length: 3 }));
  assert.equal(after.status, main.status, "the server still serves after hostile requests");
  k.as(CLIENT, () => client.close());
  k.as(SERVER, () => server.step(0));
  k.as(SERVER, () => server[Symbol.dispose]());
  assert.equal(k.openHandles(SERVER.pid), 0);
  assert.equal(k.impersonating.size, 0, "never left impersonating");
  return {
    status: main.statusName,
    bytes: new TextDecoder().decode(main.bytes),
    refusedProbes,
    events: server.events.map((e) => e.event),
  };
}

Deno.test("confused deputy: the server reads the secret for the client", () => {
  const r = exchange(false);
  assert.equal(r.status, "STATUS_SUCCESS");
  assert.equal(r.bytes, "TOP SECRET");
  assert.equal(r.refusedProbes, 4);
  assert.deepEqual(r.events.slice(0, 3), ["accept", "LPC_REQUEST", "reply"]);
  assert.equal(r.events.at(-1), "LPC_PORT_CLOSED");
});

Deno.test("safe mode: impersonating the client, the server is denied what the client is denied", () => {
  const r = exchange(true);
  assert.equal(r.status, "STATUS_ACCESS_DENIED");
  assert.equal(r.bytes, "");
  assert.equal(r.refusedProbes, 4);
});
