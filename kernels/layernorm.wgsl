// LayerNorm over the last dimension (GPT-2), forward and backward. x is (N,C), weight and bias (C).
//   forward:          out (N,C) = (x − mean)·rstd·weight + bias        [writes =]
//                     mean (N), rstd (N) = 1/√(var + eps)             [writes =; kept for backward]
//                     var is the biased (1/C) variance, as in GPT-2 and llm.c.
//   backward:         dx (N,C) += (dnorm − mean(dnorm) − norm·mean(dnorm·norm))·rstd
//                     with norm = (x − mean)·rstd, dnorm = weight·dout  [accumulates +=]
//   dparams_partial:  partials (2, chunks, C) = Σ over the rows of each chunk of
//                     (dout·norm, dout)                                 [writes =; scratch]
//   dparams_sum:      grad (C) += Σ over chunks of partials[base + chunk·C + c]
//                     (base selects the dweight or the dbias half)      [accumulates +=]
// forward and backward run one workgroup per row (the flat group index wid.x + wid.y·nw.x is the
// row, so N may exceed 65,535) and reduce the row over the workgroup in a fixed order. dweight and
// dbias are column sums over N rows, done in two stages with no atomics, so no invocation loops
// more than max(rows_per_chunk, chunks) times (Mesa's CPU drivers stop at 65,535, see DESIGN.md).

// inv_c = 1/C, correctly rounded in TS: WGSL lets f32 division be off by 2.5 ulp, while a product
// with inv_c is correctly rounded on every driver (and exact for C = 1).
struct Params { N: u32, C: u32, eps: f32, chunks: u32, rows_per_chunk: u32, base: u32, inv_c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(7) var<storage, read> dout: array<f32>;
@group(0) @binding(8) var<storage, read> mean_in: array<f32>;
@group(0) @binding(9) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;
@group(0) @binding(11) var<storage, read_write> partials: array<f32>;
@group(0) @binding(12) var<storage, read> partials_in: array<f32>;
@group(0) @binding(13) var<storage, read_write> grad: array<f32>;

// Invocations per row. One 64-wide workgroup per row (llm.c uses one warp per row): few enough
// that Mesa's CPU drivers pay little for the barriers, enough to keep a GPU's row busy.
const WG: u32 = 64u;
var<workgroup> red: array<vec2f, WG>;

// Sums v over the workgroup (a fixed tree order, so results are deterministic).
fn workgroup_sum(lid: u32, v: vec2f) -> vec2f {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // everyone has read red[0] before the next call overwrites it
  return total;
}

@compute @workgroup_size(WG)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nw.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  // Two passes (mean, then squared deviations) avoid the cancellation of E[x²] − E[x]².
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) { s += x[base + c]; }
  let mu = workgroup_sum(lid, vec2f(s, 0.0)).x * p.inv_c;
  var v = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let d = x[base + c] - mu;
    v += d * d;
  }
  let rs = inverseSqrt(workgroup_sum(lid, vec2f(v, 0.0)).x * p.inv_c + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    out[base + c] = (x[base + c] - mu) * rs * weight[c] + bias[c];
  }
  if (lid == 0u) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}

@compute @workgroup_size(WG)
fn backward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nw.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  let mu = mean_in[row];
  let rs = rstd_in[row];
  var acc = vec2f(0.0);
  for (var c = lid; c < p.C; c += WG) {
    let norm = (x[base + c] - mu) * rs;
    let dnorm = weight[c] * dout[base + c];
    acc += vec2f(dnorm, dnorm * norm);
  }
  let m = workgroup_sum(lid, acc) * p.inv_c; // (mean(dnorm), mean(dnorm·norm))
  for (var c = lid; c < p.C; c += WG) {
    let norm = (x[base + c] - mu) * rs;
    let dnorm = weight[c] * dout[base + c];
    dx[base + c] = dx[base + c] + (dnorm - m.x - norm * m.y) * rs;
  }
}

// One invocation per (column c, chunk of rows_per_chunk rows): the chunk's dweight and dbias sums.
@compute @workgroup_size(64)
fn dparams_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = gid.x;
  let chunk = wid.y;
  if (c >= p.C) { return; }
  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(r0 + p.rows_per_chunk, p.N);
  var acc = vec2f(0.0);
  for (var r = r0; r < r1; r++) {
    let g = dout[r * p.C + c];
    acc += vec2f(g * (x[r * p.C + c] - mean_in[r]) * rstd_in[r], g);
  }
  partials[chunk * p.C + c] = acc.x;
  partials[(p.chunks + chunk) * p.C + c] = acc.y;
}

// One invocation per column: adds the chunk sums, in chunk order, into the gradient.
@compute @workgroup_size(64)
fn dparams_sum(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.chunks; k++) { s += partials_in[p.base + k * p.C + c]; }
  grad[c] = grad[c] + s;
}

// ---- rows variant (C a multiple of 4) ----------------------------------------------------------
// One invocation owns a whole row, with vec4 loads and no workgroup memory or barriers: what Mesa's
// CPU drivers run fastest (a 64-wide workgroup per row spends most of its time in barriers there).
// The flat row index is gid.x + gid.y·nw.x·64. forward_rows loops 3·(C/4 + 1) times, backward_rows
// 2·(C/4 + 1); the wrapper uses them only where that fits Mesa's cap. The same tensors as above,
// seen as vec4.
@group(0) @binding(14) var<storage, read> x4: array<vec4f>;
@group(0) @binding(15) var<storage, read> weight4: array<vec4f>;
@group(0) @binding(16) var<storage, read> bias4: array<vec4f>;
@group(0) @binding(17) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(18) var<storage, read> dout4: array<vec4f>;
@group(0) @binding(19) var<storage, read_write> dx4: array<vec4f>;

fn hsum4(v: vec4f) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let row = gid.x + gid.y * nw.x * 64u;
  if (row >= p.N) { return; }
  let C4 = p.C / 4u;
  let base = row * C4;
  var s = vec4f(0.0);
  for (var c = 0u; c < C4; c++) { s += x4[base + c]; }
  let mu = hsum4(s) * p.inv_c;
  var v = vec4f(0.0);
  for (var c = 0u; c < C4; c++) {
    let d = x4[base + c] - mu;
    v += d * d;
  }
  let rs = inverseSqrt(hsum4(v) * p.inv_c + p.eps);
  for (var c = 0u; c < C4; c++) {
    out4[base + c] = (x4[base + c] - mu) * rs * weight4[c] + bias4[c];
  }
  mean[row] = mu;
  rstd[row] = rs;
}

@compute @workgroup_size(64)
fn backward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let row = gid.x + gid.y * nw.x * 64u;
  if (row >= p.N) { return; }
  let C4 = p.C / 4u;
  let base = row * C4;
  let mu = mean_in[row];
  let rs = rstd_in[row];
  var a = vec4f(0.0);
  var b = vec4f(0.0);
  for (var c = 0u; c < C4; c++) {
    let norm = (x4[base + c] - mu) * rs;
    let dnorm = weight4[c] * dout4[base + c];
    a += dnorm;
    b += dnorm * norm;
  }
  let m1 = hsum4(a) * p.inv_c;
  let m2 = hsum4(b) * p.inv_c;
  for (var c = 0u; c < C4; c++) {
    let norm = (x4[base + c] - mu) * rs;
    let dnorm = weight4[c] * dout4[base + c];
    dx4[base + c] = dx4[base + c] + (dnorm - m1 - norm * m2) * rs;
  }
}
