/**
 * Port security for `list_ports --security` and `--access`: each named connection port's
 * security descriptor as SDDL, and whether each of four tokens may connect to it.
 *
 * - **The descriptor.** A named ALPC port cannot be opened by name without connecting; the only
 *   handle on it is its server's. So the handle table is listed, each port handle duplicated into
 *   this process (`findPortServers`, the `Get-NtAlpcServer` technique) and, while the duplicate is
 *   open, `NtQuerySecurityObject` reads owner, group, DACL and label (what `READ_CONTROL` allows;
 *   owner, group and DACL alone when the label is refused). Where no handle could be had (a
 *   protected server, a refused `PROCESS_DUP_HANDLE`), the reason is given instead.
 * - **The right.** A connect asks for access 1, `PORT_CONNECT` (`AlpcpCreateClientPort.c` looks
 *   the name up with `ObReferenceObjectByName(..., DesiredAccess 1, AlpcPortObjectType, ...)`).
 * - **The mapping.** The port type's `GENERIC_MAPPING`, from `NtQueryObject(ObjectTypeInformation)`
 *   on a port handle at run time (`ObQueryTypeInfo.c` copies the type's mapping); where no port
 *   handle is at hand, the constant: `AlpcpInitSystem.c` registers the `ALPC Port` type with
 *   `ValidAccessMask` 0x1F0001 and `AlpcpPortMapping`, a data symbol the pseudocode names but does
 *   not show; its value is the one of the LPC port mapping in the public NT sources (read
 *   `READ_CONTROL | PORT_CONNECT`, write `DELETE | PORT_CONNECT`, execute 0, all `PORT_ALL_ACCESS`).
 *   The document says which was used.
 * - **The tokens.** This process's token; a restricted copy (every privilege but
 *   SeChangeNotifyPrivilege removed, Administrators deny-only) at Medium integrity; a Low
 *   integrity copy; an AppContainer (lowbox) copy for a package SID of our own with no
 *   capabilities (`NtCreateLowBoxToken`). Each is checked as an identification-level
 *   impersonation copy (`SeAccessCheckByType.c` wants an impersonation token) with
 *   `NtAccessCheck`, which runs the mandatory integrity check too. Every token is a disposable,
 *   closed on every path; nothing is written and nothing is widened.
 *
 * The table is built from a {@link SecurityProbe}: the kernel's ({@link kernelSecurityProbe}) or a
 * test's recorded one.
 *
 * @module
 */

import {
  findPortServers,
  type NamespaceError,
  type NamespaceObject,
  NtError,
  Token,
} from "../../mod.ts";
import {
  accessCheck,
  type AccessCheckResult,
  createLowBoxToken,
  formatHex,
  type GenericMapping,
  type ObjectTypeFacts,
  objectTypeInformation,
  PORT_TYPES,
  querySecurityDescriptor,
  READ_CONTROL_INFORMATION,
  securityDescriptorToSddl,
  SecurityInformation,
  TokenAccess,
  WellKnownSid,
} from "../../raw.ts";

/** `PORT_CONNECT`: the right a connect asks for (`AlpcpCreateClientPort.c`). */
export const PORT_CONNECT = 0x1;

/** Where {@link PORT_CONNECT} was read. */
export const CONNECT_RIGHT_SOURCE =
  "AlpcpCreateClientPort.c: ObReferenceObjectByName(name, 0, NULL, 1, AlpcPortObjectType, ...)";

/** The ALPC Port type's mapping when none can be read at run time. */
export const ALPC_PORT_MAPPING_CONSTANT: { mapping: GenericMapping; validAccessMask: number } = {
  mapping: { read: 0x00020001, write: 0x00010001, execute: 0, all: 0x001f0001 },
  validAccessMask: 0x001f0001,
};

/** Where {@link ALPC_PORT_MAPPING_CONSTANT} comes from. */
export const ALPC_PORT_MAPPING_SOURCE = "AlpcpInitSystem.c (ValidAccessMask 0x1F0001 and " +
  "AlpcpPortMapping, whose value the pseudocode does not show: read READ_CONTROL|PORT_CONNECT, " +
  "write DELETE|PORT_CONNECT, execute 0, all PORT_ALL_ACCESS, as in the public NT sources' " +
  "LpcpPortMapping)";

/** A package SID of our own for the AppContainer token ("denolpc" in ASCII); nothing is installed. */
export const PACKAGE_SID = "S-1-15-2-100-101-110-111-108-112-99";

