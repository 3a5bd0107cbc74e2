/**
 * DoRA: the float64 reference (tests/ref/dora.ts) against central differences; the kernels
 * (kernels/dora.ts) and a DoRA layer's forward and backward on the GPU against the reference, on
 * odd shapes, both weight layouts (Conv1D (in,out), nn.Linear (out,in)), with and without bias
 * and dropout, outputs NaN-poisoned; merge and unmerge; whole models against the float64 GPT-2
 * and Llama references through the effective weights.
 */
import assert from "node:assert/strict";
import {
  DoraKernels,
  type DoraState,
  GPT,
  type Gpu,
  Linear,
  lora,
  type LoraInstance,
  LoRALinear,
  type Param,
  PeftKernels,
  Rng,
  type Tensor,
} from "../../mod.ts";
import { assertClose, centralDiff, dot, gpu, poisoned, randn, release } from "../helpers.ts";
import { f32Weights, randomWeights, SMALL } from "../models/_fixtures.ts";
import {
  doraBackwardRef,
  doraForwardRef,
  doraMergedRef,
  doraNormRef,
  type DoraRefLayer,
} from "../ref/dora.ts";
import { gpt2Ref } from "../ref/gpt2.ts";
import { llamaRef } from "../ref/llama.ts";
import { gradTol } from "../ref/peft.ts";
import { allLogits, llamaBatch, llamaSetup } from "./_llama.ts";

// Odd shapes: 13 inputs (not a multiple of the 64 lanes), 7 outputs, rank 3, 5 rows.
const K = 13, N = 7, R = 3, M = 5;

function refLayer(seed: number, fanInFanOut: boolean, bias: boolean, s = 1.5): DoraRefLayer {
  const rng = new Rng(seed);
  return {
    W: randn(rng, K * N, 0.4),
    bias: bias ? randn(rng, N, 0.3) : null,
    A: randn(rng, R * K, 0.5),
    B: randn(rng, N * R, 0.5),
    // Magnitudes away from the norms, so g = m/n ≠ 1 and every term of the forward matters.
    m: Float64Array.from({ length: N }, () => Math.fround(1 + rng.uniform(0, 1))),
    s,
    nOut: N,
    nIn: K,
    r: R,
    fanInFanOut,
  };
}

/** A dropout as the reference takes it: a fixed mask with the inverted scale 1/(1 − p). */
function dropoutMask(seed: number, n: number, p: number) {
  const rng = new Rng(seed);
  const keep = Float64Array.from({ length: n }, () => rng.uniform(0, 1) >= p ? 1 / (1 - p) : 0);
  return {
    apply: (x: Float64Array) => x.map((v, i) => v * keep[i]),
    back: (d: Float64Array) => d.map((v, i) => v * keep[i]),
  };
}

for (const fanInFanOut of [true, false]) {
  const layout = fanInFanOut ? "Conv1D (in,out)" : "nn.Linear (out,in)";
  for (const withDropout of [false, true]) {
    Deno.test(`doraBackwardRef() matches central differences of doraForwardRef() with the norm held constant (${layout}${withDropout ? ", dropout" : ""})`, () => {
      const l = refLayer(1, fanInFanOut, true);
      const rng = new Rng(2);
      const x = randn(rng, M * K), wy = randn(rng, M * N);
      const drop = withDropout ? dropoutMask(3, M * K, 0.3) : null;
      const n = doraNormRef(l); // PEFT detaches n: the differences hold it at the unperturbed value
      const loss = () => dot(doraForwardRef(l, x, M, drop ? drop.apply(x) : null, n), wy);
      const gr = doraBackwardRef(l, x, wy, M, drop ? drop.apply(x) : null, drop?.back);
      const check = (name: string, t: Float64Array, grad: Float64Array) => {
        const fd = Float64Array.from(t, (_, i) => centralDiff(() => loss(), t, i));
        assertClose(grad, fd, { rtol: 1e-6, atol: 1e-7 }, name); // float64 differences, h = 1e-6
      };
      check("dA", l.A, gr.dA);
      check("dB", l.B, gr.dB);
      check("dm", l.m, gr.dm);
      check("dbias", l.bias!, gr.dbias);
      check("dx", x, gr.dx);
    });
  }
}

