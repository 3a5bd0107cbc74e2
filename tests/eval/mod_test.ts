import assert from "node:assert/strict";
import * as evalModule from "../../eval/mod.ts";

Deno.test("eval/mod.ts exports exactly the public API", () => {
  // Changing this list is a deliberate change of the public API.
  assert.deepEqual(Object.keys(evalModule).sort(), [
    "BLEU_SMOOTH_DEFAULTS",
    "DEFAULT_ROUGE_TYPES",
    "SACREBLEU_VERSION",
    "accuracy",
    "bleuFromStatistics",
    "bleuSignature",
    "bleuStatistics",
    "bleuTokenize",
    "bootstrapAggregate",
    "chrfFromStatistics",
    "chrfSignature",
    "chrfStatistics",
    "corpusBleu",
    "corpusChrf",
    "exactMatch",
    "expectedCalibrationError",
    "normalizeAnswer",
    "perplexity",
    "porterStem",
    "rouge",
    "rougeCorpus",
    "rougeMulti",
    "rougeTokenize",
    "sentenceBleu",
    "sentenceChrf",
    "tokenF1",
    "unicodeRougeTokenize",
  ]);
});
