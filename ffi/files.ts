/**
 * Files through the native API (`NtCreateFile`, `NtReadFile`, `NtWriteFile`): the experiments read
 * "as whoever the calling thread is", so the access check is the kernel's, with the caller's (or
 * the impersonated client's) token. The lab's folder and secret are created delete-on-close, so
 * they vanish when their handles close, even if the process is killed.
 *
 * @module
 */

import { checkWin32, handleCell, NtHandle } from "./handle.ts";
import { kernel32 } from "./kernel32.ts";
import { ntdll } from "./ntdll.ts";
import { ObjectAttributes, SecurityDescriptor } from "./objects.ts";
import { check, NTSTATUS, toUnsigned } from "./status.ts";
import { decodeUtf16 } from "./strings.ts";
import { LAYOUTS } from "./layouts.ts";

const IOSB = LAYOUTS.IO_STATUS_BLOCK;

/** Access rights and flags for {@link openFile}. */
export const FileAccess = {
  FILE_READ_DATA: 0x1,
  FILE_WRITE_DATA: 0x2,
  FILE_READ_ATTRIBUTES: 0x80,
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
export function openFile(win32Path: string, o: OpenFileOptions = {}): NtHandle {
  const oa = new ObjectAttributes(
    ntPathOf(win32Path),
    o.securityDescriptor ? { securityDescriptor: o.securityDescriptor } : {},
  );
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
    win32Path,
  );
  return NtHandle.fromCell(cell, `file ${win32Path}`);
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
  check(status, "NtReadFile", win32Path);
  const read = Number(new DataView(iosb.buffer).getBigUint64(IOSB.offsets.Information, true));
  return buf.slice(0, read);
}

/** Writes `bytes` at the start of an open (synchronous) file. */
export function writeFileAt(file: NtHandle, bytes: Uint8Array, offset = 0n): void {
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

/**
 * A lab folder and the files in it, created delete-on-close: disposing it (or the process dying)
 * removes them all. Files are created first-closed-first so the folder is empty when it closes.
 */
export class LabFolder implements Disposable {
  /** The folder's Win32 path. */
  readonly path: string;
  readonly #folder: NtHandle;
  readonly #files: NtHandle[] = [];

  private constructor(path: string, folder: NtHandle) {
    this.path = path;
    this.#folder = folder;
  }

  /** Creates `<temp>\<name>` (which must not exist). */
  static create(name: string, parent: string = tempFolder()): LabFolder {
    const path = `${parent.replace(/\\?$/, "\\")}${name}`;
    const folder = openFile(path, {
      access: FileAccess.FILE_READ_DATA | FileAccess.DELETE | FileAccess.SYNCHRONIZE,
      disposition: Disposition.FILE_CREATE,
      options: FileOptions.FILE_DIRECTORY_FILE | FileOptions.FILE_SYNCHRONOUS_IO_NONALERT |
        FileOptions.FILE_DELETE_ON_CLOSE,
    });
    return new LabFolder(path, folder);
  }

  /**
   * Creates a file in the folder with the given content and security descriptor (SDDL), kept open
   * (shared for read, write and delete) until the folder is disposed.
   */
  createFile(name: string, content: Uint8Array, sddl?: string): string {
    const path = `${this.path}\\${name}`;
    const sd = sddl ? SecurityDescriptor.fromSddl(sddl) : undefined;
    try {
      const file = openFile(path, {
        access: FileAccess.FILE_WRITE_DATA | FileAccess.DELETE | FileAccess.SYNCHRONIZE,
        disposition: Disposition.FILE_CREATE,
        options: FileOptions.FILE_NON_DIRECTORY_FILE | FileOptions.FILE_SYNCHRONOUS_IO_NONALERT |
          FileOptions.FILE_DELETE_ON_CLOSE,
        ...(sd ? { securityDescriptor: sd } : {}),
      });
      this.#files.push(file);
      writeFileAt(file, content);
      return path;
    } finally {
      sd?.[Symbol.dispose]();
    }
  }

  /** Closes the files, then the folder: all of them are deleted. */
  [Symbol.dispose](): void {
    for (const f of this.#files.splice(0)) f.close();
    this.#folder.close();
  }
}
