/**
 * LoRA files as Python PEFT 0.17 writes them: fixtures written here the way `save_pretrained`
 * writes them (adapter_config.json with PEFT 0.17's full field set, sorted, and
 * adapter_model.safetensors with `get_peft_model_state_dict`'s key names), loaded with
 * loadLora() and checked against the float64 GPT-2 / Llama references through the effective
 * weights; whet's own files written back with the same names; every refused field named.
 */
import assert from "node:assert/strict";
import {
  type Decoder,
  GPT,
  type GPTConfig,
  loadAdapter,
  loadLora,
  lora,
  type LoraInstance,
  readAdapterConfigFile,
  readSafetensors,
  Rng,
  serializeSafetensors,
  type TensorData,
} from "../../mod.ts";
import { assertClose, gpu, randn } from "../helpers.ts";
import { f32Weights, randomWeights, SMALL } from "../models/_fixtures.ts";
import { doraMergedRef } from "../ref/dora.ts";
import { gpt2Ref, type Weights } from "../ref/gpt2.ts";
import { llamaRef } from "../ref/llama.ts";
import { allLogits, llamaBatch, llamaSetup } from "./_llama.ts";

/** Every field PEFT 0.17's `LoraConfig.save_pretrained` writes, at its defaults. */
const PEFT_017: Readonly<Record<string, unknown>> = {
  alora_invocation_tokens: null,
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: "gpt2",
  bias: "none",
  corda_config: null,
  eva_config: null,
  exclude_modules: null,
  fan_in_fan_out: true,
  inference_mode: true,
  init_lora_weights: true,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 16,
  lora_bias: false,
  lora_dropout: 0.05,
  megatron_config: null,
  megatron_core: "megatron.core",
  modules_to_save: null,
  peft_type: "LORA",
  qalora_group_size: 16,
  r: 8,
  rank_pattern: {},
  revision: null,
  target_modules: ["c_attn"],
  target_parameters: null,
  task_type: "CAUSAL_LM",
  trainable_token_indices: null,
  use_dora: false,
  use_qalora: false,
  use_rslora: false,
};

/** Writes a folder as `save_pretrained` does: sorted two-space JSON, safetensors with format pt. */
async function writeFixture(
  config: Record<string, unknown>,
  tensors: Map<string, TensorData>,
): Promise<string> {
  const dir = await Deno.makeTempDir();
  const sorted = Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
  await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(sorted, null, 2));
  await Deno.writeFile(
    `${dir}/adapter_model.safetensors`,
    serializeSafetensors(tensors, { metadata: { format: "pt" } }),
  );
  return dir;
}

const B = 2, T = 5;

function tokens(cfg: GPTConfig, seed: number) {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  return { ids, labels: ids.map(() => -100) };
}

async function gptLogits(model: GPT, ids: number[]): Promise<Float32Array> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, { ids });
  await batch.submit();
  const [out] = await model.gpu.read([acts.logits]);
  acts.release();
  return out;
}

/** One adapted layer of a fixture: its HF key prefix, whet path, shapes, rank and scaling. */
interface FixtureLayer {
  path: string;
  nIn: number;
  nOut: number;
  r: number;
  s: number;
}

/**
 * Random A, B (and m for DoRA) for `layers` under PEFT's keys, and the effective Conv1D weights
 * W + s·(B·A)ᵀ (LoRA) or g⊙(W + s·B·A) (DoRA) they give.
 */
