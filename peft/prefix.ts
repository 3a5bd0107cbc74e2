/**
 * Prefix tuning (Li & Liang, 2021) as Hugging Face PEFT implements it without reparameterisation
 * (`prefix_projection=False`): every layer l gets n trainable key and value vectors, which every
 * real token attends to before its own keys (keys [P_k; K], values [P_v; V]); the base is frozen.
 *
 * Parameter and file layout (PEFT's `PrefixEncoder` and `get_prompt`): one tensor
 * `prompt_embeddings` of shape (n, num_layers·2·token_dim). PEFT views each row as
 * (num_layers·2, num_attention_heads, token_dim / num_attention_heads) and splits the first axis
 * into pairs, so column `(2l + kv)·token_dim + h·d + i` holds layer l's key (kv = 0) or value
 * (kv = 1) for key/value head h, channel i. With grouped-query attention PEFT sizes the prefix by
 * the key/value heads (`_prepare_prompt_learning_config` in peft/utils/other.py: for
 * PREFIX_TUNING on a config with `num_key_value_heads`, `token_dim = hidden_size / heads · kv_heads`
 * and `num_attention_heads = kv_heads`), so token_dim = Hkv·d: C for GPT-2, Hkv·d for the Llama
 * family. That is exactly the layout of the key and value heads in the packed
 * (H + 2·Hkv)·d q,k,v rows (keys at column H·d, values at (H + Hkv)·d), so layer l's prefix is
 * the contiguous slice [2l·Hkv·d, (2l + 2)·Hkv·d) of each row. Initialisation N(0, 1), the default
 * of the `torch.nn.Embedding` PEFT uses. Files: `adapter_config.json` (`peft_type:
 * "PREFIX_TUNING"`, sorted keys, `token_dim` = `encoder_hidden_size` = Hkv·d,
 * `num_attention_heads` = Hkv as PEFT writes them after that adjustment) +
 * `adapter_model.safetensors` (`prompt_embeddings`, metadata `{"format":"pt"}`).
 *
 * How it runs: like Hugging Face with `past_key_values` of length n, the real tokens take
 * positions n..n+T−1. whet runs the model on n+T positions with n dummy rows (id 0) in front;
 * after the q,k,v projections of layer l (and, for the Llama family, after the rotary embedding:
 * `past_key_values` hold keys as they are, never rotated), `kvForward` overwrites the key and
 * value parts of the dummy rows with P_l (the query part is left as computed), so attention over
 * all n+T rows sees [P_k; K] and [P_v; V]. After the attention backward, `kvBackward` reads dP_l
 * from the key/value parts of the dummy rows' dqkv (summed over the batch) and then zeroes those
 * rows entirely (q, k and v): the dummy rows' own outputs are discarded, and without the zeroing
 * their gradients would flow through the projections into the dummy rows' residual stream and
 * from there into the attention of earlier layers, leaking into earlier layers' prefixes a
 * gradient that Hugging Face's computation, which has no such rows, does not have.
 *
 * One difference remains : the model scores the last virtual
 * position against the first real label (right for prompt tuning, where PEFT does the same);
 * Hugging Face's prefix tuning never scores the first label. Pass labels[0] = −100 per sequence to
 * train exactly as Hugging Face does.
 *
 * @module
 */

import type { VirtualTokens } from "../models/attention.ts";
import type { Ctx } from "../models/context.ts";
import type { Decoder } from "../models/decoder.ts";
import type { Param } from "../models/param.ts";
import { PeftKernels, type RowsSpec } from "../kernels/peft.ts";
import { Rng } from "../runtime/rng.ts";
import type { Tensor } from "../runtime/tensor.ts";
import {
  checkConfig,
  checkPeftFields,
  freezeBase,
  type PeftContext,
  type PeftInstance,
  type PeftMethod,
} from "./method.ts";
import {
  type AdapterConfigFile,
  readAdapterConfigFile,
  readAdapterWeights,
  writeAdapterFiles,
} from "./files.ts";
import { checkVirtual } from "./prompt.ts";

/** Prefix tuning configuration (PEFT's `PrefixTuningConfig` names). */
export interface PrefixConfig {
  /** Virtual tokens n per layer. Default 20. */
  num_virtual_tokens: number;
  /** Reparameterisation MLP: only false (PEFT's default) is supported. */
  prefix_projection: boolean;
  /** Standard deviation of the N(0, σ²) initialisation. Default 1 (PEFT's nn.Embedding). */
  init_std: number;
}

