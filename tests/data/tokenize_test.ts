import assert from "node:assert/strict";
import { IGNORE_INDEX as X } from "../../kernels/crossentropy.ts";
import {
  type ChatExample,
  type ChatMessage,
  type ChatTemplateLike,
  DataError,
  tokenizeExample,
  tokenizeExamples,
  type TokenizerLike,
} from "../../data/mod.ts";
import { HuggingFaceTokenizer } from "../../models/tokenizer.ts";
import { byteFallbackJson, byteLevelJson, CHAT_TEMPLATES } from "../models/_llama_tokenizers.ts";
import { charTokenizer, codes } from "./_toy_tokenizer.ts";

Deno.test("`tokenizeExample()` masks the prompt and trains the completion and EOS", () => {
  const r = tokenizeExample({ prompt: "ab", completion: "cd", task: "t" }, charTokenizer(), {
    maxLength: 10,
  });
  assert.deepEqual(r, {
    ids: [97, 98, 99, 100, 0],
    labels: [X, X, 99, 100, 0],
    truncated: false,
    task: "t",
  });
});

Deno.test("`tokenizeExample()` appends no EOS when the tokenizer has none or addEos is false", () => {
  const pc = { prompt: "ab", completion: "cd" };
  const expected = { ids: codes("abcd"), labels: [X, X, 99, 100], truncated: false };
  assert.deepEqual(tokenizeExample(pc, charTokenizer(false), { maxLength: 10 }), expected);
  assert.deepEqual(
    tokenizeExample(pc, charTokenizer(), { maxLength: 10, addEos: false }),
    expected,
  );
  assert.throws(
    () => tokenizeExample(pc, charTokenizer(false), { maxLength: 10, addEos: true }),
    /Cannot tokenize example #0: addEos is set but tokenizer "chars" has no EOS id/,
  );
});

Deno.test("`tokenizeExample()` trains only the assistant turns of a chat", () => {
  const r = tokenizeExample(
    {
      messages: [
        { role: "user", content: "a" },
        { role: "assistant", content: "b" },
        { role: "user", content: "c" },
        { role: "assistant", content: "d" },
      ],
    },
    charTokenizer(),
    { maxLength: 100 },
  );
  const text = "User: a\nAssistant: b\nUser: c\nAssistant: d";
  assert.deepEqual(r.ids, [...codes(text), 0]);
  const trained = r.ids.map((id, t) => (r.labels[t] === X ? "." : String.fromCharCode(id || 36)));
  // "b\n" and "d" + EOS (shown as $) are trained; everything else is masked.
  assert.equal(trained.join(""), ".".repeat(19) + "b\n" + ".".repeat(19) + "d$");
  r.labels.forEach((l, t) => assert.ok(l === X || l === r.ids[t]));
});

Deno.test("`tokenizeExample()` encodes each segment separately so the mask boundary is exact", () => {
  // A tokenizer that merges "ab" into one id would blur the boundary if the joined text were encoded.
  const merging: TokenizerLike = {
    name: "merging",
    vocabSize: 300,
    encode: (s) => s.split(/(ab)/).filter(Boolean).flatMap((p) => (p === "ab" ? [256] : codes(p))),
    decode: () => "",
  };
  const r = tokenizeExample({ prompt: "xa", completion: "b" }, merging, { maxLength: 8 });
  assert.deepEqual(r.ids, [120, 97, 98]);
  assert.deepEqual(r.labels, [X, X, 98]);
});

Deno.test('`tokenizeExamples()` with truncation "error" names the file and line, or the index, and the length', () => {
  const examples = [
    { prompt: "short", completion: "ok" },
    { prompt: "p".repeat(9), completion: "c".repeat(3), source: { file: "d.jsonl", line: 7 } },
    { prompt: "q".repeat(10), completion: "c" },
  ];
  assert.throws(() => tokenizeExamples(examples, charTokenizer(), { maxLength: 8 }), (e: Error) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.total, 2);
    assert.deepEqual(e.issues, [
      { where: "d.jsonl:7", message: "13 tokens (prompt 9, completion 4) exceed maxLength 8" },
      { where: "example #2", message: "12 tokens (prompt 10, completion 2) exceed maxLength 8" },
    ]);
    assert.match(e.message, /^Cannot tokenize 2 of 3 examples \(maxLength 8, truncation "error"\)/);
    return true;
  });
  assert.throws(
    () => tokenizeExample(examples[2], charTokenizer(), { maxLength: 8 }, 5),
    /Cannot tokenize example #5: 12 tokens/,
  );
});

