/**
 * UTF-16LE strings for the Windows API: encoding with surrogate pairs kept, decoding of a counted
 * byte range, and NUL-terminated wide strings for `LPCWSTR` parameters.
 *
 * @module
 */

const utf16 = new TextDecoder("utf-16le");

/**
 * Encodes a JS string as UTF-16LE bytes. JS strings are already UTF-16, so surrogate pairs pass
 * through unchanged.
 *
 * @param s the string
 * @param nulTerminate append one NUL code unit (for `LPCWSTR` parameters)
 *
 * @example
 * ```ts
 * import { encodeUtf16 } from "./strings.ts";
 * encodeUtf16("A").length; // 2
 * encodeUtf16("A", true).length; // 4
 * ```
 */
export function encodeUtf16(s: string, nulTerminate = false): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array((s.length + (nulTerminate ? 1 : 0)) * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < s.length; i++) view.setUint16(i * 2, s.charCodeAt(i), true);
  return bytes;
}

/**
 * Decodes UTF-16LE bytes (an even count; a trailing odd byte is an error). Unpaired surrogates
 * become U+FFFD.
 *
 * @example
 * ```ts
 * import { decodeUtf16, encodeUtf16 } from "./strings.ts";
 * decodeUtf16(encodeUtf16("\\RPC Control")); // "\\RPC Control"
 * ```
 */
export function decodeUtf16(bytes: Uint8Array): string {
  if (bytes.byteLength % 2 !== 0) {
    throw new RangeError(`UTF-16 data has an odd byte count: ${bytes.byteLength}`);
  }
  return utf16.decode(bytes);
}

/** A NUL-terminated UTF-16LE copy of `s`, for `LPCWSTR`/`LPWSTR` parameters. */
export function wideString(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) {
    throw new TypeError(`String contains a NUL character: ${JSON.stringify(s)}`);
  }
  return encodeUtf16(s, true);
}

/**
 * Reads `byteLength` bytes of UTF-16LE text from native memory (copied before decoding).
 *
 * @param pointer where the text starts (`null` reads as the empty string)
 * @param byteLength how many bytes to read
 */
export function readWide(pointer: Deno.PointerValue, byteLength: number): string {
  if (pointer === null || byteLength === 0) return "";
  const copy = new Uint8Array(byteLength);
  Deno.UnsafePointerView.copyInto(pointer, copy);
  return decodeUtf16(copy);
}

/**
 * Reads a NUL-terminated UTF-16LE string from native memory, at most `maxChars` code units.
 *
 * @param pointer the string (`null` reads as the empty string)
 * @param maxChars the longest string accepted
 */
export function readWideZ(pointer: Deno.PointerValue, maxChars = 32767): string {
  if (pointer === null) return "";
  const view = new Deno.UnsafePointerView(pointer);
  let n = 0;
  while (n < maxChars && view.getUint16(n * 2) !== 0) n++;
  return readWide(pointer, n * 2);
}
