import assert from "node:assert/strict";
import { gpt2Ranks } from "../../deps.ts";
import {
  byteLevelAlphabet,
  ByteTokenizer,
  HuggingFaceTokenizer,
  TiktokenTokenizer,
  type Tokenizer,
} from "../../models/mod.ts";

/** Varied text: prose, code, numbers, whitespace runs, contractions, scripts, emoji, marks. */
const SAMPLES = [
  "",
  "Hello world",
  "The quick brown fox jumps over the lazy dog.",
  " leading space and trailing space ",
  "Multiple   spaces\tand\ttabs\n\nand newlines\r\n",
  "I'm sure it's what they've said: we'll, you'd, she's — 'quoted' \"double\"",
  "Numbers: 3.14159, 1,000,000 and 2024-05-17T12:00:00Z; x86_64 0xDEADBEEF",
  "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
  "const y = a?.b ?? c; // JS <tags> &amp; `backticks`",
  "日本語のテキスト、中文文本，한국어 텍스트",
  "Emoji: 🎉🚀👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 skin 👍🏽",
  "Combining: e\u0301 a\u0308 n\u0303 — precomposed: é ä ñ; Zalgo: Z\u0351\u0308\u0353a\u0337l",
  "Ελληνικά, русский, עברית, العربية, हिन्दी, ไทย",
  "Symbols: ∑∫√∞≠≈ ©®™ €£¥ ½¾ …",
  "\u0000 control \u0007\u001b[0m bytes \u007f",
  "<|endoftext|>The end.<|endoftext|>",
  "   \n  \n",
  "a".repeat(300) + " " + "ab".repeat(50),
];

/** Random strings from a pool that stresses the pre-tokenizer regex. */
function randomTexts(count: number, seed: number): string[] {
  const pool = [..."aZ 9_'s'll\n\t\r.,!?-é日🎉\u0301\u00a0\u2009\u3000"];
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: count }, () => {
    let t = "";
    const n = Math.floor(rand() * 40);
    for (let i = 0; i < n; i++) t += pool[Math.floor(rand() * pool.length)];
    return t;
  });
}

function roundTrips(tok: Tokenizer, texts: string[]): void {
  for (const text of texts) {
    const ids = tok.encode(text);
    assert.ok(
      ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize),
      `${tok.name}: ids in range`,
    );
    assert.equal(tok.decode(ids), text, `${tok.name}: ${JSON.stringify(text)}`);
  }
}

/**
 * GPT-2's tokenizer.json rebuilt from js-tiktoken's ranks: vocab = token bytes in byte-level
 * symbols → rank (GPT-2's ids are its ranks); each merge is recovered by running BPE on a token's
 * bytes with only lower ranks, which leaves exactly the two parts that the merge joins.
 */
function gpt2TokenizerJson(): Record<string, unknown> {
  const alphabet = byteLevelAlphabet();
  const [, offset, ...tokens] = gpt2Ranks.bpe_ranks.split(" ");
  const ranks = new Map<string, number>(); // latin1 string of the bytes → rank
  tokens.forEach((b64, i) => ranks.set(atob(b64), Number(offset) + i));
  const vocab: Record<string, number> = {};
  const merges: string[] = [];
  const symbols = (bytes: string) => [...bytes].map((c) => alphabet[c.charCodeAt(0)]).join("");
  const byRank = [...ranks].sort((a, b) => a[1] - b[1]);
  for (const [bytes, rank] of byRank) {
    vocab[symbols(bytes)] = rank;
    if (bytes.length < 2) continue;
    let parts = [...bytes];
    while (parts.length > 2) {
      let best = -1, bestRank = rank;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = ranks.get(parts[i] + parts[i + 1]);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    assert.equal(parts.length, 2, `token ${rank} splits into two lower-ranked tokens`);
    merges.push(`${symbols(parts[0])} ${symbols(parts[1])}`);
  }
  vocab["<|endoftext|>"] = 50256;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{
      id: 50256,
      content: "<|endoftext|>",
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    }],
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: "ByteLevel",
      add_prefix_space: true,
      trim_offsets: false,
      use_regex: true,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** A small GPT-2-style tokenizer.json: the 256 byte symbols (id = byte) and five merges. */
function smallTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((symbol, byte) => vocab[symbol] = byte);
  const merges = ["Ġ t", "h e", "Ġt he", "l l", "ll o"];
  merges.forEach((m, i) => vocab[m.replace(" ", "")] = 256 + i);
  vocab["<|endoftext|>"] = 261;
  const json = gpt2Like(vocab, merges);
  return json;
}

