/**
 * Experiment 1 for real: under Wine, its Windows plumbing, its root confinement as far as Wine
 * implements it, and its clean exit-3 path; on Windows, the LPC round trips and the junction
 * attack (each ignored elsewhere with the reason measured by its probe).
 *
 * Measured under Wine 8.0 (Debian 12): the open relative to a root handle works and accepts
 * `OBJ_DONT_REPARSE`; `GetFinalPathNameByHandleW` gives `\\?\C:\users\...`;
 * `FSCTL_SET_REPARSE_POINT` answers `STATUS_NOT_SUPPORTED` (no junctions, and
 * `CreateSymbolicLinkW` does nothing), so what `OBJ_DONT_REPARSE` does to a junction is seen on
 * Windows only; a file's DACL is not kept (Wine reports one made from the Unix mode bits), and
 * Wine enforces no access checks. Real access enforcement happens on Windows only.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  createJunction,
  finalPathOf,
  openDirectory,
  openFile,
  openRelative,
  readFileAt,
  readFileRange,
  securitySddl,
  tempFolder,
} from "../../ffi/nt/files.ts";
import { LabFolder } from "../../experiments/exp1/lab_folder.ts";
import { NtError } from "../../ffi/status.ts";
import { alpcUnavailable, lpcUnavailable } from "../../ffi/nt/capabilities.ts";
import { LpcClient } from "../../ffi/lpc/port.ts";
import { ServerWorker } from "../../ffi/lpc/server_worker.ts";
import { runCaptured } from "../../ffi/nt/processes.ts";
import { handleTypeIndex } from "../../ffi/nt/system_handles.ts";
import {
  createRestrictedToken,
  openProcessToken,
  setTokenIntegrity,
  TokenAccess,
  tokenUserSid,
  WellKnownSid,
} from "../../ffi/nt/tokens.ts";
import {
  decodeReadReply,
  encodeReadRequest,
  isUnderRoot,
} from "../../experiments/exp1/exp1_protocol.ts";
import { serveFromRoot } from "../../experiments/exp1/exp1_handler.ts";
import {
  dropSddl,
  type Exp1Document,
  type Exp1Run,
  explainAnswer,
  labSddl,
} from "../../experiments/exp1/exp1.ts";
import {
  NOT_WINDOWS,
  ON_WINDOWS_BUILD,
  runExperimentJson,
  WINDOWS_ONLY,
  windowsTest,
} from "../_helpers.ts";
import { assertNoHandleGrowthPerCycle, handleCountsAcrossCycles } from "../_handle_counts.ts";

const LPC_WHY = ON_WINDOWS_BUILD ? lpcUnavailable() : NOT_WINDOWS;

const stamp = () => `${Deno.pid}-${Date.now().toString(36)}`;

/** A root with a plain file and a `drop\` folder, and a sibling "vault" with the same prefix. */
function makeLab():
  & { lab: LabFolder; vault: LabFolder; drop: string; vaultFile: string }
  & Disposable {
  const s = stamp();
  const lab = LabFolder.create(`deno-lpc-lab-t-${s}`);
  const vault = LabFolder.create(`deno-lpc-lab-t-${s}-vault`);
  lab.createFile("plain.txt", new TextEncoder().encode("hello from the lab"));
  const drop = lab.createFolder("drop");
  const vaultFile = vault.createFile("vault.txt", new TextEncoder().encode("VAULT"));
  return {
    lab,
    vault,
    drop,
    vaultFile,
    [Symbol.dispose]() {
      vault[Symbol.dispose]();
      lab[Symbol.dispose]();
    },
  };
}

/** `null` when this system keeps a folder's DACL as given, else what it reported instead. */
function daclStorageUnavailable(): string | null {
  if (!ON_WINDOWS_BUILD) return NOT_WINDOWS;
  const sddl = labSddl("S-1-5-18");
  using probe = LabFolder.create(`deno-lpc-lab-probe-${stamp()}`, { sddl });
  const stored = securitySddl(probe.handle);
  return comparableSddl(stored) === comparableSddl(sddl)
    ? null
    : `this system does not keep a folder's DACL: asked for ${sddl}, it reports ${stored}`;
}

/** SDDL without the auto-inherit flags Windows adds to a DACL (`D:PAI` is `D:P`). */
function comparableSddl(sddl: string): string {
  return sddl.replace(/^D:P(?:AI|AR)*/, "D:P");
}

