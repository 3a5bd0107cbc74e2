/**
 * The Llama-family decoder (`LlamaForCausalLM`, `Qwen2ForCausalLM`: SmolLM2, Qwen2.5, TinyLlama,
 * Llama 3.2): token embedding, pre-RMSNorm blocks of rotary grouped-query attention (`q_proj`,
 * `k_proj`, `v_proj`, `o_proj`; Qwen2 with q/k/v biases) and a SiLU-gated MLP (`gate_proj`,
 * `up_proj`, `down_proj`), the final `model.norm`, and the head: `lm_head` or, when
 * `tie_word_embeddings`, the token table. Weights are `nn.Linear`'s (out, in), parameters carry
 * Hugging Face names (`model.layers.0.self_attn.q_proj.weight`).
 *
 * @module
 */

import { Rotary } from "../kernels/mod.ts";
import type { Gpu } from "../runtime/gpu.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { LlamaAttention } from "./attention.ts";
import { Block } from "./block.ts";
import { Kernels } from "./context.ts";
import { createParams, Decoder, type DecoderOptions } from "./decoder.ts";
import { Embeddings, LMHead } from "./embeddings.ts";
import { llamaParameterShapes } from "./llama_checkpoint.ts";
import { type LlamaConfig, llamaConfigToHF, validateLlamaConfig } from "./llama_config.ts";
import { Linear } from "./linear.ts";
import { GatedMLP } from "./mlp.ts";
import { RMSNormModule } from "./norms.ts";
import type { Param } from "./param.ts";

/** A Llama-family block. */
export type LlamaBlock = Block<RMSNormModule, LlamaAttention, GatedMLP>;

/**
 * A Llama-family decoder on the GPU; the same API as {@linkcode GPT} (see models/decoder.ts).
 *
 * @example
 * ```ts
 * import { Gpu, Llama, llamaConfig } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await Llama.create(gpu, llamaConfig("llama-tiny"), { seed: 1 });
 * const acts = model.activations(1, 4);
 * const batch = gpu.batch();
 * model.forward(batch, acts, { ids: [72, 105, 33, 10], labels: [72, 105, 33, 10] });
 * await batch.submit();
 * const loss = await model.meanLoss(acts);
 * if (!(Math.abs(loss - Math.log(256)) < 0.1)) throw new Error(`untrained loss ${loss}`);
 * acts.release();
 * model.release();
 * ```
 */
export class Llama extends Decoder {
  /** The configuration. */
  readonly config: LlamaConfig;
  /** The blocks. */
  declare readonly blocks: LlamaBlock[];
  /** Final RMSNorm (`model.norm`). */
  declare readonly lnF: RMSNormModule;
  /** Rotary cos/sin table for every position the model takes (positions, d/2, 2). */
  readonly #rotary: Tensor;

  private constructor(
    gpu: Gpu,
    config: LlamaConfig,
    kernels: Kernels,
    params: Map<string, Param>,
  ) {
    const p = (name: string) => params.get(name)!;
    const maybe = (name: string) => params.get(name) ?? null;
    const { head_dim: d, num_attention_heads: H, num_key_value_heads: Hkv } = config;
    const rotary = gpu.tensor(
      [config.max_position_embeddings, d / 2, 2],
      Rotary.table(config.rope_theta, d, config.max_position_embeddings),
      "rotary",
    );
    const blocks: LlamaBlock[] = [];
    for (let l = 0; l < config.num_hidden_layers; l++) {
      const m = `model.layers.${l}.`;
      const linear = (name: string) =>
        new Linear(p(m + name + ".weight"), maybe(m + name + ".bias"), false);
      const norm = (name: string) =>
        new RMSNormModule(p(m + name + ".weight"), config.rms_norm_eps);
      const proj = {
        q: linear("self_attn.q_proj"),
        k: linear("self_attn.k_proj"),
        v: linear("self_attn.v_proj"),
        o: linear("self_attn.o_proj"),
      };
      blocks.push(
        new Block(
          l,
          norm("input_layernorm"),
          new LlamaAttention(proj, { H, Hkv, d }, rotary, l, config.attention_dropout),
          norm("post_attention_layernorm"),
          new GatedMLP(linear("mlp.gate_proj"), linear("mlp.up_proj"), linear("mlp.down_proj")),
          0,
        ),
      );
    }
    const embed = p("model.embed_tokens.weight");
    super(gpu, kernels, {
      params,
      embeddings: new Embeddings(embed, null),
      blocks,
      norm: new RMSNormModule(p("model.norm.weight"), config.rms_norm_eps),
      head: new LMHead(config.tie_word_embeddings ? embed : p("lm_head.weight")),
      shape: {
        C: config.hidden_size,
        L: config.num_hidden_layers,
        H,
        Hkv,
        d,
        F: config.intermediate_size,
        V: config.vocab_size,
        maxPositions: config.max_position_embeddings,
        split: true,
      },
      embdPdrop: 0,
      blockPath: (l) => `model.layers.${l}`,
    });
    this.config = config;
    this.#rotary = rotary;
  }

  /** The configuration as `config.json` holds it. */
  configJson(): Record<string, unknown> {
    return llamaConfigToHF(this.config);
  }

  /**
   * Builds the model: parameters from `weights` where given, the rest initialised as Hugging Face
   * does (`nn.Linear` and embedding weights N(0, initializer_range), biases 0, RMSNorm weights 1).
   */
  static async create(gpu: Gpu, config: LlamaConfig, options: DecoderOptions = {}): Promise<Llama> {
    const cfg = validateLlamaConfig(config);
    const kernels = await Kernels.create(gpu, options.baseDtype);
    const params = createParams(
      gpu,
      llamaParameterShapes(cfg),
      options,
      (name, n, rng) => {
        if (name.endsWith(".bias")) return new Float32Array(n);
        if (name.endsWith("norm.weight")) return new Float32Array(n).fill(1);
        return rng.fillNormal(new Float32Array(n), cfg.initializer_range) as Float32Array;
      },
      (name, shape) =>
        shape.length === 2 && name !== "model.embed_tokens.weight" && name !== "lm_head.weight",
    );
    return new Llama(gpu, cfg, kernels, params);
  }

  /** Releases every parameter, gradient and the rotary table. */
  override release(): void {
    super.release();
    this.#rotary.release();
  }
}
