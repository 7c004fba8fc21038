import assert from "node:assert/strict";
import { ntdll } from "../../ffi/ntdll.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { advapi32 } from "../../ffi/advapi32.ts";
import { requireSymbol } from "../../ffi/_loader.ts";
import { isUnsupported, UnsupportedError } from "../../ffi/status.ts";
import { ON_LINUX, REPO_ROOT, run } from "../_helpers.ts";

Deno.test({
  name: ON_LINUX
    ? "on Linux every loader throws a clear 'needs Windows' UnsupportedError"
    : "loaders throw off Windows (ignored: this is the Windows build)",
  ignore: !ON_LINUX,
  fn() {
    for (const load of [ntdll, kernel32, advapi32]) {
      assert.throws(
        load,
        (e) =>
          e instanceof UnsupportedError && /needs Windows x64/.test(e.message) && isUnsupported(e),
      );
    }
  },
});

Deno.test("requireSymbol() names a missing export", () => {
  assert.equal(requireSymbol(42, "ntdll!X"), 42);
  assert.throws(
    () => requireSymbol(null, "ntdll!NtReplyPort"),
    (e) =>
      e instanceof UnsupportedError && e.message.startsWith("ntdll!NtReplyPort is not exported"),
  );
});

Deno.test("importing mod.ts needs no permission and loads no library", async () => {
  const script = [
    `const m = await import(${JSON.stringify(new URL("../../mod.ts", import.meta.url).href)});`,
    `console.log(Object.keys(m).length, typeof m.ntdll, m.LpcMessageType.LPC_CLIENT_DIED);`,
  ].join("\n");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/probe.ts`, script);
    const r = await run(Deno.execPath(), ["run", "--no-prompt", "--no-config", `${dir}/probe.ts`], {
      cwd: REPO_ROOT,
    });
    assert.equal(r.code, 0, r.stderr);
    const [count, type, died] = r.stdout.trim().split(" ");
    assert.ok(Number(count) > 40, `${count} exports`);
    assert.equal(type, "function");
    assert.equal(died, "6");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