Deno.test('`tokenizeExamples()` with truncation "truncate" cuts the prompt from the left, then the completion from the right', () => {
  const tok = charTokenizer();
  const set = tokenizeExamples(
    [
      { prompt: "abcdef", completion: "xy" }, // 9 with EOS: drop "a"
      { prompt: "ab", completion: "uvwxyzst" }, // 11: drop "ab", then EOS from the right
      { prompt: "a", completion: "b" }, // fits
      { prompt: "abcdefgh", completion: "z" }, // 10: drop "ab"
    ],
    tok,
    { maxLength: 8, truncation: "truncate" },
  );
  assert.equal(set.truncated, 3);
  assert.deepEqual(set.examples.map((e) => e.truncated), [true, true, false, true]);
  assert.deepEqual(set.examples[0], {
    ids: [...codes("bcdefxy"), 0],
    labels: [X, X, X, X, X, ...codes("xy"), 0],
    truncated: true,
  });
  assert.deepEqual(set.examples[1], {
    ids: codes("uvwxyzst"),
    labels: codes("uvwxyzst"),
    truncated: true,
  });
  assert.deepEqual(set.examples[3].ids, [...codes("cdefghz"), 0]);
  for (const e of set.examples) assert.ok(e.ids.length <= 8);
});

Deno.test("`tokenizeExamples()` truncates a chat's context, keeping earlier assistant labels aligned", () => {
  const chat = {
    messages: [
      { role: "assistant" as const, content: "hi" },
      { role: "user" as const, content: "q" },
      { role: "assistant" as const, content: "a" },
    ],
  };
  // Full text "Assistant: hi\nUser: q\nAssistant: a" + EOS = 35 tokens; keep the last 25, which still hold the trained "hi\n".
  const r = tokenizeExamples([chat], charTokenizer(), { maxLength: 25, truncation: "truncate" })
    .examples[0];
  const full = tokenizeExample(chat, charTokenizer(), { maxLength: 100 });
  assert.equal(full.ids.length, 35);
  assert.deepEqual(r.ids, full.ids.slice(10));
  assert.deepEqual(r.labels, full.labels.slice(10));
  assert.deepEqual(r.labels.slice(0, 4), [X, ...codes("hi\n")]);
});

Deno.test("`tokenizeExample()` rejects an example with nothing to train and bad options", () => {
  const tok = charTokenizer(false);
  assert.throws(
    () => tokenizeExample({ prompt: "abc", completion: "" }, tok, { maxLength: 8 }),
    /no completion token to train on/,
  );
  assert.throws(
    () => tokenizeExample({ prompt: "a", completion: "b" }, tok, { maxLength: 0 }),
    /maxLength must be a positive integer, got 0/,
  );
  assert.throws(
    () =>
      tokenizeExample({ prompt: "a", completion: "b" }, tok, {
        maxLength: 4,
        truncation: "drop" as "error",
      }),
    /truncation must be "error" or "truncate", got "drop"/,
  );
});

/**
 * A character tokenizer with a toy chat template: each message is "role initial:content" closed
 * by "\u0001" (id 1, the end-of-turn id); the generation prompt is "a:".
 */
function templated(stopIds: readonly number[] | null = [1]): TokenizerLike {
  const chatTemplate: ChatTemplateLike = {
    render: (messages, options = {}) =>
      messages.map((m) => `${m.role[0]}:${m.content}\u0001`).join("") +
      (options.addGenerationPrompt ? "a:" : ""),
  };
  return { ...charTokenizer(), chatTemplate, ...(stopIds ? { stopIds } : {}) };
}

