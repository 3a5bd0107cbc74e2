import assert from "node:assert/strict";
import { Residual } from "../../mod.ts";
import { gpu, release } from "../helpers.ts";

Deno.test("Gpu.profile times every dispatch with timestamp queries, and is off by default", async () => {
  const g = await gpu();
  assert.equal(g.profile, false);
  if (!g.canProfile) {
    // Without timestamp-query the mode records nothing (and says so through canProfile).
    assert.deepEqual(await g.readProfile(), []);
    return;
  }
  const r = await Residual.create(g);
  const n = 1 << 16;
  const a = g.tensor([n], new Float32Array(n).fill(1), "a");
  const b = g.tensor([n], new Float32Array(n).fill(2), "b");
  const out = g.tensor([n], undefined, "out");
  // Off: nothing is recorded.
  let batch = g.batch();
  r.forward(batch, a, b, out);
  await batch.submit();
  assert.deepEqual(await g.readProfile(), []);
  g.profile = true;
  try {
    batch = g.batch();
    for (let i = 0; i < 3; i++) r.forward(batch, a, b, out);
    batch.fill(out, 0); // a clear between dispatches is not a dispatch
    r.forward(batch, a, b, out);
    await batch.submit();
  } finally {
    g.profile = false;
  }
  const waits = g.stats.waits;
  const entries = await g.readProfile();
  assert.equal(g.stats.waits - waits, 1, "one wait for the whole profile");
  assert.deepEqual(entries.map((e) => e.kernel), Array(4).fill("residual.forward"));
  for (const e of entries) assert.ok(e.ms >= 0 && e.ms < 10_000, `time ${e.ms} ms`);
  assert.ok(entries.some((e) => e.ms > 0), "some dispatch took measurable time");
  // The results are right with profiling on.
  const [o] = await g.read([out]);
  assert.equal(o[n - 1], 3);
  assert.deepEqual(await g.readProfile(), [], "entries are returned once");
  release(a, b, out);
});