/** The tokens checked, in order. */
export const TOKEN_NAMES = ["process", "restricted-medium", "low", "appcontainer"] as const;
/** One of {@link TOKEN_NAMES}. */
export type TokenName = typeof TOKEN_NAMES[number];

/** What each token is. */
export const TOKEN_DESCRIPTIONS: Readonly<Record<TokenName, string>> = {
  process: "this process's token",
  "restricted-medium":
    "a restricted copy (privileges removed but SeChangeNotifyPrivilege, Administrators deny-only) at Medium integrity",
  low: "a copy at Low integrity",
  appcontainer: `an AppContainer (lowbox) copy for package ${PACKAGE_SID}, no capabilities`,
};

/** A made token's facts. */
export interface TokenFacts {
  /** Which token. */
  name: TokenName;
  /** Always true. */
  made: true;
  /** The user SID. */
  user: string;
  /** The integrity level's name. */
  integrity: string;
  /** How it was made. */
  how: string;
}

/** A token that could not be made, and why. */
export interface TokenMissing {
  /** Which token. */
  name: TokenName;
  /** Always false. */
  made: false;
  /** Why not. */
  reason: string;
}

/** A token, made or not. */
export type TokenOutcome = TokenFacts | TokenMissing;

/** A token the probe made, with what the checker needs (the probe's own, opaque here). */
export interface ProbeToken {
  /** Its facts. */
  facts: TokenFacts;
  /** The probe's handle on it. */
  token: unknown;
}

/** A port's descriptor as read. */
export interface PortDescriptor {
  /** SDDL text of the parts read. */
  sddl: string;
  /** The self-relative descriptor's bytes (not in the document). */
  sd: Uint8Array<ArrayBuffer>;
  /** The parts read: `owner`, `group`, `dacl`, `label`. */
  parts: string[];
}

/** What the handle table gave for the named ports. */
export interface DescriptorSurvey {
  /** Lower-case port path → its server and descriptor, or its server and why no descriptor. */
  byPath: Map<
    string,
    & { server: { pid: number; image: string | null } }
    & (
      | { descriptor: PortDescriptor }
      | { reason: string }
    )
  >;
  /** Why a port with no entry has no descriptor. */
  missing: string;
  /** The port type's facts read from a port handle, or why they could not be. */
  type: { port: string; facts: ObjectTypeFacts } | { reason: string };
  /** Port handles that could not be examined: reason → count. */
  unattributed: Record<string, number>;
}

/** Where the table's inputs come from: the kernel, or a test's recorded inputs. */
export interface SecurityProbe {
  /** Reads the descriptors of the named ports (one walk of the handle table). */
  survey(): DescriptorSurvey;
  /** Makes the tokens; each made one is owned by `stack` (closed when it is disposed). */
  tokens(stack: DisposableStack): (ProbeToken | TokenMissing)[];
  /** May `token` have `desired` on `descriptor` under `mapping`? A failing call throws. */
  check(
    descriptor: PortDescriptor,
    token: unknown,
    desired: number,
    mapping: GenericMapping,
  ): AccessCheckResult;
}

/** The mapping used and where it came from, as the document gives it. */
export interface MappingChoice {
  /** `runtime` (read from a port handle) or `constant` ({@link ALPC_PORT_MAPPING_CONSTANT}). */
  from: "runtime" | "constant";
  /** Which handle, or which kernel file. */
  source: string;
  /** Why the runtime mapping was not used (with `constant`). */
  why?: string;
  /** The type name (with `runtime`). */
  typeName?: string;
  /** The mapping, in hex. */
  read: string;
  /** `GENERIC_WRITE` maps to this. */
  write: string;
  /** `GENERIC_EXECUTE` maps to this. */
  execute: string;
  /** `GENERIC_ALL` maps to this. */
  all: string;
  /** The type's valid access mask, in hex. */
  validAccessMask: string;
}

