/**
 * The conformance {@link Kernel} on the fake kernel (`tests/fake_kernel.ts`): processes are pids,
 * threads are identities, blocking calls wait inside the fake until another thread lets them go.
 *
 * @module
 */

import type { Kernel } from "./types.ts";

/** A fresh fake kernel for one case. */
export function createFakeKernel(): Promise<Kernel> {
  return Promise.reject(new Error("fake driver: not written yet"));
}