function loraTensors(
  w: Weights,
  layers: FixtureLayer[],
  dora: boolean,
  seed: number,
  prefix: (path: string) => string,
  fanInFanOut: boolean,
): { tensors: Map<string, TensorData>; eff: Weights } {
  const rng = new Rng(seed);
  const tensors = new Map<string, TensorData>();
  const eff: Weights = new Map([...w].map(([k, v]) => [k, v.slice()]));
  for (const l of layers) {
    const A = randn(rng, l.r * l.nIn, 0.4), Bm = randn(rng, l.nOut * l.r, 0.4);
    const key = `base_model.model.${prefix(l.path)}`;
    tensors.set(`${key}.lora_A.weight`, { shape: [l.r, l.nIn], data: Float32Array.from(A) });
    tensors.set(`${key}.lora_B.weight`, { shape: [l.nOut, l.r], data: Float32Array.from(Bm) });
    const W = w.get(`${l.path}.weight`)!;
    let m = new Float64Array(l.nOut);
    if (dora) {
      m = Float64Array.from({ length: l.nOut }, () => Math.fround(0.5 + 2 * rng.uniform(0, 1)));
      tensors.set(`${key}.lora_magnitude_vector`, { shape: [l.nOut], data: Float32Array.from(m) });
      eff.set(
        `${l.path}.weight`,
        doraMergedRef({
          W,
          bias: null,
          A,
          B: Bm,
          m,
          s: l.s,
          nOut: l.nOut,
          nIn: l.nIn,
          r: l.r,
          fanInFanOut,
        }),
      );
      continue;
    }
    const We = W.slice();
    for (let i = 0; i < l.nIn; i++) {
      for (let o = 0; o < l.nOut; o++) {
        let d = 0;
        for (let k = 0; k < l.r; k++) d += Bm[o * l.r + k] * A[k * l.nIn + i];
        We[fanInFanOut ? i * l.nOut + o : o * l.nIn + i] += l.s * d;
      }
    }
    eff.set(`${l.path}.weight`, We);
  }
  return { tensors, eff };
}

const gptKey = (path: string) => `transformer.${path}`;
const C = SMALL.n_embd;
const shapes: Record<string, [number, number]> = {
  "attn.c_attn": [C, 3 * C],
  "attn.c_proj": [C, C],
  "mlp.c_fc": [C, 4 * C],
  "mlp.c_proj": [4 * C, C],
};
const gptLayer = (l: number, name: string, r: number, s: number): FixtureLayer => ({
  path: `h.${l}.${name}`,
  nIn: shapes[name][0],
  nOut: shapes[name][1],
  r,
  s,
});

/** Loads `dir` onto a fresh GPT-2 with weights `w`, compares logits with gpt2Ref on `eff`. */
async function checkGpt(
  dir: string,
  w: Weights,
  eff: Weights,
  what: string,
  warnings: string[] = [],
) {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { weights: f32Weights(w, SMALL) });
  const inst = await loadLora(model, dir, { warn: (m) => warnings.push(m) });
  const { ids, labels } = tokens(SMALL, 3);
  const ref = gpt2Ref(SMALL, eff, ids, labels, B, T);
  // Two f32 blocks against float64: errors of a few 1e-5 on O(1) logits.
  assertClose(await gptLogits(model, ids), ref.logits, { rtol: 1e-3, atol: 1e-4 }, what);
  return { model, inst };
}