/** Chooses the mapping: the one read at run time where there is one, else the constant. */
export function chooseMapping(
  type: DescriptorSurvey["type"],
): { choice: MappingChoice; mapping: GenericMapping } {
  const hex = (m: GenericMapping, valid: number) => ({
    read: formatHex(m.read),
    write: formatHex(m.write),
    execute: formatHex(m.execute),
    all: formatHex(m.all),
    validAccessMask: formatHex(valid),
  });
  if ("facts" in type) {
    return {
      mapping: type.facts.mapping,
      choice: {
        from: "runtime",
        source: `NtQueryObject(ObjectTypeInformation) on a handle of ${type.port}`,
        typeName: type.facts.typeName,
        ...hex(type.facts.mapping, type.facts.validAccessMask),
      },
    };
  }
  const c = ALPC_PORT_MAPPING_CONSTANT;
  return {
    mapping: c.mapping,
    choice: {
      from: "constant",
      source: ALPC_PORT_MAPPING_SOURCE,
      why: type.reason,
      ...hex(c.mapping, c.validAccessMask),
    },
  };
}

/** Whether one token may connect to one port. */
export type ConnectVerdict =
  | {
    /** Whether `PORT_CONNECT` was granted. */
    connect: boolean;
    /** The rights granted, in hex. */
    granted: string;
    /** The check's status (`STATUS_SUCCESS`, `STATUS_ACCESS_DENIED`...). */
    status: string;
  }
  | {
    /** Unknown. */
    connect: null;
    /** Why (the token could not be made, or the check failed). */
    reason: string;
  };

/** One named port's security. */
export interface PortSecurity {
  /** The port's path. */
  path: string;
  /** The process whose handle was read. */
  server?: { pid: number; image: string | null };
  /** Its descriptor as SDDL. */
  sddl?: string;
  /** The parts of it read (`owner`, `group`, `dacl`, `label`). */
  parts?: string[];
  /** Why there is no SDDL. */
  reason?: string;
  /** With `--access`: token → verdict. */
  access?: Partial<Record<TokenName, ConnectVerdict>>;
}