function gpt2Like(vocab: Record<string, number>, merges: string[]): Record<string, unknown> {
  return {
    added_tokens: [{ id: 261, content: "<|endoftext|>", special: true, normalized: true }],
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: "ByteLevel",
      add_prefix_space: true,
      trim_offsets: false,
      use_regex: true,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", unk_token: null, vocab, merges },
  };
}

Deno.test("`byteLevelAlphabet()` is GPT-2's bytes_to_unicode table", () => {
  const a = byteLevelAlphabet();
  assert.equal(a.length, 256);
  assert.equal(new Set(a).size, 256);
  assert.equal(a[33], "!");
  assert.equal(a[126], "~");
  assert.equal(a[0], "\u0100");
  assert.equal(a[10], "Ċ");
  assert.equal(a[32], "Ġ");
  assert.equal(a[127], "\u0121");
  assert.equal(a[173], "\u0143"); // soft hyphen is not printable: the last remapped byte
  assert.equal(a[174], "®");
  assert.equal(a[255], "ÿ");
});

Deno.test("`ByteTokenizer` encodes UTF-8 bytes and round-trips arbitrary Unicode", () => {
  const tok = new ByteTokenizer();
  assert.equal(tok.vocabSize, 256);
  assert.equal(tok.eosId, undefined);
  assert.deepEqual(tok.encode("hé🎉"), [104, 0xc3, 0xa9, 0xf0, 0x9f, 0x8e, 0x89]);
  roundTrips(tok, [...SAMPLES, ...randomTexts(200, 1)]);
});

Deno.test("`ByteTokenizer` turns lone surrogates and cut characters into U+FFFD", () => {
  const tok = new ByteTokenizer();
  assert.deepEqual(tok.encode("a\ud800b"), [97, 0xef, 0xbf, 0xbd, 98]);
  assert.equal(tok.decode(tok.encode("a\udc00")), "a\ufffd");
  const euro = tok.encode("€"); // 3 bytes
  assert.equal(tok.decode(euro.slice(0, 2)), "\ufffd");
  assert.equal(tok.decode([...euro.slice(0, 2), 97]), "\ufffda");
  assert.equal(
    tok.decode([0xff, 0xc0, 0x80]),
    new TextDecoder().decode(new Uint8Array([0xff, 0xc0, 0x80])),
  );
});

Deno.test("`ByteTokenizer.decode()` rejects ids outside the byte range naming the position", () => {
  const tok = new ByteTokenizer({ eosId: 0 });
  assert.equal(tok.eosId, 0);
  assert.throws(
    () => tok.decode([65, 256]),
    /Cannot decode with bytes: id 256 at position 1 is outside the vocabulary \[0, 256\)/,
  );
  assert.throws(() => tok.decode([1.5]), /id 1\.5 at position 0/);
  assert.throws(() => new ByteTokenizer({ eosId: 300 }), /eosId must be a byte \(0-255\), got 300/);
});

Deno.test("`TiktokenTokenizer.gpt2()` gives GPT-2's ids and round-trips varied text", () => {
  const tok = TiktokenTokenizer.gpt2();
  assert.equal(tok, TiktokenTokenizer.gpt2(), "built once");
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.eosId, 50256);
  assert.deepEqual(tok.encode("Hello world"), [15496, 995]);
  assert.deepEqual(tok.encode(" the"), [262]);
  assert.deepEqual(tok.encode("<|endoftext|>"), [50256]);
  assert.equal(tok.decode([50256]), "<|endoftext|>");
  roundTrips(tok, [...SAMPLES, ...randomTexts(200, 2)]);
  assert.equal(tok.decode(tok.encode("x\ud83d")), "x\ufffd", "lone surrogate → U+FFFD");
  assert.throws(
    () => tok.decode([50257]),
    /id 50257 at position 0 is outside the vocabulary \[0, 50257\)/,
  );
});

