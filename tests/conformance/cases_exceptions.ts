/**
 * Conformance cases: exceptions. The process exception port (`NtSetInformationProcess` class 8)
 * and what the kernel sends through it: `LPC_CLIENT_DIED` for each thread, `LPC_EXCEPTION` and the
 * verdict rule, `LPC_ERROR_EVENT` (hard errors), `LPC_UNREGISTER_PROCESS` to a replaced port. Each
 * case cites the Windows 11 kernel functions it is read from.
 *
 * @module
 */

import { LAYOUTS } from "../../ffi/layouts.ts";
import { KERNEL_MESSAGE_LENGTH, LpcMessageType as T } from "../../ffi/port_message.ts";
import { NTSTATUS } from "../../ffi/status.ts";
import { arg } from "./types.ts";
import type { Case, Json, Kernel, Process, RaiseOutcome, Thread } from "./types.ts";
import { HEADER, hex, readUint, replyTo, st, u64 } from "./_util.ts";
import {
  byTid,
  collect,
  connected,
  CTX,
  diedOf,
  fresh,
  headerOf,
  listen,
  receive,
  type Received,
} from "./_scenario.ts";

/** `PROCESSINFOCLASS` ProcessExceptionPort. */
const PROCESS_EXCEPTION_PORT = 8;
/** The only process access `NtSetInformationProcess` class 8 asks for (NtSetInformationProcess.c: 0x800). */
const PROCESS_SUSPEND_RESUME = 0x800;
const PEP = LAYOUTS.PROCESS_EXCEPTION_PORT;
const DBGKM = LAYOUTS.DBGKM_APIMSG.offsets;
const ER = LAYOUTS.EXCEPTION_RECORD.offsets;

/**
 * The exception port's `LPC_EXCEPTION` lengths. DbgkForwardException.c writes the literal 0x800D000A8
 * (DataLength 0xA8, TotalLength 0xD0), whatever `sizeof(DBGKM_APIMSG)` (LAYOUTS: 0x110) says.
 */
const EXCEPTION_TOTAL_LENGTH = KERNEL_MESSAGE_LENGTH.LPC_EXCEPTION;
const EXCEPTION_DATA_LENGTH = EXCEPTION_TOTAL_LENGTH - HEADER;

/**
 * The x64 `LPC_ERROR_EVENT` (hard error) message, as ExpRaiseHardError.c builds it (E2): the literal
 * 7340104 = DataLength 0x48 / TotalLength 0x70, Type 9, then Status@40, ErrorTime@48,
 * ValidResponseOptions@56, Response@60, NumberOfParameters@64, UnicodeStringParameterMask@68.
 */
const HARDERROR = LAYOUTS.HARDERROR_MSG;
/** `HARDERROR_RESPONSE_OPTION` OptionOk (what `Thread.hardError` passes). */
const OPTION_OK = 1;
/** `HARDERROR_OVERRIDE_ERRORMODE`: ExpRaiseHardError.c asks the port whatever the process's hard error mode. */
const OVERRIDE_ERRORMODE = 0x10000000;
/** `STATUS_DLL_NOT_FOUND`, an arbitrary hard error status. */
const HARD_STATUS = 0xC0000135;
/** The lab-style exception code raised in these cases. */
const CODE = 0xE0C0FFEE;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sets `port` (a handle name of `t`'s process; null: a NULL handle) as the exception port of the
 * process handle `process`: the 16-byte form with `flags`, or the 8-byte form when `flags` is null.
 * `length` overrides the length passed. A fresh buffer each time: the 16-byte form is written back.
 */
async function setPort(
  t: Thread,
  process: string,
  port: string | null,
  flags: number | null,
  length?: number,
): Promise<{ status: string; buffer: string }> {
  const handle = port === null ? 0n : t.handleValue(port);
  const bytes = flags === null ? u64(handle) : u64(handle, BigInt(flags));
  const buffer = fresh("epi");
  const s = await t.call(
    "NtSetInformationProcess",
    arg.h(process),
    PROCESS_EXCEPTION_PORT,
    arg.buf(buffer, bytes),
    length ?? bytes.length,
  );
  return { status: st(s), buffer };
}

/**
 * A server thread (SYSTEM) with connection port `ep` (created before it became SYSTEM), a client
 * process opened as `cproc`, and `ep` set as its exception port (16-byte form, no state flags).
 */
async function withExceptionPort(
  k: Kernel,
  label: string,
  maxMessageLength = 0x200,
): Promise<{ server: Thread; client: Process }> {
  const server = await k.self.thread();
  await listen(k, server, label, "ep", maxMessageLength);
  await server.becomeSystem();
  const client = await k.spawn();
  const o = await server.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
  if (o !== NTSTATUS.STATUS_SUCCESS) throw new Error(`setup: NtOpenProcess -> ${st(o)}`);
  const s = await setPort(server, "cproc", "ep", 0);
  if (s.status !== st(NTSTATUS.STATUS_SUCCESS)) {
    throw new Error(`setup: exception port -> ${s.status}`);
  }
  return { server, client };
}

/**
 * Receives until a message of `type` (low byte) comes or `ms` pass; other messages are skipped
 * (on Windows a client's loader threads may exit and send `LPC_CLIENT_DIED` at any time).
 */
async function receiveType(
  t: Thread,
  port: string,
  type: number,
  ms: number,
): Promise<Received | string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return st(NTSTATUS.STATUS_TIMEOUT);
    const r = await receive(t, port, { ms: left });
    if (r.status !== "STATUS_SUCCESS") return r.status;
    if ((r.header.type & 0xff) === type) return r;
  }
}

