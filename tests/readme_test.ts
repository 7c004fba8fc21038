/**
 * The README's start on Linux is two commands that need only node/npm, and they name the Deno the
 * project pins (the one `.ci/install_deno.sh` installs and the Wine harness runs); every
 * `deno task` the README names exists in deno.json.
 */

import { assert, assertEquals, assertMatch, assertNotMatch, assertStrictEquals } from "@std/assert";
import { REPO_ROOT } from "./_helpers.ts";
import { WINDOWS_DENO_VERSION } from "../experiments/_wine_harness.ts";

const README = await Deno.readTextFile(`${REPO_ROOT}README.md`);
const INSTALLER = await Deno.readTextFile(`${REPO_ROOT}.ci/install_deno.sh`);
const TASKS = Object.keys(
  (JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as { tasks: object }).tasks,
);

/** The commands of the first ```sh block after a heading, without their comments. */
function firstCommandsAfter(heading: string): string[] {
  const at = README.indexOf(heading);
  assert(at >= 0, `README has the heading ${JSON.stringify(heading)}`);
  const block = /```sh\r?\n([\s\S]*?)```/.exec(README.slice(at));
  assert(block, `a sh block follows ${heading}`);
  return block[1]!.split(/\r?\n/).map((l) => l.replace(/\s+#.*$/, "").trim()).filter(Boolean);
}

Deno.test("README: the first Linux lines are npx -y deno@<pinned> task lab, then task test", () => {
  const pinned = /^version=(\S+)$/m.exec(INSTALLER)?.[1];
  assertStrictEquals(
    pinned,
    WINDOWS_DENO_VERSION,
    "the installer and the Wine harness pin one Deno",
  );
  assertEquals(firstCommandsAfter("### On Linux"), [
    `npx -y deno@${pinned} task lab`,
    `npx -y deno@${pinned} task test`,
  ]);
});

Deno.test("README: its apt commands work as root (no sudo) and ask nothing (-y)", () => {
  const commands = [...README.matchAll(/```sh\r?\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.split(/\r?\n/))
    .filter((l) => /\bapt-get\b/.test(l.replace(/#.*$/, "")));
  assert(commands.length > 0, "the README gives its apt command");
  for (const line of commands) {
    assertNotMatch(line, /^\s*sudo\b/, `runs as root without sudo: ${line}`);
    for (const install of line.matchAll(/apt-get install(\s+\S+)/g)) {
      assertStrictEquals(install[1]!.trim(), "-y", `non-interactive: ${line}`);
    }
  }
});

Deno.test("README: every `deno task X` it names exists in deno.json", () => {
  const named = new Set([...README.matchAll(/deno(?:@[\d.]+)? task ([\w:-]+)/g)].map((m) => m[1]!));
  assert(named.size >= 4, `found ${[...named].join(", ")}`);
  for (const t of named) assert(TASKS.includes(t), `deno task ${t} is defined`);
});

Deno.test("README: it names the main classes, and its TypeScript examples type-check against this checkout", async () => {
  const section = README.slice(
    README.indexOf("## Using the library"),
    README.indexOf("## The lab"),
  );
  for (
    const name of ["LpcServer", "LpcClient", "ServerWorker", "Debugger", "NtHandle", "NtError"]
  ) {
    assertMatch(section, new RegExp("`" + name + "`"), `names ${name}`);
  }
  const blocks = [...section.matchAll(/```ts\r?\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert(
    blocks.length >= 3,
    `the echo handler, the echo client and the codecs (${blocks.length})`,
  );
  assert(
    blocks.some((b) => /using client = LpcClient\.connect/.test(b)),
    "the client with using",
  );
  const dir = await Deno.makeTempDir({ prefix: "deno-lpc-readme-" });
  try {
    const mod = new URL("../mod.ts", import.meta.url).href;
    const files = blocks.map((b, i) => {
      // A block that names its file (`// echo.ts`) is saved under that name, so imports between
      // the examples resolve; `./mod.ts` is this checkout's.
      const name = /^\/\/ (\w+\.ts)\n/.exec(b)?.[1] ?? `block${i}.ts`;
      Deno.writeTextFileSync(`${dir}/${name}`, b.replaceAll('"./mod.ts"', JSON.stringify(mod)));
      return `${dir}/${name}`;
    });
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--no-config", ...files],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertStrictEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
