/**
 * Experiment 1's large reads through the connection's port view (READ_VIEW, exp1_view.ts), its
 * synchronous SHA-256, and a whole exchange of up to 1 MiB against the fake kernel.
 */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { sha256, toHex } from "../../experiments/exp1/_sha256.ts";
import {
  decodeReadReply,
  encodeReadRequest,
  MAX_READ_LENGTH,
  type OpenedFile,
  type ReadContext,
  Refusal,
  serveRead,
} from "../../experiments/exp1/exp1_protocol.ts";
import {
  checkView,
  decodeViewReadRequest,
  encodeViewReadRequest,
  isViewRequest,
  MAX_VIEW_READ_LENGTH,
  serveViewRead,
} from "../../experiments/exp1/exp1_view.ts";
import { createConnectionPort, LpcClient, LpcServer } from "../../ffi/lpc/port.ts";
import { LPC_LEGACY_MAX_MESSAGE_LENGTH } from "../../ffi/port_message.ts";
import { NtError, NTSTATUS } from "../../ffi/status.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const SERVER: Identity = { pid: 100, tid: 101 };
const CLIENT: Identity = { pid: 200, tid: 201 };
const ROOT_FINAL = "\\\\?\\C:\\lab";
const BIG = new Uint8Array(MAX_VIEW_READ_LENGTH + 5000).map((_, i) => (i * 131 + (i >> 12)) & 0xff);

/** One file, `big.bin`; every open is recorded and every close too. */
function fakeFs(): ReadContext & { opened: number; closed: number } {
  const fs = {
    opened: 0,
    closed: 0,
    rootFinalPath: () => ROOT_FINAL,
    open(relative: string): OpenedFile {
      if (relative !== "big.bin") {
        throw new NtError("NtCreateFile", NTSTATUS.STATUS_OBJECT_NAME_NOT_FOUND, "ntstatus");
      }
      fs.opened++;
      return {
        finalPath: () => `${ROOT_FINAL}\\big.bin`,
        read: (offset, length) => BIG.slice(Number(offset), Number(offset) + length),
        [Symbol.dispose]: () => void fs.closed++,
      };
    },
  };
  return fs;
}

