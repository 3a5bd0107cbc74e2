import assert from "node:assert/strict";
import { Gpu, GpuError, Residual } from "../../mod.ts";
import { gpu, release } from "../helpers.ts";

const COPY_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&dst)) { dst[g.x] = src[g.x] * 2.0; }
}`;

Deno.test("Gpu.get() returns one shared device requested with the adapter's limits", async () => {
  const g = await gpu();
  assert.equal(await Gpu.get(), g);
  assert.equal(
    g.device.limits.maxStorageBufferBindingSize,
    g.adapter.limits.maxStorageBufferBindingSize,
  );
  assert.equal(g.device.limits.maxBufferSize, g.adapter.limits.maxBufferSize);
  assert.ok(g.adapterName.length > 0);
});

Deno.test("Gpu.kernel() reports WGSL compile errors with the kernel, file, line and column", async () => {
  const g = await gpu();
  const code = "@compute @workgroup_size(1)\nfn main() {\n  let x: u32 = 1.5;\n}\n";
  await assert.rejects(
    g.kernel({
      name: "broken.forward",
      file: "kernels/broken.wgsl",
      code,
      entry: "main",
      bindings: [],
    }),
    (e: unknown) => {
      assert.ok(e instanceof GpuError);
      assert.equal(e.kernel, "broken.forward");
      assert.match(e.message, /Cannot compile kernel "broken.forward"/);
      assert.match(e.message, /kernels\/broken\.wgsl:3:\d+:/);
      return true;
    },
  );
  g.check("after compile error"); // the error was captured, not left pending
});

Deno.test("Gpu.kernel() reports pipeline validation errors naming the kernel", async () => {
  const g = await gpu();
  await assert.rejects(
    g.kernel({
      name: "copy.missing",
      code: COPY_WGSL,
      entry: "no_such_entry",
      bindings: ["read", "write"],
    }),
    /Cannot create the pipeline of kernel "copy.missing"/,
  );
  // A layout that disagrees with the shader (binding 1 declared read-only, written by the shader).
  await assert.rejects(
    g.kernel({
      name: "copy.badlayout",
      code: COPY_WGSL,
      entry: "main",
      bindings: ["read", "read"],
    }),
    /kernel "copy.badlayout"/,
  );
});

Deno.test("Gpu.kernel() caches pipelines by name, source and constants", async () => {
  const g = await gpu();
  const spec = {
    name: "copy",
    code: COPY_WGSL,
    entry: "main",
    bindings: ["read", "write"],
  } as const;
  assert.equal(await g.kernel(spec), await g.kernel(spec));
});

Deno.test("Batch.submit() encodes many dispatches into one submit and throws naming the kernel on errors", async () => {
  const g = await gpu();
  const k = await g.kernel({
    name: "copy",
    code: COPY_WGSL,
    entry: "main",
    bindings: ["read", "write"],
  });
  const a = g.tensor([100], new Float32Array(100).fill(1)), b = g.tensor([100]);
  const before = { ...g.stats };
  const batch = g.batch();
  for (let i = 0; i < 50; i++) batch.dispatch(k, i % 2 ? [b, a] : [a, b], undefined, 2);
  await batch.submit();
  assert.equal(g.stats.submits - before.submits, 1);
  assert.equal(g.stats.dispatches - before.dispatches, 50);
  assert.equal(g.stats.waits, before.waits, "submitting does not wait for the GPU");
  const [x] = await g.read([a]);
  assert.equal(x[99], 2 ** 50);

  // A destroyed buffer in a dispatch is a validation error at submit.
  const dead = g.device.createBuffer({ size: 400, usage: GPUBufferUsage.STORAGE });
  dead.destroy();
  const bad = g.batch().dispatch(k, [a, { buffer: dead }], undefined, 2);
  await assert.rejects(bad.submit(), (e: unknown) => {
    assert.ok(e instanceof GpuError);
    assert.match(e.message, /Cannot run kernels \[copy\]/);
    return true;
  });
  release(a, b);
});

Deno.test("Batch.dispatch() rejects wrong binding counts, parameters and workgroup counts", async () => {
  const g = await gpu();
  const k = await g.kernel({
    name: "copy",
    code: COPY_WGSL,
    entry: "main",
    bindings: ["read", "write"],
  });
  const a = g.tensor([4]);
  assert.throws(() => g.batch().dispatch(k, [a], undefined, 1), /takes 2 storage bindings, got 1/);
  assert.throws(
    () => g.batch().dispatch(k, [a, a], new Uint32Array(4), 1),
    /unexpected uniform parameters/,
  );
  assert.throws(
    () => g.batch().dispatch(k, [a, a], undefined, 1e6),
    /workgroup count .* is outside/,
  );
  a.release();
});

Deno.test("Gpu.check() surfaces uncaptured WebGPU errors", async () => {
  const g = await gpu();
  const t = g.tensor([4]);
  const enc = g.device.createCommandEncoder();
  enc.copyBufferToBuffer(t.buffer, 0, t.buffer, 0, 4); // invalid: same source and destination
  g.device.queue.submit([enc.finish()]);
  await g.device.queue.onSubmittedWorkDone();
  assert.throws(() => g.check("test"), /WebGPU reported an error before or during "test"/);
  t.release();
});

Deno.test("Gpu.read() reads several tensors with one wait", async () => {
  const g = await gpu();
  const a = g.tensor([3], new Float32Array([1, 2, 3])), b = g.tensor([1], new Float32Array([7]));
  const waits = g.stats.waits;
  const [x, y] = await g.read([a, b]);
  assert.deepEqual([...x], [1, 2, 3]);
  assert.deepEqual([...y], [7]);
  assert.equal(g.stats.waits - waits, 1);
  release(a, b);
});

Deno.test("Gpu.tensor() comes from a pool that accounts live and peak bytes and reuses buffers", async () => {
  const g = await Gpu.create();
  try {
    const m0 = g.memory;
    const a = g.tensor([1000]); // 4000 bytes → 4096 with the 256-byte granule
    assert.equal(g.memory.live - m0.live, 4096);
    const buf = a.buffer;
    a.release();
    assert.equal(g.memory.live, m0.live);
    assert.equal(g.memory.peakLive - m0.peakLive, 4096);
    const b = g.tensor([1024]);
    assert.equal(b.buffer, buf, "an equal-size request reuses the pooled buffer");
    assert.equal(g.memory.reserved - m0.reserved, 4096, "no new GPU memory for the reuse");
    b.release();
    assert.throws(() => b.buffer, /Cannot use tensor "tensor": it was released/);
    assert.throws(
      () => g.tensor([2, 3], new Float32Array(5), "w"),
      /Cannot create tensor "w": shape \[2, 3\] holds 6 elements, data has 5/,
    );
  } finally {
    g.destroy();
  }
});

Deno.test("Gpu reports a lost device and refuses further work", async () => {
  const g = await Gpu.create();
  const res = await Residual.create(g);
  const a = g.tensor([4]);
  g.device.destroy(); // not Gpu.destroy(): simulate a loss the runtime did not ask for
  await g.device.lost;
  const batch = g.batch();
  res.forward(batch, a, a, a);
  await assert.rejects(batch.submit(), /the GPU device was lost/);
  a.buffer.destroy(); // free it now rather than in a finalizer after the device is gone
});

Deno.test("Gpu.create() explains what to install when there is no adapter", async () => {
  const gpuObj = navigator.gpu;
  const original = gpuObj.requestAdapter;
  Object.defineProperty(gpuObj, "requestAdapter", {
    value: () => Promise.resolve(null),
    configurable: true,
  });
  try {
    await assert.rejects(Gpu.create(), /Cannot find a WebGPU adapter.*mesa-vulkan-drivers/s);
  } finally {
    Object.defineProperty(gpuObj, "requestAdapter", {
      value: original,
      configurable: true,
      writable: true,
    });
    // deno-lint-ignore no-explicit-any
    delete (gpuObj as any).requestAdapter;
  }
  assert.ok(await navigator.gpu.requestAdapter(), "the real adapter is back");
});

Deno.test("Batch.dispatch() refuses a binding over the device's storage-binding limit, naming the tensor and the limit", async () => {
  const g = await gpu();
  const k = await g.kernel({
    name: "copy",
    code: COPY_WGSL,
    entry: "main",
    bindings: ["read", "write"],
  });
  const limit = g.maxBindingBytes;
  if (limit + 4 > g.device.limits.maxBufferSize) return; // cannot make a buffer that large here
  const big = g.tensor([limit / 4 + 1], undefined, "wte.weight");
  const small = g.tensor([4]);
  try {
    assert.throws(
      () => g.batch().dispatch(k, [big, small], undefined, 1),
      new RegExp(
        `tensor "wte\\.weight" is ${
          limit + 4
        } bytes, over this device's ${limit}-byte storage binding limit`,
      ),
    );
  } finally {
    release(big, small);
  }
});

