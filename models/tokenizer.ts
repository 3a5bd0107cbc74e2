/**
 * Tokenizers behind one interface: a byte-level tokenizer for the small models (one id per byte),
 * Hugging Face `tokenizer.json` files through `@huggingface/tokenizers`, and GPT-2's own BPE,
 * offline, through `js-tiktoken` (its GPT-2 ranks ship in the package).
 *
 * `tokenizer.json` covers both kinds of BPE the Llama family uses: byte-level BPE (GPT-2, SmolLM2,
 * Qwen2, Llama-3: every byte is a symbol, a regex splits words first) and sentencepiece-style BPE
 * with byte fallback (Llama-2, TinyLlama: spaces become "▁", prepended to the text by a
 * normalizer or a Metaspace pre-tokenizer, and a character missing from the vocabulary becomes
 * its UTF-8 bytes as tokens "<0xNN>"). Added tokens ("<|im_start|>", "</s>", …) are matched in the
 * text before anything else, so each is one id and is never split.
 *
 * Text is encoded as UTF-8. A lone UTF-16 surrogate in the input, which UTF-8 cannot represent,
 * is encoded as U+FFFD (TextEncoder's rule, used by all three), so it decodes as "\uFFFD".
 * Decoding ids whose bytes are not valid UTF-8 (e.g. a multi-byte character cut in half) gives
 * U+FFFD replacement characters, as `TextDecoder` does, never an error.
 *
 * @module
 */

import { gpt2Ranks, HFTokenizer, Tiktoken } from "../deps.ts";
import { ChatTemplate, specialTokenContent } from "./chat_template.ts";
import { files } from "../io/files.ts";

/** Text ↔ token ids. */
export interface Tokenizer {
  /** A short description, e.g. "bytes" or "tiktoken:gpt2". */
  readonly name: string;
  /** Number of ids: every id returned by `encode` is below it. */
  readonly vocabSize: number;
  /** End-of-text id, when the tokenizer has one. */
  readonly eosId?: number;
  /** Beginning-of-text id, when the tokenizer has one. */
  readonly bosId?: number;
  /**
   * Every id that ends a model's turn, for generation to stop at: EOS and end-of-turn tokens
   * such as "<|im_end|>" or "<|eot_id|>". When absent, `eosId` alone ends a turn.
   */
  readonly stopIds?: readonly number[];
  /** The model's chat template, when it has one. */
  readonly chatTemplate?: ChatTemplate;
  /** Token ids of `text`. */
  encode(text: string): number[];
  /** Text of `ids`; invalid UTF-8 becomes U+FFFD. Throws on an id outside the vocabulary. */
  decode(ids: readonly number[]): string;
}

/**
 * Tokens that end a turn in the chat templates of well-known models: ChatML's "<|im_end|>"
 * (SmolLM2, Qwen2), Llama-3's "<|eot_id|>" and "<|eom_id|>", Phi-3's "<|end|>", Gemma's
 * "<end_of_turn>". One of them is a stop id when the model's chat template writes it.
 */
const END_OF_TURN_TOKENS = ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"];

// The text of ByteTokenizer's end-of-text token (GPT-2's name for it).
const BYTE_END_OF_TEXT = "<|endoftext|>";

/**
 * One token per UTF-8 byte: ids 0–255, vocabulary 256, for the small byte-level models. With
 * `endOfText`, id 256 is an end-of-text token `<|endoftext|>` that no text encodes to (vocabulary
 * 257, as GPT-2's last id is its `<|endoftext|>`), which {@linkcode ByteTokenizer.huggingFaceFiles}
 * exports as a Hugging Face tokenizer.
 *
 * @example
 * ```ts
 * import { ByteTokenizer } from "../mod.ts";
 * const tok = new ByteTokenizer();
 * const ids = tok.encode("hé"); // [104, 195, 169]
 * if (ids.length !== 3 || tok.decode(ids) !== "hé") throw new Error("byte round trip failed");
 * const eot = new ByteTokenizer({ endOfText: true });
 * if (eot.vocabSize !== 257 || eot.decode([104, eot.eosId!]) !== "h<|endoftext|>") throw new Error();
 * ```
 */
