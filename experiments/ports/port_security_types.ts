/**
 * The constants and types of port security (`list_ports --security` / `--access`): the right, the
 * ALPC Port type's mapping when none can be read, the tokens, the probe's inputs and the
 * document's `security` section. The table is built in `port_security.ts`.
 *
 * @module
 */

import type { AccessCheckResult, GenericMapping, ObjectTypeFacts } from "../../raw.ts";

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
