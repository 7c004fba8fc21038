/**
 * Port security (`list_ports --security` / `--access`) against recorded inputs, on any system: the
 * descriptors a survey gives, the tokens a probe makes, and a fake access checker that evaluates
 * the SDDL's DACL for the token's facts. What is checked here is the table: which right and which
 * mapping reach the checker, each token's verdict, every reason a cell is unknown, that every
 * token is closed, the scopes of the namespace, and the CLI contract. The real `NtAccessCheck` is
 * checked in tests/ffi/nt/security_windows_test.ts.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  ALPC_PORT_MAPPING_CONSTANT,
  chooseMapping,
  CONNECT_RIGHT_SOURCE,
  type DescriptorSurvey,
  PORT_CONNECT,
  type PortDescriptor,
  portSecurity,
  type ProbeToken,
  type SecurityProbe,
  TOKEN_NAMES,
  type TokenMissing,
  type TokenName,
} from "../../experiments/ports/port_security.ts";
import { namespaceScopes, scopeOf } from "../../experiments/ports/port_scopes.ts";
import { listPorts } from "../../experiments/ports/list_ports.ts";
import { formatTable } from "../../experiments/ports/ports_table.ts";
import type { AccessCheckResult, GenericMapping } from "../../ffi/nt/security.ts";
import type { DirectoryEntry, DirectorySource } from "../../ffi/nt/namespace.ts";
import { NtError, NTSTATUS } from "../../ffi/status.ts";
import { readDescriptor } from "../../experiments/ports/port_security_probe.ts";
import { READ_CONTROL_INFORMATION, SecurityInformation } from "../../raw.ts";
import { conditionalTest, ON_LINUX, REPO_ROOT, run } from "../_helpers.ts";

// ---- a fake checker: the DACL of an SDDL string, evaluated for a token's facts ----

/** What the fake checker knows of a token. */
interface FakeToken {
  name: TokenName;
  user: string;
  groups: string[];
  denyOnly: string[];
  integrity: number;
  packageSid?: string;
}

const ALIASES: Record<string, string> = {
  WD: "S-1-1-0",
  BA: "S-1-5-32-544",
  BU: "S-1-5-32-545",
  SY: "S-1-5-18",
  AU: "S-1-5-11",
  IU: "S-1-5-4",
  AC: "S-1-15-2-1",
  LW: "S-1-16-4096",
  ME: "S-1-16-8192",
  HI: "S-1-16-12288",
};
const sidOf = (s: string) => ALIASES[s] ?? s;

/** `(type;flags;rights;;;sid)` ACEs of one SDDL part. */
function aces(sddl: string, part: "D" | "S"): { type: string; rights: string; sid: string }[] {
  const m = new RegExp(`${part}:[A-Z]*((?:\\([^)]*\\))*)`).exec(sddl);
  if (!m) return [];
  return [...m[1]!.matchAll(/\(([^;]*);[^;]*;([^;]*);[^;]*;[^;]*;([^)]*)\)/g)].map((a) => ({
    type: a[1]!,
    rights: a[2]!,
    sid: sidOf(a[3]!),
  }));
}

function mask(rights: string): number {
  if (!rights.startsWith("0x")) throw new Error(`the fake reads hex rights only: ${rights}`);
  return Number(rights);
}

/**
 * The fake's rules (a model, not the kernel): the DACL in order, deny-only groups match deny
 * ACEs only; a token below the label's level (Medium when there is no label) is held to the
 * mapping's read and execute rights plus READ_CONTROL|SYNCHRONIZE, the no-write-up rule as
 * `SepMandatoryIntegrityCheck.c` computes it; an AppContainer token must also be granted through
 * its package SID or ALL APPLICATION PACKAGES.
 */
