import assert from "node:assert/strict";
import {
  adapters,
  GPT,
  loadHFCheckpoint,
  peftMethod,
  Rng,
  saveMergedCheckpoint,
} from "../../mod.ts";
import { gpu } from "../helpers.ts";
import { f32Weights, randomWeights, SMALL } from "../models/_fixtures.ts";

async function logits(model: GPT, ids: number[]): Promise<Float32Array> {
  const acts = model.activations(1, ids.length);
  const batch = model.gpu.batch();
  model.forward(batch, acts, { ids });
  await batch.submit();
  const [out] = await model.gpu.read([acts.logits]);
  acts.release();
  return out;
}

const MERGEABLE: [string, Record<string, unknown>][] = [["lora", {
  r: 4,
  target_modules: ["c_attn", "c_fc"],
}], ["ia3", {}]];
for (const [name, settings] of MERGEABLE) {
  Deno.test(`saveMergedCheckpoint() exports ${name} as a plain GPT-2 checkpoint with the same outputs`, async () => {
    const g = await gpu();
    const model = await GPT.create(g, SMALL, {
      weights: f32Weights(randomWeights(SMALL, 5), SMALL),
    });
    const method = peftMethod(name);
    const inst = await method.apply(model, method.validate(settings), 1);
    const rng = new Rng(2);
    for (const p of inst.added) {
      p.value.write(
        rng.fillNormal(new Float32Array(p.value.size), 0.3, name === "ia3" ? 1 : 0) as Float32Array,
      );
    }
    const ids = [3, 14, 15, 9, 26, 5];
    const tuned = await logits(model, ids);
    const dir = await Deno.makeTempDir();
    try {
      await saveMergedCheckpoint(model, inst, dir);
      assert.deepEqual(await logits(model, ids), tuned, "the model is unmerged again afterwards");
      const ck = await loadHFCheckpoint(dir);
      const plain = await GPT.create(g, ck.config, { weights: ck.tensors, trainable: false });
      const merged = await logits(plain, ids);
      let max = 0, scale = 0;
      for (let i = 0; i < tuned.length; i++) {
        max = Math.max(max, Math.abs(merged[i] - tuned[i]));
        scale = Math.max(scale, Math.abs(tuned[i]));
      }
      // Folding changes the order of f32 operations only: ~1e-6 of the logits' scale.
      assert.ok(max <= 1e-4 * scale, `max difference ${max} (logits up to ${scale})`);
      plain.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
      model.release();
    }
  });
}

Deno.test("saveMergedCheckpoint() refuses a model whose frozen base is stored in f16 (BitFit too, which trains no half weight)", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1, trainable: false, baseDtype: "f16" });
  const inst = await peftMethod("bitfit").apply(model, {}, 1);
  await assert.rejects(
    saveMergedCheckpoint(model, inst, "/nonexistent"),
    /Cannot export a merged model: the frozen base is stored in f16/,
  );
  model.release();
});

Deno.test("saveMergedCheckpoint() refuses methods a plain GPT-2 cannot hold", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1 });
  const inst = await adapters.apply(model, adapters.validate({}), 1);
  await assert.rejects(
    saveMergedCheckpoint(model, inst, "/nonexistent"),
    /Cannot export a merged model for PEFT method "adapters"/,
  );
  model.release();
});
