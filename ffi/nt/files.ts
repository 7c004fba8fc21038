/**
 * Files through the native API (`NtCreateFile`, `NtReadFile`, `NtWriteFile`): the experiments read
 * "as whoever the calling thread is", so the access check is the kernel's, with the caller's (or
 * the impersonated client's) token. {@link NtFile} is the handle class; the free functions are
 * what it calls.
 *
 * @module
 */

import { checkWin32, handleCell, type HandleCloser, NtHandle } from "./handle.ts";
import { kernel32 } from "../kernel32.ts";
import { ntdll } from "../ntdll.ts";
import {
  OBJ_CASE_INSENSITIVE,
  OBJ_DONT_REPARSE,
  ObjectAttributes,
  type SecurityDescriptor,
} from "./object_attributes.ts";
import { check, NTSTATUS, toUnsigned } from "../status.ts";
import { decodeUtf16, encodeUtf16 } from "../strings.ts";
import { LAYOUTS } from "../layouts.ts";
import {
  querySecurityDescriptor,
  securityDescriptorToSddl,
  SecurityInformation,
} from "./security.ts";

const IOSB = LAYOUTS.IO_STATUS_BLOCK;
const RDB = LAYOUTS.REPARSE_DATA_BUFFER;

/** Access rights and flags for {@link openFile}. */
export const FileAccess = {
  FILE_READ_DATA: 0x1,
  FILE_LIST_DIRECTORY: 0x1,
  FILE_WRITE_DATA: 0x2,
  FILE_TRAVERSE: 0x20,
  FILE_READ_ATTRIBUTES: 0x80,
  FILE_WRITE_ATTRIBUTES: 0x100,
  DELETE: 0x10000,
  READ_CONTROL: 0x20000,
  SYNCHRONIZE: 0x100000,
} as const;

/** `FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE`. */
export const SHARE_ALL = 0x7;

/** `CreateDisposition` values. */
export const Disposition = { FILE_OPEN: 1, FILE_CREATE: 2 } as const;

/** `CreateOptions` bits. */
export const FileOptions = {
  FILE_DIRECTORY_FILE: 0x1,
  FILE_SYNCHRONOUS_IO_NONALERT: 0x20,
  FILE_NON_DIRECTORY_FILE: 0x40,
  FILE_DELETE_ON_CLOSE: 0x1000,
  FILE_OPEN_REPARSE_POINT: 0x200000,
} as const;

/** `C:\dir\file` → `\??\C:\dir\file` (the NT path of a Win32 drive path). */
export function ntPathOf(win32Path: string): string {
  if (win32Path.startsWith("\\??\\")) return win32Path;
  if (!/^[A-Za-z]:\\/.test(win32Path)) {
    throw new TypeError(`Not an absolute drive path: ${win32Path}`);
  }
  return `\\??\\${win32Path}`;
}

/** Options for {@link openFile}. */
export interface OpenFileOptions {
  /** Desired access (default: read data + synchronize). */
  access?: number;
  /** Share mode (default: read, write and delete). */
  share?: number;
  /** Open or create (default: open). */
  disposition?: number;
  /** Create options (default: synchronous, not a directory, do not follow a final reparse point). */
  options?: number;
  /** A security descriptor for a new file or directory. */
  securityDescriptor?: SecurityDescriptor;
}

/** `NtCreateFile` on a Win32 path; throws `NtError` (e.g. `STATUS_ACCESS_DENIED`). */
export function openFile(win32Path: string, o: OpenFileOptions = {}): NtFile {
  const oa = new ObjectAttributes(
    ntPathOf(win32Path),
    o.securityDescriptor ? { securityDescriptor: o.securityDescriptor } : {},
  );
  return createFile(oa, win32Path, o);
}

/**
 * `NtCreateFile` on a name relative to an open directory (`RootDirectory` = `root`) with
 * `OBJ_CASE_INSENSITIVE | OBJ_DONT_REPARSE`: the kernel refuses to follow a junction or symbolic
 * link on any component of `relative` (`STATUS_REPARSE_POINT_ENCOUNTERED`). The caller checks the
 * text of `relative` first (no `..`, no `:`, not absolute): the kernel resolves `..` lexically.
 *
 * @param root a directory handle (with `FILE_TRAVERSE`)
 * @param relative a backslash-separated name below it
 * @param o access, disposition and options as for {@link openFile}
 */
