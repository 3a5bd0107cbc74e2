// Causal multi-head self-attention (GPT-2's core between c_attn and c_proj), forward and backward,
// as llm.c's attention_forward / attention_backward.
// Shapes: qkv is (B,T,3C) in Hugging Face order: q = qkv[..., 0:C], k = qkv[..., C:2C],
// v = qkv[..., 2C:3C]; head h owns channels h*hs..(h+1)*hs of each, hs = C/H.
// out and dout are (B,T,C) (heads concatenated); att and datt are (B,H,T,T); dqkv is (B,T,3C).
//   forward:      att[b,h,t,t2] = softmax over t2 <= t of scale*q[t]·k[t2]   [writes =, every element:
//                                                                            0 above the diagonal]
//                 out[b,t,h*hs+d] = Σ_{t2<=t} att[b,h,t,t2]·v[t2,d]         [writes =]
//   backward_query (one workgroup per query row t):
//                 datt[b,h,t,t2] = dL/d(scale*q·k) for t2 <= t                [writes =, causal part only]
//                 dq = dqkv[..., 0:C] = scale * Σ_{t2<=t} datt[t,t2]·k[t2]  [writes =]
//   backward_key (one workgroup per key row t2, after backward_query; no atomics, fixed order):
//                 dk = dqkv[..., C:2C]  = scale * Σ_{t>=t2} datt[t,t2]·q[t]   [writes =]
//                 dv = dqkv[..., 2C:3C] = Σ_{t>=t2} att[t,t2]·dout[t]         [writes =]
// Mesa counts each execution of a loop as its iterations plus one (the exit test) and the 8 or 16
// invocations it runs in lockstep share one count, so the bounds below take the longest row.
// Two variants of each entry point, checked by the same tests:
// - workgroup (forward, backward_query, backward_key; any hs): each workgroup of 64 threads owns one
//   (b,h,row); its threads share the keys of the row (stride 64) and the channels of the head
//   (stride 64) and reduce through workgroup memory. One invocation loops at most
//   ceil(hs/64)*(T+3) + ceil(T/64)*(hs+4) + 24 times (4,190 at T=1024, hs=128), far below Mesa's
//   65,535 cap. The flat row index (b*H + h)*T + t is wid.x + wid.y * num_workgroups.x.
// - rows (forward_rows, backward_query_rows, backward_key_rows; hs a multiple of 4): one invocation
//   owns a whole row, with vec4 loads and the head vectors in registers, no workgroup memory and
//   no barriers, which is what Mesa's CPU drivers run fastest. forward_rows loops most, at most
//   T*(2*hs/4 + 6) + 2*hs/4 + 128 times (the 128 is slack for compiler-made loops; 39,072 at T=1024,
//   hs=64), so the wrapper uses it only where that fits the cap. The flat row index is gid.x + gid.y * num_workgroups.x * 64.

const WG: u32 = 64u;
const MAX_T: u32 = 1024u;
const MAX_HS: u32 = 128u;

