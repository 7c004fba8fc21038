/**
 * The lab's folder (experiment 1): a folder and the files and folders in it, created
 * delete-on-close, so they vanish when their handles close, even if the process is killed. A lab
 * concept, built on the library's `NtFile`; it moved here from `ffi/nt/files.ts`.
 *
 * @module
 */

import { NtFile, SecurityDescriptor } from "../../mod.ts";
import { Disposition, FileAccess, FileOptions } from "../../raw.ts";

/** Options for {@link LabFolder.create}. */
export interface LabFolderOptions {
  /** Where to create it (default: the user's temporary folder). */
  parent?: string;
  /** Its security descriptor (SDDL); default: inherited from the parent. */
  sddl?: string;
}

/**
 * A lab folder and the files and folders in it, created delete-on-close: disposing it (or the
 * process dying) removes them all. Children are closed newest first, so each folder is empty
 * when it closes.
 */
export class LabFolder implements Disposable {
  /** The folder's Win32 path. */
  readonly path: string;
  readonly #folder: NtFile;
  readonly #children: NtFile[] = [];

  private constructor(path: string, folder: NtFile) {
    this.path = path;
    this.#folder = folder;
  }

  /** Creates `<parent>\<name>` (which must not exist), with `options.sddl` when given. */
  static create(name: string, options: LabFolderOptions = {}): LabFolder {
    const path = `${(options.parent ?? NtFile.tempFolder()).replace(/\\?$/, "\\")}${name}`;
    return new LabFolder(path, createLabDirectory(path, options.sddl));
  }

  /** The folder's own handle (list, read control, delete), for queries such as `securitySddl()`. */
  get handle(): NtFile {
    return this.#folder;
  }

  /**
   * Creates a subfolder (delete-on-close, removed with the lab) with the given security
   * descriptor (SDDL) and returns its path.
   */
  createFolder(name: string, sddl?: string): string {
    const path = `${this.path}\\${name}`;
    this.#children.push(createLabDirectory(path, sddl));
    return path;
  }

  /** The handle of a subfolder made by {@link createFolder} (by path), for queries. */
  folderHandle(path: string): NtFile | undefined {
    return this.#children.find((h) => h.what === `file ${path}`);
  }

  /**
   * Creates a file in the folder with the given content and security descriptor (SDDL), kept open
   * (shared for read, write and delete) until the folder is disposed.
   */
  createFile(name: string, content: Uint8Array, sddl?: string): string {
    const path = `${this.path}\\${name}`;
    const sd = sddl ? SecurityDescriptor.fromSddl(sddl) : undefined;
    try {
      const file = NtFile.open(path, {
        access: FileAccess.FILE_WRITE_DATA | FileAccess.DELETE | FileAccess.SYNCHRONIZE,
        disposition: Disposition.FILE_CREATE,
        options: FileOptions.FILE_NON_DIRECTORY_FILE | FileOptions.FILE_SYNCHRONOUS_IO_NONALERT |
          FileOptions.FILE_DELETE_ON_CLOSE,
        ...(sd ? { securityDescriptor: sd } : {}),
      });
      this.#children.push(file);
      file.writeAt(content);
      return path;
    } finally {
      sd?.[Symbol.dispose]();
    }
  }

  /** Closes the children newest first, then the folder: all of them are deleted. */
  [Symbol.dispose](): void {
    for (const h of this.#children.splice(0).reverse()) h.close();
    this.#folder.close();
  }
}

function createLabDirectory(path: string, sddl: string | undefined): NtFile {
  const sd = sddl ? SecurityDescriptor.fromSddl(sddl) : undefined;
  try {
    return NtFile.open(path, {
      access: FileAccess.FILE_LIST_DIRECTORY | FileAccess.READ_CONTROL | FileAccess.DELETE |
        FileAccess.SYNCHRONIZE,
      disposition: Disposition.FILE_CREATE,
      options: FileOptions.FILE_DIRECTORY_FILE | FileOptions.FILE_SYNCHRONOUS_IO_NONALERT |
        FileOptions.FILE_DELETE_ON_CLOSE,
      ...(sd ? { securityDescriptor: sd } : {}),
    });
  } finally {
    sd?.[Symbol.dispose]();
  }
}
