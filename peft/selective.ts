/**
 * Full fine-tuning and selective fine-tuning as gradient masks over the base parameters: by name
 * patterns (globs like `h.*.mlp.*`, `model.layers.*.mlp.**` or `/regex/`), by block index (the last
 * k blocks), BitFit (biases only), norms only (GPT-2's LayerNorms, the Llama family's RMSNorms),
 * and q/k/v parts (element masks inside GPT-2's fused `c_attn`; the Llama family's separate
 * `q_proj`, `k_proj`, `v_proj` are chosen whole). Nothing is added to the model; frozen parameters
 * have no gradient buffer, so their weight gradients are never computed.
 *
 * BitFit on a model without biases (Llama and SmolLM2 have none; Qwen2 has q/k/v biases, and
 * BitFit trains those) is refused with a clear error rather than training nothing.
 *
 * Saved in whet's layout: `whet_peft.json` (method and config) and `trainable.safetensors` (the
 * trained tensors by Hugging Face name, whole tensors even where only some elements were trained).
 *
 * @module
 */

import type { Decoder } from "../models/decoder.ts";
import type { Param } from "../models/param.ts";
import {
  type AdapterConfigFile,
  readAdapterWeights,
  WHET_CONFIG,
  WHET_WEIGHTS,
  writeAdapterFiles,
} from "./files.ts";
import { checkConfig, type PeftContext, type PeftInstance, type PeftMethod } from "./method.ts";

/**
 * Which of q, k, v stays trainable: a third of GPT-2's fused `c_attn`, or the Llama family's
 * `q_proj`, `k_proj`, `v_proj`.
 */
export type QkvPart = "q" | "k" | "v";

/** Configuration of selective fine-tuning. */
export interface SelectiveConfig {
  /**
   * Parameter name patterns to train: globs (`*` matches within a dot-separated name, `**` any
   * run; e.g. `"*.bias"`, `"h.*.mlp.*"`) or regular expressions written `/…/`. Empty: all.
   */
  include: string[];
  /** Train only blocks with index ≥ n_layer − lastLayers (0: every block); non-block parameters follow `include`. */
  lastLayers: number;
  /**
   * Preset added to `include`: `"bitfit"` (biases), `"layernorm"` (the norms' weights and biases:
   * GPT-2's `ln_1`, `ln_2`, `ln_f`; the Llama family's `input_layernorm`,
   * `post_attention_layernorm`, `model.norm`), or `""`.
   */
  preset: string;
  /**
   * Restrict q/k/v parameters to these parts (empty: all of them): the thirds of `c_attn`'s
   * weight and bias (GPT-2), or which of `q_proj`, `k_proj`, `v_proj` (the Llama family).
   */
  qkv: string[];
}

const SELECTIVE_DEFAULTS: SelectiveConfig = { include: [], lastLayers: 0, preset: "", qkv: [] };

const PRESETS: Record<string, string[]> = {
  bitfit: ["**.bias"],
  layernorm: [
    "**.ln_*.weight",
    "**.ln_*.bias",
    "ln_f.weight",
    "ln_f.bias",
    "**.input_layernorm.weight",
    "**.post_attention_layernorm.weight",
    "model.norm.weight",
  ],
};

/**
 * A matcher for a glob (`*` within a name segment, `**` across segments) or a `/regex/`.
 *
 * @example
 * ```ts
 * import { namePattern } from "../mod.ts";
 * if (!namePattern("h.*.mlp.**").test("h.0.mlp.c_fc.weight")) throw new Error("** spans segments");
 * if (namePattern("h.*.mlp.*").test("h.0.mlp.c_fc.weight")) throw new Error("* stays in one");
 * if (!namePattern("/^h\\.1\\./").test("h.1.ln_1.bias")) throw new Error("regex");
 * ```
 */
