import assert from "node:assert/strict";
import { IGNORE_INDEX as X } from "../../kernels/crossentropy.ts";
import {
  DataError,
  tokenizeExample,
  tokenizeExamples,
  type TokenizerLike,
} from "../../data/mod.ts";
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
