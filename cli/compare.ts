/**
 * `deno task compare`: the same budget for full fine-tuning, BitFit, LoRA, bottleneck adapters and
 * prompt tuning, multi-task (the default mixture) and single-task (one task), on the embedded base.
 * One table (Markdown + JSON + an SVG chart) with per-task scores, held-out scores (forgetting),
 * trainable %, peak GPU memory, wall time and tokens/s: which method to use, and what it costs.
 *
 * @module
 */

import { parseRunArgs } from "./args.ts";
import { checkFiles, loadConfig, type RunConfig } from "./config.ts";
import { type JobResult, runJob } from "./job.ts";
import { writeFileAtomic } from "../models/safetensors.ts";
import { barChart } from "./svg.ts";
import { formatSeconds } from "./progress.ts";

const HELP = `deno task compare [config.yaml] [--methods=a,b,...] [--single=TASK] [--key=value ...]

Trains each method with the same budget (the config's schedule), on the multi-task mixture and on
one task alone, and writes runs/compare/compare.{md,json,svg}.

  --methods=LIST   methods to compare (default full,bitfit,lora,adapters,prompt)
  --single=TASK    the single-task setting's task (default summarise); --single= skips it
  --key=value      config overrides shared by every run (default budget: --steps=100)
`;

/** Per-method settings used by compare (each method's usual choices for a small model). */
const METHOD_SETTINGS: Record<string, Record<string, unknown>> = {
  full: { lr: 1e-3 },
  bitfit: { lr: 1e-2 },
  lora: { lr: 3e-3, peft: { r: 16, lora_alpha: 32, target_modules: ["all-linear"] } },
  adapters: { lr: 3e-3 },
  prompt: { lr: 3e-2, peft: { num_virtual_tokens: 20 } },
  prefix: { lr: 1e-2 },
  ia3: { lr: 1e-2 },
  selective: { lr: 3e-3 },
};

function signed(x: number): string {
  return Number.isFinite(x) ? (x >= 0 ? "+" : "") + x.toFixed(1) : "n/a";
}

/** One compared run: its setting (e.g. `multi-task`) and what its job measured. */
export interface ComparedRun {
  /** `multi-task` or `single: TASK`. */
  setting: string;
  /** The job's results. */
  job: JobResult;
}

/**
 * The comparison table in Markdown: one row per run, one score column per task (matched by task
 * name, whatever order each run scored them in), then the mean changes, general-text perplexity,
 * trainable share, peak memory, training time and throughput.
 */
