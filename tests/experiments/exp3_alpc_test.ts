/**
 * Experiment 3's server half over ALPC against the fake kernel: experiment 2's handler on an
 * ALPC connection port that is also the client's exception port, a client that beats (a HELLO
 * request each beat) and registers its main thread's termination port on its ALPC port, then is
 * killed with a thread it never used (as the debugger's injected threads are). What exp3 reads of
 * the server's timeline (`observeExp3`): the beats, the gap during a freeze, LPC_CLIENT_DIED for
 * the silent thread through the exception port, no LPC_EXCEPTION. The debugger half needs Windows
 * (or Wine) and is stubbed here by what it would have recorded.
 */

import { assert, assertEquals, assertMatch, assertStrictEquals } from "@std/assert";
import { createHandler } from "../../experiments/exp2/exp2_handler.ts";
import { type Exp2Server, fromAlpcEvent } from "../../experiments/exp2/exp2_transport.ts";
import { type Exp3Acted, type Exp3SetUp, observeExp3 } from "../../experiments/exp3/exp3_setup.ts";
import { observe } from "../../experiments/exp3/exp3.ts";
import { AlpcClient } from "../../ffi/alpc/client.ts";
import { createAlpcPort } from "../../ffi/alpc/port.ts";
import { AlpcServer } from "../../ffi/alpc/server.ts";
import { FakeKernel, type Identity } from "../fake_kernel.ts";

const SERVER: Identity = { pid: 4, tid: 40 };
const CLIENT: Identity = { pid: 900, tid: 901 };
/** The thread the "debugger" injected: it never sends the server anything. */
const INJECTED = 950;
const PORT = "\\RPC Control\\exp3-alpc";

Deno.test("exp3's server half over ALPC: the beats, the freeze's gap, LPC_CLIENT_DIED for a silent thread through the ALPC exception port", () => {
  const k = new FakeKernel();
  let clock = 0;
  const port = k.as(SERVER, () => createAlpcPort(PORT, { nt: k.symbols }));
  const server = new AlpcServer(port, createHandler({ system: false, reply: "continue" }), {
    nt: k.symbols,
    now: () => clock,
  });
  k.actor(SERVER, () => server.step(0));
  assertStrictEquals(k.as(SERVER, () => k.setExceptionPort(CLIENT.pid, port.unsafeValue)), 0);
  const client = k.as(CLIENT, () => AlpcClient.connect(PORT, { nt: k.symbols }));
  k.as(CLIENT, () => client.registerThreadTerminatePort());
  // Beats every 100 ms, with a 1500 ms freeze (the held breakpoint) after the tenth.
  const beats: { at: number; reply?: string }[] = [];
  for (let n = 0; n < 20; n++) {
    clock += n === 10 ? 1500 : 100;
    const reply = k.as(CLIENT, () => client.request(new TextEncoder().encode("HELLO")));
    beats.push({ at: performance.timeOrigin + clock, reply: new TextDecoder().decode(reply.data) });
  }
  k.killProcess(CLIENT.pid, [INJECTED, CLIENT.tid]);
  while (k.as(SERVER, () => server.step(0)));
  k.as(SERVER, () => server[Symbol.dispose]());
  assertStrictEquals(k.openHandles(SERVER.pid), 0);

  const events = server.events.map(fromAlpcEvent);
  const stub: Exp2Server = {
    processId: SERVER.pid,
    threadId: SERVER.tid,
    events,
    command: () => Promise.resolve(null),
    stop: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  const holdAt = beats[9]!.at + 1;
  const s = {
    environment: { pid: 1, mainThread: 2, wine: null, elevated: true },
    lpcWhy: null,
    server: stub,
    exceptionPort: { set: true },
    notes: [],
    pid: CLIENT.pid,
    seconds: 3,
  } as unknown as Exp3SetUp;
  const a = {
    dbg: {
      debuggerTid: 77,
      events: [{ kind: "EXCEPTION", tid: INJECTED, at: holdAt, heldMs: 1400 }],
      remoteThreads: [],
      ended: "detach",
    },
    first: { kind: "EXCEPTION", tid: INJECTED, at: holdAt, heldMs: 1400 },
    end: undefined,
    exit: { exitCode: 0, exitCodeHex: "0x0" },
    beats,
  } as unknown as Exp3Acted;
  const run = observeExp3(s, a, {
    t0: performance.timeOrigin,
    holdMs: 1400,
    end: "detach",
    transport: "alpc",
  });
  assertStrictEquals(run.transport, "alpc");
  assertStrictEquals(run.serverHalf, "ran");
  assertStrictEquals(run.client!.lpcReplies, 20);
  assert(beats.every((b) => b.reply === "WELCOME"));
  const srv = run.server!;
  assertStrictEquals(srv.requestGapMs, 1500, "the server saw the freeze as a gap in the requests");
  assertEquals(srv.clientDiedTids.sort(), [CLIENT.tid, CLIENT.tid, INJECTED].sort());
  assertStrictEquals(srv.exceptions, 0);
  const injected = [{ tid: INJECTED, how: "break" as const }];
  const out = observe({ ...run, debugger: { ...run.debugger!, injectedThreads: injected } });
  assert(out.some((l) => /The server saw a 1500 ms gap/.test(l)), out.join("\n"));
  assertMatch(
    out.join("\n"),
    new RegExp(`LPC_CLIENT_DIED arrived for the injected threads ${INJECTED}:`),
  );
  assertMatch(out.join("\n"), /LPC_EXCEPTION messages: 0/);
});
