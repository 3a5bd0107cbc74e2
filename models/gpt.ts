/**
 * The GPT-2 decoder: learned token and position embeddings, pre-LayerNorm blocks of fused-`c_attn`
 * attention and a GELU MLP (Conv1D layers, W stored (in, out)), the head tied to `wte`.
 * Parameters carry Hugging Face GPT-2 names (`h.0.attn.c_attn.weight`).
 *
 * @module
 */

import type { Gpu } from "../runtime/gpu.ts";
import { CausalSelfAttention } from "./attention.ts";
import { Block } from "./block.ts";
import { gpt2ParameterShapes } from "./checkpoint.ts";
import { configToHF, type GPTConfig, headDim, innerSize, validateConfig } from "./config.ts";
import { Kernels } from "./context.ts";
import { createParams, Decoder, type DecoderOptions } from "./decoder.ts";
import { Embeddings, LMHead } from "./embeddings.ts";
import { Linear } from "./linear.ts";
import { MLP } from "./mlp.ts";
import { LayerNormModule } from "./norms.ts";
import type { Param } from "./param.ts";

/** Options for {@linkcode GPT.create}. */
export type GPTOptions = DecoderOptions;

/** A GPT-2 block. */
export type GPTBlock = Block<LayerNormModule, CausalSelfAttention, MLP>;

/**
 * A GPT-2 decoder on the GPU.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
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
export class GPT extends Decoder {
  /** The configuration. */
  readonly config: GPTConfig;
  /** Position embedding (n_positions, C). */
  readonly wpe: Param;
  /** The blocks. */
  declare readonly blocks: GPTBlock[];
  /** Final LayerNorm. */
  declare readonly lnF: LayerNormModule;

  private constructor(gpu: Gpu, config: GPTConfig, kernels: Kernels, params: Map<string, Param>) {
    const p = (name: string) => params.get(name)!;
    const blocks: GPTBlock[] = [];
    for (let l = 0; l < config.n_layer; l++) {
      const h = `h.${l}.`;
      const linear = (name: string) => new Linear(p(h + name + ".weight"), p(h + name + ".bias"));
      const ln = (name: string) =>
        new LayerNormModule(
          p(h + name + ".weight"),
          p(h + name + ".bias"),
          config.layer_norm_epsilon,
        );
      blocks.push(
        new Block(
          l,
          ln("ln_1"),
          new CausalSelfAttention(
            linear("attn.c_attn"),
            linear("attn.c_proj"),
            config.n_head,
            l,
            config.attn_pdrop,
          ),
          ln("ln_2"),
          new MLP(linear("mlp.c_fc"), linear("mlp.c_proj")),
          config.resid_pdrop,
        ),
      );
    }
    const wte = p("wte.weight"), C = config.n_embd, H = config.n_head;
    super(gpu, kernels, {
      params,
      embeddings: new Embeddings(wte, p("wpe.weight")),
      blocks,
      norm: new LayerNormModule(p("ln_f.weight"), p("ln_f.bias"), config.layer_norm_epsilon),
      head: new LMHead(wte),
      shape: {
        C,
        L: config.n_layer,
        H,
        Hkv: H,
        d: C / H,
        F: innerSize(config),
        V: config.vocab_size,
        maxPositions: config.n_positions,
        split: false,
      },
      embdPdrop: config.embd_pdrop,
      blockPath: (l) => `h.${l}`,
    });
    this.config = config;
    this.wpe = p("wpe.weight");
  }

  /** The configuration as `config.json` holds it. */
  configJson(): Record<string, unknown> {
    return configToHF(this.config);
  }

  /**
   * Builds the model: parameters from `weights` where given, the rest initialised as Hugging Face
   * GPT-2 does (weights N(0, 0.02), every `c_proj.weight` N(0, 0.02/√(2·n_layer)), biases 0,
   * LayerNorm weights 1).
   */
  static async create(gpu: Gpu, config: GPTConfig, options: GPTOptions = {}): Promise<GPT> {
    const cfg = validateConfig(config);
    headDim(cfg);
    const kernels = await Kernels.create(gpu, options.baseDtype);
    const std = cfg.initializer_range;
    const projStd = std / Math.sqrt(2 * cfg.n_layer);
    const params = createParams(
      gpu,
      gpt2ParameterShapes(cfg),
      options,
      (name, n, rng) => {
        if (name.endsWith(".bias")) return new Float32Array(n);
        if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) return new Float32Array(n).fill(1);
        const s = name.endsWith("c_proj.weight") ? projStd : std;
        return rng.fillNormal(new Float32Array(n), s) as Float32Array;
      },
      (name, shape) => shape.length === 2 && !name.startsWith("wpe") && !name.startsWith("wte"),
    );
    return new GPT(gpu, cfg, kernels, params);
  }
}
