/**
 * A child run with a deadline (used by the lab and by the tests' child runs): the child is killed
 * when the deadline passes, or when an `AbortSignal` fires (Ctrl-C), and what it wrote until then
 * is kept. If the child is gone but its
 * pipes stay open (an orphaned grandchild holds a copy), the reads are given up after a grace
 * period, so the caller always gets an answer.
 *
 * @module
 */

/** What {@link outputWithDeadline} returns. */
export interface DeadlineOutput {
  /**
   * The exit code; {@link DEADLINE_EXIT_CODE} when the deadline killed it,
   * {@link INTERRUPTED_EXIT_CODE} when the signal did.
   */
  code: number;
  /** Everything read from stdout (up to the deadline and grace). */
  stdout: string;
  /** Everything read from stderr, and a last line naming the deadline when it passed. */
  stderr: string;
  /** True when the deadline passed and the child was killed. */
  timedOut: boolean;
  /** True when the signal fired and the child was killed. */
  interrupted: boolean;
}

/** The exit code reported for a child the deadline killed (as coreutils `timeout` does). */
export const DEADLINE_EXIT_CODE = 124;

/** The exit code of a run ended by Ctrl-C (SIGINT): 128 + 2, as a shell reports it. */
export const INTERRUPTED_EXIT_CODE = 130;

async function collect(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  into: Uint8Array[],
): Promise<void> {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    into.push(value);
  }
}

function decode(chunks: Uint8Array[]): string {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

const sleep = (ms: number, ids: ReturnType<typeof setTimeout>[]) =>
  new Promise<"late">((resolve) => ids.push(setTimeout(() => resolve("late"), ms)));

/**
 * Runs `cmd` with `args` (stdin null, stdout and stderr piped) and kills it (`SIGKILL`; on
 * Windows `TerminateProcess`) if it has not exited after `deadlineMs`, or as soon as `signal`
 * aborts (it is not started if `signal` already has). Throws only what `spawn` throws (e.g.
 * `Deno.errors.NotFound` for a missing program).
 */
export async function outputWithDeadline(
  cmd: string | URL,
  args: string[],
  options: {
    cwd?: string | URL;
    env?: Record<string, string>;
    deadlineMs: number;
    graceMs?: number;
    signal?: AbortSignal;
  },
): Promise<DeadlineOutput> {
  if (options.signal?.aborted) {
    return {
      code: INTERRUPTED_EXIT_CODE,
      stdout: "",
      stderr: `interrupted: ${cmd} not started\n`,
      timedOut: false,
      interrupted: true,
    };
  }
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
  }).spawn();
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const readers = [child.stdout.getReader(), child.stderr.getReader()] as const;
  const reads = Promise.all([collect(readers[0], out), collect(readers[1], err)]);
  const timers: ReturnType<typeof setTimeout>[] = [];
  let timedOut = false;
  let interrupted = false;
  let exited = false;
  void child.status.then(() => (exited = true));
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* it ended just now */ }
  };
  const onAbort = () => {
    if (exited) return; // it ended on its own: its own code stands
    interrupted = true;
    kill();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const first = await Promise.race([child.status, sleep(options.deadlineMs, timers)]);
    if (first === "late" && !interrupted) {
      timedOut = true;
      kill();
    }
    const status = await child.status;
    // Ctrl-C: give a grandchild that holds the pipes 1 s, not the whole grace.
    const grace = Math.min(options.graceMs ?? 5_000, interrupted ? 1_000 : Infinity);
    if ((await Promise.race([reads, sleep(grace, timers)])) === "late") {
      // The child is gone but a copy of its pipes lives on (an orphaned grandchild).
      await Promise.allSettled(readers.map((r) => r.cancel()));
      err.push(
        new TextEncoder().encode(
          `\n${cmd}: its output pipes were still open ${grace} ms after it ended (an orphaned child holds them); reading stopped\n`,
        ),
      );
    }
    if (timedOut) {
      err.push(
        new TextEncoder().encode(
          `\ndeadline: ${cmd} ${
            args.join(" ")
          } did not end within ${options.deadlineMs} ms; killed\n`,
        ),
      );
    }
    if (interrupted) err.push(new TextEncoder().encode(`\ninterrupted: ${cmd} killed\n`));
    return {
      code: interrupted ? INTERRUPTED_EXIT_CODE : timedOut ? DEADLINE_EXIT_CODE : status.code,
      stdout: decode(out),
      stderr: decode(err),
      timedOut,
      interrupted,
    };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    for (const t of timers) clearTimeout(t);
  }
}
