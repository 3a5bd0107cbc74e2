/**
 * The PEFT registry: one line per method. `--peft.method=NAME` and the run config pick from here;
 * {@linkcode loadAdapter} picks by the `peft_type` of a saved folder; the contract test
 * (tests/peft/registry_test.ts) loops over every entry.
 *
 * @module
 */

import type { Decoder } from "../models/decoder.ts";
import { adapters } from "./adapters.ts";
import {
  ADAPTER_CONFIG,
  type AdapterConfigFile,
  adapterConfigName,
  readAdapterConfigFile,
  WHET_CONFIG,
} from "./files.ts";
import { ia3 } from "./ia3.ts";
import { lora } from "./lora.ts";
import type { PeftContext, PeftInstance, PeftMethod } from "./method.ts";
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

/** Bottleneck adapters saved before they had a `peft_type` carry `whet_method: "bottleneck"`. */
function fileType(config: AdapterConfigFile): unknown {
  if (config.has("peft_type")) return config.get("peft_type");
  return config.get("whet_method") === "bottleneck" ? adapters.peftType : undefined;
}

/**
 * The saved folder `dir` parsed once, and the method that wrote it: by the `peft_type` of its
 * adapter_config.json, or the `method` of whet's whet_peft.json (full, selective, BitFit). An
 * unknown type is an error naming the supported ones.
 *
 * @example
 * ```ts
 * import { adapterMethod } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/adapter_config.json`, '{"peft_type": "IA3"}');
 * if ((await adapterMethod(dir)).method.name !== "ia3") throw new Error();
 * await Deno.writeTextFile(`${dir}/adapter_config.json`, '{"peft_type": "LOHA"}');
 * try {
 *   await adapterMethod(dir);
 *   throw new Error("LoHa is not a whet method");
 * } catch (e) {
 *   if (!(e as Error).message.includes("supported: LORA, WHET_BOTTLENECK")) throw e;
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function adapterMethod(
  dir: string,
): Promise<{ method: AnyPeftMethod; config: AdapterConfigFile }> {
  const name = await adapterConfigName(dir);
  if (name === null) {
    throw new Error(
      `Cannot load an adapter from ${dir}: it holds neither ${ADAPTER_CONFIG} nor ${WHET_CONFIG}`,
    );
  }
  const config = await readAdapterConfigFile(dir, name);
  if (name === WHET_CONFIG) {
    const m = config.get("method");
    const method = Object.values(PEFT_METHODS).find((x) =>
      x.peftType === undefined && x.name === m
    );
    if (!method) {
      const names = Object.values(PEFT_METHODS).filter((x) => x.peftType === undefined);
      throw config.error(
        "method",
        `is ${JSON.stringify(m)}; supported: ${names.map((x) => x.name).join(", ")}`,
      );
    }
    return { method, config };
  }
  const type = fileType(config);
  const method = type === undefined
    ? undefined
    : Object.values(PEFT_METHODS).find((x) => x.peftType === type);
  if (!method) {
    const types = Object.values(PEFT_METHODS).flatMap((x) => x.peftType ?? []);
    throw config.error(
      "peft_type",
      `is ${JSON.stringify(type ?? null)}; supported: ${types.join(", ")}`,
    );
  }
  return { method, config };
}

/**
 * Applies the adapter saved in `dir` (by whet or by Python's PEFT) to `model`, whatever its
 * method: reads the folder's config once, picks the method by its `peft_type`
 * ({@linkcode adapterMethod}), and lets the method read its files and prepare itself (prompt
 * tuning takes positions for its virtual tokens and, with `context.tokenizer`, knows the text
 * its prompt started from). The instance is ready to run, or to train further.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, ia3, loadAdapter } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const trained = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const dir = await Deno.makeTempDir();
 * await (await ia3.apply(trained, ia3.validate({}), 0)).save(dir, "my-base");
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await loadAdapter(model, dir);
 * if (inst.method !== "ia3" || inst.added.length !== 4) throw new Error(inst.describe());
 * trained.release();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadAdapter(
  model: Decoder,
  dir: string,
  context: PeftContext = {},
): Promise<PeftInstance> {
  const { method, config } = await adapterMethod(dir);
  return await method.load(model, config, context);
}
