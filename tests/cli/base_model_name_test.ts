/**
 * `base_model_name_or_path` of saved adapters (issue 13: it was always ""): what `--model` was
 * given, as Python's PEFT records what `from_pretrained` was given, or `--base-model-name NAME`.
 * The journey test checks the written adapter_config.json of a real job.
 */
import assert from "node:assert/strict";
import { parseRunArgs } from "../../cli/args.ts";
import { baseModelName, configDifferences } from "../../cli/job.ts";
import { DEFAULT_CONFIG, loadConfig } from "../../cli/config.ts";

Deno.test("--base-model-name NAME sets model.base_model_name, which the saved adapter records instead of --model", async () => {
  const args = parseRunArgs([
    "--model",
    "/data/gpt2/",
    "--base-model-name",
    "openai-community/gpt2",
  ]);
  const c = await loadConfig(args.config, args.overrides);
  assert.equal(c.model.base_model_name, "openai-community/gpt2");
  assert.equal(baseModelName(c), "openai-community/gpt2");
  const plain = await loadConfig(undefined, ["--model=/data/gpt2/"]);
  assert.equal(baseModelName(plain), "/data/gpt2/", "the folder exactly as given");
  const preset = await loadConfig(undefined, ["--model.path=", "--model.preset=tiny"]);
  assert.equal(baseModelName(preset), "", "a preset has no name that loads it elsewhere");
});

Deno.test("configDifferences() ignores a key added since the run was stored when it holds its default", () => {
  const stored = JSON.parse(JSON.stringify(DEFAULT_CONFIG));
  delete stored.model.base_model_name;
  delete stored.model.base_dtype;
  assert.deepEqual(configDifferences(stored, { ...DEFAULT_CONFIG }), []);
  const named = { ...DEFAULT_CONFIG, model: { ...DEFAULT_CONFIG.model, base_model_name: "x" } };
  assert.deepEqual(configDifferences(stored, named).map((d) => d.key), ["model.base_model_name"]);
});