Deno.test("Batch.copyToTexture() copies rectangles in order and refuses misaligned ones naming the tensor", async () => {
  const g = await gpu();
  // 8 rows of 64 floats; copy rows 2..5 (4 rows × 16 texels) to texture rows 1..4.
  const data = Float32Array.from({ length: 8 * 64 }, (_, i) => i);
  const src = g.tensor([8, 64], data, "copy.src");
  const texture = g.device.createTexture({
    label: "copy.dst",
    size: [16, 6],
    format: "rgba32float",
    usage: GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC,
  });
  const out = g.device.createBuffer({
    size: 6 * 256,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  try {
    const batch = g.batch();
    // Written before the copy in the same batch: the copy must see the new row 2.
    batch.write(src, new Float32Array(64).fill(-1), 2 * 64);
    batch.copyToTexture(src, texture, [
      { offset: 2 * 256, bytesPerRow: 256, width: 16, height: 4, y: 1 },
    ]);
    assert.ok(batch.kernels.includes("texture"));
    await batch.submit();
    const enc = g.device.createCommandEncoder();
    enc.copyTextureToBuffer({ texture }, { buffer: out, bytesPerRow: 256 }, [16, 6]);
    g.device.queue.submit([enc.finish()]);
    await out.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(out.getMappedRange().slice(0));
    out.unmap();
    for (let r = 1; r <= 4; r++) {
      const want = r === 1 ? new Float32Array(64).fill(-1) : data.slice((r + 1) * 64, (r + 2) * 64);
      assert.deepEqual(got.slice(r * 64, r * 64 + 64), want, `texture row ${r}`);
    }
    for (
      const bad of [
        { offset: 8, bytesPerRow: 256, width: 16, height: 1, y: 0 }, // offset not a texel
        { offset: 0, bytesPerRow: 128, width: 8, height: 2, y: 0 }, // row stride not 256-aligned
        { offset: 0, bytesPerRow: 256, width: 16, height: 9, y: 0 }, // past the tensor's end
        { offset: 0, bytesPerRow: 256, width: 16, height: 2, y: 5 }, // past the texture's end
      ]
    ) {
      assert.throws(() => g.batch().copyToTexture(src, texture, [bad]), /"copy\.src".*"copy\.dst"/);
    }
  } finally {
    texture.destroy();
    out.destroy();
    release(src);
  }
});
