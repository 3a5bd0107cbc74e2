/**
 * Text generation from a {@linkcode GPT}: greedy decoding or sampling (temperature, top-k, top-p),
 * stop sequences, an end-of-text id and a token budget, for a batch of prompts of different lengths,
 * with a KV cache.
 *
 * With the cache (the default), a prefill pass runs the model's own forward over the prompts,
 * right-padded to the longest (causal attention makes the padding invisible to the real positions),
 * and keeps every layer's keys and values; each later step runs every block on just the B new
 * positions, through the modules' `forward` (so PEFT wrappers such as LoRA keep working), attends
 * the new queries to the cache ({@linkcode DecodeAttention}) and reads the new logits back: one GPU
 * wait per token. `cache: false` is the reference path: the whole forward over every sequence so
 * far, each step.
 *
 * Choices (documented where Hugging Face differs or leaves them open):
 * - Matched stop sequences are removed from the output, as are end-of-text ids (OpenAI's `stop`;
 *   Hugging Face's `stop_strings` keep the match in `sequences`).
 * - A string stop sequence is matched in the decoded text of the generated tokens (not the prompt).
 *   `text` is cut exactly where the match starts; `ids` keep the tokens whose text lies wholly
 *   before it, so a token that straddles the start of the match is dropped from `ids` while its
 *   leading characters stay in `text`.
 * - Token-id stop sequences are matched against the generated ids only.
 * - Sampling applies temperature, then top-k (keeping ties with the k-th logit), then top-p
 *   (keeping the most likely tokens until their probability reaches p, at least one), in Hugging
 *   Face's order. Each prompt has its own random stream (seeded from `seed` and its index), so a
 *   row's tokens do not depend on when the other rows finish.
 * - A prompt must leave room for `maxNewTokens`: longer than `n_positions − maxNewTokens` (minus
 *   any virtual tokens) is an error, or, with `truncate: "left"`, loses its oldest tokens.
 *
 * @module
 */

import type { Batch } from "../runtime/gpu.ts";
import { counterHash, Rng } from "../runtime/rng.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { Activations } from "./activations.ts";
import type { KvCache } from "./context.ts";
import type { Decoder } from "./decoder.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** How the next token is chosen from the logits. */
export interface SamplingOptions {
  /** Softmax temperature; 0 takes the most likely token (greedy). Default 0. */
  temperature?: number;
  /** Keep the k most likely tokens (and ties with the k-th); 0 keeps all. Default 0. */
  topK?: number;
  /** Nucleus: keep the most likely tokens until their probability reaches p; 1 keeps all. Default 1. */
  topP?: number;
}

/** Options of {@linkcode generate}. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens generated per prompt (stop sequences and end-of-text may end a row sooner). Default 32. */
  maxNewTokens?: number;
  /** Seed of the sampling (ignored when greedy). Default 0. */
  seed?: number;
  /**
   * End-of-text id, or ids (e.g. EOS and "<|im_end|>"): a row ends when it generates one (it is
   * not included in the output). Default: the tokenizer's `stopIds`, else its `eosId`, if any;
   * `null` turns it off.
   */
  eosId?: number | readonly number[] | null;
  /** Stop sequences: token ids, or strings (these need `tokenizer`). A match ends the row and is removed. */
  stop?: readonly (string | readonly number[])[];
  /** Decodes the output into `text` and matches string stop sequences. */
  tokenizer?: Tokenizer;
  /** Use the KV cache (default true); false reruns the whole forward each step (the reference). */
  cache?: boolean;
  /** A prompt too long for `maxNewTokens` more tokens: `"error"` (default) or drop its oldest tokens (`"left"`). */
  truncate?: "error" | "left";
  /** Called with the raw logits (V) that choose token `step` of each unfinished row (for tests and inspection). */
  onLogits?: (step: number, row: number, logits: Float32Array) => void;
}

/** Why a row ended. */
export type FinishReason = "eos" | "stop" | "length";

