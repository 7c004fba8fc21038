/** Experiment 1's protocol and server logic (runs everywhere; the kernel is the fake). */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  comparablePath,
  decodeReadReply,
  decodeReadRequest,
  encodeReadReply,
  encodeReadRequest,
  isUnderRoot,
  MAX_PATH_CHARS,
  MAX_PAYLOAD,
  MAX_READ_LENGTH,
  type OpenedFile,
  type ReadContext,
  Refusal,
  serveRead,
  validateRelativePath,
} from "../../experiments/exp1/exp1_protocol.ts";
import { portSddl } from "../../experiments/exp1/exp1_server.ts";
import {
  dropSddl,
  explainAnswer,
  labSddl,
  type ServerAnswer,
  VAULT_SDDL,
} from "../../experiments/exp1/exp1.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../../ffi/lpc/port.ts";
import { NtError, NTSTATUS } from "../../ffi/status.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const ROOT = "C:\\Users\\lab\\Temp\\deno-lpc-lab-1";
const ROOT_FINAL = `\\\\?\\${ROOT}`;
const SECRET = `${ROOT}\\secret.txt`;

/** Files by relative name; `open` fails as `fail` says, final paths as `finalOf` says. */
function fakeFs(
  files: Record<string, string>,
  o: {
    fail?: (relative: string) => NtError | undefined;
    finalOf?: (relative: string) => string;
  } = {},
): ReadContext & { opened: string[]; closed: string[] } {
  const opened: string[] = [];
  const closed: string[] = [];
  return {
    opened,
    closed,
    rootFinalPath: () => ROOT_FINAL,
    open(relative): OpenedFile {
      const err = o.fail?.(relative);
      if (err) throw err;
      const content = files[relative.toLowerCase()];
      if (content === undefined) {
        throw new NtError(
          "NtCreateFile",
          NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND,
          "ntstatus",
          relative,
        );
      }
      opened.push(relative);
      return {
        finalPath: () => o.finalOf?.(relative) ?? `${ROOT_FINAL}\\${relative}`,
        read: (offset, length) =>
          new TextEncoder().encode(content).subarray(Number(offset), Number(offset) + length),
        [Symbol.dispose]: () => void closed.push(relative),
      };
    },
  };
}

Deno.test("READ request and reply round trip, within one legacy message", () => {
  const req = { path: SECRET, offset: 5n, length: 32 };
  assertEquals(decodeReadRequest(encodeReadRequest(req)), req);
  const reply = decodeReadReply(encodeReadReply(0, new Uint8Array([1, 2, 3]), ""));
  assertEquals({ ...reply, bytes: [...reply.bytes] }, {
    status: 0,
    statusName: "STATUS_SUCCESS",
    bytes: [1, 2, 3],
    reason: "",
    stage: "served",
    impersonated: false,
    inView: false,
  });
  const refusal = decodeReadReply(encodeReadReply(0xc0000022, undefined, "no", "open", true));
  assertEquals([refusal.stage, refusal.impersonated, refusal.reason], ["open", true, "no"]);
  assertStrictEquals(MAX_PAYLOAD, 472);
  assert(
    encodeReadRequest({ path: "x".repeat(MAX_PATH_CHARS), offset: 0n, length: 1 }).byteLength <=
      MAX_PAYLOAD,
  );
  assertThrows(
    () => encodeReadRequest({ path: "x".repeat(MAX_PATH_CHARS + 1), offset: 0n, length: 1 }),
    RangeError,
  );
  assert(
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
    const e = assertThrows(() => decodeReadRequest(bytes), Refusal, undefined, what);
    assertStrictEquals(e.status, status, what);
    const fs = fakeFs({ "secret.txt": "x" });
    const reply = decodeReadReply(serveRead(bytes, fs));
    assertStrictEquals(reply.status, status, what);
    assertStrictEquals(reply.stage, "request", what);
    assert(reply.reason.length > 0, `${what} has a reason`);
    assertEquals(fs.opened, [], `${what}: nothing opened`);
  }
});

Deno.test("validateRelativePath(): relative names pass, normalized to backslashes", () => {
  assertStrictEquals(validateRelativePath("secret.txt"), "secret.txt");
  assertStrictEquals(validateRelativePath("drop/sub/x.txt"), "drop\\sub\\x.txt");
  assertStrictEquals(
    validateRelativePath("drop\\x..y.txt"),
    "drop\\x..y.txt",
    "'..' inside a name",
  );
  assertStrictEquals(validateRelativePath("a".repeat(MAX_PATH_CHARS)), "a".repeat(MAX_PATH_CHARS));
});

