/*
 * The C side of the transport benchmark (experiments/bench/bench.ts): the same work as the Deno
 * rows, with nothing in between but ntdll. One process: the server on its own thread, the client
 * on the main thread, as the Deno rows have it (a server Worker, the client on the main thread).
 *
 *   bench_c.exe <lpc|alpc> <inline|view> <bytes> <round-trips> <warm-up>
 *
 * inline: each request carries <bytes> of payload and the reply echoes them (the server copies the
 * request's payload into its reply). view: the client writes <bytes> into its view (LPC: the
 * connection's port view; ALPC: a view sent with each message), the request carries the length,
 * the server copies that many bytes out of the view and replies with the length (ALPC: then
 * deletes the view it received, as the toolkit's server does).
 *
 * Prints one JSON line: {"ok":true,"ns":<per round trip>,...} or {"ok":false,"call":..,"status":..}.
 * Built with x86_64-w64-mingw32-gcc (Linux) or MinGW gcc (Windows): gcc -O2 -o bench_c.exe
 * bench_c.c -lntdll. The server's receive attributes are the toolkit server's default (security,
 * view, context, token), so that the kernel does the same work for both.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_ntdll.h"

static int g_alpc, g_view;
static SIZE_T g_bytes, g_max;
static WCHAR g_name[128];
static HANDLE g_ready;
static volatile NTSTATUS g_server_status;
static volatile const char *g_server_call = "";
static unsigned char *g_sink;

static void fail(const char *call, NTSTATUS status) {
  printf("{\"ok\":false,\"call\":\"%s\",\"status\":\"0x%08lX\"}\n", call, (unsigned long)status);
  fflush(stdout);
  ExitProcess(1);
}

static void server_fail(const char *call, NTSTATUS status) {
  g_server_call = call;
  g_server_status = status;
  SetEvent(g_ready);
}

static void name_attributes(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us) {
  RtlInitUnicodeString(us, g_name);
  InitializeObjectAttributes(oa, us, 0, NULL, NULL);
}

/* The LPC server: NtReplyWaitReceivePortEx with the pending reply, as LpcServer.step does. */
static DWORD WINAPI lpc_server(LPVOID unused) {
  (void)unused;
  OBJECT_ATTRIBUTES oa;
  UNICODE_STRING us;
  HANDLE port, comm = NULL;
  name_attributes(&oa, &us);
  NTSTATUS s = NtCreatePort(&port, &oa, 0x80, (ULONG)g_max, 0);
  if (s < 0) return server_fail("NtCreatePort", s), 0;
  SetEvent(g_ready);
  unsigned char *rbuf = calloc(1, 0x2b0), *pbuf = calloc(1, 0x2b0);
  PORT_MSG *rm = (PORT_MSG *)rbuf, *pm = (PORT_MSG *)pbuf, *reply = NULL;
  PVOID view = NULL;
  for (;;) {
    PVOID context = NULL;
    s = NtReplyWaitReceivePortEx(port, &context, reply, rm, NULL);
    reply = NULL;
    if (s < 0) break;
    USHORT type = rm->Type & 0xff;
    if (type == LPC_CONNECTION_REQUEST) {
      REMOTE_PORT_VIEW_ client = {sizeof client, 0, NULL};
      s = NtAcceptConnectPort(&comm, (PVOID)1, rm, TRUE, NULL, &client);
      if (s < 0) break;
      view = client.ViewBase;
      NtCompleteConnectPort(comm);
    } else if (type == LPC_REQUEST) {
      memcpy(pbuf, rbuf, sizeof(PORT_MSG)); /* the request's header: MessageId, ClientId */
      USHORT n;
      if (g_view) {
        memcpy(g_sink, view, *(ULONG *)(rbuf + 40)); /* read the client's bytes */
        n = 8;
        memcpy(pbuf + 40, rbuf + 40, 8);
      } else {
        n = rm->DataLength;
        memcpy(pbuf + 40, rbuf + 40, n);
      }
      pm->DataLength = n;
      pm->TotalLength = (USHORT)(40 + n);
      pm->DataInfoOffset = 0;
      reply = pm;
    } else if (type == LPC_PORT_CLOSED || type == LPC_CLIENT_DIED) {
      break;
    }
  }
  if (comm) CloseHandle(comm);
  CloseHandle(port);
  return 0;
}

static void alpc_port_attributes(ALPC_PORT_ATTRS *pa) {
  memset(pa, 0, sizeof *pa);
  pa->Flags = PORFLG_ALLOW_IMPERSONATION;
  pa->SecurityQos.Length = sizeof pa->SecurityQos;
  pa->SecurityQos.ImpersonationLevel = SecurityImpersonation;
  pa->SecurityQos.ContextTrackingMode = SECURITY_DYNAMIC_TRACKING; /* as the toolkit's default */
  pa->MaxMessageLength = g_max;
  pa->MaxPoolUsage = 0x4000;
  pa->MaxSectionSize = pa->MaxViewSize = pa->MaxTotalSectionSize = 0x10000000;
}

