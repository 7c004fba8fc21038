/*
 * The ntdll declarations bench_c.c needs (x64 layouts): the PORT_MESSAGE header, the legacy port
 * views, the ALPC port and message attributes, the legacy LPC calls (linked from ntdll) and the ALPC
 * calls (looked up at run time, so that an ntdll without them, Wine 8.0's, is reported).
 */
#ifndef BENCH_NTDLL_H
#define BENCH_NTDLL_H
#include <windows.h>
#include <winternl.h>

typedef struct {
  USHORT DataLength, TotalLength, Type, DataInfoOffset;
  CLIENT_ID ClientId;
  ULONG MessageId;
  union {
    SIZE_T ClientViewSize;
    ULONG CallbackId;
  };
} PORT_MSG; /* PORT_MESSAGE, 40 bytes on x64 */

typedef struct {
  ULONG Length;
  HANDLE SectionHandle;
  ULONG SectionOffset;
  SIZE_T ViewSize;
  PVOID ViewBase, ViewRemoteBase;
} PORT_VIEW_;
typedef struct {
  ULONG Length;
  SIZE_T ViewSize;
  PVOID ViewBase;
} REMOTE_PORT_VIEW_;

typedef struct {
  ULONG Flags;
  SECURITY_QUALITY_OF_SERVICE SecurityQos;
  SIZE_T MaxMessageLength, MemoryBandwidth, MaxPoolUsage, MaxSectionSize, MaxViewSize,
      MaxTotalSectionSize;
  ULONG DupObjectTypes, Reserved;
} ALPC_PORT_ATTRS;
typedef struct {
  ULONG AllocatedAttributes, ValidAttributes;
} ALPC_MSG_ATTRS;
typedef struct {
  ULONG Flags;
  HANDLE SectionHandle;
  PVOID ViewBase;
  SIZE_T ViewSize;
} ALPC_VIEW_ATTR;

#define LPC_REQUEST 1
#define LPC_PORT_CLOSED 5
#define LPC_CLIENT_DIED 6
#define LPC_CONNECTION_REQUEST 10
#define ATTR_SECURITY 0x80000000u
#define ATTR_VIEW 0x40000000u
#define ATTR_CONTEXT 0x20000000u
#define ATTR_TOKEN 0x08000000u
#define MSGFLG_RELEASE 0x10000u
#define MSGFLG_SYNC 0x20000u
#define PORFLG_ALLOW_IMPERSONATION 0x10000u

NTSTATUS NTAPI NtCreatePort(PHANDLE, POBJECT_ATTRIBUTES, ULONG, ULONG, ULONG);
NTSTATUS NTAPI NtConnectPort(PHANDLE, PUNICODE_STRING, PSECURITY_QUALITY_OF_SERVICE, PORT_VIEW_ *,
                             REMOTE_PORT_VIEW_ *, PULONG, PVOID, PULONG);
NTSTATUS NTAPI NtAcceptConnectPort(PHANDLE, PVOID, PORT_MSG *, BOOLEAN, PORT_VIEW_ *,
                                   REMOTE_PORT_VIEW_ *);
NTSTATUS NTAPI NtCompleteConnectPort(HANDLE);
NTSTATUS NTAPI NtReplyWaitReceivePortEx(HANDLE, PVOID *, PORT_MSG *, PORT_MSG *, PLARGE_INTEGER);
NTSTATUS NTAPI NtRequestWaitReplyPort(HANDLE, PORT_MSG *, PORT_MSG *);
/* The ALPC calls are looked up at run time: an ntdll without them (Wine 8.0) is reported, not a
 * crash at the first call. */
typedef NTSTATUS(NTAPI *NtAlpcCreatePort_t)(PHANDLE, POBJECT_ATTRIBUTES, ALPC_PORT_ATTRS *);
typedef NTSTATUS(NTAPI *NtAlpcConnectPort_t)(PHANDLE, PUNICODE_STRING, POBJECT_ATTRIBUTES,
                                           ALPC_PORT_ATTRS *, ULONG, PSID, PORT_MSG *, PSIZE_T,
                                           ALPC_MSG_ATTRS *, ALPC_MSG_ATTRS *, PLARGE_INTEGER);
typedef NTSTATUS(NTAPI *NtAlpcAcceptConnectPort_t)(PHANDLE, HANDLE, ULONG, POBJECT_ATTRIBUTES,
                                                 ALPC_PORT_ATTRS *, PVOID, PORT_MSG *,
                                                 ALPC_MSG_ATTRS *, BOOLEAN);
typedef NTSTATUS(NTAPI *NtAlpcSendWaitReceivePort_t)(HANDLE, ULONG, PORT_MSG *, ALPC_MSG_ATTRS *,
                                                   PORT_MSG *, PSIZE_T, ALPC_MSG_ATTRS *,
                                                   PLARGE_INTEGER);
typedef NTSTATUS(NTAPI *NtAlpcCreatePortSection_t)(HANDLE, ULONG, HANDLE, SIZE_T, PHANDLE, PSIZE_T);
typedef NTSTATUS(NTAPI *NtAlpcCreateSectionView_t)(HANDLE, ULONG, ALPC_VIEW_ATTR *);
typedef NTSTATUS(NTAPI *NtAlpcDeleteSectionView_t)(HANDLE, ULONG, PVOID);
typedef NTSTATUS(NTAPI *AlpcInitializeMessageAttribute_t)(ULONG, ALPC_MSG_ATTRS *, SIZE_T,
                                                          PSIZE_T);
typedef PVOID(NTAPI *AlpcGetMessageAttribute_t)(ALPC_MSG_ATTRS *, ULONG);
static NtAlpcCreatePort_t NtAlpcCreatePort;
static NtAlpcConnectPort_t NtAlpcConnectPort;
static NtAlpcAcceptConnectPort_t NtAlpcAcceptConnectPort;
static NtAlpcSendWaitReceivePort_t NtAlpcSendWaitReceivePort;
static NtAlpcCreatePortSection_t NtAlpcCreatePortSection;
static NtAlpcCreateSectionView_t NtAlpcCreateSectionView;
static NtAlpcDeleteSectionView_t NtAlpcDeleteSectionView;
static AlpcInitializeMessageAttribute_t AlpcInitializeMessageAttribute;
static AlpcGetMessageAttribute_t AlpcGetMessageAttribute;

/* Looks up one ntdll export into `slot`; prints the failure line and exits when it is missing. */
#define RESOLVE(fn)                                                                              \
  do {                                                                                           \
    fn = (fn##_t)(void *)GetProcAddress(ntdll, #fn);                                             \
    if (!fn) {                                                                                   \
      printf("{\"ok\":false,\"call\":\"%s\",\"missing\":true}\n", #fn);                          \
      return 1;                                                                                  \
    }                                                                                            \
  } while (0)

#endif