struct Params { B: u32, T: u32, C: u32, H: u32, hs: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> att_out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> att: array<f32>;
@group(0) @binding(6) var<storage, read_write> datt_out: array<f32>;
@group(0) @binding(7) var<storage, read> datt: array<f32>;
@group(0) @binding(8) var<storage, read_write> dqkv: array<f32>;
// The same tensors seen as vec4 by the rows variant (qkv, out, dout, dqkv).
@group(0) @binding(9) var<storage, read> qkv4: array<vec4f>;
@group(0) @binding(10) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(11) var<storage, read> dout4: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> dqkv4: array<vec4f>;

// One row of scores/probabilities (and a second row in the backward passes), indexed by token.
var<workgroup> rowA: array<f32, MAX_T>;
var<workgroup> rowB: array<f32, MAX_T>;
// The head's slice of one token vector (q in forward, dout in backward_query).
var<workgroup> headVec: array<f32, MAX_HS>;
var<workgroup> red: array<f32, WG>;

// Which (b, h, t) a workgroup owns, and where its data starts.
struct Row {
  t: u32,
  // att/datt index of (b, h, t, 0); the row of key t2 in backward_key starts at bh*T*T.
  attRow: u32,
  bhStart: u32,
  // qkv index of (b, token 0, q part, head h, channel 0): token j's q starts at qkvHead + j*3C.
  qkvHead: u32,
  // out/dout index of (b, token 0, head h, channel 0): token j starts at outHead + j*C.
  outHead: u32,
}

fn rowOf(flat: u32) -> Row {
  let bh = flat / p.T;
  let b = bh / p.H;
  let h = bh % p.H;
  return Row(flat % p.T, flat * p.T, bh * p.T * p.T, b * p.T * 3u * p.C + h * p.hs, b * p.T * p.C + h * p.hs);
}

fn reduceMax(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let flat = wid.x + wid.y * nw.x;
  if (flat >= p.B * p.H * p.T) { return; }
  let r = rowOf(flat);
  let C3 = 3u * p.C;
  for (var d = lid; d < p.hs; d += WG) { headVec[d] = qkv[r.qkvHead + r.t * C3 + d]; }
  workgroupBarrier();
  // Scores of this thread's keys (each key's score is computed once, kept in rowA).
  var m = -3.0e38;
  for (var j = lid; j <= r.t; j += WG) {
    let k0 = r.qkvHead + j * C3 + p.C;
    var s = 0.0;
    for (var d = 0u; d < p.hs; d++) { s += headVec[d] * qkv[k0 + d]; }
    s *= p.scale;
    rowA[j] = s;
    m = max(m, s);
  }
  m = reduceMax(lid, m);
  var sum = 0.0;
  for (var j = lid; j <= r.t; j += WG) {
    let e = exp(rowA[j] - m);
    rowA[j] = e;
    sum += e;
  }
  let inv = 1.0 / reduceSum(lid, sum);
  for (var j = lid; j < p.T; j += WG) {
    var prob = 0.0;
    if (j <= r.t) {
      prob = rowA[j] * inv;
      rowA[j] = prob;
    }
    att_out[r.attRow + j] = prob;
  }
  workgroupBarrier();
  for (var d = lid; d < p.hs; d += WG) {
    let v0 = r.qkvHead + 2u * p.C + d;
    var acc = 0.0;
    for (var j = 0u; j <= r.t; j++) { acc += rowA[j] * qkv[v0 + j * C3]; }
    out[r.outHead + r.t * p.C + d] = acc;
  }
}

@compute @workgroup_size(64)
fn backward_query(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let flat = wid.x + wid.y * nw.x;
  if (flat >= p.B * p.H * p.T) { return; }
  let r = rowOf(flat);
  let C3 = 3u * p.C;
  for (var d = lid; d < p.hs; d += WG) { headVec[d] = dout[r.outHead + r.t * p.C + d]; }
  workgroupBarrier();
  // dL/datt[t,j] = dout[t]·v[j]; softmax backward needs Σ_j att·dL/datt.
  var dot = 0.0;
  for (var j = lid; j <= r.t; j += WG) {
    let v0 = r.qkvHead + j * C3 + 2u * p.C;
    var dprob = 0.0;
    for (var d = 0u; d < p.hs; d++) { dprob += headVec[d] * qkv[v0 + d]; }
    let prob = att[r.attRow + j];
    rowA[j] = prob;
    rowB[j] = dprob;
    dot += prob * dprob;
  }
  dot = reduceSum(lid, dot);
  for (var j = lid; j <= r.t; j += WG) {
    let g = rowA[j] * (rowB[j] - dot);
    rowB[j] = g;
    datt_out[r.attRow + j] = g;
  }
  workgroupBarrier();
  for (var d = lid; d < p.hs; d += WG) {
    let k0 = r.qkvHead + p.C + d;
    var acc = 0.0;
    for (var j = 0u; j <= r.t; j++) { acc += rowB[j] * qkv[k0 + j * C3]; }
    dqkv[r.qkvHead + r.t * C3 + d] = acc * p.scale;
  }
}

@compute @workgroup_size(64)
fn backward_key(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let flat = wid.x + wid.y * nw.x;
  if (flat >= p.B * p.H * p.T) { return; }
  let r = rowOf(flat);
  let t2 = r.t;
  let C3 = 3u * p.C;
  // Column t2 of att and datt, over the queries t >= t2 that saw this key.
  for (var j = t2 + lid; j < p.T; j += WG) {
    rowA[j] = att[r.bhStart + j * p.T + t2];
    rowB[j] = datt[r.bhStart + j * p.T + t2];
  }
  workgroupBarrier();
  for (var d = lid; d < p.hs; d += WG) {
    var dk = 0.0;
    var dv = 0.0;
    for (var j = t2; j < p.T; j++) {
      dk += rowB[j] * qkv[r.qkvHead + j * C3 + d];
      dv += rowA[j] * dout[r.outHead + j * p.C + d];
    }
    let k0 = r.qkvHead + t2 * C3 + p.C + d;
    dqkv[k0] = dk * p.scale;
    dqkv[k0 + p.C] = dv;
  }
}

// ---- rows variant -------------------------------------------------------------------------------

// Largest hs/4.
const MAX_HS4: u32 = 32u;

// Which (b, h, t) an invocation owns, with vec4 offsets.
struct Row4 {
  t: u32,
  bh: u32,
  // qkv4 index of (b, token 0, q part, head h): token j's q starts at qkvHead + j*R4, k at + C4, v at + 2*C4.
  qkvHead: u32,
  // out4/dout4 index of (b, token 0, head h): token j starts at outHead + j*C4.
  outHead: u32,
}

fn row4Of(flat: u32) -> Row4 {
  let bh = flat / p.T;
  let b = bh / p.H;
  let h = bh % p.H;
  let n4 = p.hs / 4u;
  return Row4(flat % p.T, bh, b * p.T * 3u * (p.C / 4u) + h * n4, b * p.T * (p.C / 4u) + h * n4);
}

fn hsum(v: vec4f) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.H * p.T) { return; }
  let r = row4Of(flat);
  let n4 = p.hs / 4u;
  let C4 = p.C / 4u;
  let R4 = 3u * C4;
  var q: array<vec4f, MAX_HS4>;
  var acc: array<vec4f, MAX_HS4>;
  for (var c = 0u; c < n4; c++) { q[c] = qkv4[r.qkvHead + r.t * R4 + c] * p.scale; }
  // att_out holds the raw scores, then exp(score - max), then the probabilities.
  let row = flat * p.T;
  var m = -3.0e38;
  for (var j = 0u; j <= r.t; j++) {
    let k0 = r.qkvHead + j * R4 + C4;
    var s = vec4f(0.0);
    for (var c = 0u; c < n4; c++) { s += q[c] * qkv4[k0 + c]; }
    let score = hsum(s);
    att_out[row + j] = score;
    m = max(m, score);
  }
  var sum = 0.0;
  for (var j = 0u; j <= r.t; j++) {
    let e = exp(att_out[row + j] - m);
    att_out[row + j] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j <= r.t; j++) {
    let prob = att_out[row + j] * inv;
    att_out[row + j] = prob;
    let v0 = r.qkvHead + j * R4 + 2u * C4;
    for (var c = 0u; c < n4; c++) { acc[c] += prob * qkv4[v0 + c]; }
  }
  for (var j = r.t + 1u; j < p.T; j++) { att_out[row + j] = 0.0; }
  for (var c = 0u; c < n4; c++) { out4[r.outHead + r.t * C4 + c] = acc[c]; }
}

