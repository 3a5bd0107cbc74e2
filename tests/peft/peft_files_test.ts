/**
 * Adapter folders as Python's PEFT 0.17 writes them (`save_pretrained`: adapter_config.json with
 * every field of the config class, `json.dumps(indent=2, sort_keys=True)`, sets as lists;
 * adapter_model.safetensors with `get_peft_model_state_dict`'s keys and metadata
 * `{"format":"pt"}`) for IA³, prompt tuning (RANDOM, SAMPLE_VOCAB, TEXT) and prefix tuning,
 * loaded with loadAdapter() and checked against the float64 GPT-2 reference; the files whet
 * writes carry the same field sets; fields whet cannot honour are refused by name.
 */

import assert from "node:assert/strict";
import {
  adapterMethod,
  decodeBF16,
  encodeBF16,
  GPT,
  ia3,
  type Inputs,
  loadAdapter,
  prefix,
  prompt,
  readSafetensors,
  Rng,
  serializeSafetensors,
  type Tokenizer,
} from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import { assertClose, gpu } from "../helpers.ts";
import { randomWeights, SMALL } from "../models/_fixtures.ts";
import { gpt2PeftRef, type PeftRefParams, toF32 } from "../ref/peft.ts";

const cfg = SMALL, B = 2, T = 5, V = cfg.vocab_size;
const C = cfg.n_embd, F = 4 * C, L = cfg.n_layer, H = cfg.n_head;
const SHAPES = gpt2ParameterShapes(cfg);
const W = randomWeights(cfg, 21);
/** f32 through two blocks with O(1) activations (as tests/models/gpt_test.ts). */
const TOL = { rtol: 1e-4, atol: 1e-5 };

/** PEFT 0.17's PeftConfig fields, common to every method. */
const BASE_FIELDS = {
  auto_mapping: null,
  base_model_name_or_path: "openai-community/gpt2",
  inference_mode: true,
  peft_type: "",
  revision: null,
  task_type: "CAUSAL_LM",
};
/** PEFT 0.17's PromptLearningConfig fields (GPT-2 sizes). */
const PROMPT_LEARNING_FIELDS = {
  ...BASE_FIELDS,
  modules_to_save: null,
  num_attention_heads: H,
  num_layers: L,
  num_transformer_submodules: 1,
  num_virtual_tokens: 3,
  token_dim: C,
};
/**
 * The keys whet writes: a fixture's, less those PEFT added in 0.6–0.17 (REFERENCES.md: older PEFT
 * refuses a key it does not know), sorted.
 */
function longStanding(fixture: Record<string, unknown>, newer: string[] = []): string[] {
  const added = new Set(["auto_mapping", "revision", "exclude_modules", ...newer]);
  return Object.keys(fixture).filter((k) => !added.has(k)).sort();
}
/** `fixture` restricted to `keys`. */
function only(fixture: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, fixture[k]]));
}
const IA3_CONFIG = {
  ...BASE_FIELDS,
  exclude_modules: null,
  fan_in_fan_out: true,
  // A Python set, written as a list in whatever order the set iterates.
  feedforward_modules: ["mlp.c_proj"],
  init_ia3_weights: true,
  modules_to_save: null,
  peft_type: "IA3",
  target_modules: ["mlp.c_proj", "c_attn"],
};
const PROMPT_CONFIG = {
  ...PROMPT_LEARNING_FIELDS,
  peft_type: "PROMPT_TUNING",
  prompt_tuning_init: "RANDOM",
  prompt_tuning_init_text: null,
  tokenizer_kwargs: null,
  tokenizer_name_or_path: null,
};
const PREFIX_CONFIG = {
  ...PROMPT_LEARNING_FIELDS,
  encoder_hidden_size: C,
  peft_type: "PREFIX_TUNING",
  prefix_projection: false,
};

