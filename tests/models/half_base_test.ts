/**
 * Frozen base weights stored in f16 or bf16 (DecoderOptions.baseDtype), f32 compute: the tiny
 * GPT-2 and Llama models against the float64 reference on the *rounded* weights (logits, LoRA
 * gradients, cached generation), the exact bits of F16/BF16 checkpoints kept, and the refusals
 * (training a half parameter, full fine-tuning on a half base, LoRA/IA³ merge, f16 overflow).
 */
import assert from "node:assert/strict";
import {
  type Decoder,
  defaultBaseDtype,
  generate,
  GPT,
  Gpu,
  HALF_BASE_METHODS,
  type HalfDtype,
  ia3,
  Llama,
  llamaConfig,
  loadModelCheckpoint,
  lora,
  parseSafetensors,
  PEFT_METHODS,
  peftMethod,
  Rng,
  saveModelCheckpoint,
  Trainer,
} from "../../mod.ts";
import { storedInBaseDtype } from "../../models/base_dtype.ts";
import { assertClose, gpu } from "../helpers.ts";
import { gpt2Ref, type Weights } from "../ref/gpt2.ts";
import { roundAllRef } from "../ref/half.ts";
import { llamaRef } from "../ref/llama.ts";
import { llamaF32, llamaWeights } from "../peft/_llama.ts";
import { f32Weights, randomWeights, SMALL } from "./_fixtures.ts";

const B = 2, T = 6;
const DTYPES: HalfDtype[] = ["f16", "bf16"];
const LLAMA = llamaConfig("smollm-tiny"); // tied head, grouped-query attention
const LLAMA_UNTIED = llamaConfig("llama-tiny"); // untied lm_head

/** The weights as the model holds them: every half-stored matrix rounded to `dtype`. */
function rounded(w: Weights, shapes: Map<string, readonly number[]>, dtype: HalfDtype): Weights {
  return new Map(
    [...w].map(([k, v]) => [k, storedInBaseDtype(k, shapes.get(k)!) ? roundAllRef(v, dtype) : v]),
  );
}

interface Family {
  label: string;
  make(dtype: HalfDtype, g?: Gpu): Promise<Decoder>;
  weights: Weights;
  shapes: Map<string, readonly number[]>;
  ref: (w: Weights, ids: number[], labels: number[], b: number, t: number, grads: boolean) => {
    logits: Float64Array;
    loss: number;
    grads?: Map<string, Float64Array>;
  };
  vocab: number;
  /** Conv1D's (in, out) weights (GPT-2) or nn.Linear's (out, in). */
  fanInFanOut: boolean;
  targets: string[];
}

/** GPT-2 and the Llama family (tied, untied head); `vocab` overrides the vocabulary size. */
function families(vocab?: number): Family[] {
  const gcfg = vocab ? { ...SMALL, vocab_size: vocab } : SMALL;
  const gw = randomWeights(gcfg, 21), gf = f32Weights(gw, gcfg);
  const gptShapes = new Map([...gf].map(([k, v]) => [k, v.shape]));
  const out: Family[] = [{
    label: "GPT-2",
    make: async (dtype, g) =>
      await GPT.create(g ?? await gpu(), gcfg, { weights: gf, trainable: false, baseDtype: dtype }),
    weights: gw,
    shapes: gptShapes,
    ref: (w, ids, labels, b, t, grads) => gpt2Ref(gcfg, w, ids, labels, b, t, grads),
    vocab: gcfg.vocab_size,
    fanInFanOut: true,
    targets: ["c_attn", "mlp.c_proj"],
  }];
  for (const base of [LLAMA, LLAMA_UNTIED]) {
    const cfg = vocab ? { ...base, vocab_size: vocab } : base;
    const lw = llamaWeights(cfg, 22), lf = llamaF32(lw, cfg);
    out.push({
      label: `Llama (${cfg.tie_word_embeddings ? "tied" : "untied"} head)`,
      make: async (dtype, g) =>
        await Llama.create(g ?? await gpu(), cfg, {
          weights: lf,
          trainable: false,
          baseDtype: dtype,
        }),
      weights: lw,
      shapes: new Map([...lf].map(([k, v]) => [k, v.shape])),
      ref: (w, ids, labels, b, t, grads) => llamaRef(cfg, w, ids, labels, b, t, grads),
      vocab: cfg.vocab_size,
      fanInFanOut: false,
      targets: ["q_proj", "down_proj"],
    });
  }
  return out;
}

