/**
 * What the platform says about the machine, in a browser page (in place of `./deno_system.ts` in
 * the web bundle): pages cannot learn the free memory, so nothing.
 *
 * @module
 */

/**
 * Always undefined: a page has no query for the machine's free memory (`navigator.deviceMemory`
 * is a rounded total, not what is free).
 *
 * @example
 * ```ts
 * import { systemMemory } from "./browser_system.ts";
 * if (systemMemory() !== undefined) throw new Error();
 * ```
 */
export function systemMemory(): { bytes: number; source: string } | undefined {
  return undefined;
}