/** Writes a folder as PEFT's save_pretrained does; returns it. */
async function peftFolder(
  config: Record<string, unknown>,
  tensors: [string, { shape: number[]; data: Float32Array }][],
  dtype: "F32" | "F16" | "BF16" = "F32",
): Promise<string> {
  const dir = await Deno.makeTempDir();
  const sorted = Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
  // json.dumps(indent=2, sort_keys=True): no final newline.
  await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(sorted, null, 2));
  await Deno.writeFile(
    `${dir}/adapter_model.safetensors`,
    serializeSafetensors(tensors, { metadata: { format: "pt" }, dtype }),
  );
  return dir;
}

function batchOf(seed: number): Inputs & { ids: number[]; labels: number[] } {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(V));
  return { ids, labels: ids.map((id, i) => (i % T) === 0 ? -100 : id) };
}

/** Logits of the real positions (B·T, V) and of every position (virtual ones included). */
async function logitsOf(model: GPT, inputs: Inputs) {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, inputs);
  await batch.submit();
  const [all] = await model.gpu.read([acts.logits]);
  const S = acts.T, k = acts.nVirtual, real = new Float32Array(B * T * V);
  for (let b = 0; b < B; b++) real.set(all.subarray((b * S + k) * V, (b + 1) * S * V), b * T * V);
  acts.release();
  return { all, real };
}

async function freshModel(): Promise<GPT> {
  return await GPT.create(await gpu(), cfg, { weights: toF32(W, SHAPES) });
}

function randn(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => shift + scale * rng.normal());
}

const bf16 = (v: Float32Array) => Float32Array.from(v, (x) => decodeBF16(encodeBF16(x)));

/** A character-level tokenizer inside SMALL's vocabulary of 67. */
const CHARS: Tokenizer = {
  name: "chars",
  vocabSize: V,
  encode: (text) => [...text].map((ch) => ch.charCodeAt(0) % V),
  decode: (ids) => ids.map((id) => String.fromCharCode(id)).join(""),
};

/** Runs `fn` on a fresh model, and removes `dir` and the model afterwards. */
async function withModel(dir: string, fn: (model: GPT) => Promise<void>): Promise<void> {
  const model = await freshModel();
  try {
    await fn(model);
  } finally {
    model.release();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadAdapter() reads an IA³ folder as PEFT 0.17 writes it (BF16 vectors): logits match the float64 reference", async () => {
  const attn = [0, 1].map((l) => bf16(randn(3 * C, 30 + l, 0.4, 1)));
  const ff = [0, 1].map((l) => bf16(randn(F, 40 + l, 0.4, 1)));
  const tensors: [string, { shape: number[]; data: Float32Array }][] = [];
  for (let l = 0; l < L; l++) {
    const p = `base_model.model.transformer.h.${l}.`;
    tensors.push([`${p}attn.c_attn.ia3_l`, { shape: [3 * C, 1], data: attn[l] }]);
    tensors.push([`${p}mlp.c_proj.ia3_l`, { shape: [1, F], data: ff[l] }]);
  }
  const dir = await peftFolder(IA3_CONFIG, tensors, "BF16");
  await withModel(dir, async (model) => {
    const warnings: string[] = [];
    const inst = await loadAdapter(model, dir, { warn: (w) => warnings.push(w) });
    assert.equal(inst.method, "ia3");
    assert.deepEqual(warnings, [], "every field of PEFT 0.17's IA3Config is known");
    const inputs = batchOf(1);
    const ref = gpt2PeftRef(cfg, W, inputs.ids, inputs.labels, B, T, {
      ia3Attn: attn.map((v) => Float64Array.from(v)),
      ia3Ff: ff.map((v) => Float64Array.from(v)),
    });
    assertClose((await logitsOf(model, inputs)).real, ref.logits, TOL, "logits");
  });
});

