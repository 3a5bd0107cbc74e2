import assert from "node:assert/strict";
import {
  GPT,
  type Inputs,
  type Param,
  prompt,
  promptReport,
  readPromptConfig,
  readSafetensors,
  renderPromptReport,
  Rng,
  textInitIds,
  tokenCell,
  Trainer,
} from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import { assertClose, centralDiff, gpu } from "../helpers.ts";
import { randomWeights, SMALL } from "../models/_fixtures.ts";
import { gpt2PeftRef, gradTol, toF32 } from "../ref/peft.ts";

const cfg = SMALL, B = 2, T = 5;
const SHAPES = gpt2ParameterShapes(cfg);

async function setup(config: Record<string, unknown>, seed = 7) {
  const g = await gpu();
  const w = randomWeights(cfg, 11);
  const model = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
  const inst = await prompt.apply(model, prompt.validate(config), seed);
  return { g, w, model, inst };
}

function batchOf(seed: number): { ids: number[]; labels: number[] } {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  return { ids, labels: ids.map((id, i) => (i % T) === 1 ? -100 : id) };
}

async function logitsAndLoss(model: GPT, inputs: Inputs) {
  const acts = model.activations(B, inputs.ids.length / B);
  const batch = model.gpu.batch();
  model.forward(batch, acts, inputs);
  await batch.submit();
  const [logits] = await model.gpu.read([acts.logits]);
  const loss = inputs.labels ? await model.meanLoss(acts) : NaN;
  acts.release();
  return { logits, loss };
}

async function gradsOf(model: GPT, inputs: Inputs, params: Param[]): Promise<Float32Array[]> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, inputs, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const out = await model.gpu.read(params.map((p) => p.grad!));
  acts.release();
  return out;
}

Deno.test("prompt tuning: logits, loss and the gradient of P match the float64 reference", async () => {
  const { w, model, inst } = await setup({ num_virtual_tokens: 3 });
  const inputs = batchOf(3);
  const [P] = await model.gpu.read([inst.prompt.value]);
  const ref = gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, {
    n: 3,
    prompt: Float64Array.from(P),
  }, true);
  const { logits, loss } = await logitsAndLoss(model, inputs);
  // f32 through two blocks with O(1) activations (as tests/models/gpt_test.ts).
  assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits (B, n+T, V)");
  assert.ok(Math.abs(loss - ref.loss) < 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
  const [dP] = await gradsOf(model, inputs, [inst.prompt]);
  assertClose(dP, ref.grads!.prompt!, gradTol(ref.grads!.prompt!), "dP");
  assert.ok(ref.grads!.prompt!.some((v) => Math.abs(v) > 1e-3), "the gradient is not trivially 0");
  assert.equal(model.wte.grad, null, "wte is frozen");
  model.release();
});

Deno.test("prompt tuning reference: dP matches central finite differences of the loss", () => {
  const w = randomWeights(cfg, 11), inputs = batchOf(3), n = 2;
  const P = Float64Array.from({ length: n * cfg.n_embd }, (_, i) => Math.sin(i));
  const ref = gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, { n, prompt: P }, true);
  for (const i of [0, 5, 23, 24, 47]) {
    const fd = centralDiff(
      (v) => gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, { n, prompt: v }).loss,
      P,
      i,
    );
    assertClose([ref.grads!.prompt![i]], [fd], { rtol: 1e-5, atol: 1e-9 }, `dP[${i}]`);
  }
});

Deno.test("prompt tuning with TEXT init equals the base model reading that text first", async () => {
  const text = [5, 17, 60];
  const { g, w, model } = await setup({
    num_virtual_tokens: 3,
    prompt_tuning_init: "text",
    init_text_ids: text,
  });
  const base = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
  const inputs = batchOf(4);
  const withText: number[] = [];
  for (let b = 0; b < B; b++) withText.push(...text, ...inputs.ids.slice(b * T, (b + 1) * T));
  const ours = await logitsAndLoss(model, { ids: inputs.ids });
  const theirs = await logitsAndLoss(base, { ids: withText });
  // The same f32 additions (wte row + wpe row) and the same kernels on the same shapes.
  assertClose(ours.logits, theirs.logits, { rtol: 0, atol: 0 }, "logits");
  model.release();
  base.release();
});

