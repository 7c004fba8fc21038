/** The namespace walker and the ports document against a fake directory source (runs everywhere). */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import {
  decodeDirectoryBuffer,
  type DirectoryEntry,
  type DirectorySource,
  joinObjectPath,
  type NamespaceEntry,
  walkNamespace,
} from "../../../ffi/nt/namespace.ts";
import { NtError, NTSTATUS } from "../../../ffi/status.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import { encodeUtf16 } from "../../../ffi/strings.ts";
import { listPorts } from "../../../experiments/ports/list_ports.ts";
import { formatTable } from "../../../experiments/ports/ports_table.ts";

/** A namespace as a map from directory path to entries; links map to targets. */
function fakeSource(
  dirs: Record<string, DirectoryEntry[]>,
  links: Record<string, string> = {},
  denied: Record<string, number> = {},
): DirectorySource & { listed: string[] } {
  const listed: string[] = [];
  return {
    listed,
    list(path) {
      listed.push(path);
      if (denied[path] !== undefined) {
        throw new NtError("NtOpenDirectoryObject", denied[path]!, "ntstatus", path);
      }
      const entries = dirs[path];
      if (!entries) {
        throw new NtError(
          "NtOpenDirectoryObject",
          NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND,
          "ntstatus",
          path,
        );
      }
      return entries;
    },
    readLink(path) {
      const t = links[path];
      if (t === undefined) {
        throw new NtError(
          "NtOpenSymbolicLinkObject",
          NTSTATUS.STATUS_ACCESS_DENIED,
          "ntstatus",
          path,
        );
      }
      return t;
    },
  };
}

const NAMESPACE: Record<string, DirectoryEntry[]> = {
  "\\": [
    { name: "Windows", type: "Directory" },
    { name: "SmApiPort", type: "ALPC Port" },
    { name: "RPC Control", type: "Directory" },
    { name: "??", type: "SymbolicLink" },
    { name: "Secret", type: "Directory" },
  ],
  "\\RPC Control": [
    { name: "lsasspirpc", type: "ALPC Port" },
    { name: "Ünïcödé-端口", type: "ALPC Port" },
    { name: "OLD", type: "WaitablePort" },
  ],
  "\\Windows": [{ name: "ApiPort", type: "ALPC Port" }, { name: "Nested", type: "Directory" }],
  "\\Windows\\Nested": [{ name: "Deeper", type: "Directory" }],
  "\\Windows\\Nested\\Deeper": [{ name: "LegacyPort", type: "Port" }],
};

function objects(entries: NamespaceEntry[]): string[] {
  return entries.filter((e) => e.kind === "object").map((e) => `${e.path}|${e.type}`);
}

Deno.test("walkNamespace() lists every object depth first in ordinal order, links not followed", () => {
  const src = fakeSource(NAMESPACE, { "\\??": "\\GLOBAL??" }, {
    "\\Secret": NTSTATUS.STATUS_ACCESS_DENIED,
  });
  const all = [...walkNamespace("\\", { source: src })];
  assertEquals(objects(all), [
    "\\??|SymbolicLink",
    "\\RPC Control|Directory",
    "\\Secret|Directory",
    "\\SmApiPort|ALPC Port",
    "\\Windows|Directory",
    "\\RPC Control\\OLD|WaitablePort",
    "\\RPC Control\\lsasspirpc|ALPC Port",
    "\\RPC Control\\Ünïcödé-端口|ALPC Port",
    "\\Windows\\ApiPort|ALPC Port",
    "\\Windows\\Nested|Directory",
    "\\Windows\\Nested\\Deeper|Directory",
    "\\Windows\\Nested\\Deeper\\LegacyPort|Port",
  ]);
  const link = all.find((e) => e.path === "\\??");
  assertStrictEquals(link?.kind === "object" ? link.target : undefined, "\\GLOBAL??");
  assert(!src.listed.includes("\\??"), "a symbolic link is never listed as a directory");
  assertEquals(all.filter((e) => e.kind === "error"), [
    { kind: "error", path: "\\Secret", status: "0xC0000022", name: "STATUS_ACCESS_DENIED" },
  ]);
  // Stable: a second walk gives the same sequence.
  assertEquals([...walkNamespace("\\", { source: src })], all);
});

Deno.test("walkNamespace(): an unreadable link target is an error entry, the link still listed", () => {
  const src = fakeSource({ "\\": [{ name: "Broken", type: "SymbolicLink" }] });
  const all = [...walkNamespace("\\", { source: src })];
  assertEquals(all, [
    { kind: "object", path: "\\Broken", type: "SymbolicLink" },
    { kind: "error", path: "\\Broken", status: "0xC0000022", name: "STATUS_ACCESS_DENIED" },
  ]);
});