const user = (content: string): ChatMessage => ({ role: "user", content });
const assistant = (content: string): ChatMessage => ({ role: "assistant", content });

/** The trained positions of `labels` as text: "." where masked, else the character. */
function trainedText(r: { ids: number[]; labels: number[] }): string {
  return r.ids.map((id, t) => (r.labels[t] === X ? "." : id === 1 ? "$" : String.fromCharCode(id)))
    .join("");
}

Deno.test("`tokenizeExample()` renders a chat with the tokenizer's template and trains assistant contents and end-of-turn", () => {
  const chat = { messages: [user("hi"), assistant("yo"), user("q"), assistant("z")], task: "t" };
  const r = tokenizeExample(chat, templated(), { maxLength: 100 });
  // "u:hi␁a:yo␁u:q␁a:z␁": only "yo␁" and "z␁" are trained; no EOS is appended (addEos is for the
  // plain rendering) and the ids stop at the last end-of-turn.
  assert.deepEqual(r.ids, codes("u:hi\u0001a:yo\u0001u:q\u0001a:z\u0001"));
  assert.equal(trainedText(r), ".......yo$......z$");
  assert.deepEqual({ truncated: r.truncated, task: r.task }, { truncated: false, task: "t" });
  r.labels.forEach((l, t) => assert.ok(l === X || l === r.ids[t]));
  // The same with addEos: true (cli/job.ts always passes it).
  assert.deepEqual(tokenizeExample(chat, templated(), { maxLength: 100, addEos: true }), r);
  // Without stopIds, the tokenizer's eosId (0 here) closes turns: none is written, so it fails.
  assert.throws(
    () => tokenizeExample(chat, templated(null), { maxLength: 100 }),
    /Cannot tokenize example #0: the chat template closes assistant message 1 with no end-of-turn token \(ids 0\) in "yo\\u0001"/,
  );
  // A prompt/completion pair ignores the template.
  assert.deepEqual(
    tokenizeExample({ prompt: "ab", completion: "cd" }, templated(), { maxLength: 10 }).ids,
    [...codes("abcd"), 0],
  );
});

Deno.test("`tokenizeExamples()` truncates a templated chat's context from the left, keeping labels aligned", () => {
  const chat = { messages: [assistant("hi"), user("q"), assistant("abc")] };
  const full = tokenizeExample(chat, templated(), { maxLength: 100 });
  assert.equal(trainedText(full), "..hi$......abc$");
  const { examples, truncated } = tokenizeExamples([chat], templated(), {
    maxLength: 10,
    truncation: "truncate",
  });
  assert.equal(truncated, 1);
  assert.deepEqual(examples[0].ids, full.ids.slice(5));
  assert.deepEqual(examples[0].labels, full.labels.slice(5));
  // Beyond the context, the last turn loses tokens from the right.
  const short = tokenizeExample(chat, templated(), { maxLength: 3, truncation: "truncate" });
  assert.deepEqual(short.ids, codes("abc"));
  assert.throws(
    () => tokenizeExample(chat, templated(), { maxLength: 10 }),
    /15 tokens \(prompt 11, completion 4\) exceed maxLength 10/,
  );
});

