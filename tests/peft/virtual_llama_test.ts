/**
 * Prefix tuning and prompt tuning on the Llama family: grouped-query prefixes match attention over
 * [P_k; K], [P_v; V] done directly (the prefix keys not rotated, the real tokens at positions
 * n..n+T−1), prompt tuning's virtual rows take positions 0..n−1, and both save PEFT's layout.
 *
 * The float64 reference is tests/peft/_llama.ts `llamaVirtualRef` (a forward composed from the
 * per-kernel references); the gradient of the virtual tokens is its loss differentiated by central
 * differences on every element, in float64.
 */
import assert from "node:assert/strict";
import {
  generate,
  llamaConfig,
  peftMethod,
  prefix,
  prompt,
  readPrefixConfig,
  readPromptConfig,
  readSafetensors,
} from "../../mod.ts";
import { assertClose, centralDiff } from "../helpers.ts";
import { llamaRef } from "../ref/llama.ts";
import { gradTol } from "../ref/peft.ts";
import {
  allLogits,
  gradsOf,
  LLAMA_PRESETS,
  llamaBatch,
  llamaSetup,
  llamaVirtualRef,
  llamaWeights,
  realLogits,
} from "./_llama.ts";

const B = 2, T = 5, n = 2;

Deno.test("llamaVirtualRef() without virtual tokens is llamaRef, and a prompt of token rows is those tokens", () => {
  const cfg = llamaConfig("qwen2-tiny"), w = llamaWeights(cfg, 1);
  const { ids, labels } = llamaBatch(cfg, B, T, 2);
  const plain = llamaRef(cfg, w, ids, labels, B, T);
  const none = llamaVirtualRef(cfg, w, ids, labels, B, T, { n: 0 });
  assertClose(none.logits, plain.logits, { rtol: 1e-12, atol: 1e-12 }, "logits");
  assert.ok(Math.abs(none.loss - plain.loss) < 1e-12);
  // Prompt rows copied from the token table at ids [7, 9] are the sequence [7, 9, ...ids] at
  // positions 0..n+T−1: the reference numbers prompt rows as Hugging Face does.
  const C = cfg.hidden_size, embed = w.get("model.embed_tokens.weight")!;
  const P = new Float64Array(n * C);
  [7, 9].forEach((id, j) => P.set(embed.subarray(id * C, (id + 1) * C), j * C));
  const withPrompt = llamaVirtualRef(cfg, w, ids, labels, B, T, { n, prompt: P });
  const longIds: number[] = [], longLabels: number[] = [];
  for (let b = 0; b < B; b++) {
    longIds.push(7, 9, ...ids.slice(b * T, (b + 1) * T));
    longLabels.push(-100, -100, ...labels.slice(b * T, (b + 1) * T));
  }
  const long = llamaRef(cfg, w, longIds, longLabels, B, n + T);
  assertClose(withPrompt.logits, long.logits, { rtol: 1e-12, atol: 1e-12 }, "prompt logits");
});

