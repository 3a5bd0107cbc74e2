/**
 * `--adapter DIR` for every method: `deno task generate` and `deno task eval` load any adapter
 * folder through the PEFT registry (not only LoRA), and `deno task train` continues training
 * from one (model.adapter), its "before" scores those of the model with the adapter.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../cli/config.ts";
import { main as evalMain } from "../../cli/eval.ts";
import { main as generateMain } from "../../cli/generate.ts";
import { runJob } from "../../cli/job.ts";
import { GPT, gptConfig, Gpu, ia3, prefix, prompt } from "../../mod.ts";
import sst2Dev from "../eval/fixtures/sst2_dev.tsv" with { type: "text" };

/** An adapter of `method` trained by hand on the tiny preset (seed 0, as the CLIs build it). */
async function savedAdapter(method: "ia3" | "prompt" | "prefix"): Promise<string> {
  const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 0 });
  const dir = await Deno.makeTempDir({ prefix: `whet_adapter_${method}_` });
  try {
    const inst = method === "ia3"
      ? await ia3.apply(model, ia3.validate({}), 0)
      : method === "prompt"
      ? await prompt.apply(model, prompt.validate({ num_virtual_tokens: 2 }), 0)
      : await prefix.apply(model, prefix.validate({ num_virtual_tokens: 2 }), 0);
    for (const p of inst.trainable()) {
      const [v] = await model.gpu.read([p.value]);
      // Far from the initialisation: the random tiny model's greedy continuation must change.
      const scale = method === "prefix" ? 30 : 1;
      p.value.write(
        Float32Array.from(v, (x, i) => scale * (x * (1 + 3 * Math.sin(i)) + Math.cos(i))),
      );
    }
    await inst.save(dir, "tiny");
  } finally {
    model.release();
  }
  return dir;
}

/** Runs `fn` with console.log and console.error captured. */
async function captured(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const log = console.log, error = console.error;
  let out = "", err = "";
  console.log = (...a: unknown[]) => out += a.join(" ") + "\n";
  console.error = (...a: unknown[]) => err += a.join(" ") + "\n";
  try {
    return { code: await fn(), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("deno task generate --adapter loads IA³, prompt and prefix folders, and their outputs differ from the base's", async () => {
  const args = ["--preset", "tiny", "--prompt", "Hello", "--max-tokens", "6"];
  const base = await captured(() => generateMain(args));
  assert.equal(base.code, 0, base.err);
  const described = {
    ia3: /adapter .*: IA³ on c_attn, mlp\.c_proj \(feed-forward: mlp\.c_proj\), 4 layers/,
    prompt: /adapter .*: prompt tuning: 2 virtual tokens \(RANDOM init\)/,
    prefix: /adapter .*: prefix tuning: 2 virtual tokens × 2 layers/,
  };
  for (const method of ["ia3", "prompt", "prefix"] as const) {
    const dir = await savedAdapter(method);
    try {
      const run = await captured(() => generateMain([...args, "--adapter", dir]));
      assert.equal(run.code, 0, run.err);
      assert.match(run.err, described[method]);
      assert.notEqual(run.out, base.out, `${method} changes the continuation`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const missing = await captured(() => generateMain([...args, "--adapter", "/nonexistent/x"]));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /holds neither adapter_config.json nor whet_peft.json/);
});

Deno.test("deno task eval --adapter scores with a prompt-tuning adapter and names it", async () => {
  const dir = await savedAdapter("prompt");
  const tsv = `${dir}/sst2.tsv`;
  await Deno.writeTextFile(tsv, sst2Dev);
  try {
    let out = "", err = "";
    const io = { out: (t: string) => out += t + "\n", err: (t: string) => err += t + "\n" };
    const code = await evalMain(
      ["--preset", "tiny", "--glue", `sst2=${tsv}`, "--adapter", dir, "--json"],
      io,
    );
    assert.equal(code, 0, err);
    assert.match(err, /whet eval: adapter .*: prompt tuning: 2 virtual tokens \(RANDOM init\)/);
    assert.equal(JSON.parse(out).tasks.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const TINY = [
  "--model.path=",
  "--model.preset=tiny",
  "--steps=2",
  "--schedule.batch_size=4",
  "--schedule.warmup_steps=1",
  "--data.train_size=8",
  "--data.dev_size=0",
  "--data.test_size=2",
  "--data.max_length=48",
  "--data.truncation=truncate",
  "--data.tasks=[sentiment]",
  "--data.held_out=[uppercase]",
  "--eval.every=0",
  "--output.checkpoint_every=0",
];

Deno.test("deno task train --adapter continues a prompt-tuning run (TEXT init tokenised by the method); another method is refused", async () => {
  const out = await Deno.makeTempDir();
  try {
    const first = await runJob(
      await loadConfig(undefined, [
        ...TINY,
        `--out=${out}`,
        "--name=first",
        "--peft.method=prompt",
        "--peft.num_virtual_tokens=3",
        "--peft.prompt_tuning_init=TEXT",
        "--peft.prompt_tuning_init_text=Review",
      ]),
      { log: () => {}, progress: false },
    );
    const saved = JSON.parse(
      await Deno.readTextFile(`${out}/first/adapter/adapter_config.json`),
    );
    assert.equal(saved.prompt_tuning_init, "TEXT");
    assert.equal(saved.tokenizer_name_or_path, "bytes", "the tokenizer's name for a preset");
    const lines: string[] = [];
    const second = await runJob(
      await loadConfig(undefined, [
        ...TINY,
        `--out=${out}`,
        "--name=second",
        "--peft.method=prompt",
        `--adapter=${out}/first/adapter`,
      ]),
      { log: (l) => lines.push(l), progress: false },
    );
    assert.ok(
      lines.some((l) =>
        /adapter .*first\/adapter: prompt tuning: 3 virtual tokens \(TEXT init\) \(continuing\)/
          .test(l)
      ),
      lines.join("\n"),
    );
    // Scored before the second run: the first run's trained prompt, so its "after" scores.
    assert.deepEqual(second.tasks.map((t) => t.before), first.tasks.map((t) => t.after));
    assert.equal(second.generalPerplexity.before, first.generalPerplexity.after);
    assert.notEqual(first.generalPerplexity.before, first.generalPerplexity.after, "not trivial");
    await assert.rejects(
      async () =>
        runJob(
          await loadConfig(undefined, [
            ...TINY,
            `--out=${out}`,
            "--name=third",
            `--adapter=${out}/first/adapter`,
          ]),
          { log: () => {}, progress: false },
        ),
      /holds a "prompt" adapter, but peft.method is "lora"; set --peft.method=prompt/,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
