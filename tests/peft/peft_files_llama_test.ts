/**
 * Prompt- and prefix-tuning folders as Python's PEFT 0.17 writes them for a Llama-family model
 * with grouped-query attention (PEFT sizes a prefix by the key/value heads: token_dim = Hkv·d,
 * num_attention_heads = Hkv; a prompt by the hidden size and the query heads), loaded with
 * loadAdapter() and checked against the float64 Llama reference.
 */

import assert from "node:assert/strict";
import { loadAdapter, Rng, serializeSafetensors } from "../../mod.ts";
import { assertClose } from "../helpers.ts";
import { allLogits, llamaBatch, llamaSetup, llamaVirtualRef, realLogits } from "./_llama.ts";

const B = 2, T = 4, n = 3;
/** f32 through two blocks with O(1) activations (as tests/peft/virtual_llama_test.ts). */
const TOL = { rtol: 1e-4, atol: 1e-5 };

async function peftFolder(config: Record<string, unknown>, P: Float32Array, shape: number[]) {
  const dir = await Deno.makeTempDir();
  const sorted = Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
  await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(sorted, null, 2));
  await Deno.writeFile(
    `${dir}/adapter_model.safetensors`,
    serializeSafetensors([["prompt_embeddings", { shape, data: P }]], {
      metadata: { format: "pt" },
    }),
  );
  return dir;
}

function randn(count: number, seed: number, scale: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count }, () => scale * rng.normal());
}

for (const kind of ["prompt", "prefix"] as const) {
  Deno.test(`loadAdapter() reads a PEFT 0.17 ${kind}-tuning folder for llama-tiny (GQA): logits match the float64 reference`, async () => {
    const { cfg, w, model } = await llamaSetup("llama-tiny", 17);
    const H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, d = cfg.head_dim;
    const L = cfg.num_hidden_layers, C = cfg.hidden_size;
    assert.ok(Hkv < H, "grouped-query attention");
    const common = {
      auto_mapping: null,
      base_model_name_or_path: "whet/llama-tiny",
      inference_mode: true,
      modules_to_save: null,
      num_layers: L,
      num_transformer_submodules: 1,
      num_virtual_tokens: n,
      revision: null,
      task_type: "CAUSAL_LM",
    };
    const config = kind === "prompt"
      ? {
        ...common,
        num_attention_heads: H,
        peft_type: "PROMPT_TUNING",
        prompt_tuning_init: "RANDOM",
        prompt_tuning_init_text: null,
        token_dim: C,
        tokenizer_kwargs: null,
        tokenizer_name_or_path: null,
      }
      : {
        ...common,
        encoder_hidden_size: Hkv * d,
        num_attention_heads: Hkv,
        peft_type: "PREFIX_TUNING",
        prefix_projection: false,
        token_dim: Hkv * d,
      };
    const width = kind === "prompt" ? C : L * 2 * Hkv * d;
    const P = randn(n * width, 5, kind === "prompt" ? 1 : 0.7);
    const dir = await peftFolder(config, P, [n, width]);
    try {
      const warnings: string[] = [];
      const inst = await loadAdapter(model, dir, { warn: (m) => warnings.push(m) });
      assert.equal(inst.method, kind);
      assert.deepEqual(warnings, []);
      const inputs = llamaBatch(cfg, B, T, 9);
      const ref = llamaVirtualRef(cfg, w, inputs.ids, inputs.labels, B, T, {
        n,
        [kind]: Float64Array.from(P),
      });
      const got = kind === "prompt"
        ? await allLogits(model, inputs, B, T)
        : await realLogits(model, inputs, B, T);
      assertClose(got.logits, ref.logits, TOL, "logits");
      // The other model's sizes are refused by name.
      const wrong = await peftFolder({ ...config, token_dim: width + 1 }, P, [n, width]);
      const { model: other } = await llamaSetup("llama-tiny", 17);
      try {
        await assert.rejects(
          () => loadAdapter(other, wrong),
          /field "token_dim" is \d+: written for another model/,
        );
      } finally {
        other.release();
        await Deno.remove(wrong, { recursive: true });
      }
    } finally {
      model.release();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
