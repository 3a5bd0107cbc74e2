/**
 * `data.mixing_weights`: the default run's shares of its five trained tasks, replaced (not merged)
 * by a config that sets any, checked by name and range, and applied to the trained tasks only.
 */
import assert from "node:assert/strict";
import { withFile } from "./_config_file.ts";
import { DEFAULT_CONFIG, loadConfig } from "../../cli/config.ts";
import { buildData } from "../../cli/job.ts";
import { ByteTokenizer } from "../../models/tokenizer.ts";

Deno.test("data.mixing_weights: defaults, replaced by any setting, added to by later overrides", async () => {
  const defaults = (await loadConfig(undefined, [])).data.mixing_weights;
  assert.deepEqual(defaults, DEFAULT_CONFIG.data.mixing_weights);
  assert.equal(Object.values(defaults).reduce((a, b) => a + b, 0).toFixed(6), "1.000000");
  assert.deepEqual(
    (await loadConfig(undefined, ["--data.mixing_weights.summarise=0.5"])).data.mixing_weights,
    { summarise: 0.5 },
  );
  assert.deepEqual(
    (await loadConfig(undefined, ["--data.mixing_weights={}"])).data.mixing_weights,
    {},
  );
  await withFile("data:\n  mixing_weights:\n    sentiment: 0.3\n", async (f) => {
    const c = await loadConfig(f, ["--data.mixing_weights.translate=0.2"]);
    assert.deepEqual(c.data.mixing_weights, { sentiment: 0.3, translate: 0.2 });
  });
  // The default map is not changed by a run that replaced it.
  assert.deepEqual(DEFAULT_CONFIG.data.mixing_weights, defaults);
});

Deno.test("data.mixing_weights refuses an unknown task, a share outside 0-1 and shares over the whole", async () => {
  const refused = async (args: string[], pattern: RegExp) =>
    await assert.rejects(loadConfig(undefined, args), pattern);
  await refused(
    ["--data.mixing_weights.sentimnt=0.5"],
    /^ConfigError: Cannot use config key "data\.mixing_weights\.sentimnt" \(--data\.mixing_weights\.sentimnt=0\.5\): no suite task is called "sentimnt"; tasks: summarise, /,
  );
  await refused(
    ["--data.mixing_weights.summarise=1.5"],
    /share must be a number from 0 to 1, got 1\.5/,
  );
  await refused(["--data.mixing_weights.summarise=-0.1"], /share must be a number from 0 to 1/);
  await refused(
    ["--data.mixing_weights.summarise=lots"],
    /expected a number, got a string "lots"/,
  );
  // A held-out task may be given a share too (trained when data.tasks names it).
  await refused(
    ["--data.mixing_weights.count_words=lots"],
    /a share must be a number from 0 to 1, got "lots"/,
  );
  await refused(
    ["--data.mixing_weights.summarise=0.7", "--data.mixing_weights.translate=0.6"],
    /"data\.mixing_weights" .*the shares of summarise, translate add up to 1\.3, more than the whole mixture/,
  );
  // Every trained task named: the shares are relative, any sum will do.
  const c = await loadConfig(undefined, [
    "--data.tasks=[summarise, translate]",
    "--data.mixing_weights.summarise=0.7",
    "--data.mixing_weights.translate=0.6",
  ]);
  assert.deepEqual(c.data.mixing_weights, { summarise: 0.7, translate: 0.6 });
});

Deno.test("buildData() mixes the trained tasks by the shares that name them", async () => {
  const sizes = ["--data.train_size=100", "--data.dev_size=1", "--data.test_size=1"];
  const mixture = async (args: string[]) => {
    const data = await buildData(
      await loadConfig(undefined, [...sizes, ...args]),
      new ByteTokenizer({ endOfText: true }),
      128,
    );
    return data.notes.find((n) => n.startsWith("mixture: "));
  };
  assert.equal(
    await mixture([]),
    "mixture: summarise 10.0%, translate 18.0%, sentiment 40.0%, arithmetic 10.0%, multiple_choice 22.0% (500 examples)",
  );
  // Two trained tasks, both with default shares (0.10 and 0.40): relative, 20% and 80%.
  assert.equal(
    await mixture(["--data.tasks=[summarise, sentiment]"]),
    "mixture: summarise 20.0%, sentiment 80.0% (200 examples)",
  );
  // A share for one task: the others split the rest by their sizes.
  assert.equal(
    await mixture([
      "--data.tasks=[summarise, sentiment, translate]",
      "--data.mixing_weights.sentiment=0.5",
    ]),
    "mixture: summarise 25.0%, sentiment 50.0%, translate 25.0% (300 examples)",
  );
  assert.equal(
    await mixture(["--data.mixing_weights={}"]),
    "mixture: summarise 20.0%, translate 20.0%, sentiment 20.0%, arithmetic 20.0%, multiple_choice 20.0% (500 examples)",
  );
});