static ALPC_MSG_ATTRS *new_attributes(ULONG flags) {
  SIZE_T need = 0;
  AlpcInitializeMessageAttribute(flags, NULL, 0, &need);
  ALPC_MSG_ATTRS *a = calloc(1, need);
  AlpcInitializeMessageAttribute(flags, a, need, &need);
  return a;
}

/* The ALPC server: receive with attributes, reply with RELEASE_MESSAGE, as AlpcServer.step does. */
static DWORD WINAPI alpc_server(LPVOID unused) {
  (void)unused;
  OBJECT_ATTRIBUTES oa;
  UNICODE_STRING us;
  ALPC_PORT_ATTRS pa;
  HANDLE port, comm = NULL;
  name_attributes(&oa, &us);
  alpc_port_attributes(&pa);
  NTSTATUS s = NtAlpcCreatePort(&port, &oa, &pa);
  if (s < 0) return server_fail("NtAlpcCreatePort", s), 0;
  SetEvent(g_ready);
  unsigned char *rbuf = calloc(1, g_max), *pbuf = calloc(1, g_max);
  PORT_MSG *rm = (PORT_MSG *)rbuf, *pm = (PORT_MSG *)pbuf;
  ALPC_MSG_ATTRS *attrs = new_attributes(ATTR_SECURITY | ATTR_VIEW | ATTR_CONTEXT | ATTR_TOKEN);
  SIZE_T attrs_size = 0;
  AlpcInitializeMessageAttribute(ATTR_SECURITY | ATTR_VIEW | ATTR_CONTEXT | ATTR_TOKEN, NULL, 0,
                                 &attrs_size);
  for (;;) {
    SIZE_T length = g_max;
    memset(rbuf, 0, 40);
    memset((unsigned char *)attrs + 4, 0, attrs_size - 4); /* ValidAttributes and the rest */
    s = NtAlpcSendWaitReceivePort(port, 0, NULL, NULL, rm, &length, attrs, NULL);
    if (s < 0) break;
    USHORT type = rm->Type & 0xff;
    if (type == LPC_CONNECTION_REQUEST) {
      s = NtAlpcAcceptConnectPort(&comm, port, 0, NULL, &pa, (PVOID)1, rm, NULL, TRUE);
      if (s < 0) break;
    } else if (type == LPC_REQUEST) {
      USHORT n = rm->DataLength;
      if (g_view && (attrs->ValidAttributes & ATTR_VIEW)) {
        ALPC_VIEW_ATTR *v = AlpcGetMessageAttribute(attrs, ATTR_VIEW);
        memcpy(g_sink, v->ViewBase, *(ULONG *)(rbuf + 40));
        n = 8;
        memset(pbuf, 0, 40);
        memcpy(pbuf + 40, rbuf + 40, 8);
        pm->DataLength = n;
        pm->TotalLength = (USHORT)(40 + n);
        pm->ClientId = rm->ClientId;
        pm->MessageId = rm->MessageId;
        pm->CallbackId = rm->CallbackId;
        NtAlpcSendWaitReceivePort(port, MSGFLG_RELEASE, pm, NULL, NULL, NULL, NULL, NULL);
        NtAlpcDeleteSectionView(port, 0, v->ViewBase);
        continue;
      }
      memset(pbuf, 0, 40);
      memcpy(pbuf + 40, rbuf + 40, n);
      pm->DataLength = n;
      pm->TotalLength = (USHORT)(40 + n);
      pm->ClientId = rm->ClientId;
      pm->MessageId = rm->MessageId;
      pm->CallbackId = rm->CallbackId;
      NtAlpcSendWaitReceivePort(port, MSGFLG_RELEASE, pm, NULL, NULL, NULL, NULL, NULL);
    } else if (type == LPC_PORT_CLOSED) {
      break;
    }
  }
  if (comm) CloseHandle(comm);
  CloseHandle(port);
  return 0;
}

