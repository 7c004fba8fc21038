/** Pure helpers of the process, token and handle-table modules (run everywhere). */

import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { sidFromString, sidToString, WellKnownSid } from "../../../ffi/nt/tokens.ts";
import { quoteWindowsArg, windowsCommandLine } from "../../../ffi/nt/processes.ts";
import { decodeSystemHandles } from "../../../ffi/nt/system_handles.ts";
import { LAYOUTS } from "../../../ffi/layouts.ts";
import { NtHandle } from "../../../ffi/nt/handle.ts";

Deno.test("sidFromString() / sidToString() match the binary SID format", () => {
  // S-1-5-32-544: revision 1, 2 sub-authorities, authority 5 (big-endian), 32 and 544 (LE)
  assertEquals(
    [...sidFromString(WellKnownSid.Administrators)],
    [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0],
  );
  for (
    const s of [
      "S-1-1-0",
      "S-1-5-18",
      "S-1-16-8192",
      "S-1-5-21-3623811015-3361044348-30300820-1013",
      "S-1-15-2-1",
    ]
  ) {
    assertStrictEquals(sidToString(sidFromString(s)), s);
  }
  assertThrows(() => sidFromString("S-2-5"), TypeError);
  assertThrows(() => sidFromString("S-1-5-4294967296"), RangeError);
  assertThrows(() => sidToString(new Uint8Array([1, 3, 0, 0, 0, 0, 0, 5])), RangeError);
});

Deno.test("quoteWindowsArg() follows CommandLineToArgvW's backslash and quote rules", () => {
  const cases: [string, string][] = [
    ["plain", "plain"],
    ["", '""'],
    ["with space", '"with space"'],
    ["C:\\Program Files\\", '"C:\\Program Files\\\\"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['a\\"b', '"a\\\\\\"b"'],
    ["C:\\path\\no-space", "C:\\path\\no-space"],
  ];
  for (const [arg, quoted] of cases) assertStrictEquals(quoteWindowsArg(arg), quoted, arg);
  assertStrictEquals(
    windowsCommandLine(["deno.exe", "eval", "Deno.exit(7)"]),
    "deno.exe eval Deno.exit(7)",
  );
});

Deno.test("decodeSystemHandles() reads entries from LAYOUTS and clamps a lying count", () => {
  const E = LAYOUTS.SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX;
  const I = LAYOUTS.SYSTEM_HANDLE_INFORMATION_EX;
  const buf = new Uint8Array(I.offsets.Handles + 2 * E.size);
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(I.offsets.NumberOfHandles, 1000n, true); // claims more than fits
  for (let i = 0; i < 2; i++) {
    const at = I.offsets.Handles + i * E.size;
    dv.setBigUint64(at + E.offsets.UniqueProcessId, BigInt(100 + i), true);
    dv.setBigUint64(at + E.offsets.HandleValue, BigInt(4 * (i + 1)), true);
    dv.setUint32(at + E.offsets.GrantedAccess, 0x1f0001, true);
    dv.setUint16(at + E.offsets.ObjectTypeIndex, 46, true);
  }
  const handles = decodeSystemHandles(buf);
  assertStrictEquals(handles.length, 2);
  assertEquals(handles[1], {
    pid: 101,
    handle: 8n,
    object: 0n,
    access: 0x1f0001,
    typeIndex: 46,
    attributes: 0,
  });
  assertEquals(decodeSystemHandles(new Uint8Array(8)), []);
});

Deno.test("console.log(handle) shows its value and what it is, and that it is closed once closed", () => {
  const closed: bigint[] = [];
  const h = new NtHandle("port", 0x1a4n, "port \\RPC Control\\x", (p) => {
    closed.push(Deno.UnsafePointer.value(p));
    return 0;
  });
  assertStrictEquals(Deno.inspect(h), "NtHandle<port>(0x1a4, port \\RPC Control\\x)");
  h.close();
  assertEquals(closed, [0x1a4n]);
  assertStrictEquals(Deno.inspect({ h }), "{ h: NtHandle<port>(closed, port \\RPC Control\\x) }");
});
