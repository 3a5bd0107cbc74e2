import assert from "node:assert/strict";
import { configFromHF, modelFamilyOf, readModelConfig } from "../../models/config.ts";
import {
  LLAMA_LIMITS,
  LLAMA_PRESETS,
  type LlamaConfig,
  llamaConfig,
  llamaConfigFromHF,
  llamaConfigToHF,
  type LlamaPresetName,
  projectionBiases,
  validateLlamaConfig,
} from "../../models/llama_config.ts";
import { Rng } from "../../runtime/rng.ts";

/** HuggingFaceTB/SmolLM2-135M config.json as published (transformers 4.40.1). */
const SMOLLM2_135M_JSON = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: "silu",
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  is_llama_config: true,
  max_position_embeddings: 8192,
  model_type: "llama",
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pretraining_tp: 1,
  rms_norm_eps: 1e-05,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.40.1",
  use_cache: true,
  vocab_size: 49152,
};

/** Qwen/Qwen2.5-0.5B config.json as published: no attention_bias, sliding-window keys off. */
const QWEN25_05B_JSON = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-06,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.40.1",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json as published (transformers 4.35.0). */
const TINYLLAMA_JSON = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 5632,
  max_position_embeddings: 2048,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 22,
  num_key_value_heads: 4,
  pretraining_tp: 1,
  rms_norm_eps: 1e-05,
  rope_scaling: null,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.35.0",
  use_cache: true,
  vocab_size: 32000,
};

const tiny = LLAMA_PRESETS["llama-tiny"];

Deno.test("`LLAMA_PRESETS` hold the documented shapes and all validate", () => {
  const rows = Object.entries(LLAMA_PRESETS).map(([name, c]) => {
    assert.deepEqual(validateLlamaConfig(c, name), { ...c });
    assert.ok(Object.isFrozen(c));
    return [
      name,
      c.model_type,
      c.vocab_size,
      c.hidden_size,
      c.intermediate_size,
      c.num_hidden_layers,
      c.num_attention_heads,
      c.num_key_value_heads,
      c.head_dim,
      c.max_position_embeddings,
      c.rope_theta,
      c.rms_norm_eps,
      c.tie_word_embeddings,
      c.attention_bias,
    ];
  });
  assert.deepEqual(rows, [
    ["smollm2-135m", "llama", 49152, 576, 1536, 30, 9, 3, 64, 8192, 100000, 1e-5, true, false],
    ["smollm2-360m", "llama", 49152, 960, 2560, 32, 15, 5, 64, 8192, 100000, 1e-5, true, false],
    ["qwen2.5-0.5b", "qwen2", 151936, 896, 4864, 24, 14, 2, 64, 32768, 1e6, 1e-6, true, true],
    ["tinyllama-1.1b", "llama", 32000, 2048, 5632, 22, 32, 4, 64, 2048, 10000, 1e-5, false, false],
    ["llama-tiny", "llama", 256, 48, 88, 2, 4, 2, 12, 64, 10000, 1e-5, false, false],
    ["smollm-tiny", "llama", 256, 36, 72, 2, 3, 1, 12, 64, 100000, 1e-5, true, false],
    ["qwen2-tiny", "qwen2", 256, 40, 72, 2, 4, 2, 10, 64, 1e6, 1e-6, true, true],
  ]);
});

Deno.test("`llamaConfigFromHF()` reads the published config.json of each real preset to that preset", () => {
  const cases: [LlamaPresetName, Record<string, unknown>][] = [
    ["smollm2-135m", SMOLLM2_135M_JSON],
    ["qwen2.5-0.5b", QWEN25_05B_JSON],
    ["tinyllama-1.1b", TINYLLAMA_JSON],
  ];
  for (const [name, json] of cases) {
    assert.deepEqual(llamaConfigFromHF(json, `${name}/config.json`), { ...LLAMA_PRESETS[name] });
  }
});