Deno.test("prompt tuning trains P only: the loss falls and the base stays bit-identical", async () => {
  const { w, model, inst } = await setup({ num_virtual_tokens: 4 });
  const inputs = batchOf(5);
  const source = {
    batchesPerEpoch: 1,
    batch: () => ({ ids: inputs.ids, labels: inputs.labels, batchSize: B, seqLen: T }),
  };
  const trainer = await Trainer.create(model, source, {
    steps: 10,
    lr: 5e-2,
    logEvery: 1,
    optimizer: { weightDecay: 0 },
  }, { params: inst.trainable() });
  const result = await trainer.run();
  assert.ok(result.losses[9] < result.losses[0] - 0.05, `loss ${result.losses}`);
  const after = await model.exportWeights();
  for (const [name, v] of w) {
    const a = after.get(name)!.data;
    assert.ok(a.every((x, i) => x === Math.fround(v[i])), `${name} is bit-identical`);
  }
  const [P] = await model.gpu.read([inst.prompt.value]);
  assert.ok(P.some((x, i) => x !== inst.initial[i]), "P changed");
  trainer.release();
  model.release();
});

Deno.test("prompt tuning saves PEFT's layout and loads it back exactly", async () => {
  const { g, w, model, inst } = await setup({ num_virtual_tokens: 3 }, 1);
  const dir = await Deno.makeTempDir();
  try {
    await inst.save(dir, "gpt2");
    const cfgJson = await Deno.readTextFile(`${dir}/adapter_config.json`);
    const json = JSON.parse(cfgJson);
    assert.deepEqual(Object.keys(json), Object.keys(json).sort(), "keys sorted");
    assert.equal(json.peft_type, "PROMPT_TUNING");
    assert.equal(json.task_type, "CAUSAL_LM");
    assert.equal(json.num_virtual_tokens, 3);
    assert.equal(json.token_dim, cfg.n_embd);
    assert.equal(json.num_transformer_submodules, 1);
    assert.equal(json.num_layers, cfg.n_layer);
    assert.equal(json.num_attention_heads, cfg.n_head);
    assert.equal(json.prompt_tuning_init, "RANDOM");
    assert.equal(json.base_model_name_or_path, "gpt2");
    const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(st.names(), ["prompt_embeddings"]);
    assert.deepEqual(st.tensor("prompt_embeddings").shape, [3, cfg.n_embd]);
    assert.deepEqual(st.metadata, { format: "pt" });

    const fresh = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
    const again = await prompt.apply(fresh, await readPromptConfig(dir), 99);
    await again.load(dir);
    const inputs = batchOf(6);
    assert.deepEqual(
      (await logitsAndLoss(fresh, inputs)).logits,
      (await logitsAndLoss(model, inputs)).logits,
    );
    fresh.release();
    await Deno.writeTextFile(
      `${dir}/adapter_config.json`,
      cfgJson.replace("PROMPT_TUNING", "LORA"),
    );
    await assert.rejects(() => again.load(dir), /field "peft_type" is "LORA"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  model.release();
});

Deno.test("prompt tuning SAMPLE_VOCAB copies wte rows; TEXT truncates or repeats the text", async () => {
  const { model, inst } = await setup({
    num_virtual_tokens: 5,
    prompt_tuning_init: "SAMPLE_VOCAB",
  });
  const [wte, P] = await model.gpu.read([model.wte.value, inst.prompt.value]);
  const C = cfg.n_embd;
  assert.equal(inst.initIds!.length, 5);
  inst.initIds!.forEach((id, j) => {
    assert.ok(id >= 0 && id < cfg.vocab_size);
    assert.deepEqual(P.subarray(j * C, (j + 1) * C), wte.subarray(id * C, (id + 1) * C));
  });
  assert.deepEqual(textInitIds([1, 2, 3], 2), [1, 2]);
  assert.deepEqual(textInitIds([1, 2], 5), [1, 2, 1, 2, 1]);
  model.release();
});

Deno.test("promptReport() finds the token a virtual token was initialised from, with cosine 1", async () => {
  const { model, inst } = await setup({
    num_virtual_tokens: 2,
    prompt_tuning_init: "TEXT",
    init_text_ids: [10, 33],
  });
  const names = new Map([[10, "\n"], [33, "a|b"]]);
  const tok = {
    name: "test",
    vocabSize: cfg.vocab_size,
    encode: () => [],
    decode: (ids: readonly number[]) => names.get(ids[0]) ?? `t${ids[0]}`,
  };
  const rows = await promptReport(inst, tok, 3);
  assert.equal(rows.length, 2);
  for (const [j, id] of [[0, 10], [1, 33]]) {
    assert.equal(rows[j].nearest[0].id, id);
    assertClose([rows[j].nearest[0].cosine], [1], { rtol: 0, atol: 1e-12 }, "cosine");
    assert.ok(rows[j].nearest[1].cosine < 1 - 1e-6, "the runner-up is a different direction");
    assert.equal(rows[j].l2FromInit, 0);
    assertClose([rows[j].cosineFromInit], [0], { rtol: 0, atol: 1e-12 }, "cos distance");
    assert.equal(rows[j].initId, id);
  }
  const md = renderPromptReport(rows);
  const lines = md.trim().split("\n");
  assert.equal(lines.length, 4, "header, separator and one line per virtual token");
  assert.ok(lines[2].includes('`"\\n"` (#10) 1.000'), lines[2]);
  assert.ok(lines[3].includes('`"a\\|b"` (#33)'), lines[3]);
  // Every row has the same number of cells as the header (no stray unescaped `|`).
  const cells = (l: string) => l.replaceAll("\\|", "").split("|").length;
  assert.ok(lines.every((l) => cells(l) === cells(lines[0])));
  assert.equal(tokenCell(7, "a`b"), '`` "a`b" `` (#7)');
  assert.equal(tokenCell(7, null), "#7");
  model.release();
});

Deno.test("prompt tuning rejects bad configurations with errors naming the key", async () => {
  assert.throws(() => prompt.validate({ num_virtual_tokens: 0 }), /"num_virtual_tokens"/);
  assert.throws(() => prompt.validate({ prompt_tuning_init: "ZEROS" }), /"prompt_tuning_init"/);
  assert.throws(() => prompt.validate({ prompt_tuning_init: "TEXT" }), /"init_text_ids"/);
  assert.throws(() => prompt.validate({ init_text_ids: [1.5] }), /"init_text_ids"/);
  assert.throws(() => prompt.validate({ n: 3 }), /unknown key "n"/);
  const g = await gpu();
  const model = await GPT.create(g, cfg, { seed: 1 });
  await assert.rejects(
    () => prompt.apply(model, prompt.validate({ num_virtual_tokens: cfg.n_positions }), 0),
    /leave no position/,
  );
  await assert.rejects(
    () =>
      prompt.apply(
        model,
        prompt.validate({
          num_virtual_tokens: 2,
          prompt_tuning_init: "TEXT",
          init_text_ids: [cfg.vocab_size],
        }),
        0,
      ),
    /outside the vocabulary/,
  );
  await prompt.apply(model, prompt.validate({ num_virtual_tokens: 2 }), 0);
  await assert.rejects(
    () => prompt.apply(model, prompt.validate({ num_virtual_tokens: 2 }), 0),
    /already has virtual tokens/,
  );
  model.release();
});
