/**
 * Handles are typed by what they refer to: `deno check` (which `deno test` runs first) refuses a
 * process handle where a token is wanted, a communication port where a connection port is
 * wanted, and so on. Each `@ts-expect-error` below must fire, or the check fails with TS2578
 * (unused directive), so the test fails if the typing ever loosens. The calls themselves never
 * run: they sit in a function that is only type-checked. At run time the test checks the `kind`
 * each handle carries, with a fake closer (no kernel).
 */

import { assertEquals, assertStrictEquals } from "@std/assert";
import { type HandleKind, NtHandle } from "../../../ffi/nt/handle.ts";
import { finalPathOf, NtFile } from "../../../ffi/nt/files.ts";
import { Token, tokenUserSid } from "../../../ffi/nt/tokens.ts";
import { ChildProcess, exitCodeOf, waitFor } from "../../../ffi/nt/processes.ts";
import { setExceptionPort } from "../../../ffi/lpc/exception_port.ts";
import { LpcServer } from "../../../ffi/lpc/port.ts";
import { listDirectory } from "../../../ffi/nt/namespace.ts";

const closed: string[] = [];
const fake = (what: string) => () => {
  closed.push(what);
  return 0;
};
const handle = <K extends HandleKind>(kind: K, value: bigint) =>
  new NtHandle(kind, value, `${kind} ${value}`, fake(kind));

/** Only type-checked: every misuse below is a compile error. Never called. */
function _misuses(
  proc: NtHandle<"process">,
  token: Token,
  conn: NtHandle<"connection-port">,
  comm: NtHandle<"port">,
  dir: NtHandle<"directory">,
  file: NtFile,
  anyKind: NtHandle,
): void {
  // @ts-expect-error a process handle is not a token
  tokenUserSid(proc);
  // @ts-expect-error a token is not a process: Token.open takes the process to open
  Token.open(8, token);
  // Any port, as the kernel allows (NtSetInformationProcess.c takes any LpcPortObjectType handle;
  // the conformance case "Any kind of port can be a process's exception port"): no error here.
  setExceptionPort(proc, comm);
  // @ts-expect-error an object directory is not a port
  setExceptionPort(proc, dir);
  // @ts-expect-error the process goes first, the connection port second
  setExceptionPort(conn, proc);
  // @ts-expect-error a server serves a connection port, not a communication port
  new LpcServer(comm, {});
  // @ts-expect-error a token is not waitable here (a process or thread is)
  waitFor(token);
  // @ts-expect-error an exit code is a process's
  exitCodeOf(file);
  // @ts-expect-error an object directory is not a file-system directory
  finalPathOf(dir);
  // @ts-expect-error a file-system directory is not an object directory
  listDirectory(file);
  // @ts-expect-error a handle of unknown kind is no token
  tokenUserSid(anyKind);
  // @ts-expect-error a child runs as a token, not as a process handle
  ChildProcess.spawnCaptured(["x"], { token: proc });
  // @ts-expect-error a Token's kind is fixed
  const _wrong: NtHandle<"process"> = token;

  // What is allowed: the right kinds, and any kind where any is wanted.
  tokenUserSid(token);
  setExceptionPort(proc, conn);
  waitFor(proc);
  const _any: NtHandle[] = [proc, token, conn, comm, dir, file];
  const _token: NtHandle<"token"> = token;
  const _file: NtHandle<"file"> = file;
}

Deno.test("each handle carries its kind at run time, and closes once through its closer", () => {
  closed.length = 0;
  {
    using proc = handle("process", 0x10n);
    using conn = handle("connection-port", 0x20n);
    using token = new Token(0x30n, "a token", fake("token"));
    using file = new NtFile(0x40n, "a file", fake("file"));
    assertEquals(
      [proc.kind, conn.kind, token.kind, file.kind],
      ["process", "connection-port", "token", "file"],
    );
    assertStrictEquals(token instanceof NtHandle, true);
    assertEquals(Deno.inspect(token), "NtHandle<token>(0x30, a token)");
    assertEquals(typeof _misuses, "function");
  }
  assertEquals(closed, ["file", "token", "connection-port", "process"]);
});

Deno.test("unsafeRelease() hands the raw value over: nothing is closed", () => {
  closed.length = 0;
  const h = handle("job", 0x50n);
  assertEquals(h.unsafeRelease(), 0x50n);
  assertEquals(h.closed, true);
  h.close();
  assertEquals(closed, []);
});
