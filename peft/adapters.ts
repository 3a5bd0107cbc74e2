/**
 * Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2020) as AdapterHub's `adapters`
 * library builds them: a down-projection (C → C/reduction_factor, with bias), a nonlinearity and
 * an up-projection (with bias), added residually to a block's branch output before the block's own
 * residual add: `h ← h + up(act(down(h)))`. Placements: `houlsby` puts one after the attention
 * branch and one after the feed-forward branch; `pfeiffer` only after the feed-forward branch.
 * The base is frozen.
 *
 * Defaults follow AdapterHub's `SeqBnConfig` (Pfeiffer): reduction_factor 16, non_linearity
 * `relu`; its `DoubleSeqBnConfig` (Houlsby) uses `swish` — pass `non_linearity: "swish"` to match
 * it. The bottleneck size is ⌊C / reduction_factor⌋, at least 1, as AdapterHub computes it.
 * Initialisation is AdapterHub's `init_weights="mam_adapter"`: the down-projection weight
 * kaiming-uniform with a = √5 (U(−1/√C, 1/√C)), its bias 0, and the up-projection weight and bias
 * 0, so every adapter is the identity at the start. (AdapterHub's default `"bert"` init draws the
 * up-projection from N(0, 0.02²) and is not the identity; its `"houlsby"` init is a truncated
 * N(0, 10⁻⁴) for both.) Weights are stored as `nn.Linear` stores them: down (r, C), up (C, r).
 *
 * Files (a whet layout; Python's PEFT has no bottleneck adapters): `adapter_config.json`
 * (`"peft_type": "WHET_BOTTLENECK"`, `"whet_method": "bottleneck"` (all that files written before
 * the `peft_type` carried; still read), the configuration, `n_embd` and `bottleneck_size`; sorted
 * keys) + `adapter_model.safetensors` (metadata `{"format":"pt"}`) with tensors under the block's
 * module path (`h.{i}` for GPT-2, `model.layers.{i}` for the Llama family):
 * `….attn_adapter.down.weight` (r, C), `….down.bias` (r), `….up.weight` (C, r), `….up.bias` (C),
 * and the same under `….mlp_adapter`.
 *
 * @module
 */

