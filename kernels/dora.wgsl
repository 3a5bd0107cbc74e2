// DoRA (weight-decomposed LoRA) as Hugging Face PEFT computes it. Shapes: N outputs, K inputs,
// rank r, M rows of activations. The base weight W is stored (K,N) (Conv1D: fifo = 1, PEFT's fan_in_fan_out) or (N,K)
// (nn.Linear: fifo = 0); V below is W read as (N,K) either way.
//
//   dora_norm:    for each output o:
//                 nrm[o] = ‖V[o,:] + s·(B·A)[o,:]‖₂   (PEFT's get_weight_norm: row norm of the
//                 (out, in) weight plus the scaled LoRA weight), g[o] = m[o] / nrm[o],
//                 gm1[o] = g[o] − 1                                                  [writes =]
//   dora_combine: for each (row, o), with ls = s·(x·Aᵀ·Bᵀ) (the scaled LoRA branch) and z the
//                 base result without bias:
//                 mode 0: z = y[row,o] − bias[o] (bias when flag = 1): the base result is reused
//                 mode 1: z = zin[row,o] (recomputed on the dropped-out input)
//                 y[row,o] += (g[o] − 1)·z + g[o]·ls[row,o]                           [accumulates +=]
//                 h[row,o] = (z + ls[row,o]) / nrm[o]   (what ∂/∂m needs)            [writes =]
//   dora_rescale: W[i] = W[i]·g[o(i)] (mode 0) or W[i] / g[o(i)] (mode 1), in place, o(i) the
//                 output of element i in W's layout                                   [writes =]
//
// dora_norm runs one workgroup of 64 lanes per output o (group index wid.x + wid.y · nw.x); lane
// j sums inputs j, j+64, … (each a length-r dot product) and a fixed-order tree adds the lanes
// (deterministic). The element-wise entry points use i = gid.x + gid.y · (nw.x · 256).

struct Params {
  m: u32,
  n: u32,
  k: u32,
  r: u32,
  fifo: u32,
  mode: u32,
  flag: u32,
  s: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> mag: array<f32>;
@group(0) @binding(5) var<storage, read_write> nrm: array<f32>;
@group(0) @binding(6) var<storage, read_write> g: array<f32>;
@group(0) @binding(7) var<storage, read_write> gm1: array<f32>;
@group(0) @binding(8) var<storage, read_write> y: array<f32>;
@group(0) @binding(9) var<storage, read> zin: array<f32>;
@group(0) @binding(10) var<storage, read> bias: array<f32>;
@group(0) @binding(11) var<storage, read> ls: array<f32>;
@group(0) @binding(12) var<storage, read> gin: array<f32>;
@group(0) @binding(13) var<storage, read> nin: array<f32>;
@group(0) @binding(14) var<storage, read_write> h: array<f32>;
@group(0) @binding(15) var<storage, read_write> wt: array<f32>;

const LANES: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn dora_norm(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
) {
  let o = wid.x + wid.y * nw.x;
  let lane = lid.x;
  var acc = 0.0;
  if (o < p.n) {
    for (var i = lane; i < p.k; i += LANES) {
      var d = 0.0;
      for (var j = 0u; j < p.r; j++) {
        d += b[o * p.r + j] * a[j * p.k + i];
      }
      let v = select(w[o * p.k + i], w[i * p.n + o], p.fifo == 1u) + p.s * d;
      acc += v * v;
    }
  }
  partial[lane] = acc;
  workgroupBarrier();
  for (var half = LANES / 2u; half > 0u; half >>= 1u) {
    if (lane < half) { partial[lane] = partial[lane] + partial[lane + half]; }
    workgroupBarrier();
  }
  if (lane == 0u && o < p.n) {
    let n = sqrt(partial[0]);
    let scale = mag[o] / n;
    nrm[o] = n;
    g[o] = scale;
    gm1[o] = scale - 1.0;
  }
}

@compute @workgroup_size(256)
fn dora_combine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.m * p.n) { return; }
  let o = i % p.n;
  var z = 0.0;
  if (p.mode == 0u) {
    z = y[i];
    if (p.flag == 1u) { z -= bias[o]; }
  } else {
    z = zin[i];
  }
  let scale = gin[o];
  y[i] = y[i] + (scale - 1.0) * z + scale * ls[i];
  h[i] = (z + ls[i]) / nin[o];
}

@compute @workgroup_size(256)
fn dora_rescale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n * p.k) { return; }
  let o = select(i / p.k, i % p.n, p.fifo == 1u);
  wt[i] = select(wt[i] * gin[o], wt[i] / gin[o], p.mode == 1u);
}
