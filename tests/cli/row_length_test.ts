import assert from "node:assert/strict";
import { DEFAULT_CONFIG, type RunConfig } from "../../cli/config.ts";
import { runJob } from "../../cli/job.ts";
import { buildSuite } from "../../data/suite.ts";

Deno.test("runJob() pads training rows to the longest example, rounded up to 8, not to the context", async () => {
  const root = await Deno.makeTempDir();
  try {
    const c = structuredClone(DEFAULT_CONFIG) as RunConfig;
    c.model = { ...c.model, path: "", preset: "modelA" };
    c.data = {
      ...c.data,
      train_size: 8,
      dev_size: 2,
      test_size: 1,
      tasks: ["arithmetic"],
      held_out: [],
    };
    c.schedule = { ...c.schedule, steps: 2, batch_size: 2, warmup_steps: 0 };
    c.eval = { every: 0, batches: 1, max_new_tokens: 2, general_documents: 0 };
    c.output = { dir: root, checkpoint_every: 0 };
    const lines: string[] = [];
    const job = await runJob(c, { log: (l) => lines.push(l), progress: false });
    const text = lines.join("\n");
    // The same examples the job trains on; the preset's tokenizer is bytes, without end-of-text.
    const [data] = buildSuite({
      seed: c.seed,
      tasks: ["arithmetic"],
      sizes: { train: 8, dev: 2, test: 1 },
    });
    const longest = Math.max(
      ...[...data.train, ...data.dev].map((e) =>
        new TextEncoder().encode(e.prompt + e.completion).length
      ),
    );
    const planned = [...text.matchAll(/^memory plan: [\d.]+ [KMG]iB for batch 2 × (\d+)/gm)].map((
      m,
    ) => +m[1]);
    // Before loading: the context (the most a row may need); with the method: the longest row.
    assert.deepEqual(planned, [DEFAULT_CONFIG.data.max_length, Math.ceil(longest / 8) * 8], text);
    assert.ok(longest < 100, `${longest}`);
    assert.ok(job.losses.every(Number.isFinite), JSON.stringify(job.losses));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