Deno.test("walkNamespace(): a missing root is one error entry; maxDepth stops descending", () => {
  assertEquals([...walkNamespace("\\Nope", { source: fakeSource(NAMESPACE) })], [
    { kind: "error", path: "\\Nope", status: "0xC0000034", name: "STATUS_OBJECT_NAME_NOT_FOUND" },
  ]);
  const shallow = objects([
    ...walkNamespace("\\Windows", { source: fakeSource(NAMESPACE), maxDepth: 0 }),
  ]);
  assertEquals(shallow, ["\\Windows\\ApiPort|ALPC Port", "\\Windows\\Nested|Directory"]);
});

Deno.test("walkNamespace() handles a deep tree without recursion limits", () => {
  const dirs: Record<string, DirectoryEntry[]> = {};
  let path = "\\";
  for (let i = 0; i < 60; i++) {
    dirs[path] = [{ name: `d${i}`, type: "Directory" }, { name: `p${i}`, type: "ALPC Port" }];
    path = joinObjectPath(path, `d${i}`);
  }
  dirs[path] = [];
  const all = [...walkNamespace("\\", { source: fakeSource(dirs) })];
  assertStrictEquals(all.length, 120);
  assertStrictEquals(all.filter((e) => e.kind === "object" && e.type === "ALPC Port").length, 60);
});

Deno.test("decodeDirectoryBuffer() reads entries whose strings are absolute addresses in the buffer", () => {
  const E = LAYOUTS.OBJECT_DIRECTORY_INFORMATION;
  const U = LAYOUTS.UNICODE_STRING;
  const entries = [{ name: "ApiPort", type: "ALPC Port" }, { name: "Ünï", type: "Directory" }];
  const buf = new Uint8Array(512);
  const dv = new DataView(buf.buffer);
  const base = 0x10000n;
  let strings = E.size * (entries.length + 1); // + the terminating zero entry
  const put = (at: number, s: string) => {
    const bytes = encodeUtf16(s, true);
    buf.set(bytes, strings);
    dv.setUint16(at + U.offsets.Length, s.length * 2, true);
    dv.setUint16(at + U.offsets.MaximumLength, bytes.byteLength, true);
    dv.setBigUint64(at + U.offsets.Buffer, base + BigInt(strings), true);
    strings += bytes.byteLength;
  };
  entries.forEach((e, i) => {
    put(i * E.size + E.offsets.Name, e.name);
    put(i * E.size + E.offsets.TypeName, e.type);
  });
  assertEquals(decodeDirectoryBuffer(buf, base), entries);
  assertEquals(decodeDirectoryBuffer(buf, base, 1), entries.slice(0, 1));
  // A pointer outside the buffer is refused, not followed.
  assertThrows(() => decodeDirectoryBuffer(buf, base + 0x100000n), RangeError);
});

Deno.test("listPorts() builds the deno-lpc/ports@2 document; formatTable() shows errors and counts", () => {
  const src = fakeSource(NAMESPACE, { "\\??": "\\GLOBAL??" }, {
    "\\Secret": NTSTATUS.STATUS_ACCESS_DENIED,
  });
  const doc = listPorts({
    root: "\\",
    types: ["ALPC Port", "Port", "WaitablePort"],
    all: false,
    servers: false,
    mode: "auto",
    source: src,
  });
  assertStrictEquals(doc.schema, "deno-lpc/ports@2");
  assertEquals(doc.summary, { objects: 6, ports: 6, attributed: 0, errors: 1 });
  assert(doc.objects.every((o) => ["ALPC Port", "Port", "WaitablePort"].includes(o.type)));
  const all = listPorts({
    root: "\\",
    types: [],
    all: true,
    servers: false,
    mode: "auto",
    source: src,
  });
  assertStrictEquals(all.summary.objects, 12);
  assertStrictEquals(all.objects.find((o) => o.type === "SymbolicLink")?.target, "\\GLOBAL??");
  const onlyWaitable = listPorts({
    root: "\\",
    types: ["waitableport"],
    all: false,
    servers: false,
    mode: "auto",
    source: src,
  });
  assertEquals(onlyWaitable.objects.map((o) => o.path), ["\\RPC Control\\OLD"]);
  const table = formatTable(doc);
  assertMatch(table, /^PATH\s+TYPE/);
  assertMatch(table, /! \\Secret: STATUS_ACCESS_DENIED \(0xC0000022\)/);
  assertMatch(table, /6 listed below \\; 6 port objects; 1 unreadable$/);
});