Deno.test("validateRelativePath(): absolute, '..', ':', UNC, \\\\?\\, empty and over-long paths are refused with a reason", () => {
  const BAD = NTSTATUS.STATUS_OBJECT_PATH_SYNTAX_BAD;
  const INVALID = NTSTATUS.STATUS_OBJECT_NAME_INVALID;
  const refused: [string, number, RegExp][] = [
    ["C:\\Windows\\win.ini", BAD, /absolute/],
    [SECRET, BAD, /absolute/],
    ["C:secret.txt", BAD, /absolute/],
    ["c:/Windows/win.ini", BAD, /absolute/],
    ["\\Windows\\win.ini", BAD, /absolute/],
    ["/etc/passwd", BAD, /absolute/],
    ["..\\..\\Windows\\win.ini", BAD, /'\.\.'/],
    ["drop\\..\\..\\x", BAD, /'\.\.'/],
    ["sub/../../x", BAD, /'\.\.'/],
    ["..", BAD, /'\.\.'/],
    ["secret.txt:hidden", BAD, /stream/],
    ["secret.txt::$DATA", BAD, /stream/],
    ["drop\\CON:", BAD, /stream/],
    ["\\\\server\\share\\x", BAD, /UNC/],
    ["//server/share/x", BAD, /UNC/],
    ["\\\\?\\C:\\Windows\\win.ini", BAD, /device/],
    ["\\\\.\\PhysicalDrive0", BAD, /device/],
    ["\\??\\C:\\x", BAD, /NT-namespace/],
    ["", INVALID, /empty/],
    ["a".repeat(MAX_PATH_CHARS + 1), INVALID, /over-long/],
    ["a\0b", INVALID, /NUL/],
    ["drop\\\\x", INVALID, /empty and '\.'/],
    ["drop\\", INVALID, /empty and '\.'/],
    [".\\secret.txt", INVALID, /empty and '\.'/],
    ["secret*.txt", INVALID, /character/],
    ["secret?.txt", INVALID, /character/],
    ["a\u0001b", INVALID, /character/],
  ];
  for (const [path, status, why] of refused) {
    const e = assertThrows(
      () => validateRelativePath(path),
      Refusal,
      undefined,
      JSON.stringify(path),
    );
    assertStrictEquals(e.status, status, JSON.stringify(path));
    assertStrictEquals(e.stage, "path", JSON.stringify(path));
    assertMatch(e.message, why, JSON.stringify(path));
    // And through the server: refused at the path stage, nothing opened (an empty or over-long
    // path cannot even be encoded as a well-formed request).
    const fs = fakeFs({ "secret.txt": "x" });
    if (path.length > 0 && path.length <= MAX_PATH_CHARS) {
      const r = decodeReadReply(
        serveRead(encodeReadRequest({ path, offset: 0n, length: 1 }), fs),
      );
      assertEquals([r.status, r.stage], [status, "path"], JSON.stringify(path));
      assertEquals(fs.opened, []);
    }
  }
});

Deno.test("isUnderRoot(): final paths compared without case, \\\\?\\ prefix and trailing separators, on whole components", () => {
  const yes: [string, string][] = [
    ["\\\\?\\C:\\lab", "\\\\?\\C:\\lab\\secret.txt"],
    ["\\\\?\\C:\\lab", "\\\\?\\c:\\LAB\\Drop\\x.txt"],
    ["\\\\?\\C:\\lab\\", "\\\\?\\C:\\lab\\secret.txt"],
    ["C:\\lab", "\\\\?\\C:\\lab\\secret.txt"],
    ["\\\\?\\C:\\lab", "C:\\lab\\secret.txt"],
    ["\\\\?\\C:\\lab", "\\\\?\\C:\\lab"],
    ["\\\\?\\C:\\", "\\\\?\\C:\\anything"],
    ["\\\\?\\UNC\\srv\\share\\lab", "\\\\srv\\share\\lab\\x"],
  ];
  for (const [root, file] of yes) {
    assertStrictEquals(isUnderRoot(root, file), true, `${file} under ${root}`);
  }
  const no: [string, string][] = [
    ["\\\\?\\C:\\lab", "\\\\?\\C:\\lab2\\secret.txt"],
    ["\\\\?\\C:\\lab", "\\\\?\\C:\\lab-vault\\vault.txt"],
    ["\\\\?\\C:\\lab\\", "\\\\?\\C:\\lab2"],
    ["\\\\?\\C:\\lab", "\\\\?\\C:\\Windows\\win.ini"],
    ["\\\\?\\C:\\lab", "\\\\?\\D:\\lab\\secret.txt"],
    ["\\\\?\\C:\\lab", "\\\\?\\C:\\la"],
    ["", "\\\\?\\C:\\x"],
  ];
  for (const [root, file] of no) {
    assertStrictEquals(isUnderRoot(root, file), false, `${file} not under ${root}`);
  }
  assertStrictEquals(comparablePath("\\\\?\\C:\\Lab\\\\"), "C:\\LAB");
});

