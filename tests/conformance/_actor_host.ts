/**
 * A child process of a conformance scenario on the real kernel (`Kernel.spawn()`): its threads
 * are Workers (`_actor.ts`) and its buffers live here ({@link ActorProcess}); the test process
 * drives it with one JSON request per line on stdin and reads one JSON answer per line on stdout.
 *
 * Started by `windows_driver.ts` as `deno run --allow-ffi --allow-read _actor_host.ts`: FFI for
 * the calls, read for starting Workers from local files (nt-semantics.md E12). Nothing else.
 *
 * In: `{id, op: "thread"}`, `{id, op: "send", thread, request}`, `{id, op: "read", name}`,
 * `{id, op: "exitThread", thread, ms}`. Out: `{ready: {pid}}` first, then `{id, ok}`,
 * `{id, error}` or `{id, killed: true}`. End of stdin ends the process.
 *
 * @module
 */

import { serializeError } from "../../ffi/_errors_wire.ts";
import { ActorProcess } from "./_actor_process.ts";
import { type ThreadOp, toBase64 } from "./_actor_marshal.ts";

type Request =
  | { id: number; op: "thread"; ms: number }
  | { id: number; op: "send"; thread: number; request: ThreadOp }
  | { id: number; op: "read"; name: string }
  | { id: number; op: "exitThread"; thread: number; ms: number };

const encoder = new TextEncoder();

/** Writes one line, whole (a synchronous write: lines never interleave). */
function emit(value: unknown): void {
  let bytes = encoder.encode(JSON.stringify(value) + "\n");
  while (bytes.byteLength) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}

async function handle(proc: ActorProcess, r: Request): Promise<void> {
  try {
    switch (r.op) {
      case "thread":
        emit({ id: r.id, ok: await proc.newThread(r.ms) });
        break;
      case "send": {
        const settled = await proc.send(r.thread, r.request);
        emit("killed" in settled ? { id: r.id, killed: true } : { id: r.id, ok: settled.ok });
        break;
      }
      case "read":
        emit({ id: r.id, ok: toBase64(proc.read(r.name)) });
        break;
      case "exitThread":
        await proc.exitThread(r.thread, r.ms);
        emit({ id: r.id, ok: null });
        break;
    }
  } catch (e) {
    emit({ id: r.id, error: serializeError(e) });
  }
}

async function main(): Promise<void> {
  const proc = new ActorProcess();
  emit({ ready: { pid: proc.pid } });
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of Deno.stdin.readable) {
    text += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = text.indexOf("\n")) >= 0) {
      const line = text.slice(0, nl).trim();
      text = text.slice(nl + 1);
      if (line) void handle(proc, JSON.parse(line) as Request);
    }
  }
  // The test process let go of us: end every thread, then the process.
  await proc.dispose(2_000);
  Deno.exit(0);
}

if (import.meta.main) await main();