Deno.test("loadAdapter() reads IA³ with target_modules and feedforward_modules as regular expressions (one layer)", async () => {
  const attn = bf16(randn(3 * C, 50, 0.4, 1)), ff = bf16(randn(F, 51, 0.4, 1));
  const config = {
    ...IA3_CONFIG,
    target_modules: "transformer\\.h\\.1\\.(attn\\.c_attn|mlp\\.c_proj)",
    feedforward_modules: ".*mlp\\.c_proj",
  };
  const dir = await peftFolder(config, [
    ["base_model.model.transformer.h.1.attn.c_attn.ia3_l", { shape: [3 * C, 1], data: attn }],
    ["base_model.model.transformer.h.1.mlp.c_proj.ia3_l", { shape: [1, F], data: ff }],
  ]);
  await withModel(dir, async (model) => {
    const inst = await loadAdapter(model, dir);
    assert.equal(inst.added.length, 2);
    const inputs = batchOf(2);
    const ref = gpt2PeftRef(cfg, W, inputs.ids, inputs.labels, B, T, {
      ia3Attn: [null, Float64Array.from(attn)],
      ia3Ff: [null, Float64Array.from(ff)],
    });
    assertClose((await logitsOf(model, inputs)).real, ref.logits, TOL, "logits");
  });
});

Deno.test("loadAdapter() reads IA³'s fan_in_fan_out as PEFT does (the layers' layout wins, with a warning) and init_ia3_weights false (the file's vectors replace the init)", async () => {
  const attn = randn(3 * C, 52, 0.3, 1), ff = randn(F, 53, 0.3, 1);
  const dir = await peftFolder(
    { ...IA3_CONFIG, fan_in_fan_out: false, init_ia3_weights: false },
    [0, 1].flatMap((l) =>
      [
        [`base_model.model.transformer.h.${l}.attn.c_attn.ia3_l`, {
          shape: [3 * C, 1],
          data: attn,
        }],
        [`base_model.model.transformer.h.${l}.mlp.c_proj.ia3_l`, { shape: [1, F], data: ff }],
      ] as [string, { shape: number[]; data: Float32Array }][]
    ),
  );
  await withModel(dir, async (model) => {
    const warnings: string[] = [];
    await loadAdapter(model, dir, { warn: (w) => warnings.push(w) });
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /fan_in_fan_out is false, but the layers store their weights \(in, out\); using true, as PEFT does/,
    );
    const inputs = batchOf(7);
    const ref = gpt2PeftRef(cfg, W, inputs.ids, inputs.labels, B, T, {
      ia3Attn: [attn, attn].map((v) => Float64Array.from(v)),
      ia3Ff: [ff, ff].map((v) => Float64Array.from(v)),
    });
    assertClose((await logitsOf(model, inputs)).real, ref.logits, TOL, "logits");
  });
});