Deno.test("`llamaConfigFromHF()` fills missing keys with LlamaConfig() / Qwen2Config() defaults", () => {
  assert.deepEqual(llamaConfigFromHF({ model_type: "llama" }), {
    model_type: "llama",
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    head_dim: 128,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    hidden_act: "silu",
    initializer_range: 0.02,
    attention_dropout: 0,
    bos_token_id: 1,
    eos_token_id: 2,
  });
  const qwen = llamaConfigFromHF({ model_type: "qwen2", num_attention_heads: 16 });
  assert.deepEqual(
    [qwen.vocab_size, qwen.intermediate_size, qwen.max_position_embeddings, qwen.bos_token_id],
    [151936, 22016, 32768, null],
  );
  // Absent num_key_value_heads means one per query head (Qwen2Config's literal default, 32,
  // would not divide 16 heads).
  assert.equal(qwen.num_key_value_heads, 16);
  assert.equal(qwen.head_dim, 256);
  // Qwen2 always has q/k/v biases: an attention_bias key in its config.json is ignored, as
  // Qwen2ForCausalLM ignores it.
  const ignored = llamaConfigFromHF({ ...QWEN25_05B_JSON, attention_bias: false, mlp_bias: true });
  assert.deepEqual(ignored, { ...LLAMA_PRESETS["qwen2.5-0.5b"] });
  // null head_dim / num_key_value_heads are derived; a given head_dim need not be C / H.
  const derived = llamaConfigFromHF({
    ...TINYLLAMA_JSON,
    head_dim: null,
    num_key_value_heads: null,
  });
  assert.deepEqual([derived.head_dim, derived.num_key_value_heads], [64, 32]);
  assert.equal(llamaConfigFromHF({ ...TINYLLAMA_JSON, head_dim: 80 }).head_dim, 80);
  const list = llamaConfigFromHF({ ...TINYLLAMA_JSON, eos_token_id: [2, 32000 - 1] });
  assert.deepEqual(list.eos_token_id, [2, 31999]);
});

Deno.test("`llamaConfigFromHF()` accepts plain RoPE in rope_scaling / rope_parameters (transformers 5)", () => {
  const v5 = { ...SMOLLM2_135M_JSON, rope_theta: undefined };
  const params = llamaConfigFromHF({
    ...v5,
    rope_parameters: { rope_theta: 100000.0, rope_type: "default" },
  });
  assert.deepEqual(params, { ...LLAMA_PRESETS["smollm2-135m"] });
  assert.equal(
    llamaConfigFromHF({ ...TINYLLAMA_JSON, rope_scaling: { type: "default" } }).rope_theta,
    10000,
  );
});