/** What {@linkcode generate} returns, one entry per prompt. */
export interface GenerateResult {
  /** Generated token ids (without the prompt, the end-of-text id or a matched stop sequence). */
  ids: number[][];
  /** Decoded text of each row (with a `tokenizer`), cut where a string stop sequence starts. */
  text?: string[];
  /** Why each row ended. */
  finishReasons: FinishReason[];
  /** Prompt tokens used per row (fewer than given after `truncate: "left"`). */
  promptLengths: number[];
}

/**
 * Picks the next token from one row of logits (V): the first most likely token when greedy,
 * otherwise a draw from the softmax of `logits / temperature` restricted by top-k, then top-p.
 * Throws on a NaN or +∞ logit.
 *
 * @example
 * ```ts
 * import { Rng, sampleToken } from "../mod.ts";
 * const logits = [0.5, 3, 1, 3];
 * if (sampleToken(logits, {}, new Rng(0)) !== 1) throw new Error("greedy takes the first maximum");
 * const t = sampleToken(logits, { temperature: 1, topK: 2 }, new Rng(7));
 * if (t !== 1 && t !== 3) throw new Error("top-k=2 keeps the two largest logits");
 * ```
 */
export function sampleToken(
  logits: ArrayLike<number>,
  options: SamplingOptions,
  rng: Rng,
): number {
  const V = logits.length;
  let best = 0;
  for (let i = 0; i < V; i++) {
    const z = logits[i];
    if (Number.isNaN(z) || z === Infinity) {
      throw new RangeError(`Cannot sample: logit ${i} is ${z}`);
    }
    if (z > logits[best]) best = i;
  }
  const temperature = options.temperature ?? 0, k = options.topK ?? 0, p = options.topP ?? 1;
  if (
    !(temperature >= 0 && temperature < Infinity && Number.isInteger(k) && k >= 0 && p > 0 &&
      p <= 1)
  ) {
    throw new RangeError(
      `Cannot sample: need temperature ≥ 0, topK an integer ≥ 0 and topP in (0, 1]; got ${temperature}, ${k}, ${p}`,
    );
  }
  if (temperature === 0) return best;
  let keep: number[] = [];
  if (k > 0 && k < V) {
    const sorted = Float64Array.from(logits).sort();
    const kth = sorted[V - k];
    for (let i = 0; i < V; i++) if (logits[i] >= kth) keep.push(i);
  } else {
    keep = Array.from({ length: V }, (_, i) => i);
  }
  const top = logits[best];
  // Unnormalised probabilities of the kept tokens, by id.
  const prob = new Float64Array(V);
  let total = 0;
  for (const i of keep) total += prob[i] = Math.exp((logits[i] - top) / temperature);
  if (p < 1) {
    const order = keep.slice().sort((a, b) => prob[b] - prob[a] || a - b);
    let before = 0, n = 0;
    while (n < order.length && (n === 0 || before < p)) before += prob[order[n++]] / total;
    keep = order.slice(0, n).sort((a, b) => a - b);
    total = 0;
    for (const i of keep) total += prob[i];
  }
  const u = rng.float() * total;
  let acc = 0;
  for (const i of keep) {
    acc += prob[i];
    if (u < acc) return i;
  }
  return keep[keep.length - 1];
}

/** Produces the logits (B·V) that choose each row's next token. */
interface Stepper {
  /** Logits after the prompts. */
  first(): Promise<Float32Array>;
  /** Logits after feeding each unfinished row its last token. */
  next(rows: readonly Row[]): Promise<Float32Array>;
  release(): void;
}

/** One prompt's state. */
interface Row {
  prompt: number[];
  /** Every sampled token, in order (what the model has seen after the prompt). */
  sampled: number[];
  /** The output: `sampled` less end-of-text and matched stop sequences. */
  out: number[];
  text?: string;
  done: FinishReason | null;
}

