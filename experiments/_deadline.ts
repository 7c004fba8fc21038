/**
 * A child run with a deadline (used by the lab and by the tests' child runs): the child is killed
 * when the deadline passes, and what it wrote until then is kept. If the child is gone but its
 * pipes stay open (an orphaned grandchild holds a copy), the reads are given up after a grace
 * period, so the caller always gets an answer.
 *
 * @module
 */

/** What {@link outputWithDeadline} returns. */
export interface DeadlineOutput {
  /** The exit code; {@link DEADLINE_EXIT_CODE} when the deadline killed it. */
  code: number;
  /** Everything read from stdout (up to the deadline and grace). */
  stdout: string;
  /** Everything read from stderr, and a last line naming the deadline when it passed. */
  stderr: string;
  /** True when the deadline passed and the child was killed. */
  timedOut: boolean;
}

/** The exit code reported for a child the deadline killed (as coreutils `timeout` does). */
export const DEADLINE_EXIT_CODE = 124;

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
 * Windows `TerminateProcess`) if it has not exited after `deadlineMs`. Throws only what
 * `spawn` throws (e.g. `Deno.errors.NotFound` for a missing program).
 */
export async function outputWithDeadline(
  cmd: string | URL,
  args: string[],
  options: {
    cwd?: string | URL;
    env?: Record<string, string>;
    deadlineMs: number;
    graceMs?: number;
  },
): Promise<DeadlineOutput> {
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
  try {
    const first = await Promise.race([child.status, sleep(options.deadlineMs, timers)]);
    if (first === "late") {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch { /* it ended just now */ }
    }
    const status = await child.status;
    const grace = options.graceMs ?? 5_000;
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
    return {
      code: timedOut ? DEADLINE_EXIT_CODE : status.code,
      stdout: decode(out),
      stderr: decode(err),
      timedOut,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