function fakeCheck(
  sddl: string,
  t: FakeToken,
  desired: number,
  mapping: GenericMapping,
): AccessCheckResult {
  if (!/O:/.test(sddl) || !/G:/.test(sddl)) {
    throw new NtError("NtAccessCheck", 0xc0000079, "ntstatus", "fake");
  }
  const dacl = (sids: string[], denySids: string[]) => {
    let granted = 0;
    let denied = 0;
    for (const a of aces(sddl, "D")) {
      const m = mask(a.rights);
      if (a.type === "D" && (sids.includes(a.sid) || denySids.includes(a.sid))) {
        denied |= m & ~granted;
      }
      if (a.type === "A" && sids.includes(a.sid)) granted |= m & ~denied;
    }
    return granted;
  };
  let granted = dacl([t.user, ...t.groups], t.denyOnly);
  const label = aces(sddl, "S").find((a) => a.type === "ML");
  const level = label ? Number(label.sid.split("-").at(-1)) : 0x2000;
  if (t.integrity < level) granted &= mapping.read | mapping.execute | 0x120000;
  if (t.packageSid) granted &= dacl([t.packageSid, "S-1-15-2-1"], []);
  const ok = (granted & desired) === desired;
  return {
    granted: ok,
    grantedAccess: ok ? desired : 0,
    status: ok ? "0x00000000" : "0xC0000022",
    name: ok ? "STATUS_SUCCESS" : "STATUS_ACCESS_DENIED",
  };
}

// ---- recorded inputs ----

const ME = "S-1-5-21-1111-2222-3333-1001";
const PACKAGE = "S-1-15-2-100-101-110-111-108-112-99";

/** Token facts as a medium-integrity administrator's Deno would have them. */
const TOKENS: Record<TokenName, FakeToken> = {
  process: {
    name: "process",
    user: ME,
    groups: ["S-1-1-0", "S-1-5-11", "S-1-5-4", "S-1-5-32-544"],
    denyOnly: [],
    integrity: 0x3000,
  },
  "restricted-medium": {
    name: "restricted-medium",
    user: ME,
    groups: ["S-1-1-0", "S-1-5-11", "S-1-5-4"],
    denyOnly: ["S-1-5-32-544"],
    integrity: 0x2000,
  },
  low: {
    name: "low",
    user: ME,
    groups: ["S-1-1-0", "S-1-5-11", "S-1-5-4", "S-1-5-32-544"],
    denyOnly: [],
    integrity: 0x1000,
  },
  appcontainer: {
    name: "appcontainer",
    user: ME,
    groups: ["S-1-1-0", "S-1-5-11", "S-1-5-4", "S-1-5-32-544"],
    denyOnly: [],
    integrity: 0x1000,
    packageSid: PACKAGE,
  },
};

/** Descriptors shaped like Windows 11's (SDDL written for this test, not read from a machine). */
const DESCRIPTORS: Record<string, string> = {
  "\\RPC Control\\open": "O:SYG:SYD:(A;;0x1f0001;;;SY)(A;;0x20001;;;WD)(A;;0x20001;;;AC)",
  "\\RPC Control\\everyone": "O:SYG:SYD:(A;;0x1f0001;;;SY)(A;;0x1;;;WD)",
  "\\RPC Control\\admins": "O:BAG:SYD:(A;;0x1f0001;;;SY)(A;;0x1f0001;;;BA)",
  "\\RPC Control\\labelled":
    "O:SYG:SYD:(A;;0x1f0001;;;SY)(A;;0x1;;;WD)(A;;0x1;;;AC)S:(ML;;NW;;;HI)",
  "\\RPC Control\\no-owner": "D:(A;;0x1;;;WD)",
};

const enc = new TextEncoder();

function descriptor(sddl: string, parts = ["owner", "group", "dacl", "label"]): PortDescriptor {
  return { sddl, sd: enc.encode(sddl) as Uint8Array<ArrayBuffer>, parts };
}