/** The `security` field of the ports document. */
export interface SecuritySection {
  /** The right checked and where it was read. */
  right: { name: "PORT_CONNECT"; value: string; source: string };
  /** With `--access`: the mapping used. */
  mapping?: MappingChoice;
  /** With `--access`: the tokens, made or not. */
  tokens?: TokenOutcome[];
  /** One entry per named port listed. */
  ports: PortSecurity[];
  /** Port handles of other processes that could not be examined: reason → count. */
  unattributed: Record<string, number>;
  /** Counts. */
  summary: {
    ports: number;
    withSddl: number;
    withoutSddl: Record<string, number>;
    /** With `--access`: each token made → the ports it may connect to. */
    connectable?: Partial<Record<TokenName, number>>;
  };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Builds the security section for the named ports among `objects`. With `access`, makes the
 * tokens (closed before this returns, on every path) and checks each against each descriptor.
 */
export function portSecurity(
  objects: readonly NamespaceObject[],
  options: { access: boolean; probe: SecurityProbe },
): SecuritySection {
  const survey = options.probe.survey();
  const ports: PortSecurity[] = [];
  const withoutSddl: Record<string, number> = {};
  let withSddl = 0;
  for (const o of objects) {
    if (!PORT_TYPES.includes(o.type)) continue;
    const hit = survey.byPath.get(o.path.toLowerCase());
    const entry: PortSecurity = { path: o.path };
    if (hit) entry.server = hit.server;
    if (hit && "descriptor" in hit) {
      entry.sddl = hit.descriptor.sddl;
      entry.parts = hit.descriptor.parts;
      withSddl++;
    } else {
      entry.reason = hit && "reason" in hit ? hit.reason : survey.missing;
      withoutSddl[entry.reason] = (withoutSddl[entry.reason] ?? 0) + 1;
    }
    ports.push(entry);
  }
  const section: SecuritySection = {
    right: { name: "PORT_CONNECT", value: formatHex(PORT_CONNECT), source: CONNECT_RIGHT_SOURCE },
    ports,
    unattributed: survey.unattributed,
    summary: { ports: ports.length, withSddl, withoutSddl },
  };
  if (!options.access) return section;
  const { choice, mapping } = chooseMapping(survey.type);
  section.mapping = choice;
  using stack = new DisposableStack();
  const tokens = options.probe.tokens(stack);
  section.tokens = tokens.map((t) => "facts" in t ? t.facts : t);
  const connectable: Partial<Record<TokenName, number>> = {};
  for (const t of tokens) if ("facts" in t) connectable[t.facts.name] = 0;
  for (const p of ports) {
    p.access = {};
    const hit = survey.byPath.get(p.path.toLowerCase());
    const descriptor = hit && "descriptor" in hit ? hit.descriptor : undefined;
    for (const t of tokens) {
      const name = "facts" in t ? t.facts.name : t.name;
      if (!("facts" in t)) {
        p.access[name] = { connect: null, reason: `no token: ${t.reason}` };
      } else if (!descriptor) {
        p.access[name] = { connect: null, reason: `no descriptor: ${p.reason}` };
      } else {
        try {
          const r = options.probe.check(descriptor, t.token, PORT_CONNECT, mapping);
          p.access[name] = {
            connect: r.granted,
            granted: formatHex(r.grantedAccess),
            status: r.name,
          };
          if (r.granted) connectable[name] = (connectable[name] ?? 0) + 1;
        } catch (e) {
          p.access[name] = { connect: null, reason: `access check failed: ${message(e)}` };
        }
      }
    }
  }
  section.summary.connectable = connectable;
  return section;
}

/** The table lines of a security section (after the port table). */
export function formatSecurity(section: SecuritySection): string[] {
  const out: string[] = [""];
  out.push(`SECURITY (${section.right.name} ${section.right.value})`);
  if (section.mapping) {
    const m = section.mapping;
    out.push(
      `mapping: read ${m.read}, write ${m.write}, execute ${m.execute}, all ${m.all} ` +
        `(${m.from}: ${m.source}${m.why ? `; runtime not used: ${m.why}` : ""})`,
    );
  }
  for (const t of section.tokens ?? []) {
    out.push(
      t.made
        ? `token ${t.name}: ${t.user}, ${t.integrity} integrity (${t.how})`
        : `token ${t.name}: not made: ${t.reason}`,
    );
  }
  for (const p of section.ports) {
    out.push(`${p.path}  ${p.sddl ?? `! ${p.reason}`}`);
    if (p.access) {
      const cells = Object.entries(p.access).map(([k, v]) =>
        v.connect === null ? `${k} ?` : `${k} ${v.connect ? "yes" : `no (${v.status})`}`
      );
      out.push(`  may connect: ${cells.join(", ")}`);
    }
  }
  const s = section.summary;
  const without = Object.entries(s.withoutSddl).map(([k, v]) => `${v}: ${k}`).join("; ");
  out.push(
    `${s.withSddl} of ${s.ports} named ports with a descriptor` +
      (without ? `; without: ${without}` : "") +
      (s.connectable
        ? `; may connect: ${Object.entries(s.connectable).map(([k, v]) => `${k} ${v}`).join(", ")}`
        : ""),
  );
  return out;
}

// ---- the namespace's scopes: global, per session, per AppContainer ----

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

// ---- the kernel's probe (Windows) ----

/** The RID of Medium integrity. */
const MEDIUM_RID = 0x2000;

const PARTS: [number, string][] = [
  [SecurityInformation.OWNER_SECURITY_INFORMATION, "owner"],
  [SecurityInformation.GROUP_SECURITY_INFORMATION, "group"],
  [SecurityInformation.DACL_SECURITY_INFORMATION, "dacl"],
  [SecurityInformation.LABEL_SECURITY_INFORMATION, "label"],
];

function reasonOf(e: unknown): string {
  if (e instanceof NtError) return `${e.call}: ${e.symbol ? `${e.symbol} (${e.hex})` : e.hex}`;
  return message(e);
}

/** Owner, group, DACL and label of an open handle; without the label if that is refused. */
function readDescriptor(port: Parameters<typeof querySecurityDescriptor>[0]): PortDescriptor {
  const noLabel = READ_CONTROL_INFORMATION & ~SecurityInformation.LABEL_SECURITY_INFORMATION;
  let info = READ_CONTROL_INFORMATION;
  let sd: Uint8Array<ArrayBuffer>;
  try {
    sd = querySecurityDescriptor(port, info);
  } catch {
    info = noLabel;
    sd = querySecurityDescriptor(port, info);
  }
  return {
    sd,
    sddl: securityDescriptorToSddl(sd, info),
    parts: PARTS.filter(([bit]) => info & bit).map(([, n]) => n),
  };
}

/**
 * Takes an identification-level impersonation token into `stack` (it is closed when the stack is)
 * and reads its facts.
 */
function forCheck(stack: DisposableStack, imp: Token, how: string, name: TokenName): ProbeToken {
  stack.use(imp);
  return {
    facts: { name, made: true, user: imp.user(), integrity: imp.integrity().name, how },
    token: imp,
  };
}

/**
 * Lowers a token's integrity and reads it back: a system that accepts the call and keeps the
 * level (Wine 8.0 does) would make a "Low" token that is not, so that is an error.
 */
function lowerIntegrity(t: Token, level: "Low" | "Medium"): void {
  t.setIntegrity(level);
  const now = t.integrity().name;
  if (now !== level) {
    throw new Error(
      `SetTokenInformation(TokenIntegrityLevel ${level}) succeeded but the token still reads ` +
        `${now} integrity (this system does not apply it)`,
    );
  }
}

/** An identification-level impersonation copy (what `NtAccessCheck` takes). */
function identificationCopy(t: Token): Token {
  return t.duplicate({ primary: false, level: "Identification" });
}

/** The real thing: the handle table, `NtQuerySecurityObject`, the four tokens, `NtAccessCheck`. */
export function kernelSecurityProbe(): SecurityProbe {
  return {
    survey() {
      const byPath: DescriptorSurvey["byPath"] = new Map();
      let type: DescriptorSurvey["type"] = { reason: "no port handle could be duplicated" };
      try {
        const report = findPortServers({
          visit(name, port, server) {
            if (!("facts" in type)) {
              try {
                type = { port: name, facts: objectTypeInformation(port) };
              } catch (e) {
                type = { reason: `NtQueryObject(ObjectTypeInformation): ${reasonOf(e)}` };
              }
            }
            try {
              byPath.set(name.toLowerCase(), { server, descriptor: readDescriptor(port) });
            } catch (e) {
              byPath.set(name.toLowerCase(), { server, reason: reasonOf(e) });
            }
          },
        });
        const counts = Object.entries(report.unattributed).map(([k, v]) => `${v} ${k}`);
        return {
          byPath,
          type,
          unattributed: report.unattributed,
          missing: "its server's handle was not duplicated" +
            (counts.length ? ` (handles not examined: ${counts.join(", ")})` : "") +
            (report.debugPrivilege ? "" : "; SeDebugPrivilege not enabled"),
        };
      } catch (e) {
        const why = `the handle table cannot be read for ports: ${reasonOf(e)}`;
        return { byPath, type: { reason: why }, unattributed: {}, missing: why };
      }
    },
    tokens(stack) {
      const out: (ProbeToken | TokenMissing)[] = [];
      let base: Token;
      try {
        base = stack.use(Token.open(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE));
      } catch (e) {
        return TOKEN_NAMES.map((name) => ({
          name,
          made: false,
          reason: `OpenProcessToken: ${reasonOf(e)}`,
        }));
      }
      const attempt = (name: TokenName, make: () => ProbeToken) => {
        try {
          out.push(make());
        } catch (e) {
          out.push({ name, made: false, reason: reasonOf(e) });
        }
      };
      attempt(
        "process",
        () => forCheck(stack, identificationCopy(base), "OpenProcessToken", "process"),
      );
      attempt("restricted-medium", () => {
        using restricted = base.restricted({
          denyOnly: [WellKnownSid.Administrators],
          removePrivileges: true,
        });
        const copy = identificationCopy(restricted);
        try {
          let how = "CreateRestrictedToken (DISABLE_MAX_PRIVILEGE, Administrators deny-only)";
          if (copy.integrity().rid > MEDIUM_RID) {
            lowerIntegrity(copy, "Medium");
            how += ", integrity lowered to Medium";
          }
          return forCheck(stack, copy, how, "restricted-medium");
        } catch (e) {
          copy.close();
          throw e;
        }
      });
      attempt("low", () => {
        const copy = identificationCopy(base);
        try {
          lowerIntegrity(copy, "Low");
          return forCheck(stack, copy, "DuplicateTokenEx, integrity lowered to Low", "low");
        } catch (e) {
          copy.close();
          throw e;
        }
      });
      attempt("appcontainer", () => {
        using lowbox = createLowBoxToken(base, PACKAGE_SID);
        return forCheck(
          stack,
          identificationCopy(lowbox),
          `NtCreateLowBoxToken ${PACKAGE_SID}, no capabilities`,
          "appcontainer",
        );
      });
      return out;
    },
    check(descriptor, token, desired, mapping) {
      return accessCheck(descriptor.sd, token as Token, desired, mapping);
    },
  };
}
