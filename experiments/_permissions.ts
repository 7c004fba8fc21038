/**
 * The permissions a runnable script needs come from one place: its shebang line,
 * `#!/usr/bin/env -S deno run <flags>`. The lab starts each experiment with exactly those flags,
 * and `tests/experiments/permissions_test.ts` checks that every `deno run … <script>` line (the script's
 * `--help` and header, the README, `deno.json`, the workflow) says the same, and runs each script
 * with them.
 *
 * @module
 */

const SHEBANG = /^#!\/usr\/bin\/env -S deno run((?: --?[A-Za-z][\w-]*(?:=\S+)?)*)\s*$/;

/**
 * The permission flags of a script's shebang (`#!/usr/bin/env -S deno run --allow-ffi …`), in
 * order. Throws when the first line is not such a shebang.
 */
export function shebangFlags(source: string): string[] {
  const first = source.split(/\r?\n/, 1)[0] ?? "";
  const m = SHEBANG.exec(first);
  if (!m) throw new Error(`not a "#!/usr/bin/env -S deno run <flags>" shebang: ${first}`);
  return m[1]!.trim().split(/\s+/).filter((w) => w !== "");
}

/** Reads a script and returns its shebang's flags (needs read access to the script). */
export async function scriptFlags(script: URL): Promise<string[]> {
  return shebangFlags(await Deno.readTextFile(script));
}
