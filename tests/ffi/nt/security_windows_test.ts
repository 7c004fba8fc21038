/**
 * ffi/nt/security.ts and `list_ports --access` for real: under Wine (descriptors from SDDL and
 * back, NtAccessCheck with real tokens, the kernel's refusals, the four tokens as this system
 * makes them) and on Windows (the same, plus an AppContainer token and the ports' descriptors).
 */

import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "@std/assert";
import {
  accessCheck,
  createLowBoxToken,
  querySecurityDescriptor,
  sddlToSecurityDescriptor,
  securityDescriptorToSddl,
  SecurityInformation,
} from "../../../ffi/nt/security.ts";
import { Token, TokenAccess, WellKnownSid } from "../../../ffi/nt/tokens.ts";
import { NtError, UnsupportedError } from "../../../ffi/status.ts";
import { wineVersion } from "../../../ffi/ntdll.ts";
import {
  ALPC_PORT_MAPPING_CONSTANT,
  PACKAGE_SID,
  type ProbeToken,
  TOKEN_NAMES,
  type TokenMissing,
} from "../../../experiments/ports/port_security.ts";
import { kernelSecurityProbe } from "../../../experiments/ports/port_security_probe.ts";
import type { PortsDocument } from "../../../experiments/ports/list_ports.ts";
import {
  NOT_WINDOWS,
  ON_WINDOWS_BUILD,
  REPO_ROOT,
  run,
  WINDOWS_ONLY,
  windowsTest,
} from "../../_helpers.ts";

const UNDER_WINE = ON_WINDOWS_BUILD && wineVersion() !== null;
const ORACLES = ON_WINDOWS_BUILD ? Deno.env.get("DENO_LPC_ORACLES") : undefined;
const REAL_WINDOWS = ON_WINDOWS_BUILD && !UNDER_WINE;
const MAPPING = ALPC_PORT_MAPPING_CONSTANT.mapping;
const OGD = SecurityInformation.OWNER_SECURITY_INFORMATION |
  SecurityInformation.GROUP_SECURITY_INFORMATION | SecurityInformation.DACL_SECURITY_INFORMATION;

/** An identification-level impersonation copy of this process's token. */
function myIdentificationToken(): Token {
  using me = Token.open(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE);
  return me.duplicate({ primary: false, level: "Identification" });
}

windowsTest(
  "a descriptor made from SDDL converts back to SDDL that makes the same bytes",
  WINDOWS_ONLY,
  () => {
    for (
      const sddl of [
        "O:BAG:BAD:(A;;0x1;;;WD)",
        "O:SYG:SYD:(A;;0x1f0001;;;SY)(A;;0x20001;;;WD)(D;;0x1;;;S-1-5-21-1-2-3-4)",
        "O:BAG:SYD:P(A;;0x1;;;BA)",
      ]
    ) {
      const sd = sddlToSecurityDescriptor(sddl);
      const back = securityDescriptorToSddl(sd, OGD);
      assertMatch(back, /^O:[^:]+G:[^:]+D:/, back);
      assertEquals(sddlToSecurityDescriptor(back), sd, `${sddl} -> ${back}`);
    }
  },
);

