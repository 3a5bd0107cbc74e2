// Dropout with a counter-based mask, forward and backward. Elementwise over n elements.
//   forward:  out (n) = x (n) · keep(i) · scale                     [writes =]
//   forward_inplace: xo (n) = xo (n) · keep(i) · scale              [writes =, in place]
//   backward: dx (n) += dout (n) · keep(i) · scale                  [accumulates +=]
// Dropped elements are x·0 (so NaN and ±inf inputs still show up as NaN, as in PyTorch).
// keep(i) = counter_hash(seed, offset + i) >= threshold, with threshold = round(p·2³²) and
// scale = 1/(1 − p) computed by the wrapper. The mask is recomputed from (seed, offset) in the
// backward pass instead of being stored. counter_hash must stay bit-identical to counterHash in
// runtime/rng.ts (u32 arithmetic wraps in WGSL as Math.imul(...) >>> 0 does in TS).
// The flat index i = gid.x + gid.y · (num_workgroups.x · 256) lets n exceed 65,535 workgroups.

struct Params { n: u32, seed: u32, offset: u32, threshold: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> xo: array<f32>;

// One round of the "lowbias32" integer hash (mix32 in runtime/rng.ts).
fn mix32(v: u32) -> u32 {
  var h = v;
  h = h ^ (h >> 16u);
  h = h * 0x7feb352du;
  h = h ^ (h >> 15u);
  h = h * 0x846ca68bu;
  return h ^ (h >> 16u);
}

// 32 random bits for element `index` of stream `seed` (counterHash in runtime/rng.ts).
fn counter_hash(seed: u32, index: u32) -> u32 {
  return mix32(mix32(index + seed * 0x9e3779b9u) ^ seed);
}

// The kept value's factor: scale where the element is kept, 0 where it is dropped.
fn keep_scale(i: u32) -> f32 {
  return select(0.0, p.scale, counter_hash(p.seed, p.offset + i) >= p.threshold);
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  out[i] = x[i] * keep_scale(i);
}

@compute @workgroup_size(256)
fn forward_inplace(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  xo[i] = xo[i] * keep_scale(i);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  dx[i] = dx[i] + dout[i] * keep_scale(i);
}
