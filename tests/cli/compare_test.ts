import assert from "node:assert/strict";
import { compareMarkdown } from "../../cli/compare.ts";
import type { JobResult } from "../../cli/job.ts";

function job(method: string, tasks: [string, boolean, number][]): JobResult {
  return {
    name: method,
    dir: "",
    method,
    description: "",
    tasks: tasks.map(([task, trained, after]) => ({
      task,
      metric: "acc",
      trained,
      before: 10,
      after,
    })),
    trainedGain: 1.5,
    heldOutDelta: -2,
    generalPerplexity: { before: 1.5, after: 2 },
    parameters: { trainable: 1, total: 4, percent: 25 },
    memory: { weights: 0, gradients: 0, optimizer: 0, activations: 0, peak: 2 ** 20 },
    losses: [],
    devLosses: [],
    train: { seconds: 61, tokensPerSecond: 1234.4, steps: 10 },
    seconds: 70,
  };
}

Deno.test("compareMarkdown() puts each score under its task's column, whatever order a run scored them in", () => {
  const md = compareMarkdown(
    [
      {
        setting: "multi-task",
        job: job("lora", [["a", true, 11], ["b", true, 22], ["c", false, 33]]),
      },
      {
        setting: "single: b",
        job: job("full", [["b", true, 44], ["a", false, 55], ["c", false, 66]]),
      },
    ],
    10,
    4,
  );
  const lines = md.split("\n");
  const header = lines.find((l) => l.startsWith("| method"))!.split("|").map((s) => s.trim());
  const row = (m: string) =>
    lines.find((l) => l.startsWith(`| ${m} `))!.split("|").map((s) => s.trim());
  assert.equal(header.length, row("lora").length, "as many cells as columns");
  const col = (name: string) => header.indexOf(name);
  assert.deepEqual([row("full")[col("a")], row("full")[col("b")], row("full")[col("c")]], [
    "55.0*",
    "44.0",
    "66.0*",
  ]);
  assert.deepEqual([row("lora")[col("a")], row("lora")[col("b")], row("lora")[col("c")]], [
    "11.0",
    "22.0",
    "33.0*",
  ]);
  assert.equal(row("lora")[col("general-text perplexity")], "1.500 → 2.000");
  assert.equal(row("lora")[col("tokens/s")], "1234");
});