Deno.test("doraNormRef() is ‖W + s·B·A‖ per output row of the (out,in) weight, and doraMergedRef() gives the same outputs", () => {
  const l = refLayer(4, false, false);
  const n = doraNormRef(l);
  let acc = 0;
  for (let i = 0; i < K; i++) {
    let d = 0;
    for (let k = 0; k < R; k++) d += l.B[2 * R + k] * l.A[k * K + i];
    acc += (l.W[2 * K + i] + l.s * d) ** 2;
  }
  assert.ok(Math.abs(n[2] - Math.sqrt(acc)) < 1e-12);
  const x = randn(new Rng(5), M * K);
  // The merged weight with B = 0 and m = its own norms (g = 1) is a plain linear layer.
  const merged = { ...l, W: doraMergedRef(l), B: new Float64Array(N * R) };
  const plain = doraForwardRef({ ...merged, m: doraNormRef(merged) }, x, M);
  assertClose(plain, doraForwardRef(l, x, M), { rtol: 1e-12, atol: 1e-12 }, "merged DoRA output");
});

/** The GPU tensors of a layer, f32. */
function upload32(
  g: Awaited<ReturnType<typeof gpu>>,
  shape: number[],
  data: Float64Array,
  label: string,
) {
  return g.tensor(shape, Float32Array.from(data), label);
}

for (const fanInFanOut of [true, false]) {
  const layout = fanInFanOut ? "Conv1D (in,out)" : "nn.Linear (out,in)";
  Deno.test(`DoraKernels norm(), combine() and rescale() match the float64 reference on odd shapes (${layout})`, async () => {
    const g = await gpu();
    const k = await DoraKernels.create(g);
    const l = refLayer(6, fanInFanOut, true);
    const W = upload32(g, fanInFanOut ? [K, N] : [N, K], l.W, "W");
    const A = upload32(g, [R, K], l.A, "A"), B = upload32(g, [N, R], l.B, "B");
    const m = upload32(g, [N], l.m, "m");
    const [n, gs, gm1] = [poisoned(g, [N], "n"), poisoned(g, [N], "g"), poisoned(g, [N], "gm1")];
    const shape = { nOut: N, nIn: K, r: R, fanInFanOut };
    let batch = g.batch();
    k.norm(batch, { W, A, B, m, n, g: gs, gm1 }, l.s, shape);
    await batch.submit();
    const nRef = doraNormRef(l), gRef = l.m.map((v, o) => v / nRef[o]);
    const [nOut, gOut, gm1Out] = await g.read([n, gs, gm1]);
    // Sums of K·(R+1) f32 products of O(1) values: a few ulps of the result.
    const tol = { rtol: 2e-6, atol: 1e-6 };
    assertClose(nOut, nRef, tol, "n");
    assertClose(gOut, gRef, tol, "g");
    assertClose(gm1Out, gRef.map((v) => v - 1), tol, "g − 1");

    // combine, both modes: y += (g − 1)·z + g·ls, h = (z + ls)/n.
    const rng = new Rng(7);
    const y0 = randn(rng, M * N), zin = randn(rng, M * N), ls = randn(rng, M * N);
    for (const mode of ["reuse", "recompute"] as const) {
      const y = upload32(g, [M, N], y0, "y"), h = poisoned(g, [M, N], "h");
      const lsT = upload32(g, [M, N], ls, "ls"), zT = upload32(g, [M, N], zin, "zin");
      const bias = upload32(g, [N], l.bias!, "bias");
      batch = g.batch();
      k.combine(
        batch,
        mode === "reuse"
          ? { y, zin: null, bias, ls: lsT, g: gs, n, h }
          : { y, zin: zT, bias: null, ls: lsT, g: gs, n, h },
        M,
        N,
      );
      await batch.submit();
      const yRef = new Float64Array(M * N), hRef = new Float64Array(M * N);
      for (let i = 0; i < M * N; i++) {
        const o = i % N, z = mode === "reuse" ? y0[i] - l.bias![o] : zin[i];
        yRef[i] = y0[i] + (gRef[o] - 1) * z + gRef[o] * ls[i];
        hRef[i] = (z + ls[i]) / nRef[o];
      }
      const [yOut, hOut] = await g.read([y, h]);
      assertClose(yOut, yRef, { rtol: 1e-5, atol: 1e-5 }, `y (${mode})`); // a few f32 roundings
      assertClose(hOut, hRef, { rtol: 1e-5, atol: 1e-5 }, `h (${mode})`);
      release(y, h, lsT, zT, bias);
    }

    // rescale: W ⊙ g per output, then ⊘ g back.
    batch = g.batch();
    k.rescale(batch, W, gs, shape);
    await batch.submit();
    const [scaled] = await g.read([W]);
    const expect = l.W.map((v, i) => v * gRef[fanInFanOut ? i % N : Math.floor(i / K)]);
    assertClose(scaled, expect, { rtol: 2e-6, atol: 1e-7 }, "W ⊙ g");
    batch = g.batch();
    k.rescale(batch, W, gs, shape, true);
    await batch.submit();
    assertClose((await g.read([W]))[0], l.W, { rtol: 4e-6, atol: 1e-7 }, "W ⊙ g ⊘ g");
    release(W, A, B, m, n, gs, gm1);
  });
}