/** `null` when this system makes directory junctions, else the status that refused one. */
function junctionUnavailable(): string | null {
  if (!ON_WINDOWS_BUILD) return NOT_WINDOWS;
  using l = makeLab();
  try {
    createJunction(`${l.drop}\\probe`, l.vault.path).close();
    return null;
  } catch (e) {
    if (e instanceof NtError) return `FSCTL_SET_REPARSE_POINT answers ${e.symbol ?? e.hex} here`;
    throw e;
  }
}

const DACL_WHY = daclStorageUnavailable();
const JUNCTION_WHY = junctionUnavailable();

function labFolders(): string[] {
  return [...Deno.readDirSync(tempFolder())].map((e) => e.name).filter((n) =>
    n.startsWith("deno-lpc-lab-")
  );
}

/** Runs exp1.ts --json; `run` is its run over the transport asked for (LPC by default). */
async function exp1(
  ...args: string[]
): Promise<{ code: number; doc: Exp1Document; run: Exp1Run; stderr: string }> {
  const r = await runExperimentJson<Exp1Document>("exp1", args);
  const transport = args.includes("alpc") ? "alpc" : "lpc";
  return { ...r, run: r.doc.runs?.[transport] ?? { transport } };
}

windowsTest(
  "exp1.ts --json without LPC: exit 3 naming the status, nothing left behind",
  LPC_WHY === null
    ? "LPC works here: the tests below run exp1.ts"
    : ON_WINDOWS_BUILD
    ? null
    : NOT_WINDOWS,
  async () => {
    const before = labFolders();
    const r = await exp1();
    assertStrictEquals(r.code, 3, r.stderr);
    assertStrictEquals(r.doc.schema, "deno-lpc/exp1@2");
    assertStrictEquals(r.doc.ran, false);
    assertMatch(r.doc.reason ?? "", /NtCreatePort .* STATUS_NOT_IMPLEMENTED \(0xC0000002\)/);
    assertStrictEquals(r.stderr.trim().split(/\r?\n/).length, 1, `one line: ${r.stderr}`);
    assertEquals(labFolders(), before, "the lab folder, drop, vault and files were removed");
  },
);

windowsTest(
  "the relative open with OBJ_DONT_REPARSE: a file below the root opens, its final path is under the root's, a same-prefix sibling's is not",
  WINDOWS_ONLY,
  () => {
    using l = makeLab();
    using root = openDirectory(l.lab.path);
    const rootFinal = finalPathOf(root);
    assertMatch(rootFinal, /^\\\\\?\\[A-Za-z]:\\/, rootFinal);
    {
      using f = openRelative(root, "PLAIN.TXT");
      assertStrictEquals(new TextDecoder().decode(readFileAt(f, 6n, 4)), "from");
      assert(isUnderRoot(rootFinal, finalPathOf(f)), finalPathOf(f));
    }
    {
      using v = openFile(l.vaultFile);
      const vaultFinal = finalPathOf(v);
      assert(vaultFinal.toLowerCase().startsWith(rootFinal.toLowerCase()), "same prefix");
      assertStrictEquals(isUnderRoot(rootFinal, vaultFinal), false, vaultFinal);
    }
    assertThrows(() => openRelative(root, "none.txt"), NtError);
  },
);

windowsTest(
  "serveFromRoot(): served, path text, missing file: each answered at its stage",
  WINDOWS_ONLY,
  () => {
    using l = makeLab();
    const ask = (path: string) =>
      decodeReadReply(
        serveFromRoot(l.lab.path, encodeReadRequest({ path, offset: 0n, length: 5 })),
      );
    const ok = ask("plain.txt");
    assertEquals([ok.statusName, ok.stage], ["STATUS_SUCCESS", "served"]);
    assertStrictEquals(new TextDecoder().decode(ok.bytes), "hello");
    const text = ask(`..\\${l.vault.path.split("\\").at(-1)}\\vault.txt`);
    assertEquals([text.statusName, text.stage], ["STATUS_OBJECT_PATH_SYNTAX_BAD", "path"]);
    assertStrictEquals(ask(l.vaultFile).stage, "path", "absolute: refused by its text");
    const missing = ask("drop\\none.txt");
    assertStrictEquals(missing.stage, "open");
    assertStrictEquals(missing.statusName, "STATUS_OBJECT_NAME_NOT_FOUND");
  },
);

