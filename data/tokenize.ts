/**
 * Tokenising examples for causal-LM supervised fine-tuning. An example becomes `ids` and `labels`
 * of the same length: `labels[t] = ids[t]` for completion tokens (and the EOS appended after the
 * completion) and `-100` for prompt tokens. As in Hugging Face, labels are aligned with the ids and
 * the loss shifts them (the logits at position t predict `labels[t + 1]`), so `labels[0]` is never
 * used.
 *
 * Each segment of the rendered example (see {@linkcode renderSegments}) is encoded on its own and
 * the ids are concatenated, so the prompt/completion boundary is exact for any tokenizer (with BPE,
 * this can differ slightly from encoding the joined text).
 *
 * @module
 */

import { renderSegments } from "./chat.ts";
import { DataError, type DataIssue, formatLocation } from "./errors.ts";
import type { TextExample } from "./examples.ts";

/**
 * What the data layer needs of a tokenizer: structurally the models' `Tokenizer`, declared here so
 * that this layer does not import models/.
 *
 * @example
 * ```ts
 * import type { TokenizerLike } from "../mod.ts";
 * const bytes: TokenizerLike = {
 *   name: "bytes",
 *   vocabSize: 257,
 *   eosId: 256,
 *   encode: (text) => [...new TextEncoder().encode(text)],
 *   decode: (ids) => new TextDecoder().decode(new Uint8Array(ids.filter((i) => i < 256))),
 * };
 * if (bytes.decode(bytes.encode("hé")) !== "hé") throw new Error("round trip failed");
 * ```
 */
export interface TokenizerLike {
  /** A name for reports, e.g. `"gpt2"` or `"bytes"`. */
  readonly name: string;
  /** Number of distinct ids. */
  readonly vocabSize: number;
  /** The end-of-sequence id, appended after each completion when present. */
  readonly eosId?: number;
  /** Text to token ids. */
  encode(text: string): number[];
  /** Token ids to text. */
  decode(ids: readonly number[]): string;
}

/**
 * The label of a position that the loss ignores: PyTorch's `ignore_index`, and the value of
 * `IGNORE_INDEX` in kernels/crossentropy.ts (not imported, to keep this layer free of GPU code;
 * the tests check they agree). Not re-exported by data/mod.ts, as kernels/ already exports it.
 */
export const IGNORE_INDEX = -100;

/**
 * What to do with an example longer than `maxLength` tokens: `"error"` rejects it (the error names
 * its file and line, or index, and its length); `"truncate"` removes prompt tokens from the left
 * first, then completion tokens from the right.
 */
export type TruncationPolicy = "error" | "truncate";

/** Options for {@linkcode tokenizeExample} and {@linkcode tokenizeExamples}. */
export interface TokenizeOptions {
  /** The longest sequence allowed, in tokens, EOS included (usually the model's context). */
  maxLength: number;
  /** What to do with longer examples. Default `"error"`. */
  truncation?: TruncationPolicy;
  /** Append the tokenizer's EOS after the completion. Default: true when it has one. */
  addEos?: boolean;
  /** How many bad examples {@linkcode tokenizeExamples} lists before summarising. Default 20. */
  maxErrors?: number;
}

/** One tokenised example. `ids` and `labels` have the same length, at most `maxLength`. */
export interface TokenizedExample {
  /** Token ids: prompt, completion, then EOS. */
  ids: number[];
  /** `ids[t]` where trained, -100 where masked. */
  labels: number[];
  /** Whether truncation removed tokens. */
  truncated: boolean;
  /** The task of the source example, if it had one. */
  task?: string;
}

/** The result of {@linkcode tokenizeExamples}. */
export interface TokenizedSet {
  /** The tokenised examples, in input order. */
  examples: TokenizedExample[];
  /** How many of them were truncated (always 0 with the `"error"` policy). */
  truncated: number;
}

/**
 * Tokenises one example into ids and labels (see the module doc). `index` names the example in
 * errors when it has no source location.
 *
 * @example
 * ```ts
 * import { tokenizeExample } from "../mod.ts";
 * const tok = {
 *   name: "chars", vocabSize: 128, eosId: 0,
 *   encode: (s: string) => [...s].map((c) => c.charCodeAt(0)),
 *   decode: (ids: number[]) => String.fromCharCode(...ids),
 * };
 * const { ids, labels } = tokenizeExample({ prompt: "Q:", completion: "A" }, tok, { maxLength: 8 });
 * // ids "Q", ":", "A", EOS; only "A" and EOS are trained
 * if (ids.join() !== "81,58,65,0" || labels.join() !== "-100,-100,65,0") {
 *   throw new Error("masking failed");
 * }
 * ```
 */
