/**
 * What a library user does, run by tests/url_import_test.ts as
 * `deno run --allow-import=127.0.0.1:PORT http://127.0.0.1:PORT/tests/url_import/train_script.ts`:
 * its import of "../../mod.ts" is then `http://127.0.0.1:PORT/mod.ts`, loaded over HTTP with no
 * config, import map or lockfile of the checkout. It builds the tiny GPT, adds LoRA (r 4), trains
 * a few steps on one fixed batch, generates greedily, scores the generations and fixed strings
 * with ROUGE and BLEU, and prints one JSON line for the test to check.
 *
 * It asks for no permission: the child has none but `--allow-import`, and runs with `--no-prompt`,
 * so any read, write, env or net access would throw and fail the test.
 *
 * @module
 */

import {
  Batcher,
  ByteTokenizer,
  corpusBleu,
  generate,
  GPT,
  gptConfig,
  Gpu,
  lora,
  rouge,
  tokenizeExamples,
  Trainer,
} from "../../mod.ts";

/** The examples trained on: short enough that a few steps visibly lower the loss. */
export const EXAMPLES = [
  { prompt: "cat:", completion: " the cat sat on the mat" },
  { prompt: "dog:", completion: " the dog ran in the park" },
];

/** Steps trained. */
export const STEPS = 30;

/** Tokens generated per prompt. */
export const NEW_TOKENS = 12;

const gpu = await Gpu.get();
const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
const adapter = await lora.apply(model, lora.validate({ r: 4 }), 0);
const tokenizer = new ByteTokenizer();
const { examples } = tokenizeExamples(EXAMPLES, tokenizer, { maxLength: 32 });
const batcher = new Batcher(examples, {
  batchSize: EXAMPLES.length,
  seqLen: 32,
  padId: tokenizer.eosId ?? 0,
  seed: 0,
});
const trainer = await Trainer.create(model, batcher, {
  steps: STEPS,
  lr: 3e-2,
  logEvery: STEPS,
}, { params: adapter.trainable() });
const result = await trainer.run();
trainer.release();

const prompts = EXAMPLES.map((e) => tokenizer.encode(e.prompt));
const out = await generate(model, prompts, { maxNewTokens: NEW_TOKENS, tokenizer, eosId: null });
const generated = out.text ?? [];
const references = EXAMPLES.map((e) => e.completion);
const rouges = generated.map((g, i) => rouge(references[i], g).rougeL.fmeasure);
const bleu = corpusBleu(generated, [references]);

// Fixed strings whose scores are known by hand (see the test).
const fixedRouge = rouge("the cat sat on the mat", "the cat is on the mat");
const fixedBleu = corpusBleu(["the cat is on the mat"], [["the cat sat on the mat"]]);

const permissions = Object.fromEntries(
  (["env", "net", "write", "read", "run", "ffi", "sys"] as const).map((name) => [
    name,
    Deno.permissions.querySync({ name }).state,
  ]),
);

console.log(JSON.stringify({
  moduleUrl: new URL("../../mod.ts", import.meta.url).href,
  adapter: adapter.describe(),
  trainable: adapter.trainable().map((p) => p.name),
  losses: result.losses,
  generated,
  generatedIds: out.ids,
  rougeL: rouges,
  bleu: { score: bleu.score, signature: bleu.signature },
  fixed: {
    rouge1: fixedRouge.rouge1,
    rouge2: fixedRouge.rouge2,
    rougeL: fixedRouge.rougeL,
    bleu: fixedBleu.formatted,
  },
  permissions,
}));
model.release();
