#!/usr/bin/env -S deno run --allow-ffi
/**
 * Question 1 of the lab: "How can you see what LPC objects are created in the system?"
 *
 * Walks the object manager namespace (what WinObj shows) and lists the LPC port objects: type
 * `ALPC Port` on Vista and later, `Port` / `WaitablePort` on older systems. With `--servers` it also
 * names the process serving each port, the way NtObjectManager's `Get-NtAlpcServer` does: list the
 * system handle table, keep the port handles, duplicate each one and ask its name. With `--graph`
 * it adds who talks to whom (`port_graph.ts`): each named port's server, the client processes
 * connected to it, and with `--waits` the threads blocked on a port; printed as a Mermaid
 * flowchart (or DOT with `--dot`), or in the document (schema `deno-lpc/ports@2`) with `--json`.
 *
 * ```sh
 * deno run --allow-ffi experiments/ports/list_ports.ts                  # ports below \
 * deno run --allow-ffi experiments/ports/list_ports.ts --root "\RPC Control" --servers
 * deno run --allow-ffi experiments/ports/list_ports.ts --all --json     # every object, as JSON
 * deno run --allow-ffi experiments/ports/list_ports.ts --graph --waits  # who talks to whom (Mermaid)
 * ```
 *
 * @module
 */

import {
  assertWindows,
  findPortServers,
  type NamespaceError,
  type NamespaceObject,
  type PortServerReport,
  type QueryMode,
  UnsupportedError,
  walkNamespace,
} from "../../mod.ts";
import { type DirectorySource, PORT_TYPES } from "../../raw.ts";
import { type Cli, type CliValues, EXIT, UsageError } from "../_cli.ts";
import { runScript } from "../_runner.ts";
import type { GraphSource, PortGraph } from "./port_graph.ts";
import { checkGraphOptions, GRAPH_OPTIONS, portGraph } from "./list_ports_graph.ts";
import { namespaceScopes, type ScopeSummary } from "./port_scopes.ts";
import { portSecurity, type SecurityProbe, type SecuritySection } from "./port_security.ts";
import { formatOutput } from "./ports_table.ts";
import { kernelSecurityProbe } from "./port_security_probe.ts";

/** The command line, declared once (parser and `--help`). */
export const CLI = {
  name: "list_ports",
  usage: `list_ports: list the LPC/ALPC port objects in the object namespace, and who serves them.

Usage: deno run --allow-ffi experiments/ports/list_ports.ts [options]`,
  options: {
    root: {
      kind: "text",
      value: "dir",
      default: "\\",
      help: "where to start: an object directory such as \\RPC Control",
    },
    type: {
      kind: "text",
      value: "name",
      multiple: true,
      help: "list objects of this type instead of the port types (ALPC Port, Port, WaitablePort)",
    },
    all: { kind: "flag", help: "list every object of every type (for exploring)" },
    servers: {
      kind: "flag",
      help: "name the process serving each port (enables SeDebugPrivilege when held; protected " +
        "processes such as csrss cannot be opened and are counted, not named)",
    },
    security: {
      kind: "flag",
      help: "the security descriptor (SDDL) of each named port, read through its server's " +
        "handle as --servers finds it (SeDebugPrivilege enabled when held; a protected server " +
        "cannot be read: the reason is given instead)",
    },
    access: {
      kind: "flag",
      help: "with the descriptors: may each token connect (this process's, a restricted " +
        "Medium copy, a Low copy, an AppContainer copy)? NtAccessCheck for PORT_CONNECT with " +
        "the port type's generic mapping",
    },
    mode: {
      kind: "choice",
      choices: ["auto", "batch", "single"],
      default: "auto",
      help: "how directories are read: auto (batch, single-entry where batch is missing), " +
        "batch (Wine has no batch mode: exit 3), single",
    },
    ...GRAPH_OPTIONS,
    json: {
      kind: "flag",
      help: "print one JSON document (schema deno-lpc/ports@2) instead of a table or graph",
    },
  },
  schema: "deno-lpc/ports@2",
} as const satisfies Cli;

/** A listed object, with its server when known. */
export interface PortListing extends NamespaceObject {
  /** The process serving this port (`--servers`). */
  server?: { pid: number; image: string | null };
}

/** The `--json` document (`@2` added the optional parts: `graph`). */
export interface PortsDocument {
  /** Always `deno-lpc/ports@2`. */
  schema: "deno-lpc/ports@2";
  /** Where the walk started. */
  root: string;
  /** The objects listed (ports, the `--type` types, or everything with `--all`). */
  objects: PortListing[];
  /** Directories that could not be read. */
  errors: NamespaceError[];
  /** Counts. */
  summary: { objects: number; ports: number; attributed: number; errors: number };
  /** With `--servers`: how attribution went. */
  servers?: {
    debugPrivilege: boolean;
    portHandles: number;
    unattributed: Record<string, number>;
    skipped?: string;
  };
  /** With `--graph`: who talks to whom, or why the graph could not be built. */
  graph?: PortGraph | { skipped: string };
  /** Ports and unreadable directories per scope: global, each session, each AppContainer. */
  scopes?: ScopeSummary[];
  /** With `--security` / `--access`: each named port's descriptor and who may connect. */
  security?: SecuritySection;
}

