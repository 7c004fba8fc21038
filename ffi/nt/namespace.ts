/**
 * The object manager namespace: open and read object directories, read symbolic links, and walk
 * the tree (what WinObj shows), reporting directories that cannot be read instead of stopping.
 *
 * @module
 */

import { addressOf, handleCell, NtHandle } from "./handle.ts";
import { LAYOUTS } from "../layouts.ts";
import { ntdll } from "../ntdll.ts";
import { ObjectAttributes, readCountedUnicodeString } from "./object_attributes.ts";
import { check, NtError, NTSTATUS, statusName, toUnsigned } from "../status.ts";
import { decodeUtf16 } from "../strings.ts";

const ODI = LAYOUTS.OBJECT_DIRECTORY_INFORMATION;
const US = LAYOUTS.UNICODE_STRING;

/** Directory object access rights (phnt ntobapi.h). */
export const DirectoryAccess = {
  DIRECTORY_QUERY: 0x1,
  DIRECTORY_TRAVERSE: 0x2,
  DIRECTORY_CREATE_OBJECT: 0x4,
  DIRECTORY_CREATE_SUBDIRECTORY: 0x8,
} as const;

/** `SYMBOLIC_LINK_QUERY`. */
export const SYMBOLIC_LINK_QUERY = 0x1;

/** The object type names of LPC ports: `ALPC Port` (Vista+), `Port` and `WaitablePort` (≤ 2003). */
export const PORT_TYPES: readonly string[] = ["ALPC Port", "Port", "WaitablePort"];

/** One entry of an object directory. */
export interface DirectoryEntry {
  /** The object's name within the directory. */
  name: string;
  /** The object type name (`Directory`, `SymbolicLink`, `ALPC Port`, ...). */
  type: string;
}

/**
 * Opens an object directory (`NtOpenDirectoryObject`), by default for query and traverse.
 *
 * @example
 * ```ts ignore
 * import { openDirectory } from "./namespace.ts";
 * using dir = openDirectory("\\BaseNamedObjects");
 * ```
 */
export function openDirectory(
  path: string,
  access: number = DirectoryAccess.DIRECTORY_QUERY | DirectoryAccess.DIRECTORY_TRAVERSE,
): NtHandle<"directory"> {
  const oa = new ObjectAttributes(path);
  const cell = handleCell();
  check(ntdll().NtOpenDirectoryObject(cell, access, oa.struct), "NtOpenDirectoryObject", path);
  return NtHandle.fromCell("directory", cell, `directory ${path}`);
}

/**
 * Decodes what `NtQueryDirectoryObject` wrote: `OBJECT_DIRECTORY_INFORMATION` entries up to an
 * all-zero one (or `maxEntries`), whose strings are absolute addresses inside the buffer.
 *
 * @param buf the buffer the call filled
 * @param base the buffer's address as native code saw it
 * @param maxEntries stop after this many entries (1 in single-entry mode)
 */
export function decodeDirectoryBuffer(
  buf: Uint8Array,
  base: bigint,
  maxEntries = Number.MAX_SAFE_INTEGER,
): DirectoryEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: DirectoryEntry[] = [];
  for (let at = 0; at + ODI.size <= buf.byteLength && out.length < maxEntries; at += ODI.size) {
    const nameAt = at + ODI.offsets.Name;
    if (
      dv.getUint16(nameAt + US.offsets.Length, true) === 0 &&
      dv.getBigUint64(nameAt + US.offsets.Buffer, true) === 0n
    ) break;
    out.push({
      name: readCountedUnicodeString(buf, nameAt, base),
      type: readCountedUnicodeString(buf, at + ODI.offsets.TypeName, base),
    });
  }
  return out;
}

/** How {@link listDirectory} asks the kernel. */
export type QueryMode = "batch" | "single" | "auto";

function queryOnce(
  dir: NtHandle<"directory">,
  buf: Uint8Array<ArrayBuffer>,
  single: boolean,
  restart: boolean,
  context: Uint32Array<ArrayBuffer>,
  returned: Uint32Array<ArrayBuffer>,
): number {
  return ntdll().NtQueryDirectoryObject(
    dir.unsafePointer,
    buf,
    buf.byteLength,
    single ? 1 : 0,
    restart ? 1 : 0,
    context,
    returned,
  );
}

/**
 * Lists an open directory. `batch` asks for as many entries per call as fit; `single` for one per
 * call (the only mode Wine 8.0 implements); `auto` tries batch and falls back to single when the
 * system answers `STATUS_NOT_IMPLEMENTED`. All modes return the same entries.
 */