const DEFAULTS: PrefixConfig = { num_virtual_tokens: 20, prefix_projection: false, init_std: 1 };

/** Name of the injected parameter (n, L·2·Hkv·d). */
export const PREFIX_PARAM = "prefix_tuning.prompt_embeddings";

/** The key/value hooks of prefix tuning (see the module doc). */
class PrefixTokens implements VirtualTokens {
  readonly n: number;
  /** Prefix rows are keys and values only: the first real token has no position before it. */
  readonly scoresFirstLabel = false;
  readonly #P: Param;
  readonly #k: PeftKernels;
  readonly #heads: { H: number; Hkv: number; d: number; L: number };

  constructor(P: Param, heads: { H: number; Hkv: number; d: number; L: number }, k: PeftKernels) {
    this.n = P.shape[0];
    this.#P = P;
    this.#k = k;
    this.#heads = heads;
  }

  /** Keys and values of layer l: 2·Hkv·d columns from H·d in qkv, from 2l·Hkv·d in P. */
  #spec(layer: number, B: number, T: number): RowsSpec {
    const { H, Hkv, d, L } = this.#heads, kv = 2 * Hkv * d;
    return {
      B,
      T,
      n: this.n,
      ldd: H * d + kv,
      doff: H * d,
      w: kv,
      lds: L * kv,
      soff: layer * kv,
    };
  }

  /** qkv (B, n+T, (H+2Hkv)·d): k and v of rows 0..n−1 `= P[j, 2l·Hkv·d .. (2l+2)·Hkv·d)`. */
  kvForward(ctx: Ctx, layer: number, qkv: Tensor, B: number, T: number): void {
    this.#k.setRows(ctx.batch, this.#P.value, null, qkv, this.#spec(layer, B, T));
  }

  /** dP[j, 2l·Hkv·d..] `+=` Σ_b dqkv[b, j, H·d..); rows 0..n−1 of dqkv `= 0` (all of q, k, v). */
  kvBackward(ctx: Ctx, layer: number, dqkv: Tensor, B: number, T: number): void {
    const dP = this.#P.grad ?? ctx.acts.scratch("prefix_tuning.unused_grad", [...this.#P.shape]);
    this.#k.rowsGrad(ctx.batch, dqkv, dP, this.#spec(layer, B, T));
  }
}

/**
 * Prefix tuning applied to a model.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, prefix } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await prefix.apply(model, prefix.validate({ num_virtual_tokens: 4 }), 0);
 * if (inst.describe() !== "prefix tuning: 4 virtual tokens × 2 layers") throw new Error();
 * if (inst.trainable()[0] !== inst.prefix) throw new Error("only the prefixes are trained");
 * model.release();
 * ```
 */
export class PrefixInstance implements PeftInstance {
  /** `"prefix"`. */
  readonly method = "prefix";
  /** The configuration. */
  readonly config: Readonly<PrefixConfig>;
  /** The prefixes (n, L·2·Hkv·d) in PEFT's layout. */
  readonly prefix: Param;
  /** `[prefix]`. */
  readonly added: readonly Param[];
  /** Prefix tuning changes the outputs from the start (the real tokens attend to the prefixes). */
  readonly identityAtInit = false;
  readonly #model: Decoder;
  readonly #baseModel: string;

  /** Use {@linkcode prefix}.apply or `load`. */
  constructor(model: Decoder, config: PrefixConfig, P: Param, baseModel = "") {
    this.#model = model;
    this.#baseModel = baseModel;
    this.config = config;
    this.prefix = P;
    this.added = [P];
  }

  /** `[prefix]`. */
  trainable(): Param[] {
    return [this.prefix];
  }

  /**
   * PEFT's adapter_config.json, only the long-standing keys of PEFT's `PrefixTuningConfig`
   * (as LoRA's, REFERENCES.md: PEFT before 0.14 refuses a key it does not know): token_dim and
   * num_attention_heads as PEFT sets them for the model, by its key/value heads (n_embd and
   * n_head for GPT-2; see the module doc).
   */
  adapterConfig(baseModel = ""): Record<string, unknown> {
    const { Hkv, d, L } = this.#model.shape;
    return {
      base_model_name_or_path: baseModel || this.#baseModel || null,
      encoder_hidden_size: Hkv * d,
      inference_mode: true,
      num_attention_heads: Hkv,
      num_layers: L,
      num_transformer_submodules: 1,
      num_virtual_tokens: this.config.num_virtual_tokens,
      peft_type: "PREFIX_TUNING",
      prefix_projection: false,
      task_type: "CAUSAL_LM",
      token_dim: Hkv * d,
    };
  }