static LONGLONG now_ns(void) {
  static LARGE_INTEGER f;
  LARGE_INTEGER c;
  if (!f.QuadPart) QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (LONGLONG)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: bench_c <lpc|alpc> <inline|view> <bytes> <round-trips> <warm-up>\n");
    return 2;
  }
  g_alpc = strcmp(argv[1], "alpc") == 0;
  if (g_alpc) {
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    RESOLVE(NtAlpcCreatePort);
    RESOLVE(NtAlpcConnectPort);
    RESOLVE(NtAlpcAcceptConnectPort);
    RESOLVE(NtAlpcSendWaitReceivePort);
    RESOLVE(NtAlpcCreatePortSection);
    RESOLVE(NtAlpcCreateSectionView);
    RESOLVE(NtAlpcDeleteSectionView);
    RESOLVE(AlpcInitializeMessageAttribute);
    RESOLVE(AlpcGetMessageAttribute);
  }
  g_view = strcmp(argv[2], "view") == 0;
  g_bytes = (SIZE_T)_strtoui64(argv[3], NULL, 10);
  long trips = atol(argv[4]), warm = atol(argv[5]);
  g_max = g_alpc ? (g_view || g_bytes + 40 <= 0x1000 ? 0x1000 : 0xffff) : 648;
  swprintf(g_name, 128, L"\\RPC Control\\deno-lpc-bench-c-%lu", GetCurrentProcessId());
  g_sink = malloc(g_view ? g_bytes : 16);
  g_ready = CreateEventW(NULL, FALSE, FALSE, NULL);
  HANDLE server = CreateThread(NULL, 0, g_alpc ? alpc_server : lpc_server, NULL, 0, NULL);
  WaitForSingleObject(g_ready, INFINITE);
  if (g_server_status < 0) fail((const char *)g_server_call, g_server_status);

  unsigned char *src = malloc(g_bytes ? g_bytes : 1);
  memset(src, 0x5a, g_bytes ? g_bytes : 1);
  unsigned char *mbuf = calloc(1, g_max + 40), *rbuf = calloc(1, g_max + 40);
  PORT_MSG *m = (PORT_MSG *)mbuf, *r = (PORT_MSG *)rbuf;
  USHORT n = (USHORT)(g_view ? 8 : g_bytes);
  UNICODE_STRING us;
  RtlInitUnicodeString(&us, g_name);
  HANDLE port;
  NTSTATUS s;
  unsigned char *view = NULL;
  ALPC_MSG_ATTRS *send_attrs = NULL;
  ALPC_VIEW_ATTR alpc_view = {0};
  if (!g_alpc) {
    SECURITY_QUALITY_OF_SERVICE qos = {sizeof qos, SecurityImpersonation, SECURITY_DYNAMIC_TRACKING,
                                       TRUE};
    PORT_VIEW_ pv = {sizeof pv, NULL, 0, 0, NULL, NULL};
    REMOTE_PORT_VIEW_ rv = {sizeof rv, 0, NULL};
    HANDLE section = NULL;
    if (g_view) {
      section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)g_bytes,
                                   NULL);
      if (!section) fail("CreateFileMappingW", (NTSTATUS)GetLastError());
      pv.SectionHandle = section;
      pv.ViewSize = g_bytes;
    }
    ULONG max = 0, info_len = 0;
    s = NtConnectPort(&port, &us, &qos, g_view ? &pv : NULL, &rv, &max, NULL, &info_len);
    if (section) CloseHandle(section);
    if (s < 0) fail("NtConnectPort", s);
    view = pv.ViewBase;
  } else {
    ALPC_PORT_ATTRS pa;
    alpc_port_attributes(&pa);
    s = NtAlpcConnectPort(&port, &us, NULL, &pa, MSGFLG_SYNC, NULL, NULL, NULL, NULL, NULL, NULL);
    if (s < 0) fail("NtAlpcConnectPort", s);
    if (g_view) {
      HANDLE section;
      SIZE_T actual;
      s = NtAlpcCreatePortSection(port, 0, NULL, g_bytes, &section, &actual);
      if (s < 0) fail("NtAlpcCreatePortSection", s);
      alpc_view.SectionHandle = section;
      alpc_view.ViewSize = g_bytes;
      s = NtAlpcCreateSectionView(port, 0, &alpc_view);
      if (s < 0) fail("NtAlpcCreateSectionView", s);
      view = alpc_view.ViewBase;
      send_attrs = new_attributes(ATTR_VIEW);
    }
  }
  LONGLONG t0 = 0;
  for (long i = 0; i < warm + trips; i++) {
    if (i == warm) t0 = now_ns();
    memset(mbuf, 0, 40);
    m->DataLength = n;
    m->TotalLength = (USHORT)(40 + n);
    if (g_view) {
      memcpy(view, src, g_bytes); /* write the data into the view */
      *(ULONG *)(mbuf + 40) = (ULONG)g_bytes;
    } else {
      memcpy(mbuf + 40, src, n);
    }
    if (!g_alpc) {
      s = NtRequestWaitReplyPort(port, m, r);
      if (s < 0) fail("NtRequestWaitReplyPort", s);
    } else {
      SIZE_T length = g_max;
      if (send_attrs) {
        send_attrs->ValidAttributes = ATTR_VIEW;
        *(ALPC_VIEW_ATTR *)AlpcGetMessageAttribute(send_attrs, ATTR_VIEW) = alpc_view;
      }
      s = NtAlpcSendWaitReceivePort(port, MSGFLG_SYNC, m, send_attrs, r, &length, NULL, NULL);
      if (s != 0) fail("NtAlpcSendWaitReceivePort", s);
    }
  }
  LONGLONG t1 = now_ns();
  CloseHandle(port); /* the server sees LPC_PORT_CLOSED and ends */
  WaitForSingleObject(server, 10000);
  printf("{\"ok\":true,\"transport\":\"%s\",\"kind\":\"%s\",\"bytes\":%llu,\"roundTrips\":%ld,"
         "\"ns\":%.1f}\n",
         argv[1], argv[2], (unsigned long long)g_bytes, trips, (double)(t1 - t0) / (double)trips);
  return 0;
}
