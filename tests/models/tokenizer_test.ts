import assert from "node:assert/strict";
import { gpt2Ranks } from "../../deps.ts";
import {
  byteLevelAlphabet,
  ByteTokenizer,
  HuggingFaceTokenizer,
  TiktokenTokenizer,
  type Tokenizer,
} from "../../models/tokenizer.ts";
import {
  byteFallbackJson,
  byteId,
  byteLevelJson,
  charId,
  CHAT_TEMPLATES,
  SPECIAL,
} from "./_llama_tokenizers.ts";

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

Deno.test("`HuggingFaceTokenizer` runs byte-level BPE in SmolLM2's, Qwen2's and Llama-3's styles", () => {
  for (const style of ["smollm2", "qwen2", "llama3"] as const) {
    const tok = HuggingFaceTokenizer.fromJSON(byteLevelJson(style), {}, style);
    assert.equal(tok.vocabSize, style === "llama3" ? 276 : 274, style);
    // "hello": (h e) (l l) (he ll) (hell o); " world": (Ġ w) (o r) (Ġw or) (l d) (Ġwor ld).
    assert.deepEqual(tok.encode("hello world"), [261, 266], style);
    assert.deepEqual(tok.encode(" the user"), [259, 32, 270], style);
    // Characters outside ASCII are their UTF-8 bytes, one symbol (and id) per byte.
    assert.deepEqual(tok.encode("é日"), [0xc3, 0xa9, 0xe6, 0x97, 0xa5], style);
    // Added tokens are single ids, never split, even inside a word; encode adds no BOS.
    for (const [content, id] of Object.entries(SPECIAL[style])) {
      assert.deepEqual(tok.encode(`x${content}y`), [120, id, 121], `${style} ${content}`);
      assert.deepEqual(tok.encode(content + content), [id, id], `${style} ${content}`);
      assert.equal(tok.decode([id]), content);
    }
    const texts = [...SAMPLES, ...randomTexts(100, 7)];
    for (const text of texts) {
      const ids = tok.encode(text);
      // Qwen2 normalises to NFC first, so decoding gives the composed form.
      assert.equal(tok.decode(ids), style === "qwen2" ? text.normalize("NFC") : text, style);
    }
  }
  const smollm2 = HuggingFaceTokenizer.fromJSON(byteLevelJson("smollm2"));
  const qwen2 = HuggingFaceTokenizer.fromJSON(byteLevelJson("qwen2"));
  const llama3 = HuggingFaceTokenizer.fromJSON(byteLevelJson("llama3"));
  assert.deepEqual(
    smollm2.encode("<|im_start|>user\nhi<|im_end|>\n"),
    [272, 270, 10, 104, 105, 273, 10],
  );
  // Qwen2's and Llama-3's regex keep a run of newlines together ("\n\n" merges); GPT-2's splits it.
  assert.deepEqual(qwen2.encode("a\n\nb"), [97, 267, 98]);
  assert.deepEqual(llama3.encode("a\n\nb"), [97, 267, 98]);
  assert.deepEqual(smollm2.encode("a\n\nb"), [97, 10, 10, 98]);
  assert.deepEqual(qwen2.encode("e\u0301"), [0xc3, 0xa9], "NFC");
  assert.deepEqual(llama3.encode("<|begin_of_text|>hi"), [271, 104, 105], "no second BOS");
});

Deno.test('`HuggingFaceTokenizer` runs byte-fallback BPE with TinyLlama\'s "▁" normalizer', () => {
  const tok = HuggingFaceTokenizer.fromJSON(byteFallbackJson("normalizer"), {}, "tinyllama");
  assert.equal(tok.vocabSize, 366);
  // One word for BPE (no pre-tokenizer): "▁hello▁world" → (▁ hello) (▁ world).
  assert.deepEqual(tok.encode("hello world"), [365, 364]);
  assert.deepEqual(tok.encode(" the"), [259, 357]);
  // "日" and "\n" are not in the vocabulary: their UTF-8 bytes, as "<0xNN>" tokens.
  assert.deepEqual(tok.encode("日\n"), [259, byteId(0xe6), byteId(0x97), byteId(0xa5), byteId(10)]);
  assert.equal(tok.decode([259, byteId(0xe6), byteId(0x97), byteId(0xa5), byteId(10)]), "日\n");
  assert.deepEqual(tok.encode("hi!"), [259, charId("h"), charId("i"), charId("!")]);
  assert.deepEqual(tok.encode(""), []);
  roundTrips(tok, [...SAMPLES, ...randomTexts(200, 8)]);
  // <s> and </s> are single ids; the text after a special token gets its own "▁" (transformers'
  // legacy Llama behaviour), which decodes as a space.
  assert.deepEqual(tok.encode("<s>hi</s>"), [1, 259, charId("h"), charId("i"), 2]);
  assert.equal(tok.decode([1, 259, charId("h"), charId("i"), 2]), "<s> hi</s>");
  assert.deepEqual(tok.encode("a</s></s>"), [259, charId("a"), 2, 2]);
  assert.equal(tok.decode(tok.encode("a</s>")), "a</s>");
});