function batchOf(vocab: number, seed: number) {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(vocab));
  return { ids, labels: ids.map((id, i) => (i % T) < 2 ? -100 : id) };
}

/**
 * The checks of one family and dtype on `g`: stored dtypes and rounded values, logits against the
 * float64 model on the rounded weights, LoRA gradients through the merged weight, merge refused.
 */
async function checkHalfBase(fam: Family, dtype: HalfDtype, g?: Gpu): Promise<void> {
  const model = await fam.make(dtype, g);
  assert.equal(model.baseDtype, dtype);
  const wr = rounded(fam.weights, fam.shapes, dtype);
  // Every base matrix is stored in the dtype (half the bytes), and reads back rounded.
  const exported = await model.exportWeights();
  for (const [name, p] of model.params) {
    const half = storedInBaseDtype(name, p.shape);
    assert.equal(p.value.dtype, half ? dtype : "f32", name);
    assert.deepEqual(exported.get(name)!.data, Float32Array.from(wr.get(name)!), name);
  }
  const { ids, labels } = batchOf(fam.vocab, 3);
  // Logits: the f32 model's tolerance of tests/models/gpt_test.ts (the halves are widened
  // exactly, so only f32 arithmetic differs from the float64 model on the rounded weights).
  const acts = model.activations(B, T);
  let batch = model.gpu.batch();
  model.forward(batch, acts, { ids });
  await batch.submit();
  const [logits] = await model.gpu.read([acts.logits]);
  assertClose(logits, fam.ref(wr, ids, labels, B, T, false).logits, {
    rtol: 1e-4,
    atol: 1e-5,
  }, "logits");

  // LoRA on a half base: A, B and their gradients are f32; the reference merges the adapter
  // into the rounded weights: W_eff = W + s·(B·A)ᵀ (Conv1D) or W + s·B·A (nn.Linear).
  const config = lora.validate({ r: 3, lora_alpha: 6, target_modules: fam.targets });
  const inst = await lora.apply(model, config, 5);
  const rng = new Rng(6);
  for (const p of inst.added) {
    assert.equal(p.value.dtype, "f32");
    if (p.name.includes("lora_B")) {
      p.value.write(rng.fillNormal(new Float32Array(p.value.size), 0.5) as Float32Array);
    }
  }
  batch = model.gpu.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, { ids, labels }, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const grads = await model.exportGrads();
  assert.deepEqual([...grads.keys()].sort(), inst.added.map((p) => p.name).sort());
  const s = config.lora_alpha / config.r, r = config.r;
  const values = new Map<string, Float64Array>();
  for (const p of inst.added) values.set(p.name, Float64Array.from(await p.value.read()));
  const eff = new Map([...wr].map(([k, v]) => [k, v.slice()]));
  const layers = inst.layers.map((l) => ({ path: l.path, nIn: l.nIn, nOut: l.nOut }));
  // Element (i, o) of W in its stored layout.
  const at = (i: number, o: number, nIn: number, nOut: number) =>
    fam.fanInFanOut ? i * nOut + o : o * nIn + i;
  for (const { path, nIn, nOut } of layers) {
    const A = values.get(`${path}.lora_A.default.weight`)!;
    const Bm = values.get(`${path}.lora_B.default.weight`)!;
    const W = eff.get(`${path}.weight`)!;
    for (let i = 0; i < nIn; i++) {
      for (let o = 0; o < nOut; o++) {
        let acc = 0;
        for (let k = 0; k < r; k++) acc += A[k * nIn + i] * Bm[o * r + k];
        W[at(i, o, nIn, nOut)] += s * acc;
      }
    }
  }
  const ref = fam.ref(eff, ids, labels, B, T, true);
  // The training forward's loss (over vocabulary chunks where the head is chunked): as
  // tests/models/gpt_test.ts, f32 arithmetic within 1e-5 of the loss.
  const loss = await model.meanLoss(acts);
  assert.ok(Math.abs(loss - ref.loss) < 1e-5 * Math.abs(ref.loss), `loss ${loss} vs ${ref.loss}`);
  for (const { path, nIn, nOut } of layers) {
    const A = values.get(`${path}.lora_A.default.weight`)!;
    const Bm = values.get(`${path}.lora_B.default.weight`)!;
    const dW = ref.grads!.get(`${path}.weight`)!;
    const dA = new Float64Array(r * nIn), dB = new Float64Array(nOut * r);
    for (let k = 0; k < r; k++) {
      for (let i = 0; i < nIn; i++) {
        for (let o = 0; o < nOut; o++) {
          const g = dW[at(i, o, nIn, nOut)];
          dA[k * nIn + i] += s * Bm[o * r + k] * g;
          dB[o * r + k] += s * g * A[k * nIn + i];
        }
      }
    }
    // As tests/peft/lora_test.ts: sums over B·T rows and the rank of f32 products, judged
    // relative to the largest entry.
    const tol = (x: Float64Array) => ({
      rtol: 1e-3,
      atol: 1e-4 * Math.max(...x.map(Math.abs)) + 1e-9,
    });
    assertClose(grads.get(`${path}.lora_A.default.weight`)!, dA, tol(dA), `${path} dA`);
    assertClose(grads.get(`${path}.lora_B.default.weight`)!, dB, tol(dB), `${path} dB`);
  }

  // Merging into a half base is refused, naming the weight; the model is unchanged.
  await assert.rejects(
    () => inst.merge(),
    /Cannot merge LoRA adapter "default" into ".*\.weight": it is stored in (f16|bf16)/,
  );
  acts.release();
  model.release();
}

