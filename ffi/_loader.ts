/**
 * The lazy, cached `Deno.dlopen` behind each symbol table. Importing a table loads nothing; the
 * first call to its loader opens the DLL (on Windows only) and keeps it for the isolate's life.
 * Each Worker has its own isolate and so opens its own copy.
 *
 * @module
 */

import { assertWindows, UnsupportedError } from "./status.ts";

/**
 * Returns a memoised loader for `file` with `symbols`.
 *
 * @param file the DLL name, resolved by the Windows loader (already mapped for ntdll/kernel32)
 * @param symbols the `as const` symbol table
 */
export function lazyLibrary<const S extends Deno.ForeignLibraryInterface>(
  file: string,
  symbols: S,
): () => Deno.DynamicLibrary<S>["symbols"] {
  let lib: Deno.DynamicLibrary<S> | undefined;
  return () => {
    if (lib === undefined) {
      assertWindows(`loading ${file}`);
      lib = Deno.dlopen(file, symbols);
    }
    return lib.symbols;
  };
}

/**
 * Returns an optional symbol, or throws {@link UnsupportedError} naming it when this system's DLL
 * does not export it (Wine 8.0 lacks most of the LPC/ALPC surface).
 *
 * @param fn the symbol as loaded (`null` when an optional export is missing)
 * @param qualifiedName `dll!Name`, for the message
 */
export function requireSymbol<T>(fn: T | null, qualifiedName: string): T {
  if (fn === null) {
    throw new UnsupportedError(
      `${qualifiedName} is not exported by this system's DLL (Wine 8.0 lacks it; real LPC needs Windows)`,
    );
  }
  return fn;
}
