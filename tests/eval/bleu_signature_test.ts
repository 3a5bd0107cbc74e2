import assert from "node:assert/strict";
import { bleuSignature } from "../../eval/mod.ts";

Deno.test("bleuSignature() prints sacreBLEU's default signature", () => {
  // mjpost/sacrebleu README.md: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.0.0 (the
  // version field is that of the release; this reproduces 2.6.0).
  assert.equal(
    bleuSignature({ nrefs: 1 }),
    "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
  );
});

Deno.test("bleuSignature() prints smoothing values with two decimals", () => {
  // sacreBLEU's BLEUSignature: smooth_str += f'[{smooth_val:.2f}]' for floor and add-k.
  assert.equal(
    bleuSignature({ nrefs: "var", smoothMethod: "floor", smoothValue: 0.5 }),
    "nrefs:var|case:mixed|eff:no|tok:13a|smooth:floor[0.50]|version:2.6.0",
  );
  assert.equal(
    bleuSignature({
      nrefs: 3,
      smoothMethod: "add-k",
      tokenize: "intl",
      lowercase: true,
      effectiveOrder: true,
    }),
    "nrefs:3|case:lc|eff:yes|tok:intl|smooth:add-k[1.00]|version:2.6.0",
  );
  // exp and none take no value, even if one is given.
  assert.equal(
    bleuSignature({ nrefs: 1, smoothMethod: "none", smoothValue: 3, tokenize: "char" }),
    "nrefs:1|case:mixed|eff:no|tok:char|smooth:none|version:2.6.0",
  );
});
