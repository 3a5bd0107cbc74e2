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
 * A chat, when the tokenizer has a chat template (a model's own, e.g. SmolLM2's ChatML), is
 * rendered by the template instead and encoded as one text, exactly what transformers'
 * `apply_chat_template(tokenize=True)` gives and what the model sees at inference. Trained are
 * the tokens the model must produce after each assistant turn's generation prompt: the content of
 * the assistant message, as the template writes it, and the end-of-turn token that closes it
 * (e.g. `<|im_end|>`, `<|eot_id|>`, `</s>`: the first of the tokenizer's `stopIds`, or its
 * `eosId`). Everything else (system and user turns, role headers, what follows the end-of-turn
 * token) is masked; the ids stop at the last end-of-turn token, as nothing after it is trained,
 * and no EOS is appended (`addEos` applies to the plain rendering only).
 *
 * The boundaries come from rendering prefixes, not from searching the text: for assistant
 * message i, the template renders messages 0..i−1 with the generation prompt (the text before
 * the answer) and messages 0..i (the text through it), and each is encoded. This works for any
 * template, whatever it does to the content (Llama-3's trims it) or around it, and it checks the
 * two properties the labels rely on, failing with a message that says which one broke: each
 * rendering is a prefix of the whole chat's text (a template that renders a turn differently
 * once later turns follow is not prefix-stable), and the ids of each prefix are a prefix of the
 * whole chat's ids (a tokenizer that merges across the boundary, e.g. a newline that ends the
 * assistant header with one that starts the answer, has no token boundary there). Marking the
 * content in the text instead would need markers the template cannot alter and the tokenizer
 * cannot merge with, and would still need the second check.
 *
 * @module
 */

import { renderSegments } from "./chat.ts";
import { DataError, type DataIssue, formatLocation } from "./errors.ts";
import type { ChatExample, ChatMessage, TextExample } from "./examples.ts";
import { isChat } from "./examples.ts";

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
  /** The ids that end a turn (EOS, "<|im_end|>", …); with a chat template, they close assistant turns. */
  readonly stopIds?: readonly number[];
  /** The model's chat template: when present, chats are rendered with it (see the module doc). */
  readonly chatTemplate?: ChatTemplateLike;
  /** Text to token ids. */
  encode(text: string): number[];
  /** Token ids to text. */
  decode(ids: readonly number[]): string;
}

/**
 * What the data layer needs of a chat template: structurally the models' `ChatTemplate`.
 *
 * @example
 * ```ts
 * import type { ChatTemplateLike } from "../mod.ts";
 * const chatml: ChatTemplateLike = {
 *   render: (messages, options = {}) =>
 *     messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("") +
 *     (options.addGenerationPrompt ? "<|im_start|>assistant\n" : ""),
 * };
 * const text = chatml.render([{ role: "user", content: "hi" }], { addGenerationPrompt: true });
 * if (text !== "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n") throw new Error(text);
 * ```
 */
