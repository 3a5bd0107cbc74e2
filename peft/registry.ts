/**
 * The PEFT registry: one line per method. `--peft.method=NAME` and the run config pick from here;
 * the contract test (tests/peft/registry_test.ts) loops over every entry.
 *
 * @module
 */

import { adapters } from "./adapters.ts";
import { ia3 } from "./ia3.ts";
import { lora } from "./lora.ts";
import type { PeftMethod } from "./method.ts";
import { prefix } from "./prefix.ts";
import { prompt } from "./prompt.ts";
import { bitfit, full, selective } from "./selective.ts";

/** A registered method, its configuration type erased. */
export type AnyPeftMethod = PeftMethod<Record<string, unknown>>;

const erase = (m: unknown) => m as AnyPeftMethod;

/**
 * Every registered method by name.
 *
 * @example
 * ```ts
 * import { PEFT_METHODS } from "../mod.ts";
 * if (Object.keys(PEFT_METHODS).join() !== "full,selective,bitfit,lora,adapters,prompt,prefix,ia3") {
 *   throw new Error();
 * }
 * for (const m of Object.values(PEFT_METHODS)) console.log(`${m.name}: ${m.summary}`);
 * ```
 */
export const PEFT_METHODS: Readonly<Record<string, AnyPeftMethod>> = Object.freeze({
  full: erase(full),
  selective: erase(selective),
  bitfit: erase(bitfit),
  lora: erase(lora),
  adapters: erase(adapters),
  prompt: erase(prompt),
  prefix: erase(prefix),
  ia3: erase(ia3),
});

/**
 * The method registered as `name`, or a clear error listing the known ones.
 *
 * @example
 * ```ts
 * import { lora, peftMethod } from "../mod.ts";
 * if (peftMethod("lora").name !== lora.name) throw new Error();
 * try {
 *   peftMethod("qlora");
 *   throw new Error("unknown methods are errors");
 * } catch (e) {
 *   if (!(e instanceof RangeError) || !e.message.includes("known: full")) throw e;
 * }
 * ```
 */
export function peftMethod(name: string): AnyPeftMethod {
  const m = PEFT_METHODS[name];
  if (!m) {
    throw new RangeError(
      `Cannot find PEFT method "${name}" (known: ${Object.keys(PEFT_METHODS).join(", ")})`,
    );
  }
  return m;
}
