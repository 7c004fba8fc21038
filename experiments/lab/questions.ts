/**
 * The lab's three questions and, for each, the reference mechanism: what the answer says when this
 * run could not observe it (clearly marked "not observed here"), and what the observed answers
 * build on. The evidence comes from the experiments (their `*_report.ts`).
 *
 * @module
 */

import type { Answer } from "./report_schema.ts";

/** The three questions. */
export const QUESTIONS = {
  q1: "How can you see what LPC objects are created in the system?",
  q2:
    "The server received a single connection request from the client: how did the system manage to send the LPC_CLIENT_DIED notification too?",
  q3:
    "Why does LPC need separate port objects for messages between user-mode processes, instead of the mechanism used for dispatching exceptions?",
} as const;

/** The reference answers (the mechanism as documented), one per question. */
export const REFERENCE = {
  q1:
    'Named connection ports are objects in the object manager namespace (type "ALPC Port" since Vista; "Port"/"WaitablePort" on NT 4 to 2003), ' +
    "so walking the namespace from \\ with NtOpenDirectoryObject/NtQueryDirectoryObject (what WinObj does) lists them, mostly in \\RPC Control, \\Windows and \\Sessions\\<n>\\Windows. " +
    "Unnamed communication ports exist only as handles: the system handle table (NtQuerySystemInformation(SystemExtendedHandleInformation)) shows them, and duplicating a port handle and asking its name maps named ports to the process serving them (NtObjectManager's Get-NtAlpcServer).",
  q2:
    "The client does not send it: when a thread exits, the kernel's PspExitThread (running in that thread) posts an LPC_CLIENT_DIED datagram " +
    "to each port it holds a reference to for that thread: the termination ports registered with NtRegisterThreadTerminatePort, and the process's exception port " +
    "(set with NtSetInformationProcess(ProcessExceptionPort)); no new connection is needed. LPC_PORT_CLOSED comes when the client's port object is deleted, " +
    "possibly later: it carries ClientId {0, 0} and the connection's PortContext (which is how the server knows whose connection closed), " +
    "and its data is the CreateTime of whatever process was current at the deletion, not the client's.",
  q3:
    "Exception dispatch transfers control inside the faulting thread; its only cross-process legs (the debug port and the exception port) are themselves " +
    "built on LPC: the kernel sends LPC_EXCEPTION as an LPC request. Ports give what IPC between processes needs and exceptions cannot: a securable name checked at " +
    "connect, per-client connections with context, a kernel-stamped ClientId and impersonation, queues with MessageId request/reply matching, flow control, large data " +
    "by sections, and peer-death notices. Using the exception machinery instead would need SeTcbPrivilege, allow one listener per process (already csrss's), work in one " +
    "direction only, and block the faulting thread (the debug port freezes the whole process). " +
    "The same holds for ALPC, on which the legacy calls have been emulated since Vista (NtCreatePort makes an ALPC port flagged for LPC): " +
    "it keeps the port objects and the per-client connections, and adds message attributes beside each message (the security context, " +
    "the PortContext in a context attribute, views for large data, handles).",
} as const;

/** A question this run could not observe: the reference, marked so. */
export function notObservedAnswer(
  key: keyof typeof QUESTIONS,
  missing: string[],
): Answer {
  return {
    question: QUESTIONS[key],
    answer: `Not observed here. Reference: ${REFERENCE[key]}`,
    observed: false,
    evidence: [],
    missing,
  };
}
