/**
 * The default run's end of text: the embedded base model's tokenizer has `<|endoftext|>` (id 256),
 * every training completion ends with it, and generation and scoring stop at it by default.
 */
import assert from "node:assert/strict";
import {
  ByteTokenizer,
  generate,
  generateTexts,
  GPT,
  gptConfig,
  Gpu,
  HuggingFaceTokenizer,
} from "../../mod.ts";
import { buildData, makeTokenizer } from "../../cli/job.ts";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { tokenizerFor } from "../../cli/common.ts";

const BASE = "models/base";

Deno.test("the base model's tokenizer is bytes plus <|endoftext|> 256, as its config says", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${BASE}/config.json`));
  assert.equal(config.vocab_size, 257);
  assert.equal(config.eos_token_id, 256);
  const generation = JSON.parse(await Deno.readTextFile(`${BASE}/generation_config.json`));
  assert.equal(generation.eos_token_id, 256);
  // What `deno task train` and `deno task generate --model models/base` pick by themselves.
  const tok = await makeTokenizer(DEFAULT_CONFIG, config.vocab_size);
  assert.ok(tok instanceof HuggingFaceTokenizer, tok.name);
  assert.equal(tok.eosId, 256);
  assert.deepEqual(tok.stopIds, [256]);
  const bytes = new ByteTokenizer({ endOfText: true });
  const text = "Review: I hated the hotel, é!\nIs this review positive or negative?";
  assert.deepEqual(tok.encode(text), bytes.encode(text));
  assert.equal(tok.decode([...tok.encode("ok"), 256]), bytes.decode([111, 107, 256]));
});

Deno.test("tokenizerFor() gives a 257-id model without tokenizer.json bytes and end-of-text", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const tok of [await tokenizerFor(undefined, dir, 257), await tokenizerFor("bytes", dir, 257)]
    ) {
      assert.ok(tok instanceof ByteTokenizer);
      assert.equal(tok.eosId, 256);
      assert.equal(tok.vocabSize, 257);
    }
    // A 256-id byte model keeps the plain byte tokenizer, with no end-of-text id.
    assert.equal((await tokenizerFor(undefined, dir, 256)).eosId, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the default run's training and dev completions all end with <|endoftext|>", async () => {
  const tok = await makeTokenizer(DEFAULT_CONFIG, 257);
  const data = await buildData(DEFAULT_CONFIG, tok, 128);
  assert.ok(data.train.length >= 5 * DEFAULT_CONFIG.data.train_size);
  for (const examples of [data.train, data.dev]) {
    for (const e of examples) {
      // The last id is the end-of-text id and it is a target (label), not prompt.
      assert.equal(e.ids.at(-1), 256);
      assert.equal(e.labels.at(-1), 256);
      assert.equal(e.ids.filter((id) => id === 256).length, 1);
    }
  }
});

/**
 * A tiny 257-id model whose greedy next token is always 256: ln_f outputs its bias `v` whatever
 * the input, and the tied head scores id i as v · wte[i], which only row 256 makes positive.
 */
async function alwaysEndOfText(gpu: Gpu): Promise<GPT> {
  const cfg = gptConfig("tiny", { vocab_size: 257, eos_token_id: 256, bos_token_id: 256 });
  const seeded = await GPT.create(gpu, cfg, { seed: 3, trainable: false });
  const weights = await seeded.exportWeights();
  seeded.release();
  const d = cfg.n_embd;
  const wte = new Float32Array(257 * d);
  wte.subarray(256 * d).fill(1);
  weights.set("wte.weight", { shape: [257, d], data: wte });
  weights.set("ln_f.weight", { shape: [d], data: new Float32Array(d) });
  weights.set("ln_f.bias", { shape: [d], data: new Float32Array(d).fill(1) });
  return await GPT.create(gpu, cfg, { weights, trainable: false });
}

Deno.test("generate() and generateTexts() stop at the tokenizer's end-of-text id by default", async () => {
  const gpu = await Gpu.get();
  const model = await alwaysEndOfText(gpu);
  try {
    const tokenizer = new ByteTokenizer({ endOfText: true });
    const prompts = [tokenizer.encode("2 + 3 ="), tokenizer.encode("Text: I liked it\nFeeling:")];
    const out = await generate(model, prompts, { tokenizer, maxNewTokens: 5 });
    assert.deepEqual(out.finishReasons, ["eos", "eos"]);
    assert.deepEqual(out.ids, [[], []]);
    assert.deepEqual(out.text, ["", ""]);
    // Without the default stop the same model writes the id until the budget runs out: the
    // default is what ends the rows above.
    const on = await generate(model, prompts, { tokenizer, maxNewTokens: 5, eosId: null });
    assert.deepEqual(on.finishReasons, ["length", "length"]);
    assert.deepEqual(on.ids[0], [256, 256, 256, 256, 256]);
    // The scoring harness generates through the same rule.
    const texts = await generateTexts(model, tokenizer, ["2 + 3 =", "Q: 1 plus 1\nA:"], {
      maxNewTokens: 5,
      stop: ["\n"],
    });
    assert.deepEqual(texts, ["", ""]);
  } finally {
    model.release();
  }
});
