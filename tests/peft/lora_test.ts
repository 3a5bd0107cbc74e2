import assert from "node:assert/strict";
import {
  GPT,
  type GPTConfig,
  lora,
  type LoraInstance,
  readLoraConfig,
  readSafetensors,
  Rng,
} from "../../mod.ts";
import { assertClose, gpu } from "../helpers.ts";
import { f32Weights, randomWeights, SMALL } from "../models/_fixtures.ts";
import { gpt2Ref } from "../ref/gpt2.ts";

const B = 2, T = 6;

function inputs(cfg: GPTConfig, seed: number) {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  return { ids, labels: ids.map((id, i) => (i % T) < 2 ? -100 : id) };
}

async function logitsOf(model: GPT, ids: number[]): Promise<Float32Array> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, { ids });
  await batch.submit();
  const [out] = await model.gpu.read([acts.logits]);
  acts.release();
  return out;
}

/** Gives every B a random value so the adapter changes the model (B starts at zero). */
async function randomizeB(model: GPT, inst: LoraInstance, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const p of inst.added) {
    if (p.name.includes("lora_B")) {
      p.value.write(rng.fillNormal(new Float32Array(p.value.size), 0.5) as Float32Array);
    }
  }
  await model.gpu.sync();
}

Deno.test("lora.apply() is a no-op until trained: logits equal the base model's exactly", async () => {
  const g = await gpu();
  const w = f32Weights(randomWeights(SMALL, 1), SMALL);
  const base = await GPT.create(g, SMALL, { weights: w });
  const { ids } = inputs(SMALL, 2);
  const before = await logitsOf(base, ids);
  const inst = await lora.apply(
    base,
    lora.validate({ r: 4, lora_alpha: 8, target_modules: ["c_attn", "c_fc"] }),
    3,
  );
  assert.equal(
    inst.added.length,
    2 * 2 * SMALL.n_layer,
    "A and B on c_attn and c_fc of each block",
  );
  assert.deepEqual(await logitsOf(base, ids), before);
  const counts = base.countParameters();
  const expected = SMALL.n_layer * (4 * (24 + 72) + 4 * (24 + 96));
  assert.equal(counts.trainable, expected, "only A and B are trainable");
  base.release();
});

Deno.test("LoRA gradients of A and B match the float64 reference through the merged weight", async () => {
  const g = await gpu();
  const cfg = SMALL;
  const w = randomWeights(cfg, 4);
  const model = await GPT.create(g, cfg, { weights: f32Weights(w, cfg) });
  const config = lora.validate({ r: 3, lora_alpha: 6, target_modules: ["c_attn", "mlp.c_proj"] });
  const inst = await lora.apply(model, config, 5);
  await randomizeB(model, inst, 6);
  const { ids, labels } = inputs(cfg, 7);
  const acts = model.activations(B, T);
  const batch = g.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, { ids, labels }, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const grads = await model.exportGrads();
  assert.deepEqual(
    [...grads.keys()].sort(),
    inst.added.map((p) => p.name).sort(),
    "only LoRA parameters have gradients",
  );

  // Reference: W_eff = W + s·Aᵀ·Bᵀ; dA = s·Bᵀ·dW_effᵀ (r,in), dB = s·dW_effᵀ·Aᵀ (out,r).
  const s = config.lora_alpha / config.r, r = config.r;
  const values = new Map<string, Float64Array>();
  for (const p of inst.added) values.set(p.name, Float64Array.from(await p.value.read()));
  const eff = new Map([...w].map(([k, v]) => [k, v.slice()]));
  const layers = inst.layers.map((l) => ({ path: l.path, nIn: l.nIn, nOut: l.nOut }));
  for (const { path, nIn, nOut } of layers) {
    const A = values.get(`${path}.lora_A.default.weight`)!,
      Bm = values.get(`${path}.lora_B.default.weight`)!;
    const W = eff.get(`${path}.weight`)!;
    for (let i = 0; i < nIn; i++) {
      for (let o = 0; o < nOut; o++) {
        let acc = 0;
        for (let k = 0; k < r; k++) acc += A[k * nIn + i] * Bm[o * r + k];
        W[i * nOut + o] += s * acc;
      }
    }
  }
  const ref = gpt2Ref(cfg, eff, ids, labels, B, T, true);
  for (const { path, nIn, nOut } of layers) {
    const A = values.get(`${path}.lora_A.default.weight`)!,
      Bm = values.get(`${path}.lora_B.default.weight`)!;
    const dW = ref.grads!.get(`${path}.weight`)!;
    const dA = new Float64Array(r * nIn), dB = new Float64Array(nOut * r);
    for (let k = 0; k < r; k++) {
      for (let i = 0; i < nIn; i++) {
        for (let o = 0; o < nOut; o++) {
          dA[k * nIn + i] += s * Bm[o * r + k] * dW[i * nOut + o];
          dB[o * r + k] += s * dW[i * nOut + o] * A[k * nIn + i];
        }
      }
    }
    // Sums over B·T rows and the LoRA rank of f32 products: judged relative to the largest entry.
    const tol = (x: Float64Array) => ({
      rtol: 1e-3,
      atol: 1e-4 * Math.max(...x.map(Math.abs)) + 1e-9,
    });
    assertClose(grads.get(`${path}.lora_A.default.weight`)!, dA, tol(dA), `${path} dA`);
    assertClose(grads.get(`${path}.lora_B.default.weight`)!, dB, tol(dB), `${path} dB`);
  }
  acts.release();
  model.release();
});