Deno.test("`tokenizeExamples()` reports templates that are not prefix-stable, raise, or have no end-of-turn id", () => {
  const chat: ChatExample = {
    messages: [user("hi"), assistant("yo")],
    source: { file: "c.jsonl", line: 4 },
  };
  const withTemplate = (render: ChatTemplateLike["render"]) => ({
    ...templated(),
    chatTemplate: { render },
  });
  const issue = (tok: TokenizerLike) => {
    try {
      tokenizeExamples([chat], tok, { maxLength: 100 });
    } catch (e) {
      assert.ok(e instanceof DataError);
      assert.equal(e.issues[0].where, "c.jsonl:4");
      return e.issues[0].message;
    }
    throw new Error("expected a DataError");
  };
  // Marks the last message: rendering a prefix is not the start of the whole rendering.
  const marksLast = withTemplate((ms, o = {}) =>
    ms.map((m, i) => `${i === ms.length - 1 ? "*" : ""}${m.content}\u0001`).join("") +
    (o.addGenerationPrompt ? ">" : "")
  );
  assert.match(
    issue(marksLast),
    /^the chat template is not prefix-stable: the messages before assistant message 1, rendered with the generation prompt \(ending "\*hi\\u0001>"\) are not the start of the whole chat's text/,
  );
  const raises = withTemplate(() => {
    throw new Error("Cannot render chat template of t: roles must alternate");
  });
  assert.equal(issue(raises), "Cannot render chat template of t: roles must alternate");
  assert.match(
    issue({ ...withTemplate(templated().chatTemplate!.render), eosId: undefined, stopIds: [] }),
    /has a chat template but no end-of-turn id \(stopIds or eosId\)/,
  );
});

/** A HuggingFaceTokenizer in the given style with one of the real chat templates. */
function modelTokenizer(name: string, json: Record<string, unknown>): HuggingFaceTokenizer {
  const { chat_template, bos_token, eos_token } = CHAT_TEMPLATES[name];
  return HuggingFaceTokenizer.fromJSON(json, { bos_token, eos_token, chat_template }, name);
}

/** The decoded text of each run of trained labels. */
function trainedSpans(tok: TokenizerLike, r: { labels: number[] }): string[] {
  const spans: number[][] = [];
  r.labels.forEach((l, t) => {
    if (l === X) return;
    if (t === 0 || r.labels[t - 1] === X) spans.push([]);
    spans[spans.length - 1].push(l);
  });
  return spans.map((s) => tok.decode(s));
}

const CHAT: ChatExample = {
  messages: [
    { role: "system", content: "Be brief." },
    user("Hi"),
    assistant("  Hello there!  "),
    user("2+2?"),
    assistant("4"),
  ],
};

Deno.test("`tokenizeExample()` with SmolLM2's ChatML template trains each answer and its <|im_end|>", () => {
  const tok = modelTokenizer("SmolLM2-Instruct", byteLevelJson("smollm2"));
  const r = tokenizeExample(CHAT, tok, { maxLength: 200 });
  const before1 = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
    "<|im_start|>assistant\n";
  const before2 = before1 + "  Hello there!  <|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n" +
    "<|im_start|>assistant\n";
  // The whole chat is encoded as one text, through the last <|im_end|> (its "\n" is dropped).
  assert.deepEqual(r.ids, tok.encode(before2 + "4<|im_end|>"));
  const start1 = tok.encode(before1).length, end1 = tok.encode(before1 + "  Hello there!  ").length;
  const start2 = tok.encode(before2).length;
  const expected = r.ids.map((id, t) => (t >= start1 && t <= end1) || t >= start2 ? id : X);
  assert.deepEqual(r.labels, expected);
  assert.equal(r.ids[end1], 273, "<|im_end|> closes the first answer");
  assert.deepEqual(trainedSpans(tok, r), ["  Hello there!  <|im_end|>", "4<|im_end|>"]);
});

Deno.test("`tokenizeExample()` with Llama-3's template trains the trimmed answers and <|eot_id|>", () => {
  for (const name of ["Llama-3-Instruct", "Llama-3.2-Instruct"]) {
    const tok = modelTokenizer(name, byteLevelJson("llama3"));
    const r = tokenizeExample(CHAT, tok, { maxLength: 300 });
    assert.deepEqual(trainedSpans(tok, r), ["Hello there!<|eot_id|>", "4<|eot_id|>"], name);
    assert.equal(r.ids[0], 271, `${name}: the template writes <|begin_of_text|>`);
    assert.equal(r.ids[r.ids.length - 1], 275);
  }
});

