/**
 * The PEFT contract test: every registered method is a no-op until trained, trains only what it
 * declares (frozen base parameters stay bit-identical and hold no gradient or optimizer state),
 * lowers the loss, and saves and loads exactly — on GPT-2 and on each Llama-family tiny preset.
 */
import assert from "node:assert/strict";
import {
  type BatchSource,
  type Decoder,
  GPT,
  Llama,
  llamaConfig,
  PEFT_METHODS,
  Rng,
  type TensorData,
  Trainer,
} from "../../mod.ts";
import { gpu } from "../helpers.ts";
import { f32Weights, randomWeights, SMALL } from "../models/_fixtures.ts";
import { LLAMA_PRESETS, llamaF32, llamaWeights } from "./_llama.ts";

const B = 2, T = 8;

/** A base model to run the contract on: a label for the test name and a fresh copy of it. */
interface Base {
  label: string;
  create(weights: Map<string, TensorData>): Promise<Decoder>;
  weights: Map<string, TensorData>;
}

const BASES: Base[] = [
  {
    label: "",
    create: async (weights) => await GPT.create(await gpu(), SMALL, { weights }),
    weights: f32Weights(randomWeights(SMALL, 31), SMALL),
  },
  ...LLAMA_PRESETS.map((preset): Base => {
    const cfg = llamaConfig(preset);
    return {
      label: ` on ${preset}`,
      create: async (weights) => await Llama.create(await gpu(), cfg, { weights }),
      weights: llamaF32(llamaWeights(cfg, 31), cfg),
    };
  }),
];

function source(V: number): BatchSource {
  return {
    batchesPerEpoch: 1,
    batch: () => {
      const rng = new Rng(4);
      const ids = Array.from({ length: B * T }, () => rng.int(V));
      return { ids, labels: ids, batchSize: B, seqLen: T };
    },
  };
}

async function logits(model: Decoder): Promise<Float32Array> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, source(model.shape.V).batch(0, 0));
  await batch.submit();
  const [out] = await model.gpu.read([acts.logits]);
  acts.release();
  const n = acts.nVirtual;
  if (n === 0) return out;
  // Keep the logits of the real positions only.
  const V = model.shape.V, full = T + n, real = new Float32Array(B * T * V);
  for (let b = 0; b < B; b++) {
    real.set(out.subarray((b * full + n) * V, (b * full + full) * V), b * T * V);
  }
  return real;
}

for (const base of BASES) {
  for (const [name, method] of Object.entries(PEFT_METHODS)) {
    Deno.test(`PEFT method "${name}" keeps the contract: no-op at start, trains only its parameters, saves and loads${base.label}`, async () => {
      const w = base.weights;
      const model = await base.create(w);
      if (name === "bitfit" && ![...model.params.keys()].some((p) => p.endsWith(".bias"))) {
        // Nothing to train: refused with a clear error rather than a run that learns nothing.
        await assert.rejects(method.apply(model, method.validate({}), 7), /no bias parameters/);
        model.release();
        return;
      }
      const before = await logits(model);
      // The test model has 16 positions: leave room for the 8 real ones.
      const settings = "num_virtual_tokens" in method.defaults ? { num_virtual_tokens: 4 } : {};
      const inst = await method.apply(model, method.validate(settings), 7);
      const trainable = inst.trainable();
      assert.ok(trainable.length > 0, "something is trainable");
      assert.ok(
        trainable.every((p) => p.grad !== null),
        "every trainable parameter has a gradient buffer",
      );
      const names = new Set(trainable.map((p) => p.name));
      for (const p of model.parameters()) {
        if (!names.has(p.name)) {
          assert.equal(p.grad, null, `${p.name} is frozen: no gradient buffer`);
        }
      }
      for (const p of inst.added) assert.ok(names.has(p.name), `added ${p.name} is trainable`);
      if (inst.identityAtInit !== false) {
        assert.deepEqual(await logits(model), before, "no-op until trained");
      } else {assert.notDeepEqual(
          await logits(model),
          before,
          "virtual tokens change the outputs from the start",
        );}

      const trainer = await Trainer.create(model, source(model.shape.V), {
        steps: 8,
        lr: 1e-2,
        logEvery: 8,
        optimizer: { weightDecay: 0 },
      }, {
        params: trainable,
      });
      assert.equal(
        trainer.optimizer.stateBytes,
        trainable.reduce((a, p) => a + 8 * p.value.size, 0),
        "optimizer state only for trainable parameters",
      );
      const result = await trainer.run();
      assert.ok(
        result.losses[7] < result.losses[0],
        `loss ${result.losses[0]} → ${result.losses[7]}`,
      );
      const after = await model.exportWeights();
      for (const [pname, t] of w) {
        const changed = after.get(pname)!.data.some((v, i) => v !== t.data[i]);
        assert.equal(
          changed,
          names.has(pname),
          `${pname} ${names.has(pname) ? "trained" : "frozen, bit-identical"}`,
        );
      }
      const trained = await logits(model);

      const dir = await Deno.makeTempDir();
      try {
        await inst.save(dir);
        const fresh = await base.create(w);
        const again = await method.apply(fresh, { ...inst.config } as never, 99);
        await again.load(dir);
        assert.deepEqual(await logits(fresh), trained, "save → load reproduces the trained model");
        fresh.release();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
      trainer.release();
      model.release();
    });
  }
}

Deno.test("every registered method names its file type once: PEFT's peft_type, a WHET_ one, or whet_peft.json (the masking methods)", () => {
  const types = Object.values(PEFT_METHODS).map((m) => m.peftType);
  assert.deepEqual(types, [
    undefined,
    undefined,
    undefined,
    "LORA",
    "WHET_BOTTLENECK",
    "PROMPT_TUNING",
    "PREFIX_TUNING",
    "IA3",
  ]);
  for (const m of Object.values(PEFT_METHODS)) assert.equal(typeof m.load, "function", m.name);
});