export function tokenizeExample(
  example: TextExample,
  tokenizer: TokenizerLike,
  options: TokenizeOptions,
  index = 0,
): TokenizedExample {
  const result = tokenizeOne(example, tokenizer, checkOptions(options));
  if (typeof result === "string") {
    throw new DataError(`Cannot tokenize ${where(example, index)}: ${result}`, []);
  }
  return result;
}

/**
 * Tokenises many examples, reporting all bad ones (up to `maxErrors`) in one
 * {@linkcode DataError} and counting the truncated ones.
 *
 * @example
 * ```ts
 * import { tokenizeExamples } from "../mod.ts";
 * const tok = {
 *   name: "chars", vocabSize: 128,
 *   encode: (s: string) => [...s].map((c) => c.charCodeAt(0)),
 *   decode: (ids: number[]) => String.fromCharCode(...ids),
 * };
 * const set = tokenizeExamples(
 *   [{ prompt: "abcdef", completion: "xy" }, { prompt: "a", completion: "b" }],
 *   tok,
 *   { maxLength: 4, truncation: "truncate" },
 * );
 * if (set.truncated !== 1 || tok.decode(set.examples[0].ids) !== "efxy") throw new Error();
 * ```
 */
export function tokenizeExamples(
  examples: readonly TextExample[],
  tokenizer: TokenizerLike,
  options: TokenizeOptions,
): TokenizedSet {
  const opts = checkOptions(options);
  const out: TokenizedExample[] = [];
  const issues: DataIssue[] = [];
  let bad = 0, truncated = 0;
  examples.forEach((example, i) => {
    const result = tokenizeOne(example, tokenizer, opts);
    if (typeof result === "string") {
      bad++;
      if (issues.length < opts.maxErrors) {
        issues.push({ where: where(example, i), message: result });
      }
      return;
    }
    if (result.truncated) truncated++;
    out.push(result);
  });
  if (bad > 0) {
    throw new DataError(
      `Cannot tokenize ${bad} of ${examples.length} examples (maxLength ${opts.maxLength}, ` +
        `truncation "${opts.truncation}")`,
      issues,
      bad,
    );
  }
  return { examples: out, truncated };
}

type CheckedOptions = Required<Omit<TokenizeOptions, "addEos">> & { addEos?: boolean };

function checkOptions(options: TokenizeOptions): CheckedOptions {
  const { maxLength, truncation = "error", maxErrors = 20 } = options;
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new RangeError(`Cannot tokenize: maxLength must be a positive integer, got ${maxLength}`);
  }
  if (truncation !== "error" && truncation !== "truncate") {
    throw new RangeError(
      `Cannot tokenize: truncation must be "error" or "truncate", got ${
        JSON.stringify(truncation)
      }`,
    );
  }
  return { maxLength, truncation, maxErrors, addEos: options.addEos };
}

/** The example tokenised, or a message saying why it cannot be. */
function tokenizeOne(
  example: TextExample,
  tokenizer: TokenizerLike,
  opts: CheckedOptions,
): TokenizedExample | string {
  const segments = renderSegments(example);
  // Context: every segment before the last (an earlier assistant turn keeps its labels);
  // completion: the last segment, always trained, plus EOS.
  let contextIds: number[] = [], contextLabels: number[] = [];
  for (const s of segments.slice(0, -1)) {
    const ids = tokenizer.encode(s.text);
    contextIds = contextIds.concat(ids);
    contextLabels = contextLabels.concat(s.trained ? ids : ids.map(() => IGNORE_INDEX));
  }
  let completion = tokenizer.encode(segments[segments.length - 1].text);
  const addEos = opts.addEos ?? tokenizer.eosId !== undefined;
  if (addEos) {
    if (tokenizer.eosId === undefined) {
      return `addEos is set but tokenizer "${tokenizer.name}" has no EOS id`;
    }
    completion = completion.concat([tokenizer.eosId]);
  }
  const length = contextIds.length + completion.length;
  let truncated = false;
  if (length > opts.maxLength) {
    if (opts.truncation === "error") {
      return `${length} tokens (prompt ${contextIds.length}, completion ${completion.length}) ` +
        `exceed maxLength ${opts.maxLength}`;
    }
    truncated = true;
    const excess = length - opts.maxLength;
    const fromContext = Math.min(excess, contextIds.length);
    contextIds = contextIds.slice(fromContext);
    contextLabels = contextLabels.slice(fromContext);
    completion = completion.slice(0, completion.length - (excess - fromContext));
  }
  const ids = contextIds.concat(completion);
  const labels = contextLabels.concat(completion);
  if (!labels.some((l, t) => t > 0 && l !== IGNORE_INDEX)) {
    return "no completion token to train on (the label at position 0 is never used)";
  }
  const out: TokenizedExample = { ids, labels, truncated };
  if (example.task !== undefined) out.task = example.task;
  return out;
}

function where(example: TextExample, index: number): string {
  return example.source ? formatLocation(example.source) : `example #${index}`;
}
