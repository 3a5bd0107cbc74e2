/**
 * Evaluation: the pure metrics of {@link ./metrics.ts} (ROUGE as google-research `rouge_score`
 * 0.1.2, BLEU and chrF as sacreBLEU 2.6, SQuAD exact match and token F1, accuracy, perplexity,
 * calibration error; the {@linkcode Metric} interface and the one table of metrics,
 * {@linkcode METRICS}), and the parts that run a model or read benchmark files: the benchmark
 * harness ({@linkcode evaluateTask}, {@linkcode evaluateSuite}), HELM-style and forgetting
 * reports, and readers of MMLU, BIG-bench and GLUE files. Import `eval/metrics.ts` alone to
 * score texts without loading any model or GPU code.
 *
 * @example
 * ```ts
 * import { corpusBleu, rouge } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(rouge("the cat sat", "the cat").rouge1.recall, 2 / 3);
 * const bleu = corpusBleu(["the cat sat on the mat"], [["the cat sat on the mat"]]);
 * assert.equal(bleu.formatted, "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)");
 * ```
 *
 * @module
 */
export * from "./metrics.ts";
export * from "./forgetting.ts";
export * from "./harness.ts";
export * from "./helm.ts";
export * from "./readers.ts";
