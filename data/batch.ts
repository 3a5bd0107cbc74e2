/**
 * Fixed-shape batches for training: (B,T) ids and labels, right-padded with the pad id (labels
 * -100), in a seeded shuffled order per epoch. Right padding needs no attention mask in a causal
 * model: real tokens only attend to earlier positions, never to the pads after them.
 *
 * @module
 */

import { Rng } from "../runtime/rng.ts";
import { deriveSeed } from "./_hash.ts";
import { countScoredLabels, PLAIN_SCORING } from "../models/scoring.ts";
import { IGNORE_INDEX, type TokenizedExample } from "./tokenize.ts";

/** One (B,T) batch, row-major: row b holds one example, padded on the right. */
export interface TokenBatch {
  /** (B,T) token ids; pads are the pad id. */
  ids: Int32Array;
  /** (B,T) labels aligned with `ids`; pads and prompt tokens are -100. */
  labels: Int32Array;
  /** B: rows, including all-pad rows that fill the last batch of an epoch. */
  batchSize: number;
  /** T: columns. */
  seqLen: number;
  /** How many rows hold an example (the rest are all pads). */
  rows: number;
  /** Indices, into the batcher's examples, of the examples in rows `0..rows-1`. */
  indices: number[];
  /** Non-pad tokens in the batch. */
  tokens: number;
  /** Labels the loss averages over: those not -100 at positions t ≥ 1 (position 0 is never predicted). */
  targets: number;
}

/** Options for {@linkcode Batcher}. */
export interface BatcherOptions {
  /** B, rows per batch. */
  batchSize: number;
  /** T, tokens per row; every example must fit (tokenise with `maxLength ≤ seqLen`). */
  seqLen: number;
  /** The id written into padding positions (GPT-2 uses EOS). */
  padId: number;
  /** Seed of the shuffle; epoch e is shuffled with a stream derived from (seed, e). */
  seed: number;
  /** Shuffle each epoch. Default true; false keeps the input order. */
  shuffle?: boolean;
  /** Drop the last, partly filled batch of each epoch instead of padding it with empty rows. Default false. */
  dropLast?: boolean;
}

/** A position in the stream of batches: batch `index` of epoch `epoch`. */
export interface BatchPosition {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch within the epoch. */
  index: number;
}

/**
 * Cuts tokenised examples into fixed (B,T) batches. Every batch is a pure function of
 * (examples, options, epoch, index), so a resumed run can start at any position and see exactly the
 * batches an uninterrupted one would.
 *
 * @example
 * ```ts
 * import { Batcher } from "../mod.ts";
 * const examples = [
 *   { ids: [5, 6, 7], labels: [-100, 6, 7], truncated: false },
 *   { ids: [8, 9], labels: [-100, 9], truncated: false },
 *   { ids: [1, 2], labels: [-100, 2], truncated: false },
 * ];
 * const batcher = new Batcher(examples, { batchSize: 2, seqLen: 4, padId: 0, seed: 1 });
 * const epoch = [...batcher.epoch(0)];
 * if (epoch.length !== 2 || epoch[1].rows !== 1) throw new Error("expected a padded last batch");
 * ```
 */
export class Batcher {
  readonly #examples: readonly TokenizedExample[];
  readonly #opts: Required<BatcherOptions>;

  /** A batcher over `examples`; throws if an example is longer than `seqLen` or options are bad. */
  constructor(examples: readonly TokenizedExample[], options: BatcherOptions) {
    const opts = { shuffle: true, dropLast: false, ...options };
    for (const key of ["batchSize", "seqLen"] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) {
        throw new RangeError(`Cannot batch: ${key} must be a positive integer, got ${opts[key]}`);
      }
    }
    if (!Number.isInteger(opts.padId) || opts.padId < 0) {
      throw new RangeError(`Cannot batch: padId must be a non-negative integer, got ${opts.padId}`);
    }
    if (examples.length === 0) throw new RangeError("Cannot batch: there are no examples");
    if (opts.dropLast && examples.length < opts.batchSize) {
      throw new RangeError(
        `Cannot batch: dropLast with ${examples.length} examples and batchSize ${opts.batchSize} leaves no batch`,
      );
    }
    examples.forEach((e, i) => {
      if (e.ids.length > opts.seqLen || e.labels.length !== e.ids.length) {
        throw new RangeError(
          `Cannot batch example #${i}: ${e.ids.length} ids and ${e.labels.length} labels ` +
            `(need equal lengths, at most seqLen ${opts.seqLen})`,
        );
      }
    });
    this.#examples = examples;
    this.#opts = opts;
  }

  /** Batches in one epoch. */
  get batchesPerEpoch(): number {
    const n = this.#examples.length, b = this.#opts.batchSize;
    return this.#opts.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** The order in which epoch `epoch` visits the examples (a permutation of their indices). */
  order(epoch: number): number[] {
    const order = Array.from(this.#examples, (_, i) => i);
    if (!this.#opts.shuffle) return order;
    return new Rng(deriveSeed(this.#opts.seed, `epoch ${epoch}`)).shuffle(order);
  }

  /** Batch `index` of epoch `epoch`. */
  batch(epoch: number, index: number): TokenBatch {
    this.#checkPosition({ epoch, index });
    const B = this.#opts.batchSize;
    return this.#assemble(this.order(epoch).slice(index * B, (index + 1) * B));
  }

  /** The batches of epoch `epoch`, in order. */
  *epoch(epoch: number): Generator<TokenBatch> {
    const order = this.order(epoch), B = this.#opts.batchSize;
    for (let i = 0; i < this.batchesPerEpoch; i++) {
      yield this.#assemble(order.slice(i * B, (i + 1) * B));
    }
  }

  /** Batches forever, epoch after epoch, from `start` (default the beginning), with their positions. */
  *stream(start: BatchPosition = { epoch: 0, index: 0 }): Generator<TokenBatch & BatchPosition> {
    this.#checkPosition(start);
    let { epoch, index } = start;
    const B = this.#opts.batchSize;
    for (;;) {
      const order = this.order(epoch);
      for (; index < this.batchesPerEpoch; index++) {
        yield { ...this.#assemble(order.slice(index * B, (index + 1) * B)), epoch, index };
      }
      epoch++;
      index = 0;
    }
  }

  #checkPosition({ epoch, index }: BatchPosition): void {
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(`Cannot batch: epoch must be a non-negative integer, got ${epoch}`);
    }
    if (!Number.isInteger(index) || index < 0 || index >= this.batchesPerEpoch) {
      throw new RangeError(
        `Cannot batch: index ${index} is outside 0..${this.batchesPerEpoch - 1}`,
      );
    }
  }

  #assemble(indices: number[]): TokenBatch {
    const { batchSize: B, seqLen: T, padId } = this.#opts;
    const ids = new Int32Array(B * T).fill(padId);
    const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
    let tokens = 0, targets = 0;
    indices.forEach((ex, row) => {
      const e = this.#examples[ex];
      ids.set(e.ids, row * T);
      labels.set(e.labels, row * T);
      tokens += e.ids.length;
      targets += countScoredLabels(e.labels, e.labels.length, PLAIN_SCORING);
    });
    return { ids, labels, batchSize: B, seqLen: T, rows: indices.length, indices, tokens, targets };
  }
}
