/**
 * The symbol tables' shape, checked two ways: against the C prototypes written beside each entry
 * (count and width of every parameter), and against the reference prototypes in
 * tests/fixtures/nt-signatures.json (the project's table of NT prototypes, kept in the repository).
 */

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { ntdllSymbols, wineProbeSymbols } from "../../ffi/ntdll.ts";
import { kernel32Symbols } from "../../ffi/kernel32.ts";
import { advapi32Symbols } from "../../ffi/advapi32.ts";
import { REPO_ROOT, WINE_MISSING_NTDLL } from "../_helpers.ts";

type Table = Record<string, Deno.ForeignFunction>;

interface Prototype {
  result: string;
  name: string;
  params: string[]; // C types
}

/** Reads `// RESULT Name(TYPE name, ...);` comments and the table key that follows each. */
export function parsePrototypes(source: string): Map<string, Prototype> {
  const lines = source.split(/\r?\n/);
  const out = new Map<string, Prototype>();
  for (let i = 0; i < lines.length; i++) {
    const head = /^\s*\/\/ ((?:const )?[A-Za-z_][\w ]*?\s*\**)\s*(?:NTAPI\s+)?(\w+)\((.*)$/.exec(
      lines[i]!,
    );
    if (!head) continue;
    let text = head[3]!;
    let j = i;
    while (!text.includes(");") && j + 1 < lines.length && /^\s*\/\//.test(lines[j + 1]!)) {
      j++;
      text += " " + lines[j]!.replace(/^\s*\/\/\s*/, "");
    }
    const args = text.slice(0, text.indexOf(")")).trim();
    const params = args === "void" || args === "VOID" || args === ""
      ? []
      : args.split(",").map((p) => p.trim().replace(/\s*\b\w+$/, "").trim());
    // The table key on the next non-comment line.
    let k = j + 1;
    while (k < lines.length && /^\s*\/\//.test(lines[k]!)) k++;
    const key = /^\s*(\w+):/.exec(lines[k] ?? "");
    if (!key) continue;
    out.set(key[1]!, { result: head[1]!.trim(), name: head[2]!, params });
  }
  return out;
}

const ENUMS = new Set([
  "PROCESSINFOCLASS",
  "THREADINFOCLASS",
  "OBJECT_INFORMATION_CLASS",
  "SYSTEM_INFORMATION_CLASS",
  "PORT_INFORMATION_CLASS",
  "ALPC_PORT_INFORMATION_CLASS",
  "SECURITY_IMPERSONATION_LEVEL",
  "TOKEN_TYPE",
  "TOKEN_INFORMATION_CLASS",
  "JOBOBJECTINFOCLASS",
]);
const HANDLES = new Set(["HANDLE", "ALPC_HANDLE", "HMODULE", "HLOCAL", "FARPROC"]);

/** The FFI types a C type may be declared as on Windows x64. */
export function allowedFfi(ctype: string): string[] {
  const t = ctype.replace(/^const\s+/, "").trim();
  if (t.endsWith("*")) return ["buffer", "pointer"];
  if (HANDLES.has(t)) return ["pointer"];
  if (t === "NTSTATUS" || t === "BOOL") return ["i32"];
  if (t === "BOOLEAN") return ["u8"];
  if (
    ["ULONG", "DWORD", "UINT", "ACCESS_MASK", "SECURITY_INFORMATION"].includes(t) || ENUMS.has(t)
  ) return ["u32"];
  if (t === "SIZE_T" || t === "DWORD_PTR") return ["u64", "usize"];
  if (t === "VOID" || t === "void") return ["void"];
  if (/^(P|LP)[A-Z_0-9]+$/.test(t)) return ["buffer", "pointer"]; // PVOID, PHANDLE, LPCWSTR, PSID ...
  throw new Error(`No width rule for C type ${ctype}`);
}

const TABLES: [string, Table, string][] = [
  ["ntdll", ntdllSymbols as unknown as Table, "ffi/ntdll.ts"],
  ["kernel32", kernel32Symbols as unknown as Table, "ffi/kernel32.ts"],
  ["advapi32", advapi32Symbols as unknown as Table, "ffi/advapi32.ts"],
];

for (const [dll, table, file] of TABLES) {
  Deno.test(`${dll}Symbols: every entry has a C prototype whose parameters match in count and width`, async () => {
    const src = await Deno.readTextFile(`${REPO_ROOT}${file}`);
    const protos = parsePrototypes(src);
    for (const [key, fn] of Object.entries(table)) {
      const proto = protos.get(key);
      assert(proto, `${dll}!${key} has no C prototype comment`);
      assertStrictEquals(proto.name, fn.name ?? key, `${key}: the comment names ${proto.name}`);
      assertStrictEquals(fn.parameters.length, proto.params.length, `${key}: parameter count`);
      fn.parameters.forEach((ffi, i) => {
        assert(
          allowedFfi(proto.params[i]!).includes(ffi as string),
          `${key} parameter ${i + 1} (${proto.params[i]}) declared ${ffi}`,
        );
      });
      const result = proto.result.replace(/\s+/g, " ");
      if (result === "const char *") assertStrictEquals(fn.result, "pointer");
      else {assert(
          allowedFfi(result).includes(fn.result as string),
          `${key} result ${result} declared ${fn.result}`,
        );}
    }
  });
}

Deno.test("wineProbeSymbols: wine_get_version is optional", () => {
  assertStrictEquals(wineProbeSymbols.wine_get_version.optional, true);
});

/**
 * Where this toolkit deliberately differs from nt-signatures.json: the reference lists "ptr" for
 * these enum-typed information classes, but a C enum is 4 bytes on Windows x64 (nt-abi-facts.md
 * §0 and every other *_INFORMATION_CLASS entry); in a register both pass the same low 32 bits.
 */
const REFERENCE_CORRECTIONS: Record<string, Record<number, string>> = {
  NtSetInformationProcess: { 1: "u32" },
  NtQueryInformationProcess: { 1: "u32" },
  NtQueryInformationPort: { 1: "u32" },
};

const JSON_TO_FFI: Record<string, string[]> = {
  ptr: ["pointer", "buffer"],
  u32: ["u32"],
  i32: ["i32"],
  u8: ["u8"],
  bool: ["bool"],
  u64: ["u64"],
  usize: ["usize"],
  void: ["void"],
};

Deno.test("ntdllSymbols binds every nt-signatures.json function with its parameter types", async () => {
  const ref = JSON.parse(
    await Deno.readTextFile(`${REPO_ROOT}tests/fixtures/nt-signatures.json`),
  ) as Record<string, { params: { ffi: string; alt?: string[]; ctype: string }[]; result: string }>;
  const table = ntdllSymbols as unknown as Table;
  assertStrictEquals(Object.keys(ref).length, 49);
  for (const [name, sig] of Object.entries(ref)) {
    const fn = table[name];
    assert(fn, `${name} is not bound`);
    assertStrictEquals(fn.parameters.length, sig.params.length, `${name}: parameter count`);
    sig.params.forEach((p, i) => {
      const corrected = REFERENCE_CORRECTIONS[name]?.[i];
      const allowed = corrected
        ? [corrected]
        : [p.ffi, ...(p.alt ?? [])].flatMap((t) => JSON_TO_FFI[t] ?? [t]);
      assert(
        allowed.includes(fn.parameters[i] as string),
        `${name} param ${i + 1} (${p.ctype}): ${fn.parameters[i]} not in ${allowed}`,
      );
    });
    assert(
      (JSON_TO_FFI[sig.result] ?? [sig.result]).includes(fn.result as string),
      `${name} result`,
    );
  }
});

Deno.test("optional: true marks exactly the exports Wine 8.0 lacks (every NtAlpc* and Alpc* among them)", () => {
  const table = ntdllSymbols as unknown as Table;
  const optional = Object.entries(table).filter(([, f]) => f.optional).map(([k]) => k).sort();
  const expected = [
    ...WINE_MISSING_NTDLL,
    ...Object.keys(table).filter((k) => k.startsWith("NtAlpc") || k.startsWith("Alpc")),
  ].sort();
  assertEquals(optional, expected);
  for (const t of [kernel32Symbols, advapi32Symbols] as unknown as Table[]) {
    assertEquals(Object.values(t).filter((f) => f.optional), []);
  }
});

Deno.test("only self-contained calls are nonblocking", () => {
  const nonblocking = TABLES.flatMap(([dll, t]) =>
    Object.entries(t).filter(([, f]) => f.nonblocking).map(([k]) => `${dll}!${k}`)
  );
  assertEquals(nonblocking, ["kernel32!WaitForSingleObjectAsync", "kernel32!ReadFileAsync"]);
});

Deno.test("the Win32 tables bind what the experiments need", () => {
  const k32 = [
    "CreateProcessW",
    "OpenProcess",
    "TerminateProcess",
    "WaitForSingleObject",
    "GetExitCodeProcess",
    "DebugActiveProcess",
    "WaitForDebugEvent",
    "ContinueDebugEvent",
    "DebugActiveProcessStop",
    "DebugBreakProcess",
    "DebugSetProcessKillOnExit",
    "CreateRemoteThread",
    "CreateThread",
    "GetThreadContext",
    "SetThreadContext",
    "ResumeThread",
    "LocalFree",
    "GetLastError",
    "CloseHandle",
  ];
  const adv = [
    "CreateProcessAsUserW",
    "OpenProcessToken",
    "DuplicateTokenEx",
    "CreateRestrictedToken",
    "SetTokenInformation",
    "GetTokenInformation",
    "ImpersonateLoggedOnUser",
    "RevertToSelf",
    "SetThreadToken",
    "LookupPrivilegeValueW",
    "AdjustTokenPrivileges",
    "ConvertStringSecurityDescriptorToSecurityDescriptorW",
    "ConvertSidToStringSidW",
  ];
  for (const k of k32) assert(k in kernel32Symbols, `kernel32!${k}`);
  for (const k of adv) assert(k in advapi32Symbols, `advapi32!${k}`);
});

Deno.test("parsePrototypes() reads multi-line prototypes and void parameter lists", () => {
  const src = [
    "  // NTSTATUS NtA(HANDLE PortHandle,",
    "  //   PVOID *PortContext, ULONG Length);",
    "  NtA: { parameters: [], result: 'i32' },",
    "  // DWORD GetLastError(void);",
    "  GetLastError: {},",
    "  // HANDLE DbgUiGetThreadDebugObject(VOID);",
    "  DbgUiGetThreadDebugObject: {},",
  ].join("\n");
  const p = parsePrototypes(src);
  assertEquals(p.get("NtA"), {
    result: "NTSTATUS",
    name: "NtA",
    params: ["HANDLE", "PVOID *", "ULONG"],
  });
  assertEquals(p.get("GetLastError")!.params, []);
  assertEquals(p.get("DbgUiGetThreadDebugObject")!.params, []);
  assertEquals(allowedFfi("BOOLEAN"), ["u8"]);
  assertEquals(allowedFfi("BOOL"), ["i32"]);
  assertEquals(allowedFfi("SIZE_T"), ["u64", "usize"]);
});

Deno.test("parsePrototypes() reads a CRLF checkout (core.autocrlf=true) as it reads LF", async () => {
  for (const [, , file] of TABLES) {
    const lf = await Deno.readTextFile(`${REPO_ROOT}${file}`);
    const crlf = lf.replace(/\r?\n/g, "\r\n");
    assert(crlf.includes("\r\n"), `${file}: a CRLF copy`);
    const want = parsePrototypes(lf.replace(/\r\n/g, "\n"));
    assert(want.size > 10, `${file}: prototypes found in the LF text`);
    assertEquals(parsePrototypes(crlf), want, `${file}: the same prototypes from CRLF text`);
  }
});