export function openRelative(
  root: NtHandle<"file">,
  relative: string,
  o: OpenFileOptions = {},
): NtFile {
  const oa = new ObjectAttributes(relative, {
    root,
    // ObpCaptureObjectCreateInformation.c: attribute bits outside 0x11FF2 are STATUS_INVALID_PARAMETER;
    // ObpLookupObjectName.c: with 0x1000 set, a parse that returns STATUS_REPARSE (0x104) or
    // STATUS_REPARSE_OBJECT (0x118) ends the lookup with STATUS_REPARSE_POINT_ENCOUNTERED.
    attributes: OBJ_CASE_INSENSITIVE | OBJ_DONT_REPARSE,
    ...(o.securityDescriptor ? { securityDescriptor: o.securityDescriptor } : {}),
  });
  return createFile(oa, relative, o);
}

function createFile(oa: ObjectAttributes, what: string, o: OpenFileOptions): NtFile {
  const cell = handleCell();
  const iosb = new Uint8Array(IOSB.size);
  check(
    ntdll().NtCreateFile(
      cell,
      o.access ?? (FileAccess.FILE_READ_DATA | FileAccess.SYNCHRONIZE),
      oa.struct,
      iosb,
      null,
      0x80, // FILE_ATTRIBUTE_NORMAL
      o.share ?? SHARE_ALL,
      o.disposition ?? Disposition.FILE_OPEN,
      o.options ??
        (FileOptions.FILE_SYNCHRONOUS_IO_NONALERT | FileOptions.FILE_NON_DIRECTORY_FILE |
          FileOptions.FILE_OPEN_REPARSE_POINT),
      null,
      0,
    ),
    "NtCreateFile",
    what,
  );
  return new NtFile(cell[0] ?? 0n, `file ${what}`);
}

/** Opens a directory to serve as the `root` of {@link openRelative} (list, traverse, synchronize). */
export function openDirectory(win32Path: string): NtFile {
  return openFile(win32Path, {
    access: FileAccess.FILE_LIST_DIRECTORY | FileAccess.FILE_TRAVERSE |
      FileAccess.FILE_READ_ATTRIBUTES | FileAccess.SYNCHRONIZE,
    options: FileOptions.FILE_DIRECTORY_FILE | FileOptions.FILE_SYNCHRONOUS_IO_NONALERT,
  });
}

/**
 * The final path of an open file or directory (`GetFinalPathNameByHandleW`, normalized, with
 * its drive letter: `\\?\C:\...`): what the file system actually opened, after every junction
 * and symbolic link, with short (8.3) names expanded.
 */
export function finalPathOf(file: NtHandle<"file">): string {
  let chars = 512;
  for (let attempt = 0; attempt < 3; attempt++) {
    const buf = new Uint8Array(chars * 2);
    // dwFlags 0 = FILE_NAME_NORMALIZED | VOLUME_NAME_DOS.
    const n = kernel32().GetFinalPathNameByHandleW(file.unsafePointer, buf, chars, 0);
    checkWin32(n, "GetFinalPathNameByHandleW", file.what);
    if (n < chars) return decodeUtf16(buf.subarray(0, n * 2));
    chars = n + 1; // too small: n is the size needed, with its NUL
  }
  throw new RangeError(`GetFinalPathNameByHandleW kept growing for ${file.what}`);
}

/**
 * Reads up to `length` bytes at `offset` from a file, opening it as the calling thread's identity.
 *
 * @example
 * ```ts ignore
 * import { readFileRange } from "./files.ts";
 * const head = readFileRange("C:\\Windows\\win.ini", 0n, 16);
 * ```
 */
export function readFileRange(win32Path: string, offset: bigint, length: number): Uint8Array {
  using file = openFile(win32Path);
  return readFileAt(file, offset, length);
}

/** Reads up to `length` bytes at `offset` from an open (synchronous) file; empty past its end. */
export function readFileAt(file: NtHandle<"file">, offset: bigint, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  const iosb = new Uint8Array(IOSB.size);
  const at = new BigInt64Array([offset]);
  const status = ntdll().NtReadFile(
    file.unsafePointer,
    null,
    null,
    null,
    iosb,
    buf,
    length,
    at,
    null,
  );
  if (toUnsigned(status) === NTSTATUS.STATUS_END_OF_FILE) return new Uint8Array(0);
  check(status, "NtReadFile", file.what);
  const read = Number(new DataView(iosb.buffer).getBigUint64(IOSB.offsets.Information, true));
  return buf.slice(0, read);
}

