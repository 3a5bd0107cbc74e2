import assert from "node:assert/strict";
import { normalizeAnswer } from "../../eval/mod.ts";

// The steps of SQuAD's official evaluate-v2.0.py normalize_answer: lower, remove_punc
// (string.punctuation), remove_articles (re.sub(r'\b(a|an|the)\b', ' ', text)), white_space_fix.

Deno.test("normalizeAnswer() applies SQuAD's four steps", () => {
  assert.equal(normalizeAnswer("The  Quick, brown fox!"), "quick brown fox");
  assert.equal(normalizeAnswer("An apple a day"), "apple day");
});

Deno.test("normalizeAnswer() removes articles only as whole words", () => {
  // "theatre", "another" and "anthem" keep their letters; "a." loses the "." first, then "a".
  assert.equal(normalizeAnswer("the theatre, another anthem, a."), "theatre another anthem");
  // Python's \b is Unicode-aware: in "éthe" the "the" follows a letter, so it stays.
  assert.equal(normalizeAnswer("éthe the"), "éthe");
});

Deno.test("normalizeAnswer() removes ASCII punctuation only", () => {
  // Hyphens vanish (joining the words), curly quotes and the ideographic full stop stay.
  assert.equal(normalizeAnswer("state-of-the-art “ok”。"), "stateoftheart “ok”。");
  assert.equal(normalizeAnswer("1,000.5 in 2020."), "10005 in 2020");
});

Deno.test("normalizeAnswer() can turn each step off", () => {
  const text = " The Cat, sat ";
  assert.equal(normalizeAnswer(text, { lowercase: false }), "The Cat sat");
  assert.equal(normalizeAnswer(text, { stripPunctuation: false }), "cat, sat");
  assert.equal(normalizeAnswer(text, { stripArticles: false }), "the cat sat");
  assert.equal(normalizeAnswer(text, { collapseWhitespace: false }), "   cat sat ");
  const none = {
    lowercase: false,
    stripPunctuation: false,
    stripArticles: false,
    collapseWhitespace: false,
  };
  assert.equal(normalizeAnswer(text, none), text);
});

Deno.test("normalizeAnswer() handles empty and punctuation-only strings", () => {
  assert.equal(normalizeAnswer(""), "");
  assert.equal(normalizeAnswer("?!..."), "");
});