Deno.test("`tokenizeExample()` with TinyLlama's template and byte-fallback BPE trains answers and </s>", () => {
  const tok = modelTokenizer("TinyLlama-Chat", byteFallbackJson("normalizer"));
  const r = tokenizeExample(CHAT, tok, { maxLength: 300 });
  // The decoder drops the answer's first space (the one it takes for the normalizer's "▁").
  assert.deepEqual(trainedSpans(tok, r), [" Hello there!  </s>", "4</s>"]);
  assert.equal(r.labels.filter((l) => l === 2).length, 2, "user and system </s> are masked");
});

Deno.test("`tokenizeExample()` reports a tokenizer that merges across the start of an answer", () => {
  // Qwen2's regex keeps "\n\n" together, and this vocabulary merges it: the generation prompt
  // ends in "\n", the answer starts with "\n", so no token boundary separates them.
  const tok = modelTokenizer("Qwen2.5-Instruct", byteLevelJson("qwen2"));
  const chat = { messages: [user("Hi"), assistant("\nHi")] };
  assert.throws(
    () => tokenizeExample(chat, tok, { maxLength: 200 }),
    /Cannot tokenize example #0: the tokens of the text before assistant message 1 \(ending "…user\\nHi<\|im_end\|>\\n<\|im_start\|>assistant\\n"\) are not a prefix of the whole chat's tokens: the tokenizer merges across the start of the answer "\\nHi<\|im_end\|>\\n"/,
  );
  // SmolLM2's regex splits the newlines, so the same chat is fine there.
  const smol = modelTokenizer("SmolLM2-Instruct", byteLevelJson("smollm2"));
  assert.deepEqual(trainedSpans(smol, tokenizeExample(chat, smol, { maxLength: 200 })), [
    "\nHi<|im_end|>",
  ]);
});

/** A seeded stream of numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

Deno.test("`tokenizeExample()` with a chat template labels exactly the assistant contents and end-of-turn (seeded fuzz)", () => {
  const styles: [string, Record<string, unknown>, string][] = [
    ["SmolLM2-Instruct", byteLevelJson("smollm2"), "<|im_end|>"],
    ["Qwen2.5-Instruct", byteLevelJson("qwen2"), "<|im_end|>"],
    ["Llama-3-Instruct", byteLevelJson("llama3"), "<|eot_id|>"],
    ["TinyLlama-Chat", byteFallbackJson("normalizer"), "</s>"],
  ];
  const pieces = ["hello", "world", "the", "user", "assistant", "é", "日本", "🎉", "42", "?!", "x"];
  const separators = [" ", "  ", "\n", " \n", ", ", ""];
  const rand = lcg(12345);
  const pick = <T>(list: readonly T[]) => list[Math.floor(rand() * list.length)];
  // Contents without leading or trailing whitespace (Llama-3's template trims, and a sentencepiece
  // decoder drops a leading space), possibly empty.
  const content = () => {
    let text = "";
    const n = Math.floor(rand() * 6);
    for (let i = 0; i < n; i++) text += (i > 0 ? pick(separators) : "") + pick(pieces);
    return text;
  };
  for (const [name, json, endOfTurn] of styles) {
    const tok = modelTokenizer(name, json);
    for (let k = 0; k < 40; k++) {
      const messages: ChatMessage[] = rand() < 0.5 ? [{ role: "system", content: content() }] : [];
      const turns = 1 + Math.floor(rand() * 3);
      for (let i = 0; i < turns; i++) messages.push(user(content()), assistant(content()));
      const r = tokenizeExample({ messages }, tok, { maxLength: 10_000 });
      const answers = messages.filter((m) => m.role === "assistant").map((m) => m.content);
      const what = `${name} #${k}: ${JSON.stringify(messages)}`;
      assert.deepEqual(trainedSpans(tok, r), answers.map((a) => a + endOfTurn), what);
      r.labels.forEach((l, t) => assert.ok(l === X || l === r.ids[t], what));
      assert.equal(tok.decode(r.ids.slice(-1)), endOfTurn, what);
      // The ids are the rendered chat's, encoded as one text.
      const rendered = tok.chatTemplate!.render(messages);
      assert.deepEqual(r.ids, tok.encode(rendered).slice(0, r.ids.length), what);
    }
  }
});
