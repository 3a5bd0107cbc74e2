import assert from "node:assert/strict";
import { loadConfig } from "../../cli/config.ts";
import { PEFT_METHODS } from "../../mod.ts";

Deno.test("every example config in configs/ loads and validates", async () => {
  const methods = new Set<string>();
  for await (const e of Deno.readDir(new URL("../../configs/", import.meta.url))) {
    if (!e.name.endsWith(".yaml")) continue;
    const c = await loadConfig(new URL(`../../configs/${e.name}`, import.meta.url).pathname);
    assert.equal(`${c.name}.yaml`, e.name, "each file names its run after itself");
    methods.add(c.peft.method);
  }
  for (const m of ["full", "bitfit", "lora", "adapters", "prompt"]) {
    assert.ok(methods.has(m), `configs/ has ${m}`);
  }
  assert.ok([...methods].every((m) => m in PEFT_METHODS));
});
