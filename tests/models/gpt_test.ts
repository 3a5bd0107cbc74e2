import assert from "node:assert/strict";
import { GPT, type GPTConfig, loadHFCheckpoint, Rng, saveHFCheckpoint } from "../../mod.ts";
import { assertClose, centralDiff, gpu } from "../helpers.ts";
import { gpt2Ref } from "../ref/gpt2.ts";
import { f32Weights, randomWeights, SMALL } from "./_fixtures.ts";

function batchOf(rng: Rng, cfg: GPTConfig, B: number, T: number) {
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  // Labels: the ids themselves, with the first 3 positions of each row masked (a "prompt").
  const labels = ids.map((id, i) => (i % T) < 3 ? -100 : id);
  return { ids, labels };
}

Deno.test("GPT matches the float64 reference: logits, loss and every parameter gradient (test_gpt2.c style)", async () => {
  const g = await gpu();
  const cfg = SMALL, B = 2, T = 7;
  const w = randomWeights(cfg, 11);
  // The checkpoint goes through the Hugging Face layout on disk, as a user's would.
  const dir = await Deno.makeTempDir();
  try {
    await saveHFCheckpoint(dir, cfg, f32Weights(w, cfg));
    const ckpt = await loadHFCheckpoint(dir);
    const model = await GPT.create(g, ckpt.config, { weights: ckpt.tensors });
    const acts = model.activations(B, T);
    const { ids, labels } = batchOf(new Rng(5), cfg, B, T);
    const ref = gpt2Ref(cfg, w, ids, labels, B, T, true);

    let batch = g.batch();
    model.forward(batch, acts, { ids, labels });
    await batch.submit();
    const [logits] = await g.read([acts.logits]);
    const loss = await model.meanLoss(acts);
    // f32 through two blocks with O(1) activations: errors ~1e-6 relative to the largest logit.
    assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits");
    assert.ok(Math.abs(loss - ref.loss) < 1e-5 * Math.abs(ref.loss), `loss ${loss} vs ${ref.loss}`);

    batch = g.batch();
    model.zeroGrad(batch);
    model.forward(batch, acts, { ids, labels }, { training: true });
    model.backward(batch, acts);
    await batch.submit();
    const grads = await model.exportGrads();
    assert.equal(grads.size, w.size, "every parameter has a gradient");
    for (const [name, refGrad] of ref.grads!) {
      // Gradients are sums over B·T rows of products of f32 values; scale the tolerance by the
      // tensor's largest reference gradient so that near-zero entries are judged absolutely.
      let max = 0;
      for (const v of refGrad) max = Math.max(max, Math.abs(v));
      assertClose(
        grads.get(name)!,
        refGrad,
        { rtol: 1e-3, atol: 1e-4 * max + 1e-9 },
        `grad ${name}`,
      );
    }
    acts.release();
    model.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the float64 reference's whole-model gradients match central finite differences on sampled parameters", () => {
  const cfg = SMALL, B = 2, T = 5;
  const w = randomWeights(cfg, 3);
  const { ids, labels } = batchOf(new Rng(8), cfg, B, T);
  const ref = gpt2Ref(cfg, w, ids, labels, B, T, true);
  const rng = new Rng(1);
  for (const name of w.keys()) {
    const x = w.get(name)!;
    for (let s = 0; s < 2; s++) {
      const i = rng.int(x.length);
      const fd = centralDiff(() => gpt2Ref(cfg, w, ids, labels, B, T).loss, x, i, 1e-5);
      const an = ref.grads!.get(name)![i];
      assert.ok(
        Math.abs(fd - an) <= 1e-6 + 1e-4 * Math.abs(an),
        `${name}[${i}]: analytic ${an}, finite difference ${fd}`,
      );
    }
  }
});