Deno.test("loadLora() reads a PEFT 0.17 LoRA folder for GPT-2 and gives the float64 reference's logits", async () => {
  const w = randomWeights(SMALL, 1);
  const layers = [0, 1].flatMap((l) => [
    gptLayer(l, "attn.c_attn", 8, 2),
    gptLayer(l, "attn.c_proj", 8, 2),
    gptLayer(l, "mlp.c_proj", 8, 2),
  ]);
  const { tensors, eff } = loraTensors(w, layers, false, 2, gptKey, true);
  const dir = await writeFixture({ ...PEFT_017, target_modules: ["c_attn", "c_proj"] }, tensors);
  const warnings: string[] = [];
  const { model, inst } = await checkGpt(dir, w, eff, "LoRA logits", warnings);
  assert.deepEqual(warnings, [], "PEFT 0.17's fields need no warning");
  assert.equal(inst.layers.length, 6);
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadLora() reads a PEFT 0.17 LoRA+DoRA folder (lora_magnitude_vector) and gives the float64 reference's logits", async () => {
  const w = randomWeights(SMALL, 4);
  const layers = [0, 1].flatMap((
    l,
  ) => [gptLayer(l, "attn.c_attn", 4, 4), gptLayer(l, "mlp.c_fc", 4, 4)]);
  const { tensors, eff } = loraTensors(w, layers, true, 5, gptKey, true);
  const dir = await writeFixture(
    { ...PEFT_017, r: 4, target_modules: ["c_attn", "c_fc"], use_dora: true },
    tensors,
  );
  const { model, inst } = await checkGpt(dir, w, eff, "DoRA logits");
  assert.ok(inst.layers.every((l) => l.adapters.get("default")!.dora !== null));
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadLora() honours rank_pattern and alpha_pattern as PEFT's get_pattern_key matches them", async () => {
  const w = randomWeights(SMALL, 6);
  // r 4, alpha 8; h.1's c_attn rank 2 (first matching key wins over "c_attn"), c_fc rank 6;
  // alpha 12 on every c_attn.
  const rank_pattern = { "h\\.1\\.attn\\.c_attn": 2, "c_attn": 3, "c_fc": 6 };
  const alpha_pattern = { "c_attn": 12 };
  const layers = [
    gptLayer(0, "attn.c_attn", 3, 12 / 3),
    gptLayer(0, "mlp.c_fc", 6, 8 / 6),
    gptLayer(1, "attn.c_attn", 2, 12 / 2),
    gptLayer(1, "mlp.c_fc", 6, 8 / 6),
  ];
  const { tensors, eff } = loraTensors(w, layers, false, 7, gptKey, true);
  const dir = await writeFixture(
    {
      ...PEFT_017,
      r: 4,
      lora_alpha: 8,
      target_modules: ["c_attn", "c_fc"],
      rank_pattern,
      alpha_pattern,
    },
    tensors,
  );
  const { model, inst } = await checkGpt(dir, w, eff, "rank/alpha pattern logits");
  assert.deepEqual(
    inst.layers.map((
      l,
    ) => [l.path, l.adapters.get("default")!.r, l.adapters.get("default")!.scaling]),
    layers.map((l) => [l.path, l.r, l.s]),
  );
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test('loadLora() reads bias "all" (every bias, base_layer.bias for adapted layers) and trains those biases', async () => {
  const w = randomWeights(SMALL, 8);
  const layers = [0, 1].map((l) => gptLayer(l, "attn.c_attn", 4, 2));
  const { tensors, eff } = loraTensors(w, layers, false, 9, gptKey, true);
  const rng = new Rng(10);
  const biases = [...w.keys()].filter((k) => k.includes("bias"));
  for (const name of biases) {
    const v = randn(rng, w.get(name)!.length, 0.3);
    eff.set(name, v);
    const key = /^h\.\d+\.attn\.c_attn\.bias$/.test(name)
      ? `transformer.${name.replace(/\.bias$/, ".base_layer.bias")}`
      : `transformer.${name}`;
    tensors.set(`base_model.model.${key}`, { shape: [v.length], data: Float32Array.from(v) });
  }
  const dir = await writeFixture({ ...PEFT_017, r: 4, lora_alpha: 8, bias: "all" }, tensors);
  const warnings: string[] = [];
  const { model, inst } = await checkGpt(dir, w, eff, 'bias "all" logits', warnings);
  assert.deepEqual(warnings, [], "every tensor of the file has its place");
  assert.deepEqual(inst.biases.map((p) => p.name).sort(), biases.sort());
  assert.ok(inst.biases.every((p) => p.grad !== null), "the biases train");
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadLora() reads modules_to_save copies under the module's own key and makes them trainable", async () => {
  const w = randomWeights(SMALL, 11);
  const layers = [0, 1].map((l) => gptLayer(l, "attn.c_attn", 4, 2));
  const { tensors, eff } = loraTensors(w, layers, false, 12, gptKey, true);
  const rng = new Rng(13);
  for (const name of ["ln_f.weight", "ln_f.bias", "wpe.weight"]) {
    const v = randn(rng, w.get(name)!.length, 0.5);
    eff.set(name, v);
    const shape = name === "wpe.weight" ? [SMALL.n_positions, C] : [C];
    tensors.set(`base_model.model.transformer.${name}`, { shape, data: Float32Array.from(v) });
  }
  const dir = await writeFixture(
    { ...PEFT_017, r: 4, lora_alpha: 8, modules_to_save: ["ln_f", "wpe"] },
    tensors,
  );
  const { model, inst } = await checkGpt(dir, w, eff, "modules_to_save logits");
  assert.deepEqual(inst.saved.map((m) => m.path), ["transformer.ln_f", "transformer.wpe"]);
  assert.ok(inst.trainable().some((p) => p.name === "ln_f.bias" && p.grad !== null));
  // Disabled, the originals come back (PEFT's original_module); enabled, the trained copies.
  const { ids, labels } = tokens(SMALL, 3);
  inst.disable();
  const base = gpt2Ref(SMALL, w, ids, labels, B, T);
  assertClose(await gptLogits(model, ids), base.logits, { rtol: 1e-3, atol: 1e-4 }, "disabled");
  inst.activate();
  const ref = gpt2Ref(SMALL, eff, ids, labels, B, T);
  assertClose(await gptLogits(model, ids), ref.logits, { rtol: 1e-3, atol: 1e-4 }, "re-activated");
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadLora() matches a target_modules regex string against the whole module path (re.fullmatch)", async () => {
  const w = randomWeights(SMALL, 14);
  const layers = [gptLayer(1, "attn.c_attn", 4, 2), gptLayer(1, "mlp.c_fc", 4, 2)];
  const { tensors, eff } = loraTensors(w, layers, false, 15, gptKey, true);
  const target = ".*\\.h\\.1\\.(attn\\.c_attn|mlp\\.c_fc)";
  const dir = await writeFixture(
    { ...PEFT_017, r: 4, lora_alpha: 8, target_modules: target },
    tensors,
  );
  const { model, inst } = await checkGpt(dir, w, eff, "regex target logits");
  assert.deepEqual(inst.layers.map((l) => l.path), ["h.1.attn.c_attn", "h.1.mlp.c_fc"]);
  // A suffix is no full match: "c_attn" as a string selects nothing.
  await assert.rejects(
    lora.apply(model, lora.validate({ target_modules: "c_attn", adapter_name: "other" }), 0),
    /match none/,
  );
  // A regex that selects a module LoRA cannot wrap is refused naming it.
  await assert.rejects(
    lora.apply(model, lora.validate({ target_modules: ".*ln_f", adapter_name: "other" }), 0),
    /transformer\.ln_f, which is not a linear layer/,
  );
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test('loadLora() reads a Llama-family (Qwen2) LoRA+DoRA folder with bias "all" on nn.Linear weights', async () => {
  const { cfg, w, model } = await llamaSetup("qwen2-tiny", 16);
  const C = cfg.hidden_size, d = cfg.head_dim;
  const layers: FixtureLayer[] = [];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    layers.push({
      path: `model.layers.${l}.self_attn.q_proj`,
      nIn: C,
      nOut: cfg.num_attention_heads * d,
      r: 2,
      s: 3,
    });
    layers.push({
      path: `model.layers.${l}.self_attn.v_proj`,
      nIn: C,
      nOut: cfg.num_key_value_heads * d,
      r: 2,
      s: 3,
    });
  }
  const { tensors, eff } = loraTensors(w, layers, true, 17, (p) => p, false);
  const rng = new Rng(18);
  for (const name of [...w.keys()].filter((k) => k.includes("bias"))) {
    const v = randn(rng, w.get(name)!.length, 0.2);
    eff.set(name, v);
    const adapted = /\.(q_proj|v_proj)\.bias$/.test(name);
    const key = adapted ? name.replace(/\.bias$/, ".base_layer.bias") : name;
    tensors.set(`base_model.model.${key}`, { shape: [v.length], data: Float32Array.from(v) });
  }
  const dir = await writeFixture(
    {
      ...PEFT_017,
      base_model_name_or_path: "Qwen/Qwen2-0.5B",
      fan_in_fan_out: false,
      r: 2,
      lora_alpha: 6,
      target_modules: ["q_proj", "v_proj"],
      use_dora: true,
      bias: "all",
    },
    tensors,
  );
  const inst = await loadLora(model, dir);
  assert.equal(inst.biases.length, 3 * cfg.num_hidden_layers, "q, k, v biases");
  const inputs = llamaBatch(cfg, B, T, 19);
  const ref = llamaRef(cfg, eff, inputs.ids, inputs.labels, B, T);
  assertClose(
    (await allLogits(model, inputs, B, T)).logits,
    ref.logits,
    { rtol: 1e-3, atol: 1e-4 },
    "logits",
  );
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadAdapter() dispatches a PEFT LoRA+DoRA folder to lora.load, which takes the config file already read", async () => {
  const w = randomWeights(SMALL, 25);
  const layers = [0, 1].map((l) => gptLayer(l, "attn.c_attn", 4, 2));
  const { tensors, eff } = loraTensors(w, layers, true, 26, gptKey, true);
  const dir = await writeFixture({ ...PEFT_017, r: 4, lora_alpha: 8, use_dora: true }, tensors);
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { weights: f32Weights(w, SMALL) });
  const warnings: string[] = [];
  const inst = await loadAdapter(model, dir, { warn: (m) => warnings.push(m) });
  assert.equal(inst.method, "lora");
  assert.equal(lora.peftType, "LORA");
  assert.deepEqual(warnings, []);
  const { ids, labels } = tokens(SMALL, 3);
  const ref = gpt2Ref(SMALL, eff, ids, labels, B, T);
  assertClose(await gptLogits(model, ids), ref.logits, { rtol: 1e-3, atol: 1e-4 }, "logits");
  // Saved again, the folder keeps the base model's name it was loaded with.
  const out = await Deno.makeTempDir();
  await inst.save(out);
  assert.equal((await readAdapterConfigFile(out)).get("base_model_name_or_path"), "gpt2");
  model.release();
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(out, { recursive: true });
});

/** Random values in every tensor an instance saves, so a round trip is not of zeros and ones. */
async function randomize(model: Decoder, inst: LoraInstance, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const p of inst.trainable()) {
    p.value.write(rng.fillNormal(new Float32Array(p.value.size), 0.3) as Float32Array);
  }
  await model.gpu.sync();
}

Deno.test("save() writes PEFT's key names, shapes and config (long-standing keys), and loadLora() restores the same logits", async () => {
  const g = await gpu();
  const w = f32Weights(randomWeights(SMALL, 20), SMALL);
  const model = await GPT.create(g, SMALL, { weights: w });
  const config = lora.validate({
    r: 3,
    lora_alpha: 6,
    use_dora: true,
    target_modules: ["c_attn", "mlp.c_fc"],
    rank_pattern: { "h\\.1\\.mlp\\.c_fc": 5 },
    bias: "lora_only",
    modules_to_save: ["ln_f"],
  });
  const inst = await lora.apply(model, config, 21);
  await randomize(model, inst, 22);
  const { ids } = tokens(SMALL, 3);
  const logits = await gptLogits(model, ids);
  const dir = await Deno.makeTempDir();
  await inst.save(dir, "gpt2");
  const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
  const shapes = Object.fromEntries(st.names().map((k) => [k, st.tensor(k).shape.join()]));
  const p = "base_model.model.transformer";
  assert.deepEqual(shapes, {
    [`${p}.h.0.attn.c_attn.lora_A.weight`]: "3,24",
    [`${p}.h.0.attn.c_attn.lora_B.weight`]: "72,3",
    [`${p}.h.0.attn.c_attn.lora_magnitude_vector`]: "72",
    [`${p}.h.0.mlp.c_fc.lora_A.weight`]: "3,24",
    [`${p}.h.0.mlp.c_fc.lora_B.weight`]: "96,3",
    [`${p}.h.0.mlp.c_fc.lora_magnitude_vector`]: "96",
    [`${p}.h.1.attn.c_attn.lora_A.weight`]: "3,24",
    [`${p}.h.1.attn.c_attn.lora_B.weight`]: "72,3",
    [`${p}.h.1.attn.c_attn.lora_magnitude_vector`]: "72",
    [`${p}.h.1.mlp.c_fc.lora_A.weight`]: "5,24",
    [`${p}.h.1.mlp.c_fc.lora_B.weight`]: "96,5",
    [`${p}.h.1.mlp.c_fc.lora_magnitude_vector`]: "96",
    [`${p}.h.0.attn.c_attn.base_layer.bias`]: "72",
    [`${p}.h.0.mlp.c_fc.base_layer.bias`]: "96",
    [`${p}.h.1.attn.c_attn.base_layer.bias`]: "72",
    [`${p}.h.1.mlp.c_fc.base_layer.bias`]: "96",
    [`${p}.ln_f.weight`]: "24",
    [`${p}.ln_f.bias`]: "24",
  });
  assert.ok(st.names().every((k) => st.entry(k).dtype === "F32"));
  assert.deepEqual(st.metadata, { format: "pt" });
  const file = await readAdapterConfigFile(dir);
  // Only LoraConfig's long-standing keys (REFERENCES.md): PEFT before 0.14 refuses unknown ones.
  assert.deepEqual(Object.keys(file.json), [
    "alpha_pattern",
    "base_model_name_or_path",
    "bias",
    "fan_in_fan_out",
    "inference_mode",
    "init_lora_weights",
    "layers_pattern",
    "layers_to_transform",
    "lora_alpha",
    "lora_dropout",
    "modules_to_save",
    "peft_type",
    "r",
    "rank_pattern",
    "target_modules",
    "task_type",
    "use_dora",
    "use_rslora",
  ]);
  assert.ok(Object.keys(file.json).every((k) => k in PEFT_017), "every key PEFT 0.17 knows");
  assert.equal(file.get("use_dora"), true);
  assert.deepEqual(file.get("rank_pattern"), { "h\\.1\\.mlp\\.c_fc": 5 });
  assert.equal(file.get("base_model_name_or_path"), "gpt2");
  const other = await GPT.create(g, SMALL, { weights: w });
  const warnings: string[] = [];
  await loadLora(other, dir, { warn: (m) => warnings.push(m) });
  assert.deepEqual(warnings, []);
  assert.deepEqual(await gptLogits(other, ids), logits, "the same logits after the round trip");
  model.release();
  other.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadLora() warns, as PEFT does, on fan_in_fan_out false for GPT-2's Conv1D and on unknown fields, and takes bookkeeping silently", async () => {
  const w = randomWeights(SMALL, 23);
  const layers = [0, 1].map((l) => gptLayer(l, "attn.c_attn", 8, 2));
  const { tensors, eff } = loraTensors(w, layers, false, 24, gptKey, true);
  const dir = await writeFixture(
    {
      ...PEFT_017,
      fan_in_fan_out: false,
      peft_version: "0.18.1",
      revision: "main",
      some_future_field: 1,
    },
    tensors,
  );
  const warnings: string[] = [];
  const { model } = await checkGpt(dir, w, eff, "logits", warnings);
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.match(warnings[0], /ignoring unknown field "some_future_field"/);
  assert.match(warnings[1], /fan_in_fan_out is false but the target layers are Conv1D.*using true/);
  model.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadLora() refuses every PEFT field whet does not implement, naming the file and the field", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1 });
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ init_lora_weights: "pissa" }, "init_lora_weights", /"pissa"/],
    [{ init_lora_weights: "pissa_niter_4" }, "init_lora_weights", /PiSSA/],
    [{ init_lora_weights: "olora" }, "init_lora_weights", /OLoRA/],
    [{ init_lora_weights: "loftq" }, "init_lora_weights", /LoftQ/],
    [{ init_lora_weights: "eva" }, "init_lora_weights", /EVA/],
    [{ init_lora_weights: "corda" }, "init_lora_weights", /CorDA/],
    [{ task_type: "SEQ_CLS" }, "task_type", /CAUSAL_LM/],
    [{ lora_bias: true }, "lora_bias", /not implemented/],
    [{ use_qalora: true }, "use_qalora", /QALoRA/],
    [{ megatron_config: { a: 1 } }, "megatron_config", /Megatron/],
    [{ layer_replication: [[0, 2]] }, "layer_replication", /replication/],
    [{ trainable_token_indices: [1, 2] }, "trainable_token_indices", /trainable tokens/],
    [{ target_parameters: ["mlp.experts.w"] }, "target_parameters", /target_parameters/],
    [{ alora_invocation_tokens: [5] }, "alora_invocation_tokens", /aLoRA/],
    [{ arrow_config: {} }, "arrow_config", /Arrow/],
    [{ use_bdlora: true }, "use_bdlora", /block-diagonal/],
    [{ ensure_weight_tying: true }, "ensure_weight_tying", /tied/],
    [{ bias: "some" }, "bias", /"none", "all" or "lora_only"/],
    [{ rank_pattern: { c_attn: 0 } }, "rank_pattern", /positive/],
    [
      { target_modules: "c_attn(", layers_to_transform: null },
      "target_modules",
      /regular expression/,
    ],
    [
      { target_modules: ".*c_attn", layers_to_transform: [0] },
      "layers_to_transform",
      /regex string/,
    ],
    [{ layers_pattern: "h" }, "layers_pattern", /needs layers_to_transform/],
  ];
  for (const [fields, key, why] of cases) {
    const dir = await writeFixture({ ...PEFT_017, ...fields }, new Map());
    await assert.rejects(
      loadLora(model, dir, { warn: () => {} }),
      (e: Error) => {
        assert.ok(e.message.includes(`${dir}/adapter_config.json`), e.message);
        assert.ok(e.message.includes(`"${key}"`), e.message);
        assert.match(e.message, why);
        return true;
      },
    );
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(model.countParameters().trainable > 0, "a refused file changes nothing");
  model.release();
});

