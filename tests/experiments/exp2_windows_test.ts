/**
 * Experiment 2 for real: under Wine, its Windows plumbing (process list, the SYSTEM steps, the
 * native second-chance raise) and its clean exit-3 path; on Windows, the whole run.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import {
  alpcUnavailable,
  exceptionPortUnavailable,
  lpcUnavailable,
} from "../../ffi/nt/capabilities.ts";
import { wineVersion } from "../../ffi/ntdll.ts";
import {
  CREATE_NO_WINDOW,
  createProcess,
  currentProcessId,
  listProcesses,
} from "../../ffi/nt/processes.ts";
import {
  impersonateSystem,
  openProcessToken,
  StepError,
  threadIsImpersonating,
  tokenIsElevated,
} from "../../ffi/nt/tokens.ts";
import type { Exp2Document, Exp2Run } from "../../experiments/exp2/exp2.ts";
import {
  NOT_WINDOWS,
  ON_WINDOWS_BUILD,
  runExperimentJson,
  WINDOWS_ONLY,
  windowsTest,
} from "../_helpers.ts";

const UNDER_WINE = ON_WINDOWS_BUILD && wineVersion() !== null;
const WHY = ON_WINDOWS_BUILD ? (lpcUnavailable() ?? exceptionPortUnavailable()) : NOT_WINDOWS;
const REAL_WINDOWS_ELEVATED = ON_WINDOWS_BUILD && !UNDER_WINE && (() => {
  using token = openProcessToken();
  return tokenIsElevated(token);
})();

/** Runs exp2.ts --json; `run` is its run over the transport asked for (LPC by default). */
async function exp2(
  ...args: string[]
): Promise<{ code: number; doc: Exp2Document; run: Exp2Run; stderr: string }> {
  const r = await runExperimentJson<Exp2Document>("exp2", args);
  const transport = args.includes("alpc") ? "alpc" : "lpc";
  return { ...r, run: r.doc.runs?.[transport] ?? { transport } };
}

windowsTest(
  "listProcesses() finds this process (deno.exe) and a child with its parent",
  WINDOWS_ONLY,
  () => {
    const me = currentProcessId();
    using child = createProcess([Deno.execPath(), "eval", "setTimeout(() => {}, 30000)"], {
      creationFlags: CREATE_NO_WINDOW,
    });
    const all = listProcesses();
    const self = all.find((p) => p.pid === me);
    assert(self, "our own pid is listed");
    assertMatch(self.image.toLowerCase(), /deno\.exe$/);
    assert(self.threads >= 1);
    const kid = all.find((p) => p.pid === child.pid);
    assertStrictEquals(kid?.parentPid, me);
  },
);

windowsTest(
  [
    "impersonateSystem() tries every process, names the failing step, and leaves no thread token (Wine has no SYSTEM process)",
    "impersonateSystem() names the failing step",
  ],
  UNDER_WINE
    ? null
    : ON_WINDOWS_BUILD
    ? "Windows has SYSTEM processes; the full run is tested below"
    : NOT_WINDOWS,
  () => {
    // Wine runs every process as the user: each candidate is tried, and each is refused.
    const e = assertThrows(() => impersonateSystem(), StepError);
    assertMatch(
      e.message,
      /^step 3, opening a SYSTEM process's token .* failed: none of \d+ processes lent a SYSTEM token \(.*its token's user is S-1-5-21-/,
    );
    assertStrictEquals(threadIsImpersonating(), false);
    const e2 = assertThrows(() => impersonateSystem({ candidates: () => [] }), StepError);
    assert(e2.message.startsWith("step 2, listing the processes"));
    const e3 = assertThrows(
      () => impersonateSystem({ candidates: () => [{ pid: 0xfffffff0, image: "winlogon.exe" }] }),
      StepError,
    );
    assertMatch(
      e3.message,
      /^step 3, .*winlogon\.exe first.*winlogon\.exe \(pid 4294967280\): OpenProcess/,
    );
    assertStrictEquals(threadIsImpersonating(), false);
  },
);

windowsTest(
  [
    "impersonateSystem() on this thread: SYSTEM with SeTcbPrivilege, from a named process, then reverted",
    "impersonateSystem() for real",
  ],
  REAL_WINDOWS_ELEVATED
    ? null
    : UNDER_WINE
    ? "Wine has no SYSTEM process"
    : ON_WINDOWS_BUILD
    ? "needs an elevated prompt"
    : NOT_WINDOWS,
  () => {
    // Synchronous from start to revert: the impersonation lives on this one thread only.
    assertStrictEquals(threadIsImpersonating(), false);
    {
      using system = impersonateSystem();
      assertStrictEquals(system.user, "S-1-5-18");
      assertStrictEquals(system.tcbEnabled, true);
      assert(system.fromPid > 0 && system.fromImage !== "", JSON.stringify(system));
      assertStrictEquals(threadIsImpersonating(), true);
      console.log(
        `SYSTEM from ${system.fromImage} (pid ${system.fromPid}); refused: ${
          JSON.stringify(system.refused.slice(0, 5))
        }`,
      );
    }
    assertStrictEquals(threadIsImpersonating(), false, "reverted");
  },
);

