/**
 * The training process of kill_test.ts: runJob on a tiny model with a checkpoint every 2 steps.
 *
 *     deno run --allow-read --allow-write=OUT _kill_child.ts OUT [--resume] [--pause=STEP:STAGE]
 *
 * Prints `progress N` at every logged step and `log …` for the job's lines. With --pause it prints
 * `pause STEP STAGE` when the checkpoint save of STEP reaches STAGE and waits there for the test
 * to kill it (exit 3 if nobody does). On success it prints `losses [...]`.
 *
 * @module
 */
import { loadConfig } from "../../cli/config.ts";
import { runJob } from "../../cli/job.ts";

/** Optimizer steps of the job. */
export const KILL_STEPS = 30;

/** The job every child runs: only `--out` differs between the reference and the killed run. */
export const KILL_JOB = [
  "--model.path=",
  "--model.preset=tiny",
  `--steps=${KILL_STEPS}`,
  "--schedule.warmup_steps=3",
  "--schedule.batch_size=2",
  "--peft.lora_dropout=0.1",
  "--data.tasks=[uppercase]",
  "--data.held_out=[]",
  "--data.train_size=8",
  "--data.dev_size=2",
  "--data.test_size=1",
  "--data.max_length=32",
  "--data.truncation=truncate",
  "--eval.every=4",
  "--eval.batches=1",
  "--output.checkpoint_every=2",
  "--name=k",
];

if (import.meta.main) {
  const [out, ...flags] = Deno.args;
  const pause = flags.find((f) => f.startsWith("--pause="))?.slice(8).split(":");
  const c = await loadConfig(undefined, [...KILL_JOB, `--out=${out}`]);
  const job = await runJob(c, {
    resume: flags.includes("--resume"),
    progress: false,
    // Training is what is killed: the base scores only slow every restart down.
    before: [0],
    beforePerplexity: 1,
    log: (line) => console.log(`log ${line}`),
    onProgress: (step) => console.log(`progress ${step}`),
    onCheckpointStage: async (stage, step) => {
      if (pause && Number(pause[0]) === step && pause[1] === stage) {
        console.log(`pause ${step} ${stage}`);
        await new Promise((resolve) => setTimeout(resolve, 60_000));
        Deno.exit(3);
      }
    },
  });
  console.log(`losses ${JSON.stringify(job.losses)}`);
}