export function namePattern(pattern: string): RegExp {
  if (pattern.length > 1 && pattern.startsWith("/") && pattern.endsWith("/")) {
    try {
      return new RegExp(pattern.slice(1, -1));
    } catch (e) {
      throw new SyntaxError(`Cannot use pattern ${pattern}: ${(e as Error).message}`);
    }
  }
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (c === "*") re += "[^.]*";
    else re += c.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The block of a parameter (`h.3.…`, `model.layers.3.…`), or null outside the blocks. */
function blockIndex(name: string): number | null {
  const m = /^(?:h|model\.layers)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * The base parameters `config` selects, each with its element mask (null: the whole tensor).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, selective, selectParameters } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * // Block 1 only, and of its c_attn only the value third.
 * const picked = selectParameters(model, selective.validate({ include: ["h.1.**"], qkv: ["v"] }));
 * const cAttn = picked.find((s) => s.param.name === "h.1.attn.c_attn.weight")!;
 * if (picked.length !== 12 || cAttn.mask?.reduce((a, b) => a + b) !== 32 * 32) throw new Error();
 * model.release();
 * ```
 */
export function selectParameters(
  model: Decoder,
  config: SelectiveConfig,
): { param: Param; mask: Float32Array | null }[] {
  const patterns = [...config.include, ...(config.preset ? PRESETS[config.preset] ?? [] : [])];
  if (config.preset && !PRESETS[config.preset]) {
    throw new RangeError(
      `Cannot select parameters: unknown preset "${config.preset}" (known: ${
        Object.keys(PRESETS).join(", ")
      })`,
    );
  }
  const res = patterns.map(namePattern);
  const { L, C } = model.shape;
  if (!Number.isInteger(config.lastLayers) || config.lastLayers < 0 || config.lastLayers > L) {
    throw new RangeError(
      `Cannot select parameters: lastLayers must be an integer in 0..${L}, got ${config.lastLayers}`,
    );
  }
  for (const part of config.qkv) {
    if (!["q", "k", "v"].includes(part)) {
      throw new RangeError(`Cannot select parameters: qkv part "${part}" is not q, k or v`);
    }
  }
  const out: { param: Param; mask: Float32Array | null }[] = [];
  for (const p of model.params.values()) {
    if (res.length > 0 && !res.some((r) => r.test(p.name))) continue;
    const layer = blockIndex(p.name);
    if (config.lastLayers > 0 && (layer === null ? false : layer < L - config.lastLayers)) continue;
    const split = /\.self_attn\.([qkv])_proj\./.exec(p.name);
    if (config.qkv.length > 0 && split && !config.qkv.includes(split[1])) continue;
    let mask: Float32Array | null = null;
    if (config.qkv.length > 0 && p.name.includes("attn.c_attn.")) {
      mask = new Float32Array(p.value.size);
      const cols = 3 * C, rows = p.value.size / cols;
      for (const part of config.qkv) {
        const start = "qkv".indexOf(part) * C;
        for (let r = 0; r < rows; r++) mask.fill(1, r * cols + start, r * cols + start + C);
      }
    }
    out.push({ param: p, mask });
  }
  if (out.length === 0) {
    throw new RangeError(
      `Cannot select parameters: no parameter matches ${JSON.stringify(config)}`,
    );
  }
  return out;
}

class MaskInstance implements PeftInstance {
  readonly added: readonly Param[] = [];
  readonly #model: Decoder;
  readonly #selected: Param[];
  constructor(
    readonly method: string,
    readonly config: Readonly<Record<string, unknown>>,
    model: Decoder,
    selected: Param[],
  ) {
    this.#model = model;
    this.#selected = selected;
  }
  trainable(): Param[] {
    return this.#selected.slice();
  }
  async save(dir: string): Promise<void> {
    const data = await this.#model.gpu.read(this.#selected.map((p) => p.value));
    await writeAdapterFiles(
      dir,
      { method: this.method, config: this.config },
      this.#selected.map((p, i) => [p.name, { shape: p.shape, data: data[i] }] as const),
      {
        configName: WHET_CONFIG,
        weightsName: WHET_WEIGHTS,
        metadata: { whet_method: this.method },
      },
    );
  }
  async load(dir: string): Promise<void> {
    const weights = await readAdapterWeights(dir, WHET_WEIGHTS);
    for (const p of this.#selected) p.value.write(weights.tensor([p.name], p.shape, this.method));
  }
  describe(): string {
    const n = this.#selected.reduce((a, p) => a + (p.gradMask ? 0 : p.value.size), 0);
    return `${this.method}: ${this.#selected.length} tensors trainable${
      n ? "" : " (element-masked)"
    }`;
  }
}

/**
 * Full fine-tuning: every base parameter trainable.
 *
 * @example
 * ```ts
 * import { full, GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * await full.apply(model, full.validate({}), 0);
 * const { total, trainable } = model.countParameters();
 * if (trainable !== total) throw new Error("every weight trainable");
 * model.release();
 * ```
 */
export const full: PeftMethod<Record<string, never>> = {
  name: "full",
  summary: "full fine-tuning: every weight is trained",
  defaults: {},
  validate: (c) => checkConfig("full", {}, c),
  load: (model, config, context) => loadMask(full, model, config, context),
  apply(model: Decoder, config: Record<string, never>): Promise<PeftInstance> {
    const all = [...model.params.values()];
    for (const p of all) model.setTrainable(p, true);
    return Promise.resolve(new MaskInstance("full", config, model, all));
  },
};

/**
 * Selective fine-tuning by name, block and element masks.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, selective } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * // The MLP of the last block, and the final LayerNorm (patterns and lastLayers both apply).
 * const config = selective.validate({ include: ["h.*.mlp.**", "ln_f.*"], lastLayers: 1 });
 * const inst = await selective.apply(model, config, 0);
 * const names = inst.trainable().map((p) => p.name);
 * if (!names.includes("h.1.mlp.c_fc.weight") || names.includes("h.0.mlp.c_fc.weight")) throw new Error();
 * if (!names.includes("ln_f.weight") || names.some((n) => n.includes("attn"))) throw new Error();
 * model.release();
 * ```
 */
export const selective: PeftMethod<SelectiveConfig> = {
  name: "selective",
  summary:
    "train a chosen subset of the base weights (name patterns, last k blocks, presets, q/k/v thirds)",
  defaults: SELECTIVE_DEFAULTS,
  validate: (c) => checkConfig("selective", SELECTIVE_DEFAULTS, c),
  load: (model, config, context) =>
    loadMask(selective as unknown as PeftMethod<Record<string, unknown>>, model, config, context),
  apply(model: Decoder, config: SelectiveConfig): Promise<PeftInstance> {
    return Promise.resolve(applySelection(model, "selective", config, { ...config }));
  },
};

/**
 * BitFit: train the biases only (Ben Zaken et al., 2021).
 *
 * @example
 * ```ts
 * import { bitfit, GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await bitfit.apply(model, bitfit.validate({}), 0);
 * if (!inst.trainable().every((p) => p.name.endsWith(".bias"))) throw new Error("biases only");
 * model.release();
 * ```
 */
export const bitfit: PeftMethod<Record<string, never>> = {
  name: "bitfit",
  summary: "BitFit: train every bias, freeze everything else",
  defaults: {},
  validate: (c) => checkConfig("bitfit", {}, c),
  load: (model, config, context) => loadMask(bitfit, model, config, context),
  apply(model: Decoder): Promise<PeftInstance> {
    if (![...model.params.keys()].some((name) => name.endsWith(".bias"))) {
      // Training nothing would look like a run that went wrong; say why instead.
      return Promise.reject(
        new RangeError(
          "Cannot apply BitFit: the model has no bias parameters (Llama and SmolLM2 have none unless attention_bias or mlp_bias is set); train the norms (selective, preset layernorm) or use LoRA or IA³",
        ),
      );
    }
    return Promise.resolve(
      applySelection(model, "bitfit", { ...SELECTIVE_DEFAULTS, preset: "bitfit" }, {}),
    );
  },
};

/**
 * The load of the masking methods: whet_peft.json's `config` (checked by the method), then the
 * trained tensors into the base parameters they name.
 */
async function loadMask(
  method: PeftMethod<Record<string, unknown>>,
  model: Decoder,
  config: AdapterConfigFile,
  context: PeftContext = {},
): Promise<PeftInstance> {
  config.expect("method", method.name);
  config.warnUnknown(["config", "method"], context.warn ?? console.warn);
  const settings = config.get("config") ?? {};
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) {
    throw config.error("config", `must be an object, got ${JSON.stringify(settings)}`);
  }
  const valid = config.validate(() => method.validate(settings as Record<string, unknown>));
  const inst = await method.apply(model, valid, context.seed ?? 0);
  await inst.load(config.dir);
  return inst;
}

/** Trains the parameters `selection` picks; the instance records `config`, its method's own. */
function applySelection(
  model: Decoder,
  method: string,
  selection: SelectiveConfig,
  config: Record<string, unknown>,
): PeftInstance {
  const chosen = selectParameters(model, selection);
  const set = new Set(chosen.map((c) => c.param));
  for (const p of model.params.values()) model.setTrainable(p, set.has(p));
  for (const { param, mask } of chosen) {
    param.gradMask?.release();
    param.gradMask = mask ? model.gpu.tensor(param.shape, mask, param.name + ".mask") : null;
  }
  return new MaskInstance(method, config, model, chosen.map((c) => c.param));
}