windowsTest("the lab's folders keep their explicit DACLs", DACL_WHY, () => {
  using self = openProcessToken();
  const sid = tokenUserSid(self);
  using lab = LabFolder.create(`deno-lpc-lab-dacl-${stamp()}`, { sddl: labSddl(sid) });
  const drop = lab.createFolder("drop", dropSddl(sid, false));
  assertStrictEquals(comparableSddl(securitySddl(lab.handle)), labSddl(sid));
  assertStrictEquals(comparableSddl(securitySddl(lab.folderHandle(drop)!)), dropSddl(sid, false));
});

windowsTest(
  "a junction in drop\\ to the vault: followed by a plain open, refused by OBJ_DONT_REPARSE, outside the root by its final path",
  JUNCTION_WHY,
  () => {
    using l = makeLab();
    {
      using _j = createJunction(`${l.drop}\\j`, l.vault.path);
      // A plain open follows it: this is the attack.
      using through = openFile(`${l.drop}\\j\\vault.txt`);
      assertStrictEquals(new TextDecoder().decode(readFileAt(through, 0n, 5)), "VAULT");
      using root = openDirectory(l.lab.path);
      assertStrictEquals(isUnderRoot(finalPathOf(root), finalPathOf(through)), false);
      // The server's open does not.
      const e = assertThrows(() => openRelative(root, "drop\\j\\vault.txt"), NtError);
      assertStrictEquals(e.symbol, "STATUS_REPARSE_POINT_ENCOUNTERED");
      const r = decodeReadReply(
        serveFromRoot(
          l.lab.path,
          encodeReadRequest({ path: "drop\\j\\vault.txt", offset: 0n, length: 5 }),
        ),
      );
      assertEquals([r.statusName, r.stage], ["STATUS_REPARSE_POINT_ENCOUNTERED", "open"]);
      assertStrictEquals(r.bytes.byteLength, 0);
    }
    assertEquals([...Deno.readDirSync(l.drop)], [], "closing the junction removed it");
    assertStrictEquals(readFileRange(l.vaultFile, 0n, 5).byteLength, 5, "and never its target");
  },
);

windowsTest(
  "LabFolder: a folder and a secret with a DACL, removed when disposed",
  WINDOWS_ONLY,
  () => {
    let path: string;
    {
      using lab = LabFolder.create(`deno-lpc-lab-test-${Date.now().toString(36)}`);
      path = lab.path;
      const secret = lab.createFile(
        "secret.txt",
        new TextEncoder().encode("0123456789abcdef"),
        "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;OW)",
      );
      assert(labFolders().some((n) => path.endsWith(n)));
      // Whoever may read it (we are its owner here) gets exactly the range asked for.
      assertStrictEquals(new TextDecoder().decode(readFileRange(secret, 4n, 6)), "456789");
      assertStrictEquals(readFileRange(secret, 100n, 4).byteLength, 0, "past the end: nothing");
    }
    assert(!labFolders().some((n) => path.endsWith(n)), "gone after dispose");
  },
);

windowsTest(
  "a child started with a restricted, lowered token: its output is captured through pipes",
  WINDOWS_ONLY,
  async () => {
    using self = openProcessToken(TokenAccess.TOKEN_ALL_ACCESS);
    using restricted = createRestrictedToken(self, { denyOnly: [WellKnownSid.Administrators] });
    setTokenIntegrity(restricted, "Medium");
    const r = await runCaptured(
      [
        Deno.execPath(),
        "eval",
        "console.log('out ' + 6 * 7); console.error('err line'); Deno.exit(5)",
      ],
      { token: restricted, timeoutMs: 60_000 },
    );
    assertStrictEquals(r.exitCode, 5);
    assertMatch(r.stdout, /^out 42\r?\n$/);
    assertMatch(r.stderr, /err line/);
    assertStrictEquals(tokenUserSid(restricted), tokenUserSid(self));
  },
);

// ---- Windows only ----