export function listDirectory(
  dir: NtHandle<"directory">,
  mode: QueryMode = "auto",
): DirectoryEntry[] {
  if (mode === "auto") {
    try {
      return listDirectory(dir, "batch");
    } catch (e) {
      if (e instanceof NtError && e.is("STATUS_NOT_IMPLEMENTED")) {
        return listDirectory(dir, "single");
      }
      throw e;
    }
  }
  const single = mode === "single";
  let buf = new Uint8Array(single ? 1024 : 64 * 1024);
  const context = new Uint32Array(1);
  const returned = new Uint32Array(1);
  const out: DirectoryEntry[] = [];
  let restart = true;
  for (let calls = 0; calls < 1_000_000; calls++) {
    const status = toUnsigned(queryOnce(dir, buf, single, restart, context, returned));
    if (status === NTSTATUS.STATUS_NO_MORE_ENTRIES) return out;
    if (status === NTSTATUS.STATUS_BUFFER_TOO_SMALL || status === NTSTATUS.STATUS_BUFFER_OVERFLOW) {
      const want = Math.max(returned[0]!, buf.byteLength * 2);
      if (want > 16 * 1024 * 1024) check(status, "NtQueryDirectoryObject", dir.what);
      buf = new Uint8Array(want);
      continue; // the context did not move
    }
    check(status, "NtQueryDirectoryObject", dir.what);
    const entries = decodeDirectoryBuffer(buf, addressOf(buf), single ? 1 : undefined);
    out.push(...entries);
    restart = false;
    if (!single && status === NTSTATUS.STATUS_SUCCESS && entries.length === 0) return out;
  }
  return out;
}

/** Reads a symbolic link's target (`NtOpenSymbolicLinkObject` + `NtQuerySymbolicLinkObject`). */
export function readSymbolicLink(path: string): string {
  const oa = new ObjectAttributes(path);
  const cell = handleCell();
  check(
    ntdll().NtOpenSymbolicLinkObject(cell, SYMBOLIC_LINK_QUERY, oa.struct),
    "NtOpenSymbolicLinkObject",
    path,
  );
  using link = NtHandle.fromCell("symlink", cell, `symbolic link ${path}`);
  let capacity = 512;
  for (let attempt = 0; attempt < 4; attempt++) {
    const chars = new Uint8Array(capacity);
    const us = new Uint8Array(US.size);
    const dv = new DataView(us.buffer);
    dv.setUint16(US.offsets.MaximumLength, capacity, true);
    dv.setBigUint64(US.offsets.Buffer, addressOf(chars), true);
    const returned = new Uint32Array(1);
    const status = toUnsigned(ntdll().NtQuerySymbolicLinkObject(link.unsafePointer, us, returned));
    if (status === NTSTATUS.STATUS_BUFFER_TOO_SMALL && capacity < 0xfffe) {
      capacity = Math.min(0xfffe, Math.max(returned[0]! + 2, capacity * 2));
      continue;
    }
    check(status, "NtQuerySymbolicLinkObject", path);
    return decodeUtf16(chars.subarray(0, dv.getUint16(US.offsets.Length, true)));
  }
  check(NTSTATUS.STATUS_BUFFER_TOO_SMALL, "NtQuerySymbolicLinkObject", path);
  return "";
}

/** Where a walk reads directories from: the kernel, or a fake in tests. */
export interface DirectorySource {
  /** The entries of the directory at `path`; throws {@link NtError} when it cannot be read. */
  list(path: string): DirectoryEntry[];
  /** The target of the symbolic link at `path`; throws {@link NtError} when it cannot be read. */
  readLink(path: string): string;
}

/**
 * The real namespace, through ntdll. In `auto` mode the first `STATUS_NOT_IMPLEMENTED` from a batch
 * query switches the source to single-entry mode for the rest of the walk.
 */
export function kernelDirectorySource(mode: QueryMode = "auto"): DirectorySource {
  let effective = mode;
  return {
    list(path) {
      using dir = openDirectory(path);
      if (effective !== "auto") return listDirectory(dir, effective);
      try {
        const entries = listDirectory(dir, "batch");
        effective = "batch";
        return entries;
      } catch (e) {
        if (!(e instanceof NtError && e.is("STATUS_NOT_IMPLEMENTED"))) throw e;
        effective = "single";
        return listDirectory(dir, "single");
      }
    },
    readLink: readSymbolicLink,
  };
}