Deno.test("`llamaConfigFromHF()` rejects unsupported or inconsistent configs naming the key and file", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model_type: "mistral" }, /"model_type" must be "llama" or "qwen2", got "mistral"/],
    [{ model_type: undefined }, /"model_type" must be "llama" or "qwen2", got undefined/],
    [
      { rope_scaling: { type: "linear", factor: 2.0 } },
      /"rope_scaling" \{"type":"linear","factor":2\} is not supported \(only plain RoPE/,
    ],
    [
      { rope_scaling: { rope_type: "llama3", factor: 8.0 } },
      /"rope_scaling" .*"llama3".* is not supported/,
    ],
    [{ rope_scaling: { rope_type: "default", factor: 2 } }, /"rope_scaling" .* is not supported/],
    [{ rope_scaling: "linear" }, /"rope_scaling" must be null or an object, got "linear"/],
    [
      { rope_parameters: { rope_type: "yarn", rope_theta: 1e4, factor: 4 } },
      /"rope_parameters" .*"yarn".* is not supported/,
    ],
    [
      { rope_parameters: { rope_type: "default", rope_theta: 5e5 } },
      /"rope_parameters\.rope_theta" \(500000\) differs from "rope_theta" \(10000\)/,
    ],
    [
      { rope_parameters: { rope_type: "default", rope_theta: "big" } },
      /"rope_parameters\.rope_theta" must be a positive finite number, got "big"/,
    ],
    [{ pretraining_tp: 2 }, /"pretraining_tp": 2 is not supported \(expected 1\)/],
    [
      { num_key_value_heads: 5 },
      /"num_key_value_heads" \(5\) must divide "num_attention_heads" \(32\)/,
    ],
    [
      { num_attention_heads: 30 },
      /"hidden_size" \(2048\) must be divisible by "num_attention_heads" \(30\) unless "head_dim"/,
    ],
    [{ head_dim: 63 }, /"head_dim" \(63\) must be even/],
    [{ hidden_act: "gelu" }, /"hidden_act" "gelu" is not supported \(only "silu"\)/],
    [{ hidden_size: "2048" }, /"hidden_size" must be an integer in \[1, 65536\], got "2048"/],
    [{ num_hidden_layers: 0 }, /"num_hidden_layers" must be an integer in \[1, 1024\], got 0/],
    [{ rms_norm_eps: null }, /"rms_norm_eps" must be a number in \(0, 1\], got null/],
    [{ rope_theta: -1 }, /"rope_theta" must be a number in \(0, 1000000000000\], got -1/],
    [{ tie_word_embeddings: "false" }, /"tie_word_embeddings" must be true or false/],
    [{ attention_bias: 1 }, /"attention_bias" must be true or false, got 1/],
    [{ attention_dropout: 1 }, /"attention_dropout" must be a number in \[0, 1\)/],
    [{ initializer_range: -0.02 }, /"initializer_range" must be a number in \[0, 1\]/],
    [
      { bos_token_id: 32000 },
      /"bos_token_id" must be null or an integer in \[0, vocab_size=32000\), got 32000/,
    ],
    [{ eos_token_id: [2, -1] }, /"eos_token_id" must be null, an integer .* got \[2,-1\]/],
    [{ eos_token_id: [] }, /"eos_token_id" must be null, an integer .*non-empty list/],
  ];
  for (const [change, pattern] of cases) {
    assert.throws(
      () => llamaConfigFromHF({ ...TINYLLAMA_JSON, ...change }, "ckpt/config.json"),
      (e: Error) => {
        assert.match(e.message, /ckpt\/config\.json/);
        assert.match(e.message, pattern);
        return true;
      },
      JSON.stringify(change),
    );
  }
  assert.throws(
    () => llamaConfigFromHF({ ...QWEN25_05B_JSON, use_sliding_window: true }, "q/config.json"),
    /Cannot read Hugging Face config q\/config\.json: "use_sliding_window": true is not supported/,
  );
  // use_sliding_window is not a Llama key; pretraining_tp is not a Qwen2 one: both ignored there.
  assert.equal(
    llamaConfigFromHF({ ...TINYLLAMA_JSON, use_sliding_window: true }).vocab_size,
    32000,
  );
  assert.equal(llamaConfigFromHF({ ...QWEN25_05B_JSON, pretraining_tp: 4 }).vocab_size, 151936);
  assert.throws(
    () => llamaConfigFromHF([1], "x.json"),
    /Cannot read Hugging Face config x\.json: expected a JSON object, got \[1\]/,
  );
});

Deno.test("`llamaConfigToHF()` writes LlamaConfig / Qwen2Config keys that read back to the same config", () => {
  for (const [name, cfg] of Object.entries(LLAMA_PRESETS)) {
    const json = llamaConfigToHF(cfg);
    assert.deepEqual(Object.keys(json), Object.keys(json).sort(), `${name}: sorted keys`);
    assert.equal(json.torch_dtype, "float32");
    assert.equal(json.rope_scaling, null);
    assert.deepEqual(llamaConfigFromHF(JSON.parse(JSON.stringify(json))), { ...cfg }, name);
  }
  const llama = llamaConfigToHF({ ...tiny, attention_bias: true, mlp_bias: true });
  assert.deepEqual(llama.architectures, ["LlamaForCausalLM"]);
  assert.deepEqual(
    [llama.attention_bias, llama.mlp_bias, llama.head_dim, llama.pretraining_tp],
    [true, true, 12, 1],
  );
  const qwen = llamaConfigToHF(LLAMA_PRESETS["qwen2-tiny"]);
  assert.deepEqual(qwen.architectures, ["Qwen2ForCausalLM"]);
  for (const key of ["attention_bias", "mlp_bias", "head_dim", "pretraining_tp"]) {
    assert.ok(!(key in qwen), `Qwen2Config has no ${key} (head_dim only when not C / H)`);
  }
  assert.equal(qwen.use_sliding_window, false);
  const wide = llamaConfig("qwen2-tiny", { head_dim: 16 });
  assert.equal(llamaConfigToHF(wide).head_dim, 16);
  assert.deepEqual(llamaConfigFromHF(llamaConfigToHF(wide)), wide);
  assert.throws(
    () => llamaConfigToHF({ ...tiny, head_dim: 0 }),
    /"head_dim" must be an integer in \[1, 4096\]/,
  );
});

