/**
 * Prompt tuning (Lester et al., 2021) as Hugging Face PEFT implements it for causal LMs: n
 * trainable virtual tokens P (n, C) are prepended to the input embeddings; the base stays frozen.
 *
 * Positions: PEFT concatenates P to `inputs_embeds` and the model numbers positions over the
 * whole sequence, so virtual token j sits at position j and the real tokens take positions
 * n..n+T−1. GPT-2 adds position embeddings (`GPT2Model.forward`: `position_ids =
 * arange(past_length, past_length + seq_len)`, `hidden = inputs_embeds + wpe(position_ids)`), so
 * virtual row j is `P[j] + wpe[j]`; the Llama family has no position table (its rotary embedding
 * rotates row j's query and key by position j inside attention), so virtual row j is `P[j]`. The
 * virtual positions carry label −100, so the last virtual position is scored against the first
 * real label, as in PEFT. whet runs the model on n+T positions with dummy ids 0 in front; after
 * the embedding, `embedForward` overwrites rows 0..n−1 with `P[j] (+ wpe[j])`, and
 * `embedBackward` takes `dP[j] += Σ_b dEncoded[b, j]` and zeroes those rows so that no gradient
 * reaches the token table's row 0 (the dummy id) or `wpe[0..n−1]` through them. (Embedding
 * dropout, when configured, is applied before the overwrite, so the virtual rows are not dropped
 * out; PEFT drops them with the rest.)
 *
 * Initialisation (PEFT's `prompt_tuning_init`): `RANDOM` — N(0, 1), the default init of
 * `torch.nn.Embedding` that PEFT's `PromptEmbedding` uses; `SAMPLE_VOCAB` — rows of the token table
 * (`wte`, the Llama family's `model.embed_tokens`) at uniformly random ids; `TEXT` — its rows at
 * the ids of a text (`init_text_ids`, which the caller tokenises), truncated or repeated to n.
 *
 * Files: Hugging Face PEFT's layout, `adapter_config.json` (`peft_type: "PROMPT_TUNING"`, sorted
 * keys; `token_dim` the hidden size, `num_attention_heads` the query heads: PEFT adjusts them for
 * grouped-query attention only for prefix tuning) + `adapter_model.safetensors` holding one
 * tensor `prompt_embeddings` (n, hidden size) with
 * metadata `{"format":"pt"}`; loads from files written here or by Python's PEFT.
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

/** Prompt tuning configuration (PEFT's `PromptTuningConfig` names where they exist). */
export interface PromptConfig {
  /** Virtual tokens n (20–100 typical). Default 20. */
  num_virtual_tokens: number;
  /** `"RANDOM"` (N(0,1)), `"SAMPLE_VOCAB"` or `"TEXT"` (lower case accepted). Default `"RANDOM"`. */
  prompt_tuning_init: string;
  /** Token ids of the initialisation text (needed for `TEXT`; the CLI tokenises the text). */
  init_text_ids: number[];
  /** The initialisation text, recorded in adapter_config.json. */
  prompt_tuning_init_text: string;
  /** Tokenizer name recorded in adapter_config.json (PEFT needs it to rebuild a `TEXT` init). */
  tokenizer_name_or_path: string;
}

const DEFAULTS: PromptConfig = {
  num_virtual_tokens: 20,
  prompt_tuning_init: "RANDOM",
  init_text_ids: [],
  prompt_tuning_init_text: "",
  tokenizer_name_or_path: "",
};

const INITS = ["RANDOM", "SAMPLE_VOCAB", "TEXT"];

/** Name of the injected parameter holding P (n, C). */
export const PROMPT_PARAM = "prompt_tuning.prompt_embeddings";

/** n rows of `wte` (V, C) at `ids`, as an (n, C) array. */
function wteRows(wte: Float32Array, ids: readonly number[], C: number): Float32Array {
  const out = new Float32Array(ids.length * C);
  ids.forEach((id, j) => out.set(wte.subarray(id * C, (id + 1) * C), j * C));
  return out;
}

/**
 * The ids PEFT's `TEXT` init uses: the text's ids truncated, or repeated and truncated, to n.
 *
 * @example
 * ```ts
 * import { textInitIds } from "../mod.ts";
 * if (textInitIds([1, 2, 3], 7).join() !== "1,2,3,1,2,3,1") throw new Error("repeated");
 * if (textInitIds([1, 2, 3], 2).join() !== "1,2") throw new Error("truncated");
 * ```
 */
