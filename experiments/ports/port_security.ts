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
 * The table is built from a {@link SecurityProbe}: the kernel's (`kernelSecurityProbe` in `port_security_probe.ts`) or a
 * test's recorded one.
 *
 * @module
 */

import type { NamespaceObject } from "../../mod.ts";
import { formatHex, type GenericMapping, PORT_TYPES } from "../../raw.ts";
import {
  ALPC_PORT_MAPPING_CONSTANT,
  ALPC_PORT_MAPPING_SOURCE,
  CONNECT_RIGHT_SOURCE,
  type DescriptorSurvey,
  type MappingChoice,
  PORT_CONNECT,
  type PortSecurity,
  type SecurityProbe,
  type SecuritySection,
  type TokenName,
} from "./port_security_types.ts";

export * from "./port_security_types.ts";

/** The tokens below Medium integrity (a lowbox token is Low): the label decides for them. */
const LABELLED: readonly TokenName[] = ["low", "appcontainer"];
/**
 * Why a Low or AppContainer verdict is unknown without the label: `SepMandatoryIntegrityCheck.c`
 * takes `SepDefaultMandatorySid` (Medium, `SepInitializationPhase0.c`) with no-write-up only when
 * the descriptor has no label, so checking a descriptor read without one would answer for a
 * label the port may not have.
 */
const NO_LABEL = "the label was not read (LABEL_SECURITY_INFORMATION refused): " +
  "a check without it would assume the default Medium label (SepMandatoryIntegrityCheck.c)";

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
      } else if (LABELLED.includes(name) && !descriptor.parts.includes("label")) {
        p.access[name] = { connect: null, reason: NO_LABEL };
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