export function compareMarkdown(
  runs: readonly ComparedRun[],
  steps: number,
  batchSize: number,
): string {
  const names = [...new Set(runs.flatMap((r) => r.job.tasks.map((t) => t.task)))];
  const base = runs[0].job.tasks;
  const cell = (j: JobResult, name: string) => {
    const t = j.tasks.find((x) => x.task === name);
    return t ? `${t.after.toFixed(1)}${t.trained ? "" : "*"}` : "";
  };
  const row = ({ job: j, setting }: ComparedRun) =>
    `| ${j.method} | ${setting} | ${names.map((n) => cell(j, n)).join(" | ")} | ${
      signed(j.trainedGain)
    } | ${signed(j.heldOutDelta)} | ${j.generalPerplexity.before.toFixed(3)} → ${
      j.generalPerplexity.after.toFixed(3)
    } | ${j.parameters.percent.toFixed(3)}% | ${(j.memory.peak / 2 ** 20).toFixed(1)} | ${
      formatSeconds(j.train.seconds)
    } | ${Math.round(j.train.tokensPerSecond)} |`;
  return [
    "# whet compare",
    "",
    `Same budget for every method: ${steps} steps × ${batchSize} sequences. Scores 0–100 after training; * marks a task that run did not train on (held out). Before training: ${
      base.map((t) => `${t.task} ${t.before.toFixed(1)}`).join(", ")
    }.`,
    "",
    `| method | setting | ${
      names.join(" | ")
    } | trained Δ | held-out Δ | general-text perplexity | trainable | peak MiB | train time | tokens/s |`,
    `| --- | --- | ${
      names.map(() => "---:").join(" | ")
    } | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    ...runs.map(row),
    "",
    "Held-out Δ and general-text perplexity are measured with each method active. Prompt tuning",
    "(and prefix tuning) leave the base weights untouched: with their virtual tokens removed, the",
    "model is the base model exactly, so they forget nothing; their figures show only how the",
    "learned prompt conditions other text.",
    "",
    "![compare](compare.svg)",
    "",
  ].join("\n");
}

if (import.meta.main) {
  try {
    const args = parseRunArgs(Deno.args, ["methods", "single"]);
    if (args.help) {
      console.log(HELP);
      Deno.exit(0);
    }
    const methods = (args.flags.methods ?? "full,bitfit,lora,adapters,prompt").split(",").filter(
      Boolean,
    );
    const single = args.flags.single ?? "summarise";
    const base = await loadConfig(args.config, [
      "--steps=100",
      "--eval.every=0",
      "--output.checkpoint_every=0",
      ...args.overrides,
    ]);
    await checkFiles(base);
    const runs: ComparedRun[] = [];
    const skipped: string[] = [];
    const settings: [string, string[]][] = [["multi-task", base.data.tasks]];
    if (single) settings.push([`single: ${single}`, [single]]);
    let before: number[] | undefined, beforePerplexity: number | undefined;
    for (const [setting, tasks] of settings) {
      before = undefined;
      beforePerplexity = undefined;
      for (const m of methods) {
        const s = METHOD_SETTINGS[m] ?? {};
        const overrides = [
          `--peft.method=${m}`,
          `--name=${m}-${setting.startsWith("multi") ? "multi" : "single"}`,
          `--out=${base.output.dir}/compare`,
        ];
        if (s.lr !== undefined) overrides.push(`--lr=${s.lr}`);
        for (const [k, v] of Object.entries((s.peft ?? {}) as Record<string, unknown>)) {
          overrides.push(`--peft.${k}=${JSON.stringify(v)}`);
        }
        overrides.push(`--data.tasks=${JSON.stringify(tasks)}`);
        overrides.push(
          `--data.held_out=${
            JSON.stringify([...base.data.tasks, ...base.data.held_out].filter((t) =>
              !tasks.includes(t)
            ))
          }`,
        );
        const cfg: RunConfig = await loadConfig(args.config, [
          "--steps=100",
          "--eval.every=0",
          "--output.checkpoint_every=0",
          ...args.overrides,
          ...overrides,
        ]);
        console.log(`\n== ${m}, ${setting}`);
        let job;
        try {
          job = await runJob(cfg, { before, beforePerplexity, progress: true });
        } catch (e) {
          // A method the model cannot take (BitFit on a model without biases) is reported and
          // skipped; every other failure ends the comparison.
          if (!(e instanceof RangeError && e.message.startsWith("Cannot apply "))) throw e;
          console.log(`skipped: ${e.message}`);
          skipped.push(`${m} (${setting}): ${e.message}`);
          continue;
        }
        before = job.tasks.map((t) => t.before);
        beforePerplexity = job.generalPerplexity.before;
        runs.push({ setting, job });
      }
    }
    const md = compareMarkdown(runs, base.schedule.steps, base.schedule.batch_size) +
      skipped.map((line) => `\nSkipped: ${line}\n`).join("");
    const dir = `${base.output.dir}/compare`;
    await Deno.mkdir(dir, { recursive: true });
    await writeFileAtomic(`${dir}/compare.md`, md);
    await writeFileAtomic(
      `${dir}/compare.json`,
      JSON.stringify(runs.map((r) => ({ setting: r.setting, ...r.job })), null, 2) + "\n",
    );
    await writeFileAtomic(
      `${dir}/compare.svg`,
      barChart(
        "Mean change after fine-tuning (points)",
        "Δ score",
        runs.map((r) => `${r.job.method} (${r.setting})`),
        [
          { label: "trained tasks", values: runs.map((r) => r.job.trainedGain) },
          { label: "held-out tasks", values: runs.map((r) => r.job.heldOutDelta) },
        ],
      ),
    );
    console.log(md);
    console.log(`whet: compare table: ${dir}/compare.md`);
  } catch (e) {
    console.error(`whet compare: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
