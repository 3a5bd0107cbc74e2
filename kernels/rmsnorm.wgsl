// RMSNorm over the last dimension (Llama, Qwen2), forward and backward. x is (N,C), weight (C).
//   forward:           out (N,C) = weight·(x·rstd)                      [writes =]
//                      rstd (N) = 1/√(mean(x²) + eps)                   [writes =; kept for backward]
//                      No bias and no mean subtraction, all in f32, as Hugging Face's LlamaRMSNorm.
//   backward:          dx (N,C) += (dnorm − norm·mean(dnorm·norm))·rstd
//                      with norm = x·rstd, dnorm = weight·dout        [accumulates +=]
//   dweight_partial:   partials (chunks, C) = Σ over the rows of each chunk of dout·norm
//                                                                       [writes =; scratch]
//   dweight_sum:       grad (C) += Σ over chunks of partials[chunk·C + c]  [accumulates +=]
// forward and backward run one workgroup per row (the flat group index wid.x + wid.y·nw.x is the
// row, so N may exceed 65,535) and reduce the row over the workgroup in a fixed order. dweight is a
// column sum over N rows, done in two stages with no atomics, so no invocation loops more than
// max(rows_per_chunk, chunks) times (Mesa's CPU drivers stop at 65,535, see DESIGN.md).

// inv_c = 1/C, correctly rounded in TS: WGSL lets f32 division be off by 2.5 ulp, while a product
// with inv_c is correctly rounded on every driver (and exact for C = 1).
struct Params { N: u32, C: u32, eps: f32, chunks: u32, rows_per_chunk: u32, inv_c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> partials: array<f32>;
@group(0) @binding(9) var<storage, read> partials_in: array<f32>;
@group(0) @binding(10) var<storage, read_write> grad: array<f32>;

// Invocations per row. One 64-wide workgroup per row (llm.c uses one warp per row): few enough
// that Mesa's CPU drivers pay little for the barriers, enough to keep a GPU's row busy.
const WG: u32 = 64u;
var<workgroup> red: array<f32, WG>;

// Sums v over the workgroup (a fixed tree order, so results are deterministic). Each entry point
// calls it once, so no barrier is needed after red[0] is read.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
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
  // One pass suffices: a sum of squares has no cancellation (LayerNorm's variance does).
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = x[base + c];
    s += v * v;
  }
  let rs = inverseSqrt(workgroup_sum(lid, s) * p.inv_c + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    out[base + c] = weight[c] * (x[base + c] * rs);
  }
  if (lid == 0u) { rstd[row] = rs; }
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
  let rs = rstd_in[row];
  var acc = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    acc += weight[c] * dout[base + c] * (x[base + c] * rs);
  }
  let m = workgroup_sum(lid, acc) * p.inv_c; // mean(dnorm·norm)
  for (var c = lid; c < p.C; c += WG) {
    let norm = x[base + c] * rs;
    let dnorm = weight[c] * dout[base + c];
    dx[base + c] = dx[base + c] + (dnorm - norm * m) * rs;
  }
}

// One invocation per (column c, chunk of rows_per_chunk rows): the chunk's dweight sum.
@compute @workgroup_size(64)
fn dweight_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = gid.x;
  let chunk = wid.y;
  if (c >= p.C) { return; }
  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(r0 + p.rows_per_chunk, p.N);
  var acc = 0.0;
  for (var r = r0; r < r1; r++) {
    acc += dout[r * p.C + c] * (x[r * p.C + c] * rstd_in[r]);
  }
  partials[chunk * p.C + c] = acc;
}

// One invocation per column: adds the chunk sums, in chunk order, into the gradient.
@compute @workgroup_size(64)
fn dweight_sum(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.chunks; k++) { s += partials_in[k * p.C + c]; }
  grad[c] = grad[c] + s;
}

// ---- rows variant (C a multiple of 4) ----------------------------------------------------------
// One invocation owns a whole row, with vec4 loads and no workgroup memory or barriers: what Mesa's
// CPU drivers run fastest (a 64-wide workgroup per row spends most of its time in barriers there).
// The flat row index is gid.x + gid.y·nw.x·64. forward_rows and backward_rows each loop
// 2·(C/4 + 1) times; the wrapper uses them only where that fits Mesa's cap. The same tensors as
// above, seen as vec4.
@group(0) @binding(11) var<storage, read> x4: array<vec4f>;
@group(0) @binding(12) var<storage, read> weight4: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(14) var<storage, read> dout4: array<vec4f>;
@group(0) @binding(15) var<storage, read_write> dx4: array<vec4f>;

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
  for (var c = 0u; c < C4; c++) {
    let v = x4[base + c];
    s += v * v;
  }
  let rs = inverseSqrt(hsum4(s) * p.inv_c + p.eps);
  for (var c = 0u; c < C4; c++) {
    out4[base + c] = weight4[c] * (x4[base + c] * rs);
  }
  rstd[row] = rs;
}

@compute @workgroup_size(64)
fn backward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let row = gid.x + gid.y * nw.x * 64u;
  if (row >= p.N) { return; }
  let C4 = p.C / 4u;
  let base = row * C4;
  let rs = rstd_in[row];
  var acc = vec4f(0.0);
  for (var c = 0u; c < C4; c++) {
    acc += weight4[c] * dout4[base + c] * (x4[base + c] * rs);
  }
  let m = hsum4(acc) * p.inv_c;
  for (var c = 0u; c < C4; c++) {
    let norm = x4[base + c] * rs;
    let dnorm = weight4[c] * dout4[base + c];
    dx4[base + c] = dx4[base + c] + (dnorm - norm * m) * rs;
  }
}
