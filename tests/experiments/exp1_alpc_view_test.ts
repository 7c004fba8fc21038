/**
 * Experiment 1's large reads over ALPC against the fake kernel (tests/fake_kernel_alpc.ts, whose
 * port sections are real shared memory): the client (`connectAlpc`, what `--transport alpc` uses)
 * makes a view on its port and sends it with each READ_VIEW request; the server writes the file's
 * bytes through its own mapping of it (`receivedWindow`, as exp1_handler.ts does) and replies with
 * their SHA-256; the client checks its view against it. No view stays mapped on either side.
 */

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import {
  decodeReadReply,
  encodeReadRequest,
  MAX_READ_LENGTH,
  type OpenedFile,
  type ReadContext,
  serveRead,
} from "../../experiments/exp1/exp1_protocol.ts";
import { connectAlpc } from "../../experiments/exp1/exp1_transport.ts";
import {
  checkView,
  encodeViewReadRequest,
  isViewRequest,
  MAX_VIEW_READ_LENGTH,
  receivedWindow,
  serveViewRead,
} from "../../experiments/exp1/exp1_view.ts";
import { createAlpcPort } from "../../ffi/alpc/port.ts";
import { AlpcServer } from "../../ffi/alpc/server.ts";
import { NtError, NTSTATUS } from "../../ffi/status.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const SERVER: Identity = { pid: 100, tid: 101 };
const CLIENT: Identity = { pid: 200, tid: 201 };
const PORT = "\\RPC Control\\exp1-alpc-view";
const ROOT_FINAL = "\\\\?\\C:\\lab";
const BIG = new Uint8Array(MAX_VIEW_READ_LENGTH + 5000).map((_, i) => (i * 131 + (i >> 12)) & 0xff);

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

/** An ALPC server on the fake, serving READ and READ_VIEW as exp1_handler.ts does. */
function lab() {
  const k = new FakeKernel();
  const port = k.as(SERVER, () => createAlpcPort(PORT, { nt: k.symbols }));
  const fs = fakeFs();
  const mapped: number[] = [];
  const server = new AlpcServer(port, {
    request: ({ data, view }) => {
      mapped.push(k.alpcViews(SERVER.pid));
      return isViewRequest(data)
        ? serveViewRead(data, { ...fs, view: view ? receivedWindow(view) : null })
        : serveRead(data, fs);
    },
  }, { nt: k.symbols, now: () => 0 });
  k.actor(SERVER, () => server.step(0));
  const stop = () => {
    while (k.as(SERVER, () => server.step(0)));
    k.as(SERVER, () => server[Symbol.dispose]());
  };
  return { k, server, fs, mapped, stop };
}

Deno.test("exp1 over ALPC: 1 MiB through a view the client sends; the reply's SHA-256 matches the client's view, and no view stays mapped", () => {
  const { k, server, fs, mapped, stop } = lab();
  const client = k.as(
    CLIENT,
    () =>
      connectAlpc(PORT, { level: "Impersonation", viewSize: MAX_VIEW_READ_LENGTH, nt: k.symbols }),
  );
  assertStrictEquals(client.view!.size, MAX_VIEW_READ_LENGTH);
  const ask = (b: Uint8Array) => decodeReadReply(k.as(CLIENT, () => client.request(b)));
  const read = { path: "big.bin", offset: 3n, length: MAX_VIEW_READ_LENGTH };
  const reply = ask(encodeViewReadRequest({ ...read, viewOffset: 0 }));
  assertEquals([reply.statusName, reply.stage, reply.inView], ["STATUS_SUCCESS", "served", true]);
  const check = checkView(reply, (o, n) => k.as(CLIENT, () => client.view!.read(o, n)));
  assertEquals([check.viewOffset, check.length, check.matches], [0, MAX_VIEW_READ_LENGTH, true]);
  assertEquals(check.bytes, BIG.subarray(3, 3 + MAX_VIEW_READ_LENGTH));
  // A range outside the view is refused with its reason before any open; the server goes on.
  const opened = fs.opened;
  const past = ask(
    encodeViewReadRequest({
      path: "big.bin",
      offset: 0n,
      length: 2,
      viewOffset: MAX_VIEW_READ_LENGTH - 1,
    }),
  );
  assertEquals([past.statusName, past.stage], ["STATUS_INVALID_VIEW_SIZE", "view"]);
  assertStrictEquals(
    past.reason,
    `view range refused: offset ${
      MAX_VIEW_READ_LENGTH - 1
    } + length 2 exceeds the view's ${MAX_VIEW_READ_LENGTH} bytes`,
  );
  assertStrictEquals(fs.opened, opened, "nothing opened for a refused range");
  // A small READ still answers in the reply, and carries no view.
  const small = ask(encodeReadRequest({ path: "big.bin", offset: 0n, length: MAX_READ_LENGTH }));
  assertEquals(small.bytes, BIG.subarray(0, MAX_READ_LENGTH));
  // The server had the client's view mapped while it served a READ_VIEW, never after.
  assertEquals(mapped, [1, 1, 0]);
  assertStrictEquals(k.alpcViews(SERVER.pid), 0, "the server released every view it was sent");
  assertStrictEquals(server.events.filter((e) => e.event === "view-released").length, 2);
  assertStrictEquals(k.alpcViews(CLIENT.pid), 1, "the client's own view, until it closes");
  k.as(CLIENT, () => client[Symbol.dispose]());
  assertStrictEquals(k.alpcViews(CLIENT.pid), 0, "the client's view went with its close");
  stop();
  assertEquals([fs.opened, fs.closed], [2, 2]);
  assertEquals(server.events.filter((e) => e.event === "error"), []);
  assertStrictEquals(k.openHandles(SERVER.pid) + k.openHandles(CLIENT.pid), 0);
});

Deno.test("exp1 over ALPC: a READ_VIEW without a view is refused with its reason, and a view smaller than asked refuses the range", () => {
  const { k, fs, stop } = lab();
  const bare = k.as(CLIENT, () => connectAlpc(PORT, { level: "Impersonation", nt: k.symbols }));
  assertStrictEquals(bare.view, null);
  const none = decodeReadReply(
    k.as(
      CLIENT,
      () =>
        bare.request(
          encodeViewReadRequest({ path: "big.bin", offset: 0n, length: 10, viewOffset: 0 }),
        ),
    ),
  );
  assertEquals([none.statusName, none.stage], ["STATUS_INVALID_PARAMETER", "view"]);
  assert(none.reason.startsWith("no view: "), none.reason);
  k.as(CLIENT, () => bare[Symbol.dispose]());
  const little = k.as(
    CLIENT,
    () => connectAlpc(PORT, { level: "Impersonation", viewSize: 0x1000, nt: k.symbols }),
  );
  const big = decodeReadReply(
    k.as(
      CLIENT,
      () =>
        little.request(
          encodeViewReadRequest({ path: "big.bin", offset: 0n, length: 0x2000, viewOffset: 0 }),
        ),
    ),
  );
  assertEquals([big.statusName, big.stage], ["STATUS_INVALID_VIEW_SIZE", "view"]);
  k.as(CLIENT, () => little[Symbol.dispose]());
  assertStrictEquals(fs.opened, 0);
  assertStrictEquals(k.alpcViews(SERVER.pid) + k.alpcViews(CLIENT.pid), 0);
  stop();
});