Deno.test("DoraKernels refuse wrong sizes and shapes over Mesa's loop cap, naming the kernel", async () => {
  const g = await gpu();
  const k = await DoraKernels.create(g);
  const t = (n: number) => g.tensor([n]);
  const W = t(6), A = t(2), B = t(3), v = t(3);
  const batch = g.batch();
  assert.throws(
    () =>
      k.norm(batch, { W, A, B, m: v, n: v, g: v, gm1: t(2) }, 1, {
        nOut: 3,
        nIn: 2,
        r: 1,
        fanInFanOut: false,
      }),
    /dora\.dora_norm.*gm1 \(3\)/,
  );
  assert.throws(
    () =>
      k.norm(
        batch,
        { W: t(64 * 70000), A: t(64 * 70000), B: t(1), m: t(1), n: t(1), g: t(1), gm1: t(1) },
        1,
        {
          nOut: 1,
          nIn: 64 * 70000,
          r: 1,
          fanInFanOut: false,
        },
      ),
    /loop iterations/,
  );
});

/** A DoRA layer over odd-shaped parameters, on a tiny model's kernels and activations. */
async function doraLayer(l: DoraRefLayer, dropout: number, trainBias: boolean) {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1, trainable: false });
  const param = (name: string, shape: number[], data: Float64Array, grad: boolean): Param => ({
    name,
    shape,
    value: upload32(g, shape, data, name),
    grad: grad ? g.tensor(shape, undefined, name + ".grad") : null,
    decay: false,
    gradMask: null,
  });
  const W = param("w.weight", l.fanInFanOut ? [K, N] : [N, K], l.W, false);
  const bias = l.bias ? param("w.bias", [N], l.bias, trainBias) : null;
  const layer = new LoRALinear(new Linear(W, bias, l.fanInFanOut), "w");
  const kernels = { dora: await DoraKernels.create(g), peft: await PeftKernels.create(g) };
  const dora: DoraState = {
    magnitude: param("w.m", [N], l.m, true),
    norm: poisoned(g, [N], "n"),
    scale: poisoned(g, [N], "g"),
    scaleMinus1: poisoned(g, [N], "gm1"),
    mergedScale: poisoned(g, [N], "gm"),
    kernels,
  };
  const A = param("w.A", [R, K], l.A, true), B = param("w.B", [N, R], l.B, true);
  layer.adapters.set("default", { name: "default", A, B, r: R, scaling: l.s, dropout, dora });
  layer.active = "default";
  const acts = model.activations(1, 1);
  const done = () => {
    release(
      W.value,
      A.value,
      A.grad!,
      B.value,
      B.grad!,
      dora.magnitude.value,
      dora.magnitude.grad!,
    );
    if (bias) release(bias.value, ...(bias.grad ? [bias.grad] : []));
    release(dora.norm, dora.scale, dora.scaleMinus1, dora.mergedScale);
    acts.release();
    model.release();
  };
  return { g, model, layer, acts, A, B, bias, dora, done };
}