windowsTest(
  "one process: the server on its Worker, the client on the main thread, a real round trip",
  LPC_WHY,
  async () => {
    using lab = LabFolder.create(`deno-lpc-lab-rt-${Date.now().toString(36)}`);
    lab.createFile("plain.txt", new TextEncoder().encode("hello from the lab"));
    await using server = await ServerWorker.start({
      portName: `\\RPC Control\\deno-lpc-test-${Deno.pid}`,
      handlerModule: new URL("../../experiments/exp1/exp1_handler.ts", import.meta.url),
      handlerOptions: { root: lab.path, impersonate: false },
    });
    using client = LpcClient.connect(`\\RPC Control\\deno-lpc-test-${Deno.pid}`);
    const reply = decodeReadReply(
      client.request(encodeReadRequest({ path: "plain.txt", offset: 6n, length: 4 })).data,
    );
    assertStrictEquals(reply.statusName, "STATUS_SUCCESS");
    assertStrictEquals(new TextDecoder().decode(reply.bytes), "from");
    assert(server.threadId > 0);
  },
);

windowsTest(
  "200 + 200 connections: the server closes each connection's port, no growth per connection",
  LPC_WHY,
  async () => {
    using lab = LabFolder.create(`deno-lpc-lab-hc-${Date.now().toString(36)}`);
    const portName = `\\RPC Control\\deno-lpc-hc-${Deno.pid}`;
    await using server = await ServerWorker.start({
      portName,
      handlerModule: new URL("../../experiments/exp1/exp1_handler.ts", import.meta.url),
      handlerOptions: { root: lab.path, impersonate: false },
    });
    let portType;
    {
      using warm = LpcClient.connect(portName); // the client's port: of the type under test
      portType = handleTypeIndex(warm.port);
    }
    const closed = () => server.events.filter((e) => e.event === "LPC_PORT_CLOSED").length;
    const closedAtLeast = async (n: number) => {
      for (const until = Date.now() + 10_000; closed() < n && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 50));
      }
      return closed();
    };
    await closedAtLeast(1);
    await new Promise((r) => setTimeout(r, 300)); // its Worker closes its end after the event
    // Our process holds both ends (the server runs in a Worker); the Worker closes its end when
    // it has handled LPC_PORT_CLOSED, so each count waits up to 10 s for the port count to settle.
    const counts = await handleCountsAcrossCycles(portType, 200, () => {
      using c = LpcClient.connect(portName);
      c.request(encodeReadRequest({ path: "none.txt", offset: 0n, length: 1 }));
    }, 10_000);
    assertNoHandleGrowthPerCycle(counts, "LPC connect + request + close");
    const seen = await closedAtLeast(401); // the warm-up's and 400 more
    assert(seen >= 401, `${seen} LPC_PORT_CLOSED`);
  },
);

windowsTest(
  "exp1.ts: the restricted client is denied directly and served through LPC (confused deputy)",
  LPC_WHY,
  async () => {
    const r = await exp1();
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(r.run.findings!.directDenied, true);
    assertStrictEquals(r.run.findings!.serverStatus, "STATUS_SUCCESS");
    assert(r.run.findings!.servedBytes > 0);
    assertStrictEquals(r.run.findings!.probesRefused, r.run.findings!.probes);
    assertStrictEquals(r.run.client!.identity.administrators, "deny-only");
    assertJunctionRefused(r.run, false);
    assertMatch(r.run.explanation ?? "", /confused deputy/);
  },
);

windowsTest(
  "exp1.ts --length 1048576: the read goes through the connection's port view, and the SHA-256 the server replied matches the client's view",
  LPC_WHY,
  async () => {
    const r = await exp1("--length", "1048576");
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(r.run.findings!.serverStatus, "STATUS_SUCCESS");
    const view = r.run.findings!.view;
    assert(view !== undefined, "the answer came through the view");
    assertStrictEquals(view.matches, true, `SHA-256 ${view.sha256}`);
    assertStrictEquals(view.length, r.run.findings!.servedBytes);
    assert(view.length > 0);
    assertStrictEquals(r.run.findings!.probesRefused, r.run.findings!.probes);
  },
);

/** Why ALPC cannot run here, or null. */
const ALPC_WHY = ON_WINDOWS_BUILD ? alpcUnavailable() : NOT_WINDOWS;

