// The loop-cap canary. Mesa's CPU drivers (llvmpipe, lavapipe) stop a shader invocation's loops
// after 65,535 iterations, all loops of the invocation together, silently: the loop just exits and
// the code after it runs. Measured here (Mesa 22.3, llvmpipe via GL and lavapipe via Vulkan): a
// loop asked for 70,000 or 200,000 iterations writes a count of exactly 65,535; a completed loop
// also spends one iteration on its failing exit test (so a loop of 40,000 leaves 25,534 for the
// next loop, and nested loops cost outer·(inner + 1)). Real GPUs run every iteration. Every kernel keeps
// its loops under the cap, and wrappers call checkLoops() where a shape could exceed it; if this
// test starts failing, a driver changed the cap and DESIGN.md and kernels/common.ts need updating.

import assert from "node:assert/strict";
import { checkLoops, type Gpu, LOOP_CAP, Params, type Tensor } from "../../mod.ts";
import { gpu, release } from "../helpers.ts";

const COUNT_WGSL = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

// out[0] = iterations of one loop asked for n; out[1] = a marker written after the loop.
@compute @workgroup_size(1)
fn one_loop() {
  var count = 0u;
  for (var i = 0u; i < p.n; i++) { count += 1u; }
  out[0] = count;
  out[1] = 7u;
}

// Two loops of n each: the cap counts them together.
@compute @workgroup_size(1)
fn two_loops() {
  var a = 0u;
  for (var i = 0u; i < p.n; i++) { a += 1u; }
  var b = 0u;
  for (var i = 0u; i < p.n; i++) { b += 1u; }
  out[0] = a;
  out[1] = b;
}`;

const SENTINEL = 0xdeadbeef;

/** Runs an entry point with parameter n and returns [out[0], out[1]] (SENTINEL where unwritten). */
async function counts(g: Gpu, entry: string, ns: number[]): Promise<[number, number][]> {
  const k = await g.kernel({
    name: `loop_cap.${entry} (test)`,
    code: COUNT_WGSL,
    entry,
    bindings: ["uniform", "write"],
  });
  const outs: Tensor[] = [];
  const batch = g.batch();
  for (const n of ns) {
    const t = g.tensor([2], new Uint32Array([SENTINEL, SENTINEL]), "counts");
    batch.dispatch(k, [t], new Params().u32(n).bytes, 1);
    outs.push(t);
  }
  await batch.submit();
  const got = await g.read(outs);
  release(...outs);
  return got.map((f) => {
    const u = new Uint32Array(f.buffer);
    return [u[0], u[1]];
  });
}

Deno.test(`a shader loop stops at ${LOOP_CAP} iterations on a software adapter, and runs to the end on hardware`, async () => {
  const g = await gpu();
  const ns = [1000, LOOP_CAP, LOOP_CAP + 1, 70_000, 200_000];
  const got = await counts(g, "one_loop", ns);
  ns.forEach((n, i) => {
    // The loop is cut short but the invocation goes on: the count is written, then the marker.
    const want = g.isSoftware ? Math.min(n, LOOP_CAP) : n;
    assert.deepEqual(got[i], [want, 7], `n=${n} on ${g.adapterName}`);
  });
});

Deno.test("the loop cap counts all loops of an invocation together", async () => {
  const g = await gpu();
  const [under, over] = await counts(g, "two_loops", [30_000, 40_000]);
  assert.deepEqual(under, [30_000, 30_000]);
  if (g.isSoftware) {
    // The first loop spends 40,000 iterations plus one for its failing exit test: the second
    // gets only the 65,535 − 40,001 = 25,534 left.
    assert.deepEqual(over, [40_000, LOOP_CAP - 40_001], g.adapterName);
  } else {
    assert.deepEqual(over, [40_000, 40_000], g.adapterName);
  }
});

Deno.test("checkLoops() throws above the cap with a message naming the kernel and the count", () => {
  checkLoops("demo.kernel", LOOP_CAP, "a row");
  assert.throws(
    () => checkLoops("demo.kernel", LOOP_CAP + 1, "a row of C=4194304"),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message ===
        `Cannot run kernel "demo.kernel": a row of C=4194304 needs 65536 loop iterations per invocation, ` +
          `over the 65535 that Mesa's CPU drivers allow`,
  );
});