Deno.test("`llamaConfig()` copies a preset with overrides; head_dim follows C / H", () => {
  const c = llamaConfig("llama-tiny", { num_hidden_layers: 3, hidden_size: 64 });
  assert.deepEqual([c.num_hidden_layers, c.hidden_size, c.head_dim], [3, 64, 16]);
  assert.equal(llamaConfig("llama-tiny", { num_attention_heads: 2 }).head_dim, 24);
  assert.equal(llamaConfig("llama-tiny", { head_dim: 8 }).head_dim, 8);
  assert.equal(LLAMA_PRESETS["llama-tiny"].hidden_size, 48, "the preset itself is unchanged");
  assert.throws(
    () => llamaConfig("llama-tiny", { num_attention_heads: 5 }),
    /Invalid Llama config \(preset "llama-tiny"\): "hidden_size" \(48\) must be divisible by "num_attention_heads" \(5\)/,
  );
  assert.throws(
    () => llamaConfig("llama-tiny", { num_key_value_heads: 3 }),
    /"num_key_value_heads" \(3\) must divide "num_attention_heads" \(4\)/,
  );
  assert.throws(() => llamaConfig("huge" as "llama-tiny"), /unknown preset "huge" \(known: /);
  assert.throws(() => llamaConfig("toString" as "llama-tiny"), /unknown preset "toString"/);
});

Deno.test("`validateLlamaConfig()` rejects unknown, missing and ill-typed keys naming each", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ n_embd: 32 }, /unknown key "n_embd"/],
    [{ rope_scaling: null }, /unknown key "rope_scaling"/],
    [{ model_type: "gpt2" }, /"model_type" must be "llama" or "qwen2", got "gpt2"/],
    [{ vocab_size: 1.5 }, /"vocab_size" must be an integer in \[1, 2097152\], got 1\.5/],
    [{ num_key_value_heads: 3 }, /"num_key_value_heads" \(3\) must divide/],
    [{ head_dim: 7 }, /"head_dim" \(7\) must be even/],
    [
      { rope_theta: Infinity },
      /"rope_theta" must be a number in \(0, 1000000000000\], got Infinity/,
    ],
    [{ hidden_act: "relu" }, /"hidden_act" "relu" is not supported/],
    [{ eos_token_id: 256 }, /"eos_token_id" must be null, an integer in \[0, vocab_size=256\)/],
  ];
  for (const [change, pattern] of cases) {
    assert.throws(
      () => validateLlamaConfig({ ...tiny, ...change }, "run.yaml"),
      (e: Error) => {
        assert.match(e.message, /^Invalid Llama config \(run\.yaml\): /);
        assert.match(e.message, pattern);
        return true;
      },
    );
  }
  const { rope_theta: _, ...missing } = tiny;
  assert.throws(() => validateLlamaConfig(missing), /missing key "rope_theta"/);
  const qwen = LLAMA_PRESETS["qwen2-tiny"];
  assert.throws(
    () => validateLlamaConfig({ ...qwen, attention_bias: false }),
    /"attention_bias" must be true for model_type "qwen2"/,
  );
  assert.throws(
    () => validateLlamaConfig({ ...qwen, mlp_bias: true }),
    /"mlp_bias" must be false for model_type "qwen2"/,
  );
  const eos = [1, 2];
  const copy = validateLlamaConfig({ ...tiny, eos_token_id: eos });
  assert.notEqual(copy.eos_token_id, eos, "a copy, not the caller's array");
});

