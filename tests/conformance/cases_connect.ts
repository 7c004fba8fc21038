/**
 * Conformance cases: connect. Each case cites the Windows 11 kernel functions it is read from.
 *
 * @module
 */

import type { Case } from "./types.ts";

/** The cases of this group. */
export const cases: Case[] = [];