for (const preset of LLAMA_PRESETS) {
  Deno.test(`prefix tuning with grouped-query attention matches [P; K], [P; V] done directly: logits, loss and dP (${preset})`, async () => {
    const { cfg, w, model } = await llamaSetup(preset, 12);
    const inst = await prefix.apply(
      model,
      prefix.validate({ num_virtual_tokens: n, init_std: 0.5 }),
      7,
    );
    const { Hkv, d, L } = model.shape;
    assert.deepEqual(inst.prefix.shape, [n, L * 2 * Hkv * d], "(n, L·2·Hkv·d): kv heads only");
    const inputs = llamaBatch(cfg, B, T, 3);
    const P = Float64Array.from((await model.gpu.read([inst.prefix.value]))[0]);
    const run = (p: Float64Array) =>
      llamaVirtualRef(cfg, w, inputs.ids, inputs.labels, B, T, { n, prefix: p });
    const ref = run(P);
    const { logits, loss } = await realLogits(model, inputs, B, T);
    // f32 through two blocks with O(1) activations (as tests/models/llama_test.ts).
    assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits of the real positions");
    assert.ok(Math.abs(loss - ref.loss) < 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
    const [dP] = await gradsOf(model, inputs, B, T, [inst.prefix]);
    const fd = Float64Array.from(P, (_, i) => centralDiff((p) => run(p).loss, P, i, 1e-5));
    // Central differences of a float64 loss (h = 1e-5: error ~1e-10) against f32 sums over B·T
    // rows through two blocks: relative to the largest entry.
    assertClose(dP, fd, gradTol(fd), "dP (n, L·2·Hkv·d)");
    // Every layer's key and value slices train.
    for (let s = 0; s < 2 * L; s++) {
      const slice = fd.filter((_, i) => Math.floor((i % (L * 2 * Hkv * d)) / (Hkv * d)) === s);
      assert.ok(
        slice.some((v) => Math.abs(v) > 1e-5),
        `layer ${s >> 1} ${s & 1 ? "value" : "key"}`,
      );
    }
    model.release();
  });

  Deno.test(`prefix tuning saves PEFT's grouped-query layout and loads it back exactly (${preset})`, async () => {
    const { cfg, model } = await llamaSetup(preset, 13);
    const inst = await prefix.apply(model, prefix.validate({ num_virtual_tokens: n }), 3);
    const dir = await Deno.makeTempDir();
    try {
      await inst.save(dir);
      const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
      assert.deepEqual(Object.keys(json), Object.keys(json).sort(), "keys sorted");
      const Hkv = cfg.num_key_value_heads, d = cfg.head_dim, L = cfg.num_hidden_layers;
      // PEFT's _prepare_prompt_learning_config for a config with num_key_value_heads.
      assert.equal(json.peft_type, "PREFIX_TUNING");
      assert.equal(json.token_dim, Hkv * d);
      assert.equal(json.encoder_hidden_size, Hkv * d);
      assert.equal(json.num_attention_heads, Hkv);
      assert.equal(json.num_layers, L);
      assert.equal(json.num_virtual_tokens, n);
      assert.equal(json.prefix_projection, false);
      const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
      assert.deepEqual(st.names(), ["prompt_embeddings"]);
      assert.deepEqual(st.tensor("prompt_embeddings").shape, [n, L * 2 * Hkv * d]);
      const { model: fresh } = await llamaSetup(preset, 13);
      const again = await prefix.apply(fresh, await readPrefixConfig(dir), 99);
      await again.load(dir);
      const inputs = llamaBatch(cfg, B, T, 6);
      assert.deepEqual(
        (await realLogits(fresh, inputs, B, T)).logits,
        (await realLogits(model, inputs, B, T)).logits,
      );
      fresh.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
      model.release();
    }
  });

  Deno.test(`prompt tuning's virtual rows take positions 0..n−1: logits, loss and dP match the float64 reference (${preset})`, async () => {
    const { cfg, w, model } = await llamaSetup(preset, 14);
    const inst = await prompt.apply(model, prompt.validate({ num_virtual_tokens: n }), 5);
    const C = cfg.hidden_size;
    assert.deepEqual(inst.prompt.shape, [n, C]);
    const inputs = llamaBatch(cfg, B, T, 4);
    // Scale P to the token table's size so the virtual rows do not swamp the real ones.
    const P = Float64Array.from({ length: n * C }, (_, i) => Math.fround(0.3 * Math.sin(i + 1)));
    inst.prompt.value.write(Float32Array.from(P));
    const run = (p: Float64Array) =>
      llamaVirtualRef(cfg, w, inputs.ids, inputs.labels, B, T, { n, prompt: p });
    const ref = run(P);
    const { logits, loss } = await allLogits(model, inputs, B, T);
    assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits of all n+T rows");
    assert.ok(Math.abs(loss - ref.loss) < 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
    const [dP] = await gradsOf(model, inputs, B, T, [inst.prompt]);
    const fd = Float64Array.from(P, (_, i) => centralDiff((p) => run(p).loss, P, i, 1e-5));
    assertClose(dP, fd, gradTol(fd), "dP (n, C)");
    model.release();
  });
}

Deno.test("prompt tuning on Llama: TEXT init copies model.embed_tokens rows; files carry token_dim C and the query heads", async () => {
  const { cfg, w, model } = await llamaSetup("smollm-tiny", 15);
  const inst = await prompt.apply(
    model,
    prompt.validate({ num_virtual_tokens: 3, prompt_tuning_init: "TEXT", init_text_ids: [5, 200] }),
    0,
  );
  const C = cfg.hidden_size, embed = w.get("model.embed_tokens.weight")!;
  const [P] = await model.gpu.read([inst.prompt.value]);
  [5, 200, 5].forEach((id, j) =>
    assert.deepEqual(
      P.subarray(j * C, (j + 1) * C),
      Float32Array.from(embed.subarray(id * C, (id + 1) * C)),
    )
  );
  const dir = await Deno.makeTempDir();
  try {
    // PEFT's config check refuses a TEXT init without a tokenizer name: refused before writing.
    await assert.rejects(() => inst.save(dir), /TEXT init needs "tokenizer_name_or_path"/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
    await inst.save(dir, "HuggingFaceTB/SmolLM2-135M");
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.equal(json.tokenizer_name_or_path, "HuggingFaceTB/SmolLM2-135M");
    // PEFT adjusts token_dim and heads for grouped-query attention only for prefix tuning.
    assert.equal(json.peft_type, "PROMPT_TUNING");
    assert.equal(json.token_dim, C);
    assert.equal(json.num_attention_heads, cfg.num_attention_heads);
    assert.equal(json.num_layers, cfg.num_hidden_layers);
    const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(st.tensor("prompt_embeddings").shape, [3, C]);
    const { model: fresh } = await llamaSetup("smollm-tiny", 15);
    const again = await prompt.apply(fresh, await readPromptConfig(dir), 1);
    await again.load(dir);
    const inputs = llamaBatch(cfg, B, T, 8);
    assert.deepEqual(
      (await allLogits(fresh, inputs, B, T)).logits,
      (await allLogits(model, inputs, B, T)).logits,
    );
    fresh.release();
    await assert.rejects(
      prompt.apply(model, prompt.validate({ num_virtual_tokens: 2 }), 0),
      /already has virtual tokens/,
    );
    const { model: other } = await llamaSetup("smollm-tiny", 15);
    await assert.rejects(
      prompt.apply(other, prompt.validate({ num_virtual_tokens: 64 }), 0),
      /leave no position for real tokens \(max_position_embeddings=64\)/,
    );
    other.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.release();
  }
});

Deno.test("generate() with prefix or prompt tuning on a grouped-query Llama: the KV cache equals the uncached forward", async () => {
  for (const method of ["prefix", "prompt"]) {
    const { model } = await llamaSetup("llama-tiny", 16);
    const m = peftMethod(method);
    await m.apply(model, m.validate({ num_virtual_tokens: 3 }), 2);
    const run = async (cache: boolean) => {
      const logits: Float32Array[] = [];
      const out = await generate(model, [[5, 60, 11], [1, 2, 3, 40, 66]], {
        maxNewTokens: 5,
        cache,
        eosId: null,
        onLogits: (_step, _row, l) => logits.push(l.slice()),
      });
      return { ids: out.ids, logits };
    };
    const cached = await run(true), full = await run(false);
    assert.deepEqual(cached.ids, full.ids, `${method}: greedy tokens`);
    // Same positions and keys/values, a different order of f32 operations (one row vs all).
    cached.logits.forEach((l, i) =>
      assertClose(l, full.logits[i], { rtol: 1e-4, atol: 1e-4 }, `${method} logits ${i}`)
    );
    model.release();
  }
});