for (const fam of families()) {
  for (const dtype of DTYPES) {
    Deno.test(`${fam.label} with a ${dtype} base: the weights are the rounded ones, logits match the float64 model on them, LoRA gradients too`, async () => {
      await checkHalfBase(fam, dtype);
    });
  }
}

Deno.test("over a forced 64 KiB binding limit (token tables and heads in half views of their chunks, the chunked head + loss): the same checks and generation (GPT-2 f16, Llamas bf16)", async () => {
  // V 1,999: a half token table (and untied head) of 1,999 × 24 or more halves is over 64 KiB.
  const small = await Gpu.create({ maxBindingBytes: 65536 });
  try {
    for (const fam of families(1999)) {
      const dtype = fam.fanInFanOut ? "f16" : "bf16";
      const m = await fam.make(dtype, small);
      assert.ok(m.wte.value.byteLength > 65536, `${fam.label}: wte must be over the limit`);
      m.release();
      await checkHalfBase(fam, dtype, small);
      await checkGenerate(fam, dtype, small);
    }
  } finally {
    small.destroy();
  }
});

/** Cached and uncached greedy generation: each step's logits are the float64 model's on `wr`. */
async function checkGenerate(fam: Family, dtype: HalfDtype, g?: Gpu): Promise<void> {
  const model = await fam.make(dtype, g);
  const wr = rounded(fam.weights, fam.shapes, dtype);
  const prompts = [[3, 1, 4], [1, 5, 9, 2, 6]];
  for (const cache of [true, false]) {
    const logits = new Map<string, Float32Array>();
    const out = await generate(model, prompts, {
      maxNewTokens: 4,
      cache,
      onLogits: (step, row, l) => logits.set(`${step},${row}`, l.slice()),
    });
    assert.equal(logits.size, 8);
    for (const [key, l] of logits) {
      const [step, row] = key.split(",").map(Number);
      const seq = [...prompts[row], ...out.ids[row].slice(0, step)];
      const ref = fam.ref(wr, seq, seq.map(() => -100), 1, seq.length, false).logits;
      // As tests/models/llama_test.ts: f32 arithmetic on O(1–10) logits.
      const last = ref.subarray((seq.length - 1) * fam.vocab);
      assertClose(l, last, { rtol: 1e-4, atol: 1e-5 }, `${fam.label} cache ${cache} ${key}`);
    }
  }
  model.release();
}

