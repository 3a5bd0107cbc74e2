/**
 * The browser bundle holds no Deno-only API: web/main.ts and everything of whet's it imports
 * (models, kernels, PEFT, training, data, evaluation, io/ through web/import_map.json) bundle
 * without `Deno.*` or `node:` imports.
 *
 * @module
 */

import assert from "node:assert/strict";
import { buildBundle, denoOnlyApis } from "./_bundle.ts";

Deno.test("`deno task web:build` bundles web/main.ts with no Deno-only API", async () => {
  const dir = await Deno.makeTempDir({ prefix: "whet-web-bundle-" });
  try {
    const code = await buildBundle(`${dir}/main.js`);
    assert.ok(code.length > 100_000, `the bundle is only ${code.length} bytes`);
    const found = denoOnlyApis(code);
    assert.deepEqual(found, [], `Deno-only APIs reached the bundle:\n${found.join("\n")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("denoOnlyApis() finds Deno.* and node: imports in a bundle built the same way", async () => {
  const dir = await Deno.makeTempDir({ prefix: "whet-web-bundle-" });
  try {
    const code = await buildBundle(`${dir}/bad.js`, "tests/web/fixtures/deno_only.ts");
    const found = denoOnlyApis(code);
    assert.ok(found.some((f) => f.startsWith("Deno.readTextFile")), found.join("\n"));
    assert.ok(found.some((f) => /node:path/.test(f)), found.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(denoOnlyApis('const a=globalThis.x;import"./b.js";const s="Deno 2";'), []);
  assert.equal(denoOnlyApis("Deno?.env.get('X');require('node:fs')").length, 2);
});
