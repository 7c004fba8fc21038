/**
 * The kernel's {@link SecurityProbe} for `list_ports --security` / `--access` (Windows): the handle
 * table and `NtQuerySecurityObject` for the descriptors, `NtQueryObject(ObjectTypeInformation)`
 * for the mapping, the four tokens (each a disposable owned by the caller's stack), and
 * `NtAccessCheck`. See `port_security.ts` for what each step means.
 *
 * @module
 */

import { findPortServers, NtError, Token } from "../../mod.ts";
import {
  accessCheck,
  createLowBoxToken,
  objectTypeInformation,
  querySecurityDescriptor,
  READ_CONTROL_INFORMATION,
  securityDescriptorToSddl,
  SecurityInformation,
  TokenAccess,
  WellKnownSid,
} from "../../raw.ts";
import {
  type DescriptorSurvey,
  PACKAGE_SID,
  type PortDescriptor,
  type ProbeToken,
  type SecurityProbe,
  TOKEN_NAMES,
  type TokenMissing,
  type TokenName,
} from "./port_security_types.ts";

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

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

/**
 * Owner, group, DACL and label of an open handle; without the label only when reading it is
 * refused (STATUS_ACCESS_DENIED: the label needs more than READ_CONTROL). Any other failure is
 * thrown: a descriptor silently read without its label would be checked with the default Medium
 * label. `port_security.ts` leaves the Low and AppContainer verdicts unknown when the label is
 * missing.
 *
 * @param port the open handle
 * @param query `NtQuerySecurityObject` (tests pass a fake)
 * @param toSddl the SDDL of what was read (tests pass a fake)
 */
export function readDescriptor<P>(
  port: P,
  query: (port: P, info: number) => Uint8Array<ArrayBuffer>,
  toSddl: (sd: Uint8Array<ArrayBuffer>, info: number) => string,
): PortDescriptor {
  const noLabel = READ_CONTROL_INFORMATION & ~SecurityInformation.LABEL_SECURITY_INFORMATION;
  let info = READ_CONTROL_INFORMATION;
  let sd: Uint8Array<ArrayBuffer>;
  try {
    sd = query(port, info);
  } catch (e) {
    if (!(e instanceof NtError) || e.symbol !== "STATUS_ACCESS_DENIED") throw e;
    info = noLabel;
    sd = query(port, info);
  }
  return {
    sd,
    sddl: toSddl(sd, info),
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
              byPath.set(name.toLowerCase(), {
                server,
                descriptor: readDescriptor(port, querySecurityDescriptor, securityDescriptorToSddl),
              });
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