Deno.test("`projectionBiases()` gives Qwen2 q/k/v biases and Llama's attention_bias all four", () => {
  assert.deepEqual(projectionBiases(LLAMA_PRESETS["qwen2-tiny"]), { qkv: true, o: false });
  assert.deepEqual(projectionBiases(tiny), { qkv: false, o: false });
  assert.deepEqual(projectionBiases({ ...tiny, attention_bias: true }), { qkv: true, o: true });
});

Deno.test("`modelFamilyOf()` and `readModelConfig()` dispatch on model_type", () => {
  assert.equal(modelFamilyOf({ model_type: "gpt2" }), "gpt2");
  assert.equal(modelFamilyOf({}), "gpt2", "no model_type: GPT-2, as before");
  assert.equal(modelFamilyOf(SMOLLM2_135M_JSON), "llama");
  assert.equal(modelFamilyOf(QWEN25_05B_JSON), "llama");
  assert.deepEqual(readModelConfig({}), { family: "gpt2", config: configFromHF({}) });
  assert.deepEqual(readModelConfig({ n_embd: 64, n_head: 4 }, "a.json"), {
    family: "gpt2",
    config: configFromHF({ n_embd: 64, n_head: 4 }),
  });
  assert.deepEqual(readModelConfig(QWEN25_05B_JSON), {
    family: "llama",
    config: { ...LLAMA_PRESETS["qwen2.5-0.5b"] },
  });
  assert.throws(
    () => readModelConfig({ model_type: "xyz" }, "ck/config.json"),
    (e: Error) => {
      assert.equal(
        e.message,
        'Cannot load ck/config.json: model_type "xyz" is not supported (supported: gpt2, llama, qwen2)',
      );
      return true;
    },
  );
  assert.throws(
    () => modelFamilyOf({ model_type: "constructor" }),
    /"constructor" is not supported/,
  );
  assert.throws(() => modelFamilyOf({ model_type: 2 }), /model_type 2 is not supported/);
  assert.throws(() => modelFamilyOf(null, "n.json"), /Cannot load n\.json: expected a JSON object/);
  // Family errors come from the family's reader, naming the key.
  assert.throws(
    () => readModelConfig({ ...TINYLLAMA_JSON, num_key_value_heads: 3 }, "t.json"),
    /t\.json.*"num_key_value_heads" \(3\) must divide "num_attention_heads" \(32\)/,
  );
});

/** Values a hand-edited or foreign config.json might hold where a number or flag belongs. */
const ODD_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  2,
  3,
  7,
  64,
  1.5,
  1e-5,
  1e300,
  -0.5,
  NaN,
  Infinity,
  "",
  "silu",
  "12",
  "default",
  [],
  [1],
  [2, 3],
  ["full_attention"],
  {},
  { rope_type: "default" },
  { type: "linear", factor: 2 },
  { rope_type: "default", rope_theta: 10 },
  { rope_theta: "x" },
];

/** Keys worth mutating: those the reader looks at, plus some it should ignore. */
const FUZZ_KEYS = [
  "model_type",
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "max_position_embeddings",
  "rms_norm_eps",
  "rope_theta",
  "rope_scaling",
  "rope_parameters",
  "tie_word_embeddings",
  "attention_bias",
  "mlp_bias",
  "hidden_act",
  "initializer_range",
  "attention_dropout",
  "bos_token_id",
  "eos_token_id",
  "pretraining_tp",
  "use_sliding_window",
  "sliding_window",
  "architectures",
  "torch_dtype",
];

