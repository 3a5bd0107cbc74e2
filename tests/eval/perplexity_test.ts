import assert from "node:assert/strict";
import { perplexity } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";

Deno.test("perplexity() is exp of the mean token loss", () => {
  // Probabilities 1/2, 1/4, 1/8: mean NLL = (1 + 2 + 3) ln 2 / 3 = 2 ln 2, perplexity 4.
  assertClose(perplexity([Math.log(2), Math.log(4), Math.log(8)]), 4, 1e-12, "perplexity");
  // A uniform guess over 50257 tokens has perplexity 50257; typed arrays are accepted.
  assertClose(perplexity(new Float64Array(3).fill(Math.log(50257))), 50257, 1e-8, "uniform");
  assert.equal(perplexity([0, 0]), 1);
});

Deno.test("perplexity() is infinite when a token had probability 0", () => {
  assert.equal(perplexity([1, Infinity]), Infinity);
});

Deno.test("perplexity() rejects empty input, NaN and -Infinity", () => {
  assert.throws(() => perplexity([]), /Cannot compute perplexity: no token losses/);
  assert.throws(
    () => perplexity([1, Number.NaN]),
    /Cannot compute perplexity: the loss of token 1 is NaN/,
  );
  assert.throws(() => perplexity([-Infinity]), /the loss of token 0 is -Infinity/);
});