const u32At = (m: Received, at: number): number | null =>
  m.message.length >= at + 4 ? readUint(m.message, at, 4) as number : null;
const u64At = (m: Received, at: number): bigint | null =>
  m.message.length >= at + 8 ? readUint(m.message, at, 8) as bigint : null;

/** An `LPC_EXCEPTION` as a case reports it. */
function exceptionOf(m: Received): { [key: string]: Json } {
  const h = m.header;
  const record = DBGKM.ExceptionRecord;
  const n = u32At(m, record + ER.NumberParameters) ?? 0;
  const code = u32At(m, record + ER.ExceptionCode);
  const status = u32At(m, DBGKM.ReturnedStatus);
  return {
    type: h.type,
    dataLength: h.dataLength,
    totalLength: h.totalLength,
    pid: h.pid,
    // The raising thread's id: on Windows the driver raises on a native thread it starts for the
    // purpose (ffi/debug/raise_exception.ts), whose id the case does not know, so only "non-zero" is portable.
    tidNonZero: h.tid !== 0,
    messageIdNonZero: h.messageId !== 0,
    apiNumber: u32At(m, DBGKM.ApiNumber),
    returnedStatus: status === null ? null : st(status),
    code: code === null ? null : hex(code),
    numberParameters: n,
    parameters: Array.from({ length: Math.min(n, 15) }, (_, i) => {
      const v = u64At(m, record + ER.ExceptionInformation + 8 * i);
      return v === null ? null : hex(v);
    }),
    firstChance: u32At(m, DBGKM.FirstChance),
  };
}

/** A reply to a received message with the 32-bit field at `offset` set to `value` (null: unchanged). */
function replyWith(m: Received, offset: number, value: number | null): Uint8Array {
  const data = m.message.slice(HEADER);
  if (value !== null) new DataView(data.buffer).setUint32(offset - HEADER, value >>> 0, true);
  return replyTo(m.message, data);
}

/** A raise outcome as JSON (exit codes as unsigned hex). */
function outcomeOf(o: RaiseOutcome): { [key: string]: Json } {
  if (o.outcome === "exited") return { outcome: "exited", exitCode: hex(o.exitCode >>> 0) };
  return { outcome: o.outcome };
}

/**
 * Raises `CODE` on `t`, receives the `LPC_EXCEPTION` on `ep`, replies `verdict` (null: untouched).
 * Each raise gets a thread of its own, so that no raise depends on how an earlier one ended.
 */
async function raiseAndAnswer(
  server: Thread,
  t: Thread,
  verdict: number | null,
  parameters: bigint[] = [],
): Promise<{ message: Received | string; reply: string | null; outcome: { [key: string]: Json } }> {
  const raised = t.raise(CODE, parameters, 4500);
  const message = await receiveType(server, "ep", T.LPC_EXCEPTION, 2000);
  let reply: string | null = null;
  if (typeof message !== "string") {
    const bytes = replyWith(message, DBGKM.ReturnedStatus, verdict);
    reply = st(await server.call("NtReplyPort", arg.h("ep"), arg.buf(fresh("verdict"), bytes)));
  }
  return { message, reply, outcome: outcomeOf(await raised) };
}

