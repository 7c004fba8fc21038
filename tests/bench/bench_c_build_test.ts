/**
 * The C side of the transport benchmark (experiments/bench/native/bench_c.c) compiles warning-free
 * with the mingw cross compiler the project already uses, as the benchmark builds it on Windows
 * (`-O2 ... -lntdll`) plus `-Wall -Wextra -Werror`. Running it needs real LPC/ALPC (Windows).
 */

import { assert, assertStrictEquals } from "@std/assert";
import { conditionalTest, ON_LINUX, REPO_ROOT } from "../_helpers.ts";

const CC = "x86_64-w64-mingw32-gcc";
let whyNot: string | null = ON_LINUX ? null : "Linux only: the cross compiler";
if (whyNot === null) {
  try {
    const v = await new Deno.Command(CC, { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    if (!v.success) whyNot = `${CC} --version failed`;
  } catch {
    whyNot = `${CC} is not installed (apt-get install gcc-mingw-w64-x86-64)`;
  }
}

conditionalTest("bench_c.c compiles with mingw gcc, -Wall -Wextra -Werror", whyNot, async () => {
  const dir = await Deno.makeTempDir({ prefix: "deno-lpc-bench-c-" });
  try {
    const out = await new Deno.Command(CC, {
      args: [
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-o",
        `${dir}/bench_c.exe`,
        `${REPO_ROOT}experiments/bench/native/bench_c.c`,
        "-lntdll",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertStrictEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assert((await Deno.stat(`${dir}/bench_c.exe`)).size > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