Deno.test("the lab's DACLs: protected, the client reads the lab, writes only in drop\\, never re-permissions", () => {
  const sid = "S-1-5-21-1-2-3-1001";
  assertStrictEquals(labSddl(sid), `D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;0x1200a9;;;${sid})`);
  assertStrictEquals(
    dropSddl(sid, false),
    `D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;0x1200af;;;${sid})(A;OICIIO;0x1301bf;;;${sid})`,
  );
  assertMatch(dropSddl(sid, true), /S:\(ML;OICI;NW;;;LW\)$/);
  assertStrictEquals(VAULT_SDDL, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)");
  // The client's rights, decoded: read & execute is exactly FILE_GENERIC_READ |
  // FILE_GENERIC_EXECUTE (no FILE_ADD_FILE 0x2, no FILE_ADD_SUBDIRECTORY 0x4); drop adds just
  // those two; what the client creates in drop gets "modify": no WRITE_DAC, no WRITE_OWNER.
  const FILE_GENERIC_READ = 0x120089;
  const FILE_GENERIC_EXECUTE = 0x1200a0;
  const FILE_GENERIC_WRITE = 0x120116;
  const DELETE = 0x10000;
  assertStrictEquals(FILE_GENERIC_READ | FILE_GENERIC_EXECUTE, 0x1200a9);
  assertStrictEquals(0x1200a9 & 0x6, 0);
  assertStrictEquals(0x1200a9 | 0x2 | 0x4, 0x1200af);
  assertStrictEquals(
    FILE_GENERIC_READ | FILE_GENERIC_EXECUTE | FILE_GENERIC_WRITE | DELETE,
    0x1301bf,
  );
  assertStrictEquals(0x1301bf & 0xc0000, 0);
  for (const sddl of [labSddl(sid), dropSddl(sid, true), VAULT_SDDL]) {
    assertNotMatch(sddl, /;;;(WD|BU|AU|IU)\)/, "no ACE for Everyone, Users, ...");
    assert(sddl.startsWith("D:P"), "protected: nothing inherited from %TEMP%");
  }
});