export function textInitIds(ids: readonly number[], n: number): number[] {
  if (ids.length === 0) {
    throw new RangeError(`Cannot initialise prompt tuning from text: "init_text_ids" is empty`);
  }
  const reps = Math.ceil(n / ids.length);
  return Array.from({ length: reps }, () => ids).flat().slice(0, n);
}

/** The virtual-token hooks of prompt tuning (see the module doc). */
class PromptTokens implements VirtualTokens {
  readonly n: number;
  readonly #P: Param;
  readonly #wpe: Param | null;
  readonly #k: PeftKernels;

  constructor(P: Param, wpe: Param | null, k: PeftKernels) {
    this.n = P.shape[0];
    this.#P = P;
    this.#wpe = wpe;
    this.#k = k;
  }

  #spec(B: number, T: number): RowsSpec {
    const C = this.#P.shape[1];
    return { B, T, n: this.n, ldd: C, doff: 0, w: C, lds: C, soff: 0 };
  }

  /** encoded (B, n+T, C): rows 0..n−1 of each sequence `= P[j] + wpe[j]` (`= P[j]` without wpe). */
  embedForward(ctx: Ctx, encoded: Tensor, B: number, T: number): void {
    this.#k.setRows(ctx.batch, this.#P.value, this.#wpe?.value ?? null, encoded, this.#spec(B, T));
  }

  /** dP (n,C) `+=` Σ_b dEncoded[b, 0..n−1]; those rows of dEncoded `= 0`. */
  embedBackward(ctx: Ctx, dEncoded: Tensor, B: number, T: number): void {
    const dP = this.#P.grad ?? ctx.acts.scratch("prompt_tuning.unused_grad", [...this.#P.shape]);
    this.#k.rowsGrad(ctx.batch, dEncoded, dP, this.#spec(B, T));
  }
}

/**
 * Prompt tuning applied to a model.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, prompt } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await prompt.apply(model, prompt.validate({ num_virtual_tokens: 4 }), 0);
 * if (inst.describe() !== "prompt tuning: 4 virtual tokens (RANDOM init)") throw new Error();
 * if (inst.prompt.shape.join() !== "4,32" || inst.initIds !== null) throw new Error();
 * model.release();
 * ```
 */
export class PromptInstance implements PeftInstance {
  /** `"prompt"`. */
  readonly method = "prompt";
  /** The configuration. */
  readonly config: Readonly<PromptConfig>;
  /** The virtual tokens P (n, C). */
  readonly prompt: Param;
  /** `[prompt]`. */
  readonly added: readonly Param[];
  /** P at initialisation (the reference for the interpretability report's distances). */
  readonly initial: Float32Array;
  /** The ids P was copied from (SAMPLE_VOCAB, TEXT), or null (RANDOM). */
  readonly initIds: readonly number[] | null;
  /** Prompt tuning changes the outputs from the start (the model sees n extra tokens). */
  readonly identityAtInit = false;
  readonly #model: Decoder;
  readonly #baseModel: string;

  /** Use {@linkcode prompt}.apply or `load`. */
  constructor(
    model: Decoder,
    config: PromptConfig,
    P: Param,
    initial: Float32Array,
    initIds: number[] | null,
    baseModel = "",
  ) {
    this.#model = model;
    this.#baseModel = baseModel;
    this.config = config;
    this.prompt = P;
    this.added = [P];
    this.initial = initial;
    this.initIds = initIds;
  }

  /** The model it was applied to. */
  get model(): Decoder {
    return this.#model;
  }

  /** `[prompt]`. */
  trainable(): Param[] {
    return [this.prompt];
  }

  /**
   * PEFT's adapter_config.json for these virtual tokens: only the long-standing keys of PEFT's
   * `PromptTuningConfig` (as LoRA's, REFERENCES.md: PEFT before 0.14 refuses a key it does not
   * know, and every version defaults a missing one). `tokenizer_name_or_path` is the configured one, else the base model's
   * name: PEFT's config check refuses a TEXT init without it.
   */
  adapterConfig(baseModel = ""): Record<string, unknown> {
    const m = this.#model.shape, c = this.config;
    const base = baseModel || this.#baseModel;
    const text = c.prompt_tuning_init === "TEXT";
    const tokenizer = c.tokenizer_name_or_path || base;
    if (text && tokenizer === "") {
      throw new Error(
        `Cannot save prompt tuning: a TEXT init needs "tokenizer_name_or_path" (PEFT's PromptTuningConfig refuses it empty); set it, or pass the base model's name`,
      );
    }
    return {
      base_model_name_or_path: base || null,
      inference_mode: true,
      num_attention_heads: m.H,
      num_layers: m.L,
      num_transformer_submodules: 1,
      num_virtual_tokens: c.num_virtual_tokens,
      peft_type: "PROMPT_TUNING",
      prompt_tuning_init: c.prompt_tuning_init,
      prompt_tuning_init_text: text ? c.prompt_tuning_init_text : null,
      task_type: "CAUSAL_LM",
      token_dim: m.C,
      // Only a TEXT init needs a tokenizer name; PEFT writes null otherwise.
      tokenizer_name_or_path: (text ? tokenizer : c.tokenizer_name_or_path) || null,
    };
  }

