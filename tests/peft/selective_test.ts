import assert from "node:assert/strict";
import {
  type BatchSource,
  GPT,
  namePattern,
  Rng,
  selective,
  selectParameters,
  Trainer,
} from "../../mod.ts";
import { gpu } from "../helpers.ts";
import { SMALL } from "../models/_fixtures.ts";

Deno.test("namePattern() matches globs within and across name segments, and /regex/", () => {
  assert.ok(namePattern("*.bias").test("ln_f.bias"));
  assert.ok(!namePattern("*.bias").test("h.0.ln_1.bias"), "* stays within one segment");
  assert.ok(namePattern("**.bias").test("h.0.ln_1.bias"));
  assert.ok(namePattern("h.*.mlp.*.weight").test("h.3.mlp.c_fc.weight"));
  assert.ok(namePattern("/^h\\.1\\./").test("h.1.attn.c_attn.weight"));
  assert.throws(() => namePattern("/(/"), /Cannot use pattern/);
});

Deno.test("selectParameters() picks by pattern, last k blocks and presets", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 1 });
  const names = (c: Record<string, unknown>) =>
    selectParameters(model, selective.validate(c)).map((s) => s.param.name);
  assert.deepEqual(names({ preset: "bitfit" }).every((n) => n.endsWith(".bias")), true);
  // Six biases per block (ln_1, c_attn, attn.c_proj, ln_2, c_fc, mlp.c_proj) and ln_f.bias.
  assert.equal(names({ preset: "bitfit" }).length, 1 + SMALL.n_layer * 6);
  assert.deepEqual(names({ preset: "layernorm" }).sort(), [
    "h.0.ln_1.bias",
    "h.0.ln_1.weight",
    "h.0.ln_2.bias",
    "h.0.ln_2.weight",
    "h.1.ln_1.bias",
    "h.1.ln_1.weight",
    "h.1.ln_2.bias",
    "h.1.ln_2.weight",
    "ln_f.bias",
    "ln_f.weight",
  ]);
  assert.ok(names({ include: ["h.**"], lastLayers: 1 }).every((n) => n.startsWith("h.1.")));
  assert.throws(() => names({ include: ["nothing"] }), /no parameter matches/);
  assert.throws(() => names({ preset: "everything" }), /unknown preset "everything"/);
  assert.throws(() => names({ qkv: ["x"] }), /qkv part "x"/);
  assert.throws(() => selective.validate({ lastLayer: 1 }), /unknown key "lastLayer"/);
  model.release();
});

Deno.test("selective element masks train only the value third of c_attn", async () => {
  const g = await gpu();
  const model = await GPT.create(g, SMALL, { seed: 2 });
  const before = await model.exportWeights();
  const inst = await selective.apply(
    model,
    selective.validate({ include: ["**.c_attn.*"], qkv: ["v"] }),
    1,
  );
  const rng = new Rng(3);
  const ids = Array.from({ length: 16 }, () => rng.int(SMALL.vocab_size));
  const source: BatchSource = {
    batchesPerEpoch: 1,
    batch: () => ({ ids, labels: ids, batchSize: 2, seqLen: 8 }),
  };
  const trainer = await Trainer.create(model, source, { steps: 3, lr: 1e-2, logEvery: 3 }, {
    params: inst.trainable(),
  });
  await trainer.run();
  const after = await model.exportWeights();
  const C = SMALL.n_embd;
  for (const name of ["h.0.attn.c_attn.weight", "h.1.attn.c_attn.bias"]) {
    const a = after.get(name)!.data, b = before.get(name)!.data;
    for (let i = 0; i < a.length; i++) {
      const col = i % (3 * C);
      if (col < 2 * C) assert.equal(a[i], b[i], `${name}[${i}] (q or k) unchanged`);
    }
    assert.ok(a.some((v, i) => v !== b[i]), `${name}: the value third moved`);
  }
  assert.deepEqual(after.get("h.0.mlp.c_fc.weight")!.data, before.get("h.0.mlp.c_fc.weight")!.data);
  trainer.release();
  model.release();
});