Deno.test("explainAnswer(): 'the kernel checked the client's token' only for a denied open under impersonation", () => {
  const CLIENT_TOKEN = /the kernel checked the client's token/;
  assertMatch(
    explainAnswer({ name: "STATUS_ACCESS_DENIED", stage: "open", impersonated: true }),
    CLIENT_TOKEN,
  );
  const others: [string, ServerAnswer, RegExp][] = [
    ["denied as the server", {
      name: "STATUS_ACCESS_DENIED",
      stage: "open",
      impersonated: false,
    }, /server's own token/],
    ["reparse point, impersonating", {
      name: "STATUS_REPARSE_POINT_ENCOUNTERED",
      stage: "open",
      impersonated: true,
    }, /OBJ_DONT_REPARSE/],
    ["reparse point, as the server", {
      name: "STATUS_REPARSE_POINT_ENCOUNTERED",
      stage: "open",
      impersonated: false,
    }, /OBJ_DONT_REPARSE/],
    ["final path, impersonating", {
      name: "STATUS_ACCESS_DENIED",
      stage: "finalPath",
      impersonated: true,
    }, /final-path check/],
    ["path text", {
      name: "STATUS_OBJECT_PATH_SYNTAX_BAD",
      stage: "path",
      impersonated: true,
    }, /path's text/],
    ["impersonation failed", {
      name: "STATUS_ACCESS_DENIED",
      stage: "impersonate",
      impersonated: true,
    }, /impersonating the client failed/],
    ["malformed", { name: "STATUS_INVALID_PARAMETER", stage: "request" }, /malformed/],
    ["read failed", { name: "STATUS_ACCESS_DENIED", stage: "read", impersonated: true }, /reading/],
    ["not found, impersonating", {
      name: "STATUS_OBJECT_NAME_NOT_FOUND",
      stage: "open",
      impersonated: true,
    }, /failed with STATUS_OBJECT_NAME_NOT_FOUND/],
    ["served as the server", {
      name: "STATUS_SUCCESS",
      stage: "served",
      impersonated: false,
    }, /its own token/],
  ];
  for (const [what, answer, expected] of others) {
    const text = explainAnswer(answer);
    assertMatch(text, expected, what);
    assertNotMatch(text, CLIENT_TOKEN, what);
  }
});

Deno.test("serveRead(): each check answers with its stage, and every opened file is closed", () => {
  const files = { "secret.txt": "TOP SECRET", "drop\\j\\vault.txt": "VAULT" };
  const ask = (ctx: ReadContext, path: string) =>
    decodeReadReply(serveRead(encodeReadRequest({ path, offset: 0n, length: 5 }), ctx));
  const fs = fakeFs(files);
  const ok = ask(fs, "SECRET.TXT");
  assertEquals([ok.statusName, ok.stage, ok.impersonated], ["STATUS_SUCCESS", "served", false]);
  assertStrictEquals(new TextDecoder().decode(ok.bytes), "TOP S");
  const text = ask(fs, "..\\x");
  assertEquals([text.statusName, text.stage], ["STATUS_OBJECT_PATH_SYNTAX_BAD", "path"]);
  const missing = ask(fs, "none.txt");
  assertEquals([missing.statusName, missing.stage], ["STATUS_OBJECT_NAME_NOT_FOUND", "open"]);
  // OBJ_DONT_REPARSE: the open's answer.
  const reparse = fakeFs(files, {
    fail: (r) =>
      r.startsWith("drop\\j\\")
        ? new NtError("NtCreateFile", NTSTATUS.STATUS_REPARSE_POINT_ENCOUNTERED, "ntstatus", r)
        : undefined,
  });
  const refusedOpen = ask(reparse, "drop/j/vault.txt");
  assertEquals(
    [refusedOpen.statusName, refusedOpen.stage],
    ["STATUS_REPARSE_POINT_ENCOUNTERED", "open"],
  );
  assertMatch(refusedOpen.reason, /NtCreateFile: STATUS_REPARSE_POINT_ENCOUNTERED/);
  // A system that followed the junction anyway: the final-path check refuses and closes the file.
  const followed = fakeFs(files, {
    finalOf: (r) => r.startsWith("drop") ? `${ROOT_FINAL}-vault\\vault.txt` : `${ROOT_FINAL}\\${r}`,
  });
  const outside = ask(followed, "drop\\j\\vault.txt");
  assertEquals([outside.statusName, outside.stage], ["STATUS_ACCESS_DENIED", "finalPath"]);
  assertMatch(outside.reason, /deno-lpc-lab-1-vault\\vault\.txt, outside the root/);
  assertStrictEquals(outside.bytes.byteLength, 0, "nothing read from outside the root");
  assertEquals(followed.closed, followed.opened, "the refused file was closed");
  assertEquals(fs.closed, fs.opened);
});

Deno.test("serveRead(): impersonation wraps only the open; its own failure is not the open's answer", () => {
  const files = { "secret.txt": "TOP SECRET" };
  const request = encodeReadRequest({ path: "secret.txt", offset: 0n, length: 3 });
  let depth = 0;
  const during: number[] = [];
  const fs = fakeFs(files, {
    fail: (r) => {
      during.push(depth);
      return depth > 0
        ? new NtError("NtCreateFile", NTSTATUS.STATUS_ACCESS_DENIED, "ntstatus", r)
        : undefined;
    },
  });
  const impersonate = <T>(fn: () => T): T => {
    depth++;
    try {
      return fn();
    } finally {
      depth--;
    }
  };
  const denied = decodeReadReply(serveRead(request, { ...fs, impersonate }));
  assertEquals(
    [denied.statusName, denied.stage, denied.impersonated],
    ["STATUS_ACCESS_DENIED", "open", true],
  );
  assertEquals(during, [1], "the open ran impersonated");
  // Impersonating fails (e.g. a wrong port, E10): refused without opening, not "the client's token".
  const cannot = decodeReadReply(serveRead(request, {
    ...fakeFs(files),
    impersonate: () => {
      throw new NtError("NtImpersonateClientOfPort", NTSTATUS.STATUS_ACCESS_DENIED);
    },
  }));
  assertEquals([cannot.statusName, cannot.stage], ["STATUS_ACCESS_DENIED", "impersonate"]);
  assertMatch(cannot.reason, /impersonating failed: NtImpersonateClientOfPort/);
  assertNotMatch(
    explainAnswer({ name: cannot.statusName!, stage: cannot.stage!, impersonated: true }),
    /client's token/,
  );
  // Reverting fails after a successful open: the file is closed, nothing is read.
  const files2 = fakeFs(files);
  const revert = decodeReadReply(serveRead(request, {
    ...files2,
    impersonate: (fn) => {
      fn();
      throw new NtError("NtSetInformationThread", NTSTATUS.STATUS_INVALID_HANDLE);
    },
  }));
  assertEquals([revert.stage, revert.bytes.byteLength], ["impersonate", 0]);
  assertMatch(revert.reason, /reverting failed/);
  assertEquals(files2.closed, ["secret.txt"]);
});

Deno.test("portSddl(): PORT_CONNECT for one SID only, all for SYSTEM and Administrators, a Low label on request", () => {
  assertStrictEquals(
    portSddl("S-1-5-21-1-2-3-1001", false),
    "D:(A;;0x1;;;S-1-5-21-1-2-3-1001)(A;;GA;;;SY)(A;;GA;;;BA)",
  );
  assertMatch(portSddl("WD", true), /S:\(ML;;NW;;;LW\)$/);
});

// ---- The whole exchange against the fake kernel: confused deputy vs safe mode ----

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 500, tid: 501 };

function exchange(
  impersonate: boolean,
): {
  stage: string | undefined;
  impersonated: boolean;
  status: string | undefined;
  bytes: string;
  refusedProbes: number;
  events: string[];
} {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort("\\RPC Control\\exp1", { nt: k.symbols }));
  // The "file system": the secret is readable by the server's own identity only.
  const fs = fakeFs({ "secret.txt": "TOP SECRET" }, {
    fail: (r) =>
      k.impersonating.get(SERVER.tid) === CLIENT.pid
        ? new NtError("NtCreateFile", NTSTATUS.STATUS_ACCESS_DENIED, "ntstatus", r)
        : undefined,
  });
  const server = new LpcServer(port, {
    request: (r) =>
      serveRead(r.data, { ...fs, ...(impersonate ? { impersonate: r.impersonate } : {}) }),
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(CLIENT, () => LpcClient.connect("\\RPC Control\\exp1", { nt: k.symbols }));
  const ask = (bytes: Uint8Array) =>
    decodeReadReply(k.as(CLIENT, () => client.request(bytes)).data);
  const main = ask(encodeReadRequest({ path: "secret.txt", offset: 0n, length: 10 }));
  const hostile = [
    encodeReadRequest({ path: "..\\x", offset: 0n, length: 1 }),
    encodeReadRequest({ path: "C:\\Windows\\win.ini", offset: 0n, length: 1 }),
    new Uint8Array(3),
    encodeReadRequest({ path: "a", offset: 0n, length: 1 }, 7),
  ];
  const refusedProbes = hostile.map(ask).filter((r) => r.status !== 0).length;
  const after = ask(encodeReadRequest({ path: "secret.txt", offset: 4n, length: 3 }));
  assertStrictEquals(after.status, main.status, "the server still serves after hostile requests");
  k.as(CLIENT, () => client.close());
  k.as(SERVER, () => server.step(0));
  k.as(SERVER, () => server[Symbol.dispose]());
  assertStrictEquals(k.openHandles(SERVER.pid), 0);
  assertStrictEquals(k.impersonating.size, 0, "never left impersonating");
  assertEquals(fs.closed, fs.opened, "every opened file was closed");
  return {
    stage: main.stage,
    impersonated: main.impersonated,
    status: main.statusName,
    bytes: new TextDecoder().decode(main.bytes),
    refusedProbes,
    events: server.events.map((e) => e.event),
  };
}

Deno.test("confused deputy: the server reads the secret for the client", () => {
  const r = exchange(false);
  assertStrictEquals(r.status, "STATUS_SUCCESS");
  assertEquals([r.stage, r.impersonated], ["served", false]);
  assertStrictEquals(r.bytes, "TOP SECRET");
  assertStrictEquals(r.refusedProbes, 4);
  assertEquals(r.events.slice(0, 3), ["accept", "LPC_REQUEST", "reply"]);
  assertStrictEquals(r.events.at(-1), "LPC_PORT_CLOSED");
});

Deno.test("safe mode: impersonating the client, the server is denied what the client is denied", () => {
  const r = exchange(true);
  assertStrictEquals(r.status, "STATUS_ACCESS_DENIED");
  assertEquals([r.stage, r.impersonated], ["open", true], "the open, under impersonation");
  assertStrictEquals(r.bytes, "");
  assertStrictEquals(r.refusedProbes, 4);
});
