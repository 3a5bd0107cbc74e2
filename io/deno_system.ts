/**
 * What the platform says about the machine, under Deno (the browser bundle's import map puts
 * `./browser_system.ts` in place of this file, so no Deno API reaches a page).
 *
 * @module
 */

/**
 * The machine's available memory in bytes (`Deno.systemMemoryInfo().available`) and where the
 * figure came from; undefined without `--allow-sys=systemMemoryInfo`, so that no permission
 * prompt appears.
 *
 * @example
 * ```ts
 * import { systemMemory } from "./deno_system.ts";
 * const m = systemMemory(); // undefined unless run with --allow-sys=systemMemoryInfo
 * if (m !== undefined && !(m.bytes > 0)) throw new Error(m.source);
 * ```
 */
export function systemMemory(): { bytes: number; source: string } | undefined {
  const granted = Deno.permissions.querySync?.({ name: "sys", kind: "systemMemoryInfo" });
  if (granted?.state !== "granted") return undefined;
  return {
    bytes: Deno.systemMemoryInfo().available,
    source: "Deno.systemMemoryInfo().available",
  };
}
