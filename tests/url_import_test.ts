/**
 * What users import by URL works by URL: the checkout is served over HTTP on the loopback with
 * `content-type: text/plain` for every file (as raw file hosts such as raw.githubusercontent.com
 * do), and a child Deno without our deno.json (`--no-config`, an empty `DENO_DIR`) imports
 * `mod.ts` and runs `experiments/ports/list_ports.ts --help` from there. A bare `@std/...`
 * specifier in a file it loads fails here: only `deno.json` maps those, and users have none.
 *
 * The child gets `JSR_URL` as we have it: on machines without JSR, the local mirror
 * (`with-jsr.sh`); elsewhere JSR itself.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import { conditionalTest, REPO_ROOT, run } from "./_helpers.ts";
import { shebangFlags } from "../experiments/_permissions.ts";
import { wineVersion } from "../ffi/ntdll.ts";

const UNDER_WINE = Deno.build.os === "windows" && wineVersion() !== null;

/** Serves REPO_ROOT read-only as text/plain; records every path asked for. */
function serveCheckout(): { server: Deno.HttpServer<Deno.NetAddr>; base: string; asked: string[] } {
  const asked: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    asked.push(path);
    if (req.method !== "GET" || path.split("/").includes("..") || path.includes("\\")) {
      return new Response("refused", { status: 403 });
    }
    try {
      const body = await Deno.readFile(`${REPO_ROOT}${path.slice(1)}`);
      return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { server, base: `http://127.0.0.1:${server.addr.port}/`, asked };
}

/** Runs the Deno running us with `args`, in an empty DENO_DIR, outside the checkout. */
async function childDeno(args: string[], tmp: string) {
  const env: Record<string, string> = { DENO_DIR: `${tmp}/deno_dir`, NO_COLOR: "1" };
  const jsr = Deno.env.get("JSR_URL");
  if (jsr !== undefined) env.JSR_URL = jsr;
  return await run(Deno.execPath(), args, { cwd: tmp, env, deadlineMs: 120_000 });
}

conditionalTest(
  "mod.ts and list_ports.ts --help work by URL, served as text/plain",
  UNDER_WINE ? "under Wine; the Linux suite runs it" : null,
  async () => {
    const tmp = await Deno.makeTempDir({ prefix: "deno-lpc-url-" });
    let server: Deno.HttpServer | undefined;
    try {
      const served = serveCheckout();
      server = served.server;
      const { base, asked } = served;
      // The server answers text/plain, and refuses what is outside the checkout.
      const head = await fetch(`${base}mod.ts`);
      assertStrictEquals(head.headers.get("content-type"), "text/plain; charset=utf-8");
      assertMatch(await head.text(), /export \{/);
      const up = await fetch(`${base}..%2F..%2Fetc%2Fpasswd`);
      assertStrictEquals(up.status, 403);
      await up.body?.cancel();

      // mod.ts by URL: no deno.json, so no import map; some exports are there.
      const probe = `${tmp}/probe.ts`;
      await Deno.writeTextFile(
        probe,
        `const mod = await import(${JSON.stringify(`${base}mod.ts`)});
console.log(JSON.stringify({
  names: Object.keys(mod).length,
  LpcServer: typeof mod.LpcServer,
  LpcClient: typeof mod.LpcClient,
  ServerWorker: typeof mod.ServerWorker,
}));
`,
      );
      const imported = await childDeno(
        ["run", "--no-config", "--no-lock", "--allow-import", "--allow-read", probe],
        tmp,
      );
      assertStrictEquals(imported.code, 0, `import ${base}mod.ts:\n${imported.stderr}`);
      const seen = JSON.parse(imported.stdout.trim().split("\n").at(-1)!) as Record<
        string,
        unknown
      >;
      assertEquals(
        { ...seen, names: undefined },
        {
          names: undefined,
          LpcServer: "function",
          LpcClient: "function",
          ServerWorker: "function",
        },
      );
      assert((seen.names as number) >= 10, `${seen.names} exports`);
      assert(asked.includes("/mod.ts") && asked.some((p) => p.startsWith("/ffi/")), "served");

      // A runnable script by URL, with its shebang's permissions.
      const script = "experiments/ports/list_ports.ts";
      const flags = shebangFlags(await Deno.readTextFile(`${REPO_ROOT}${script}`));
      const help = await childDeno(
        [
          "run",
          "--no-config",
          "--no-lock",
          "--allow-import",
          ...flags,
          `${base}${script}`,
          "--help",
        ],
        tmp,
      );
      assertStrictEquals(help.code, 0, `${base}${script} --help:\n${help.stderr}`);
      assertMatch(help.stdout, /^list_ports: /);
      assertMatch(help.stdout, /Usage: deno run --allow-ffi experiments\/ports\/list_ports\.ts/);
      assert(asked.includes(`/${script}`));
    } finally {
      await server?.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);