import type { BranchAdapter } from "../models/block.ts";
import type { Ctx } from "../models/context.ts";
import type { Decoder } from "../models/decoder.ts";
import type { Param } from "../models/param.ts";
import { ADAPTER_ACTIVATIONS, type AdapterActivation, PeftKernels } from "../kernels/peft.ts";
import { Rng } from "../runtime/rng.ts";
import type { Tensor } from "../runtime/tensor.ts";
import {
  blockPath,
  checkConfig,
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

/** Bottleneck adapter configuration. */
export interface BottleneckConfig {
  /** `"houlsby"` (after attention and feed-forward) or `"pfeiffer"` (after feed-forward). Default `"pfeiffer"`. */
  placement: string;
  /** Bottleneck size is ⌊n_embd / reduction_factor⌋ (at least 1). Default 16. */
  reduction_factor: number;
  /** `relu` (default), `swish`, `gelu_new` (tanh form) or `gelu` (erf form). */
  non_linearity: string;
  /** Blocks that get adapters (empty: all). */
  layers: number[];
}

const DEFAULTS: BottleneckConfig = {
  placement: "pfeiffer",
  reduction_factor: 16,
  non_linearity: "relu",
  layers: [],
};

/**
 * A bottleneck adapter on one branch: `h ← h + up(act(down(h)))`.
 *
 * @example
 * ```ts
 * import { adapters, GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await adapters.apply(model, adapters.validate({ reduction_factor: 8 }), 0);
 * const adapter = inst.adapters[0]; // Pfeiffer placement: one per block, after the MLP
 * if (adapter.path !== "h.0.mlp_adapter" || adapter.r !== 4 || adapter.params().length !== 4) {
 *   throw new Error();
 * }
 * model.release();
 * ```
 */
export class BottleneckAdapter implements BranchAdapter {
  /** Path, e.g. `h.0.mlp_adapter` or `model.layers.0.mlp_adapter`. */
  readonly path: string;
  /** Down-projection weight (r, C). */
  readonly downW: Param;
  /** Down-projection bias (r). */
  readonly downB: Param;
  /** Up-projection weight (C, r). */
  readonly upW: Param;
  /** Up-projection bias (C). */
  readonly upB: Param;
  /** The nonlinearity. */
  readonly act: AdapterActivation;
  /** Whether the adapter runs (false: the identity). */
  active = true;
  readonly #k: PeftKernels;

  /** An adapter over existing parameters. */
  constructor(
    path: string,
    p: { downW: Param; downB: Param; upW: Param; upB: Param },
    act: AdapterActivation,
    kernels: PeftKernels,
  ) {
    this.path = path;
    this.downW = p.downW;
    this.downB = p.downB;
    this.upW = p.upW;
    this.upB = p.upB;
    this.act = act;
    this.#k = kernels;
  }

  /** Bottleneck size r. */
  get r(): number {
    return this.downB.shape[0];
  }

  /** The adapter's parameters. */
  params(): Param[] {
    return [this.downW, this.downB, this.upW, this.upB];
  }

  #scratch(ctx: Ctx, name: string, M: number, width: number): Tensor {
    return ctx.acts.scratch(`${this.path}.${name}`, [M, width]);
  }

  /** h (M,C) ← h + up(act(down(h))) in place; keeps h, down(h) and act(down(h)). */
  forward(ctx: Ctx, h: Tensor, M: number): void {
    if (!this.active) return;
    const C = this.upB.shape[0], r = this.r, mm = ctx.k.matmul, batch = ctx.batch;
    const hIn = this.#scratch(ctx, "h", M, C);
    const z = this.#scratch(ctx, "z", M, r), a = this.#scratch(ctx, "a", M, r);
    batch.copy(h, hIn);
    mm.gemm(batch, {
      a: hIn,
      b: this.downW.value,
      c: z,
      m: M,
      n: r,
      k: C,
      transB: true,
      bias: this.downB.value,
    });
    this.#k.actForward(batch, this.act, z, a);
    mm.gemm(batch, {
      a,
      b: this.upW.value,
      c: h,
      m: M,
      n: C,
      k: r,
      transB: true,
      bias: this.upB.value,
      accumulate: true,
    });
  }

  /** dy (M,C) = dL/d(output) → dL/dh (M,C) `=` (a scratch tensor); parameter gradients `+=`. */
  backward(ctx: Ctx, dy: Tensor, M: number): Tensor {
    if (!this.active) return dy;
    const C = this.upB.shape[0], r = this.r, mm = ctx.k.matmul, batch = ctx.batch;
    const hIn = this.#scratch(ctx, "h", M, C);
    const z = this.#scratch(ctx, "z", M, r), a = this.#scratch(ctx, "a", M, r);
    const da = this.#scratch(ctx, "da", M, r), dz = this.#scratch(ctx, "dz", M, r);
    const dh = this.#scratch(ctx, "dh", M, C);
    if (this.upB.grad) mm.biasBackward(batch, dy, this.upB.grad, M, C);
    if (this.upW.grad) {
      mm.gemm(batch, {
        a: dy,
        b: a,
        c: this.upW.grad,
        m: C,
        n: r,
        k: M,
        transA: true,
        accumulate: true,
      });
    }
    mm.gemm(batch, { a: dy, b: this.upW.value, c: da, m: M, n: r, k: C });
    this.#k.actBackward(batch, this.act, z, da, dz);
    if (this.downB.grad) mm.biasBackward(batch, dz, this.downB.grad, M, r);
    if (this.downW.grad) {
      mm.gemm(batch, {
        a: dz,
        b: hIn,
        c: this.downW.grad,
        m: r,
        n: C,
        k: M,
        transA: true,
        accumulate: true,
      });
    }
    batch.copy(dy, dh);
    mm.gemm(batch, { a: dz, b: this.downW.value, c: dh, m: M, n: C, k: r, accumulate: true });
    return dh;
  }
}

/**
 * Bottleneck adapters applied to a model.
 *
 * @example
 * ```ts
 * import { adapters, GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await adapters.apply(model, adapters.validate({}), 0);
 * if (inst.describe() !== "bottleneck adapters (pfeiffer, r=2, relu) in 2 layers") throw new Error();
 * inst.setActive(false); // the base model alone
 * inst.setActive(true);
 * model.release();
 * ```
 */
export class BottleneckInstance implements PeftInstance {
  /** `"adapters"`. */
  readonly method = "adapters";
  /** The configuration. */
  readonly config: Readonly<BottleneckConfig>;
  /** Every adapter's parameters. */
  readonly added: readonly Param[];
  /** The adapters, in block order (attention before feed-forward). */
  readonly adapters: readonly BottleneckAdapter[];
  readonly #model: Decoder;
  readonly #baseModel: string;

  /** Use {@linkcode adapters}.apply or `load`. */
  constructor(
    model: Decoder,
    config: BottleneckConfig,
    list: BottleneckAdapter[],
    baseModel = "",
  ) {
    this.#model = model;
    this.#baseModel = baseModel;
    this.config = config;
    this.adapters = list;
    this.added = list.flatMap((a) => a.params());
  }