/**
 * Generates a continuation of each prompt (token ids; prompts may differ in length).
 *
 * @example
 * ```ts
 * import { ByteTokenizer, generate, GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const tokenizer = new ByteTokenizer();
 * const prompts = ["Hello", "Hi"].map((p) => tokenizer.encode(p));
 * const out = await generate(model, prompts, { maxNewTokens: 4, tokenizer });
 * if (out.ids[0].length !== 4 || out.finishReasons[1] !== "length") throw new Error("generate failed");
 * console.log(out.text);
 * model.release();
 * ```
 */
export async function generate(
  model: Decoder,
  promptIds: readonly (readonly number[])[],
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const V = model.shape.V;
  const o = checkOptions(options, V);
  const nVirtual = model.virtual?.n ?? 0;
  const room = model.shape.maxPositions - nVirtual - o.maxNewTokens;
  if (!Array.isArray(promptIds) || promptIds.length === 0) {
    throw new RangeError("Cannot generate: no prompts");
  }
  if (room < 1) {
    const virtual = nVirtual ? ` and ${nVirtual} virtual tokens` : "";
    throw new RangeError(
      `Cannot generate: maxNewTokens=${o.maxNewTokens}${virtual} leaves no room for a prompt in the model's ${model.shape.maxPositions} positions`,
    );
  }
  const rows: Row[] = promptIds.map((p, b) => {
    if (!Array.isArray(p) || p.length === 0) {
      throw new RangeError(`Cannot generate: prompt ${b} is empty`);
    }
    p.forEach((id, i) => {
      if (!(Number.isInteger(id) && id >= 0 && id < V)) {
        throw new RangeError(
          `Cannot generate: prompt ${b} token ${i} is ${id}, outside the vocabulary 0..${V - 1}`,
        );
      }
    });
    let prompt = p.slice();
    if (prompt.length > room) {
      const virtual = nVirtual ? ` and ${nVirtual} virtual tokens` : "";
      if (o.truncate === "error") {
        throw new RangeError(
          `Cannot generate: prompt ${b} has ${prompt.length} tokens; with maxNewTokens=${o.maxNewTokens}${virtual} ` +
            `it must have at most ${room} (the model takes ${model.shape.maxPositions} positions); pass truncate: "left" to drop its oldest tokens`,
        );
      }
      prompt = prompt.slice(prompt.length - room);
    }
    return { prompt, sampled: [], out: [], done: null };
  });
  const result = (): GenerateResult => ({
    ids: rows.map((r) => r.out),
    ...(o.tokenizer ? { text: rows.map((r) => r.text ?? o.tokenizer!.decode(r.out)) } : {}),
    finishReasons: rows.map((r) => r.done ?? "length"),
    promptLengths: rows.map((r) => r.prompt.length),
  });
  if (o.maxNewTokens === 0) return result();

  const rngs = rows.map((_, b) => new Rng(counterHash(o.seed, b)));
  const stepper = options.cache === false
    ? new FullStepper(model, rows)
    : CachedStepper.create(model, rows, o.maxNewTokens);
  try {
    let logits = await stepper.first();
    for (let step = 0;; step++) {
      rows.forEach((r, b) => {
        if (r.done) return;
        const row = logits.subarray(b * V, (b + 1) * V);
        o.onLogits?.(step, b, row);
        const token = sampleToken(row, o, rngs[b]);
        r.sampled.push(token);
        finish(r, token, o);
      });
      if (rows.every((r) => r.done)) break;
      logits = await stepper.next(rows);
    }
  } finally {
    stepper.release();
  }
  return result();
}

interface Checked extends Required<SamplingOptions> {
  maxNewTokens: number;
  seed: number;
  eosIds: readonly number[];
  stopIds: number[][];
  stopStrings: string[];
  tokenizer: Tokenizer | undefined;
  truncate: "error" | "left";
  onLogits: GenerateOptions["onLogits"];
}