/** Options of {@link listPorts}. */
export interface ListPortsOptions {
  /** Where to start. */
  root: string;
  /** Types to keep (ignored with `all`). */
  types: string[];
  /** Keep every object. */
  all: boolean;
  /** Attribute ports to their servers. */
  servers: boolean;
  /** How directories are read. */
  mode: QueryMode;
  /** Where directories are read from (default: the kernel; tests pass a fake). */
  source?: DirectorySource;
  /** Build the port graph (`--graph`); `waits`: with the waiting threads. */
  graph?: { waits: boolean; source?: GraphSource };
  /** Read each named port's security descriptor. */
  security?: boolean;
  /** Check who may connect (implies `security`). */
  access?: boolean;
  /** Where descriptors and tokens come from (default: the kernel; tests pass a recorded one). */
  securityProbe?: SecurityProbe;
}

/** Walks the namespace and builds the document (Windows only). */
export function listPorts(options: ListPortsOptions): PortsDocument {
  const objects: PortListing[] = [];
  const errors: NamespaceError[] = [];
  let ports = 0;
  const keep = new Set(options.types.map((t) => t.toLowerCase()));
  for (
    const e of walkNamespace(options.root, {
      mode: options.mode,
      ...(options.source ? { source: options.source } : {}),
    })
  ) {
    if (e.kind === "error") {
      errors.push({ path: e.path, status: e.status, name: e.name });
      continue;
    }
    const isPort = PORT_TYPES.includes(e.type);
    if (isPort) ports++;
    if (options.all || keep.has(e.type.toLowerCase())) {
      objects.push({
        path: e.path,
        type: e.type,
        ...(e.target !== undefined ? { target: e.target } : {}),
      });
    }
  }
  const doc: PortsDocument = {
    schema: "deno-lpc/ports@2",
    root: options.root,
    objects,
    errors,
    summary: { objects: objects.length, ports, attributed: 0, errors: errors.length },
  };
  if (options.servers) {
    let report: PortServerReport | undefined;
    try {
      report = findPortServers();
    } catch (e) {
      doc.servers = {
        debugPrivilege: false,
        portHandles: 0,
        unattributed: {},
        skipped: e instanceof Error ? e.message : String(e),
      };
    }
    if (report) {
      for (const o of objects) {
        const s = PORT_TYPES.includes(o.type)
          ? report.servers.get(o.path.toLowerCase())
          : undefined;
        if (s) {
          o.server = s;
          doc.summary.attributed++;
        }
      }
      doc.servers = {
        debugPrivilege: report.debugPrivilege,
        portHandles: report.portHandles,
        unattributed: report.unattributed,
      };
    }
  }
  if (options.graph) doc.graph = portGraph(objects, options.graph);
  doc.scopes = namespaceScopes(objects, errors);
  if (options.security || options.access) {
    doc.security = portSecurity(objects, {
      access: options.access ?? false,
      probe: options.securityProbe ?? kernelSecurityProbe(),
    });
  }
  return doc;
}

type Values = CliValues<typeof CLI.options>;

/** The walk, as the command line asks for it; a stub status is "not supported". */
function run(v: Values): PortsDocument {
  const doc = listPorts({
    root: v.root,
    types: v.type.length ? v.type : [...PORT_TYPES],
    all: v.all,
    servers: v.servers,
    mode: v.mode,
    ...(v.graph ? { graph: { waits: v.waits } } : {}),
    security: v.security,
    access: v.access,
  });
  // A stub status (Wine has no batch mode) means "not supported", not "unreadable".
  const stub = doc.errors.find((e) => e.name === "STATUS_NOT_IMPLEMENTED");
  if (stub) {
    throw new UnsupportedError(
      `reading ${stub.path} in ${v.mode} mode returned ${stub.name} (${stub.status}), a stub of ` +
        "this system (Wine has no batch mode): --mode auto or single reads one entry per call",
    );
  }
  return doc;
}

/**
 * Exit 1 when the root itself could not be read (the listing is printed all the same). A graph
 * that could not be built is, like a skipped `--servers`, an observation: its reason is in the
 * document (`graph.skipped`) and on stderr, and the walk's exit code stands.
 */
function exitCode(doc: PortsDocument): number {
  if (doc.graph && "skipped" in doc.graph) {
    console.error(`list_ports: --graph not built: ${doc.graph.skipped}`);
  }
  const root = doc.errors.find((e) => e.path === doc.root);
  if (root === undefined) return EXIT.OK;
  console.error(`list_ports: cannot read ${root.path}: ${root.name} (${root.status})`);
  return EXIT.FAILURE;
}

/** The combinations the options cannot say themselves. */
export function checkOptions(v: Values): void {
  if (!v.root.startsWith("\\")) {
    throw new UsageError(`--root must be an absolute object path such as \\RPC Control`);
  }
  checkGraphOptions(v);
}

if (import.meta.main) {
  await runScript(import.meta.url, {
    cli: CLI,
    prerequisites: (v) => {
      checkOptions(v);
      assertWindows("list_ports");
    },
    run,
    print: (doc, v) => console.log(formatOutput(doc, v.dot)),
    exitCode,
  });
}