@compute @workgroup_size(64)
fn backward_query_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.H * p.T) { return; }
  let r = row4Of(flat);
  let n4 = p.hs / 4u;
  let C4 = p.C / 4u;
  let R4 = 3u * C4;
  var g: array<vec4f, MAX_HS4>;
  var acc: array<vec4f, MAX_HS4>;
  for (var c = 0u; c < n4; c++) { g[c] = dout4[r.outHead + r.t * C4 + c]; }
  // datt_out first holds dL/datt = dout[t]·v[j], then the score gradients.
  let row = flat * p.T;
  var dot = 0.0;
  for (var j = 0u; j <= r.t; j++) {
    let v0 = r.qkvHead + j * R4 + 2u * C4;
    var s = vec4f(0.0);
    for (var c = 0u; c < n4; c++) { s += g[c] * qkv4[v0 + c]; }
    let dprob = hsum(s);
    datt_out[row + j] = dprob;
    dot += att[row + j] * dprob;
  }
  for (var j = 0u; j <= r.t; j++) {
    let dscore = att[row + j] * (datt_out[row + j] - dot);
    datt_out[row + j] = dscore;
    let k0 = r.qkvHead + j * R4 + C4;
    for (var c = 0u; c < n4; c++) { acc[c] += dscore * qkv4[k0 + c]; }
  }
  for (var c = 0u; c < n4; c++) { dqkv4[r.qkvHead + r.t * R4 + c] = acc[c] * p.scale; }
}

