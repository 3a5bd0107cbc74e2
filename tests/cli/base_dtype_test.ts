/**
 * `model.base_dtype` in the run config: "auto" follows `defaultBaseDtype`, an explicit half dtype
 * is refused for methods that train base weights, and a job with an f16 base plans, loads and
 * trains with it (issue 13 item 3, wired into the CLI).
 */
import assert from "node:assert/strict";
import { gpt2ParameterShapes, gptConfig, llamaConfig, llamaParameterShapes } from "../../mod.ts";
import { DEFAULT_CONFIG, loadConfig, type RunConfig } from "../../cli/config.ts";
import { chooseBaseDtype, runJob } from "../../cli/job.ts";

Deno.test("loadConfig() checks model.base_dtype: one of auto, f32, f16, bf16, and half only for methods that train no base weight", async () => {
  assert.equal((await loadConfig(undefined, [])).model.base_dtype, "auto");
  assert.equal((await loadConfig(undefined, ["--model.base_dtype=bf16"])).model.base_dtype, "bf16");
  await assert.rejects(
    loadConfig(undefined, ["--model.base_dtype=fp16"]),
    /^ConfigError: Cannot use config key "model.base_dtype" \(--model.base_dtype=fp16\): must be "auto", "f32", "f16" or "bf16", got "fp16"$/,
  );
  await assert.rejects(
    loadConfig(undefined, ["--method=full", "--model.base_dtype=f16"]),
    /"model.base_dtype" \(--model.base_dtype=f16\): f16 stores the frozen base in half precision, and peft.method "full" trains base weights, which must be f32; use "f32" or "auto"$/,
  );
  // f32 goes with any method.
  await loadConfig(undefined, ["--method=full", "--model.base_dtype=f32"]);
});

Deno.test("chooseBaseDtype() follows defaultBaseDtype for auto: f16 for adapter methods over 100M parameters", () => {
  const c = (method: string, base_dtype = "auto") =>
    ({
      ...DEFAULT_CONFIG,
      model: { ...DEFAULT_CONFIG.model, base_dtype },
      peft: { method },
    }) as RunConfig;
  const gpt2 = gpt2ParameterShapes(gptConfig("gpt2")); // 124M
  const smol = llamaParameterShapes(llamaConfig("smollm2-135m")); // 135M
  const tiny = gpt2ParameterShapes(gptConfig("tiny"));
  assert.deepEqual(chooseBaseDtype(c("lora"), gpt2), {
    dtype: "f16",
    why: "model.base_dtype auto: lora on 124M parameters",
  });
  assert.equal(chooseBaseDtype(c("ia3"), smol).dtype, "f16");
  assert.equal(chooseBaseDtype(c("full"), gpt2).dtype, "f32");
  assert.equal(chooseBaseDtype(c("selective"), gpt2).dtype, "f32");
  assert.equal(chooseBaseDtype(c("lora"), tiny).dtype, "f32");
  assert.deepEqual(chooseBaseDtype(c("lora", "bf16"), tiny), {
    dtype: "bf16",
    why: "model.base_dtype",
  });
});

Deno.test("runJob() with model.base_dtype f16 says so, plans the half base and trains LoRA on it", async () => {
  const root = await Deno.makeTempDir();
  try {
    const c = structuredClone(DEFAULT_CONFIG) as RunConfig;
    c.model = { ...c.model, path: "", preset: "tiny", base_dtype: "f16" };
    c.data = {
      ...c.data,
      train_size: 8,
      dev_size: 2,
      test_size: 1,
      tasks: ["summarise"],
      held_out: [],
    };
    c.data.truncation = "truncate";
    c.schedule = { ...c.schedule, steps: 2, batch_size: 2, warmup_steps: 0 };
    c.eval = { every: 0, batches: 1, max_new_tokens: 2, general_documents: 0 };
    c.output = { dir: root, checkpoint_every: 0 };
    const lines: string[] = [];
    const job = await runJob(c, { log: (l) => lines.push(l), progress: false });
    const text = lines.join("\n");
    assert.match(
      text,
      /^base weights stored in f16 \(model\.base_dtype; compute stays f32; /m,
      text,
    );
    assert.ok(job.losses.every(Number.isFinite), JSON.stringify(job.losses));
    // The plans before and after loading agree on the base's bytes: the matrices in halves.
    const weights = [...text.matchAll(/^memory plan: .*\(weights ([\d.]+) MiB/gm)].map((m) =>
      +m[1]
    );
    assert.equal(weights.length, 2, text);
    const f32 = [...gpt2ParameterShapes(gptConfig("tiny"))]
      .reduce((a, [, s]) => a + 4 * s.reduce((x, y) => x * y, 1), 0) / 2 ** 20;
    assert.ok(weights[0] < 0.6 * f32, `${weights[0]} MiB planned for a ${f32} MiB f32 base`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
