import assert from "node:assert/strict";
import { bleuTokenize } from "../../eval/mod.ts";

// Expected strings follow from the regular expressions of mjpost/sacrebleu
// sacrebleu/tokenizers/tokenizer_13a.py, tokenizer_re.py, tokenizer_intl.py and tokenizer_char.py,
// applied by hand; each comment names the rule at work.

Deno.test("bleuTokenize() handles empty and whitespace-only lines", () => {
  for (const tokenizer of ["13a", "intl", "char", "none"] as const) {
    assert.equal(bleuTokenize("", tokenizer), "", tokenizer);
  }
  assert.equal(bleuTokenize(" \t ", "13a"), "");
});

Deno.test("bleuTokenize() 13a splits punctuation but not apostrophes or inner hyphens", () => {
  // ' (0x27) and - (0x2D) are outside the symbol class; "." and "," split unless next to digits.
  assert.equal(
    bleuTokenize("It wasn't state-of-the-art, was it?"),
    "It wasn't state-of-the-art , was it ?",
  );
  assert.equal(
    bleuTokenize('(hi) [x] {y} <z> a/b @c #d $e %f ^g &h *i +j =k |l ~m `n _o :p ;q "r" !s'),
    '( hi ) [ x ] { y } < z > a / b @ c # d $ e % f ^ g & h * i + j = k | l ~ m ` n _ o : p ; q " r " ! s',
  );
});

Deno.test("bleuTokenize() 13a keeps 1,000.5 whole and splits a sentence-final period off 2020", () => {
  // ([^0-9])([.,]) and ([.,])([^0-9]) need a non-digit on one side; the line is padded with a
  // space, so the final "." of "2020." has one.
  assert.equal(bleuTokenize("Paid 1,000.5 in 2020."), "Paid 1,000.5 in 2020 .");
  // A dash after a digit is split: ([0-9])(-).
  assert.equal(bleuTokenize("pages 3-4 and -5"), "pages 3 - 4 and -5");
  // Only digits protect a period: between letters it splits.
  assert.equal(bleuTokenize("e.g. U.S.A."), "e . g . U . S . A .");
  assert.equal(bleuTokenize("..."), ". . .");
});

Deno.test("bleuTokenize() 13a unescapes exactly four HTML entities", () => {
  // &quot; &amp; &lt; &gt; are replaced (in that order); &apos; is not, so its & and ; split.
  assert.equal(bleuTokenize("&quot;A&quot; &lt;b&gt; &amp; c"), '" A " < b > & c');
  assert.equal(bleuTokenize("it&apos;s"), "it & apos ; s");
  // "&amp;" is replaced before "&lt;", so "&amp;lt;" becomes "&lt;" and then "<".
  assert.equal(bleuTokenize("&amp;lt;"), "<");
  // Without "&" the entity step is skipped entirely; intl never unescapes.
  assert.equal(bleuTokenize("&quot;x&quot;", "intl"), "& quot ; x & quot ;");
});

Deno.test("bleuTokenize() 13a removes <skipped> and joins lines", () => {
  // "<skipped>" is deleted, "-\n" deleted (a hyphenated line break), "\n" becomes a space.
  assert.equal(bleuTokenize("a<skipped>b hyph-\nen new\nline"), "ab hyphen new line");
});

Deno.test("bleuTokenize() 13a leaves non-ASCII punctuation attached", () => {
  // Only ASCII symbols are in 13a's class: "—", "«", "»" and "。" stay inside tokens.
  assert.equal(bleuTokenize("«oui»—non。"), "«oui»—non。");
});

Deno.test("bleuTokenize() intl splits Unicode punctuation and symbols", () => {
  // (\P{N})(\p{P}) and (\p{P})(\P{N}) split punctuation with a non-number on either side;
  // (\p{S}) splits every symbol. No padding: the final "." of "2020." has a number before it and
  // nothing after it, so it stays.
  assert.equal(bleuTokenize("«oui»—non。", "intl"), "« oui » — non 。");
  assert.equal(bleuTokenize("Paid $1,000.5 in 2020.", "intl"), "Paid $ 1,000.5 in 2020.");
  assert.equal(bleuTokenize("It wasn't 5€ 🙂.", "intl"), "It wasn ' t 5 € 🙂 .");
});

Deno.test("bleuTokenize() char joins code points with spaces", () => {
  // Python iterates code points, so the emoji (two UTF-16 units) stays one character.
  assert.equal(bleuTokenize("a🙂b", "char"), "a 🙂 b");
  assert.equal(bleuTokenize("ab c", "char"), "a b   c");
});

Deno.test("bleuTokenize() none returns the line unchanged", () => {
  assert.equal(bleuTokenize("  It wasn't.  ", "none"), "  It wasn't.  ");
});

Deno.test("bleuTokenize() rejects an unknown tokenizer", () => {
  assert.throws(
    () => bleuTokenize("a", "zh" as never),
    /Cannot tokenize: unknown BLEU tokenizer "zh"/,
  );
});