export class ByteTokenizer implements Tokenizer {
  /** "bytes", or "bytes+endoftext" with the end-of-text token. */
  readonly name: string;
  /** 256, or 257 with the end-of-text token. */
  readonly vocabSize: number;
  /** The end-of-text id, if any (see the constructor). */
  readonly eosId?: number;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder("utf-8");

  /**
   * A byte tokenizer, optionally with an end-of-text id.
   *
   * @param options.endOfText add id 256, `<|endoftext|>`, a token of its own that no text
   *   encodes to (vocabulary 257). The embedded base model (models/base) has it.
   * @param options.eosId instead, a byte to use as end-of-text id, e.g. 0 (NUL) or 255 (never
   *   part of UTF-8). It is still an ordinary byte: `encode` does not treat it specially.
   */
  constructor(options: { eosId?: number; endOfText?: boolean } = {}) {
    const eos = options.eosId;
    if (eos !== undefined && options.endOfText) {
      throw new Error(
        "Cannot create ByteTokenizer: give eosId (a byte) or endOfText (id 256), not both",
      );
    }
    if (eos !== undefined && !(Number.isInteger(eos) && eos >= 0 && eos < 256)) {
      throw new Error(`Cannot create ByteTokenizer: eosId must be a byte (0-255), got ${eos}`);
    }
    this.name = options.endOfText ? "bytes+endoftext" : "bytes";
    this.vocabSize = options.endOfText ? 257 : 256;
    if (options.endOfText) this.eosId = 256;
    else if (eos !== undefined) this.eosId = eos;
  }

  /** The UTF-8 bytes of `text` (never the end-of-text id 256). */
  encode(text: string): number[] {
    return Array.from(this.#encoder.encode(text));
  }

  /**
   * `ids` as UTF-8 bytes, decoded with replacement characters; id 256 is written
   * `<|endoftext|>` (special tokens are kept, as in {@linkcode HuggingFaceTokenizer.decode}).
   */
  decode(ids: readonly number[]): string {
    let text = "";
    let from = 0;
    for (let i = 0; i <= ids.length; i++) {
      if (i < ids.length) checkId(this, ids[i], i);
      if (i === ids.length || ids[i] === 256) {
        text += this.#decoder.decode(Uint8Array.from(ids.slice(from, i)));
        if (i < ids.length) text += BYTE_END_OF_TEXT;
        from = i + 1;
      }
    }
    return text;
  }

  /**
   * The same tokenizer as Hugging Face files: `tokenizer.json` (a byte-level BPE with no merges,
   * so every byte is its own id, and `<|endoftext|>` as a special added token) and
   * `tokenizer_config.json` (its bos/eos/pad token). transformers' `AutoTokenizer` and
   * {@linkcode HuggingFaceTokenizer} load them and encode exactly as this tokenizer does.
   * Only for the end-of-text variant: a bare byte vocabulary has no special token to declare.
   *
   * @example
   * ```ts
   * import { ByteTokenizer, HuggingFaceTokenizer } from "../mod.ts";
   * const bytes = new ByteTokenizer({ endOfText: true });
   * const files = bytes.huggingFaceFiles();
   * const hf = HuggingFaceTokenizer.fromJSON(files.tokenizer, files.tokenizerConfig);
   * if (hf.encode("hé!").join() !== bytes.encode("hé!").join() || hf.eosId !== 256) {
   *   throw new Error("the exported tokenizer differs");
   * }
   * ```
   */
  huggingFaceFiles(): {
    tokenizer: Record<string, unknown>;
    tokenizerConfig: Record<string, unknown>;
  } {
    if (this.eosId !== 256) {
      throw new Error(
        "Cannot export ByteTokenizer to Hugging Face: only the endOfText variant (id 256) is exported",
      );
    }
    const vocab: Record<string, number> = {};
    byteLevelAlphabet().forEach((symbol, byte) => vocab[symbol] = byte);
    vocab[BYTE_END_OF_TEXT] = 256;
    const special = {
      id: 256,
      content: BYTE_END_OF_TEXT,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    };
    const tokenizer = {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [special],
      normalizer: null,
      // No regex split: with no merges it could not change the ids, and it costs time.
      pre_tokenizer: {
        type: "ByteLevel",
        add_prefix_space: false,
        trim_offsets: true,
        use_regex: false,
      },
      post_processor: null,
      decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: [],
      },
    };
    const tokenizerConfig = {
      tokenizer_class: "PreTrainedTokenizerFast",
      bos_token: BYTE_END_OF_TEXT,
      eos_token: BYTE_END_OF_TEXT,
      pad_token: BYTE_END_OF_TEXT,
      clean_up_tokenization_spaces: false,
      added_tokens_decoder: { "256": special },
    };
    return { tokenizer, tokenizerConfig };
  }
}

