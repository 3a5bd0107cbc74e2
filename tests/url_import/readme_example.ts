// The README's "Use as a library" example, kept here so that `deno task check` (which checks
// tests/) proves it type-checks. It is not run by the tests (it needs a GPT-2 folder and data).
// The README imports from a URL; this copy imports the local mod.ts, the only line that differs.
//
//   deno run --allow-read=gpt2,data --allow-write=my-adapter example.ts
import {
  Batcher,
  generate,
  GPT,
  Gpu,
  isChat,
  loadHFCheckpoint,
  lora,
  type PromptCompletion,
  readJsonl,
  rougeCorpus,
  TiktokenTokenizer,
  tokenizeExamples,
  Trainer,
} from "../../mod.ts";

// A Hugging Face GPT-2 folder: config.json + model.safetensors.
const { config, tensors } = await loadHFCheckpoint("gpt2");
const gpu = await Gpu.get();
const model = await GPT.create(gpu, config, { weights: tensors, trainable: false });

// LoRA on the attention projections; only A and B are trained.
const adapter = await lora.apply(model, lora.validate({ r: 8, lora_alpha: 16 }), 0);

// {"prompt": "...", "completion": "..."} per line; the loss is on the completions only.
const tokenizer = TiktokenTokenizer.gpt2();
const train = tokenizeExamples(await readJsonl("data/train.jsonl"), tokenizer, {
  maxLength: 128,
  truncation: "truncate",
});
const batches = new Batcher(train.examples, {
  batchSize: 8,
  seqLen: 128,
  padId: tokenizer.eosId!,
  seed: 0,
});
const trainer = await Trainer.create(model, batches, {
  steps: 200,
  lr: 2e-4,
  warmupSteps: 20,
}, { params: adapter.trainable() });
await trainer.run((p) => console.log(`step ${p.step}/${p.steps} loss ${p.loss.toFixed(3)}`));
trainer.release();

// ROUGE of greedy generations against the dev completions.
const dev = (await readJsonl("data/dev.jsonl")).filter((e): e is PromptCompletion => !isChat(e));
const out = await generate(model, dev.map((e) => tokenizer.encode(e.prompt)), {
  maxNewTokens: 64,
  tokenizer,
  stop: ["\n"],
});
const scores = rougeCorpus(dev.map((e) => e.completion), out.text!);
console.log(`ROUGE-L F1 ${scores.rougeL.mean.fmeasure.toFixed(4)}`);

// adapter_config.json + adapter_model.safetensors, loadable by Python's PEFT.
await adapter.save("my-adapter");
model.release();