Deno.test("generate() with an f16 base: cached and uncached greedy logits equal the float64 model's on the rounded weights (GPT-2 and Llama)", async () => {
  for (const fam of families().slice(0, 2)) await checkGenerate(fam, "f16");
});

Deno.test("a half base refuses training by name: full fine-tuning, setTrainable, selective fine-tuning; IA³ merge", async () => {
  const g = await gpu();
  const w = f32Weights(randomWeights(SMALL, 1), SMALL);
  await assert.rejects(
    () => GPT.create(g, SMALL, { weights: w, baseDtype: "bf16" }),
    /Cannot create the model: baseDtype "bf16" stores the base weights in half precision, which cannot be trained; full fine-tuning needs baseDtype "f32"/,
  );
  const model = await GPT.create(g, SMALL, { weights: w, trainable: false, baseDtype: "f16" });
  assert.throws(
    () => model.setTrainable(model.params.get("h.1.mlp.c_fc.weight")!, true),
    /Cannot train parameter "h.1.mlp.c_fc.weight": it is stored in f16 \(baseDtype\); this needs the base in f32/,
  );
  // Biases and norms stay f32 and may be trained (BitFit).
  model.setTrainable(model.params.get("h.0.attn.c_attn.bias")!, true);
  model.setTrainable(model.params.get("h.0.attn.c_attn.bias")!, false);
  await assert.rejects(
    async () => await peftMethod("selective").apply(model, peftMethod("selective").validate({}), 0),
    /Cannot train parameter "[^"]+\.weight": it is stored in f16/,
  );
  const inst = await ia3.apply(model, ia3.validate({}), 0);
  await assert.rejects(
    () => inst.merge(),
    /Cannot merge IA³ into "h\.0\.attn\.c_attn\.weight": it is stored in f16 \(baseDtype\)/,
  );
  model.release();
});