for (const fanInFanOut of [true, false]) {
  for (const dropout of [0, 0.25]) {
    for (const withBias of [true, false]) {
      const what = `${fanInFanOut ? "Conv1D (in,out)" : "nn.Linear (out,in)"}, ${
        withBias ? "bias" : "no bias"
      }${dropout > 0 ? ", dropout" : ""}`;
      Deno.test(`LoRALinear with DoRA: forward and every gradient match the float64 reference (${what})`, async () => {
        const l = refLayer(8, fanInFanOut, withBias);
        const { g, model, layer, acts, A, B, bias, dora, done } = await doraLayer(l, dropout, true);
        const rng = new Rng(9);
        const xData = randn(rng, M * K), dyData = randn(rng, M * N);
        const x = upload32(g, [M, K], xData, "x"), dy = upload32(g, [M, N], dyData, "dy");
        const y = poisoned(g, [M, N], "y"), dx = poisoned(g, [M, K], "dx");
        const ctx = { gpu: g, batch: g.batch(), k: model.kernels, training: true, seed: 11, acts };
        for (const p of [A, B, dora.magnitude, ...(bias ? [bias] : [])]) ctx.batch.fill(p.grad!, 0);
        layer.forward(ctx, x, y, M);
        layer.backward(ctx, x, dy, dx, M);
        await ctx.batch.submit();
        // The dropped-out input the GPU drew is the reference's xd (the mask is where it is 0).
        let xd: Float64Array | null = null, back = (d: Float64Array) => d;
        if (dropout > 0) {
          const [xdOut] = await g.read([acts.scratch("w.lora.default.xd", [M, K])]);
          xd = Float64Array.from(xdOut);
          const keep = xd.map((v) => v === 0 ? 0 : 1 / (1 - dropout));
          assert.ok(
            keep.some((v) => v === 0) && keep.some((v) => v > 0),
            "the mask drops some inputs",
          );
          back = (d) => d.map((v, i) => v * keep[i]);
        }
        const yRef = doraForwardRef(l, xData, M, xd);
        const gr = doraBackwardRef(l, xData, dyData, M, xd, back);
        const [yOut, dxOut, dA, dB, dm] = await g.read([
          y,
          dx,
          A.grad!,
          B.grad!,
          dora.magnitude.grad!,
        ]);
        // f32 sums over K = 13 or N = 7 products of O(1) values, then the combination.
        assertClose(yOut, yRef, { rtol: 1e-4, atol: 2e-5 }, "y");
        assertClose(dxOut, gr.dx, gradTol(gr.dx), "dx");
        assertClose(dA, gr.dA, gradTol(gr.dA), "dA");
        assertClose(dB, gr.dB, gradTol(gr.dB), "dB");
        assertClose(dm, gr.dm, gradTol(gr.dm), "dm");
        if (bias) {
          assertClose((await g.read([bias.grad!]))[0], gr.dbias, gradTol(gr.dbias), "dbias");
        }
        release(x, dy, y, dx);
        done();
      });
    }
  }
}

async function logitsOf(model: GPT, ids: number[], B: number, T: number): Promise<Float32Array> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, { ids });
  await batch.submit();
  const [out] = await model.gpu.read([acts.logits]);
  acts.release();
  return out;
}

/** Random B and magnitudes away from the norms, so the DoRA adapter changes the model. */
async function perturb(g: Gpu, inst: LoraInstance, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const p of inst.added) {
    if (p.name.includes("lora_B")) {
      p.value.write(rng.fillNormal(new Float32Array(p.value.size), 0.5) as Float32Array);
    }
  }
  const mags = inst.added.filter((p) => p.name.includes("lora_magnitude_vector"));
  const data = await g.read(mags.map((p) => p.value));
  mags.forEach((p, i) => p.value.write(data[i].map((v) => v * (0.5 + rng.uniform(0, 1)))));
}

