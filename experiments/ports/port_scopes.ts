/**
 * The namespace's scopes for the ports document: global, each `\Sessions\<n>`, and each
 * AppContainer named-object directory, with their ports and unreadable directories.
 *
 * @module
 */

import type { NamespaceError, NamespaceObject } from "../../mod.ts";
import { PORT_TYPES } from "../../raw.ts";

/** Ports and unreadable directories in one part of the namespace. */
export interface ScopeSummary {
  /** `\`, `\Sessions\<n>`, or `\Sessions\<n>\AppContainerNamedObjects\<package SID>`. */
  scope: string;
  /** Which kind. */
  kind: "global" | "session" | "appcontainer";
  /** Port objects found in it. */
  ports: number;
  /** Directories in it that could not be read. */
  unreadable: number;
}

/** The scope a path is in. */
export function scopeOf(path: string): { scope: string; kind: ScopeSummary["kind"] } {
  const ac = /^(\\Sessions\\\d+\\AppContainerNamedObjects\\[^\\]+)/i.exec(path);
  if (ac) return { scope: ac[1]!, kind: "appcontainer" };
  const session = /^(\\Sessions\\\d+)(?:\\|$)/i.exec(path);
  if (session) return { scope: session[1]!, kind: "session" };
  return { scope: "\\", kind: "global" };
}

/**
 * Counts ports and unreadable directories per scope (global, each session, each AppContainer
 * directory), in path order, global first. Every object counted is also in the listing.
 */
export function namespaceScopes(
  objects: readonly NamespaceObject[],
  errors: readonly NamespaceError[],
): ScopeSummary[] {
  const scopes = new Map<string, ScopeSummary>();
  const at = (path: string) => {
    const { scope, kind } = scopeOf(path);
    return scopes.get(scope) ??
      scopes.set(scope, { scope, kind, ports: 0, unreadable: 0 }).get(scope)!;
  };
  for (const o of objects) {
    if (PORT_TYPES.includes(o.type)) at(o.path).ports++;
    else if (o.type === "Directory") at(o.path);
  }
  for (const e of errors) at(e.path).unreadable++;
  return [...scopes.values()].sort((a, b) =>
    a.kind === "global" ? -1 : b.kind === "global" ? 1 : a.scope < b.scope ? -1 : 1
  );
}

/** The scope lines of the table. */
export function formatScopes(scopes: readonly ScopeSummary[]): string[] {
  return scopes.filter((s) => s.kind !== "global" || scopes.length > 1).map((s) =>
    `scope ${s.scope} (${s.kind}): ${s.ports} ports` +
    (s.unreadable ? `, ${s.unreadable} unreadable` : "")
  );
}