Deno.test("F16 and BF16 checkpoints keep their exact bits in a base of the same dtype; f16 overflow is refused by name", async () => {
  const g = await gpu();
  const cfg = LLAMA_UNTIED, w = llamaF32(llamaWeights(cfg, 7), cfg);
  // Values off the f16 and bf16 grids, subnormal in f16, and large, so that rounding shows.
  const q = w.get("model.layers.0.mlp.up_proj.weight")!.data;
  q[0] = 1e-6;
  q[1] = 3.0000002;
  q[2] = -60000;
  for (const dtype of DTYPES) {
    const dir = await Deno.makeTempDir();
    try {
      await saveModelCheckpoint(dir, cfg, w, { dtype: dtype === "f16" ? "F16" : "BF16" });
      const bytes = await Deno.readFile(`${dir}/model.safetensors`);
      const st = parseSafetensors(bytes);
      const ckpt = await loadModelCheckpoint(dir);
      const model = await Llama.create(g, cfg, {
        weights: ckpt.weights,
        trainable: false,
        baseDtype: dtype,
      });
      for (const [name, p] of model.params) {
        if (p.value.dtype === "f32") continue;
        // The stored words, as the file's 16-bit values two a word.
        const words = new Uint16Array(await rawWords(model, p.value));
        const file = st.bytes(name);
        const bits = new Uint16Array(
          file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength),
        );
        assert.deepEqual(words.subarray(0, bits.length), bits, `${dtype} ${name}`);
      }
      model.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  q[2] = 70000;
  await assert.rejects(
    () => Llama.create(g, cfg, { weights: w, trainable: false, baseDtype: "f16" }),
    /Cannot store tensor "model.layers.0.mlp.up_proj.weight" in f16: element 2 = 70000 is beyond its largest finite value \(65504\); use baseDtype "bf16" or "f32"/,
  );
});

/** The raw bytes of a tensor's buffer range (no widening). */
async function rawWords(
  model: Decoder,
  t: { buffer: GPUBuffer; byteOffset: number; byteLength: number },
) {
  const [data] = await model.gpu.read([{
    buffer: t.buffer,
    offset: t.byteOffset,
    size: t.byteLength,
  }]);
  return data.buffer;
}

Deno.test("defaultBaseDtype(): f16 for the adapter methods over 100M parameters, f32 otherwise; every registered method is classified", () => {
  for (const m of HALF_BASE_METHODS) {
    assert.equal(defaultBaseDtype(m, 124_439_808), "f16", m);
    assert.equal(defaultBaseDtype(m, 100e6), "f32", `${m} at exactly 100M`);
  }
  assert.equal(defaultBaseDtype("full", 355e6), "f32");
  assert.equal(defaultBaseDtype("selective", 355e6), "f32");
  // A new method must be put on one side on purpose.
  for (const m of Object.values(PEFT_METHODS)) {
    assert.ok(
      HALF_BASE_METHODS.includes(m.name) || ["full", "selective"].includes(m.name),
      `method "${m.name}" is neither in HALF_BASE_METHODS nor known to train base matrices`,
    );
  }
});

Deno.test("every method of HALF_BASE_METHODS trains on an f16 base (GPT-2) and a bf16 base (Llama): loss falls, the base keeps its bits", async () => {
  const B2 = 2, T2 = 8;
  for (const fam of families().slice(0, 2)) {
    const dtype: HalfDtype = fam.fanInFanOut ? "f16" : "bf16";
    for (const name of HALF_BASE_METHODS) {
      const model = await fam.make(dtype);
      if (name === "bitfit" && ![...model.params.keys()].some((p) => p.endsWith(".bias"))) {
        model.release();
        continue; // smollm-tiny has no biases: nothing for BitFit to train
      }
      const before = await model.exportWeights();
      const method = peftMethod(name);
      const settings = "num_virtual_tokens" in method.defaults ? { num_virtual_tokens: 4 } : {};
      const inst = await method.apply(model, method.validate(settings), 7);
      const trainable = inst.trainable();
      assert.ok(trainable.every((p) => p.value.dtype === "f32"), `${name}: f32 parameters`);
      const rng = new Rng(4);
      const ids = Array.from({ length: B2 * T2 }, () => rng.int(fam.vocab));
      const src = {
        batchesPerEpoch: 1,
        batch: () => ({ ids, labels: ids, batchSize: B2, seqLen: T2 }),
      };
      const trainer = await Trainer.create(model, src, {
        steps: 6,
        lr: 1e-2,
        logEvery: 6,
        optimizer: { weightDecay: 0 },
      }, { params: trainable });
      const result = await trainer.run();
      trainer.release();
      assert.ok(
        result.losses[5] < result.losses[0],
        `${fam.label} ${name}: loss ${result.losses[0]} → ${result.losses[5]}`,
      );
      const after = await model.exportWeights();
      for (const [pname, p] of model.params) {
        if (p.value.dtype === "f32") continue;
        assert.deepEqual(after.get(pname)!.data, before.get(pname)!.data, `${name}: ${pname}`);
      }
      model.release();
    }
  }
});