/** Per adapted layer, the effective weight g ⊙ (W + s·B·A) (the file layout of the base). */
async function effective(
  g: Gpu,
  inst: LoraInstance,
  w: Map<string, Float64Array>,
): Promise<Map<string, Float64Array>> {
  const eff: Map<string, Float64Array> = new Map([...w].map(([k, v]) => [k, v.slice()]));
  for (const l of inst.layers) {
    const a = l.adapters.get("default")!;
    const [A, B, m] = (await g.read([a.A.value, a.B.value, a.dora!.magnitude.value]))
      .map((t) => Float64Array.from(t));
    eff.set(
      `${l.path}.weight`,
      doraMergedRef({
        W: Float64Array.from(w.get(`${l.path}.weight`)!),
        bias: null,
        A,
        B,
        m,
        s: a.scaling,
        nOut: l.nOut,
        nIn: l.nIn,
        r: a.r,
        fanInFanOut: l.base.fanInFanOut,
      }),
    );
  }
  return eff;
}

Deno.test("a GPT-2 with DoRA starts as the base model, gives the float64 reference's logits and gradients through g⊙(W + s·B·A), and merge()/unmerge() keep them", async () => {
  const g = await gpu();
  const w = randomWeights(SMALL, 21);
  const model = await GPT.create(g, SMALL, { weights: f32Weights(w, SMALL) });
  const Bt = 2, T = 5;
  const rng = new Rng(22);
  const ids = Array.from({ length: Bt * T }, () => rng.int(SMALL.vocab_size));
  const labels = ids.map((id, i) => (i % T) < 1 ? -100 : id);
  const before = await logitsOf(model, ids, Bt, T);
  const inst = await lora.apply(
    model,
    lora.validate({
      r: 3,
      lora_alpha: 6,
      use_dora: true,
      target_modules: ["c_attn", "mlp.c_proj"],
    }),
    23,
  );
  assert.equal(inst.added.length, 3 * 2 * SMALL.n_layer, "A, B and m per adapted layer");
  assertClose(
    await logitsOf(model, ids, Bt, T),
    before,
    { rtol: 1e-5, atol: 1e-5 },
    "m = ‖W‖: the base model",
  );
  await perturb(g, inst, 24);
  const eff = await effective(g, inst, w);
  const ref = gpt2Ref(SMALL, eff, ids, labels, Bt, T, true);
  const logits = await logitsOf(model, ids, Bt, T);
  assertClose(logits, ref.logits, { rtol: 1e-3, atol: 1e-4 }, "logits"); // two f32 blocks

  // Gradients: dW_eff from the reference, then the chain rule of W_eff = g⊙(W + s·B·A), n constant.
  const acts = model.activations(Bt, T);
  const batch = g.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, { ids, labels }, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const grads = await model.exportGrads();
  acts.release();
  for (const l of inst.layers) {
    const a = l.adapters.get("default")!, r = a.r, s = a.scaling;
    const [A, Bm, m] = (await g.read([a.A.value, a.B.value, a.dora!.magnitude.value])).map((t) =>
      Float64Array.from(t)
    );
    const W = w.get(`${l.path}.weight`)!, dWe = ref.grads!.get(`${l.path}.weight`)!;
    const n = doraNormRef({
      W,
      bias: null,
      A,
      B: Bm,
      m,
      s,
      nOut: l.nOut,
      nIn: l.nIn,
      r,
      fanInFanOut: true,
    });
    const dA = new Float64Array(r * l.nIn),
      dB = new Float64Array(l.nOut * r),
      dm = new Float64Array(l.nOut);
    for (let i = 0; i < l.nIn; i++) {
      for (let o = 0; o < l.nOut; o++) {
        const e = dWe[i * l.nOut + o]; // Conv1D: (in, out)
        let ba = 0;
        for (let k = 0; k < r; k++) ba += Bm[o * r + k] * A[k * l.nIn + i];
        dm[o] += e * (W[i * l.nOut + o] + s * ba) / n[o];
        const ge = (m[o] / n[o]) * e * s;
        for (let k = 0; k < r; k++) {
          dA[k * l.nIn + i] += ge * Bm[o * r + k];
          dB[o * r + k] += ge * A[k * l.nIn + i];
        }
      }
    }
    assertClose(grads.get(a.A.name)!, dA, gradTol(dA), `${a.A.name}`);
    assertClose(grads.get(a.B.name)!, dB, gradTol(dB), `${a.B.name}`);
    assertClose(grads.get(a.dora!.magnitude.name)!, dm, gradTol(dm), `${a.dora!.magnitude.name}`);
  }

  const originals = await g.read(inst.layers.map((l) => l.base.weight.value));
  await inst.merge();
  for (const l of inst.layers) {
    const [Wm] = await g.read([l.base.weight.value]);
    assertClose(Wm, eff.get(`${l.path}.weight`)!, { rtol: 1e-4, atol: 1e-5 }, `merged ${l.path}`);
  }
  assertClose(
    await logitsOf(model, ids, Bt, T),
    logits,
    { rtol: 1e-4, atol: 1e-4 },
    "merged logits",
  );
  await inst.unmerge();
  const back = await g.read(inst.layers.map((l) => l.base.weight.value));
  back.forEach((t, i) => assertClose(t, originals[i], { rtol: 1e-5, atol: 1e-6 }, "unmerged W"));
  assertClose(
    await logitsOf(model, ids, Bt, T),
    logits,
    { rtol: 1e-4, atol: 1e-4 },
    "unmerged logits",
  );
  model.release();
});