Deno.test("LoRA merge() keeps the outputs (max difference reported) and unmerge() restores the weights", async () => {
  const g = await gpu();
  const w = f32Weights(randomWeights(SMALL, 8), SMALL);
  const model = await GPT.create(g, SMALL, { weights: w });
  const inst = await lora.apply(
    model,
    lora.validate({ r: 4, lora_alpha: 16, target_modules: ["c_attn", "c_proj", "c_fc"] }),
    1,
  );
  await randomizeB(model, inst, 2);
  const { ids } = inputs(SMALL, 3);
  const unmerged = await logitsOf(model, ids);
  const report = await inst.merge();
  assert.equal(
    report.merged.length,
    4 * SMALL.n_layer,
    "c_proj matches attn.c_proj and mlp.c_proj",
  );
  const merged = await logitsOf(model, ids);
  let maxDiff = 0, maxAbs = 0;
  for (let i = 0; i < merged.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(merged[i] - unmerged[i]));
    maxAbs = Math.max(maxAbs, Math.abs(unmerged[i]));
  }
  // f32 rounding of W + s·AᵀBᵀ versus computing the two products separately: ~1e-6 of the logits.
  assert.ok(
    maxDiff <= 1e-4 * maxAbs,
    `max |merged − unmerged| = ${maxDiff} (logits up to ${maxAbs})`,
  );
  await assert.rejects(inst.merge(), /already merged/);
  await inst.unmerge();
  const restored = await model.exportWeights();
  for (const [name, t] of w) {
    assertClose(restored.get(name)!.data, t.data, { rtol: 1e-6, atol: 1e-6 }, name);
  }
  assertClose(
    await logitsOf(model, ids),
    unmerged,
    { rtol: 1e-5, atol: 1e-5 },
    "logits after unmerge",
  );
  model.release();
});

