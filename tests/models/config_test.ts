import assert from "node:assert/strict";
import {
  configFromHF,
  configToHF,
  GPT2_SMALL,
  type GPTConfig,
  gptConfig,
  headDim,
  innerSize,
  PRESETS,
  validateConfig,
} from "../../models/mod.ts";
import { didYouMean, GPT_LIMITS } from "../../models/config.ts";

Deno.test("`PRESETS` hold the documented sizes and all validate", () => {
  const sizes = Object.entries(PRESETS).map(([name, c]) => {
    validateConfig(c, name);
    return [name, c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head];
  });
  assert.deepEqual(sizes, [
    ["tiny", 256, 64, 32, 2, 2],
    ["modelA", 256, 128, 128, 4, 4],
    ["modelB", 256, 128, 256, 6, 8],
    ["gpt2", 50257, 1024, 768, 12, 12],
  ]);
  assert.equal(PRESETS.gpt2, GPT2_SMALL);
  assert.ok(Object.isFrozen(PRESETS.tiny));
});

Deno.test("`GPT2_SMALL` has the defaults of Hugging Face's GPT2Config()", () => {
  assert.deepEqual({ ...GPT2_SMALL }, {
    vocab_size: 50257,
    n_positions: 1024,
    n_embd: 768,
    n_layer: 12,
    n_head: 12,
    n_inner: null,
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0.1,
    embd_pdrop: 0.1,
    attn_pdrop: 0.1,
    initializer_range: 0.02,
    bos_token_id: 50256,
    eos_token_id: 50256,
  });
});

Deno.test("`gptConfig()` copies a preset with overrides and validates the result", () => {
  const c = gptConfig("tiny", { n_layer: 3, n_inner: 48 });
  assert.equal(c.n_layer, 3);
  assert.equal(innerSize(c), 48);
  assert.equal(innerSize(PRESETS.tiny), 128);
  assert.equal(headDim(c), 16);
  assert.equal(PRESETS.tiny.n_layer, 2, "the preset itself is unchanged");
  assert.throws(
    () => gptConfig("tiny", { n_head: 5 }),
    /preset "tiny".*"n_embd" \(32\).*"n_head" \(5\)/,
  );
  assert.throws(() => gptConfig("huge" as "tiny"), /unknown preset "huge"/);
});

Deno.test("`validateConfig()` rejects bad fields naming each one", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ n_head: 3 }, /"n_embd" \(32\) must be divisible by "n_head" \(3\)/],
    [{ n_layer: 0 }, /"n_layer" must be an integer in \[1, 1024\], got 0/],
    [{ n_embd: 32.5 }, /"n_embd" must be an integer in \[1, 65536\], got 32.5/],
    [{ vocab_size: "256" }, /"vocab_size" must be an integer in \[1, 2097152\], got "256"/],
    [{ n_inner: -1 }, /"n_inner" must be an integer in \[1, 1048576\], got -1/],
    [{ attn_pdrop: 1 }, /"attn_pdrop" must be a number in \[0, 1\), got 1/],
    [{ resid_pdrop: -0.1 }, /"resid_pdrop" must be a number in \[0, 1\)/],
    [{ layer_norm_epsilon: 0 }, /"layer_norm_epsilon" must be a number in \(0, 1\]/],
    [
      { initializer_range: Infinity },
      /"initializer_range" must be a number in \(0, 1\], got Infinity/,
    ],
    [
      { eos_token_id: 256 },
      /"eos_token_id" must be null or an integer in \[0, vocab_size=256\), got 256/,
    ],
    [{ bos_token_id: -1 }, /"bos_token_id" must be null or an integer/],
    [{ n_embed: 32 }, /unknown key "n_embed"/],
  ];
  for (const [override, pattern] of cases) {
    assert.throws(
      () => validateConfig({ ...PRESETS.tiny, ...override }, "test.yaml"),
      (e: Error) => {
        assert.match(e.message, /^Invalid GPT config \(test\.yaml\): /);
        assert.match(e.message, pattern);
        return true;
      },
    );
  }
  const { n_head: _, ...missing } = PRESETS.tiny;
  assert.throws(() => validateConfig(missing), /missing key "n_head"/);
  assert.throws(() => validateConfig([1]), /expected an object, got \[1\]/);
});

Deno.test("`configFromHF()` reads the attribute_map aliases and the legacy n_ctx", () => {
  const c = configFromHF({
    model_type: "gpt2",
    vocab_size: 300,
    hidden_size: 64,
    max_position_embeddings: 96,
    num_attention_heads: 4,
    num_hidden_layers: 3,
    n_inner: null,
    architectures: ["GPT2LMHeadModel"],
    torch_dtype: "float32",
  });
  assert.deepEqual(
    [c.vocab_size, c.n_embd, c.n_positions, c.n_head, c.n_layer, c.n_inner],
    [300, 64, 96, 4, 3, null],
  );
  // GPT2Config's default special id (50256) lies outside a 300-token vocabulary: none.
  assert.equal(c.bos_token_id, null);
  assert.equal(c.eos_token_id, null);
  assert.equal(configFromHF({ n_ctx: 77 }).n_positions, 77);
  assert.deepEqual(configFromHF({}), { ...GPT2_SMALL }, "missing fields take GPT2Config defaults");
  assert.equal(configFromHF({ n_embd: 64, hidden_size: 64, n_head: 4 }).n_embd, 64);
});

