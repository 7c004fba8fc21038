/**
 * Sections: memory backed by the paging file that the kernel can map into two processes at once.
 * A legacy LPC client hands one to `NtConnectPort` (a `PORT_VIEW`), an ALPC port wraps one with
 * `NtAlpcCreatePortSection`; either way large data then travels through the mapping instead of
 * through messages.
 *
 * @module
 */

import { handleCell, type HandleCloser, NtHandle } from "./handle.ts";
import { ntdll, type NtdllSymbols } from "../ntdll.ts";
import { check } from "../status.ts";

/** The ntdll functions a section needs (the real table, or a fake with the same signatures). */
export type SectionSymbols = Pick<NtdllSymbols, "NtCreateSection" | "NtClose">;

/** `SECTION_QUERY | SECTION_MAP_WRITE | SECTION_MAP_READ`: what mapping it needs, no more. */
export const SECTION_MAP_ACCESS = 0x1 | 0x2 | 0x4;
/** `PAGE_READWRITE`: the protection of the section's pages. */
export const PAGE_READWRITE = 0x04;
/** `SEC_COMMIT`: the pages are charged against the commit limit when the section is made. */
export const SEC_COMMIT = 0x8000000;
/** The page size on x64, the unit the kernel rounds views to (AlpcpInitSystem.c). */
export const PAGE_SIZE = 0x1000;
/**
 * The largest section this module creates (1 GiB). The kernel's limit is far higher
 * (MiCreatePagingFileMap.c); this one keeps a typo from committing the paging file.
 */
export const SECTION_MAX_SIZE = 0x4000_0000;

/** Options for {@link Section.create}. */
export interface SectionOptions {
  /** The ntdll symbols (default: the real ones; a fake kernel passes its own). */
  nt?: SectionSymbols;
}

/**
 * An unnamed, page-file-backed, read-write section (`NtCreateSection` with `PAGE_READWRITE` and
 * `SEC_COMMIT`, no file). It owns its handle and closes it at the end of a `using` scope; a view
 * mapped from it (by the kernel, for a port) keeps the section alive on its own, so the handle may
 * be closed once the view exists.
 *
 * @example A size the kernel would refuse is refused before any call (runs anywhere)
 * ```ts
 * import { Section } from "./sections.ts";
 * import { assertThrows } from "jsr:@std/assert@^1.0.19";
 *
 * assertThrows(() => Section.create(0), RangeError); // MiCreatePagingFileMap.c: size 0 is refused
 * ```
 */
export class Section implements Disposable {
  /** The section handle (kind `"section"`). */
  readonly handle: NtHandle<"section">;
  /** The size asked for, in bytes (the kernel commits whole pages). */
  readonly size: number;

  private constructor(handle: NtHandle<"section">, size: number) {
    this.handle = handle;
    this.size = size;
  }

  /**
   * Creates a section of `size` bytes (`NtCreateSection(&h, SECTION_MAP_ACCESS, NULL, &size,
   * PAGE_READWRITE, SEC_COMMIT, NULL)`).
   *
   * @param size bytes, 1 .. {@link SECTION_MAX_SIZE}: a page-file section of size 0 is
   *   STATUS_INVALID_PARAMETER_4 (MiCreatePagingFileMap.c), so it is refused here first
   * @param options `nt`: the symbol table (a fake kernel's in tests)
   * @throws RangeError for a size outside 1 .. SECTION_MAX_SIZE; NtError when the call fails
   */
  static create(size: number, options: SectionOptions = {}): Section {
    if (!Number.isSafeInteger(size) || size < 1 || size > SECTION_MAX_SIZE) {
      throw new RangeError(`section size ${size} outside 1..${SECTION_MAX_SIZE}`);
    }
    const nt = options.nt ?? ntdll();
    const cell = handleCell();
    const maximumSize = new BigInt64Array([BigInt(size)]);
    check(
      nt.NtCreateSection(
        cell,
        SECTION_MAP_ACCESS,
        null,
        maximumSize,
        PAGE_READWRITE,
        SEC_COMMIT,
        null,
      ),
      "NtCreateSection",
      `${size} bytes`,
    );
    const closer: HandleCloser = (h) => nt.NtClose(h);
    return new Section(
      NtHandle.fromCell("section", cell, `section of ${size} bytes`, closer),
      size,
    );
  }

  /** True once the handle is closed. */
  get closed(): boolean {
    return this.handle.closed;
  }

  /** Closes the handle (idempotent); views the kernel mapped from it stay valid. */
  close(): void {
    this.handle.close();
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Rounds `n` up to a whole number of pages ({@link PAGE_SIZE}). */
export function roundToPages(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/**
 * Why `[offset, offset + length)` is not inside a view of `size` bytes, or null when it is.
 *
 * @example
 * ```ts
 * import { viewRangeProblem } from "./sections.ts";
 * import { assertEquals } from "jsr:@std/assert@^1.0.19";
 *
 * assertEquals(viewRangeProblem(0, 4096, 4096), null);
 * assertEquals(viewRangeProblem(4000, 100, 4096), "offset 4000 + length 100 exceeds the view's 4096 bytes");
 * ```
 */
export function viewRangeProblem(offset: number, length: number, size: number): string | null {
  if (!Number.isSafeInteger(offset) || offset < 0) return `offset ${offset} is not a byte offset`;
  if (!Number.isSafeInteger(length) || length < 0) return `length ${length} is not a byte count`;
  if (offset > size) return `offset ${offset} is beyond the view's ${size} bytes`;
  if (length > size - offset) {
    return `offset ${offset} + length ${length} exceeds the view's ${size} bytes`;
  }
  return null;
}