Deno.test("LoRA save() writes Hugging Face PEFT's layout and load() restores it exactly", async () => {
  const g = await gpu();
  const w = f32Weights(randomWeights(SMALL, 9), SMALL);
  const dir = await Deno.makeTempDir();
  try {
    const m1 = await GPT.create(g, SMALL, { weights: w });
    const i1 = await lora.apply(m1, lora.validate({ r: 4, lora_alpha: 8, lora_dropout: 0.1 }), 1);
    await randomizeB(m1, i1, 2);
    await i1.save(dir, "whet/small");
    const text = await Deno.readTextFile(`${dir}/adapter_config.json`);
    const cfg = JSON.parse(text);
    assert.deepEqual(
      Object.keys(cfg),
      Object.keys(cfg).slice().sort(),
      "keys are sorted as PEFT writes them",
    );
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.task_type, "CAUSAL_LM");
    assert.equal(cfg.fan_in_fan_out, true);
    assert.equal(cfg.r, 4);
    assert.equal(cfg.lora_alpha, 8);
    assert.deepEqual(cfg.target_modules, ["c_attn"]);
    const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(st.metadata, { format: "pt" });
    assert.deepEqual(st.names().sort(), [
      "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
      "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
      "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight",
      "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
    ]);
    assert.deepEqual(
      st.tensor("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape,
      [4, SMALL.n_embd],
    );
    assert.deepEqual(
      st.tensor("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape,
      [3 * SMALL.n_embd, 4],
    );

    const m2 = await GPT.create(g, SMALL, { weights: w });
    const config = await readLoraConfig(dir);
    assert.equal(config.lora_dropout, 0.1);
    const i2 = await lora.apply(m2, config, 99);
    await i2.load(dir);
    const { ids } = inputs(SMALL, 4);
    assert.deepEqual(await logitsOf(m2, ids), await logitsOf(m1, ids));
    m1.release();
    m2.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("several named LoRA adapters live on one base: switching and disabling", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, {
    weights: f32Weights(randomWeights(SMALL, 10), SMALL),
  });
  const { ids } = inputs(SMALL, 5);
  const base = await logitsOf(model, ids);
  const a = await lora.apply(model, lora.validate({ adapter_name: "a" }), 1);
  await randomizeB(model, a, 1);
  const b = await lora.apply(model, lora.validate({ adapter_name: "b", r: 2 }), 2);
  await randomizeB(model, b, 2);
  const withB = await logitsOf(model, ids); // the last applied adapter is active
  a.activate();
  const withA = await logitsOf(model, ids);
  assert.notDeepEqual(withA, withB);
  assert.notDeepEqual(withA, base);
  a.disable();
  assert.deepEqual(await logitsOf(model, ids), base, "disabled: the base model exactly");
  b.activate();
  assert.deepEqual(await logitsOf(model, ids), withB);
  await assert.rejects(
    lora.apply(model, lora.validate({ adapter_name: "a" }), 3),
    /already has an adapter named "a"/,
  );
  model.release();
});

Deno.test("lora.validate() rejects unknown keys, wrong types and bad values naming the key", () => {
  assert.throws(() => lora.validate({ rank: 4 }), /unknown key "rank"/);
  assert.throws(() => lora.validate({ r: "8" }), /key "r" must be number/);
  assert.throws(() => lora.validate({ r: 0 }), /"r" must be a positive integer/);
  assert.throws(() => lora.validate({ lora_dropout: 1 }), /"lora_dropout" must be in \[0, 1\)/);
  const rs = lora.validate({ r: 16, lora_alpha: 8, use_rslora: true });
  assert.equal(rs.use_rslora, true);
});

Deno.test("rsLoRA scales by alpha/√r and target matching follows PEFT's suffix rule", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1 });
  const inst = await lora.apply(
    model,
    lora.validate({ r: 16, lora_alpha: 8, use_rslora: true, target_modules: ["attn.c_proj"] }),
    1,
  );
  assert.equal(inst.layers.length, SMALL.n_layer, "attn.c_proj, not mlp.c_proj");
  assert.ok(inst.layers.every((l) => l.path.endsWith("attn.c_proj")));
  assert.equal(inst.layers[0].adapters.get("default")!.scaling, 8 / 4);
  assert.match(inst.describe(), /rsLoRA/);
  await assert.rejects(
    lora.apply(model, lora.validate({ target_modules: ["nothing"] }), 1),
    /match none/,
  );
  model.release();
});
