/**
 * Shared memory for the fake kernel's ALPC port sections (tests/fake_kernel_alpc.ts): one memory
 * object per section, mapped once per view, each mapping at an address of its own, as
 * MmMapViewOfSection gives the sender and the receiver of an ALPC view two mappings of one section
 * (AlpcpCreateView.c). On Linux a `memfd_create` file mapped with `mmap(MAP_SHARED)` (libc); on
 * Windows a page-file mapping (`CreateFileMappingW`, `MapViewOfFile`). Needs `--allow-ffi`, as
 * every test of the fake has. Offsets must be multiples of 64 KiB (the region granularity the fake
 * uses, and Windows' allocation granularity).
 *
 * @module
 */

/** One memory object, mapped any number of times. */
export interface SharedMemory {
  /** Its size in bytes. */
  readonly size: number;
  /** Maps `length` bytes at `offset`; returns the new mapping's address. */
  map(offset: number, length: number): bigint;
  /** Unmaps a mapping {@link map} returned (once). */
  unmap(address: bigint, length: number): void;
  /** Closes the object (its mappings stay valid until unmapped). */
  close(): void;
}

const LINUX = {
  // int memfd_create(const char *name, unsigned int flags);
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const WINDOWS = {
  // HANDLE CreateFileMappingW(HANDLE hFile, LPSECURITY_ATTRIBUTES lpAttributes, DWORD flProtect,
  //   DWORD dwMaximumSizeHigh, DWORD dwMaximumSizeLow, LPCWSTR lpName);
  CreateFileMappingW: {
    parameters: ["pointer", "pointer", "u32", "u32", "u32", "pointer"],
    result: "pointer",
  },
  // LPVOID MapViewOfFile(HANDLE hFileMappingObject, DWORD dwDesiredAccess,
  //   DWORD dwFileOffsetHigh, DWORD dwFileOffsetLow, SIZE_T dwNumberOfBytesToMap);
  MapViewOfFile: { parameters: ["pointer", "u32", "u32", "u32", "usize"], result: "pointer" },
  // BOOL UnmapViewOfFile(LPCVOID lpBaseAddress);
  UnmapViewOfFile: { parameters: ["pointer"], result: "i32" },
  // BOOL CloseHandle(HANDLE hObject);
  CloseHandle: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let linux: Deno.DynamicLibrary<typeof LINUX>["symbols"] | undefined;
let windows: Deno.DynamicLibrary<typeof WINDOWS>["symbols"] | undefined;

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const PROT_READ_WRITE = 3;
const MAP_SHARED = 1;
const PAGE_READWRITE = 4;
const FILE_MAP_READ_WRITE = 6; // FILE_MAP_WRITE | FILE_MAP_READ

function onLinux(size: number): SharedMemory {
  linux ??= Deno.dlopen("libc.so.6", LINUX).symbols;
  const c = linux;
  const fd = c.memfd_create(new TextEncoder().encode("fake-alpc-section\0"), 0);
  if (fd < 0) throw new Error("fake kernel: memfd_create failed");
  if (c.ftruncate(fd, BigInt(size)) !== 0) {
    c.close(fd);
    throw new Error("fake kernel: ftruncate failed");
  }
  let open = true;
  return {
    size,
    map(offset, length) {
      const p = c.mmap(null, BigInt(length), PROT_READ_WRITE, MAP_SHARED, fd, BigInt(offset));
      const a = BigInt(Deno.UnsafePointer.value(p));
      if (a === 0n || a === MAP_FAILED) throw new Error("fake kernel: mmap failed");
      return a;
    },
    unmap(address, length) {
      c.munmap(Deno.UnsafePointer.create(address), BigInt(length));
    },
    close() {
      if (open) c.close(fd);
      open = false;
    },
  };
}

function onWindows(size: number): SharedMemory {
  windows ??= Deno.dlopen("kernel32.dll", WINDOWS).symbols;
  const w = windows;
  const invalid = Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn); // INVALID_HANDLE_VALUE
  const h = w.CreateFileMappingW(invalid, null, PAGE_READWRITE, 0, size >>> 0, null);
  if (h === null) throw new Error("fake kernel: CreateFileMappingW failed");
  let open = true;
  return {
    size,
    map(offset, length) {
      const p = w.MapViewOfFile(h, FILE_MAP_READ_WRITE, 0, offset >>> 0, BigInt(length));
      if (p === null) throw new Error("fake kernel: MapViewOfFile failed");
      return BigInt(Deno.UnsafePointer.value(p));
    },
    unmap(address) {
      w.UnmapViewOfFile(Deno.UnsafePointer.create(address));
    },
    close() {
      if (open) w.CloseHandle(h);
      open = false;
    },
  };
}

/** A new memory object of `size` bytes (a multiple of 64 KiB, at most 64 MiB), zero-filled. */
export function createSharedMemory(size: number): SharedMemory {
  if (!Number.isSafeInteger(size) || size <= 0 || size % 0x10000 !== 0 || size > 0x400_0000) {
    throw new RangeError(`fake kernel: shared memory of ${size} bytes is not modelled`);
  }
  if (Deno.build.os === "linux") return onLinux(size);
  if (Deno.build.os === "windows") return onWindows(size);
  throw new Error(`fake kernel: ALPC views need shared memory, not modelled on ${Deno.build.os}`);
}
