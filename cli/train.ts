/**
 * `deno task train [config.yaml] [--key=value …] [--resume [--resume-allow=KEYS]]`: the main job. With no arguments it
 * LoRA-tunes the embedded base model (models/base) on the embedded multi-task mixture, scores every
 * task before and after (held-out tasks measure forgetting), and writes runs/default/.
 *
 * @module
 */

import { parseRunArgs } from "./args.ts";
import { checkFiles, DEFAULT_CONFIG, loadConfig } from "./config.ts";
import { explainAccess } from "./common.ts";
import { runJob } from "./job.ts";

const HELP =
  `deno task train [config.yaml] [--section.key=value ...] [--resume [--resume-allow=KEYS]]

Fine-tunes a GPT-2-family model and reports what it gained and forgot.
With no arguments: LoRA on the embedded base model (models/base) and the embedded
multi-task suite; outputs in runs/default/ (adapter/, metrics.json, report.md, *.svg).

  config.yaml            a run config (see configs/*.yaml); --config FILE also works
  --section.key=value    override any config key, e.g. --peft.method=bitfit --peft.r=8
  --steps=N --lr=X --batch_size=N --method=NAME   short forms of schedule.steps, optimizer.lr,
                         schedule.batch_size and peft.method
  --model DIR            a Hugging Face GPT-2 folder (config.json + model.safetensors)
  --adapter DIR          continue training from an adapter folder of any method (model.adapter):
                         its method must be peft.method, and its settings are used
  --data FILE.jsonl      your own prompt/completion or chat data instead of the suite
  --base-model-name NAME base_model_name_or_path of the saved adapter (default: --model as given)
  --model.base_dtype=D   auto (f16 for adapter methods over 100M parameters), f32, f16 or bf16:
                         how the frozen base weights are stored
  --resume               continue runs/<name>/ from its last checkpoint; refused when the
                         config differs from the run's stored config.json
  --resume-allow=KEYS    with --resume: accept changes in these comma-separated keys or
                         sections, e.g. --resume-allow=lr,steps or --resume-allow=eval
  -h, --help             this text

Before loading any weight the job plans its memory (weights, gradients, optimizer, activations,
head, scratch) against the device's limits and, on a CPU adapter, the machine's available
memory (--allow-sys=systemMemoryInfo): a run that cannot fit stops, naming the batch size,
length, checkpointing or base dtype that would fit; one that fits only with gradient
checkpointing gets it, and says so.

Defaults: ${JSON.stringify({ peft: DEFAULT_CONFIG.peft, schedule: DEFAULT_CONFIG.schedule })}
`;

if (import.meta.main) {
  try {
    const args = parseRunArgs(Deno.args, ["resume-allow"]);
    if (args.help) {
      console.log(HELP);
      Deno.exit(0);
    }
    const allow = args.flags["resume-allow"];
    if (allow !== undefined && !args.resume) {
      throw new Error("Cannot use --resume-allow without --resume");
    }
    const config = await loadConfig(args.config, args.overrides);
    await checkFiles(config);
    const job = await runJob(config, {
      resume: args.resume,
      resumeAllow: allow?.split(",").map((k) => k.trim()).filter((k) => k !== ""),
    });
    console.log(
      `whet: trained tasks ${job.trainedGain >= 0 ? "+" : ""}${
        job.trainedGain.toFixed(1)
      } points, held-out ${
        Number.isFinite(job.heldOutDelta)
          ? (job.heldOutDelta >= 0 ? "+" : "") + job.heldOutDelta.toFixed(1)
          : "n/a"
      } points; report: ${job.dir}/report.md`,
    );
  } catch (e) {
    // Any read or write Deno refused that no call site explained still names the flag to add.
    console.error(`whet train: ${(explainAccess(e) ?? e as Error).message}`);
    Deno.exit(1);
  }
}
