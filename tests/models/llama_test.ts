import assert from "node:assert/strict";
import {
  generate,
  Llama,
  type LlamaConfig,
  llamaConfig,
  llamaParameterShapes,
  type LlamaPresetName,
  loadModelCheckpoint,
  Rng,
  saveModelCheckpoint,
  type TensorData,
} from "../../mod.ts";
import { assertClose, centralDiff, gpu } from "../helpers.ts";
import { llamaRef, type Weights } from "../ref/llama.ts";

// llama-tiny: 4 query heads on 2 kv heads, untied head; smollm-tiny: 3 on 1, tied; qwen2-tiny: q/k/v biases.
const PRESETS: LlamaPresetName[] = ["llama-tiny", "smollm-tiny", "qwen2-tiny"];

/**
 * Random weights that keep activations O(1) (the init's std 0.02 would make every block nearly
 * linear and the test weak): matrices N(0, 0.15²) (a projection of an O(1) row of 36–88 entries
 * is then O(1)), embeddings and the head N(0, 0.3²), biases N(0, 0.1²), RMSNorm weights
 * 1 + N(0, 0.1²); rounded to f32 so the GPU and the reference see equal inputs.
 */
function randomWeights(cfg: LlamaConfig, seed: number): Weights {
  const rng = new Rng(seed);
  const w: Weights = new Map();
  for (const [name, shape] of llamaParameterShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = name.endsWith("norm.weight");
    const std = /embed_tokens|lm_head/.test(name)
      ? 0.3
      : norm || name.endsWith(".bias")
      ? 0.1
      : 0.15;
    const mean = norm ? 1 : 0;
    w.set(name, Float64Array.from({ length: n }, () => Math.fround(mean + std * rng.normal())));
  }
  return w;
}

/** Weights rounded to f32 with their Hugging Face shapes, as checkpoints and `Llama.create` take them. */
function f32Weights(w: Weights, cfg: LlamaConfig): Map<string, TensorData> {
  const shapes = llamaParameterShapes(cfg);
  return new Map(
    [...w].map(([k, v]) => [k, { shape: shapes.get(k)!, data: Float32Array.from(v) }]),
  );
}

function batchOf(rng: Rng, cfg: LlamaConfig, B: number, T: number) {
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  // Labels: the ids themselves, with the first 3 positions of each row masked (a "prompt").
  const labels = ids.map((id, i) => (i % T) < 3 ? -100 : id);
  return { ids, labels };
}

for (const preset of PRESETS) {
  Deno.test(`the float64 reference's gradients match central finite differences on sampled parameters (${preset})`, () => {
    const cfg = llamaConfig(preset), B = 2, T = 5;
    const w = randomWeights(cfg, 3);
    const { ids, labels } = batchOf(new Rng(8), cfg, B, T);
    const ref = llamaRef(cfg, w, ids, labels, B, T, true);
    assert.equal(ref.grads!.size, w.size, "every parameter has a gradient");
    const rng = new Rng(1);
    for (const name of w.keys()) {
      const x = w.get(name)!;
      for (let s = 0; s < 2; s++) {
        const i = rng.int(x.length);
        const fd = centralDiff(() => llamaRef(cfg, w, ids, labels, B, T).loss, x, i, 1e-5);
        const an = ref.grads!.get(name)![i];
        // Float64 central differences with h = 1e-5: truncation O(h²·f''') ~ 1e-10, rounding
        // ~1e-16/h ~ 1e-11, so 1e-6 absolute plus 1e-4 relative is far above both.
        assert.ok(
          Math.abs(fd - an) <= 1e-6 + 1e-4 * Math.abs(an),
          `${name}[${i}]: analytic ${an}, finite difference ${fd}`,
        );
      }
    }
  });
}