/** Writes `bytes` at the start of an open (synchronous) file. */
export function writeFileAt(file: NtHandle<"file">, bytes: Uint8Array, offset = 0n): void {
  const iosb = new Uint8Array(IOSB.size);
  check(
    ntdll().NtWriteFile(
      file.unsafePointer,
      null,
      null,
      null,
      iosb,
      bytes,
      bytes.byteLength,
      new BigInt64Array([offset]),
      null,
    ),
    "NtWriteFile",
    file.what,
  );
}

/** The user's temporary folder (`GetTempPathW`), with a trailing backslash. */
export function tempFolder(): string {
  const buf = new Uint8Array(2 * 1024);
  const n = kernel32().GetTempPathW(1024, buf);
  checkWin32(n, "GetTempPathW");
  return decodeUtf16(buf.subarray(0, n * 2));
}

/** `IO_REPARSE_TAG_MOUNT_POINT`: a directory junction. */
export const IO_REPARSE_TAG_MOUNT_POINT = 0xa0000003;
/** `FSCTL_SET_REPARSE_POINT` = CTL_CODE(FILE_DEVICE_FILE_SYSTEM, 41, METHOD_BUFFERED, FILE_SPECIAL_ACCESS). */
export const FSCTL_SET_REPARSE_POINT = 0x000900a4;

/**
 * The `REPARSE_DATA_BUFFER` of a directory junction to `targetWin32Path`: the substitute name is
 * its NT path (`\??\C:\...`), the print name the Win32 path, each followed by a NUL that the
 * lengths do not count. Throws `RangeError` when it would not fit the 16-bit lengths.
 */
export function mountPointReparseBuffer(targetWin32Path: string): Uint8Array<ArrayBuffer> {
  const substitute = encodeUtf16(ntPathOf(targetWin32Path));
  const print = encodeUtf16(targetWin32Path);
  const pathBytes = substitute.byteLength + 2 + print.byteLength + 2;
  // ReparseDataLength counts what follows the 8-byte header: the four USHORTs and PathBuffer.
  const dataLength = RDB.offsets.PathBuffer - RDB.offsets.MountPointReparseBuffer + pathBytes;
  if (dataLength > 0x3ff8) throw new RangeError(`junction target too long: ${targetWin32Path}`);
  const buf = new Uint8Array(RDB.offsets.PathBuffer + pathBytes);
  const dv = new DataView(buf.buffer);
  dv.setUint32(RDB.offsets.ReparseTag, IO_REPARSE_TAG_MOUNT_POINT, true);
  dv.setUint16(RDB.offsets.ReparseDataLength, dataLength, true);
  dv.setUint16(RDB.offsets.SubstituteNameOffset, 0, true);
  dv.setUint16(RDB.offsets.SubstituteNameLength, substitute.byteLength, true);
  dv.setUint16(RDB.offsets.PrintNameOffset, substitute.byteLength + 2, true);
  dv.setUint16(RDB.offsets.PrintNameLength, print.byteLength, true);
  buf.set(substitute, RDB.offsets.PathBuffer);
  buf.set(print, RDB.offsets.PathBuffer + substitute.byteLength + 2);
  return buf;
}

/**
 * Creates the directory `junctionWin32Path` and makes it a junction to `targetWin32Path`
 * (`FSCTL_SET_REPARSE_POINT`; no privilege needed, only write access to the new directory). The
 * returned handle is delete-on-close and opened on the reparse point itself: closing it removes
 * the junction, never its target. A failing `NtFsControlFile` closes (and so removes) the
 * directory and throws `NtError`.
 */
export function createJunction(junctionWin32Path: string, targetWin32Path: string): NtFile {
  const dir = openFile(junctionWin32Path, {
    access: FileAccess.FILE_WRITE_DATA | FileAccess.FILE_WRITE_ATTRIBUTES | FileAccess.DELETE |
      FileAccess.SYNCHRONIZE,
    disposition: Disposition.FILE_CREATE,
    options: FileOptions.FILE_DIRECTORY_FILE | FileOptions.FILE_SYNCHRONOUS_IO_NONALERT |
      FileOptions.FILE_OPEN_REPARSE_POINT | FileOptions.FILE_DELETE_ON_CLOSE,
  });
  try {
    const data = mountPointReparseBuffer(targetWin32Path);
    const iosb = new Uint8Array(IOSB.size);
    check(
      ntdll().NtFsControlFile(
        dir.unsafePointer,
        null,
        null,
        null,
        iosb,
        FSCTL_SET_REPARSE_POINT,
        data,
        data.byteLength,
        null,
        0,
      ),
      "NtFsControlFile",
      `FSCTL_SET_REPARSE_POINT ${junctionWin32Path} -> ${targetWin32Path}`,
    );
    return dir;
  } catch (e) {
    dir.close();
    throw e;
  }
}