Deno.test("modules_to_save refuses the tied embedding or head, a container, an adapted layer and a name matching nothing", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1 });
  for (
    const [names, why] of [
      [["lm_head"], /ties together/],
      [["wte"], /ties together/],
      [["attn"], /container/],
      [["c_attn"], /which LoRA also adapts/],
      [["nothing"], /matches no module/],
    ] as const
  ) {
    await assert.rejects(
      lora.apply(model, lora.validate({ modules_to_save: [...names] }), 0),
      why,
      names[0],
    );
  }
  model.release();
});

Deno.test("layers_to_transform with layers_pattern, exclude_modules and init_lora_weights follow PEFT", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1 });
  const a = await lora.apply(
    model,
    lora.validate({
      target_modules: ["c_attn", "c_fc"],
      layers_to_transform: [1],
      layers_pattern: ["h"],
    }),
    0,
  );
  assert.deepEqual(a.layers.map((l) => l.path), ["h.1.attn.c_attn", "h.1.mlp.c_fc"]);
  await assert.rejects(
    lora.apply(
      model,
      lora.validate({
        target_modules: ["c_proj"],
        layers_to_transform: [1],
        layers_pattern: "blocks",
        adapter_name: "x",
      }),
      0,
    ),
    /layers_pattern \["blocks"\].*match none/,
  );
  const b = await lora.apply(
    model,
    lora.validate({
      target_modules: ["c_proj"],
      exclude_modules: ["mlp.c_proj"],
      adapter_name: "b",
    }),
    0,
  );
  assert.deepEqual(b.layers.map((l) => l.path), ["h.0.attn.c_proj", "h.1.attn.c_proj"]);
  // gaussian: A ~ N(0, 1/r²), B = 0; false: B random too (nn.Linear's init), so not a no-op.
  const gs = await lora.apply(
    model,
    lora.validate({
      r: 4,
      target_modules: ["mlp.c_proj"],
      init_lora_weights: "gaussian",
      adapter_name: "g",
    }),
    1,
  );
  const [A, Bz] = await g.read([gs.added[0].value, gs.added[1].value]);
  const std = Math.sqrt(A.reduce((s, v) => s + v * v, 0) / A.length);
  assert.ok(Math.abs(std - 0.25) < 0.03, `std ${std}, expected 1/r = 0.25`);
  assert.ok(Bz.every((v) => v === 0));
  const rnd = await lora.apply(
    model,
    lora.validate({
      r: 4,
      target_modules: ["mlp.c_fc"],
      init_lora_weights: false,
      adapter_name: "f",
    }),
    1,
  );
  const [Br] = await g.read([rnd.added[1].value]);
  assert.ok(Br.some((v) => v !== 0) && Br.every((v) => Math.abs(v) <= 0.5), "B ~ U(−1/√r, 1/√r)");
  model.release();
});
