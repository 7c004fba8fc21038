/**
 * Running the Windows Deno under Wine: its output streamed or captured without Wine's noise, a
 * deadline and a signal (Ctrl-C) that end the whole prefix, and the output pipes given up when a
 * process left behind holds them; every run ends the prefix's processes.
 *
 * @module
 */

import { DEADLINE_EXIT_CODE, INTERRUPTED_EXIT_CODE } from "../_deadline.ts";
import { ROOT, type WineDeno } from "./env.ts";
import { stopWineServer } from "./prefix.ts";

/** Lines Wine prints on every run that mean nothing for us. Anything else is shown. */
const WINE_NOISE = [
  /wine32 is missing/i,
  /it looks like wine32/i,
  /multiarch/i,
  /dpkg --add-architecture/i,
  /apt-get install wine32/i,
  /nodrv_CreateWindow/,
  /Make sure that your X server is running/,
  /systray/i,
  /rpcss/i,
  /wine: configuration in .* has been updated/,
  /^\s*$/,
];

/** True for a Wine stderr line that is known noise. */
export function isWineNoise(line: string): boolean {
  return WINE_NOISE.some((re) => re.test(line));
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  write: (line: string) => void,
  filter: boolean,
  signal: AbortSignal,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream(), { signal }).getReader();
  let rest = "";
  for (;;) {
    let chunk: ReadableStreamReadResult<string>;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (signal.aborted) break; // reading given up (see runUnderWine); keep what came
      throw e;
    }
    if (chunk.done) break;
    rest += chunk.value;
    const lines = rest.split(/\r?\n/);
    rest = lines.pop() ?? "";
    for (const l of lines) if (!filter || !isWineNoise(l)) write(l);
  }
  if (rest && (!filter || !isWineNoise(rest))) write(rest);
}

/** Options for {@link runUnderWine}. */
export interface RunOptions {
  /** Working directory (default: the repository root). */
  cwd?: string | URL;
  /** Collect stdout instead of passing it through. */
  captureStdout?: boolean;
  /** Collect stderr (Wine's noise already filtered) instead of passing it through. */
  captureStderr?: boolean;
  /** Extra environment. */
  env?: Record<string, string>;
  /**
   * Kill the run after this many ms (every process of the prefix, with `wineserver -k`); the
   * result then has exit code 124 and a last stderr line naming the deadline. Default: none.
   */
  deadlineMs?: number;
  /**
   * Ctrl-C: when it aborts, every process of the prefix is ended at once (as at the deadline) and
   * the result has exit code 130 and `interrupted`. An aborted signal starts nothing.
   */
  signal?: AbortSignal;
}

/** What {@link runUnderWine} returns. */
export interface WineRun {
  /** The Windows Deno's exit code; 124 at the deadline, 130 when interrupted. */
  code: number;
  /** Its stdout, when captured. */
  stdout: string;
  /** Its stderr without Wine's noise, when captured. */
  stderr: string;
  /** True when the signal ended the run. */
  interrupted: boolean;
}

/**
 * Runs the Windows Deno under Wine with `args`, streaming stderr without Wine's noise, and then
 * ends the prefix's processes and its wineserver, so no Wine process is left.
 */
export async function runUnderWine(
  wine: WineDeno,
  args: string[],
  options: RunOptions = {},
): Promise<WineRun> {
  const note = (line: string) => {
    if (options.captureStderr) err += line + "\n";
    else console.error(line);
  };
  let out = "";
  let err = "";
  if (options.signal?.aborted) {
    note(`interrupted: deno ${args.join(" ")} not started`);
    return { code: INTERRUPTED_EXIT_CODE, stdout: out, stderr: err, interrupted: true };
  }
  const child = new Deno.Command(wine.loader ?? "wine", {
    args: [wine.exe, ...args],
    cwd: options.cwd ?? ROOT,
    env: { ...wine.env, ...(options.env ?? {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ended: "deadline" | "interrupted" | undefined;
  let exited = false;
  void child.status.then(() => (exited = true));
  let stopping: Promise<void> | undefined;
  const end = (why: "deadline" | "interrupted") => {
    if (ended || exited) return;
    ended = why;
    try {
      child.kill("SIGKILL");
    } catch { /* it ended just now */ }
    // Its Windows children hold copies of the pipes: end every process of the prefix.
    stopping = stopWineServer(wine);
  };
  const deadline = options.deadlineMs === undefined
    ? undefined
    : setTimeout(() => end("deadline"), options.deadlineMs);
  const onAbort = () => end("interrupted");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const enc = new TextEncoder();
  const writeOut = options.captureStdout
    ? (l: string) => void (out += l + "\n")
    : (l: string) => Deno.stdout.writeSync(enc.encode(l + "\n"));
  try {
    const giveUp = new AbortController();
    const pumps = Promise.all([
      pump(child.stdout, writeOut, false, giveUp.signal),
      pump(
        child.stderr,
        options.captureStderr
          ? (l) => void (err += l + "\n")
          : (l) => Deno.stderr.writeSync(enc.encode(l + "\n")),
        true,
        giveUp.signal,
      ),
    ]);
    const { code } = await child.status;
    // The Windows Deno has exited, but a process it left in the prefix (a `conhost.exe` that
    // outlived a console child, a child that inherited stdio) may hold copies of the pipes: after
    // a grace period end the prefix, which closes them; what was written stays readable.
    if (!(await settlesWithin(pumps, PIPE_GRACE_MS))) {
      note(
        `[wine] deno ${args[0] ?? ""} ended, but a process of the prefix held its output pipes ` +
          `${PIPE_GRACE_MS} ms later; ending the prefix`,
      );
      stopping ??= stopWineServer(wine);
      await stopping;
      if (!(await settlesWithin(pumps, PIPE_GRACE_MS))) {
        // Not a process of the prefix, then: stop reading rather than wait for ever.
        giveUp.abort();
        note(`[wine] the pipes stayed open after the prefix ended; reading stopped`);
      }
    }
    await pumps;
    await stopping;
    await stopWineServer(wine);
    if (ended === "deadline") {
      note(`deadline: deno ${args.join(" ")} did not end within ${options.deadlineMs} ms; killed`);
      return { code: DEADLINE_EXIT_CODE, stdout: out, stderr: err, interrupted: false };
    }
    if (ended === "interrupted") {
      note(`interrupted: deno ${args.join(" ")} and every process of the Wine prefix ended`);
      return { code: INTERRUPTED_EXIT_CODE, stdout: out, stderr: err, interrupted: true };
    }
    return { code, stdout: out, stderr: err, interrupted: false };
  } finally {
    clearTimeout(deadline);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** How long {@link runUnderWine} waits for the output pipes to close after the Windows Deno exits. */
export const PIPE_GRACE_MS = 5_000;

/** True when `p` settles within `ms` (it keeps running either way). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
