// Global gradient L2 norm and clipping scale, deterministic two-stage reduction.
//   partials: for one gradient tensor g (n) with optional 0/1 mask (n), workgroup w writes
//             partials[offset + w] = Σ over its CHUNK elements of (g·mask)²                [writes =]
//   finish:   one workgroup sums partials (P) in a fixed order and writes
//             out[0] = norm = √Σ, out[1] = clipScale = min(1, maxNorm / (norm + 1e-6))
//             (torch.nn.utils.clip_grad_norm_; 1 when clipping is off)                        [writes =]
// Each partials invocation loops PER_THREAD + 10 times; finish loops ceil(P/256) + 10 times
// (exit tests counted, as Mesa counts them).

struct Params {
  n: u32,       // partials: elements of this tensor; finish: number of partials P
  offset: u32,  // partials: first slot of this tensor in `partials`
  groups: u32,  // partials: workgroups that hold elements (the grid may be folded and larger)
  hasMask: u32,
  clip: u32,    // finish: 1 when maxNorm is finite and > 0
  maxNorm: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG = 256u;
const PER_THREAD = 32u;
var<workgroup> red: array<f32, 256>;

fn reduce_sum(lid: u32, x: f32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(256)
fn partial_sums(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = wid.x + wid.y * nw.x;
  if (w >= p.groups) { return; }
  let base = w * WG * PER_THREAD;
  var s = 0.0;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = base + k * WG + lid; // consecutive invocations read consecutive elements
    if (i < p.n) {
      var x = grad[i];
      if (p.hasMask != 0u) { x *= mask[i]; }
      s += x * x;
    }
  }
  let total = reduce_sum(lid, s);
  if (lid == 0u) { partials[p.offset + w] = total; }
}

@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var k = lid; k < p.n; k += WG) { s += partials[k]; }
  let total = reduce_sum(lid, s);
  if (lid == 0u) {
    let norm = sqrt(total);
    out[0] = norm;
    out[1] = select(1.0, min(1.0, p.maxNorm / (norm + 1e-6)), p.clip != 0u);
  }
}