/** An `LPC_ERROR_EVENT` as a case reports it. */
function hardErrorOf(m: Received): { [key: string]: Json } {
  const o = HARDERROR.offsets;
  const status = u32At(m, o.Status);
  return {
    ...headerOf(m.header),
    status: status === null ? null : hex(status),
    errorTimeNonZero: (u64At(m, o.ErrorTime) ?? 0n) !== 0n,
    validResponseOptions: u32At(m, o.ValidResponseOptions),
    numberOfParameters: u32At(m, o.NumberOfParameters),
    parameterMask: u32At(m, o.UnicodeStringParameterMask),
  };
}

/** The cases of this group. */
export const cases: Case[] = [
  // NtSetInformationProcess.c case 8: after the length and flag checks, `SeSinglePrivilegeCheck(SeTcbPrivilege, …)`
  // else 0xC0000061; SePrivilegeCheck.c checks the client (impersonation) token when there is one.
  {
    name:
      "Setting ProcessExceptionPort needs SeTcbPrivilege in the caller's effective token: STATUS_PRIVILEGE_NOT_HELD without it, success from a thread impersonating SYSTEM",
    sources: ["NtSetInformationProcess.c", "SePrivilegeCheck.c", "SeSinglePrivilegeCheck.c"],
    needs: ["process", "system"],
    async run(k) {
      const plain = await k.self.thread();
      await listen(k, plain, "ep-privilege", "ep");
      const client = await k.spawn();
      const opened = await plain.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const without = await setPort(plain, "cproc", "ep", 0);
      const system = await k.self.thread();
      await system.becomeSystem();
      const withTcb = await setPort(system, "cproc", "ep", 0);
      return {
        expected: {
          open: st(0),
          without: st(NTSTATUS.STATUS_PRIVILEGE_NOT_HELD),
          withTcb: st(NTSTATUS.STATUS_SUCCESS),
        },
        observed: { open: st(opened), without: without.status, withTcb: withTcb.status },
      };
    },
  },
  // NtSetInformationProcess.c case 8: `if (a4 == 8) … else if (a4 != 16) return 0xC0000004`, before the privilege check.
  {
    name:
      "ProcessExceptionPort takes 8 or 16 bytes: any other length gives STATUS_INFO_LENGTH_MISMATCH, checked before the privilege",
    sources: ["NtSetInformationProcess.c"],
    needs: ["process"],
    async run(k) {
      const plain = await k.self.thread();
      await listen(k, plain, "ep-length", "ep");
      const client = await k.spawn();
      const opened = await plain.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const hv = plain.handleValue("ep");
      const lengths = [4, 12, 24];
      const observed: string[] = [];
      for (const length of lengths) {
        const s = await plain.call(
          "NtSetInformationProcess",
          arg.h("cproc"),
          PROCESS_EXCEPTION_PORT,
          arg.buf(fresh("epl"), u64(hv, 0n, 0n)),
          length,
        );
        observed.push(st(s));
      }
      return {
        expected: {
          open: st(0),
          lengths: lengths.map(() => st(NTSTATUS.STATUS_INFO_LENGTH_MISMATCH)),
        },
        observed: { open: st(opened), lengths: observed },
      };
    },
  },
  // NtSetInformationProcess.c case 8, 16-byte form: `if ((flags & 0xFFFFFFF8) != 0) return 0xC000000D`, before the
  // privilege check.
  {
    name:
      "ProcessExceptionPort state flags above 7 give STATUS_INVALID_PARAMETER, checked before the privilege",
    sources: ["NtSetInformationProcess.c"],
    needs: ["process"],
    async run(k) {
      const plain = await k.self.thread();
      await listen(k, plain, "ep-flags", "ep");
      const client = await k.spawn();
      const opened = await plain.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const eight = await setPort(plain, "cproc", "ep", 8);
      const high = await setPort(plain, "cproc", "ep", 0x80000000);
      return {
        expected: {
          open: st(0),
          flags8: st(NTSTATUS.STATUS_INVALID_PARAMETER),
          flags80000000: st(NTSTATUS.STATUS_INVALID_PARAMETER),
        },
        observed: { open: st(opened), flags8: eight.status, flags80000000: high.status },
      };
    },
  },
  // NtSetInformationProcess.c case 8: ObReferenceObjectByHandle(port, 0, LpcPortObjectType, …) — access 0, any port kind;
  // a process handle is the wrong type (ObReferenceObjectByHandle.c), a NULL handle invalid.
  {
    name:
      "Any kind of port can be a process's exception port (connection, server communication, client), but not another object or a NULL handle",
    sources: ["NtSetInformationProcess.c", "ObReferenceObjectByHandle.c"],
    needs: ["process", "system"],
    async run(k) {
      const server = await k.self.thread();
      const name = await listen(k, server, "ep-kinds", "conn");
      const other = await k.self.thread();
      await connected(k, { server, name, client: other, context: CTX });
      await server.becomeSystem();
      const client = await k.spawn();
      const opened = await server.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const connection = await setPort(server, "cproc", "conn", 0);
      const serverPort = await setPort(server, "cproc", "srv", 0);
      const clientPort = await setPort(server, "cproc", "cli", 0);
      const process = await setPort(server, "cproc", "cproc", 0);
      const nul = await setPort(server, "cproc", null, 0);
      return {
        expected: {
          open: st(0),
          connection: st(0),
          serverPort: st(0),
          clientPort: st(0),
          process: st(NTSTATUS.STATUS_OBJECT_TYPE_MISMATCH),
          nullHandle: st(NTSTATUS.STATUS_INVALID_HANDLE),
        },
        observed: {
          open: st(opened),
          connection: connection.status,
          serverPort: serverPort.status,
          clientPort: clientPort.status,
          process: process.status,
          nullHandle: nul.status,
        },
      };
    },
  },
  // NtSetInformationProcess.c case 8: ObReferenceObjectByHandleWithTag(process, 0x800, PsProcessType, …).
  {
    name:
      "ProcessExceptionPort needs the process handle's PROCESS_SUSPEND_RESUME (0x800) access: a handle with only PROCESS_QUERY_LIMITED_INFORMATION gets STATUS_ACCESS_DENIED",
    sources: ["NtSetInformationProcess.c", "ObReferenceObjectByHandleWithTag.c"],
    needs: ["process", "system"],
    async run(k) {
      const server = await k.self.thread();
      await listen(k, server, "ep-access", "ep");
      await server.becomeSystem();
      const client = await k.spawn();
      const o1 = await server.openProcess(
        client,
        0x1000, /* PROCESS_QUERY_LIMITED_INFORMATION */
        "weak",
      );
      const o2 = await server.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const weak = await setPort(server, "weak", "ep", 0);
      const enough = await setPort(server, "cproc", "ep", 0);
      return {
        expected: {
          open: [st(0), st(0)],
          weak: st(NTSTATUS.STATUS_ACCESS_DENIED),
          suspendResume: st(0),
        },
        observed: { open: [st(o1), st(o2)], weak: weak.status, suspendResume: enough.status },
      };
    },
  },
  // E11. NtSetInformationProcess.c case 8: the old value (`v35`) is swapped out; if it was set, LpcRequestPort.c sends
  // the old port a datagram: DataLength 8 ("\b"), TotalLength 0x30 and Type 13 (852016), the data the process's
  // UniqueProcessId (`*((_QWORD *)Object + 136)`); AlpcpDispatchNewMessage.c stamps the setting thread's ClientId.
  {
    name:
      "Setting a second exception port replaces the first, and the old port receives LPC_UNREGISTER_PROCESS (Type 13, TotalLength 0x30) carrying the process id, from the setting thread",
    sources: ["NtSetInformationProcess.c", "LpcRequestPort.c", "AlpcpDispatchNewMessage.c"],
    needs: ["process", "system"],
    async run(k) {
      const server = await k.self.thread();
      await listen(k, server, "ep-old", "a");
      await listen(k, server, "ep-new", "b");
      await server.becomeSystem();
      const client = await k.spawn();
      const opened = await server.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const first = await setPort(server, "cproc", "a", 0);
      const second = await setPort(server, "cproc", "b", null);
      const unregister = (got: Received[]) =>
        got.filter((m) => (m.header.type & 0xff) === T.LPC_UNREGISTER_PROCESS).map((m) => ({
          ...headerOf(m.header),
          processId: m.message.length >= HEADER + 8 ? Number(readUint(m.message, HEADER, 8)) : null,
        }));
      const atA = unregister(await collect(server, "a", { ms: 800 }));
      const atB = unregister(await collect(server, "b", { ms: 500 }));
      return {
        expected: {
          open: st(0),
          first: st(0),
          second: st(0),
          oldPort: [{
            type: T.LPC_UNREGISTER_PROCESS,
            dataLength: 8,
            totalLength: 0x30,
            pid: k.self.pid,
            tid: server.tid,
            processId: client.pid,
          }],
          newPort: [],
        },
        observed: {
          open: st(opened),
          first: first.status,
          second: second.status,
          oldPort: atA,
          newPort: atB,
        },
      };
    },
  },
  // NtSetInformationProcess.c case 8, 16-byte form: inside the swap loop `*((_DWORD *)v5 + 2) = v34 & 7` writes the old
  // value's state flags into the caller's buffer at offset 8 (v5 is the caller's buffer); the new value is port | flags.
  {
    name:
      "The 16-byte ProcessExceptionPort form writes the previous value's state flags back into the caller's buffer at offset 8",
    sources: ["NtSetInformationProcess.c"],
    needs: ["process", "system"],
    async run(k) {
      const server = await k.self.thread();
      await listen(k, server, "ep-flags-a", "a");
      await listen(k, server, "ep-flags-b", "b");
      await server.becomeSystem();
      const client = await k.spawn();
      const opened = await server.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const first = await setPort(server, "cproc", "a", 5);
      const second = await setPort(server, "cproc", "b", 0);
      const back = readUint(await server.read(second.buffer), PEP.offsets.StateFlags, 4);
      return {
        expected: { open: st(0), first: st(0), second: st(0), previousFlags: 5 },
        observed: {
          open: st(opened),
          first: first.status,
          second: second.status,
          previousFlags: Number(back),
        },
      };
    },
  },
  // NtSetInformationProcess.c case 8, 8-byte form: `else if ((v34 & 7) != 0) { deref; goto LABEL_149 }` ->
  // 0xC000000D before the swap, so the old port stays and is not told.
  {
    name:
      "The 8-byte ProcessExceptionPort form is refused with STATUS_INVALID_PARAMETER while the current value has state flags, and the current port is kept (no LPC_UNREGISTER_PROCESS)",
    sources: ["NtSetInformationProcess.c"],
    needs: ["process", "system"],
    async run(k) {
      const server = await k.self.thread();
      await listen(k, server, "ep-eight-a", "a");
      await listen(k, server, "ep-eight-b", "b");
      await server.becomeSystem();
      const client = await k.spawn();
      const opened = await server.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const first = await setPort(server, "cproc", "a", 1);
      const eight = await setPort(server, "cproc", "b", null);
      const atA = await collect(server, "a", { ms: 800 });
      return {
        expected: {
          open: st(0),
          first: st(0),
          eightByte: st(NTSTATUS.STATUS_INVALID_PARAMETER),
          oldPortTold: false,
        },
        observed: {
          open: st(opened),
          first: first.status,
          eightByte: eight.status,
          oldPortTold: atA.some((m) => (m.header.type & 0xff) === T.LPC_UNREGISTER_PROCESS),
        },
      };
    },
  },
  // PspExitThread.c: for a thread with CrossThreadFlags & 2 (inserted), PsCaptureExceptionPort.c then LpcRequestPort.c
  // with the same 0x600300008 + CreateTime datagram; the connection port is its own target with PortContext 0
  // (AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c). Process termination runs PspExitThread for every thread.
  {
    name:
      "The exception port receives one LPC_CLIENT_DIED with PortContext 0 for every thread of the process: one that exits while the process lives, and each one when the process is killed",
    sources: [
      "PspExitThread.c",
      "PsCaptureExceptionPort.c",
      "LpcRequestPort.c",
      "AlpcpReferenceAndLockTargetPortsAndCommunicationInfo.c",
    ],
    needs: ["process", "system"],
    async run(k) {
      const { server, client } = await withExceptionPort(k, "ep-died");
      const t1 = await client.thread();
      const t2 = await client.thread();
      await t1.exit();
      await client.kill(7);
      const got = await collect(server, "ep", { ms: 1000, max: 64 });
      return {
        expected: {
          exited: [diedOf(t1, 0n)],
          main: [diedOf(client.main, 0n)],
          other: [diedOf(t2, 0n)],
        },
        observed: { exited: byTid(got, t1), main: byTid(got, client.main), other: byTid(got, t2) },
      };
    },
  },
  // PspExitThread.c sends the termination-port copies first (the InitialStack list), then the exception-port copy;
  // the first carries the server port's context (client port registered), the second the connection port's (0).
  {
    name:
      "A registered thread of a process whose exception port is the same connection port sends two LPC_CLIENT_DIED: the termination-port copy (the connection's PortContext) first, then the exception-port copy (PortContext 0)",
    sources: ["PspExitThread.c", "NtRegisterThreadTerminatePort.c", "PsCaptureExceptionPort.c"],
    needs: ["process", "system"],
    async run(k) {
      const server = await k.self.thread();
      const name = await listen(k, server, "ep-two-copies", "conn");
      const client = await k.spawn();
      const t = await client.thread();
      await connected(k, { server, name, client: t, context: CTX });
      const reg = await t.call("NtRegisterThreadTerminatePort", arg.h("cli"));
      await server.becomeSystem();
      const opened = await server.openProcess(client, PROCESS_SUSPEND_RESUME, "cproc");
      const set = await setPort(server, "cproc", "conn", 0);
      await t.exit();
      const got = await collect(server, "conn", { ms: 1000 });
      return {
        expected: {
          setup: [st(0), st(0), st(0)],
          died: [diedOf(t, CTX), diedOf(t, 0n)],
        },
        observed: { setup: [st(reg), st(opened), set.status], died: byTid(got, t) },
      };
    },
  },
  // E3. DbgkForwardException.c (exception port, second chance): header literal 0x800D000A8 then Type 7, ApiNumber@40 = 0,
  // KeCopyExceptionRecord to @48, FirstChance@200 = (second chance == 0) = 0; DbgkpSendApiMessageLpc.c sets
  // ReturnedStatus@44 = 259 and sends it synchronously (LpcSendWaitReceivePort.c). KiDispatchException.c: a handled
  // second-chance exception returns to the raiser.
  {
    name:
      "A second-chance exception reaches the exception port as LPC_EXCEPTION (Type 7, DataLength 0xA8, TotalLength 0xD0, ApiNumber 0, ReturnedStatus STATUS_PENDING, the code and parameters, FirstChance 0), and DBG_CONTINUE lets the raise return",
    sources: [
      "KiDispatchException.c",
      "DbgkForwardException.c",
      "DbgkpSendApiMessageLpc.c",
      "LpcSendWaitReceivePort.c",
    ],
    needs: ["process", "system"],
    async run(k) {
      const { server, client } = await withExceptionPort(k, "ep-exception", EXCEPTION_TOTAL_LENGTH);
      const params = [0x11n, 0x22n, 0x33n];
      const t = await client.thread();
      const r = await raiseAndAnswer(server, t, NTSTATUS.DBG_CONTINUE, params);
      return {
        expected: {
          message: {
            type: T.LPC_EXCEPTION,
            dataLength: EXCEPTION_DATA_LENGTH,
            totalLength: EXCEPTION_TOTAL_LENGTH,
            pid: client.pid,
            tidNonZero: true,
            messageIdNonZero: true,
            apiNumber: 0,
            returnedStatus: st(NTSTATUS.STATUS_PENDING),
            code: hex(CODE),
            numberParameters: params.length,
            parameters: params.map(hex),
            firstChance: 0,
          },
          reply: st(0),
          outcome: { outcome: "returned" },
        },
        observed: {
          message: typeof r.message === "string" ? r.message : exceptionOf(r.message),
          reply: r.reply,
          outcome: r.outcome,
        },
      };
    },
  },
  // E4. DbgkForwardException.c: `v12 = ReturnedStatus; if (v12 != 0x80010001) return v12 >= 0;` — any status >= 0 is
  // handled, the untouched 259 included; KiDispatchException.c then returns to the raiser without terminating.
  {
    name:
      "Any ReturnedStatus >= 0 other than DBG_EXCEPTION_NOT_HANDLED counts as handled: an untouched STATUS_PENDING, DBG_EXCEPTION_HANDLED, STATUS_SUCCESS and an informational status all let the raise return",
    sources: ["DbgkForwardException.c", "KiDispatchException.c"],
    needs: ["process", "system"],
    async run(k) {
      const { server, client } = await withExceptionPort(k, "ep-verdicts");
      const verdicts: [string, number | null][] = [
        ["untouched", null],
        ["DBG_EXCEPTION_HANDLED", NTSTATUS.DBG_EXCEPTION_HANDLED],
        ["STATUS_SUCCESS", NTSTATUS.STATUS_SUCCESS],
        ["0x40000001", 0x40000001],
      ];
      const observed: { [key: string]: Json } = {};
      const expected: { [key: string]: Json } = {};
      for (const [label, verdict] of verdicts) {
        const r = await raiseAndAnswer(server, await client.thread(), verdict);
        observed[label] = { reply: r.reply, ...r.outcome };
        expected[label] = { reply: st(0), outcome: "returned" };
      }
      return { expected, observed };
    },
  },
  // E4. DbgkForwardException.c: a negative ReturnedStatus other than DBG_EXCEPTION_NOT_HANDLED returns FALSE without
  // asking the error port (DbgkpSendErrorMessage.c is called only for 0x80010001); KiDispatchException.c, second chance
  // with no debug port and the exception port declining: ZwTerminateProcess(-1, ExceptionCode).
  {
    name:
      "An exception port reply with an error ReturnedStatus (not DBG_EXCEPTION_NOT_HANDLED) declines the exception: the process is terminated with the exception code",
    sources: ["DbgkForwardException.c", "KiDispatchException.c", "DbgkpSendErrorMessage.c"],
    needs: ["process", "system"],
    async run(k) {
      const { server, client } = await withExceptionPort(k, "ep-declined");
      const r = await raiseAndAnswer(server, await client.thread(), NTSTATUS.STATUS_UNSUCCESSFUL);
      const code = await client.exitCode();
      return {
        expected: {
          received: T.LPC_EXCEPTION,
          reply: st(0),
          outcome: { outcome: "exited", exitCode: hex(CODE) },
          exitCode: hex(CODE),
        },
        observed: {
          received: typeof r.message === "string" ? r.message : r.message.header.type & 0xff,
          reply: r.reply,
          outcome: r.outcome,
          exitCode: code === null ? null : hex(code >>> 0),
        },
      };
    },
  },
  // E15. AlpcpSendMessage.c: TotalLength 0xD0 > the port's MaxMessageLength -> 0xC000002F, so DbgkpSendApiMessageLpc.c
  // fails, DbgkForwardException.c returns FALSE (no error-port step: only a sent reply can say 0x80010001), and
  // KiDispatchException.c terminates the process with the exception code.
  {
    name:
      "An exception port whose MaxMessageLength is below 0xD0 never receives LPC_EXCEPTION, and the raising process is terminated with the exception code",
    sources: [
      "AlpcpSendMessage.c",
      "DbgkpSendApiMessageLpc.c",
      "DbgkForwardException.c",
      "KiDispatchException.c",
    ],
    needs: ["process", "system"],
    async run(k) {
      const { server, client } = await withExceptionPort(k, "ep-small", EXCEPTION_TOTAL_LENGTH - 1);
      const t = await client.thread();
      const outcome = outcomeOf(await t.raise(CODE, [], 4000));
      const got = await collect(server, "ep", { ms: 500, max: 64 });
      return {
        expected: {
          outcome: { outcome: "exited", exitCode: hex(CODE) },
          exceptionReceived: false,
        },
        observed: {
          outcome,
          exceptionReceived: got.some((m) => (m.header.type & 0xff) === T.LPC_EXCEPTION),
        },
      };
    },
  },
  // E2. ExpRaiseHardError.c: with the process's exception port (PsCaptureExceptionPort.c) and the override bit
  // 0x10000000 (or hard error mode bit 0), a synchronous request: 7340104 (0x48/0x70), Type 9, Status@40 = code &
  // 0xEFFFFFFF, ErrorTime@48 from KUSER_SHARED_DATA, ValidResponseOptions@56, NumberOfParameters@64, mask@68; the thread
  // waits in LpcSendWaitReceivePort.c. On the reply, NtRaiseHardError.c returns its status (success) and Response@60
  // (0..10 kept).
  {
    name:
      "A hard error of a process with an exception port is sent to it as LPC_ERROR_EVENT (Type 9, DataLength 0x48, TotalLength 0x70, Status@40 without the override bit, OptionOk@56), the thread waits for the reply, and Response ResponseReturnToCaller makes NtRaiseHardError return STATUS_SUCCESS with response 0",
    sources: [
      "NtRaiseHardError.c",
      "ExpRaiseHardError.c",
      "PsCaptureExceptionPort.c",
      "LpcSendWaitReceivePort.c",
    ],
    needs: ["process", "system"],
    async run(k) {
      const { server, client } = await withExceptionPort(k, "ep-hard-error");
      const raised = client.main.hardError((HARD_STATUS | OVERRIDE_ERRORMODE) >>> 0, 4500);
      const m = await receiveType(server, "ep", T.LPC_ERROR_EVENT, 2000);
      const meanwhile = await Promise.race([
        raised.then(() => "returned"),
        delay(300).then(() => "waiting"),
      ]);
      let reply: string | null = null;
      if (typeof m !== "string") {
        const bytes = replyWith(m, HARDERROR.offsets.Response, 0 /* ResponseReturnToCaller */);
        reply = st(await server.call("NtReplyPort", arg.h("ep"), arg.buf(fresh("hr"), bytes)));
      }
      const r = await raised;
      return {
        expected: {
          message: {
            type: T.LPC_ERROR_EVENT,
            dataLength: HARDERROR.size - HEADER,
            totalLength: HARDERROR.size,
            pid: client.pid,
            tid: client.main.tid,
            status: hex(HARD_STATUS),
            errorTimeNonZero: true,
            validResponseOptions: OPTION_OK,
            numberOfParameters: 0,
            parameterMask: 0,
          },
          beforeReply: "waiting",
          reply: st(0),
          result: { status: st(NTSTATUS.STATUS_SUCCESS), response: 0 },
        },
        observed: {
          message: typeof m === "string" ? m : hardErrorOf(m),
          beforeReply: meanwhile,
          reply,
          result: r === "blocked" ? "blocked" : { status: st(r.status), response: r.response },
        },
      };
    },
  },
  // ExpRaiseHardError.c after the reply: `*a7 = Response` for 0..10 (the switch keeps 5, 6, 0, 1, 2, 3, 4, 7, 8, 9, 10),
  // any larger Response becomes 0; the status returned is LpcSendWaitReceivePort's (success).
  {
    name:
      "NtRaiseHardError gives the caller the Response the exception port replied when it is 0..10 (ResponseOk 6, ResponseContinue 10), and ResponseReturnToCaller (0) for anything larger",
    sources: ["ExpRaiseHardError.c", "NtRaiseHardError.c"],
    needs: ["process", "system"],
    async run(k) {
      const { server, client } = await withExceptionPort(k, "ep-responses");
      const responses = [6, 10, 11, 0xFFFF];
      const observed: Json[] = [];
      for (const response of responses) {
        const raised = client.main.hardError((HARD_STATUS | OVERRIDE_ERRORMODE) >>> 0, 4500);
        const m = await receiveType(server, "ep", T.LPC_ERROR_EVENT, 2000);
        if (typeof m !== "string") {
          const bytes = replyWith(m, HARDERROR.offsets.Response, response);
          await server.call("NtReplyPort", arg.h("ep"), arg.buf(fresh("hr"), bytes));
        }
        const r = await raised;
        observed.push(r === "blocked" ? "blocked" : { status: st(r.status), response: r.response });
      }
      return {
        expected: [6, 10, 0, 0].map((response) => ({ status: st(0), response })),
        observed,
      };
    },
  },
];
