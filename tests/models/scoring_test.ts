import assert from "node:assert/strict";
import {
  countScoredLabels,
  firstScoredLabel,
  PLAIN_SCORING,
  Rng,
  type ScoringRule,
  shiftLabels,
} from "../../mod.ts";

const PROMPT: ScoringRule = { nVirtual: 3, scoresFirstLabel: true };
const PREFIX: ScoringRule = { nVirtual: 2, scoresFirstLabel: false };

Deno.test("shiftLabels() scores label t from the position before it: plain, prompt tuning (label 0 from the last virtual token) and prefix tuning", () => {
  const labels = [10, 11, -100, 13];
  const plain = new Int32Array(4);
  shiftLabels(labels, 1, 4, PLAIN_SCORING, plain);
  assert.deepEqual([...plain], [11, -100, 13, -100]);
  const prompt = new Int32Array(7);
  shiftLabels(labels, 1, 4, PROMPT, prompt);
  assert.deepEqual([...prompt], [-100, -100, 10, 11, -100, 13, -100]);
  const prefix = new Int32Array(6);
  shiftLabels(labels, 1, 4, PREFIX, prefix);
  assert.deepEqual([...prefix], [-100, -100, 11, -100, 13, -100]);
  assert.throws(() => shiftLabels(labels, 1, 4, PROMPT, new Int32Array(4)), /Cannot shift labels/);
});

Deno.test("countScoredLabels() counts exactly the targets shiftLabels() writes (seeded random labels)", () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 200; trial++) {
    const B = 1 + rng.int(3), T = 1 + rng.int(6), n = rng.int(4);
    const rule = { nVirtual: n, scoresFirstLabel: rng.int(2) === 1 };
    const labels = Array.from({ length: B * T }, () => rng.int(3) === 0 ? -100 : rng.int(50));
    const targets = new Int32Array(B * (n + T));
    shiftLabels(labels, B, T, rule, targets);
    const written = targets.filter((t) => t !== -100).length;
    assert.equal(countScoredLabels(labels, T, rule), written, JSON.stringify({ B, T, rule }));
  }
  assert.equal(firstScoredLabel(PLAIN_SCORING), 1);
  assert.equal(firstScoredLabel(PROMPT), 0);
  assert.equal(firstScoredLabel(PREFIX), 1);
});
