import assert from "node:assert/strict";
import {
  GPT,
  gptConfig,
  Gpu,
  lora,
  memoryReport,
  Optimizer,
  parameterReport,
  peftMethod,
} from "../../mod.ts";

Deno.test("parameterReport() prints as PEFT's print_trainable_parameters", async () => {
  const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1 });
  await lora.apply(model, lora.validate({ r: 4 }), 0);
  const r = parameterReport(model);
  // tiny: 2 blocks, c_attn (32 → 96): A 4×32 + B 96×4 = 512 per block.
  assert.equal(r.trainable, 1024);
  assert.equal(
    r.line,
    `trainable params: 1,024 || all params: ${r.total.toLocaleString("en-US")} || trainable%: ${
      (100 * 1024 / r.total).toFixed(4)
    }`,
  );
  model.release();
});

Deno.test("memoryReport() orders the methods' gradient and optimizer memory: full ≫ LoRA, adapters, prompt tuning", async () => {
  const gpu = await Gpu.get();
  const state: Record<string, number> = {};
  for (const name of ["full", "lora", "adapters", "prompt"]) {
    const model = await GPT.create(gpu, gptConfig("modelA"), { seed: 1, trainable: false });
    const method = peftMethod(name);
    const inst = await method.apply(model, method.validate({}), 0);
    const opt = await Optimizer.create(gpu, inst.trainable());
    const m = memoryReport(model, opt, gpu.memory.peakReserved);
    assert.equal(m.optimizer, 2 * m.gradients, `${name}: two AdamW moments per gradient`);
    state[name] = m.gradients + m.optimizer;
    opt.release();
    model.release();
  }
  for (const peft of ["lora", "adapters", "prompt"]) {
    assert.ok(
      state.full > 10 * state[peft],
      `full ${state.full} bytes ≫ ${peft} ${state[peft]} bytes`,
    );
  }
});