  /** Writes adapter_config.json + adapter_model.safetensors (`prompt_embeddings`, (n, C)). */
  async save(dir: string, baseModel = ""): Promise<void> {
    const config = this.adapterConfig(baseModel);
    const [data] = await this.#model.gpu.read([this.prompt.value]);
    await writeAdapterFiles(dir, config, [
      ["prompt_embeddings", { shape: this.prompt.shape, data }],
    ]);
  }

  /** Loads P from a PEFT-layout folder (written here or by Python's PEFT). */
  async load(dir: string): Promise<void> {
    const config = await readAdapterConfigFile(dir);
    config.expect("peft_type", "PROMPT_TUNING");
    const weights = await readAdapterWeights(dir);
    this.prompt.value.write(
      weights.tensor(["prompt_embeddings"], this.prompt.shape, "prompt tuning"),
    );
  }

  /** e.g. `prompt tuning: 20 virtual tokens (TEXT init)`. */
  describe(): string {
    return `prompt tuning: ${this.config.num_virtual_tokens} virtual tokens (${this.config.prompt_tuning_init} init)`;
  }
}

/**
 * Reads a PEFT prompt-tuning adapter_config.json into a {@linkcode PromptConfig}.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, prompt, readPromptConfig } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await prompt.apply(model, prompt.validate({ num_virtual_tokens: 4 }), 0);
 * const dir = await Deno.makeTempDir();
 * await inst.save(dir); // PEFT's PROMPT_TUNING layout
 * const cfg = await readPromptConfig(dir);
 * if (cfg.num_virtual_tokens !== 4 || cfg.prompt_tuning_init !== "RANDOM") throw new Error();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readPromptConfig(dir: string): Promise<PromptConfig> {
  const settings = promptSettings(await readAdapterConfigFile(dir), null);
  // Without a model or tokenizer the text's ids are unknown; loading overwrites P anyway.
  return settings.prompt_tuning_init === "TEXT"
    ? { ...settings, prompt_tuning_init: "RANDOM" }
    : settings;
}

/** Every field of PEFT 0.17's PromptTuningConfig (and `peft_version`, which later ones add). */
const PEFT_FIELDS = [
  "auto_mapping",
  "base_model_name_or_path",
  "inference_mode",
  "modules_to_save",
  "num_attention_heads",
  "num_layers",
  "num_transformer_submodules",
  "num_virtual_tokens",
  "peft_type",
  "peft_version",
  "prompt_tuning_init",
  "prompt_tuning_init_text",
  "revision",
  "task_type",
  "token_dim",
  "tokenizer_kwargs",
  "tokenizer_name_or_path",
];

/**
 * Checks a prompt-tuning adapter_config.json's fields (against `model`, when given) and returns
 * its settings. `init_text_ids` is empty: the text's ids need the tokenizer.
 */
function promptSettings(
  config: AdapterConfigFile,
  model: Decoder | null,
  warn?: (message: string) => void,
): PromptConfig {
  config.expect("peft_type", "PROMPT_TUNING");
  checkPeftFields(config, "prompt tuning");
  if (warn) config.warnUnknown(PEFT_FIELDS, warn);
  config.refuseUnless(
    "num_transformer_submodules",
    [1],
    "whet's models are decoders, with 1 transformer submodule",
  );
  if (model) {
    const { C, H, L } = model.shape;
    const size: [string, number, string][] = [
      ["token_dim", C, "hidden size"],
      ["num_layers", L, "layers"],
      ["num_attention_heads", H, "attention heads"],
    ];
    for (const [key, value, what] of size) {
      config.refuseUnless(key, [value], `written for another model (this one's ${what}: ${value})`);
    }
  }
  const init = config.get("prompt_tuning_init") ?? "RANDOM";
  const text = config.get("prompt_tuning_init_text") ?? null;
  const textInit = typeof init === "string" && init.toUpperCase() === "TEXT";
  if (textInit && text === null) {
    throw config.error("prompt_tuning_init_text", "is null with a TEXT init, which PEFT refuses");
  }
  const settings = config.validate(() =>
    prompt.validate({
      num_virtual_tokens: config.get("num_virtual_tokens"),
      // A file's TEXT init may have an empty text (the ids were given directly): the values to
      // load are in the file, so only apply needs the text; it is checked as RANDOM here.
      prompt_tuning_init: textInit ? "RANDOM" : init,
      prompt_tuning_init_text: text ?? "",
      tokenizer_name_or_path: config.get("tokenizer_name_or_path") ?? "",
    })
  );
  return textInit ? { ...settings, prompt_tuning_init: "TEXT" } : settings;
}

