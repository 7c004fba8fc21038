/**
 * Experiment 1 for real: under Wine, its Windows plumbing and its clean exit-3 path; on Windows,
 * the LPC round trips (ignored elsewhere with the probe's reason).
 */

import assert from "node:assert/strict";
import { LabFolder, readFileRange, tempFolder } from "../ffi/files.ts";
import { lpcUnavailable } from "../ffi/capabilities.ts";
import { LpcClient } from "../ffi/lpc.ts";
import { ServerWorker } from "../ffi/lpc_server_host.ts";
import { processHandleCount, runCaptured } from "../ffi/processes.ts";
import {
  createRestrictedToken,
  openProcessToken,
  setTokenIntegrity,
  TokenAccess,
  tokenUserSid,
  WellKnownSid,
} from "../ffi/tokens.ts";
import { decodeReadReply, encodeReadRequest } from "../experiments/exp1_protocol.ts";
import type { Exp1Document } from "../experiments/exp1.ts";
import { ON_WINDOWS_BUILD, REPO_ROOT, run } from "./_helpers.ts";

const NOT_WINDOWS = "needs the Windows build of Deno (deno task test:wine, or Windows)";
const name = (what: string) => (ON_WINDOWS_BUILD ? what : `${what} (ignored: ${NOT_WINDOWS})`);
const LPC_WHY = ON_WINDOWS_BUILD ? lpcUnavailable() : NOT_WINDOWS;
const lpcName = (what: string) => (LPC_WHY === null ? what : `${what} (ignored: ${LPC_WHY})`);

function labFolders(): string[] {
  return [...Deno.readDirSync(tempFolder())].map((e) => e.name).filter((n) =>
    n.startsWith("deno-lpc-lab-")
  );
}

async function exp1(
  ...args: string[]
): Promise<{ code: number; doc: Exp1Document; stderr: string }> {
  const r = await run(Deno.execPath(), [
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-run",
    `${REPO_ROOT}experiments/exp1.ts`,
    "--json",
    ...args,
  ]);
  return { code: r.code, doc: JSON.parse(r.stdout), stderr: r.stderr };
}

Deno.test({
  name: LPC_WHY === null
    ? "exp1.ts runs (see the Windows tests below)"
    : name("exp1.ts --json without LPC: exit 3 naming the status, nothing left behind"),
  ignore: !ON_WINDOWS_BUILD || LPC_WHY === null,
  async fn() {
    const before = labFolders();
    const r = await exp1();
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.doc.schema, "deno-lpc/exp1@1");
    assert.equal(r.doc.ran, false);
    assert.match(r.doc.reason ?? "", /NtCreatePort .* STATUS_NOT_IMPLEMENTED \(0xC0000002\)/);
    assert.equal(r.stderr.trim().split(/\r?\n/).length, 1, `one line: ${r.stderr}`);
    assert.deepEqual(labFolders(), before, "the lab folder and secret were removed");
  },
});

Deno.test({
  name: name("LabFolder: a folder and a secret with a DACL, removed when disposed"),
  ignore: !ON_WINDOWS_BUILD,
  fn() {
    let path: string;
    {
      using lab = LabFolder.create(`deno-lpc-lab-test-${Date.now().toString(36)}`);
      path = lab.path;
      const secret = lab.createFile(
        "secret.txt",
        new TextEncoder().encode("0123456789abcdef"),
        "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;OW)",
      );
      assert.ok(labFolders().some((n) => path.endsWith(n)));
      // Whoever may read it (we are its owner here) gets exactly the range asked for.
      assert.equal(new TextDecoder().decode(readFileRange(secret, 4n, 6)), "456789");
      assert.equal(readFileRange(secret, 100n, 4).byteLength, 0, "past the end: nothing");
    }
    assert.ok(!labFolders().some((n) => path.endsWith(n)), "gone after dispose");
  },
});

Deno.test({
  name: name(
    "a child started with a restricted, lowered token: its output is captured through pipes",
  ),
  ignore: !ON_WINDOWS_BUILD,
  async fn() {
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
    assert.equal(r.exitCode, 5);
    assert.match(r.stdout, /^out 42\r?\n$/);
    assert.match(r.stderr, /err line/);
    assert.equal(tokenUserSid(restricted), tokenUserSid(self));
  },
});

// ---- Windows only ----

Deno.test({
  name: lpcName(
    "one process: the server on its Worker, the client on the main thread, a real round trip",
  ),
  ignore: LPC_WHY !== null,
  async fn() {
    using lab = LabFolder.create(`deno-lpc-lab-rt-${Date.now().toString(36)}`);
    const file = lab.createFile("plain.txt", new TextEncoder().encode("hello from the lab"));
    await using server = await ServerWorker.start({
      portName: `\\RPC Control\\deno-lpc-test-${Deno.pid}`,
      handlerModule: new URL("../experiments/exp1_handler.ts", import.meta.url),
      handlerOptions: { root: lab.path, impersonate: false },
    });
    using client = LpcClient.connect(`\\RPC Control\\deno-lpc-test-${Deno.pid}`);
    const reply = decodeReadReply(
      client.request(encodeReadRequest({ path: file, offset: 6n, length: 4 })).data,
    );
    assert.equal(reply.statusName, "STATUS_SUCCESS");
    assert.equal(new TextDecoder().decode(reply.bytes), "from");
    assert.ok(server.threadId > 0);
  },
});

Deno.test({
  name: lpcName("200 connections: the handle count returns to its baseline"),
  ignore: LPC_WHY !== null,
  async fn() {
    using lab = LabFolder.create(`deno-lpc-lab-hc-${Date.now().toString(36)}`);
    const portName = `\\RPC Control\\deno-lpc-hc-${Deno.pid}`;
    await using server = await ServerWorker.start({
      portName,
      handlerModule: new URL("../experiments/exp1_handler.ts", import.meta.url),
      handlerOptions: { root: lab.path, impersonate: false },
    });
    const warm = LpcClient.connect(portName);
    warm.close();
    await new Promise((r) => setTimeout(r, 300));
    const baseline = processHandleCount();
    for (let i = 0; i < 200; i++) {
      using c = LpcClient.connect(portName);
      c.request(encodeReadRequest({ path: "none.txt", offset: 0n, length: 1 }));
    }
    await new Promise((r) => setTimeout(r, 500)); // the server handles the last PORT_CLOSED
    assert.ok(processHandleCount() <= baseline + 2, `${processHandleCount()} vs ${baseline}`);
    assert.ok(server.events.filter((e) => e.event === "LPC_PORT_CLOSED").length >= 200);
  },
});

Deno.test({
  name: lpcName(
    "exp1.ts: the restricted client is denied directly and served through LPC (confused deputy)",
  ),
  ignore: LPC_WHY !== null,
  async fn() {
    const r = await exp1();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.doc.findings!.directDenied, true);
    assert.equal(r.doc.findings!.serverStatus, "STATUS_SUCCESS");
    assert.ok(r.doc.findings!.servedBytes > 0);
    assert.equal(r.doc.findings!.probesRefused, r.doc.findings!.probes);
    assert.equal(r.doc.client!.identity.administrators, "deny-only");
  },
});

Deno.test({
  name: lpcName("exp1.ts --impersonate: the server, impersonating the client, is denied too"),
  ignore: LPC_WHY !== null,
  async fn() {
    const r = await exp1("--impersonate");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.doc.findings!.directDenied, true);
    assert.equal(r.doc.findings!.serverStatus, "STATUS_ACCESS_DENIED");
    assert.equal(r.doc.findings!.servedBytes, 0);
  },
});