Deno.test("`HuggingFaceTokenizer` runs byte-fallback BPE with Mistral's Metaspace pre-tokenizer", () => {
  const tok = HuggingFaceTokenizer.fromJSON(byteFallbackJson("metaspace"), {}, "mistral");
  assert.deepEqual(tok.encode("hello world"), [365, 364]);
  assert.deepEqual(tok.encode("日\n"), [259, byteId(0xe6), byteId(0x97), byteId(0xa5), byteId(10)]);
  // prepend_scheme "first": only the text at the start gets "▁", so special tokens round-trip.
  assert.deepEqual(tok.encode("<s>hi</s>"), [1, charId("h"), charId("i"), 2]);
  assert.equal(tok.decode(tok.encode("<s>hi</s> x")), "<s>hi</s> x");
  // A leading space is already a "▁", so nothing is prepended and the decoder drops it.
  assert.deepEqual(tok.encode(" the"), [357]);
  assert.equal(tok.decode([357]), "the");
  roundTrips(tok, [...SAMPLES, ...randomTexts(200, 9)].filter((t) => !t.startsWith(" ")));
});

Deno.test("`HuggingFaceTokenizer.fromJSON()` rejects a byte-fallback vocabulary missing a byte token", () => {
  const json = byteFallbackJson("normalizer");
  const model = json.model as { vocab: Record<string, number>; unk_token: string | null };
  delete model.vocab["<0x0A>"];
  // With an unknown token the missing byte becomes <unk>, as in transformers.
  assert.deepEqual(HuggingFaceTokenizer.fromJSON(json).encode("\n"), [259, 0]);
  model.unk_token = null;
  assert.throws(
    () => HuggingFaceTokenizer.fromJSON(json, {}, "tl/tokenizer.json"),
    /Cannot load tokenizer tl\/tokenizer\.json: its byte-fallback BPE vocabulary lacks the byte token <0x0A> and has no unknown token/,
  );
});

Deno.test("`HuggingFaceTokenizer` reads special tokens, add_bos/eos_token and stop ids (SmolLM2, Qwen2.5, Llama-3, TinyLlama)", () => {
  const template = (name: string) => CHAT_TEMPLATES[name].chat_template;
  // SmolLM2-Instruct: eos <|im_end|>, generation_config eos_token_id 2 (its <|im_end|>).
  const smollm2 = HuggingFaceTokenizer.fromJSON(
    byteLevelJson("smollm2"),
    {
      bos_token: "<|im_start|>",
      eos_token: "<|im_end|>",
      pad_token: "<|im_end|>",
      unk_token: "<|endoftext|>",
      chat_template: template("SmolLM2-Instruct"),
    },
    "smollm2",
    { bos_token_id: 272, eos_token_id: 273 },
  );
  assert.equal(smollm2.bosId, 272);
  assert.equal(smollm2.eosId, 273);
  assert.equal(smollm2.padId, 273);
  assert.deepEqual(smollm2.stopIds, [273]);
  assert.equal(smollm2.chatTemplate?.template, template("SmolLM2-Instruct"));
  assert.equal(smollm2.chatTemplate?.specialTokens.eos_token, "<|im_end|>");
  // Qwen2.5-Instruct: no BOS, eos <|im_end|>, generation_config lists <|im_end|> and <|endoftext|>.
  const qwen = HuggingFaceTokenizer.fromJSON(
    byteLevelJson("qwen2"),
    {
      bos_token: null,
      eos_token: "<|im_end|>",
      pad_token: "<|endoftext|>",
      add_bos_token: false,
      chat_template: template("Qwen2.5-Instruct"),
    },
    "qwen",
    { eos_token_id: [273, 271] },
  );
  assert.equal(qwen.bosId, undefined);
  assert.equal(qwen.padId, 271);
  assert.deepEqual(qwen.stopIds, [273, 271]);
  // Meta-Llama-3-8B-Instruct as first released: eos <|end_of_text|>, but the template closes
  // turns with <|eot_id|>, which generation_config also lists.
  const llama3 = HuggingFaceTokenizer.fromJSON(byteLevelJson("llama3"), {
    bos_token: { content: "<|begin_of_text|>", special: true },
    eos_token: { content: "<|end_of_text|>", special: true },
    chat_template: template("Llama-3-Instruct"),
  }, "llama3");
  assert.equal(llama3.bosId, 271);
  assert.equal(llama3.eosId, 272);
  assert.deepEqual(llama3.stopIds, [272, 275], "<|eot_id|> from the template");
  const withGeneration = HuggingFaceTokenizer.fromJSON(
    byteLevelJson("llama3"),
    { eos_token: "<|eot_id|>", chat_template: template("Llama-3.2-Instruct") },
    "llama3.2",
    { eos_token_id: [272, 275] },
  );
  assert.deepEqual(withGeneration.stopIds, [275, 272]);
  // TinyLlama-Chat: <s>/</s>, add_bos_token; its template writes eos_token, so </s> alone.
  const tiny = HuggingFaceTokenizer.fromJSON(
    byteFallbackJson("normalizer"),
    {
      add_bos_token: true,
      add_eos_token: false,
      bos_token: "<s>",
      eos_token: "</s>",
      pad_token: "</s>",
      unk_token: "<unk>",
      chat_template: template("TinyLlama-Chat"),
    },
    "tinyllama",
    { bos_token_id: 1, eos_token_id: 2 },
  );
  assert.deepEqual(
    [tiny.bosId, tiny.eosId, tiny.padId, tiny.addBosToken, tiny.addEosToken],
    [1, 2, 2, true, false],
  );
  assert.deepEqual(tiny.stopIds, [2]);
  assert.deepEqual(tiny.encode("hi"), [259, charId("h"), charId("i")], "encode adds no BOS");
  // Without a config: no template, no BOS, the flags off, EOS from "<|endoftext|>" if present.
  const bare = HuggingFaceTokenizer.fromJSON(byteLevelJson("qwen2"));
  assert.deepEqual(
    [bare.bosId, bare.eosId, bare.addBosToken, bare.chatTemplate, bare.stopIds],
    [undefined, 271, false, undefined, [271]],
  );
});