/**
 * Puts prompt P (n, C) on `model` (frozen) as its virtual tokens: what apply and load share.
 */
async function attachPrompt(
  model: Decoder,
  cfg: PromptConfig,
  data: Float32Array,
  initial: Float32Array,
  initIds: number[] | null,
  baseModel: string,
): Promise<PromptInstance> {
  const n = cfg.num_virtual_tokens, { C } = model.shape;
  checkVirtual(model, n, "prompt tuning");
  const k = await PeftKernels.create(model.gpu);
  freezeBase(model);
  const P = model.addParam(PROMPT_PARAM, [n, C], data);
  model.setVirtual(new PromptTokens(P, model.embeddings.wpe, k));
  return new PromptInstance(model, cfg, P, initial, initIds, baseModel);
}

/** The ids of a TEXT init's text (null when the tokenizer gives none), truncated or repeated to n. */
function textIds(cfg: PromptConfig, context: PeftContext): number[] | null {
  if (cfg.init_text_ids.length > 0) return textInitIds(cfg.init_text_ids, cfg.num_virtual_tokens);
  const ids = context.tokenizer?.encode(cfg.prompt_tuning_init_text) ?? [];
  return ids.length > 0 ? textInitIds(ids, cfg.num_virtual_tokens) : null;
}

/** Rows `ids` of the model's token table, or an error naming an id outside the vocabulary. */
async function tokenRows(model: Decoder, ids: readonly number[]): Promise<Float32Array> {
  const { C, V } = model.shape;
  const bad = ids.find((id) => id >= V);
  if (bad !== undefined) {
    throw new RangeError(
      `Cannot initialise prompt tuning: token id ${bad} is outside the vocabulary of ${V}`,
    );
  }
  const [wte] = await model.gpu.read([model.wte.value]);
  return wteRows(wte, ids, C);
}

/** Checks the virtual-token count n against the model and reserves the model's virtual slot. */
export function checkVirtual(model: Decoder, n: number, what: string): void {
  if (model.virtual) {
    throw new RangeError(`Cannot apply ${what}: the model already has virtual tokens`);
  }
  const max = model.shape.maxPositions;
  if (n >= max) {
    const name = "model_type" in model.config ? "max_position_embeddings" : "n_positions";
    throw new RangeError(
      `Cannot apply ${what}: ${n} virtual tokens leave no position for real tokens (${name}=${max})`,
    );
  }
}

/**
 * The prompt-tuning method.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, prompt } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await prompt.apply(model, prompt.validate({ num_virtual_tokens: 4 }), 0);
 * const acts = model.activations(1, 3); // 4 virtual + 3 real positions
 * const batch = gpu.batch();
 * model.forward(batch, acts, { ids: [72, 105, 33] });
 * await batch.submit();
 * if (acts.T !== 7 || inst.trainable()[0].shape[0] !== 4) throw new Error("prompt tuning");
 * acts.release();
 * model.release();
 * ```
 */