/**
 * The DACL (and mandatory label, when `label`) of an object as SDDL, as stored
 * (`NtQuerySecurityObject`, then `ConvertSecurityDescriptorToStringSecurityDescriptorW`). The
 * handle needs `READ_CONTROL`.
 */
export function securitySddl(handle: NtHandle, label = false): string {
  const info = SecurityInformation.DACL_SECURITY_INFORMATION |
    (label ? SecurityInformation.LABEL_SECURITY_INFORMATION : 0);
  return securityDescriptorToSddl(querySecurityDescriptor(handle, info), info);
}

/**
 * A file, file-system directory or junction opened through the native API (`NtCreateFile`). An
 * `NtFile` is an `NtHandle<"file">`: it closes on `close()` or at the end of a `using` scope.
 * Opening, reading and writing run as the calling thread's identity (impersonation included), so
 * the access check is the kernel's.
 *
 * @example Read the head of a file as whoever this thread is (Windows only: not run here)
 * ```ts ignore
 * import { NtFile } from "@deno-lpc/deno-lpc";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * using dir = NtFile.openDirectory("C:\\Windows");
 * using ini = dir.openRelative("win.ini");
 * assertEquals(ini.readAt(0n, 1).byteLength, 1);
 * assertEquals(dir.kind, "file");
 * ```
 */
export class NtFile extends NtHandle<"file"> {
  /**
   * Adopts a raw file handle (the new `NtFile` closes it).
   *
   * @param value the raw handle value
   * @param what a short description for messages
   * @param closer how to close it (default `NtClose`)
   */
  constructor(value: bigint, what: string, closer?: HandleCloser) {
    super("file", value, what, closer);
  }

  /**
   * Opens (or creates) a file by Win32 path (`NtCreateFile`); throws `NtError` such as
   * `STATUS_ACCESS_DENIED`.
   *
   * @param win32Path e.g. `C:\Windows\win.ini`
   * @param options access, share, disposition, create options, security descriptor
   */
  static open(win32Path: string, options: OpenFileOptions = {}): NtFile {
    return openFile(win32Path, options);
  }

  /** Opens a directory to open names relative to (list, traverse, synchronize). */
  static openDirectory(win32Path: string): NtFile {
    return openDirectory(win32Path);
  }

  /**
   * Creates the directory `junction` as a junction to `target` (`FSCTL_SET_REPARSE_POINT`). The
   * handle is delete-on-close and on the reparse point itself: closing it removes the junction,
   * never its target.
   */
  static createJunction(junction: string, target: string): NtFile {
    return createJunction(junction, target);
  }

  /** Opens `win32Path`, reads up to `length` bytes at `offset`, and closes it. */
  static readRange(win32Path: string, offset: bigint, length: number): Uint8Array {
    return readFileRange(win32Path, offset, length);
  }

  /** The user's temporary folder (`GetTempPathW`), with a trailing backslash. */
  static tempFolder(): string {
    return tempFolder();
  }

  /**
   * Opens a name below this directory, refusing to follow any junction or symbolic link on the
   * way (`OBJ_DONT_REPARSE`: `STATUS_REPARSE_POINT_ENCOUNTERED`). The caller checks the text of
   * `relative` first (no `..`, no `:`, not absolute): the kernel resolves `..` lexically.
   *
   * @param relative a backslash-separated name below this directory
   * @param options as for {@link NtFile.open}
   */
  openRelative(relative: string, options: OpenFileOptions = {}): NtFile {
    return openRelative(this, relative, options);
  }

  /** Reads up to `length` bytes at `offset` (synchronous files); empty past the end. */
  readAt(offset: bigint, length: number): Uint8Array {
    return readFileAt(this, offset, length);
  }

  /** Writes `bytes` at `offset` (default 0). */
  writeAt(bytes: Uint8Array, offset = 0n): void {
    writeFileAt(this, bytes, offset);
  }

  /**
   * What the file system actually opened, after every junction and symbolic link
   * (`GetFinalPathNameByHandleW`, e.g. `\\?\C:\...`).
   */
  finalPath(): string {
    return finalPathOf(this);
  }

  /** The stored DACL (and mandatory label, with `label`) as SDDL; needs `READ_CONTROL`. */
  securitySddl(label = false): string {
    return securitySddl(this, label);
  }
}