function checkOptions(options: GenerateOptions, V: number): Checked {
  const bad = (what: string): never => {
    throw new RangeError(`Cannot generate: ${what}`);
  };
  const maxNewTokens = options.maxNewTokens ?? 32;
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 0)) {
    bad(`maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  }
  const temperature = options.temperature ?? 0;
  if (!(Number.isFinite(temperature) && temperature >= 0)) {
    bad(`temperature must be a finite number ≥ 0, got ${temperature}`);
  }
  const topK = options.topK ?? 0;
  if (!(Number.isInteger(topK) && topK >= 0)) bad(`topK must be an integer ≥ 0, got ${topK}`);
  const topP = options.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) bad(`topP must be in (0, 1], got ${topP}`);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) bad(`seed must be an integer, got ${seed}`);
  const tokenizer = options.tokenizer;
  const eos = options.eosId === undefined
    ? tokenizer?.stopIds ?? tokenizer?.eosId ?? null
    : options.eosId;
  const eosIds = eos === null ? [] : typeof eos === "number" ? [eos] : [...eos];
  for (const id of eosIds) {
    if (!(Number.isInteger(id) && id >= 0 && id < V)) {
      bad(`eosId ${id} is outside the vocabulary 0..${V - 1}`);
    }
  }
  const stopIds: number[][] = [], stopStrings: string[] = [];
  for (const s of options.stop ?? []) {
    if (typeof s === "string") {
      if (s.length === 0) bad("a stop string is empty");
      if (!tokenizer) bad(`stop string ${JSON.stringify(s)} needs a tokenizer`);
      stopStrings.push(s);
    } else {
      if (!Array.isArray(s) || s.length === 0) bad("a stop sequence of token ids is empty");
      for (const id of s) {
        if (!(Number.isInteger(id) && id >= 0 && id < V)) {
          bad(`stop sequence [${s.join(", ")}] holds ${id}, outside the vocabulary 0..${V - 1}`);
        }
      }
      stopIds.push(s.slice());
    }
  }
  const truncate = options.truncate ?? "error";
  if (truncate !== "error" && truncate !== "left") {
    bad(`truncate must be "error" or "left", got ${JSON.stringify(truncate)}`);
  }
  return {
    maxNewTokens,
    temperature,
    topK,
    topP,
    seed,
    eosIds,
    stopIds,
    stopStrings,
    tokenizer,
    truncate,
    onLogits: options.onLogits,
  };
}

/** Records `token` (just sampled) in the row's output and decides whether the row is done. */
function finish(r: Row, token: number, o: Checked): void {
  if (o.eosIds.includes(token)) {
    r.done = "eos";
    return;
  }
  r.out.push(token);
  for (const s of o.stopIds) {
    if (r.out.length >= s.length && s.every((id, i) => r.out[r.out.length - s.length + i] === id)) {
      r.out.length -= s.length;
      r.done = "stop";
      return;
    }
  }
  if (o.stopStrings.length > 0) {
    const text = o.tokenizer!.decode(r.out);
    let at = -1;
    for (const s of o.stopStrings) {
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      let keep = r.out.length;
      while (keep > 0 && o.tokenizer!.decode(r.out.slice(0, keep)).length > at) keep--;
      r.out.length = keep;
      r.text = text.slice(0, at);
      r.done = "stop";
      return;
    }
  }
  if (r.sampled.length >= o.maxNewTokens) r.done = "length";
}

/**
 * The model's full forward over every row (right-padded with id 0): the uncached path and the
 * prefill. Only the logits that pick the next tokens are computed, (B,V) into `logits`: row b's
 * from its last real position (after the virtual tokens).
 */
function fullForward(
  model: Decoder,
  seqs: readonly number[][],
  logits: Tensor,
): { acts: Activations; batch: Batch } {
  const B = seqs.length, T = Math.max(...seqs.map((s) => s.length));
  const acts = model.activations(B, T);
  const ids = new Array<number>(B * T).fill(0);
  seqs.forEach((s, b) => s.forEach((id, t) => ids[b * T + t] = id));
  const batch = model.gpu.batch();
  const rows = seqs.map((s, b) => b * acts.T + acts.nVirtual + s.length - 1);
  model.forward(batch, acts, { ids }, { logitRows: { rows, out: logits } });
  return { acts, batch };
}

/** The reference: the whole forward over each sequence so far, every step. */
class FullStepper implements Stepper {
  readonly #model: Decoder;
  readonly #rows: readonly Row[];
  readonly #logits: Tensor;

  constructor(model: Decoder, rows: readonly Row[]) {
    this.#model = model;
    this.#rows = rows;
    this.#logits = model.gpu.tensor([rows.length, model.shape.V], undefined, "logits");
  }

  first(): Promise<Float32Array> {
    return this.#run();
  }

  next(): Promise<Float32Array> {
    return this.#run();
  }

  async #run(): Promise<Float32Array> {
    const { acts, batch } = fullForward(
      this.#model,
      this.#rows.map((r) => [...r.prompt, ...r.sampled]),
      this.#logits,
    );
    try {
      await batch.submit();
      const [logits] = await this.#model.gpu.read([this.#logits]);
      return logits;
    } finally {
      acts.release();
    }
  }

  release(): void {
    this.#logits.release();
  }
}

/**
 * The KV-cache path: a prefill over the prompts that keeps each layer's keys and values, then one
 * position per row and step ({@linkcode Decoder.decodeStep}).
 */
class CachedStepper implements Stepper {
  readonly #model: Decoder;
  readonly #rows: readonly Row[];
  /** Activations of one new position per row (B,1). */
  readonly #acts: Activations;
  readonly #cache: KvCache;

  private constructor(model: Decoder, rows: readonly Row[], S: number) {
    const gpu = model.gpu, B = rows.length, { Hkv, d } = model.shape;
    this.#model = model;
    this.#rows = rows;
    this.#acts = new Activations(gpu, model.shape, B, 1);
    this.#cache = {
      layers: model.blocks.map((_, l) => gpu.tensor([B, S, 2 * Hkv * d], undefined, `h.${l}.kv`)),
      start: gpu.tensor([B], undefined, "start"),
      hostStart: new Uint32Array(B),
      S,
    };
  }

  /** Allocates the cache for the prompts plus `maxNewTokens − 1` fed-back tokens. */
  static create(model: Decoder, rows: readonly Row[], maxNewTokens: number): CachedStepper {
    const n = model.virtual?.n ?? 0;
    const S = n + Math.max(...rows.map((r) => r.prompt.length)) + maxNewTokens - 1;
    return new CachedStepper(model, rows, S);
  }

  async first(): Promise<Float32Array> {
    const model = this.#model, B = this.#rows.length, { H, Hkv, d } = model.shape;
    const cache = this.#cache;
    const { acts, batch } = fullForward(
      model,
      this.#rows.map((r) => r.prompt),
      this.#acts.logits,
    );
    try {
      cache.hostStart.fill(0);
      batch.write(cache.start, cache.hostStart);
      model.blocks.forEach((_, l) => {
        model.kernels.decode.append(
          batch,
          acts.blocks[l].qkv,
          cache.layers[l],
          cache.start,
          cache.hostStart,
          B,
          acts.T,
          cache.S,
          H * d,
          H,
          Hkv,
        );
      });
      await batch.submit();
      const [logits] = await model.gpu.read([this.#acts.logits]);
      return logits;
    } finally {
      acts.release();
    }
  }

  async next(rows: readonly Row[]): Promise<Float32Array> {
    const model = this.#model, cache = this.#cache;
    const n = model.virtual?.n ?? 0;
    const batch = model.gpu.batch();
    const tokens = rows.map((r, b) => {
      // A finished row still runs (its output is ignored): token 0 at its last prompt position.
      cache.hostStart[b] = n + r.prompt.length - 1 + (r.done ? 0 : r.sampled.length);
      return r.done ? 0 : r.sampled[r.sampled.length - 1];
    });
    batch.write(cache.start, cache.hostStart);
    model.decodeStep(batch, this.#acts, tokens, cache);
    await batch.submit();
    const [logits] = await model.gpu.read([this.#acts.logits]);
    return logits;
  }

  release(): void {
    this.#acts.release();
    for (const t of [...this.#cache.layers, this.#cache.start]) t.release();
  }
}