/** A recorded probe: the survey, which tokens can be made, the fake checker; counts disposals. */
function recordedProbe(options: {
  survey?: Partial<DescriptorSurvey>;
  missingTokens?: Partial<Record<TokenName, string>>;
} = {}): SecurityProbe & {
  made: number;
  closed: number;
  checks: [string, number, GenericMapping][];
} {
  const byPath: DescriptorSurvey["byPath"] = new Map();
  for (const [path, sddl] of Object.entries(DESCRIPTORS)) {
    byPath.set(path.toLowerCase(), {
      server: { pid: 700, image: "svc.exe" },
      descriptor: descriptor(sddl),
    });
  }
  byPath.set("\\rpc control\\refused", {
    server: { pid: 701, image: "other.exe" },
    reason: "NtQuerySecurityObject: STATUS_ACCESS_DENIED (0xC0000022)",
  });
  const probe = {
    made: 0,
    closed: 0,
    checks: [] as [string, number, GenericMapping][],
    survey: (): DescriptorSurvey => ({
      byPath,
      missing: "its server's handle was not duplicated (handles not examined: 3 protected process)",
      type: { reason: "no port handle could be duplicated" },
      unattributed: { "protected process": 3 },
      ...options.survey,
    }),
    tokens(stack: DisposableStack): (ProbeToken | TokenMissing)[] {
      return TOKEN_NAMES.map((name) => {
        const why = options.missingTokens?.[name];
        if (why) return { name, made: false, reason: why };
        probe.made++;
        stack.defer(() => void probe.closed++);
        const t = TOKENS[name];
        return {
          facts: {
            name,
            made: true,
            user: t.user,
            integrity: String(t.integrity),
            how: "recorded",
          },
          token: t,
        };
      });
    },
    check(d: PortDescriptor, token: unknown, desired: number, mapping: GenericMapping) {
      probe.checks.push([(token as FakeToken).name, desired, mapping]);
      return fakeCheck(d.sddl, token as FakeToken, desired, mapping);
    },
  };
  return probe;
}

const PORTS = [
  ...Object.keys(DESCRIPTORS),
  "\\RPC Control\\refused",
  "\\Windows\\ApiPort",
].map((path) => ({ path, type: "ALPC Port" }));
const OBJECTS = [...PORTS, { path: "\\RPC Control", type: "Directory" }];

// ---- tests ----

Deno.test("portSecurity() with --access: a descriptor read without its label leaves Low and AppContainer unknown", () => {
  const byPath: DescriptorSurvey["byPath"] = new Map([[
    "\\rpc control\\everyone",
    {
      server: { pid: 700, image: "svc.exe" },
      // Read without LABEL_SECURITY_INFORMATION: the port may have a Low label not shown.
      descriptor: descriptor(DESCRIPTORS["\\RPC Control\\everyone"]!, ["owner", "group", "dacl"]),
    },
  ]]);
  const probe = recordedProbe({ survey: { byPath } });
  const s = portSecurity([{ path: "\\RPC Control\\everyone", type: "ALPC Port" }], {
    access: true,
    probe,
  });
  const access = s.ports[0]!.access!;
  assertEquals(access.process, { connect: true, granted: "0x00000001", status: "STATUS_SUCCESS" });
  assertStrictEquals(access["restricted-medium"]!.connect, true);
  for (const name of ["low", "appcontainer"] as const) {
    const v = access[name]!;
    assertStrictEquals(v.connect, null, name);
    assertMatch("reason" in v ? v.reason : "", /label was not read.*SepMandatoryIntegrityCheck\.c/);
  }
  assertEquals(probe.checks.map(([t]) => t), ["process", "restricted-medium"], "not checked");
  assertEquals(s.summary.connectable, {
    process: 1,
    "restricted-medium": 1,
    low: 0,
    appcontainer: 0,
  });
});