/** An object found by {@link walkNamespace}. */
export interface NamespaceObject {
  /** The full path, e.g. `\RPC Control\lsasspirpc`. */
  path: string;
  /** The object type name. */
  type: string;
  /** For a symbolic link: its target (never followed). */
  target?: string;
}

/** A directory (or link) that could not be read; the walk went on. */
export interface NamespaceError {
  /** The path that failed. */
  path: string;
  /** The NTSTATUS in hex, e.g. `0xC0000022`. */
  status: string;
  /** Its symbolic name, e.g. `STATUS_ACCESS_DENIED` (the hex again when unknown). */
  name: string;
}

/** What {@link walkNamespace} yields. */
export type NamespaceEntry =
  | ({ kind: "object" } & NamespaceObject)
  | ({ kind: "error" } & NamespaceError);

/** Joins a directory path and a name. */
export function joinObjectPath(dir: string, name: string): string {
  return dir.endsWith("\\") ? dir + name : `${dir}\\${name}`;
}

function errorEntry(path: string, e: unknown): { kind: "error" } & NamespaceError {
  if (!(e instanceof NtError)) throw e;
  return { kind: "error", path, status: e.hex, name: e.symbol ?? statusName(e.code) ?? e.hex };
}

/** Options for {@link walkNamespace}. */
export interface WalkOptions {
  /** Where to read from (default: the kernel, queried as `mode` says). */
  source?: DirectorySource;
  /**
   * How the kernel source queries each directory (default `auto`: batch, with a single-entry
   * fallback); ignored with `source`.
   */
  mode?: QueryMode;
  /** How deep to descend below the root (default 64). */
  maxDepth?: number;
  /** Resolve symbolic-link targets (default true). */
  links?: boolean;
}

/**
 * Walks the object directory tree below `root`, depth first, entries of each directory in
 * ordinal name order. Symbolic links carry their target and are not followed; a directory or link
 * that cannot be read yields an error entry and the walk goes on.
 *
 * @param root the directory to start from (default `\\`)
 * @param options `source` (where to read; default the kernel), `mode`, `maxDepth`, `links`
 * @example A walk over a fake source runs anywhere (the kernel's is the default)
 * ```ts
 * import { type NamespaceEntry, walkNamespace } from "@deno-lpc/deno-lpc";
 * import type { DirectorySource } from "@deno-lpc/deno-lpc/raw";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * const tree: Record<string, { name: string; type: string }[]> = {
 *   "\\": [{ name: "RPC Control", type: "Directory" }, { name: "DosDevices", type: "SymbolicLink" }],
 *   "\\RPC Control": [{ name: "lsasspirpc", type: "ALPC Port" }],
 * };
 * const source: DirectorySource = { list: (p) => tree[p] ?? [], readLink: () => "\\??" };
 * const seen = [...walkNamespace("\\", { source })].map((e: NamespaceEntry) =>
 *   e.kind === "object" ? `${e.type} ${e.path}` : `error ${e.path}`
 * );
 * assertEquals(seen, [
 *   "SymbolicLink \\DosDevices",
 *   "Directory \\RPC Control",
 *   "ALPC Port \\RPC Control\\lsasspirpc",
 * ]);
 * ```
 */
export function* walkNamespace(root = "\\", options: WalkOptions = {}): Generator<NamespaceEntry> {
  const source = options.source ?? kernelDirectorySource(options.mode);
  const maxDepth = options.maxDepth ?? 64;
  const stack: [string, number][] = [[root, 0]];
  while (stack.length) {
    const [dir, depth] = stack.pop()!;
    let entries: DirectoryEntry[];
    try {
      entries = source.list(dir);
    } catch (e) {
      yield errorEntry(dir, e);
      continue;
    }
    entries = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: [string, number][] = [];
    for (const entry of entries) {
      const path = joinObjectPath(dir, entry.name);
      if (entry.type === "SymbolicLink" && options.links !== false) {
        try {
          yield { kind: "object", path, type: entry.type, target: source.readLink(path) };
        } catch (e) {
          yield { kind: "object", path, type: entry.type };
          yield errorEntry(path, e);
        }
        continue;
      }
      yield { kind: "object", path, type: entry.type };
      if (entry.type === "Directory" && depth < maxDepth) subdirs.push([path, depth + 1]);
    }
    // Depth first, in name order: push in reverse so the first subdirectory is walked next.
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
  }
}