Deno.test("`HuggingFaceTokenizer.fromJSON()` rejects bad special tokens, naming the file and key", () => {
  const json = byteLevelJson("smollm2");
  const load = (config: unknown, generation: unknown = {}) => () =>
    HuggingFaceTokenizer.fromJSON(json, config, "m/tokenizer.json", generation);
  assert.throws(
    load({ eos_token: "<|eot_id|>" }),
    /Cannot load tokenizer m\/tokenizer\.json: tokenizer_config\.json's eos_token "<\|eot_id\|>" is not in the vocabulary/,
  );
  assert.throws(
    load({ bos_token: 5 }),
    /tokenizer_config\.json's bos_token must be a string or \{content\}, got 5/,
  );
  assert.throws(
    load({ add_bos_token: "yes" }),
    /tokenizer_config\.json's add_bos_token must be true or false, got "yes"/,
  );
  assert.throws(
    load({}, { eos_token_id: [273, 999] }),
    /generation_config\.json's eos_token_id must be an id or a list of ids in \[0, 274\), got \[273,999\]/,
  );
  assert.throws(load({}, { eos_token_id: "2" }), /eos_token_id must be an id or a list of ids/);
  assert.throws(load([]), /tokenizer_config\.json must hold a JSON object/);
  assert.throws(
    load({ chat_template: 1 }),
    /Cannot read chat template of m\/tokenizer\.json: chat_template must be a string/,
  );
});

Deno.test("`HuggingFaceTokenizer.fromFile()` reads a model folder: config, generation config and chat_template.jinja", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(byteLevelJson("qwen2")));
    await Deno.writeTextFile(
      `${dir}/tokenizer_config.json`,
      JSON.stringify({
        eos_token: "<|im_end|>",
        chat_template: CHAT_TEMPLATES["Qwen2.5-Instruct"].chat_template,
      }),
    );
    await Deno.writeTextFile(
      `${dir}/generation_config.json`,
      JSON.stringify({ eos_token_id: [273, 271] }),
    );
    const tok = await HuggingFaceTokenizer.fromFile(`${dir}/`);
    assert.deepEqual([tok.eosId, tok.stopIds], [273, [273, 271]]);
    assert.equal(tok.chatTemplate?.template, CHAT_TEMPLATES["Qwen2.5-Instruct"].chat_template);
    // transformers saves templates to chat_template.jinja, which wins over the config's.
    await Deno.writeTextFile(`${dir}/chat_template.jinja`, "{{ messages[0].content }}<|im_end|>");
    const fromJinja = await HuggingFaceTokenizer.fromFile(`${dir}/tokenizer.json`);
    assert.equal(fromJinja.chatTemplate?.render([{ role: "user", content: "x" }]), "x<|im_end|>");
    await Deno.writeTextFile(`${dir}/generation_config.json`, "{");
    await assert.rejects(
      HuggingFaceTokenizer.fromFile(dir),
      new RegExp(`Cannot load tokenizer ${dir}/generation_config\\.json: not valid JSON`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HuggingFaceTokenizer.fromJSON() names the file for a Sequence pre-tokenizer that is not a list and for a post-processor that only fails on encode (found by fuzzing)", () => {
  const base = byteLevelJson("smollm2");
  assert.throws(
    () =>
      HuggingFaceTokenizer.fromJSON(
        { ...base, pre_tokenizer: { type: "Sequence", pretokenizers: 7 } },
        {},
        "fz/tokenizer.json",
      ),
    /Cannot load tokenizer fz\/tokenizer\.json: pre_tokenizer\.pretokenizers must be a list, got 7/,
  );
  const post = {
    type: "TemplateProcessing",
    single: ["<|im_start|>", "A"],
    pair: [],
    special_tokens: {},
  };
  assert.throws(
    () => HuggingFaceTokenizer.fromJSON({ ...base, post_processor: post }, {}, "fz/tokenizer.json"),
    /Cannot load tokenizer fz\/tokenizer\.json: /,
  );
});
