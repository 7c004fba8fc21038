/**
 * The object manager namespace: open object directories.
 *
 * @module
 */

import { handleCell, NtHandle } from "./handle.ts";
import { ntdll } from "./ntdll.ts";
import { ObjectAttributes } from "./objects.ts";
import { check } from "./status.ts";

/** Directory object access rights (phnt ntobapi.h). */
export const DirectoryAccess = {
  DIRECTORY_QUERY: 0x1,
  DIRECTORY_TRAVERSE: 0x2,
  DIRECTORY_CREATE_OBJECT: 0x4,
  DIRECTORY_CREATE_SUBDIRECTORY: 0x8,
} as const;

/**
 * Opens an object directory (`NtOpenDirectoryObject`), by default for query and traverse.
 *
 * @example
 * ```ts ignore
 * import { openDirectory } from "./namespace.ts";
 * using dir = openDirectory("\\BaseNamedObjects");
 * ```
 */
export function openDirectory(
  path: string,
  access: number = DirectoryAccess.DIRECTORY_QUERY | DirectoryAccess.DIRECTORY_TRAVERSE,
): NtHandle {
  const oa = new ObjectAttributes(path);
  const cell = handleCell();
  check(ntdll().NtOpenDirectoryObject(cell, access, oa.struct), "NtOpenDirectoryObject", path);
  return NtHandle.fromCell(cell, `directory ${path}`);
}