Deno.test("IA³ saved with layers_to_transform writes PEFT's field set and a regex target that loads back the same layers", async () => {
  const model = await freshModel();
  const dir = await Deno.makeTempDir();
  try {
    const inst = await ia3.apply(model, ia3.validate({ layers_to_transform: [1] }), 0);
    inst.layers.forEach((l, i) => l.l.value.write(randn(l.l.value.size, 60 + i, 0.3, 1)));
    await inst.save(dir, "openai-community/gpt2");
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.deepEqual(Object.keys(json), longStanding(IA3_CONFIG), "IA3Config's long-standing keys");
    assert.equal(
      json.target_modules,
      "transformer\\.h\\.1\\.attn\\.c_attn|transformer\\.h\\.1\\.mlp\\.c_proj",
    );
    assert.equal(json.base_model_name_or_path, "openai-community/gpt2");
    const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(st.names().sort(), [
      "base_model.model.transformer.h.1.attn.c_attn.ia3_l",
      "base_model.model.transformer.h.1.mlp.c_proj.ia3_l",
    ]);
    assert.ok(st.names().every((n) => st.entry(n).dtype === "F32"));
    const again = await freshModel();
    try {
      const loaded = await loadAdapter(again, dir);
      assert.equal(loaded.added.length, 2);
      const inputs = batchOf(3);
      assert.deepEqual((await logitsOf(again, inputs)).all, (await logitsOf(model, inputs)).all);
    } finally {
      again.release();
    }
  } finally {
    model.release();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IA³ feed-forward modules are a subset of the targets name for name, as PEFT's IA3Config checks", async () => {
  // PEFT refuses {"target_modules": ["c_proj"], "feedforward_modules": ["mlp.c_proj"]}.
  assert.throws(
    () => ia3.validate({ target_modules: ["c_proj"], feedforward_modules: ["mlp.c_proj"] }),
    /feedforward module "mlp.c_proj" is not among target_modules \["c_proj"\]/,
  );
  const model = await freshModel();
  try {
    // The family's default feed-forward name is kept only where the targets list it.
    const inst = await ia3.apply(model, ia3.validate({ target_modules: ["c_proj"] }), 0);
    assert.deepEqual(inst.config.feedforward_modules, []);
    assert.ok(inst.layers.every((l) => !l.feedforward));
    assert.deepEqual(inst.adapterConfig().feedforward_modules, []);
  } finally {
    model.release();
  }
});

for (const init of ["RANDOM", "SAMPLE_VOCAB", "TEXT"]) {
  Deno.test(`loadAdapter() reads a prompt-tuning folder (${init} init) as PEFT 0.17 writes it: logits match the float64 reference`, async () => {
    const P = randn(3 * C, 70);
    const text = init === "TEXT";
    const config = {
      ...PROMPT_CONFIG,
      prompt_tuning_init: init,
      prompt_tuning_init_text: text ? "Sentiment:" : null,
      tokenizer_name_or_path: text ? "openai-community/gpt2" : null,
    };
    const dir = await peftFolder(config, [["prompt_embeddings", { shape: [3, C], data: P }]]);
    await withModel(dir, async (model) => {
      const warnings: string[] = [];
      const inst = await loadAdapter(model, dir, {
        tokenizer: CHARS,
        warn: (w) => warnings.push(w),
      });
      assert.deepEqual(warnings, []);
      assert.ok(inst instanceof Object && inst.method === "prompt");
      const pi = inst as Awaited<ReturnType<typeof prompt.apply>>;
      assert.equal(pi.config.prompt_tuning_init, init);
      if (text) {
        // With the tokenizer, the rows the prompt started from are known again ("Sen").
        assert.deepEqual(pi.initIds, CHARS.encode("Sen"));
      } else assert.equal(pi.initIds, null);
      const inputs = batchOf(4);
      const ref = gpt2PeftRef(cfg, W, inputs.ids, inputs.labels, B, T, {
        n: 3,
        prompt: Float64Array.from(P),
      } as PeftRefParams);
      assertClose((await logitsOf(model, inputs)).all, ref.logits, TOL, "logits");
      // Saved again: the long-standing keys with the fixture's values, TEXT's tokenizer name kept.
      const out = await Deno.makeTempDir();
      try {
        await inst.save(out);
        const json = JSON.parse(await Deno.readTextFile(`${out}/adapter_config.json`));
        assert.deepEqual(
          json,
          only(config, longStanding(config, ["modules_to_save", "tokenizer_kwargs"])),
        );
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    });
  });
}

Deno.test("prompt tuning with TEXT init records tokenizer_name_or_path from the base model (PEFT's config check needs it)", async () => {
  const model = await freshModel();
  const dir = await Deno.makeTempDir();
  try {
    const inst = await prompt.apply(
      model,
      prompt.validate({
        num_virtual_tokens: 3,
        prompt_tuning_init: "TEXT",
        prompt_tuning_init_text: "Hi!",
      }),
      0,
      { tokenizer: CHARS, baseModel: "models/base" },
    );
    assert.deepEqual(inst.initIds, CHARS.encode("Hi!"), "the CLI no longer tokenises: apply does");
    await inst.save(dir);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.deepEqual(
      Object.keys(json),
      longStanding(PROMPT_CONFIG, ["modules_to_save", "tokenizer_kwargs"]),
      "PromptTuningConfig's long-standing keys",
    );
    assert.equal(json.tokenizer_name_or_path, "models/base");
    assert.equal(json.base_model_name_or_path, "models/base");
    assert.equal(json.prompt_tuning_init_text, "Hi!");
  } finally {
    model.release();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadAdapter() reads a prefix-tuning folder as PEFT 0.17 writes it: logits match the float64 reference", async () => {
  const P = randn(3 * L * 2 * C, 80, 0.7);
  const dir = await peftFolder(PREFIX_CONFIG, [
    ["prompt_embeddings", { shape: [3, L * 2 * C], data: P }],
  ]);
  await withModel(dir, async (model) => {
    const warnings: string[] = [];
    const inst = await loadAdapter(model, dir, { warn: (w) => warnings.push(w) });
    assert.equal(inst.method, "prefix");
    assert.deepEqual(warnings, []);
    const inputs = batchOf(5);
    const ref = gpt2PeftRef(cfg, W, inputs.ids, inputs.labels, B, T, {
      n: 3,
      prefix: Float64Array.from(P),
    });
    assertClose((await logitsOf(model, inputs)).real, ref.logits, TOL, "logits");
    const out = await Deno.makeTempDir();
    try {
      await inst.save(out);
      const json = JSON.parse(await Deno.readTextFile(`${out}/adapter_config.json`));
      assert.deepEqual(
        json,
        only(PREFIX_CONFIG, longStanding(PREFIX_CONFIG, ["modules_to_save"])),
        "PrefixTuningConfig's long-standing keys, base model name kept",
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
});

Deno.test("loadAdapter() refuses by name the fields whet cannot honour, and warns about unknown ones", async () => {
  const P = randn(3 * C, 90);
  const prefixP = randn(3 * L * 2 * C, 91);
  const ia3Tensors: [string, { shape: number[]; data: Float32Array }][] = [0, 1].flatMap((l) => [
    [`base_model.model.transformer.h.${l}.attn.c_attn.ia3_l`, {
      shape: [3 * C, 1],
      data: new Float32Array(3 * C).fill(1),
    }],
    [`base_model.model.transformer.h.${l}.mlp.c_proj.ia3_l`, {
      shape: [1, F],
      data: new Float32Array(F).fill(1),
    }],
  ]);
  const promptT: [string, { shape: number[]; data: Float32Array }][] = [[
    "prompt_embeddings",
    { shape: [3, C], data: P },
  ]];
  const prefixT: [string, { shape: number[]; data: Float32Array }][] = [[
    "prompt_embeddings",
    { shape: [3, L * 2 * C], data: prefixP },
  ]];
  const cases: [Record<string, unknown>, typeof promptT, RegExp][] = [
    [{ ...PREFIX_CONFIG, prefix_projection: true }, prefixT, /field "prefix_projection" is true/],
    [{ ...PREFIX_CONFIG, num_transformer_submodules: 2 }, prefixT, /"num_transformer_submodules"/],
    [
      { ...PREFIX_CONFIG, token_dim: 2 * C },
      prefixT,
      /field "token_dim" is 48: written for another model/,
    ],
    [{ ...PREFIX_CONFIG, num_layers: 12 }, prefixT, /field "num_layers" is 12/],
    [{ ...PROMPT_CONFIG, num_attention_heads: 12 }, promptT, /field "num_attention_heads" is 12/],
    [{ ...PROMPT_CONFIG, modules_to_save: ["lm_head"] }, promptT, /field "modules_to_save"/],
    [{ ...PROMPT_CONFIG, task_type: "SEQ_CLS" }, promptT, /field "task_type" is "SEQ_CLS"/],
    [
      { ...PROMPT_CONFIG, prompt_tuning_init: "TEXT" },
      promptT,
      /field "prompt_tuning_init_text" is null with a TEXT init/,
    ],
    [{ ...IA3_CONFIG, modules_to_save: ["lm_head"] }, ia3Tensors, /field "modules_to_save"/],
    [{ ...IA3_CONFIG, exclude_modules: ["c_attn"] }, ia3Tensors, /field "exclude_modules"/],
    [{ ...IA3_CONFIG, layers_pattern: "h" }, ia3Tensors, /field "layers_pattern"/],
    [{ ...IA3_CONFIG, init_ia3_weights: "yes" }, ia3Tensors, /field "init_ia3_weights" must be/],
    [
      { ...IA3_CONFIG, target_modules: "transformer\\.h\\.0\\.(attn\\.c_attn|mlp\\.c_proj)" },
      ia3Tensors,
      /tensors "base_model.model.transformer.h.1.attn.c_attn.ia3_l", .* belong to no adapted module/,
    ],
    [
      { ...IA3_CONFIG, peft_type: "LOHA" },
      ia3Tensors,
      /field "peft_type" is "LOHA"; supported: LORA/,
    ],
  ];
  const model = await freshModel();
  try {
    for (const [config, tensors, expected] of cases) {
      const dir = await peftFolder(config, tensors);
      try {
        const fresh = await freshModel();
        try {
          await assert.rejects(
            () => loadAdapter(fresh, dir, { warn: () => {} }),
            (e: Error) => {
              assert.match(e.message, expected);
              assert.ok(e.message.includes(dir), `names the file: ${e.message}`);
              return true;
            },
          );
        } finally {
          fresh.release();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
    // Unknown fields (from a newer PEFT) load with one warning naming them.
    const dir = await peftFolder({ ...PROMPT_CONFIG, shiny_new_option: 1, zz: null }, promptT);
    try {
      const warnings: string[] = [];
      await loadAdapter(model, dir, { warn: (w) => warnings.push(w) });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /unknown fields "shiny_new_option", "zz"/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  } finally {
    model.release();
  }
});

Deno.test("loadAdapter() finds every registered method's saved folder and applies it with the same outputs", async () => {
  const settings: Record<string, Record<string, unknown>> = {
    full: {},
    selective: { include: ["h.1.mlp.**"] },
    bitfit: {},
    lora: { r: 2 },
    adapters: { placement: "houlsby" },
    prompt: { num_virtual_tokens: 2 },
    prefix: { num_virtual_tokens: 2 },
    ia3: {},
  };
  const { PEFT_METHODS } = await import("../../mod.ts");
  assert.deepEqual(Object.keys(settings), Object.keys(PEFT_METHODS), "every method is covered");
  for (const [name, method] of Object.entries(PEFT_METHODS)) {
    const model = await freshModel();
    const again = await freshModel();
    const dir = await Deno.makeTempDir();
    try {
      const inst = await method.apply(model, method.validate(settings[name]), 3);
      // Move every trained value off its initialisation, so the load has something to carry.
      for (const p of inst.trainable()) {
        const [v] = await model.gpu.read([p.value]);
        p.value.write(Float32Array.from(v, (x, i) => x + 0.05 * Math.sin(i + 1)));
      }
      await inst.save(dir, "gpt2");
      const found = await adapterMethod(dir);
      assert.equal(found.method.name, name);
      const loaded = await loadAdapter(again, dir, { warn: (w) => assert.fail(w) });
      assert.equal(loaded.method, name);
      const inputs = batchOf(6);
      assert.deepEqual(
        (await logitsOf(again, inputs)).all,
        (await logitsOf(model, inputs)).all,
        name,
      );
    } finally {
      model.release();
      again.release();
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("adapterMethod() names the files it looks for, and old bottleneck files (whet_method only) still load", async () => {
  const empty = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => adapterMethod(empty),
      /holds neither adapter_config.json nor whet_peft.json/,
    );
    await Deno.writeTextFile(`${empty}/adapter_config.json`, '{"whet_method": "bottleneck"}');
    assert.equal((await adapterMethod(empty)).method.name, "adapters");
    await Deno.writeTextFile(`${empty}/adapter_config.json`, "{}");
    await assert.rejects(() => adapterMethod(empty), /field "peft_type" is null; supported:/);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
  assert.equal(prefix.peftType, "PREFIX_TUNING");
});