windowsTest(
  "querySecurityDescriptor() reads owner, group and DACL of our token as SDDL (Wine's object directories have none)",
  WINDOWS_ONLY,
  () => {
    using token = Token.open(TokenAccess.TOKEN_QUERY | 0x20000); // READ_CONTROL
    const sd = querySecurityDescriptor(token, OGD);
    const sddl = securityDescriptorToSddl(sd, OGD);
    assertMatch(sddl, /^O:[^:]+G:[^:]+D:.*\(A;/, sddl);
    // The text describes the descriptor fully: made into bytes again, it reads the same.
    assertStrictEquals(securityDescriptorToSddl(sddlToSecurityDescriptor(sddl), OGD), sddl);
  },
);

windowsTest(
  "NtAccessCheck for PORT_CONNECT: an allow ACE grants it, a deny ACE first or another SID's ACE refuses it",
  WINDOWS_ONLY,
  () => {
    using t = myIdentificationToken();
    const allow = accessCheck(sddlToSecurityDescriptor("O:BAG:BAD:(A;;0x1;;;WD)"), t, 1, MAPPING);
    assertEquals(allow, {
      granted: true,
      grantedAccess: 1,
      status: "0x00000000",
      name: "STATUS_SUCCESS",
    });
    for (
      const sddl of [
        "O:BAG:BAD:(D;;0x1;;;WD)(A;;0x1;;;WD)",
        "O:BAG:BAD:(A;;0x1;;;S-1-5-21-1-2-3-4)",
      ]
    ) {
      const r = accessCheck(sddlToSecurityDescriptor(sddl), t, 1, MAPPING);
      assertEquals([r.granted, r.name], [false, "STATUS_ACCESS_DENIED"], sddl);
    }
    // Administrators made deny-only in a restricted copy no longer grant through a BA ACE.
    const admins = sddlToSecurityDescriptor("O:BAG:BAD:(A;;0x1;;;BA)");
    const isAdmin = t.groups().some((g) =>
      g.sid === WellKnownSid.Administrators && g.enabled && !g.denyOnly
    );
    assertStrictEquals(accessCheck(admins, t, 1, MAPPING).granted, isAdmin);
    using me = Token.open(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE);
    using restricted = me.restricted({ denyOnly: [WellKnownSid.Administrators] });
    using rImp = restricted.duplicate({ primary: false, level: "Identification" });
    assertStrictEquals(accessCheck(admins, rImp, 1, MAPPING).granted, false);
  },
);

windowsTest(
  "NtAccessCheck refuses a primary token (STATUS_NO_IMPERSONATION_TOKEN) and a descriptor without owner (0xC0000079), as SeAccessCheckByType.c does",
  WINDOWS_ONLY,
  () => {
    using primary = Token.open(TokenAccess.TOKEN_QUERY);
    const sd = sddlToSecurityDescriptor("O:BAG:BAD:(A;;0x1;;;WD)");
    const e1 = assertThrows(() => accessCheck(sd, primary, 1, MAPPING), NtError);
    assertStrictEquals(e1.hex, "0xC000005C");
    using t = myIdentificationToken();
    const e2 = assertThrows(
      () => accessCheck(sddlToSecurityDescriptor("D:(A;;0x1;;;WD)"), t, 1, MAPPING),
      NtError,
    );
    assertStrictEquals(e2.hex, "0xC0000079");
  },
);

windowsTest(
  [
    "the four tokens: made (Windows) or each with its reason (Wine: integrity not applied, lowbox a stub); all closed with their stack",
    "the four tokens, made or with a reason",
  ],
  WINDOWS_ONLY,
  () => {
    const made: Token[] = [];
    let tokens: (ProbeToken | TokenMissing)[];
    {
      using stack = new DisposableStack();
      tokens = kernelSecurityProbe().tokens(stack);
      for (const t of tokens) if ("facts" in t) made.push(t.token as Token);
      assert(made.every((t) => !t.closed));
    }
    assert(made.length > 0 && made.every((t) => t.closed), "closed with the stack");
    assertEquals(
      tokens.map((t) => "facts" in t ? t.facts.name : t.name),
      [...TOKEN_NAMES],
    );
    const by = Object.fromEntries(tokens.map((t) => ["facts" in t ? t.facts.name : t.name, t]));
    assert("facts" in by.process!, JSON.stringify(by.process));
    if (UNDER_WINE) {
      // Wine 8.0 accepts SetTokenInformation(TokenIntegrityLevel) and keeps the level.
      const low = by.low as TokenMissing;
      assertStrictEquals(low.made, false);
      assertMatch(low.reason, /still reads \w+ integrity/);
      const ac = by.appcontainer as TokenMissing;
      assertMatch(ac.reason, /NtCreateLowBoxToken returned STATUS_SUCCESS and no token handle/);
    } else {
      for (const name of TOKEN_NAMES) assert("facts" in by[name]!, JSON.stringify(by[name]));
      assertStrictEquals((by.low as ProbeToken).facts.integrity, "Low");
      assertStrictEquals((by.appcontainer as ProbeToken).facts.integrity, "Low");
      assert(
        ["Medium", "Low", "Untrusted"].includes(
          (by["restricted-medium"] as ProbeToken).facts.integrity,
        ),
      );
    }
  },
);

windowsTest(
  "NtCreateLowBoxToken: a Low-integrity token for our package SID; a SID that is not a package SID is refused",
  REAL_WINDOWS
    ? null
    : UNDER_WINE
    ? "Wine's NtCreateLowBoxToken is a stub that returns no handle"
    : NOT_WINDOWS,
  () => {
    using me = Token.open(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE);
    using lowbox = createLowBoxToken(me, PACKAGE_SID);
    assertStrictEquals(lowbox.integrity().name, "Low"); // NtCreateLowBoxToken.c sets RID 0x1000
    assertThrows(() => createLowBoxToken(me, "S-1-5-32-544"), NtError);
  },
);

windowsTest(
  "NtAccessCheck for the Low and AppContainer tokens: the label rules and the lowbox's package ACE, as the kernel applies them",
  REAL_WINDOWS
    ? null
    : UNDER_WINE
    ? "Wine keeps a lowered integrity level and its NtCreateLowBoxToken returns no handle: neither token can be made"
    : NOT_WINDOWS,
  () => {
    using stack = new DisposableStack();
    const by = Object.fromEntries(
      kernelSecurityProbe().tokens(stack).map((t) => ["facts" in t ? t.facts.name : t.name, t]),
    );
    const low = (by.low as ProbeToken).token as Token;
    const ac = (by.appcontainer as ProbeToken).token as Token;
    const connect = (sddl: string, t: Token) =>
      accessCheck(sddlToSecurityDescriptor(sddl), t, 1, MAPPING).granted;
    // SepMandatoryIntegrityCheck.c: no label is SepDefaultMandatorySid (Medium) with no-write-up;
    // a lower token keeps the read mapping's rights, and the port mapping's read holds
    // PORT_CONNECT: Low connects. A no-read-up label at Medium takes the read rights too.
    assertStrictEquals(connect("O:BAG:BAD:(A;;0x1;;;WD)", low), true, "no label");
    assertStrictEquals(connect("O:BAG:BAD:(A;;0x1;;;WD)S:(ML;;NW;;;LW)", low), true, "Low label");
    assertStrictEquals(
      connect("O:BAG:BAD:(A;;0x1;;;WD)S:(ML;;NRNW;;;ME)", low),
      false,
      "NR at Medium",
    );
    // SepAccessCheck.c evaluates a lowbox token (token flag 0x4000) apart: Everyone alone is not
    // enough, its package SID or ALL APPLICATION PACKAGES must be granted too.
    assertStrictEquals(connect("O:BAG:BAD:(A;;0x1;;;WD)", ac), false, "no AC or package ACE");
    assertStrictEquals(connect("O:BAG:BAD:(A;;0x1;;;WD)(A;;0x1;;;AC)", ac), true, "AC ACE");
    assertStrictEquals(
      connect(`O:BAG:BAD:(A;;0x1;;;WD)(A;;0x1;;;${PACKAGE_SID})`, ac),
      true,
      "package ACE",
    );
  },
);

windowsTest(
  "createLowBoxToken() under Wine is UnsupportedError (success with no handle), not a token",
  UNDER_WINE ? null : ON_WINDOWS_BUILD ? "Windows makes the token" : NOT_WINDOWS,
  () => {
    using me = Token.open(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE);
    assertThrows(() => createLowBoxToken(me, PACKAGE_SID), UnsupportedError, "no token handle");
  },
);

windowsTest(
  [
    "list_ports --access --json runs: exit 0 or 3 with the reason, and the ports@2 document with the tokens and the mapping",
    "list_ports --access --json runs",
  ],
  WINDOWS_ONLY,
  async () => {
    const r = await run(Deno.execPath(), [
      "run",
      "--allow-ffi",
      `${REPO_ROOT}experiments/ports/list_ports.ts`,
      "--access",
      "--json",
    ]);
    assert(r.code === 0 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
    const doc = JSON.parse(r.stdout) as PortsDocument & { ran?: boolean; reason?: string };
    assertStrictEquals(doc.schema, "deno-lpc/ports@2");
    if (r.code === 3) {
      assertStrictEquals(doc.ran, false);
      assert(doc.reason && r.stderr.includes(doc.reason), r.stderr);
      return;
    }
    const s = doc.security!;
    assertEquals(s.tokens!.map((t) => t.name), [...TOKEN_NAMES]);
    assertStrictEquals(s.summary.ports, doc.objects.filter((o) => o.type.endsWith("Port")).length);
    for (const t of s.tokens!) if (!t.made) assert(t.reason.length > 0);
    if (UNDER_WINE) {
      // Wine has no ports and no port handles: the constant mapping, and why.
      assertStrictEquals(s.mapping!.from, "constant");
      assertMatch(s.mapping!.why!, /STATUS_NOT_IMPLEMENTED/);
    } else {
      assert(s.summary.withSddl > 0, JSON.stringify(s.summary));
      assertStrictEquals(s.mapping!.from, "runtime");
      assertStrictEquals(s.mapping!.validAccessMask, "0x001F0001");
      for (const p of s.ports) assert(p.sddl !== undefined || p.reason, p.path);
    }
  },
);

windowsTest(
  [
    "accessCheck() agrees with Win32 AccessCheck in a C program (access_oracle.c) on every SDDL, for this process's token and a restricted copy",
    "accessCheck() agrees with the C AccessCheck oracle",
  ],
  ORACLES
    ? null
    : ON_WINDOWS_BUILD
    ? "the C oracles are built by the Wine harness only"
    : NOT_WINDOWS,
  async () => {
    const cases = [
      "O:BAG:BAD:(A;;0x1;;;WD)",
      "O:BAG:BAD:(D;;0x1;;;WD)(A;;0x1;;;WD)",
      "O:BAG:BAD:(A;;0x1;;;S-1-5-21-1-2-3-4)",
      "O:BAG:BAD:(A;;0x1;;;BA)",
      "O:SYG:SYD:(A;;0x1f0001;;;SY)(A;;0x20001;;;WD)",
      "O:BAG:BAD:(A;;0x10000;;;WD)",
      "O:BAG:BAD:(A;;0x1;;;AU)(D;;0x1;;;BA)",
    ];
    const r = await run(`${ORACLES}/access_oracle.exe`, cases);
    assertStrictEquals(r.code, 0, r.stderr + r.stdout);
    const theirs = r.stdout.trim().split(/\r?\n/);
    using me = Token.open(TokenAccess.TOKEN_QUERY | TokenAccess.TOKEN_DUPLICATE);
    using process = me.duplicate({ primary: false, level: "Identification" });
    using restricted = me.restricted({ denyOnly: [WellKnownSid.Administrators] });
    using restrictedCopy = restricted.duplicate({ primary: false, level: "Identification" });
    const ours = cases.flatMap((sddl, i) =>
      ([["process", process], ["restricted", restrictedCopy]] as const).map(([name, t]) => {
        const v = accessCheck(sddlToSecurityDescriptor(sddl), t, 1, MAPPING);
        return `${i}\t${name}\t${v.granted ? 1 : 0}\t0x${
          v.grantedAccess.toString(16).padStart(8, "0")
        }`;
      })
    );
    assertEquals(ours, theirs);
    // Not one answer for all: the cases tell grants from denials.
    assert(ours.some((l) => l.includes("\t1\t")) && ours.some((l) => l.includes("\t0\t")));
  },
);