Deno.test("the float64 reference's grouped-query heads equal multi-head attention with each key/value head repeated (repeat_kv)", () => {
  const gqa = llamaConfig("llama-tiny"), B = 2, T = 5;
  const H = gqa.num_attention_heads, g = H / gqa.num_key_value_heads, d = gqa.head_dim;
  const C = gqa.hidden_size, L = gqa.num_hidden_layers;
  const mha = llamaConfig("llama-tiny", { num_key_value_heads: H });
  const w = randomWeights(gqa, 4);
  // Query head h reads key/value head ⌊h/g⌋: MHA's head h is a copy of GQA's head ⌊h/g⌋.
  const repeated: Weights = new Map(w);
  for (let l = 0; l < L; l++) {
    for (const n of ["k_proj", "v_proj"]) {
      const name = `model.layers.${l}.self_attn.${n}.weight`, src = w.get(name)!;
      const dst = new Float64Array(H * d * C);
      for (let h = 0; h < H; h++) {
        dst.set(
          src.subarray(Math.floor(h / g) * d * C, (Math.floor(h / g) + 1) * d * C),
          h * d * C,
        );
      }
      repeated.set(name, dst);
    }
  }
  const { ids, labels } = batchOf(new Rng(9), gqa, B, T);
  const a = llamaRef(gqa, w, ids, labels, B, T, true);
  const b = llamaRef(mha, repeated, ids, labels, B, T, true);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-12, `loss ${a.loss} vs ${b.loss}`);
  for (let i = 0; i < a.logits.length; i++) assert.ok(Math.abs(a.logits[i] - b.logits[i]) < 1e-12);
  // A shared head's gradient is the sum of its copies' gradients.
  for (const [name, ga] of a.grads!) {
    const gb = b.grads!.get(name)!;
    const summed = ga.length === gb.length ? gb : new Float64Array(ga.length);
    if (ga.length !== gb.length) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < d * C; i++) summed[Math.floor(h / g) * d * C + i] += gb[h * d * C + i];
      }
    }
    for (let i = 0; i < ga.length; i++) {
      assert.ok(Math.abs(ga[i] - summed[i]) < 1e-12, `${name}[${i}]: ${ga[i]} vs ${summed[i]}`);
    }
  }
});

Deno.test("the float64 reference's tied head equals an untied head holding a copy of embed_tokens, gradients summed", () => {
  const tied = llamaConfig("smollm-tiny"), B = 2, T = 5;
  const untied = llamaConfig("smollm-tiny", { tie_word_embeddings: false });
  const w = randomWeights(tied, 6);
  const copy: Weights = new Map(w);
  copy.set("lm_head.weight", w.get("model.embed_tokens.weight")!.slice());
  const { ids, labels } = batchOf(new Rng(10), tied, B, T);
  const a = llamaRef(tied, w, ids, labels, B, T, true);
  const b = llamaRef(untied, copy, ids, labels, B, T, true);
  assert.deepEqual(a.logits, b.logits);
  assert.equal(a.loss, b.loss);
  const embed = b.grads!.get("model.embed_tokens.weight")!, head = b.grads!.get("lm_head.weight")!;
  const ga = a.grads!.get("model.embed_tokens.weight")!;
  for (let i = 0; i < ga.length; i++) {
    assert.ok(Math.abs(ga[i] - (embed[i] + head[i])) < 1e-14, `embed_tokens[${i}]`);
  }
});