Deno.test("sha256() equals crypto.subtle's SHA-256, block edges and 1 MiB included", async () => {
  for (const n of [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 4096, MAX_VIEW_READ_LENGTH]) {
    const data = BIG.subarray(0, n);
    const want = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    assertEquals(toHex(sha256(data)), toHex(want), `${n} bytes`);
  }
  assertStrictEquals(
    toHex(sha256(new TextEncoder().encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("READ_VIEW: request round trip; malformed ones are refused with a reason", () => {
  const r = { path: "big.bin", offset: 7n, length: MAX_VIEW_READ_LENGTH, viewOffset: 4096 };
  const wire = encodeViewReadRequest(r);
  assert(isViewRequest(wire));
  assert(!isViewRequest(encodeReadRequest({ path: "x", offset: 0n, length: 1 })));
  assertEquals(decodeViewReadRequest(wire), r);
  const refused = (b: Uint8Array) => assertThrows(() => decodeViewReadRequest(b), Refusal).message;
  assertEquals(
    refused(wire.subarray(0, 20)),
    "request of 20 bytes is shorter than its 32-byte header",
  );
  assertEquals(
    refused(encodeViewReadRequest({ ...r, length: MAX_VIEW_READ_LENGTH + 1 })),
    `length ${MAX_VIEW_READ_LENGTH + 1} must be 1..${MAX_VIEW_READ_LENGTH}`,
  );
  assertEquals(refused(encodeViewReadRequest({ ...r, length: 0 })), `length 0 must be 1..1048576`);
  const reserved = wire.slice();
  reserved[28] = 1;
  assertEquals(refused(reserved), "reserved fields must be zero");
  assertEquals(refused(wire.subarray(0, wire.byteLength - 2)).startsWith("path length 14"), true);
});

Deno.test("serveViewRead(): no view, a range outside the view and a hostile path are refused before any open", () => {
  const fs = fakeFs();
  const written: [number, number][] = [];
  const view = {
    size: 8192,
    write: (o: number, b: Uint8Array) => void written.push([o, b.length]),
  };
  const ask = (path: string, viewOffset: number, length: number, v: typeof view | null = view) =>
    decodeReadReply(
      serveViewRead(encodeViewReadRequest({ path, offset: 0n, length, viewOffset }), {
        ...fs,
        view: v,
      }),
    );
  const none = ask("big.bin", 0, 10, null);
  assertEquals([none.statusName, none.stage], ["STATUS_INVALID_PARAMETER", "view"]);
  assert(none.reason.startsWith("no view: "), none.reason);
  const beyond = ask("big.bin", 4096, 4097);
  assertEquals([beyond.statusName, beyond.stage], ["STATUS_INVALID_VIEW_SIZE", "view"]);
  assertStrictEquals(
    beyond.reason,
    "view range refused: offset 4096 + length 4097 exceeds the view's 8192 bytes",
  );
  const far = ask("big.bin", 9000, 1);
  assertStrictEquals(far.reason, "view range refused: offset 9000 is beyond the view's 8192 bytes");
  const hostile = ask("..\\secret.txt", 0, 10);
  assertEquals([hostile.statusName, hostile.stage], ["STATUS_OBJECT_PATH_SYNTAX_BAD", "path"]);
  assertStrictEquals(fs.opened, 0, "nothing was opened for a refused request");
  const ok = ask("big.bin", 100, 8092);
  assertEquals([ok.statusName, ok.stage, ok.inView], ["STATUS_SUCCESS", "served", true]);
  assertEquals(written, [[100, 8092]]);
  assertEquals([fs.opened, fs.closed], [1, 1]);
});

/** A server on the fake kernel serving both operations, and a client of it. */
function lab(viewSize?: number) {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createConnectionPort("\\RPC Control\\exp1v", { nt: k.symbols }));
  const fs = fakeFs();
  const server = new LpcServer(port, {
    request: ({ data, connection }) =>
      isViewRequest(data)
        ? serveViewRead(data, { ...fs, view: connection.view })
        : serveRead(data, fs),
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const client = k.as(
    CLIENT,
    () =>
      LpcClient.connect("\\RPC Control\\exp1v", {
        nt: k.symbols,
        ...(viewSize ? { view: { size: viewSize } } : {}),
      }),
  );
  const ask = (b: Uint8Array) => {
    const raw = k.as(CLIENT, () => client.request(b));
    assert(raw.header.totalLength <= LPC_LEGACY_MAX_MESSAGE_LENGTH, "every reply fits one message");
    return decodeReadReply(raw.data);
  };
  return { k, server, client, fs, ask };
}

Deno.test("1 MiB through the view: the reply carries the SHA-256 of what was read, and the client's view matches it", () => {
  const { k, server, client, fs, ask } = lab(MAX_VIEW_READ_LENGTH);
  const reply = ask(
    encodeViewReadRequest({
      path: "big.bin",
      offset: 3n,
      length: MAX_VIEW_READ_LENGTH,
      viewOffset: 0,
    }),
  );
  assertEquals([reply.statusName, reply.stage, reply.inView], ["STATUS_SUCCESS", "served", true]);
  const check = checkView(reply, (o, n) => client.view!.read(o, n));
  assertEquals([check.viewOffset, check.length, check.matches], [0, MAX_VIEW_READ_LENGTH, true]);
  assertEquals(check.bytes, BIG.subarray(3, 3 + MAX_VIEW_READ_LENGTH));
  // A small read still answers in the reply; a range past the view is refused, and the server goes on.
  const small = ask(encodeReadRequest({ path: "big.bin", offset: 0n, length: MAX_READ_LENGTH }));
  assertEquals(small.bytes, BIG.subarray(0, MAX_READ_LENGTH));
  const past = ask(
    encodeViewReadRequest({
      path: "big.bin",
      offset: 0n,
      length: 2,
      viewOffset: MAX_VIEW_READ_LENGTH - 1,
    }),
  );
  assertEquals([past.statusName, past.stage], ["STATUS_INVALID_VIEW_SIZE", "view"]);
  // The client corrupting its view after the fact: the digest no longer matches.
  client.view!.write(10, new Uint8Array([~BIG[13]! & 0xff]));
  assert(!checkView(reply, (o, n) => client.view!.read(o, n)).matches);
  k.as(CLIENT, () => client.close());
  k.as(SERVER, () => server.step(0));
  k.as(SERVER, () => server[Symbol.dispose]());
  assertEquals([k.views.mapped(SERVER.pid), k.views.mapped(CLIENT.pid)], [0, 0]);
  assertEquals([k.openHandles(SERVER.pid), k.openHandles(CLIENT.pid)], [0, 0]);
  assertStrictEquals(fs.opened, fs.closed);
});

Deno.test("READ_VIEW without a view: refused with a reason, and the connection still serves READ", () => {
  const { k, server, client, ask } = lab();
  const r = ask(
    encodeViewReadRequest({ path: "big.bin", offset: 0n, length: 5000, viewOffset: 0 }),
  );
  assertEquals([r.statusName, r.stage, r.inView], ["STATUS_INVALID_PARAMETER", "view", false]);
  assertStrictEquals(ask(encodeReadRequest({ path: "big.bin", offset: 0n, length: 4 })).status, 0);
  k.as(CLIENT, () => client.close());
  k.as(SERVER, () => server[Symbol.dispose]());
});