Deno.test("`llamaConfigFromHF()` under seeded random mutations parses or throws an Error naming a mutated key", () => {
  const rng = new Rng(1234);
  const bases: Record<string, unknown>[] = [
    SMOLLM2_135M_JSON,
    QWEN25_05B_JSON,
    TINYLLAMA_JSON,
    ...Object.values(LLAMA_PRESETS).map(llamaConfigToHF),
  ];
  const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)];
  let parsed = 0, refused = 0;
  for (let trial = 0; trial < 3000; trial++) {
    const json: Record<string, unknown> = structuredClone(pick(bases));
    const mutated = new Set<string>();
    const count = 1 + rng.int(3);
    for (let m = 0; m < count; m++) {
      const key = pick(FUZZ_KEYS);
      mutated.add(key);
      if (rng.float() < 0.2) delete json[key];
      else json[key] = structuredClone(pick(ODD_VALUES));
    }
    const what = `trial ${trial}: ${[...mutated].map((k) => `${k}=${String(json[k])}`).join(", ")}`;
    let cfg: LlamaConfig;
    try {
      cfg = llamaConfigFromHF(json, "fuzz/config.json");
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof TypeError), `${what}: ${e}`);
      assert.match(e.message, /fuzz\/config\.json/, what);
      assert.ok(
        [...mutated].some((k) => e.message.includes(k)),
        `${what}: "${e.message}" names none of the mutated keys`,
      );
      refused++;
      continue;
    }
    // Whatever parses is a valid config that survives a round trip through config.json.
    assert.deepEqual(validateLlamaConfig(cfg), cfg, what);
    assert.deepEqual(llamaConfigFromHF(llamaConfigToHF(cfg)), cfg, what);
    parsed++;
  }
  assert.ok(parsed > 300 && refused > 300, `both outcomes exercised (${parsed} / ${refused})`);
});

Deno.test("`readModelConfig()` under seeded random values never fails with a TypeError", () => {
  const rng = new Rng(99);
  const types = ["gpt2", "llama", "qwen2", "xyz", undefined, 3, null, "__proto__"];
  for (let trial = 0; trial < 1000; trial++) {
    const json: Record<string, unknown> = { model_type: types[rng.int(types.length)] };
    for (let m = 0; m < 3; m++) {
      json[FUZZ_KEYS[rng.int(FUZZ_KEYS.length)]] = ODD_VALUES[rng.int(ODD_VALUES.length)];
    }
    try {
      readModelConfig(json, "f.json");
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof TypeError), String(e));
      assert.match(
        e.message,
        /^(Cannot (load|read Hugging Face config) f\.json|Invalid \w+ config \(f\.json\)): /,
      );
    }
  }
});

Deno.test("`validateLlamaConfig()` bounds every numeric field, naming it and its range", () => {
  const tiny = LLAMA_PRESETS["llama-tiny"];
  for (const [key, range] of Object.entries(LLAMA_LIMITS)) {
    const above = range.maxOpen ? range.max : range.integer ? range.max + 1 : range.max * 2;
    const below = range.minOpen ? range.min : range.min - 1;
    for (const bad of [above, below, NaN, -Infinity]) {
      assert.throws(
        () => validateLlamaConfig({ ...tiny, [key]: bad }, "c.json"),
        (e: Error) => {
          assert.match(e.message, /^Invalid Llama config \(c\.json\): /);
          assert.ok(e.message.includes(`"${key}" must be `), e.message);
          assert.match(e.message, /in [[(]\d.*, \d+[\])]/); // states the range
          return true;
        },
        `${key} = ${bad}`,
      );
    }
  }
  validateLlamaConfig({ ...tiny, num_hidden_layers: 1024, max_position_embeddings: 2 ** 24 });
  assert.throws(
    () => llamaConfigFromHF({ model_type: "llama", num_hidden_layers: 2e6 }, "m/config.json"),
    /^Error: Invalid Llama config \(m\/config\.json\): "num_hidden_layers" must be an integer in \[1, 1024\], got 2000000$/,
  );
});

Deno.test("`validateLlamaConfig()` suggests the known key closest to an unknown one", () => {
  assert.throws(
    () => validateLlamaConfig({ ...LLAMA_PRESETS["llama-tiny"], num_kv_heads: 2 }),
    /unknown key "num_kv_heads" \(known keys: /,
  );
  assert.throws(
    () => validateLlamaConfig({ ...LLAMA_PRESETS["llama-tiny"], rope_thetta: 1e4 }),
    /unknown key "rope_thetta" \(did you mean "rope_theta"\?\)/,
  );
});
