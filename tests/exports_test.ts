/**
 * The two entry points' export lists, snapshotted: a name added to or dropped from `mod.ts` or
 * `raw.ts` fails here until the list below is updated on purpose. `deno doc --json` is the judge
 * (types count as names), and `mod.ts` stays within the budget of 60.
 */

import { assert, assertEquals } from "@std/assert";
import { REPO_ROOT } from "./_helpers.ts";

const MOD_BUDGET = 60;

const MOD = [
  "AttachOptions",
  "CapturedChild",
  "CapturedRun",
  "ChildProcess",
  "ClientId",
  "CommandContext",
  "ConnectOptions",
  "Connection",
  "Debugger",
  "ErrorKind",
  "ExceptionPortResult",
  "HandleKind",
  "HandledEvent",
  "LpcClient",
  "LpcEvent",
  "LpcHandler",
  "LpcMessageType",
  "LpcRequest",
  "LpcServer",
  "LpcServerOptions",
  "NamespaceEntry",
  "NamespaceError",
  "NamespaceObject",
  "NtError",
  "NtFile",
  "NtHandle",
  "OpenFileOptions",
  "PortMessage",
  "PortMessageError",
  "PortMessageHeader",
  "PortMessageInit",
  "PortOptions",
  "PortServer",
  "PortServerReport",
  "PortView",
  "QueryMode",
  "RaiseOptions",
  "RaiseResult",
  "SecurityDescriptor",
  "ServerWorker",
  "ServerWorkerOptions",
  "SystemImpersonation",
  "SystemTokenAttempt",
  "Token",
  "UnsupportedError",
  "WalkOptions",
  "assertWindows",
  "createConnectionPort",
  "currentThreadId",
  "decodePortMessage",
  "encodePortMessage",
  "findPortServers",
  "impersonateSystem",
  "isUnsupported",
  "openProcess",
  "raiseSecondChance",
  "setExceptionPort",
  "unavailable",
  "walkNamespace",
  "wineVersion",
];

const RAW = [
  "Advapi32Symbols",
  "CREATE_NO_WINDOW",
  "ClientDiedMessage",
  "DebugEvent",
  "DebugEventCode",
  "DebugEventKind",
  "DirectoryEntry",
  "DirectorySource",
  "Disposition",
  "EXCEPTION_MAXIMUM_PARAMETERS",
  "ExceptionMessage",
  "ExceptionRecordInfo",
  "FileAccess",
  "FileOptions",
  "HandleCloser",
  "HardErrorMessage",
  "HardErrorResponse",
  "ImpersonationLevel",
  "ImpersonationLevelName",
  "KERNEL_MESSAGE_LENGTH",
  "Kernel32Symbols",
  "LARGEST_KERNEL_MESSAGE",
  "LAYOUTS",
  "LPC_LEGACY_MAX_MESSAGE_LENGTH",
  "LPC_MAX_CONNECTION_INFO_SIZE",
  "Layout",
  "LpcMessageFlag",
  "LpcSymbols",
  "NTSTATUS",
  "NtStatusName",
  "NtdllSymbols",
  "OBJ_CASE_INSENSITIVE",
  "OBJ_DONT_REPARSE",
  "ObjectAttributes",
  "ObjectAttributesOptions",
  "PAGE_SIZE",
  "PORT_MAXIMUM_MESSAGE_LENGTH",
  "PORT_MESSAGE_HEADER_SIZE",
  "PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH",
  "PORT_TYPES",
  "PRIVILEGE_LUIDS",
  "PortMessageFault",
  "ProcessAccess",
  "ProcessEntry",
  "ProcessInfoClass",
  "RAISE_STUB",
  "RaiseSystem",
  "RaiseThread",
  "Section",
  "SectionOptions",
  "SectionSymbols",
  "SystemExtendedHandleInformation",
  "SystemHandle",
  "SystemProcessInformation",
  "TokenAccess",
  "TokenInformationClass",
  "UNICODE_STRING_MAX_CHARS",
  "UnicodeString",
  "WIN32_ERRORS",
  "WellKnownSid",
  "Win32ErrorName",
  "addressOf",
  "advapi32",
  "advapi32Symbols",
  "check",
  "checkWin32",
  "checkWin32Pointer",
  "currentProcess",
  "currentThread",
  "decodeClientDied",
  "decodeDebugEvent",
  "decodeDirectoryBuffer",
  "decodeExceptionMessage",
  "decodeExceptionRecord",
  "decodeHardErrorMessage",
  "decodePortMessageHeader",
  "decodeProcessList",
  "decodeSystemHandles",
  "decodeUtf16",
  "describeStatus",
  "encodeUtf16",
  "formatHex",
  "handleCell",
  "kernel32",
  "kernel32Symbols",
  "kernelDirectorySource",
  "messageFlagNames",
  "messageTypeName",
  "ntSuccess",
  "ntdll",
  "ntdllSymbols",
  "pointerFrom",
  "readCountedUnicodeString",
  "readWideZ",
  "rewriteAsReply",
  "securityQos",
  "setHardErrorResponse",
  "setReturnedStatus",
  "sidFromString",
  "sidToString",
  "statusName",
  "toUnsigned",
  "wideString",
  "win32ErrorName",
  "wineProbeSymbols",
];

/** The names `deno doc --json` lists for one entry point, sorted. */
async function docNames(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", entry],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: { name: string }[] }>;
  };
  return Object.values(doc.nodes).flatMap((n) => n.symbols.map((s) => s.name)).sort();
}

Deno.test(`mod.ts exports the curated list, at most ${MOD_BUDGET} names by deno doc`, async () => {
  const names = await docNames("mod.ts");
  assertEquals(names, MOD);
  assert(names.length <= MOD_BUDGET, `${names.length} names in mod.ts (budget ${MOD_BUDGET})`);
});

Deno.test("raw.ts exports the low-level list", async () => {
  assertEquals(await docNames("raw.ts"), RAW);
});

Deno.test("the two entry points share no name, and every runtime export is in the snapshot", async () => {
  assertEquals(MOD.filter((n) => RAW.includes(n)), []);
  const mod = await import("../mod.ts");
  const raw = await import("../raw.ts");
  assertEquals(Object.keys(mod).filter((k) => !MOD.includes(k)), []);
  assertEquals(Object.keys(raw).filter((k) => !RAW.includes(k)), []);
});

Deno.test("no internal leaks through either entry point", async () => {
  const internal = [
    "requireSymbol",
    "lazyLibrary",
    "createMailbox",
    "callMailbox",
    "serviceMailbox",
    "serializeError",
    "deserializeError",
    "DebuggerInit",
    "ServerInit",
    "LabFolder",
    "injectedThreads",
  ];
  for (const entry of ["mod.ts", "raw.ts"]) {
    const names = await docNames(entry);
    assertEquals(internal.filter((n) => names.includes(n)), [], entry);
  }
});