Deno.test("`configFromHF()` rejects unsupported or inconsistent configs naming the field and file", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model_type: "gpt_neo" }, /"model_type" is "gpt_neo"; only "gpt2" is supported/],
    [{ activation_function: "relu" }, /"activation_function" "relu" is not supported/],
    [{ tie_word_embeddings: false }, /"tie_word_embeddings": false is not supported/],
    [{ scale_attn_weights: false }, /"scale_attn_weights": false/],
    [{ scale_attn_by_inverse_layer_idx: true }, /"scale_attn_by_inverse_layer_idx": true/],
    [{ add_cross_attention: true }, /"add_cross_attention": true/],
    [
      { n_embd: 64, hidden_size: 128 },
      /"n_embd" \(64\) and its alias "hidden_size" \(128\) differ/,
    ],
    [{ n_positions: 64, n_ctx: 32 }, /"n_ctx" \(32\) differs from "n_positions" \(64\)/],
    [{ n_head: 5 }, /"n_embd" \(768\) must be divisible by "n_head" \(5\)/],
    [{ n_layer: "12" }, /"n_layer" must be an integer in \[1, 1024\]/],
  ];
  for (const [json, pattern] of cases) {
    assert.throws(() => configFromHF(json, "ckpt/config.json"), (e: Error) => {
      assert.match(e.message, /ckpt\/config\.json/);
      assert.match(e.message, pattern);
      return true;
    });
  }
  assert.throws(
    () => configFromHF(null, "x.json"),
    /Cannot read Hugging Face config x\.json: expected a JSON object/,
  );
  assert.equal(configFromHF({ activation_function: "gelu_pytorch_tanh" }).n_embd, 768);
});

Deno.test("`configToHF()` writes a GPT2Config config.json that reads back to the same config", () => {
  for (const [name, cfg] of Object.entries(PRESETS) as [string, GPTConfig][]) {
    const json = configToHF(cfg);
    assert.deepEqual(Object.keys(json), Object.keys(json).sort(), `${name}: keys sorted`);
    assert.equal(json.model_type, "gpt2");
    assert.deepEqual(json.architectures, ["GPT2LMHeadModel"]);
    assert.equal(json.activation_function, "gelu_new");
    assert.equal(json.n_ctx, cfg.n_positions);
    assert.equal(json.tie_word_embeddings, true);
    const back = configFromHF(JSON.parse(JSON.stringify(json)), name);
    assert.deepEqual(back, { ...cfg }, name);
  }
  // The fields of the published gpt2 config.json that GPT2Config reads.
  const gpt2 = configToHF(PRESETS.gpt2);
  for (
    const [k, v] of Object.entries({
      n_ctx: 1024,
      n_embd: 768,
      n_head: 12,
      n_layer: 12,
      n_positions: 1024,
      vocab_size: 50257,
      bos_token_id: 50256,
      eos_token_id: 50256,
      layer_norm_epsilon: 1e-5,
      initializer_range: 0.02,
      resid_pdrop: 0.1,
    })
  ) assert.equal(gpt2[k], v, k);
  assert.throws(() => configToHF({ ...PRESETS.tiny, n_head: 7 }), /"n_head" \(7\)/);
});

Deno.test("`validateConfig()` bounds every numeric field, naming it and its range", () => {
  for (const [key, range] of Object.entries(GPT_LIMITS)) {
    const above = range.maxOpen ? range.max : range.integer ? range.max + 1 : range.max * 2;
    const below = range.minOpen ? range.min : range.min - 1;
    for (const bad of [above, below, NaN, Infinity]) {
      assert.throws(
        () => validateConfig({ ...PRESETS.tiny, [key]: bad }, "c.json"),
        (e: Error) => {
          assert.match(e.message, /^Invalid GPT config \(c\.json\): /);
          assert.ok(e.message.includes(`"${key}" must be `), e.message);
          assert.match(e.message, /in [[(]\d.*, \d+[\])]/); // states the range
          return true;
        },
        `${key} = ${bad}`,
      );
    }
  }
  // The bounds themselves are accepted where the config allows them.
  validateConfig({ ...PRESETS.tiny, n_layer: 1024, vocab_size: 2 ** 21, n_inner: 2 ** 20 });
  validateConfig({ ...PRESETS.tiny, layer_norm_epsilon: 1, initializer_range: 1 });
});

Deno.test("`validateConfig()` suggests the known key closest to an unknown one", () => {
  assert.throws(
    () => validateConfig({ ...PRESETS.tiny, n_layers: 2 }),
    /unknown key "n_layers" \(did you mean "n_layer"\?\) \(known keys: vocab_size,/,
  );
  assert.throws(
    () => validateConfig({ ...PRESETS.tiny, layer_norm_epsilno: 1e-5 }),
    /unknown key "layer_norm_epsilno" \(did you mean "layer_norm_epsilon"\?\)/,
  );
  // Nothing close: no suggestion, only the list.
  assert.throws(
    () => validateConfig({ ...PRESETS.tiny, rotary: true }),
    /unknown key "rotary" \(known keys: /,
  );
});

Deno.test("`didYouMean()` counts a swap as one edit, ignores case and stays quiet when far", () => {
  const keys = ["steps", "warmup_steps", "min_lr_ratio", "batch_size"];
  assert.equal(didYouMean("setps", keys), ' (did you mean "steps"?)');
  assert.equal(didYouMean("Batch_Size", keys), ' (did you mean "batch_size"?)');
  assert.equal(didYouMean("min_lr_rato", keys), ' (did you mean "min_lr_ratio"?)');
  assert.equal(didYouMean("warmup", keys), "");
  assert.equal(didYouMean("x", ["y"]), ' (did you mean "y"?)'); // one edit is always allowed
});
