/**
 * Experiment 3's events in words, counted from the events themselves: one source for exp3's own
 * summary and the lab report's diagram. Pure: tested on Linux from recorded documents.
 *
 * @module
 */

import { formatHex, NTSTATUS, statusName } from "../../raw.ts";
import { attachBurst, type InjectedThread, type PhaseEvent } from "./injected_threads.ts";
import type { Exp3Run } from "./exp3_document.ts";

/**
 * A debug session's events grouped by what caused them. The groups are a partition: every event
 * is in exactly one, so their sizes add up to the number of events.
 */
export interface DebugPhases<E extends PhaseEvent = PhaseEvent> {
  /** The attach burst (up to and including the first breakpoint), every thread's events. */
  burst: E[];
  /** Of the burst, what already existed when the debugger came (not the break-in thread's). */
  existing: E[];
  /** Each injected thread (as {@link injectedThreads} found them) and all of its events. */
  injected: { thread: InjectedThread; events: E[] }[];
  /** Everything after the burst that is not an injected thread's: the client's own activity. */
  other: E[];
}

/**
 * Groups a session's events by phase, from the events themselves: the attach burst (what existed,
 * then the attach break-in thread), then each injected thread's events (the break-in threads of
 * `DebugBreakProcess`, the `CreateRemoteThread` threads), and the rest (the client's own).
 */
export function debugPhases<E extends PhaseEvent>(
  events: E[],
  injected: InjectedThread[],
): DebugPhases<E> {
  const { burst, breaker } = attachBurst(events);
  // An injected thread's events run from its CREATE_THREAD (after the burst, or the breaking
  // thread's in it) to its EXIT_THREAD: a thread id can be reused, so an earlier thread with the
  // same id keeps its own events.
  const threads = new Map(
    injected.map((t) => [t.tid, { thread: t, events: [] as E[], state: "before" }]),
  );
  const existing: E[] = [];
  const other: E[] = [];
  events.forEach((e, i) => {
    const own = threads.get(e.tid);
    if (
      own?.state === "before" && e.kind === "CREATE_THREAD" &&
      (i >= burst.length || e.tid === breaker)
    ) own.state = "live";
    if (own?.state === "live") {
      own.events.push(e);
      if (e.kind === "EXIT_THREAD") own.state = "done";
    } else if (i < burst.length) existing.push(e);
    else other.push(e);
  });
  return {
    burst,
    existing,
    injected: [...threads.values()].map(({ thread, events }) => ({ thread, events })),
    other,
  };
}

/** An event of an exp3 document. */
export type Exp3Event = NonNullable<Exp3Run["debugger"]>["events"][number];

/** The document's events grouped by what caused them (see {@link debugPhases}). */
export function exp3Phases(doc: Exp3Run): DebugPhases<Exp3Event> {
  return debugPhases(doc.debugger?.events ?? [], doc.debugger?.injectedThreads ?? []);
}

/** One event in words: its kind, and an exception's name. */
export function eventText(e: PhaseEvent): string {
  return e.exception ? `${e.kind} ${e.exception.name}` : e.kind;
}

const join = (parts: string[]) =>
  parts.length < 2 ? parts.join("") : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;

// Kinds in the order a session meets them.
const ORDER = [
  "CREATE_PROCESS",
  "CREATE_THREAD",
  "LOAD_DLL",
  "EXCEPTION",
  "OUTPUT_DEBUG_STRING",
  "UNLOAD_DLL",
  "EXIT_THREAD",
  "EXIT_PROCESS",
  "RIP",
];
const rank = (k: string) => (ORDER.includes(k) ? ORDER.indexOf(k) : ORDER.length);

function counts(events: PhaseEvent[]): [string, number][] {
  const m = new Map<string, number>();
  for (const e of events) m.set(e.kind, (m.get(e.kind) ?? 0) + 1);
  return [...m].sort((a, b) => rank(a[0]) - rank(b[0]));
}

/** How many events of each kind: `1 CREATE_PROCESS, 6 CREATE_THREAD, 25 LOAD_DLL and 1 EXCEPTION`. */
export function countsText(events: PhaseEvent[]): string {
  return join(counts(events).map(([kind, n]) => `${n} ${kind}`)) || "no event";
}

const NOUNS: Record<string, (n: number) => string> = {
  CREATE_PROCESS: () => "the process",
  CREATE_THREAD: (n) => `${n} thread${n === 1 ? "" : "s"}`,
  LOAD_DLL: (n) => `${n} module${n === 1 ? "" : "s"}`,
};

/** What an attach's fake events describe: `the process, 5 threads and 25 modules`. */
export function existingText(events: PhaseEvent[]): string {
  return join(counts(events).map(([kind, n]) => NOUNS[kind]?.(n) ?? `${n} ${kind}`)) ||
    "nothing";
}

/** The events in order, consecutive repeats folded: `CREATE_THREAD, EXCEPTION STATUS_BREAKPOINT (0x80000003), EXIT_THREAD`. */
export function sequenceText(events: PhaseEvent[]): string {
  const runs: [string, number][] = [];
  for (const e of events) {
    const t = eventText(e);
    const last = runs.at(-1);
    if (last?.[0] === t) last[1]++;
    else runs.push([t, 1]);
  }
  return runs.map(([t, n]) => (n > 1 ? `${n} ${t}` : t)).join(", ") || "no event";
}

/**
 * An exit code for a sentence: `0x0`, or with its NTSTATUS name when it is an error or warning
 * code (`0xC0000354 (STATUS_DEBUGGER_INACTIVE)`); `?` when unknown.
 */
export function exitCodeText(code: number | undefined): string {
  if (code === undefined) return "?";
  const hex = code >>> 0 >= 0x80000000 ? formatHex(code) : `0x${(code >>> 0).toString(16)}`;
  const name = code >>> 0 >= 0x80000000 ? statusName(code) : undefined;
  return name ? `${hex} (${name})` : hex;
}

/** What kill-on-exit ends the debuggee with: closing the debug object terminates it (ntoskrnl/DbgkpCloseObject.c). */
export const KILL_ON_EXIT_STATUS = NTSTATUS.STATUS_DEBUGGER_INACTIVE;
