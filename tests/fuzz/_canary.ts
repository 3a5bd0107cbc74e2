/**
 * A fuzz target whose inputs hang (input 0), crash (1: an engine error worded like whet's but
 * naming no file) and load (2): the tests run it to show that the time bound and the criterion
 * catch what they should. It imports nothing of whet, so its workers start quickly.
 *
 * @module
 */

import type { Target } from "./_targets.ts";

/** See the module doc. */
export const CANARY: Target = {
  name: "canary",
  count: 3,
  seed: 0,
  file: "canary.txt",
  setup: async () => {},
  input: () => new Uint8Array(),
  loads: [(_, __, i) => {
    if (i === 0) { for (;;) { /* a hang */ } }
    if (i === 1) return Promise.resolve((null as unknown as { x: number }).x);
    return Promise.resolve();
  }],
  names: (path) => [path],
};
