/**
 * The lab's injected-thread heuristic (experiment 3): which threads of a debuggee the debugger put
 * there, read from the events it handled. A lab concept: it moved here from
 * `ffi/debug/debugger.ts`.
 *
 * @module
 */

import type { HandledEvent } from "../../mod.ts";
import { NTSTATUS } from "../../raw.ts";

/** A thread the debugger put into the debuggee. */
export interface InjectedThread {
  /** Its id. */
  tid: number;
  /** How: the attach break-in, a later break-in (`DebugBreakProcess`), or `CreateRemoteThread`. */
  how: "attach" | "break" | "remote-thread";
  /** Its start address (remote threads; the break-in threads' CREATE_THREAD start when reported). */
  startAddress?: string;
}

/** What {@link injectedThreads} and {@link attachBurst} read of an event. */
export type PhaseEvent = Pick<HandledEvent, "kind" | "tid" | "exception">;

const isBreakpoint = (e: PhaseEvent) =>
  e.kind === "EXCEPTION" && e.exception?.code === NTSTATUS.STATUS_BREAKPOINT;

/**
 * The attach burst: every event up to and including the first breakpoint (all of them when none
 * came). An attach first reports what already exists (CREATE_PROCESS, a CREATE_THREAD per running
 * thread, a LOAD_DLL per module), then the break-in thread the attach injected and its breakpoint.
 */
export function attachBurst<E extends PhaseEvent>(events: E[]): { burst: E[]; breaker?: number } {
  const first = events.findIndex(isBreakpoint);
  return first < 0
    ? { burst: events }
    : { burst: events.slice(0, first + 1), breaker: events[first]!.tid };
}

/**
 * Finds the threads a debugger injected: a thread that is created (CREATE_THREAD) and then raises
 * the breakpoint (0x80000003) is a break-in thread (`attach` for the first, `break` after), plus
 * the remote threads the debugger created. Threads reported by the attach's fake events (every
 * CREATE_PROCESS / CREATE_THREAD before the first breakpoint, except the breaking thread's own)
 * existed before the debugger came and are never counted, even if they break later.
 */
export function injectedThreads(
  events: HandledEvent[],
  remote: { tid: number; startAddress: string }[] = [],
): InjectedThread[] {
  const { burst, breaker } = attachBurst(events);
  const existing = new Set(
    burst.filter((e) =>
      (e.kind === "CREATE_THREAD" || e.kind === "CREATE_PROCESS") && e.tid !== breaker
    ).map((e) => e.tid),
  );
  const created = new Map<number, HandledEvent>();
  const out: InjectedThread[] = [];
  for (const e of events) {
    if (e.kind === "CREATE_THREAD" && !existing.has(e.tid)) created.set(e.tid, e);
    if (isBreakpoint(e) && created.has(e.tid) && !out.some((t) => t.tid === e.tid)) {
      const start = created.get(e.tid)!.startAddress;
      out.push({
        tid: e.tid,
        how: out.length === 0 ? "attach" : "break",
        ...(start && start !== "0x0" ? { startAddress: start } : {}),
      });
    }
  }
  for (const r of remote) {
    out.push({ tid: r.tid, how: "remote-thread", startAddress: r.startAddress });
  }
  return out;
}
