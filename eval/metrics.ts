/**
 * The metrics alone, without the benchmark harness: import this barrel to score texts without
 * loading a model, a GPU runtime or any kernel (a test checks its import graph).
 *
 * - the {@linkcode Metric} interface, {@linkcode scoreCorpus} (statistics → score → signature)
 *   and the one table of metrics, {@linkcode METRICS};
 * - ROUGE as google-research `rouge_score` 0.1.2 computes it ({@linkcode rouge},
 *   {@linkcode rougeMulti}, {@linkcode rougeCorpus} with a seeded bootstrap interval,
 *   {@linkcode rougeTokenize} with NLTK's Porter stemmer {@linkcode porterStem}), plus an opt-in
 *   Unicode-aware tokenizer ({@linkcode unicodeRougeTokenize}) because rouge_score's own scores
 *   non-ASCII text as empty;
 * - BLEU and chrF / chrF++ as sacreBLEU 2.6 computes them, with their signatures and score lines
 *   ({@linkcode corpusBleu}, {@linkcode sentenceBleu}, {@linkcode corpusChrf},
 *   {@linkcode sentenceChrf}, and the per-segment statistics they are built from);
 * - SQuAD-style {@linkcode exactMatch} and {@linkcode tokenF1}, {@linkcode accuracy},
 *   {@linkcode perplexity} and {@linkcode expectedCalibrationError}.
 *
 * @example
 * ```ts
 * import { corpusBleu, metricByName, rouge, scoreCorpus } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(rouge("the cat sat", "the cat").rouge1.recall, 2 / 3);
 * const bleu = corpusBleu(["the cat sat on the mat"], [["the cat sat on the mat"]]);
 * assert.equal(bleu.score, scoreCorpus(metricByName("bleu"), ["the cat sat on the mat"], [["the cat sat on the mat"]]).score);
 * ```
 *
 * @module
 */
export * from "./accuracy.ts";
export * from "./bleu_from_statistics.ts";
export * from "./bleu_signature.ts";
export * from "./bleu_statistics.ts";
export * from "./bleu_tokenize.ts";
export * from "./bootstrap_aggregate.ts";
export * from "./chrf_from_statistics.ts";
export * from "./chrf_signature.ts";
export * from "./chrf_statistics.ts";
export * from "./corpus_bleu.ts";
export * from "./corpus_chrf.ts";
export * from "./exact_match.ts";
export * from "./expected_calibration_error.ts";
export * from "./metric.ts";
export * from "./metrics/accuracy.ts";
export * from "./metrics/bleu.ts";
export * from "./metrics/chrf.ts";
export * from "./metrics/exact_match.ts";
export * from "./metrics/rouge.ts";
export * from "./metrics/squad_exact_match.ts";
export * from "./metrics/table.ts";
export * from "./metrics/token_f1.ts";
export * from "./normalize_answer.ts";
export * from "./perplexity.ts";
export * from "./porter_stem.ts";
export * from "./rouge.ts";
export * from "./rouge_corpus.ts";
export * from "./rouge_multi.ts";
export * from "./rouge_tokenize.ts";
export * from "./sentence_bleu.ts";
export * from "./sentence_chrf.ts";
export * from "./token_f1.ts";
export * from "./unicode_rouge_tokenize.ts";
