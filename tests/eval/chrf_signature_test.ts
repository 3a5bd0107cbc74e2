import assert from "node:assert/strict";
import { chrfSignature } from "../../eval/mod.ts";

Deno.test("chrfSignature() prints sacreBLEU's chrF and chrF++ signatures", () => {
  // mjpost/sacrebleu README.md: chrF2 nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.0.0
  // and, with --chrf-word-order 2, nw:2 (version field: this reproduces 2.6.0).
  assert.equal(
    chrfSignature({ nrefs: 1 }),
    "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
  );
  assert.equal(
    chrfSignature({ nrefs: 1, wordOrder: 2 }),
    "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0",
  );
  // eps_smoothing prints eff:no.
  assert.equal(
    chrfSignature({
      nrefs: "var",
      epsSmoothing: true,
      lowercase: true,
      whitespace: true,
      charOrder: 4,
    }),
    "nrefs:var|case:lc|eff:no|nc:4|nw:0|space:yes|version:2.6.0",
  );
});