for (const preset of PRESETS) {
  Deno.test(`Llama matches the float64 reference: logits, loss and every parameter gradient (${preset}, test_gpt2.c style)`, async () => {
    const g = await gpu();
    const cfg = llamaConfig(preset), B = 2, T = 7;
    const w = randomWeights(cfg, 11);
    // The checkpoint goes through the Hugging Face layout on disk, as a user's would.
    const dir = await Deno.makeTempDir();
    try {
      await saveModelCheckpoint(dir, cfg, f32Weights(w, cfg));
      const ckpt = await loadModelCheckpoint(dir);
      if (ckpt.family !== "llama") throw new Error(`checkpoint read back as ${ckpt.family}`);
      const model = await Llama.create(g, ckpt.config, { weights: ckpt.weights });
      const acts = model.activations(B, T);
      const { ids, labels } = batchOf(new Rng(5), cfg, B, T);
      const ref = llamaRef(cfg, w, ids, labels, B, T, true);

      let batch = g.batch();
      model.forward(batch, acts, { ids, labels });
      await batch.submit();
      const [logits] = await g.read([acts.logits]);
      const loss = await model.meanLoss(acts);
      // As tests/models/gpt_test.ts: f32 through two blocks with O(1) activations (RMSNorm keeps
      // every block input at unit scale; logits up to ~8): errors ≤ 5e-6, ~1e-6 of the largest.
      assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits");
      assert.ok(
        Math.abs(loss - ref.loss) < 1e-5 * Math.abs(ref.loss),
        `loss ${loss} vs ${ref.loss}`,
      );

      batch = g.batch();
      model.zeroGrad(batch);
      model.forward(batch, acts, { ids, labels }, { training: true });
      model.backward(batch, acts);
      await batch.submit();
      const grads = await model.exportGrads();
      assert.deepEqual(
        [...grads.keys()].sort(),
        [...w.keys()].sort(),
        "every parameter has a gradient",
      );
      for (const [name, refGrad] of ref.grads!) {
        // Gradients are sums over B·T rows of products of f32 values; scale the tolerance by the
        // tensor's largest reference gradient so that near-zero entries are judged absolutely.
        let max = 0;
        for (const v of refGrad) max = Math.max(max, Math.abs(v));
        assertClose(
          grads.get(name)!,
          refGrad,
          { rtol: 1e-3, atol: 1e-4 * max + 1e-9 },
          `grad ${name}`,
        );
      }
      acts.release();
      model.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

// Prompts of 3 and 6 tokens in one batch: under the KV cache the two rows sit at different
// positions at every step, so a rotary offset taken from the wrong row shows up.
const PROMPTS = [[72, 101, 108], [1, 200, 33, 47, 255, 9]];

for (const preset of PRESETS) {
  Deno.test(`generate() on Llama: greedy ids and logits equal with and without the KV cache, and the float64 model's (${preset}, 2 prompts of different lengths)`, async () => {
    const cfg = llamaConfig(preset);
    const w = randomWeights(cfg, 12);
    const model = await Llama.create(await gpu(), cfg, {
      weights: f32Weights(w, cfg),
      trainable: false,
    });
    const run = async (cache: boolean) => {
      const logits = new Map<string, Float32Array>();
      const out = await generate(model, PROMPTS, {
        maxNewTokens: 8,
        cache,
        onLogits: (step, row, l) => logits.set(`${step},${row}`, l.slice()),
      });
      return { ...out, logits };
    };
    const cached = await run(true), full = await run(false);
    assert.deepEqual(cached.ids, full.ids);
    assert.deepEqual(cached.finishReasons, ["length", "length"]);
    assert.equal(cached.ids[0].length, 8);
    assert.deepEqual([...cached.logits.keys()], [...full.logits.keys()]);
    for (const [key, l] of cached.logits) {
      // As tests/models/generate_test.ts: the two paths run the same f32 arithmetic in different
      // orders; 1e-5 on O(1–10) logits leaves room without hiding a wrong position, key or weight.
      assertClose(l, full.logits.get(key)!, { rtol: 1e-5, atol: 1e-5 }, `cached logits ${key}`);
      // Each step's logits are the float64 model's at the last position of the sequence so far.
      const [step, row] = key.split(",").map(Number);
      const seq = [...PROMPTS[row], ...cached.ids[row].slice(0, step)];
      const ref = llamaRef(cfg, w, seq, seq.map(() => -100), 1, seq.length).logits;
      const V = cfg.vocab_size;
      assertClose(l, ref.subarray((seq.length - 1) * V), { rtol: 1e-4, atol: 1e-5 }, `ref ${key}`);
    }
    model.release();
  });
}