@compute @workgroup_size(64)
fn backward_key_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.H * p.T) { return; }
  let r = row4Of(flat);
  let t2 = r.t;
  let n4 = p.hs / 4u;
  let C4 = p.C / 4u;
  let R4 = 3u * C4;
  var dk: array<vec4f, MAX_HS4>;
  var dv: array<vec4f, MAX_HS4>;
  // Column t2 of att and datt, over the queries t >= t2 that saw this key.
  let col = r.bh * p.T * p.T + t2;
  for (var j = t2; j < p.T; j++) {
    let prob = att[col + j * p.T];
    let dscore = datt[col + j * p.T];
    let q0 = r.qkvHead + j * R4;
    let o0 = r.outHead + j * C4;
    for (var c = 0u; c < n4; c++) {
      dk[c] += dscore * qkv4[q0 + c];
      dv[c] += prob * dout4[o0 + c];
    }
  }
  let k0 = r.qkvHead + t2 * R4 + C4;
  for (var c = 0u; c < n4; c++) {
    dqkv4[k0 + c] = dk[c] * p.scale;
    dqkv4[k0 + C4 + c] = dv[c];
  }
}

// ---- gemm variant -------------------------------------------------------------------------------
// Scores, outputs and every gradient are batched GEMMs over the (b, h) heads (kernels/matmul.ts,
// run by the wrapper); these two kernels do the row-wise softmax parts in place, one invocation per
// (b, h, t) row (flat index gid.x + gid.y * num_workgroups.x * 64), at most 3*T + 3 loop iterations.
//   softmax_rows:          att[row, j] = softmax over j <= t of att[row, j] (the scaled scores
//                          written by the GEMM), 0 for j > t                          [in place, =]
//   softmax_backward_rows: datt[row, j] = att·(datt − Σ_{j2<=t} att·datt) for j <= t (datt holds
//                          dL/d prob = dout·v from the GEMM), 0 for j > t            [in place, =]

@compute @workgroup_size(64)
fn softmax_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.H * p.T) { return; }
  let t = flat % p.T;
  let row = flat * p.T;
  var m = -3.0e38;
  for (var j = 0u; j <= t; j++) { m = max(m, att_out[row + j]); }
  var sum = 0.0;
  for (var j = 0u; j <= t; j++) {
    let e = exp(att_out[row + j] - m);
    att_out[row + j] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j <= t; j++) { att_out[row + j] = att_out[row + j] * inv; }
  for (var j = t + 1u; j < p.T; j++) { att_out[row + j] = 0.0; }
}

@compute @workgroup_size(64)
fn softmax_backward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.H * p.T) { return; }
  let t = flat % p.T;
  let row = flat * p.T;
  var dot = 0.0;
  for (var j = 0u; j <= t; j++) { dot += att[row + j] * datt_out[row + j]; }
  for (var j = 0u; j <= t; j++) { datt_out[row + j] = att[row + j] * (datt_out[row + j] - dot); }
  for (var j = t + 1u; j < p.T; j++) { datt_out[row + j] = 0.0; }
}