/**
 * A Hugging Face `tokenizer.json` (byte-level BPE such as GPT-2's, SmolLM2's, Qwen2's and
 * Llama-3's, or byte-fallback BPE such as Llama-2's and TinyLlama's), run by
 * `@huggingface/tokenizers`, with the special tokens and chat template of its
 * `tokenizer_config.json` and the end-of-turn ids of `generation_config.json`.
 *
 * `encode` adds no special tokens of its own (no BOS/EOS, whatever `add_bos_token` says: chat
 * templates write their own, and transformers' `apply_chat_template` encodes their text the same
 * way), but special tokens written in the text (e.g. "<|endoftext|>") map to their ids, as in
 * transformers. `decode` keeps special tokens and does not "clean up tokenization spaces", so
 * decoding inverts encoding; a sentencepiece-style decoder drops the one space its normalizer
 * put at the start of each piece of text (so text that follows a special token decodes with a
 * leading space, as in transformers).
 *
 * @example
 * ```ts
 * import { byteLevelAlphabet, HuggingFaceTokenizer } from "../mod.ts";
 * // A GPT-2-style byte-level BPE: the 256 byte symbols (id = byte) and one merge, "a" + "b".
 * const vocab: Record<string, number> = {};
 * byteLevelAlphabet().forEach((symbol, byte) => vocab[symbol] = byte);
 * vocab["ab"] = 256;
 * vocab["<|im_end|>"] = 257;
 * const tok = HuggingFaceTokenizer.fromJSON(
 *   {
 *     added_tokens: [{ id: 257, content: "<|im_end|>", special: true }],
 *     normalizer: null,
 *     pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
 *     post_processor: null,
 *     decoder: { type: "ByteLevel" },
 *     model: { type: "BPE", vocab, merges: ["a b"] },
 *   },
 *   { eos_token: "<|im_end|>" },
 * );
 * if (tok.encode("abc<|im_end|>").join() !== "256,99,257" || tok.decode([98, 97]) !== "ba") {
 *   throw new Error("bad BPE");
 * }
 * if (tok.eosId !== 257 || tok.stopIds.join() !== "257") throw new Error("bad special tokens");
 * ```
 */
export class HuggingFaceTokenizer implements Tokenizer {
  /** "hf:" and the model type, e.g. "hf:BPE". */
  readonly name: string;
  /** One more than the largest id in the vocabulary, added tokens included. */
  readonly vocabSize: number;
  /** The id of the config's `eos_token`, or of "<|endoftext|>" when the config names none. */
  readonly eosId?: number;
  /** The id of the config's `bos_token`. */
  readonly bosId?: number;
  /** The id of the config's `pad_token`. */
  readonly padId?: number;
  /**
   * The config's `add_bos_token` (default false): whether transformers prepends BOS to plain
   * text. `encode` never does; this is for callers that build inputs by hand.
   */
  readonly addBosToken: boolean;
  /** The config's `add_eos_token` (default false), like {@linkcode addBosToken}. */
  readonly addEosToken: boolean;
  /**
   * The ids that end a turn, in this order, without repeats: `eosId`, then
   * `generation_config.json`'s `eos_token_id` (an id or a list), then the end-of-turn tokens
   * ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>") that the chat
   * template writes.
   */
  readonly stopIds: readonly number[];
  /** The config's `chat_template`, when it has one. */
  readonly chatTemplate?: ChatTemplate;
  readonly #tok: HFTokenizer;

  private constructor(tok: HFTokenizer, name: string, fields: {
    vocabSize: number;
    eosId?: number;
    bosId?: number;
    padId?: number;
    addBosToken: boolean;
    addEosToken: boolean;
    stopIds: number[];
    chatTemplate?: ChatTemplate;
  }) {
    this.#tok = tok;
    this.name = name;
    this.vocabSize = fields.vocabSize;
    if (fields.eosId !== undefined) this.eosId = fields.eosId;
    if (fields.bosId !== undefined) this.bosId = fields.bosId;
    if (fields.padId !== undefined) this.padId = fields.padId;
    this.addBosToken = fields.addBosToken;
    this.addEosToken = fields.addEosToken;
    this.stopIds = fields.stopIds;
    if (fields.chatTemplate) this.chatTemplate = fields.chatTemplate;
  }

