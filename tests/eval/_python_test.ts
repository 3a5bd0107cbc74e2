import assert from "node:assert/strict";
import { pyFormatFixed, pyRstrip, pySplit } from "../../eval/_python.ts";

Deno.test("pyFormatFixed() rounds exact ties half to even as Python's format", () => {
  // Python 3: f"{12.25:.1f}" == "12.2", f"{0.125:.2f}" == "0.12", f"{0.375:.2f}" == "0.38",
  // f"{2.5:.0f}" == "2", f"{3.5:.0f}" == "4" (exact binary ties, round half to even).
  assert.equal(pyFormatFixed(12.25, 1), "12.2");
  assert.equal(pyFormatFixed(0.125, 2), "0.12");
  assert.equal(pyFormatFixed(0.375, 2), "0.38");
  assert.equal(pyFormatFixed(2.5, 0), "2");
  assert.equal(pyFormatFixed(3.5, 0), "4");
});

Deno.test("pyFormatFixed() rounds the exact binary value otherwise", () => {
  // 2.675 is 2.67499999999999982236431605997495353221893310546875 in binary: "2.67".
  assert.equal(pyFormatFixed(2.675, 2), "2.67");
  assert.equal(pyFormatFixed(100.00000000000004, 2), "100.00");
  assert.equal(pyFormatFixed(0.9435, 3), "0.944");
  assert.equal(pyFormatFixed(1e21, 1), "1000000000000000000000.0");
  assert.equal(pyFormatFixed(-0.001, 2), "-0.00");
  assert.equal(pyFormatFixed(Number.NaN, 2), "nan");
});

Deno.test("pySplit() and pyRstrip() use Python's whitespace", () => {
  assert.deepEqual(pySplit("  a\u00a0b\u0085c\u001cd\u3000e  "), ["a", "b", "c", "d", "e"]);
  assert.deepEqual(pySplit("a\ufeffb"), ["a\ufeffb"]);
  assert.deepEqual(pySplit(""), []);
  assert.equal(pyRstrip("a b \u2003\n"), "a b");
});