Deno.test("a Llama with DoRA on every linear (nn.Linear (out,in), q/k/v biases) gives the float64 reference's logits, merged and not", async () => {
  const { cfg, w, model } = await llamaSetup("qwen2-tiny", 31);
  const inst = await lora.apply(
    model,
    lora.validate({ r: 2, lora_alpha: 5, use_dora: true, target_modules: ["all-linear"] }),
    32,
  );
  await perturb(model.gpu, inst, 33);
  const Bt = 2, T = 5;
  const inputs = llamaBatch(cfg, Bt, T, 34);
  const eff = new Map(w);
  for (const l of inst.layers) {
    const a = l.adapters.get("default")!;
    const [A, B, m] = (await model.gpu.read([a.A.value, a.B.value, a.dora!.magnitude.value])).map((
      t,
    ) => Float64Array.from(t));
    eff.set(
      `${l.path}.weight`,
      doraMergedRef({
        W: Float64Array.from(w.get(`${l.path}.weight`)!),
        bias: null,
        A,
        B,
        m,
        s: a.scaling,
        nOut: l.nOut,
        nIn: l.nIn,
        r: a.r,
        fanInFanOut: false,
      }),
    );
  }
  const ref = llamaRef(cfg, eff, inputs.ids, inputs.labels, Bt, T);
  const { logits } = await allLogits(model, inputs, Bt, T);
  assertClose(logits, ref.logits, { rtol: 1e-3, atol: 1e-4 }, "logits");
  await inst.merge();
  assertClose((await allLogits(model, inputs, Bt, T)).logits, ref.logits, {
    rtol: 1e-3,
    atol: 1e-4,
  }, "merged logits");
  await inst.unmerge();
  model.release();
});

Deno.test("DoRA is refused on a half-precision base weight, naming the layer, before the model changes", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1 });
  const layer = model.blocks[0].attn.cAttn as Linear;
  const W = layer.weight.value;
  const half = { ...W, dtype: "f16" } as unknown as Tensor;
  layer.weight.value = half;
  await assert.rejects(
    lora.apply(model, lora.validate({ use_dora: true }), 0),
    /Cannot apply DoRA to h\.0\.attn\.c_attn: its weight is stored in f16/,
  );
  layer.weight.value = W;
  assert.ok(model.countParameters().trainable > 0, "the base was not frozen");
  model.release();
});