  /**
   * A tokenizer from a parsed `tokenizer.json` and, optionally, `tokenizer_config.json`
   * (`bos_token`, `eos_token`, `pad_token` as strings or `{content}` objects, `add_bos_token`,
   * `add_eos_token`, `chat_template`) and `generation_config.json` (`eos_token_id`). A special
   * token the vocabulary lacks, or a malformed value, is an error naming the file and key.
   *
   * @param tokenizerConfig the parsed `tokenizer_config.json` (`{}` when there is none)
   * @param source where the JSON came from, for error messages (the chat template's too)
   * @param generationConfig the parsed `generation_config.json` (`{}` when there is none)
   */
  static fromJSON(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    source = "tokenizer.json",
    generationConfig: unknown = {},
  ): HuggingFaceTokenizer {
    const fail: (why: string, cause?: unknown) => never = (why, cause) => {
      throw new Error(`Cannot load tokenizer ${source}: ${why}`, { cause });
    };
    if (!isObject(tokenizerJson)) fail("expected a JSON object");
    const model = tokenizerJson.model;
    if (!isObject(model)) fail(`it has no "model" object`);
    const config = tokenizerConfig ?? {};
    if (!isObject(config)) fail("tokenizer_config.json must hold a JSON object");
    const generation = generationConfig ?? {};
    if (!isObject(generation)) fail("generation_config.json must hold a JSON object");
    checkByteAlphabet(tokenizerJson, source);
    checkByteFallback(tokenizerJson, source);
    let tok!: HFTokenizer;
    try {
      tok = new HFTokenizer(tokenizerJson, config);
      // Some malformed parts (e.g. a post-processor's items) load and only fail on the first
      // encode: encode once here so that they fail now, naming the file.
      tok.encode("a");
    } catch (e) {
      fail((e as Error).message, e);
    }
    let max = -1;
    for (const id of tok.get_vocab(true).values()) max = Math.max(max, id);
    const vocabSize = max + 1;

    const specialId = (key: string): number | undefined => {
      const value = config[key];
      if (value === undefined || value === null) return undefined;
      const content = specialTokenContent(value);
      if (content === undefined) {
        fail(`tokenizer_config.json's ${key} must be a string or {content}, got ${show(value)}`);
      }
      const id = tok.token_to_id(content);
      if (id === undefined) {
        fail(`tokenizer_config.json's ${key} ${JSON.stringify(content)} is not in the vocabulary`);
      }
      return id;
    };
    const flag = (key: string): boolean => {
      const value = config[key] ?? false;
      if (typeof value !== "boolean") {
        fail(`tokenizer_config.json's ${key} must be true or false, got ${show(value)}`);
      }
      return value;
    };
    const eosId = specialId("eos_token") ?? tok.token_to_id("<|endoftext|>");
    const chatTemplate = ChatTemplate.fromTokenizerConfig(config, source);
    const stopIds: number[] = eosId === undefined ? [] : [eosId];
    for (const id of generationEosIds(generation.eos_token_id, vocabSize, fail)) {
      if (!stopIds.includes(id)) stopIds.push(id);
    }
    for (const token of END_OF_TURN_TOKENS) {
      const id = tok.token_to_id(token);
      if (id !== undefined && chatTemplate?.template.includes(token) && !stopIds.includes(id)) {
        stopIds.push(id);
      }
    }
    return new HuggingFaceTokenizer(tok, `hf:${String(model.type ?? "unknown")}`, {
      vocabSize,
      eosId,
      bosId: specialId("bos_token"),
      padId: specialId("pad_token"),
      addBosToken: flag("add_bos_token"),
      addEosToken: flag("add_eos_token"),
      stopIds,
      chatTemplate,
    });
  }