windowsTest(
  "exp1.ts --transport alpc --length 1048576: the read goes through a view the client sent with its request, the server wrote it through its own mapping, and the SHA-256 it replied matches the client's view",
  ALPC_WHY,
  async () => {
    const r = await exp1("--transport", "alpc", "--length", "1048576");
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(r.run.transport, "alpc");
    assertStrictEquals(r.run.findings!.serverStatus, "STATUS_SUCCESS");
    const view = r.run.findings!.view;
    assert(view !== undefined, "the answer came through the view");
    assertStrictEquals(view.matches, true, `SHA-256 ${view.sha256}`);
    assertStrictEquals(view.length, r.run.findings!.servedBytes);
    assert(view.length > 0);
    // The server released the view each READ_VIEW carried (AlpcServer's view-released event).
    const events = r.run.server!.events.map((e) => e.event);
    assert(events.includes("view-released"), events.join(" "));
    assert(!events.includes("error"), events.join(" "));
    assertStrictEquals(r.run.findings!.probesRefused, r.run.findings!.probes);
  },
);

/** Both modes: the hostile junction request was made and refused, by the open or the final path. */
function assertJunctionRefused(doc: Exp1Run, impersonated: boolean): void {
  const j = doc.findings!.junction;
  assertStrictEquals(
    j.made,
    true,
    `the client could make its junction in drop\\: ${j.createStatus}`,
  );
  assertStrictEquals(j.refused, true, `the server served ${j.status} through the junction`);
  assert(["open", "finalPath"].includes(j.refusedBy ?? ""), `refused by ${j.refusedBy}`);
  assertStrictEquals(j.impersonated, impersonated);
  // Windows 10 1703+ knows OBJ_DONT_REPARSE: the open itself refuses.
  assertEquals([j.status, j.refusedBy], ["STATUS_REPARSE_POINT_ENCOUNTERED", "open"]);
  const reply = doc.client!.junction!.reply!;
  assertNotMatch(explainAnswer(reply), /client's token/);
  assertStrictEquals(doc.lab!.folderStored.replace(/^D:P(?:AI|AR)*/, "D:P"), doc.lab!.folderSddl);
}

windowsTest(
  "exp1.ts --impersonate: the server, impersonating the client, is denied too",
  LPC_WHY,
  async () => {
    const r = await exp1("--impersonate");
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(r.run.findings!.directDenied, true);
    assertStrictEquals(r.run.findings!.serverStatus, "STATUS_ACCESS_DENIED");
    assertStrictEquals(r.run.findings!.servedBytes, 0);
    assertStrictEquals(r.run.client!.viaServer!.stage, "open");
    assertMatch(r.run.explanation ?? "", /the kernel checked the client's token/);
    assertJunctionRefused(r.run, true);
  },
);

/** Why ALPC (and LPC, which `both` runs first) cannot run here, or null. */
const BOTH_WHY = LPC_WHY ?? (ON_WINDOWS_BUILD ? alpcUnavailable() : NOT_WINDOWS);

windowsTest(
  "exp1.ts --transport both --impersonate: over LPC and over ALPC the restricted client is denied directly and the impersonating server is denied too; the kernel's port flags recorded for each",
  BOTH_WHY,
  async () => {
    const r = await runExperimentJson<Exp1Document>("exp1", [
      "--transport",
      "both",
      "--impersonate",
    ]);
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(r.doc.transport, "both");
    for (const t of ["lpc", "alpc"] as const) {
      const run = r.doc.runs![t]!;
      assertStrictEquals(run.transport, t);
      assertStrictEquals(run.findings!.directDenied, true, t);
      assertStrictEquals(run.findings!.serverStatus, "STATUS_ACCESS_DENIED", t);
      assertStrictEquals(run.client!.transport, t);
      assertMatch(run.explanation ?? "", /the kernel checked the client's token/, t);
      assertJunctionRefused(run, true);
      // AlpcpValidateAndSetPortAttributes.c: every connection port gets ALLOW_LPC_REQUESTS.
      const info = run.portInfo!;
      assert("flags" in info, `${t}: ${JSON.stringify(info)}`);
      assert(info.names.includes("ALLOW_LPC_REQUESTS"), `${t}: ${info.flagsHex}`);
      // ... but on a client port only for a legacy connect (NtSecureConnectPort.c).
      const mine = run.client!.portInfo!;
      assert("flags" in mine, `${t}: ${JSON.stringify(mine)}`);
      assertStrictEquals(mine.names.includes("ALLOW_LPC_REQUESTS"), t === "lpc", mine.flagsHex);
    }
  },
);
