import { assert, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import { ntdll } from "../../ffi/ntdll.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { advapi32 } from "../../ffi/advapi32.ts";
import { requireSymbol } from "../../ffi/_loader.ts";
import { isUnsupported, UnsupportedError } from "../../ffi/status.ts";
import { conditionalTest, ON_LINUX, REPO_ROOT, run } from "../_helpers.ts";

conditionalTest(
  [
    "on Linux every loader throws a clear 'needs Windows' UnsupportedError",
    "loaders throw off Windows",
  ],
  ON_LINUX ? null : "this is the Windows build",
  () => {
    for (const load of [ntdll, kernel32, advapi32]) {
      const e = assertThrows(load, UnsupportedError);
      assertMatch(e.message, /needs Windows x64/);
      assert(isUnsupported(e));
    }
  },
);

Deno.test("requireSymbol() names a missing export", () => {
  assertStrictEquals(requireSymbol(42, "ntdll!X"), 42);
  const e = assertThrows(() => requireSymbol(null, "ntdll!NtReplyPort"), UnsupportedError);
  assert(e.message.startsWith("ntdll!NtReplyPort is not exported"));
});

Deno.test("importing mod.ts and raw.ts needs no permission and loads no library", async () => {
  const url = (f: string) => JSON.stringify(new URL(`../../${f}`, import.meta.url).href);
  const script = [
    `const m = await import(${url("mod.ts")});`,
    `const raw = await import(${url("raw.ts")});`,
    "console.log(Object.keys(m).length, Object.keys(raw).length, typeof raw.ntdll,",
    "  m.LpcMessageType.LPC_CLIENT_DIED);",
  ].join("\n");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/probe.ts`, script);
    const r = await run(Deno.execPath(), ["run", "--no-prompt", "--no-config", `${dir}/probe.ts`], {
      cwd: REPO_ROOT,
    });
    assertStrictEquals(r.code, 0, r.stderr);
    const [count, rawCount, type, died] = r.stdout.trim().split(" ");
    // Runtime values only (types leave no key): 35 of mod.ts's 80 names, 136 of raw.ts's 179.
    assertStrictEquals(Number(count), 35, `${count} runtime exports in mod.ts`);
    assertStrictEquals(Number(rawCount), 136, `${rawCount} runtime exports in raw.ts`);
    assertStrictEquals(type, "function");
    assertStrictEquals(died, "6");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
