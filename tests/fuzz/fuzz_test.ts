/**
 * Fuzz tests (issue 14): seeded, mutated inputs of every file format a user hands whet —
 * safetensors, config.json (GPT-2 and Llama, beside weights), adapter_config.json (through each
 * PEFT method's reader), tokenizer.json, YAML run configs and `--key=value` overrides, JSONL
 * data — 10,800 inputs in all, each loaded the way the CLI loads it. Every outcome must be a
 * valid load or whet's own error (the criterion is in _criterion.ts), and no input may take
 * longer than {@linkcode BOUND_MS} (inputs run in a worker that is stopped past the bound).
 *
 * Inputs are a pure function of the target's seed and the input's index, so a failure names
 * both and one input can be rebuilt alone: `inputOf(target, i)` from _mutate.ts.
 *
 * Before the fixes of issue 14, YAML inputs #67, #186 and #204 (alias bombs) ran past the bound.
 * Faults the fuzzing found in this change's first version, fixed, each with a test beside its
 * parser: a method-setting error blamed on "(default)" when its key held a quote (YAML #776) or
 * an override gave it as a section (overrides #41); an override with an empty key part
 * (overrides #314); `warmup_steps > steps` refused though `--steps=4` with the default warmup is
 * a normal short run (YAML #14). Found while writing the targets: `"toString"` taken for a
 * safetensors dtype, config keys "constructor" / "__proto__" looked up on Object.prototype.
 *
 * @module
 */

import assert from "node:assert/strict";
import { classify } from "./_criterion.ts";
import { type FuzzReport, runTarget } from "./_harness.ts";
import { CANARY } from "./_canary.ts";
import { TARGETS } from "./_targets.ts";

/** Longest one input may take, in milliseconds: ~15× the slowest input seen on a loaded 2-core machine. */
const BOUND_MS = 2000;

function summary(r: FuzzReport, seed: number): string {
  return `fuzz ${r.target}: ${r.inputs} inputs (seed ${seed}), ${r.loads} valid loads, ` +
    `${r.errors} whet errors, ${r.crashes.length} crashes, ${r.hangs.length} hangs; ` +
    `slowest input #${r.slowest} ${r.slowestMs.toFixed(0)} ms; ${r.seconds.toFixed(1)} s`;
}

for (const target of TARGETS) {
  Deno.test(`fuzz: ${target.count} mutated ${target.name} inputs load or fail with whet's own error`, async () => {
    const report = await runTarget(target, BOUND_MS);
    console.log(summary(report, target.seed));
    const problems = [
      ...report.hangs.map((i) => `input #${i} ran past ${BOUND_MS} ms`),
      ...report.crashes.map((c) => `input #${c.i}: ${c.what}`),
    ];
    assert.equal(report.inputs, target.count, "every input ran");
    assert.deepEqual(
      problems,
      [],
      `${target.name} (seed ${target.seed}; rebuild an input with inputOf(target, i) from _mutate.ts):\n` +
        problems.slice(0, 10).join("\n\n"),
    );
    assert.ok(report.loads > 0, "some inputs are valid: the mutations do not only break files");
  });
}

Deno.test("fuzz inputs total at least 10,000", () => {
  assert.ok(TARGETS.reduce((n, t) => n + t.count, 0) >= 10_000);
});

Deno.test("fuzz harness stops hanging inputs at the bound and calls engine errors crashes", async () => {
  const report = await runTarget(CANARY, 200);
  assert.deepEqual(report.hangs, [0]); // stopped at the bound; the run resumed after it
  assert.deepEqual(report.crashes.map((c) => c.i), [1]);
  assert.match(report.crashes[0].what, /^TypeError: Cannot read properties of null/);
  assert.equal(report.loads, 1);
  assert.equal(report.inputs, 3);
  // The criterion: whet's wording and a name of the input.
  const path = "/tmp/x/config.json";
  assert.deepEqual(classify(new Error(`Cannot load ${path}: bad`), [path]), { kind: "error" });
  assert.deepEqual(classify(new RangeError(`Invalid GPT config (${path}): x`), [path]), {
    kind: "error",
  });
  for (
    const e of [
      new TypeError("Cannot read properties of undefined (reading 'a')"),
      new RangeError("Invalid array length"),
      "Cannot x",
      new Error(`bad ${path}`),
    ]
  ) {
    assert.equal(classify(e, [path]).kind, "crash", String(e));
  }
  // A PEFT setting's error must name the adapter file too (peft/prompt.ts validateAdapterConfig).
  assert.equal(
    classify(new TypeError('Cannot configure LoRA: key "r" must be number'), [path]).kind,
    "crash",
  );
});