  /** Writes adapter_config.json + adapter_model.safetensors (`prompt_embeddings` (n, L·2·Hkv·d)). */
  async save(dir: string, baseModel = ""): Promise<void> {
    const [data] = await this.#model.gpu.read([this.prefix.value]);
    await writeAdapterFiles(dir, this.adapterConfig(baseModel), [
      ["prompt_embeddings", { shape: this.prefix.shape, data }],
    ]);
  }

  /** Loads the prefixes from a PEFT-layout folder (written here or by Python's PEFT). */
  async load(dir: string): Promise<void> {
    prefixSettings(await readAdapterConfigFile(dir), this.#model);
    const weights = await readAdapterWeights(dir);
    this.prefix.value.write(
      weights.tensor(["prompt_embeddings"], this.prefix.shape, "prefix tuning"),
    );
  }

  /** e.g. `prefix tuning: 20 virtual tokens × 12 layers`. */
  describe(): string {
    return `prefix tuning: ${this.config.num_virtual_tokens} virtual tokens × ${this.#model.shape.L} layers`;
  }
}

/**
 * Reads a PEFT prefix-tuning adapter_config.json into a {@linkcode PrefixConfig}.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, prefix, readPrefixConfig } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await prefix.apply(model, prefix.validate({ num_virtual_tokens: 4 }), 0);
 * const dir = await Deno.makeTempDir();
 * await inst.save(dir); // PEFT's PREFIX_TUNING layout
 * if ((await readPrefixConfig(dir)).num_virtual_tokens !== 4) throw new Error();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readPrefixConfig(dir: string): Promise<PrefixConfig> {
  return prefixSettings(await readAdapterConfigFile(dir), null);
}

/**
 * Every field of PEFT 0.17's PrefixTuningConfig, and two that later versions add and that do not
 * change a trained prefix (`peft_version`, and `init_weights`, an initialisation choice).
 */
const PEFT_FIELDS = [
  "auto_mapping",
  "base_model_name_or_path",
  "encoder_hidden_size",
  "inference_mode",
  "init_weights",
  "modules_to_save",
  "num_attention_heads",
  "num_layers",
  "num_transformer_submodules",
  "num_virtual_tokens",
  "peft_type",
  "peft_version",
  "prefix_projection",
  "revision",
  "task_type",
  "token_dim",
];

/**
 * Checks a prefix-tuning adapter_config.json's fields (sizes against `model`, when given) and
 * returns its settings. `encoder_hidden_size` is read by PEFT only with `prefix_projection`,
 * which whet refuses, so any value is accepted.
 */
function prefixSettings(
  config: AdapterConfigFile,
  model: Decoder | null,
  warn?: (message: string) => void,
): PrefixConfig {
  config.expect("peft_type", "PREFIX_TUNING");
  checkPeftFields(config, "prefix tuning");
  if (warn) config.warnUnknown(PEFT_FIELDS, warn);
  config.refuseUnless(
    "prefix_projection",
    [false],
    "a reparameterisation MLP (PEFT's prefix_projection), which whet does not implement",
  );
  config.refuseUnless(
    "num_transformer_submodules",
    [1],
    "whet's models are decoders, with 1 transformer submodule",
  );
  if (model) {
    const { Hkv, d, L } = model.shape;
    const size: [string, number, string][] = [
      ["token_dim", Hkv * d, "key/value width (key/value heads × head size)"],
      ["num_layers", L, "layers"],
      ["num_attention_heads", Hkv, "key/value heads"],
    ];
    for (const [key, value, what] of size) {
      config.refuseUnless(key, [value], `written for another model (this one's ${what}: ${value})`);
    }
  }
  return config.validate(() =>
    prefix.validate({ num_virtual_tokens: config.get("num_virtual_tokens") })
  );
}

/** Puts prefixes P (n, L·2·Hkv·d) on `model` (frozen): what apply and load share. */
async function attachPrefix(
  model: Decoder,
  cfg: PrefixConfig,
  data: Float32Array,
  baseModel: string,
): Promise<PrefixInstance> {
  const { H, Hkv, d, L } = model.shape, width = L * 2 * Hkv * d;
  checkVirtual(model, cfg.num_virtual_tokens, "prefix tuning");
  const k = await PeftKernels.create(model.gpu);
  freezeBase(model);
  const P = model.addParam(PREFIX_PARAM, [cfg.num_virtual_tokens, width], data);
  model.setVirtual(new PrefixTokens(P, { H, Hkv, d, L }, k));
  return new PrefixInstance(model, cfg, P, baseModel);
}

/**
 * The prefix-tuning method.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, Llama, llamaConfig, prefix } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await prefix.apply(model, prefix.validate({ num_virtual_tokens: 4 }), 0);
 * // One tensor (n, n_layer·2·n_embd), PEFT's layout.
 * if (inst.prefix.shape.join() !== "4,128") throw new Error("prefix shape");
 * model.release();
 * // Grouped-query attention: keys and values of the 2 kv heads of size 12 only.
 * const llama = await Llama.create(gpu, llamaConfig("llama-tiny"), { seed: 1 });
 * const gqa = await prefix.apply(llama, prefix.validate({ num_virtual_tokens: 4 }), 0);
 * if (gqa.prefix.shape.join() !== `4,${2 * 2 * 2 * 12}`) throw new Error("GQA prefix shape");
 * llama.release();
 * ```
 */
export const prefix: Omit<PeftMethod<PrefixConfig>, "apply" | "load"> & {
  apply(
    model: Decoder,
    config: PrefixConfig,
    seed: number,
    context?: PeftContext,
  ): Promise<PrefixInstance>;
  load(model: Decoder, config: AdapterConfigFile, context?: PeftContext): Promise<PrefixInstance>;
} = {
  name: "prefix",
  summary: "prefix tuning: trainable key/value prefixes in every attention layer",
  defaults: DEFAULTS,
  validate(c: Record<string, unknown>): PrefixConfig {
    const cfg = checkConfig("prefix", DEFAULTS, c);
    const n = cfg.num_virtual_tokens;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(
        `Cannot configure prefix tuning: "num_virtual_tokens" must be a positive integer, got ${n}`,
      );
    }
    if (cfg.prefix_projection) {
      throw new RangeError(
        `Cannot configure prefix tuning: "prefix_projection" (a reparameterisation MLP) is not supported; use false`,
      );
    }
    if (!(cfg.init_std > 0 && Number.isFinite(cfg.init_std))) {
      throw new RangeError(
        `Cannot configure prefix tuning: "init_std" must be positive, got ${cfg.init_std}`,
      );
    }
    return cfg;
  },
  async apply(
    model: Decoder,
    config: PrefixConfig,
    seed: number,
    context: PeftContext = {},
  ): Promise<PrefixInstance> {
    const cfg = prefix.validate(config as unknown as Record<string, unknown>);
    const n = cfg.num_virtual_tokens, { Hkv, d, L } = model.shape, width = L * 2 * Hkv * d;
    checkVirtual(model, n, "prefix tuning");
    const data = new Rng(seed).fillNormal(new Float32Array(n * width), cfg.init_std);
    return await attachPrefix(model, cfg, data as Float32Array, context.baseModel ?? "");
  },
  peftType: "PREFIX_TUNING",
  /**
   * Applies a PREFIX_TUNING folder: every field of PEFT 0.17's config is checked (sizes against
   * the model's key/value heads, `prefix_projection: true` refused, unknown fields warned about
   * by name), then the prefixes are read.
   */
  async load(
    model: Decoder,
    config: AdapterConfigFile,
    context: PeftContext = {},
  ): Promise<PrefixInstance> {
    const cfg = prefixSettings(config, model, context.warn ?? console.warn);
    const { Hkv, d, L } = model.shape;
    const data = (await readAdapterWeights(config.dir)).tensor(
      ["prompt_embeddings"],
      [cfg.num_virtual_tokens, L * 2 * Hkv * d],
      "prefix tuning",
    );
    const base = String(config.get("base_model_name_or_path") ?? "") || context.baseModel || "";
    return await attachPrefix(model, cfg, data, base);
  },
  reservedPositions(settings: Readonly<Record<string, unknown>>): number {
    const n = settings.num_virtual_tokens;
    return typeof n === "number" ? n : DEFAULTS.num_virtual_tokens;
  },
};