  /** Every adapter's parameters. */
  trainable(): Param[] {
    return this.added.slice();
  }

  /** Turns the adapters on (default) or off (the base alone). */
  setActive(on: boolean): void {
    for (const a of this.adapters) a.active = on;
  }

  /** whet's adapter_config.json. */
  adapterConfig(baseModel = ""): Record<string, unknown> {
    const c = this.config;
    return {
      base_model_name_or_path: baseModel || this.#baseModel || null,
      bottleneck_size: this.adapters[0].r,
      init_weights: "mam_adapter",
      layers: c.layers,
      n_embd: this.#model.shape.C,
      non_linearity: c.non_linearity,
      peft_type: BOTTLENECK_TYPE,
      placement: c.placement,
      reduction_factor: c.reduction_factor,
      whet_method: "bottleneck",
    };
  }

  /** Writes adapter_config.json + adapter_model.safetensors (whet layout, see the module doc). */
  async save(dir: string, baseModel = ""): Promise<void> {
    const data = await this.#model.gpu.read(this.added.map((p) => p.value));
    await writeAdapterFiles(
      dir,
      this.adapterConfig(baseModel),
      this.added.map((p, i) => [p.name, { shape: p.shape, data: data[i] }] as const),
    );
  }

  /** Loads the adapters written by {@linkcode save}. */
  async load(dir: string): Promise<void> {
    bottleneckSettings(await readAdapterConfigFile(dir), this.#model);
    const weights = await readAdapterWeights(dir);
    for (const p of this.added) {
      p.value.write(weights.tensor([p.name], p.shape, "bottleneck adapters"));
    }
  }

  /** e.g. `bottleneck adapters (pfeiffer, r=48, relu) in 12 layers`. */
  describe(): string {
    const c = this.config;
    // One block per distinct path without its last segment (`h.3`, `model.layers.3`).
    const blocks = new Set(this.adapters.map((a) => a.path.slice(0, a.path.lastIndexOf("."))));
    return `bottleneck adapters (${c.placement}, r=${
      this.adapters[0].r
    }, ${c.non_linearity}) in ${blocks.size} layers`;
  }
}

/**
 * Reads whet's adapter_config.json of bottleneck adapters into a {@linkcode BottleneckConfig}.
 *
 * @example
 * ```ts
 * import { adapters, GPT, gptConfig, Gpu, readBottleneckConfig } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await adapters.apply(model, adapters.validate({ placement: "houlsby" }), 0);
 * const dir = await Deno.makeTempDir();
 * await inst.save(dir);
 * if ((await readBottleneckConfig(dir)).placement !== "houlsby") throw new Error();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readBottleneckConfig(dir: string): Promise<BottleneckConfig> {
  return bottleneckSettings(await readAdapterConfigFile(dir), null);
}

/** The `peft_type` of whet's bottleneck-adapter files. */
const BOTTLENECK_TYPE = "WHET_BOTTLENECK";

/** Every field whet writes in a bottleneck adapter's adapter_config.json. */
const FIELDS = [
  "base_model_name_or_path",
  "bottleneck_size",
  "init_weights",
  "layers",
  "n_embd",
  "non_linearity",
  "peft_type",
  "placement",
  "reduction_factor",
  "whet_method",
];

/** Checks a bottleneck adapter's adapter_config.json (sizes against `model`, when given). */
function bottleneckSettings(
  config: AdapterConfigFile,
  model: Decoder | null,
  warn?: (message: string) => void,
): BottleneckConfig {
  if (config.has("peft_type")) config.expect("peft_type", BOTTLENECK_TYPE);
  else config.expect("whet_method", "bottleneck");
  if (warn) config.warnUnknown(FIELDS, warn);
  if (model) {
    config.refuseUnless(
      "n_embd",
      [model.shape.C],
      `written for another model (this one's hidden size: ${model.shape.C})`,
    );
  }
  return config.validate(() =>
    adapters.validate({
      placement: config.get("placement"),
      reduction_factor: config.get("reduction_factor"),
      non_linearity: config.get("non_linearity"),
      layers: config.get("layers") ?? [],
    })
  );
}

/**
 * The bottleneck-adapter method.
 *
 * @example
 * ```ts
 * import { adapters, GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await adapters.apply(
 *   model,
 *   adapters.validate({ placement: "houlsby", reduction_factor: 8 }),
 *   0,
 * );
 * // Two adapters per block, bottleneck 32/8 = 4.
 * if (inst.adapters.length !== 4 || inst.adapters[0].r !== 4) throw new Error("adapters");
 * model.release();
 * ```
 */
export const adapters: Omit<PeftMethod<BottleneckConfig>, "apply" | "load"> & {
  apply(
    model: Decoder,
    config: BottleneckConfig,
    seed: number,
    context?: PeftContext,
  ): Promise<BottleneckInstance>;
  load(
    model: Decoder,
    config: AdapterConfigFile,
    context?: PeftContext,
  ): Promise<BottleneckInstance>;
} = {
  name: "adapters",
  summary: "bottleneck adapters (Houlsby or Pfeiffer placement) on the blocks' branches",
  defaults: DEFAULTS,
  validate(c: Record<string, unknown>): BottleneckConfig {
    const cfg = checkConfig("adapters", DEFAULTS, c);
    if (cfg.placement !== "houlsby" && cfg.placement !== "pfeiffer") {
      throw new RangeError(
        `Cannot configure adapters: "placement" must be "houlsby" or "pfeiffer", got ${
          JSON.stringify(cfg.placement)
        }`,
      );
    }
    if (!(cfg.reduction_factor > 0 && Number.isFinite(cfg.reduction_factor))) {
      throw new RangeError(
        `Cannot configure adapters: "reduction_factor" must be positive, got ${cfg.reduction_factor}`,
      );
    }
    if (!(ADAPTER_ACTIVATIONS as readonly string[]).includes(cfg.non_linearity)) {
      throw new RangeError(
        `Cannot configure adapters: "non_linearity" must be one of ${
          ADAPTER_ACTIVATIONS.join(", ")
        }, got ${JSON.stringify(cfg.non_linearity)}`,
      );
    }
    return cfg;
  },
  async apply(
    model: Decoder,
    config: BottleneckConfig,
    seed: number,
    context: PeftContext = {},
  ): Promise<BottleneckInstance> {
    const cfg = adapters.validate(config as unknown as Record<string, unknown>);
    const { C, L } = model.shape;
    const r = Math.max(1, Math.floor(C / cfg.reduction_factor));
    for (const l of cfg.layers) {
      if (!Number.isInteger(l) || l < 0 || l >= L) {
        throw new RangeError(`Cannot apply adapters: "layers" holds ${l}, outside 0..${L - 1}`);
      }
    }
    const blocks = model.blocks.filter((_, l) => cfg.layers.length === 0 || cfg.layers.includes(l));
    const houlsby = cfg.placement === "houlsby";
    for (const b of blocks) {
      if (b.mlpAdapter || (houlsby && b.attnAdapter)) {
        throw new RangeError(`Cannot apply adapters: block ${b.index} already has an adapter`);
      }
    }
    const k = await PeftKernels.create(model.gpu);
    freezeBase(model);
    const rng = new Rng(seed), bound = 1 / Math.sqrt(C);
    const make = (path: string) => {
      const downW = model.addParam(
        `${path}.down.weight`,
        [r, C],
        rng.fillUniform(new Float32Array(r * C), -bound, bound) as Float32Array,
        true,
      );
      const downB = model.addParam(`${path}.down.bias`, [r], new Float32Array(r));
      const upW = model.addParam(`${path}.up.weight`, [C, r], new Float32Array(C * r), true);
      const upB = model.addParam(`${path}.up.bias`, [C], new Float32Array(C));
      return new BottleneckAdapter(
        path,
        { downW, downB, upW, upB },
        cfg.non_linearity as AdapterActivation,
        k,
      );
    };
    const list: BottleneckAdapter[] = [];
    for (const b of blocks) {
      const at = blockPath(model, b.index);
      if (houlsby) {
        const a = make(`${at}.attn_adapter`);
        b.attnAdapter = a;
        list.push(a);
      }
      const m = make(`${at}.mlp_adapter`);
      b.mlpAdapter = m;
      list.push(m);
    }
    return new BottleneckInstance(model, cfg, list, context.baseModel ?? "");
  },
  peftType: BOTTLENECK_TYPE,
  /** Applies a folder written by {@linkcode BottleneckInstance.save}. */
  async load(
    model: Decoder,
    config: AdapterConfigFile,
    context: PeftContext = {},
  ): Promise<BottleneckInstance> {
    const cfg = bottleneckSettings(config, model, context.warn ?? console.warn);
    const weights = await readAdapterWeights(config.dir);
    const base = String(config.get("base_model_name_or_path") ?? "") || context.baseModel || "";
    const inst = await adapters.apply(model, cfg, context.seed ?? 0, {
      ...context,
      baseModel: base,
    });
    for (const p of inst.added) {
      p.value.write(weights.tensor([p.name], p.shape, "bottleneck adapters"));
    }
    return inst;
  },
};
