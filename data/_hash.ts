/**
 * Seed derivation for the data layer: a stable 32-bit hash of a string, so that each task (or
 * split, or epoch) draws from its own stream and adding one task does not change the others.
 *
 * @module
 */

import { mix32 } from "../runtime/rng.ts";

/** FNV-1a over the UTF-16 code units of `text`, finished with {@linkcode mix32}, salted by `seed`. */
export function hashString(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ mix32(seed >>> 0)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }
  return mix32(h);
}

/** A seed for the stream named `label` under `seed` (e.g. a task name, "epoch 3"). */
export function deriveSeed(seed: number, label: string): number {
  return hashString(label, seed);
}
