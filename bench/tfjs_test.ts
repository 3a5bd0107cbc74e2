import assert from "node:assert/strict";
import { benchTfjs, tfjsPeer } from "./tfjs.ts";
import { type BenchMethod, benchTrain } from "./train.ts";
import { gpu } from "../tests/helpers.ts";

Deno.test("`tfjsPeer()` runs TF.js on its webgpu backend", async () => {
  const info = await tfjsPeer();
  assert.equal(info.backend, "webgpu");
  assert.equal(info.version, "4.22.0");
});

for (const method of ["full", "lora", "adapters", "prompt"] as BenchMethod[]) {
  Deno.test(`\`benchTfjs()\` trains whet's tiny model with ${method}: loss from ln 256, falling`, async () => {
    const peer = await benchTfjs("tiny", method, 4);
    // GPT-2 init (std 0.02) gives near-uniform logits: the initial loss is ln V up to ~1%
    // (logits of std ≈ 0.02·√C add about their variance / 2).
    assert.ok(
      Math.abs(peer.initialLoss - Math.log(256)) < 0.05,
      `initial loss ${peer.initialLoss}`,
    );
    assert.ok(peer.finalLoss < peer.initialLoss, `${peer.initialLoss} → ${peer.finalLoss}`);
    // The same parameters are trainable as in whet's benchmark model of the same method.
    const whet = await benchTrain(await gpu(), "tiny", method, 1);
    assert.equal(peer.trainable, whet.trainable);
    assert.equal(peer.batch * peer.context, whet.batch * whet.context);
  });
}
