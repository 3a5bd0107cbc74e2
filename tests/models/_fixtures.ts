import { type GPTConfig, gptConfig, Rng } from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import type { Weights } from "../ref/gpt2.ts";

/** A small GPT-2 whose dimensions are not multiples of any tile size: V 67, C 24, 3 heads of 8. */
export const SMALL: GPTConfig = gptConfig("tiny", {
  vocab_size: 67,
  n_positions: 16,
  n_embd: 24,
  n_layer: 2,
  n_head: 3,
});

/**
 * Random weights with larger spread than GPT-2's init (std 0.02 would make every block nearly
 * linear and the test weak): matrices N(0, 0.3²)… rounded to f32 so GPU and reference agree on inputs.
 */
export function randomWeights(cfg: GPTConfig, seed: number): Weights {
  const rng = new Rng(seed);
  const w: Weights = new Map();
  for (const [name, shape] of gpt2ParameterShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float64Array(n);
    const isLnWeight = /ln_(\d|f)\.weight$/.test(name);
    for (let i = 0; i < n; i++) {
      const r = rng.normal();
      v[i] = Math.fround(isLnWeight ? 1 + 0.1 * r : name.endsWith(".bias") ? 0.1 * r : 0.3 * r);
    }
    w.set(name, v);
  }
  return w;
}

/**
 * Whether element i of parameter `name` is a key bias (the middle third of `c_attn.bias`). Its exact
 * gradient is zero — adding b_k to every key shifts a row's scores by the constant q·b_k, which
 * the softmax ignores — so its computed gradient is rounding noise, and Adam, which normalises
 * each update to about lr, turns noise of either sign into full-size steps. Tests that compare
 * optimizer results skip these elements and check instead that their gradient is ~0.
 */
export function isKeyBias(cfg: GPTConfig, name: string, i: number): boolean {
  return name.endsWith("attn.c_attn.bias") && i >= cfg.n_embd && i < 2 * cfg.n_embd;
}

/** Weights rounded to f32 with their Hugging Face shapes, as `GPT.create` and checkpoints take them. */
export function f32Weights(
  w: Weights,
  cfg: GPTConfig,
): Map<string, { shape: readonly number[]; data: Float32Array }> {
  const shapes = gpt2ParameterShapes(cfg);
  return new Map(
    [...w].map(([k, v]) => [k, { shape: shapes.get(k)!, data: Float32Array.from(v) }]),
  );
}