export interface ChatTemplateLike {
  /** The text of `messages`, ending with the assistant's header when `addGenerationPrompt`. */
  render(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
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
  /**
   * Append the tokenizer's EOS after the completion. Default: true when it has one. Not used for
   * chats rendered by a chat template, whose own end-of-turn token ends each assistant turn.
   */
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
  const parts = isChat(example) && tokenizer.chatTemplate
    ? templateParts(example, tokenizer, tokenizer.chatTemplate)
    : plainParts(example, tokenizer, opts);
  if (typeof parts === "string") return parts;
  let { contextIds, contextLabels, completion } = parts;
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

/**
 * An example split for truncation: the context (ids and labels; earlier assistant turns keep
 * their labels) and the completion, every token of which is trained.
 */
interface Parts {
  contextIds: number[];
  contextLabels: number[];
  completion: number[];
}

/** The plain rendering: each segment encoded on its own, then EOS. */
function plainParts(
  example: TextExample,
  tokenizer: TokenizerLike,
  opts: CheckedOptions,
): Parts | string {
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
  return { contextIds, contextLabels, completion };
}

/**
 * A chat rendered by the tokenizer's chat template, encoded as one text; the trained spans come
 * from rendering and encoding prefixes (see the module doc).
 */
function templateParts(
  chat: ChatExample,
  tokenizer: TokenizerLike,
  template: ChatTemplateLike,
): Parts | string {
  const messages = chat.messages;
  const last = messages.length - 1;
  if (last < 0 || messages[last].role !== "assistant") {
    return "its last message must be from the assistant (only assistant messages are trained)";
  }
  const stops = new Set(
    tokenizer.stopIds ?? (tokenizer.eosId === undefined ? [] : [tokenizer.eosId]),
  );
  if (stops.size === 0) {
    return `tokenizer "${tokenizer.name}" has a chat template but no end-of-turn id ` +
      "(stopIds or eosId) to close assistant turns with";
  }
  // A template may raise for a chat it cannot render (e.g. roles that do not alternate).
  let full: string, turns: { i: number; prompt: string; turn: string }[];
  try {
    full = template.render(messages);
    turns = messages.flatMap((m, i) =>
      m.role === "assistant"
        ? [{
          i,
          prompt: template.render(messages.slice(0, i), { addGenerationPrompt: true }),
          turn: template.render(messages.slice(0, i + 1)),
        }]
        : []
    );
  } catch (e) {
    return (e as Error).message;
  }
  const ids = tokenizer.encode(full);
  const labels = ids.map(() => IGNORE_INDEX);
  let start = 0, end = 0;
  for (const { i, prompt, turn } of turns) {
    const before =
      `the messages before assistant message ${i}, rendered with the generation prompt`;
    const through = `the messages through assistant message ${i}`;
    const unstable = (what: string, text: string) =>
      `the chat template is not prefix-stable: ${what} (ending ${tail(text)}) are not the start ` +
      "of the whole chat's text, so the assistant's tokens cannot be located in it";
    if (!full.startsWith(prompt)) return unstable(before, prompt);
    if (!full.startsWith(turn)) return unstable(through, turn);
    if (prompt.length > turn.length) {
      return `the chat template's generation prompt runs past assistant message ${i}: ${before} ` +
        `(ending ${tail(prompt)}) are longer than ${through}`;
    }
    const promptIds = tokenizer.encode(prompt);
    if (!isPrefix(promptIds, ids)) {
      return `the tokens of the text before assistant message ${i} (ending ${tail(prompt)}) ` +
        "are not a prefix of the whole chat's tokens: the tokenizer merges across the start of " +
        `the answer ${JSON.stringify(turn.slice(prompt.length, prompt.length + 20))}, so no ` +
        "token boundary separates prompt from answer";
    }
    const turnIds = tokenizer.encode(turn);
    let close = promptIds.length;
    while (close < turnIds.length && !stops.has(turnIds[close])) close++;
    if (close === turnIds.length) {
      return `the chat template closes assistant message ${i} with no end-of-turn token ` +
        `(ids ${[...stops].join(", ")}) in ${JSON.stringify(turn.slice(prompt.length))}`;
    }
    if (!isPrefix(turnIds.slice(0, close + 1), ids)) {
      return `the tokens of assistant message ${i} through its end-of-turn token are not a ` +
        "prefix of the whole chat's tokens: the tokenizer merges across the end of the turn";
    }
    start = promptIds.length;
    end = close + 1;
    for (let t = start; t < end; t++) labels[t] = ids[t];
  }
  // The last assistant turn is the completion; tokens after its end-of-turn are dropped.
  return {
    contextIds: ids.slice(0, start),
    contextLabels: labels.slice(0, start),
    completion: ids.slice(start, end),
  };
}

function isPrefix(prefix: readonly number[], ids: readonly number[]): boolean {
  return prefix.length <= ids.length && prefix.every((id, t) => ids[t] === id);
}

/** The end of a text, for messages. */
function tail(text: string): string {
  return JSON.stringify(text.length > 40 ? "…" + text.slice(-40) : text);
}

function where(example: TextExample, index: number): string {
  return example.source ? formatLocation(example.source) : `example #${index}`;
}