  /**
   * Loads `tokenizer.json` from a file (or a folder holding one), with these files from the
   * same folder when present: `tokenizer_config.json`, `generation_config.json`, and
   * `chat_template.jinja` (which replaces the config's `chat_template`, as in transformers,
   * which saves templates there). Needs read permission for them.
   *
   * @example
   * ```ts ignore
   * import { HuggingFaceTokenizer } from "../mod.ts";
   * const tok = await HuggingFaceTokenizer.fromFile("checkpoints/SmolLM2-135M-Instruct");
   * ```
   */
  static async fromFile(path: string): Promise<HuggingFaceTokenizer> {
    let file = path;
    let dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
    if ((await files().stat(path).catch(() => undefined))?.isDirectory) {
      dir = path.replace(/\/+$/, "") || "/";
      file = `${dir}/tokenizer.json`;
    }
    const readText = async (p: string): Promise<string> => {
      try {
        return await files().readText(p);
      } catch (e) {
        throw new Error(`Cannot load tokenizer ${p}: ${(e as Error).message}`, { cause: e });
      }
    };
    const readJson = async (p: string): Promise<unknown> => {
      const text = await readText(p);
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new Error(`Cannot load tokenizer ${p}: not valid JSON: ${(e as Error).message}`);
      }
    };
    const exists = async (p: string) =>
      (await files().stat(p).catch(() => undefined)) !== undefined;
    const json = await readJson(file);
    const configFile = `${dir}/tokenizer_config.json`;
    let config = (await exists(configFile)) ? await readJson(configFile) : {};
    const templateFile = `${dir}/chat_template.jinja`;
    if (await exists(templateFile)) {
      config = { ...(config as object), chat_template: await readText(templateFile) };
    }
    const generationFile = `${dir}/generation_config.json`;
    const generation = (await exists(generationFile)) ? await readJson(generationFile) : {};
    return HuggingFaceTokenizer.fromJSON(json, config, file, generation);
  }

  /** Token ids of `text` (no added BOS/EOS). Throws on a piece the vocabulary lacks. */
  encode(text: string): number[] {
    const { ids, tokens } = this.#tok.encode(text, { add_special_tokens: false });
    const i = ids.findIndex((id) => id === undefined || id === null);
    if (i >= 0) {
      throw new Error(
        `Cannot encode with ${this.name}: token ${JSON.stringify(tokens[i])} is not in the ` +
          `vocabulary and it has no unknown token`,
      );
    }
    return ids;
  }

  /** Text of `ids`, special tokens included, spaces untouched. */
  decode(ids: readonly number[]): string {
    ids.forEach((id, i) => checkId(this, id, i));
    if (ids.length === 0) return ""; // the package rejects an empty list
    return this.#tok.decode([...ids], {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: false,
    });
  }
}

/** `generation_config.json`'s `eos_token_id`: absent, an id, or a list of ids. */
function generationEosIds(
  value: unknown,
  vocabSize: number,
  fail: (why: string) => never,
): number[] {
  if (value === undefined || value === null) return [];
  const ids = Array.isArray(value) ? value : [value];
  for (const id of ids) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      fail(
        `generation_config.json's eos_token_id must be an id or a list of ids in ` +
          `[0, ${vocabSize}), got ${show(value)}`,
      );
    }
  }
  return ids as number[];
}

/**
 * GPT-2's byte-level BPE (vocabulary 50257, "<|endoftext|>" = 50256) from the ranks that
 * `js-tiktoken` ships, so it works offline. Building it takes a few hundred milliseconds; reuse
 * the instance. Special tokens written in the text map to their ids, as in the Hugging Face
 * tokenizer.
 *
 * @example
 * ```ts
 * import { TiktokenTokenizer } from "../mod.ts";
 * const tok = TiktokenTokenizer.gpt2();
 * const ids = tok.encode("Hello world");
 * if (ids.join() !== "15496,995" || tok.decode(ids) !== "Hello world") throw new Error("bad GPT-2");
 * ```
 */
export class TiktokenTokenizer implements Tokenizer {
  /** "tiktoken:gpt2". */
  readonly name: string;
  /** 50257 for GPT-2. */
  readonly vocabSize: number;
  /** 50256 for GPT-2. */
  readonly eosId?: number;
  readonly #enc: Tiktoken;

  private constructor(enc: Tiktoken, name: string, vocabSize: number, eosId: number) {
    this.#enc = enc;
    this.name = name;
    this.vocabSize = vocabSize;
    this.eosId = eosId;
  }

  static #gpt2: TiktokenTokenizer | undefined;