Deno.test("README's --access example: its Low verdict is what the label rules give its SDDL", () => {
  // SepMandatoryIntegrityCheck.c: no label means SepDefaultMandatorySid (Medium) with no-write-up;
  // a lower token keeps the mapping's read and execute rights | 0x120000, and the write rights are
  // removed only where the read mapping does not hold them: PORT_CONNECT is in read (0x20001), so
  // Low connects. A no-read-up label at Medium takes the read rights too.
  const readme = Deno.readTextFileSync(`${REPO_ROOT}/README.md`);
  const block = readme.slice(readme.indexOf('"path": "\\\\RPC Control\\\\example"'));
  let sddl = JSON.parse(`"${/"sddl": "([^"]*)"/.exec(block)![1]}"`) as string;
  const shown = /"access": \{ "low": \{ "connect": (true|false)/.exec(block)![1] === "true";
  const mapping = { read: 0x20001, write: 0x10001, execute: 0, all: 0x1f0001 };
  sddl = sddl.replaceAll(";CC;", ";0x1;"); // SDDL's name for 0x1; the fake reads hex
  const r = fakeCheck(sddl, TOKENS.low, PORT_CONNECT, mapping);
  assertStrictEquals(shown, r.granted, "the example's verdict");
  assertStrictEquals(r.granted, true);
  assert(!/S:/.test(sddl), "the example has no label");
});

Deno.test("readDescriptor(): without the label only on STATUS_ACCESS_DENIED; any other failure is thrown", () => {
  const refuse = (status: number) => (_: null, info: number) => {
    if (info & SecurityInformation.LABEL_SECURITY_INFORMATION) {
      throw new NtError("NtQuerySecurityObject", status, "ntstatus", "fake");
    }
    return enc.encode(`read ${info}`) as Uint8Array<ArrayBuffer>;
  };
  const sddl = (_: Uint8Array, info: number) => `sddl ${info}`;
  const denied = readDescriptor(null, refuse(NTSTATUS.STATUS_ACCESS_DENIED), sddl);
  assertEquals(denied.parts, ["owner", "group", "dacl"]);
  assertStrictEquals(denied.sddl, `sddl ${READ_CONTROL_INFORMATION & ~0x10}`);
  const err = assertThrows(
    () => readDescriptor(null, refuse(NTSTATUS.STATUS_INVALID_PARAMETER), sddl),
    NtError,
  );
  assertStrictEquals(err.symbol, "STATUS_INVALID_PARAMETER");
  const all = readDescriptor(
    null,
    (_: null, i) => enc.encode(`${i}`) as Uint8Array<ArrayBuffer>,
    sddl,
  );
  assertEquals(all.parts, ["owner", "group", "dacl", "label"]);
});

Deno.test("chooseMapping(): the mapping read at run time when there is one, else the AlpcpInitSystem.c constant, and why", () => {
  const runtime = chooseMapping({
    port: "\\RPC Control\\x",
    facts: {
      typeName: "ALPC Port",
      mapping: { read: 0x20001, write: 0x10001, execute: 0, all: 0x1f0001 },
      validAccessMask: 0x1f0001,
    },
  });
  assertEquals(runtime.choice, {
    from: "runtime",
    source: "NtQueryObject(ObjectTypeInformation) on a handle of \\RPC Control\\x",
    typeName: "ALPC Port",
    read: "0x00020001",
    write: "0x00010001",
    execute: "0x00000000",
    all: "0x001F0001",
    validAccessMask: "0x001F0001",
  });
  const odd = { read: 0x20000, write: 0x10000, execute: 0, all: 0x1f0001 };
  const fromRuntime = chooseMapping({
    port: "p",
    facts: { typeName: "ALPC Port", mapping: odd, validAccessMask: 1 },
  });
  assertEquals(fromRuntime.mapping, odd, "the runtime mapping is used as read, not the constant");
  const constant = chooseMapping({ reason: "NtCreatePort: STATUS_NOT_IMPLEMENTED" });
  assertStrictEquals(constant.choice.from, "constant");
  assertStringIncludes(constant.choice.source, "AlpcpInitSystem.c");
  assertStrictEquals(constant.choice.why, "NtCreatePort: STATUS_NOT_IMPLEMENTED");
  assertEquals(constant.mapping, ALPC_PORT_MAPPING_CONSTANT.mapping);
  assertStrictEquals(constant.choice.validAccessMask, "0x001F0001");
  assertStrictEquals(ALPC_PORT_MAPPING_CONSTANT.mapping.read & PORT_CONNECT, PORT_CONNECT);
});

Deno.test("portSecurity() without --access: SDDL per named port, or the reason (refused query, handle not duplicated)", () => {
  const probe = recordedProbe();
  const s = portSecurity(OBJECTS, { access: false, probe });
  assertEquals(s.right, {
    name: "PORT_CONNECT",
    value: "0x00000001",
    source: CONNECT_RIGHT_SOURCE,
  });
  assertStringIncludes(s.right.source, "AlpcpCreateClientPort.c");
  assertEquals(s.ports.map((p) => p.path), PORTS.map((p) => p.path), "ports only, in order");
  const by = Object.fromEntries(s.ports.map((p) => [p.path, p]));
  assertStrictEquals(by["\\RPC Control\\everyone"]!.sddl, DESCRIPTORS["\\RPC Control\\everyone"]);
  assertEquals(by["\\RPC Control\\everyone"]!.server, { pid: 700, image: "svc.exe" });
  assertEquals(by["\\RPC Control\\refused"]!.sddl, undefined);
  assertStrictEquals(
    by["\\RPC Control\\refused"]!.reason,
    "NtQuerySecurityObject: STATUS_ACCESS_DENIED (0xC0000022)",
  );
  assertMatch(by["\\Windows\\ApiPort"]!.reason!, /not duplicated .*3 protected process/);
  assertEquals(s.summary.withSddl, 5);
  assertEquals(Object.values(s.summary.withoutSddl).reduce((a, b) => a + b), 2);
  assertEquals(s.mapping, undefined);
  assertEquals(s.tokens, undefined);
  assertStrictEquals(probe.made, 0, "no token is made without --access");
  assertEquals(s.unattributed, { "protected process": 3 });
});

Deno.test("portSecurity() with --access: each token's verdict from the checker, with PORT_CONNECT and the chosen mapping", () => {
  const probe = recordedProbe();
  const s = portSecurity(OBJECTS, { access: true, probe });
  const verdicts = Object.fromEntries(
    s.ports.map((p) => [
      p.path,
      Object.fromEntries(
        Object.entries(p.access!).map(([k, v]) => [k, v.connect]),
      ),
    ]),
  );
  assertEquals(verdicts["\\RPC Control\\open"], {
    process: true,
    "restricted-medium": true,
    low: true, // PORT_CONNECT is in the mapping's read rights: no-write-up does not stop it
    appcontainer: true, // ALL APPLICATION PACKAGES
  });
  assertEquals(verdicts["\\RPC Control\\everyone"], {
    process: true,
    "restricted-medium": true,
    low: true,
    appcontainer: false, // no ACE for the package or AC
  });
  assertEquals(verdicts["\\RPC Control\\admins"], {
    process: true,
    "restricted-medium": false, // Administrators deny-only
    low: true,
    appcontainer: false,
  });
  assertEquals(verdicts["\\RPC Control\\labelled"], {
    process: true,
    "restricted-medium": true, // below High, but PORT_CONNECT is a read right
    low: true,
    appcontainer: true,
  });
  // A check that fails (not a denial) is a reason, not a verdict.
  const noOwner = s.ports.find((p) => p.path === "\\RPC Control\\no-owner")!.access!;
  for (const v of Object.values(noOwner)) {
    assertStrictEquals(v.connect, null);
    assert(v.connect === null && /access check failed: NtAccessCheck .*0xC0000079/.test(v.reason));
  }
  // No descriptor: every token's cell says why.
  const refused = s.ports.find((p) => p.path === "\\RPC Control\\refused")!.access!;
  assertEquals(refused.low, {
    connect: null,
    reason: "no descriptor: NtQuerySecurityObject: STATUS_ACCESS_DENIED (0xC0000022)",
  });
  const denied = s.ports.find((p) => p.path === "\\RPC Control\\admins")!.access!;
  assertEquals(denied["restricted-medium"], {
    connect: false,
    granted: "0x00000000",
    status: "STATUS_ACCESS_DENIED",
  });
  // The checker saw exactly PORT_CONNECT and the constant mapping (the survey had no type facts).
  assert(probe.checks.length > 0);
  for (const [, desired, mapping] of probe.checks) {
    assertStrictEquals(desired, PORT_CONNECT);
    assertEquals(mapping, ALPC_PORT_MAPPING_CONSTANT.mapping);
  }
  assertStrictEquals(s.mapping!.from, "constant");
  assertEquals(s.summary.connectable, {
    process: 4,
    "restricted-medium": 3,
    low: 4,
    appcontainer: 2,
  });
  assertStrictEquals(probe.made, 4);
  assertStrictEquals(probe.closed, 4, "every token is closed before portSecurity returns");
});

Deno.test("portSecurity() with --access: a runtime mapping reaches the checker; a token that cannot be made is a reason in every cell", () => {
  const readWithoutConnect = { read: 0x20000, write: 0x10001, execute: 0, all: 0x1f0001 };
  const probe = recordedProbe({
    survey: {
      type: {
        port: "\\RPC Control\\open",
        facts: { typeName: "ALPC Port", mapping: readWithoutConnect, validAccessMask: 0x1f0001 },
      },
    },
    missingTokens: { appcontainer: "NtCreateLowBoxToken: STATUS_ACCESS_DENIED (0xC0000022)" },
  });
  const s = portSecurity(OBJECTS, { access: true, probe });
  assertStrictEquals(s.mapping!.from, "runtime");
  assertStrictEquals(s.mapping!.read, "0x00020000");
  for (const [, , mapping] of probe.checks) assertEquals(mapping, readWithoutConnect);
  // With this mapping no-write-up takes PORT_CONNECT from a Low token on an unlabeled port.
  const everyone = s.ports.find((p) => p.path === "\\RPC Control\\everyone")!.access!;
  assertStrictEquals(everyone.low!.connect, false);
  assertStrictEquals(everyone.process!.connect, true);
  assertEquals(s.tokens!.find((t) => t.name === "appcontainer"), {
    name: "appcontainer",
    made: false,
    reason: "NtCreateLowBoxToken: STATUS_ACCESS_DENIED (0xC0000022)",
  });
  for (const p of s.ports) {
    assertEquals(p.access!.appcontainer, {
      connect: null,
      reason: "no token: NtCreateLowBoxToken: STATUS_ACCESS_DENIED (0xC0000022)",
    });
  }
  assertEquals(Object.keys(s.summary.connectable!), ["process", "restricted-medium", "low"]);
  assertStrictEquals(probe.closed, probe.made);
});

Deno.test("portSecurity(): a survey without the handle table gives its reason for every port, and the constant mapping", () => {
  const why =
    "the handle table cannot be read for ports: NtCreatePort: STATUS_NOT_IMPLEMENTED (0xC0000002)";
  const probe = recordedProbe({
    survey: { byPath: new Map(), missing: why, type: { reason: why }, unattributed: {} },
  });
  const s = portSecurity(OBJECTS, { access: true, probe });
  assert(s.ports.every((p) => p.reason === why));
  assertEquals(s.summary.withoutSddl, { [why]: PORTS.length });
  assertStrictEquals(s.mapping!.why, why);
  assert(s.ports.every((p) => Object.values(p.access!).every((v) => v.connect === null)));
});

// ---- the namespace's scopes: \Sessions\<n> and AppContainer directories are walked and listed ----

const SESSIONS: Record<string, DirectoryEntry[]> = {
  "\\": [
    { name: "RPC Control", type: "Directory" },
    { name: "Sessions", type: "Directory" },
  ],
  "\\RPC Control": [{ name: "lsasspirpc", type: "ALPC Port" }],
  "\\Sessions": [
    { name: "0", type: "Directory" },
    { name: "1", type: "Directory" },
    { name: "BNOLINKS", type: "Directory" },
  ],
  "\\Sessions\\0": [{ name: "DosDevices", type: "Directory" }],
  "\\Sessions\\1": [
    { name: "AppContainerNamedObjects", type: "Directory" },
    { name: "BaseNamedObjects", type: "Directory" },
    { name: "Windows", type: "Directory" },
  ],
  "\\Sessions\\1\\Windows": [{ name: "ApiPort", type: "ALPC Port" }],
  "\\Sessions\\1\\BaseNamedObjects": [
    { name: "Global", type: "SymbolicLink" },
    { name: "msys-port", type: "ALPC Port" },
  ],
  "\\Sessions\\1\\AppContainerNamedObjects": [
    { name: "S-1-15-2-1-2-3-4-5-6-7", type: "Directory" },
    { name: "S-1-15-2-9-9-9-9-9-9-9", type: "Directory" },
  ],
  "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-1-2-3-4-5-6-7": [
    { name: "RPC Control", type: "Directory" },
  ],
  "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-1-2-3-4-5-6-7\\RPC Control": [
    { name: "app-port", type: "ALPC Port" },
  ],
  "\\Sessions\\BNOLINKS": [{ name: "1", type: "SymbolicLink" }],
};

function sessionsSource(): DirectorySource {
  const denied = new Set([
    "\\Sessions\\0\\DosDevices",
    "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-9-9-9-9-9-9-9",
  ]);
  return {
    list(path) {
      if (denied.has(path)) {
        throw new NtError("NtOpenDirectoryObject", NTSTATUS.STATUS_ACCESS_DENIED, "ntstatus", path);
      }
      const e = SESSIONS[path];
      if (!e) {
        throw new NtError("NtOpenDirectoryObject", NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND);
      }
      return e;
    },
    readLink: (path) =>
      path.endsWith("Global") ? "\\BaseNamedObjects" : "\\Sessions\\1\\BaseNamedObjects",
  };
}

Deno.test("scopeOf(): global, a session, an AppContainer directory", () => {
  assertEquals(scopeOf("\\RPC Control\\x"), { scope: "\\", kind: "global" });
  assertEquals(scopeOf("\\Sessions"), { scope: "\\", kind: "global" });
  assertEquals(scopeOf("\\Sessions\\12"), { scope: "\\Sessions\\12", kind: "session" });
  assertEquals(scopeOf("\\Sessions\\1\\BaseNamedObjects\\p"), {
    scope: "\\Sessions\\1",
    kind: "session",
  });
  assertEquals(
    scopeOf("\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-5\\RPC Control\\p"),
    { scope: "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-5", kind: "appcontainer" },
  );
  assertEquals(scopeOf("\\Sessions\\BNOLINKS\\1"), { scope: "\\", kind: "global" });
});

Deno.test("listPorts() from \\ lists the ports of \\Sessions\\<n> and of AppContainer directories, reports the unreadable ones, and sums each scope", () => {
  const doc = listPorts({
    root: "\\",
    types: ["ALPC Port"],
    all: false,
    servers: false,
    mode: "auto",
    source: sessionsSource(),
  });
  assertEquals(doc.objects.map((o) => o.path), [
    "\\RPC Control\\lsasspirpc",
    "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-1-2-3-4-5-6-7\\RPC Control\\app-port",
    "\\Sessions\\1\\BaseNamedObjects\\msys-port",
    "\\Sessions\\1\\Windows\\ApiPort",
  ]);
  assertEquals(doc.errors.map((e) => `${e.path} ${e.name}`), [
    "\\Sessions\\0\\DosDevices STATUS_ACCESS_DENIED",
    "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-9-9-9-9-9-9-9 STATUS_ACCESS_DENIED",
  ]);
  assertEquals(doc.scopes, [
    { scope: "\\", kind: "global", ports: 1, unreadable: 0 },
    { scope: "\\Sessions\\0", kind: "session", ports: 0, unreadable: 1 },
    { scope: "\\Sessions\\1", kind: "session", ports: 2, unreadable: 0 },
    {
      scope: "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-1-2-3-4-5-6-7",
      kind: "appcontainer",
      ports: 1,
      unreadable: 0,
    },
    {
      scope: "\\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-9-9-9-9-9-9-9",
      kind: "appcontainer",
      ports: 0,
      unreadable: 1,
    },
  ]);
  const table = formatTable(doc);
  assertStringIncludes(table, "! \\Sessions\\0\\DosDevices: STATUS_ACCESS_DENIED (0xC0000022)");
  assertStringIncludes(
    table,
    "scope \\Sessions\\1\\AppContainerNamedObjects\\S-1-15-2-9-9-9-9-9-9-9 (appcontainer): 0 ports, 1 unreadable",
  );
  assertMatch(table, /4 listed below \\; 4 port objects; 2 unreadable$/);
  // The scopes count what the listing holds, no more.
  assertStrictEquals(
    namespaceScopes(doc.objects, doc.errors).reduce((n, s) => n + s.ports, 0),
    doc.objects.length,
  );
});

Deno.test("listPorts() with --access and a recorded probe: the ports@2 document carries the section, serializes without descriptor bytes, and the table shows it", () => {
  const dirs: Record<string, DirectoryEntry[]> = {
    "\\": [{ name: "RPC Control", type: "Directory" }, { name: "Windows", type: "Directory" }],
    "\\RPC Control": Object.keys(DESCRIPTORS).map((p) => ({
      name: p.split("\\").at(-1)!,
      type: "ALPC Port",
    })).concat([{ name: "refused", type: "ALPC Port" }]),
    "\\Windows": [{ name: "ApiPort", type: "ALPC Port" }],
  };
  const probe = recordedProbe({ missingTokens: { appcontainer: "a stub of this system" } });
  const doc = listPorts({
    root: "\\",
    types: ["ALPC Port"],
    all: false,
    servers: false,
    mode: "auto",
    source: { list: (p) => dirs[p] ?? [], readLink: () => "" },
    access: true,
    securityProbe: probe,
  });
  assertStrictEquals(doc.schema, "deno-lpc/ports@2");
  const json = JSON.parse(JSON.stringify(doc));
  assertEquals(json.security.ports.length, 7);
  assert(!JSON.stringify(doc).includes('"sd"'), "descriptor bytes stay out of the document");
  assertEquals(json.security.tokens.map((t: { name: string }) => t.name), [...TOKEN_NAMES]);
  const table = formatTable(doc);
  assertStringIncludes(table, "SECURITY (PORT_CONNECT 0x00000001)");
  assertMatch(
    table,
    /mapping: read 0x00020001, write 0x00010001, execute 0x00000000, all 0x001F0001 \(constant: AlpcpInitSystem\.c/,
  );
  assertStringIncludes(table, "token appcontainer: not made: a stub of this system");
  assertStringIncludes(
    table,
    "\\RPC Control\\admins  O:BAG:SYD:(A;;0x1f0001;;;SY)(A;;0x1f0001;;;BA)\n" +
      "  may connect: process yes, restricted-medium no (STATUS_ACCESS_DENIED), low yes, appcontainer ?",
  );
  assertStringIncludes(
    table,
    "\\RPC Control\\refused  ! NtQuerySecurityObject: STATUS_ACCESS_DENIED",
  );
  assertMatch(
    table,
    /5 of 7 named ports with a descriptor; without: .*; may connect: process 4, restricted-medium 3, low 4$/,
  );
  assertStrictEquals(probe.closed, probe.made);
});

// ---- the command line ----

conditionalTest(
  "list_ports --help lists --security and --access; on Linux --access --json is exit 3 with the ports@2 document naming the Wine command",
  ON_LINUX
    ? null
    : "Linux only: the Windows build runs the script for real (security_windows_test.ts)",
  async () => {
    const script = `${REPO_ROOT}experiments/ports/list_ports.ts`;
    const help = await run(Deno.execPath(), ["run", "--allow-ffi", script, "--help"]);
    assertStrictEquals(help.code, 0, help.stderr);
    assertMatch(help.stdout, /--security\b/);
    assertMatch(help.stdout, /--access\b.*\n?.*NtAccessCheck/);
    const r = await run(Deno.execPath(), ["run", "--allow-ffi", script, "--access", "--json"]);
    assertStrictEquals(r.code, 3, r.stderr);
    const doc = JSON.parse(r.stdout);
    assertEquals(
      [doc.schema, doc.ran, doc.exitCode],
      ["deno-lpc/ports@2", false, 3],
    );
    assertMatch(
      doc.reason,
      /tests\/wine\/run\.ts exec run --allow-ffi experiments\/ports\/list_ports\.ts --access --json/,
    );
  },
);