windowsTest(
  [
    "a second-chance exception raised on a native thread, with no exception port, ends the process with its code",
    "a second-chance raise with no exception port ends the process",
  ],
  UNDER_WINE
    ? null
    : ON_WINDOWS_BUILD
    ? "on Windows csrss owns the exception port and hands it to WER"
    : NOT_WINDOWS,
  async () => {
    const script = "import { raiseSecondChance } from " +
      JSON.stringify(new URL("../../ffi/debug/raise_exception.ts", import.meta.url).href) +
      "; await raiseSecondChance(0xE0000001, [1n, 2n], 20000); console.log('survived');";
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/raise.ts`, script);
      using child = createProcess([
        Deno.execPath(),
        "run",
        "--allow-ffi",
        "--allow-read",
        `${dir}\\raise.ts`,
      ], { creationFlags: CREATE_NO_WINDOW });
      assertStrictEquals(child.wait(60_000), true);
      assertStrictEquals(child.exitCode()! >>> 0, 0xe0000001);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

windowsTest(
  "exp2.ts --json without LPC or exception ports: exit 3 naming what is missing",
  WHY === null
    ? "LPC and exception ports work here: the tests below run exp2.ts"
    : ON_WINDOWS_BUILD
    ? null
    : NOT_WINDOWS,
  async () => {
    const r = await exp2();
    assertStrictEquals(r.code, 3, r.stderr);
    assertStrictEquals(r.doc.schema, "deno-lpc/exp2@2");
    assertStrictEquals(r.doc.ran, false);
    assertMatch(r.doc.reason ?? "", /STATUS_NOT_IMPLEMENTED/);
    assertStrictEquals(r.stderr.trim().split(/\r?\n/).length, 1, `one line: ${r.stderr}`);
  },
);

// ---- Windows only ----

windowsTest(
  "exp2.ts: LPC_EXCEPTION (second chance) replied DBG_CONTINUE, the client lives on; CLIENT_DIED and PORT_CLOSED",
  WHY,
  async () => {
    const r = await exp2();
    assertStrictEquals(r.code, 0, r.stderr);
    const a = r.run.analysis!;
    assertStrictEquals(a.exceptions.length, 1);
    assertStrictEquals(a.exceptions[0]!.firstChance, false);
    assertMatch(a.exceptions[0]!.code, /0xE0000001/);
    const raised = (r.run.client!.steps as { step: string; exitCode?: string }[]).find((s) =>
      s.step === "raised"
    );
    assertStrictEquals(raised?.exitCode, "0x0", "the exception thread continued to ExitThread(0)");
    assertStrictEquals(a.exceptions[0]!.ours, true, "the announced exception (code and address)");
    assertMatch(a.exceptions[0]!.verdict, /^DBG_CONTINUE/);
    assert(a.deaths.some((d) => d.via === "exception port"));
    // AlpcpSendCloseMessage.c: ClientId {0, 0}; found through the connection's PortContext.
    assert(a.portClosed, "LPC_PORT_CLOSED on the client's connection");
    assert(a.contexts.includes(a.portClosed.context));
    assertEquals(a.portClosed.clientId, { pid: 0, tid: 0 });
    assertStrictEquals(r.run.client!.end?.by, "server");
    assertStrictEquals(r.run.client!.exitCodeHex, "0xDEAD");
  },
);

windowsTest(
  "exp2.ts --register: the main thread's death arrives through both registrations",
  WHY,
  async () => {
    const r = await exp2("--register");
    assertStrictEquals(r.code, 0, r.stderr);
    const a = r.run.analysis!;
    assert(a.deaths.some((d) => d.via === "termination port"));
    assert(a.duplicated.length >= 1, JSON.stringify(a.deaths));
  },
);

windowsTest(
  "exp2.ts --reply not-handled: what happened is recorded (an exit code, or still running), not assumed",
  WHY,
  async () => {
    const r = await exp2("--reply", "not-handled");
    assertStrictEquals(r.code, 0, r.stderr);
    const a = r.run.analysis!;
    assertStrictEquals(a.exceptions.length, 1);
    assertMatch(a.exceptions[0]!.verdict, /^DBG_EXCEPTION_NOT_HANDLED/);
    const after = r.run.client!.afterNotHandled!;
    assert(
      after.outcome === "exited" || after.outcome === "still running",
      JSON.stringify(after),
    );
    if (after.outcome === "exited") {
      assertStrictEquals(r.run.client!.end, undefined, "not terminated again");
    } else assertStrictEquals(r.run.client!.end?.by, "server");
  },
);

/** Why exp2 cannot run over ALPC here, or null. */
const ALPC_WHY = ON_WINDOWS_BUILD ? (alpcUnavailable() ?? exceptionPortUnavailable()) : NOT_WINDOWS;

windowsTest(
  "exp2.ts --transport alpc: an ALPC connection port is the exception port; LPC_EXCEPTION arrives there and is continued, CLIENT_DIED and PORT_CLOSED follow",
  ALPC_WHY,
  async () => {
    const r = await exp2("--transport", "alpc");
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(r.doc.transport, "alpc");
    assertStrictEquals(r.run.transport, "alpc");
    const a = r.run.analysis!;
    assertStrictEquals(a.connectionRequests, 1);
    assertStrictEquals(a.exceptions.length, 1);
    assertStrictEquals(a.exceptions[0]!.ours, true);
    assertMatch(a.exceptions[0]!.verdict, /^DBG_CONTINUE/);
    assert(a.deaths.some((d) => d.via === "exception port"), JSON.stringify(a.deaths));
    assert(a.portClosed, "LPC_PORT_CLOSED on the client's connection");
    assertEquals(a.portClosed.clientId, { pid: 0, tid: 0 });
  },
);