Deno.test("`HuggingFaceTokenizer` applies a small byte-level BPE's merges by rank", () => {
  const tok = HuggingFaceTokenizer.fromJSON(smallTokenizerJson(), { eos_token: "<|endoftext|>" });
  assert.equal(tok.name, "hf:BPE");
  assert.equal(tok.vocabSize, 262);
  assert.equal(tok.eosId, 261);
  // " the": Ġ t h e → (Ġ t) → (h e) → (Ġt he). " hello": (h e), (l l), (ll o); Ġ stays alone.
  assert.deepEqual(tok.encode(" the hello"), [258, 32, 257, 260]);
  // "the": t h e → (h e); nothing merges t with he.
  assert.deepEqual(tok.encode("the"), [116, 257]);
  assert.deepEqual(tok.encode("hi<|endoftext|>"), [104, 105, 261]);
  assert.equal(tok.decode([258, 32, 257, 260, 261]), " the hello<|endoftext|>");
  assert.equal(tok.decode([]), "");
  roundTrips(tok, [...SAMPLES, ...randomTexts(200, 3)]);
  assert.equal(tok.decode(tok.encode("a\udfff")), "a\ufffd", "lone surrogate → U+FFFD");
  assert.equal(tok.decode([0xe2, 0x82]), "\ufffd", "cut character → U+FFFD");
  assert.throws(() => tok.decode([262]), /Cannot decode with hf:BPE: id 262 at position 0/);
});

Deno.test("`HuggingFaceTokenizer.fromJSON()` rejects a byte-level vocabulary missing a byte, naming it", () => {
  const json = smallTokenizerJson();
  const model = json.model as { vocab: Record<string, number> };
  delete model.vocab["Ġ"];
  assert.throws(
    () => HuggingFaceTokenizer.fromJSON(json, {}, "tok/tokenizer.json"),
    /Cannot load tokenizer tok\/tokenizer\.json: its byte-level BPE vocabulary lacks byte 32 \(symbol "Ġ"\)/,
  );
  assert.throws(
    () => HuggingFaceTokenizer.fromJSON({}, {}, "t.json"),
    /Cannot load tokenizer t\.json: it has no "model" object/,
  );
  assert.throws(
    () =>
      HuggingFaceTokenizer.fromJSON(
        { model: { type: "BPE", vocab: {}, merges: [] } },
        {},
        "t.json",
      ),
    /Cannot load tokenizer t\.json: Tokenizer must contain a "decoder" property/,
  );
});

Deno.test("`HuggingFaceTokenizer.fromFile()` reads tokenizer.json and tokenizer_config.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(smallTokenizerJson()));
    const plain = await HuggingFaceTokenizer.fromFile(`${dir}/tokenizer.json`);
    assert.equal(plain.eosId, 261, "falls back to <|endoftext|>");
    await Deno.writeTextFile(
      `${dir}/tokenizer_config.json`,
      JSON.stringify({ eos_token: { content: "e", special: true } }),
    );
    const fromDir = await HuggingFaceTokenizer.fromFile(dir);
    assert.equal(fromDir.eosId, 101, "eos_token from tokenizer_config.json");
    assert.deepEqual(fromDir.encode(" the"), [258]);
    await Deno.writeTextFile(`${dir}/tokenizer.json`, "{");
    await assert.rejects(
      HuggingFaceTokenizer.fromFile(dir),
      new RegExp(`Cannot load tokenizer ${dir}/tokenizer\\.json: not valid JSON`),
    );
    await assert.rejects(
      HuggingFaceTokenizer.fromFile(`${dir}/nope.json`),
      /Cannot load tokenizer .*nope\.json: No such file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GPT-2 tokenizer.json built from js-tiktoken's ranks encodes exactly as js-tiktoken", () => {
  const hf = HuggingFaceTokenizer.fromJSON(gpt2TokenizerJson(), { eos_token: "<|endoftext|>" });
  const tt = TiktokenTokenizer.gpt2();
  assert.equal(hf.vocabSize, 50257);
  assert.equal(hf.eosId, 50256);
  const texts = [...SAMPLES, ...randomTexts(300, 4), "x\ud800y"];
  for (const text of texts) {
    const ids = tt.encode(text);
    assert.deepEqual(hf.encode(text), ids, JSON.stringify(text));
    assert.equal(hf.decode(ids), tt.decode(ids), JSON.stringify(text));
  }
  // Decoding any ids, including ones that cut characters, agrees too.
  let s = 5;
  for (let k = 0; k < 200; k++) {
    const ids = Array.from(
      { length: 1 + (k % 7) },
      () => (s = (s * 1103515245 + 12345) % 2 ** 31) % 50257,
    );
    assert.equal(hf.decode(ids), tt.decode(ids), `ids ${ids}`);
  }
});
