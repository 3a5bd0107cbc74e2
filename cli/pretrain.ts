/**
 * `deno task pretrain`: trains the embedded default base model from scratch on the embedded corpus
 * (data/corpus.ts) and writes it as a Hugging Face GPT-2 checkpoint (config.json +
 * model.safetensors) with a PRETRAIN.md that records the exact command, seed and results.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ByteTokenizer } from "../models/tokenizer.ts";
import { gptConfig, type PresetName, PRESETS } from "../models/config.ts";
import { GPT } from "../models/gpt.ts";
import { saveHFCheckpoint } from "../models/checkpoint.ts";
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
  const cfg = gptConfig(values.preset as PresetName);
  const T = cfg.n_positions;
  const tok = new ByteTokenizer();
  const docs = pretrainCorpus({
    seed,
    documents: int("documents", values.documents),
    heldOutExamples: int("held-out", values["held-out"]),
  });
  const rows = new Rng(seed).shuffle(packDocuments(docs, (s) => tok.encode(s), T));
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
  const model = await GPT.create(gpu, cfg, { seed });
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
  const weights = await model.exportWeights();
  await saveHFCheckpoint(values.out, cfg, weights);
  // --out only says where the files go; it does not change the weights.
  const args = Deno.args.filter((a, i, all) => !a.startsWith("--out") && all[i - 1] !== "--out");
  const command = `deno task pretrain ${args.join(" ")}`.trim();
  const last = result.evalLosses[result.evalLosses.length - 1];
  const md = `# The embedded base model

Produced by whet's own pretraining on the embedded corpus (data/corpus.ts), from scratch:

    ${command}

| | |
| --- | --- |
| preset | ${values.preset} (vocab ${cfg.vocab_size} bytes, d_model ${cfg.n_embd}, ${cfg.n_layer} layers, ${cfg.n_head} heads, context ${T}) |
| parameters | ${total.toLocaleString("en-US")} |
| seed | ${seed} |
| corpus | ${docs.length} documents, ${rows.length} rows of ${T} byte tokens (${nDev} held out for dev) |
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

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`whet pretrain: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
