/**
 * Tokenizers behind one interface: a byte-level tokenizer for the small models (one id per byte),
 * Hugging Face `tokenizer.json` files through `@huggingface/tokenizers`, and GPT-2's own BPE,
 * offline, through `js-tiktoken` (its GPT-2 ranks ship in the package).
 *
 * Text is encoded as UTF-8. A lone UTF-16 surrogate in the input, which UTF-8 cannot represent,
 * is encoded as U+FFFD (TextEncoder's rule, used by all three), so it decodes as "\uFFFD".
 * Decoding ids whose bytes are not valid UTF-8 (e.g. a multi-byte character cut in half) gives
 * U+FFFD replacement characters, as `TextDecoder` does, never an error.
 *
 * @module
 */

import { gpt2Ranks, HFTokenizer, Tiktoken } from "../deps.ts";

/** Text ↔ token ids. */
export interface Tokenizer {
  /** A short description, e.g. "bytes" or "tiktoken:gpt2". */
  readonly name: string;
  /** Number of ids: every id returned by `encode` is below it. */
  readonly vocabSize: number;
  /** End-of-text id, when the tokenizer has one. */
  readonly eosId?: number;
  /** Token ids of `text`. */
  encode(text: string): number[];
  /** Text of `ids`; invalid UTF-8 becomes U+FFFD. Throws on an id outside the vocabulary. */
  decode(ids: readonly number[]): string;
}

/**
 * One token per UTF-8 byte: ids 0–255, vocabulary 256, for the small byte-level models.
 *
 * @example
 * ```ts
 * import { ByteTokenizer } from "../mod.ts";
 * const tok = new ByteTokenizer();
 * const ids = tok.encode("hé"); // [104, 195, 169]
 * if (ids.length !== 3 || tok.decode(ids) !== "hé") throw new Error("byte round trip failed");
 * ```
 */
export class ByteTokenizer implements Tokenizer {
  /** "bytes". */
  readonly name = "bytes";
  /** 256. */
  readonly vocabSize = 256;
  /** The byte chosen as end of text, if any (see the constructor). */
  readonly eosId?: number;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder("utf-8");

  /**
   * A byte tokenizer, optionally with one byte designated as end of text.
   *
   * @param options.eosId a byte to use as end-of-text id, e.g. 0 (NUL) or 255 (never part of
   *   UTF-8). It is still an ordinary byte: `encode` does not treat it specially.
   */
  constructor(options: { eosId?: number } = {}) {
    const eos = options.eosId;
    if (eos !== undefined && !(Number.isInteger(eos) && eos >= 0 && eos < 256)) {
      throw new Error(`Cannot create ByteTokenizer: eosId must be a byte (0-255), got ${eos}`);
    }
    if (eos !== undefined) this.eosId = eos;
  }

  /** The UTF-8 bytes of `text`. */
  encode(text: string): number[] {
    return Array.from(this.#encoder.encode(text));
  }

  /** `ids` as UTF-8 bytes, decoded with replacement characters. */
  decode(ids: readonly number[]): string {
    const bytes = new Uint8Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      checkId(this, ids[i], i);
      bytes[i] = ids[i];
    }
    return this.#decoder.decode(bytes);
  }
}

/**
 * A Hugging Face `tokenizer.json` (e.g. GPT-2's byte-level BPE), run by `@huggingface/tokenizers`.
 * `encode` adds no special tokens of its own (no BOS/EOS), but special tokens written in the text
 * (e.g. "<|endoftext|>") map to their ids, as in transformers. `decode` keeps special tokens and
 * does not "clean up tokenization spaces", so decoding inverts encoding.
 *
 * @example
 * ```ts
 * import { byteLevelAlphabet, HuggingFaceTokenizer } from "../mod.ts";
 * // A GPT-2-style byte-level BPE: the 256 byte symbols (id = byte) and one merge, "a" + "b".
 * const vocab: Record<string, number> = {};
 * byteLevelAlphabet().forEach((symbol, byte) => vocab[symbol] = byte);
 * vocab["ab"] = 256;
 * const tok = HuggingFaceTokenizer.fromJSON({
 *   added_tokens: [],
 *   normalizer: null,
 *   pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
 *   post_processor: null,
 *   decoder: { type: "ByteLevel" },
 *   model: { type: "BPE", vocab, merges: ["a b"] },
 * });
 * if (tok.encode("abc").join() !== "256,99" || tok.decode([98, 97]) !== "ba") {
 *   throw new Error("bad BPE");
 * }
 * ```
 */