  /** GPT-2's encoding (built once, then shared). */
  static gpt2(): TiktokenTokenizer {
    TiktokenTokenizer.#gpt2 ??= new TiktokenTokenizer(
      new Tiktoken(gpt2Ranks),
      "tiktoken:gpt2",
      50257,
      50256,
    );
    return TiktokenTokenizer.#gpt2;
  }

  /** Token ids of `text`; "<|endoftext|>" in the text becomes 50256. */
  encode(text: string): number[] {
    return this.#enc.encode(text, "all");
  }

  /** Text of `ids`, with U+FFFD for invalid UTF-8. */
  decode(ids: readonly number[]): string {
    ids.forEach((id, i) => checkId(this, id, i));
    return this.#enc.decode([...ids]);
  }
}

/**
 * The 256 symbols that GPT-2's byte-level BPE writes bytes as (`bytes_to_unicode` in GPT-2's
 * `encoder.py`; index = byte): printable Latin-1 bytes stand for themselves ("!"–"~", "¡"–"¬",
 * "®"–"ÿ"), the others become U+0100 onwards in byte order, so space (32) is "Ġ" and newline
 * (10) is "Ċ". Vocabularies in `tokenizer.json` / `vocab.json` are written in these symbols.
 *
 * @example
 * ```ts
 * import { byteLevelAlphabet } from "../mod.ts";
 * const alphabet = byteLevelAlphabet();
 * if (alphabet[32] !== "Ġ" || alphabet[65] !== "A") throw new Error("bad alphabet");
 * ```
 */
export function byteLevelAlphabet(): string[] {
  const symbols: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    symbols.push(String.fromCharCode(printable ? b : next++));
  }
  return symbols;
}

/**
 * A byte-level BPE without an unknown token must have every byte symbol in its vocabulary:
 * `@huggingface/tokenizers` silently drops pieces it cannot map, which would corrupt training data.
 */
function checkByteAlphabet(json: Record<string, unknown>, source: string): void {
  const model = json.model as Record<string, unknown>;
  const pre = json.pre_tokenizer as { type?: unknown; pretokenizers?: { type?: unknown }[] } | null;
  const parts = pre?.type === "Sequence" ? pre.pretokenizers : undefined;
  if (parts !== undefined && !Array.isArray(parts)) {
    throw new Error(
      `Cannot load tokenizer ${source}: pre_tokenizer.pretokenizers must be a list, got ${
        show(parts)
      }`,
    );
  }
  const byteLevel = pre?.type === "ByteLevel" ||
    (parts ?? []).some((p) => isObject(p) && p.type === "ByteLevel");
  if (!byteLevel || model.type !== "BPE" || model.unk_token != null) return;
  const vocab = (model.vocab ?? {}) as Record<string, unknown>;
  const alphabet = byteLevelAlphabet();
  const missing = alphabet.findIndex((symbol) => !Object.hasOwn(vocab, symbol));
  if (missing >= 0) {
    throw new Error(
      `Cannot load tokenizer ${source}: its byte-level BPE vocabulary lacks byte ${missing} ` +
        `(symbol ${JSON.stringify(alphabet[missing])}) and has no unknown token, so text with ` +
        `that byte could not be encoded`,
    );
  }
}

/**
 * Likewise a byte-fallback BPE without an unknown token must have all 256 byte tokens
 * "<0x00>"…"<0xFF>": a character missing from the vocabulary is spelled with them.
 */
function checkByteFallback(json: Record<string, unknown>, source: string): void {
  const model = json.model as Record<string, unknown>;
  if (model.type !== "BPE" || model.byte_fallback !== true || model.unk_token != null) return;
  const vocab = (model.vocab ?? {}) as Record<string, unknown>;
  for (let byte = 0; byte < 256; byte++) {
    const token = `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
    if (!Object.hasOwn(vocab, token)) {
      throw new Error(
        `Cannot load tokenizer ${source}: its byte-fallback BPE vocabulary lacks the byte token ` +
          `${token} and has no unknown token, so text with that byte could not be encoded`,
      );
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A value for an error message. */
function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function checkId(tok: Tokenizer, id: number, position: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= tok.vocabSize) {
    throw new Error(
      `Cannot decode with ${tok.name}: id ${id} at position ${position} is outside the ` +
        `vocabulary [0, ${tok.vocabSize})`,
    );
  }
}