export const prompt: Omit<PeftMethod<PromptConfig>, "apply" | "load"> & {
  apply(
    model: Decoder,
    config: PromptConfig,
    seed: number,
    context?: PeftContext,
  ): Promise<PromptInstance>;
  load(model: Decoder, config: AdapterConfigFile, context?: PeftContext): Promise<PromptInstance>;
} = {
  name: "prompt",
  summary: "prompt tuning: n trainable virtual tokens prepended to the input embeddings",
  defaults: DEFAULTS,
  validate(c: Record<string, unknown>): PromptConfig {
    const cfg = checkConfig("prompt", DEFAULTS, c);
    const n = cfg.num_virtual_tokens;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(
        `Cannot configure prompt tuning: "num_virtual_tokens" must be a positive integer, got ${n}`,
      );
    }
    const init = cfg.prompt_tuning_init.toUpperCase();
    if (!INITS.includes(init)) {
      throw new RangeError(
        `Cannot configure prompt tuning: "prompt_tuning_init" must be one of ${
          INITS.join(", ")
        }, got ${JSON.stringify(cfg.prompt_tuning_init)}`,
      );
    }
    if (!cfg.init_text_ids.every((id) => Number.isInteger(id) && id >= 0)) {
      throw new RangeError(
        `Cannot configure prompt tuning: "init_text_ids" must hold token ids, got ${
          JSON.stringify(cfg.init_text_ids)
        }`,
      );
    }
    if (init === "TEXT" && cfg.init_text_ids.length === 0 && cfg.prompt_tuning_init_text === "") {
      throw new RangeError(
        `Cannot configure prompt tuning: "prompt_tuning_init" TEXT needs "prompt_tuning_init_text" or "init_text_ids"`,
      );
    }
    return { ...cfg, prompt_tuning_init: init };
  },
  async apply(
    model: Decoder,
    config: PromptConfig,
    seed: number,
    context: PeftContext = {},
  ): Promise<PromptInstance> {
    const valid = prompt.validate(config as unknown as Record<string, unknown>);
    const cfg = {
      ...valid,
      // PEFT's config check needs a tokenizer name with a TEXT init; the base model's serves.
      tokenizer_name_or_path: valid.tokenizer_name_or_path ||
        (valid.prompt_tuning_init === "TEXT"
          ? context.baseModel || context.tokenizer?.name || ""
          : ""),
    };
    let initIds: number[] | null = null;
    if (cfg.prompt_tuning_init === "TEXT") {
      initIds = textIds(cfg, context);
      if (initIds === null) {
        throw new RangeError(
          `Cannot apply prompt tuning: TEXT initialisation needs "init_text_ids" or a tokenizer to tokenise "prompt_tuning_init_text"`,
        );
      }
      if (cfg.init_text_ids.length === 0) {
        cfg.init_text_ids = context.tokenizer!.encode(cfg.prompt_tuning_init_text);
      }
    }
    const n = cfg.num_virtual_tokens, { C, V } = model.shape;
    checkVirtual(model, n, "prompt tuning");
    const rng = new Rng(seed);
    let data: Float32Array;
    if (cfg.prompt_tuning_init === "RANDOM") {
      data = rng.fillNormal(new Float32Array(n * C), 1) as Float32Array;
    } else {
      initIds ??= Array.from({ length: n }, () => rng.int(V));
      data = await tokenRows(model, initIds);
    }
    return await attachPrompt(model, cfg, data, data.slice(), initIds, context.baseModel ?? "");
  },
  peftType: "PROMPT_TUNING",
  /**
   * Applies a PROMPT_TUNING folder: every field of PEFT 0.17's config is checked (sizes against
   * the model, unknown fields warned about by name), P is read, and with `context.tokenizer` a
   * TEXT init's ids are known again, so `initial` holds the rows P started from (otherwise
   * `initial` is P as loaded).
   */
  async load(
    model: Decoder,
    config: AdapterConfigFile,
    context: PeftContext = {},
  ): Promise<PromptInstance> {
    const cfg = promptSettings(config, model, context.warn ?? console.warn);
    const data = (await readAdapterWeights(config.dir)).tensor(
      ["prompt_embeddings"],
      [cfg.num_virtual_tokens, model.shape.C],
      "prompt tuning",
    );
    let initIds = cfg.prompt_tuning_init === "TEXT" ? textIds(cfg, context) : null;
    if (initIds?.some((id) => id >= model.shape.V)) {
      (context.warn ?? console.warn)(
        `warning: ${config.file}: the tokenizer's ids of prompt_tuning_init_text exceed the model's vocabulary of ${model.shape.V}; the prompt's initial rows are taken as loaded`,
      );
      initIds = null;
    }
    if (initIds) cfg.init_text_ids = context.tokenizer!.encode(cfg.prompt_tuning_init_text);
    const initial = initIds ? await tokenRows(model, initIds) : data.slice();
    const base = String(config.get("base_model_name_or_path") ?? "") || context.baseModel || "";
    return await attachPrompt(model, cfg, data, initial, initIds, base);
  },
  reservedPositions(settings: Readonly<Record<string, unknown>>): number {
    const n = settings.num_virtual_tokens;
    return typeof n === "number" ? n : DEFAULTS.num_virtual_tokens;
  },
};