export class HuggingFaceTokenizer implements Tokenizer {
  /** "hf:" and the model type, or the name given. */
  readonly name: string;
  /** One more than the largest id in the vocabulary, added tokens included. */
  readonly vocabSize: number;
  /** The id of the config's `eos_token`, or of "<|endoftext|>" when present. */
  readonly eosId?: number;
  readonly #tok: HFTokenizer;

  private constructor(tok: HFTokenizer, name: string, eosToken: string | undefined) {
    this.#tok = tok;
    this.name = name;
    let max = -1;
    for (const id of tok.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    const eos = tok.token_to_id(eosToken ?? "<|endoftext|>");
    if (eos !== undefined) this.eosId = eos;
  }

  /**
   * A tokenizer from a parsed `tokenizer.json` and, optionally, `tokenizer_config.json`.
   *
   * @param source where the JSON came from, for error messages and the name
   */
  static fromJSON(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    source = "tokenizer.json",
  ): HuggingFaceTokenizer {
    if (typeof tokenizerJson !== "object" || tokenizerJson === null) {
      throw new Error(`Cannot load tokenizer ${source}: expected a JSON object`);
    }
    const model = (tokenizerJson as { model?: { type?: unknown } }).model;
    if (typeof model !== "object" || model === null) {
      throw new Error(`Cannot load tokenizer ${source}: it has no "model" object`);
    }
    checkByteAlphabet(tokenizerJson as Record<string, unknown>, source);
    let tok: HFTokenizer;
    try {
      tok = new HFTokenizer(tokenizerJson, (tokenizerConfig ?? {}) as object);
    } catch (e) {
      throw new Error(`Cannot load tokenizer ${source}: ${(e as Error).message}`, { cause: e });
    }
    const eos = (tokenizerConfig as { eos_token?: unknown } | null)?.eos_token;
    const eosToken = typeof eos === "string"
      ? eos
      : typeof (eos as { content?: unknown })?.content === "string"
      ? (eos as { content: string }).content
      : undefined;
    return new HuggingFaceTokenizer(tok, `hf:${String(model.type ?? "unknown")}`, eosToken);
  }

  /**
   * Loads `tokenizer.json` from a file (or a folder holding one), with `tokenizer_config.json`
   * from the same folder when present. Needs read permission for them.
   *
   * @example
   * ```ts ignore
   * import { HuggingFaceTokenizer } from "../mod.ts";
   * const tok = await HuggingFaceTokenizer.fromFile("checkpoints/gpt2");
   * ```
   */
  static async fromFile(path: string): Promise<HuggingFaceTokenizer> {
    let file = path;
    let dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
    if ((await Deno.stat(path).catch(() => null))?.isDirectory) {
      dir = path;
      file = `${path.replace(/\/+$/, "")}/tokenizer.json`;
    }
    const read = async (p: string): Promise<unknown> => {
      const text = await Deno.readTextFile(p);
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new Error(`Cannot load tokenizer ${p}: not valid JSON: ${(e as Error).message}`);
      }
    };
    let json: unknown;
    try {
      json = await read(file);
    } catch (e) {
      if ((e as Error).message.startsWith("Cannot load")) throw e;
      throw new Error(`Cannot load tokenizer ${file}: ${(e as Error).message}`, { cause: e });
    }
    const configFile = `${dir}/tokenizer_config.json`;
    const config = (await Deno.stat(configFile).catch(() => null)) ? await read(configFile) : {};
    return HuggingFaceTokenizer.fromJSON(json, config, file);
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
  const byteLevel = pre?.type === "ByteLevel" ||
    (pre?.type === "Sequence" && (pre.pretokenizers ?? []).some((p) => p?.type === "ByteLevel"));
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

function checkId(tok: Tokenizer, id: number, position: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= tok.vocabSize) {
    throw new Error(
      `Cannot decode with ${tok.name}: id ${id} at position ${position} is outside the ` +
        `vocabulary [0, ${tok.vocabSize})`,
    );
  }
}
