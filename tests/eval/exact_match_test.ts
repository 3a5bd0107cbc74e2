import assert from "node:assert/strict";
import { exactMatch } from "../../eval/mod.ts";

Deno.test("exactMatch() compares SQuAD-normalised answers", () => {
  // Normalised, "The Eiffel Tower!" and "eiffel tower" are both "eiffel tower".
  assert.equal(exactMatch("The Eiffel Tower!", "eiffel tower"), 1);
  assert.equal(exactMatch("Eiffel", "Eiffel Tower"), 0);
});

Deno.test("exactMatch() takes the best over several references", () => {
  assert.equal(exactMatch("Paris", ["London", "paris."]), 1);
  assert.equal(exactMatch("Rome", ["London", "paris."]), 0);
});

Deno.test("exactMatch() follows the chosen normalisation", () => {
  assert.equal(exactMatch("Paris", "paris", { lowercase: false }), 0);
  assert.equal(exactMatch("the end", "end", { stripArticles: false }), 0);
  assert.equal(exactMatch("a  b", "a b", { collapseWhitespace: false, stripArticles: false }), 0);
});

Deno.test("exactMatch() handles empty strings", () => {
  // Both normalise to "": a match, as SQuAD's compute_exact.
  assert.equal(exactMatch("", ""), 1);
  assert.equal(exactMatch("the", ""), 1);
  assert.equal(exactMatch("", "x"), 0);
  assert.throws(() => exactMatch("a", []), /Cannot compute exact match: no references/);
});
