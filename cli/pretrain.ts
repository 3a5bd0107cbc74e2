/**
 * `deno task pretrain`: trains the embedded default base model from scratch on the embedded corpus
 * (data/corpus.ts) and writes it as a Hugging Face GPT-2 checkpoint (config.json +
 * model.safetensors, generation_config.json) with its tokenizer as Hugging Face files
 * (tokenizer.json, tokenizer_config.json: bytes plus `<|endoftext|>`, id 256, which ends every
 * document) and a PRETRAIN.md that records the exact command, seed and results.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ByteTokenizer } from "../models/tokenizer.ts";
import { type GPTConfig, gptConfig, type PresetName, PRESETS } from "../models/config.ts";
import { GPT } from "../models/gpt.ts";
import { loadHFCheckpoint, saveHFCheckpoint } from "../models/checkpoint.ts";
import type { TensorData } from "../models/safetensors.ts";
import { writeFileAtomic } from "../models/safetensors.ts";
import { packDocuments, pretrainCorpus } from "../data/corpus.ts";
import { Gpu } from "../runtime/gpu.ts";
import { Rng } from "../runtime/rng.ts";
import { type TrainBatch, Trainer } from "../train/trainer.ts";
import { ensureWritableFolder } from "./job.ts";
import { formatSeconds, ProgressBar } from "./progress.ts";

const HELP = `deno task pretrain [options]

Trains the default base model from scratch on the embedded corpus and writes it to --out.

  --out DIR          output folder (default models/base)
  --preset NAME      model size: ${Object.keys(PRESETS).join(", ")} (default modelA)
  --steps N          optimizer steps (default 2000)
  --batch-size N     sequences per step (default 16)
  --lr X             peak learning rate (default 0.003)
  --seed N           seed of the corpus, the initialisation and the order (default 1)
  --documents N      generated documents in the corpus (default 20000)
  --held-out N       held-out task examples per task in the corpus (default 5000)
  --init DIR         start from this GPT-2 checkpoint of the preset's shape instead of random
                     weights (continued pretraining); a 256-byte vocabulary gains the
                     end-of-text row, drawn N(0, 0.02) from the seed
  --task-text N      documents of reviews in the corpus, four times as many of sums and a
                     quarter as many of Toy words (default 0)
  --reviews N        further documents of reviews, each with how the writer felt (default 0)
  --worked-sums N    documents of sums and differences worked in columns (default 0)
  --digit-facts N    documents of one-digit facts ("7 + 8 = 15.") (default 0)
  --comparisons N    documents comparing two numbers ("60 is more than 39.") (default 0)
  --toy-facts N      further documents of Toy words (default 0)
  -h, --help         this text
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      out: { type: "string", default: "models/base" },
      preset: { type: "string", default: "modelA" },
      steps: { type: "string", default: "2000" },
      "batch-size": { type: "string", default: "16" },
      lr: { type: "string", default: "0.003" },
      seed: { type: "string", default: "1" },
      documents: { type: "string", default: "20000" },
      "held-out": { type: "string", default: "5000" },
      "task-text": { type: "string", default: "0" },
      reviews: { type: "string", default: "0" },
      "worked-sums": { type: "string", default: "0" },
      "digit-facts": { type: "string", default: "0" },
      comparisons: { type: "string", default: "0" },
      "toy-facts": { type: "string", default: "0" },
      init: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const int = (flag: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`Cannot pretrain: --${flag} must be a positive integer, got "${v}"`);
    }
    return n;
  };
  const steps = int("steps", values.steps), B = int("batch-size", values["batch-size"]);
  const seed = int("seed", values.seed), lr = Number(values.lr);
  if (!(lr > 0)) {
    throw new Error(`Cannot pretrain: --lr must be a positive number, got "${values.lr}"`);
  }
  if (!(values.preset in PRESETS)) {
    throw new Error(
      `Cannot pretrain: --preset "${values.preset}" is not one of ${
        Object.keys(PRESETS).join(", ")
      }`,
    );
  }
  // The weights exist only in memory until the end: find out now that they could not be written.
  await ensureWritableFolder(values.out, "--out");
  const count = (flag: keyof typeof values) => {
    const n = Number(values[flag]);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(
        `Cannot pretrain: --${flag} must be a non-negative integer, got "${values[flag]}"`,
      );
    }
    return n;
  };
  const taskText = count("task-text");
  // Bytes plus an end-of-text id that no text encodes to: every document ends with it, so a
  // model tuned from this base learns where an answer ends (GPT-2's <|endoftext|> is its last id
  // too, and serves as BOS and EOS alike).
  const tok = new ByteTokenizer({ endOfText: true });
  const eos = tok.eosId!;
  const cfg = gptConfig(values.preset as PresetName, {
    vocab_size: tok.vocabSize,
    bos_token_id: eos,
    eos_token_id: eos,
  });
  const T = cfg.n_positions;
  const docs = pretrainCorpus({
    seed,
    documents: int("documents", values.documents),
    heldOutExamples: int("held-out", values["held-out"]),
    taskText,
    reviews: count("reviews"),
    workedSums: count("worked-sums"),
    digitFacts: count("digit-facts"),
    comparisons: count("comparisons"),
    toyFacts: count("toy-facts"),
  });
  const rows = new Rng(seed).shuffle(packDocuments(docs, (s) => tok.encode(s), T, eos));
  const nDev = Math.max(B, Math.floor(rows.length * 0.05));
  const dev = rows.slice(0, nDev), train = rows.slice(nDev);
  const source = (data: number[][]) => ({
    batchesPerEpoch: Math.floor(data.length / B),
    batch: (epoch: number, index: number): TrainBatch => {
      const order = new Rng(seed * 7919 + epoch).shuffle(data.map((_, i) => i));
      const ids = order.slice(index * B, (index + 1) * B).flatMap((i) => data[i]);
      return { ids, labels: ids, batchSize: B, seqLen: T };
    },
  });
  const gpu = await Gpu.get();
  console.log(
    `whet pretrain: ${docs.length} documents, ${rows.length} rows of ${T} tokens (${nDev} for dev); ${gpu.adapterName}`,
  );
  const weights = values.init === undefined
    ? undefined
    : await initialWeights(values.init, cfg, seed);
  const model = await GPT.create(gpu, cfg, { seed, weights });
  const { total } = model.countParameters();
  const trainer = await Trainer.create(model, source(train), {
    steps,
    lr,
    warmupSteps: Math.min(50, Math.floor(steps / 10)),
    logEvery: 10,
    evalEvery: Math.max(1, Math.floor(steps / 4)),
    evalBatches: 8,
    seed,
  }, { dev: source(dev) });
  const bar = new ProgressBar("pretrain", steps);
  const result = await trainer.run((p) =>
    bar.update(
      p.step,
      `loss ${p.loss.toFixed(3)} | ${Math.round(p.tokensPerSecond)} tok/s | ETA ${
        formatSeconds(p.eta)
      }`,
    )
  );
  bar.done();
  await saveHFCheckpoint(values.out, cfg, await model.exportWeights());
  // What transformers' save_pretrained writes beside the weights, so that AutoTokenizer and
  // generate() (and whet's own tokenizer auto-detection) stop at <|endoftext|>.
  const hf = tok.huggingFaceFiles();
  const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  await writeFileAtomic(`${values.out}/tokenizer.json`, json(hf.tokenizer));
  await writeFileAtomic(`${values.out}/tokenizer_config.json`, json(hf.tokenizerConfig));
  await writeFileAtomic(
    `${values.out}/generation_config.json`,
    json({ bos_token_id: eos, eos_token_id: eos, pad_token_id: eos }),
  );
  // --out only says where the files go; it does not change the weights.
  const args = Deno.args.filter((a, i, all) => !a.startsWith("--out") && all[i - 1] !== "--out");
  const command = `deno task pretrain ${args.join(" ")}`.trim();
  const last = result.evalLosses[result.evalLosses.length - 1];
  const md = `# The embedded base model

Produced by whet's own pretraining on the embedded corpus (data/corpus.ts), ${
    values.init === undefined ? "from scratch" : `continued from the model in ${values.init}`
  }:

    ${command}

| | |
| --- | --- |
| preset | ${values.preset} (vocab ${cfg.vocab_size}: 256 bytes and end-of-text ${eos}, d_model ${cfg.n_embd}, ${cfg.n_layer} layers, ${cfg.n_head} heads, context ${T}) |
| parameters | ${total.toLocaleString("en-US")} |
| seed | ${seed} |
| corpus | ${docs.length} documents, each ending with end-of-text, ${rows.length} rows of ${T} tokens (${nDev} held out for dev) |
| steps × batch | ${steps} × ${B} sequences (${(steps * B * T).toLocaleString("en-US")} tokens) |
| learning rate | ${lr}, warmup ${Math.min(50, Math.floor(steps / 10))} steps, cosine to 10% |
| final train loss | ${result.losses[steps - 1].toFixed(4)} |
| final dev loss | ${last ? last.loss.toFixed(4) : "n/a"} |
| dev losses | ${result.evalLosses.map((e) => `step ${e.step}: ${e.loss.toFixed(3)}`).join(", ")} |
| wall time | ${formatSeconds(result.seconds)} (${Math.round(result.tokensPerSecond)} tokens/s) |
| adapter | ${gpu.adapterName} |
| Deno | ${Deno.version.deno} |

Rerunning the command gives the same weights on the same adapter and driver; other adapters (a
real GPU, or Mesa's OpenGL backend instead of Vulkan) round differently and give a slightly
different model.
`;
  await writeFileAtomic(`${values.out}/PRETRAIN.md`, md);
  console.log(
    `whet pretrain: wrote ${values.out}/ (train loss ${
      result.losses[steps - 1].toFixed(3)
    }, dev loss ${last?.loss.toFixed(3)})`,
  );
  trainer.release();
  model.release();
}

/**
 * The weights of the checkpoint in `dir` for a model of config `cfg`: every tensor must have the
 * preset's shape, except that a 256-row token table (a byte model without an end-of-text id)
 * gains the rows up to `cfg.vocab_size`, drawn N(0, initializer_range) as GPT.create draws them.
 */
async function initialWeights(
  dir: string,
  cfg: GPTConfig,
  seed: number,
): Promise<Map<string, TensorData>> {
  const { config, tensors } = await loadHFCheckpoint(dir);
  for (const key of ["n_embd", "n_layer", "n_head", "n_positions"] as const) {
    if (config[key] !== cfg[key]) {
      throw new Error(
        `Cannot pretrain from --init ${dir}: its ${key} is ${config[key]}, the preset's is ${
          cfg[key]
        }`,
      );
    }
  }
  const wte = tensors.get("wte.weight")!;
  const [rows, d] = wte.shape;
  if (rows !== cfg.vocab_size) {
    if (rows > cfg.vocab_size) {
      throw new Error(
        `Cannot pretrain from --init ${dir}: its vocabulary of ${rows} exceeds ${cfg.vocab_size}`,
      );
    }
    const grown = new Float32Array(cfg.vocab_size * d);
    grown.set(wte.data);
    new Rng(seed).fillNormal(grown.subarray(rows * d), cfg.initializer_range);
    tensors.set("wte.weight", { shape: [cfg.vocab_size, d], data: grown });
  }
  return tensors;
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`whet pretrain: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
