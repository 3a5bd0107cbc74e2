// Causal self-attention with grouped-query heads (GPT-2's core between c_attn and c_proj; Llama's
// between q/k/v_proj and o_proj), forward and backward, as llm.c's attention_forward /
// attention_backward.
// Heads: H query heads, Hkv key/value heads (Hkv divides H), head size hs; query head h uses
// key/value head h / g with g = H / Hkv (Hugging Face's repeat_kv). Hkv = H is multi-head
// attention, Hkv = 1 multi-query attention. C = H*hs (the width of q and of out).
// Shapes: qkv is (B,T,W), W = (H + 2*Hkv)*hs: q = qkv[..., 0:C] (head h at h*hs), k =
// qkv[..., C:C+Hkv*hs] and v = qkv[..., C+Hkv*hs:W] (kv head j at j*hs of each). With Hkv = H this
// is GPT-2's (B,T,3C) in Hugging Face order. out and dout are (B,T,C) (heads concatenated); att
// and datt are (B,H,T,T); dqkv is (B,T,W).
//   forward:      att[b,h,t,t2] = softmax over t2 <= t of scale*q_h[t]·k_{h/g}[t2]
//                                              [writes =, every element: 0 above the diagonal]
//                 out[b,t,h*hs+d] = Σ_{t2<=t} att[b,h,t,t2]·v_{h/g}[t2,d]    [writes =]
//   backward_query (one workgroup per query row (b,h,t)):
//                 datt[b,h,t,t2] = dL/d(scale*q·k) for t2 <= t    [writes =, causal part only]
//                 dq_h[t] = scale * Σ_{t2<=t} datt[t,t2]·k_{h/g}[t2]           [writes =]
//   backward_key (one workgroup per key row (b,j,t2) of kv head j, after backward_query; no
//   atomics, fixed order: the g query heads of the group one after another, each over t):
//                 dk_j[t2] = scale * Σ_{h: h/g=j} Σ_{t>=t2} datt[b,h,t,t2]·q_h[t]   [writes =]
//                 dv_j[t2] = Σ_{h: h/g=j} Σ_{t>=t2} att[b,h,t,t2]·dout_h[t]         [writes =]
// Attention-probability dropout (pipelines compiled with DROPOUT = true): the values are weighted by
// drop(att) instead of att, drop(x)[i] = x[i]·keep(i)·keepScale with keep(i) = counter_hash(seed, i)
// >= threshold for the att index i = ((b*H + h)*T + t)*T + t2 (Hugging Face's attn_dropout after the
// softmax). att keeps the undropped probabilities, which the softmax backward needs; the mask is
// recomputed from (seed, i) wherever it is used, so every pass sees the same one:
//   forward:        out[b,t,h*hs+d] = Σ_{t2<=t} drop(att)[b,h,t,t2]·v_{h/g}[t2,d]
//   backward_query: dL/datt = drop(dout·v) (the dropout's backward), then the softmax backward with
//                   the undropped att as without dropout
//   backward_key:   dv_j[t2] = Σ_h Σ_{t>=t2} drop(att)[b,h,t,t2]·dout_h[t]; dk as without dropout
// With DROPOUT = false (the default) the kernels are exactly those without dropout.
// Mesa counts each execution of a loop as its iterations plus one (the exit test) and the 8 or 16
// invocations it runs in lockstep share one count, so the bounds below take the longest row.
// Two variants of each entry point, checked by the same tests:
// - workgroup (forward, backward_query, backward_key; any hs): each workgroup of 64 threads owns
//   one row; its threads share the keys of the row (stride 64) and the channels of the head
//   (stride 64) and reduce through workgroup memory. forward loops at most
//   ceil(hs/64)*(T+3) + ceil(T/64)*(hs+4) + 24 times (4,190 at T=1024, hs=128), backward_key at
//   most g*(ceil(T/64) + ceil(hs/64)*(T+2) + 3) + ceil(hs/64) + 24 (the wrapper checks both
//   against Mesa's 65,535 cap). The flat row index (b*H + h)*T + t (backward_key:
//   (b*Hkv + j)*T + t2) is wid.x + wid.y * num_workgroups.x.
// - rows (forward_rows, backward_query_rows, backward_key_rows; hs a multiple of 4): one invocation
//   owns a whole row, with vec4 loads and the head vectors in registers, no workgroup memory and
//   no barriers, which is what Mesa's CPU drivers run fastest. forward_rows loops at most
//   T*(2*hs/4 + 6) + 2*hs/4 + 128 times (the 128 is slack for compiler-made loops; 39,072 at
//   T=1024, hs=64), backward_key_rows at most g*(T*(hs/4 + 2) + 2) + hs/4 + 128, so the wrapper
//   uses the variant only where both fit the cap. The flat row index is
//   gid.x + gid.y * num_workgroups.x * 64.

const WG: u32 = 64u;
const MAX_T: u32 = 1024u;
const MAX_HS: u32 = 128u;
// Channels of a head one workgroup thread owns in backward_key (MAX_HS / WG).
const PER_THREAD: u32 = 2u;

// C = H*hs; W = (H + 2*Hkv)*hs, the row width of qkv.
// seed, threshold and keepScale describe the dropout mask (read only where it is applied).
struct Params {
  B: u32, T: u32, C: u32, H: u32, hs: u32, scale: f32, Hkv: u32, W: u32,
  seed: u32, threshold: u32, keepScale: f32,
}
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
// The dropped probabilities drop(att) (B,H,T,T), written by softmax_dropout_rows for the gemm
// variant's ·V GEMM.
@group(0) @binding(13) var<storage, read_write> dropped_out: array<f32>;

// Whether this pipeline applies attention-probability dropout.
override DROPOUT: bool = false;

// One row of scores/probabilities (and a second row in the backward passes), indexed by token.
var<workgroup> rowA: array<f32, MAX_T>;
var<workgroup> rowB: array<f32, MAX_T>;
// The head's slice of one token vector (q in forward, dout in backward_query).
var<workgroup> headVec: array<f32, MAX_HS>;
var<workgroup> red: array<f32, WG>;

// Where the data of query head h of sequence b starts. Token j's q is at qHead + j*W, its k at
// kvHead + j*W, its v at kvHead + j*W + Hkv*hs, its out at outHead + j*C.
struct Head {
  // att/datt index of (b, h, 0, 0).
  bhStart: u32,
  // qkv index of (b, token 0, q part, head h, channel 0).
  qHead: u32,
  // qkv index of (b, token 0, k part, kv head h/g, channel 0).
  kvHead: u32,
  // out/dout index of (b, token 0, head h, channel 0).
  outHead: u32,
}

fn headOf(b: u32, h: u32) -> Head {
  let kvh = h / (p.H / p.Hkv);
  let bT = b * p.T;
  return Head(
    (b * p.H + h) * p.T * p.T,
    bT * p.W + h * p.hs,
    bT * p.W + p.C + kvh * p.hs,
    bT * p.C + h * p.hs,
  );
}

// One round of the "lowbias32" integer hash. mix32 and counter_hash are copies of those in
// kernels/dropout.wgsl and must stay bit-identical to mix32/counterHash in runtime/rng.ts (the tests
// compare the masks with the TS reference).
fn mix32(v: u32) -> u32 {
  var h = v;
  h = h ^ (h >> 16u);
  h = h * 0x7feb352du;
  h = h ^ (h >> 15u);
  h = h * 0x846ca68bu;
  return h ^ (h >> 16u);
}

// 32 random bits for element `index` of stream `seed`.
fn counter_hash(seed: u32, index: u32) -> u32 {
  return mix32(mix32(index + seed * 0x9e3779b9u) ^ seed);
}

// keepScale where att element i is kept, 0 where it is dropped.
fn keep_scale(i: u32) -> f32 {
  return select(0.0, p.keepScale, counter_hash(p.seed, i) >= p.threshold);
}

// x·keep_scale(i) in a DROPOUT pipeline, x itself otherwise.
fn drop(x: f32, i: u32) -> f32 {
  if (DROPOUT) { return x * keep_scale(i); }
  return x;
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
  let t = flat % p.T;
  let bh = flat / p.T;
  let r = headOf(bh / p.H, bh % p.H);
  let attRow = flat * p.T;
  for (var d = lid; d < p.hs; d += WG) { headVec[d] = qkv[r.qHead + t * p.W + d]; }
  workgroupBarrier();
  // Scores of this thread's keys (each key's score is computed once, kept in rowA).
  var m = -3.0e38;
  for (var j = lid; j <= t; j += WG) {
    let k0 = r.kvHead + j * p.W;
    var s = 0.0;
    for (var d = 0u; d < p.hs; d++) { s += headVec[d] * qkv[k0 + d]; }
    s *= p.scale;
    rowA[j] = s;
    m = max(m, s);
  }
  m = reduceMax(lid, m);
  var sum = 0.0;
  for (var j = lid; j <= t; j += WG) {
    let e = exp(rowA[j] - m);
    rowA[j] = e;
    sum += e;
  }
  let inv = 1.0 / reduceSum(lid, sum);
  for (var j = lid; j < p.T; j += WG) {
    var prob = 0.0;
    if (j <= t) {
      prob = rowA[j] * inv;
      rowA[j] = drop(prob, attRow + j); // what the values are weighted by
    }
    att_out[attRow + j] = prob;
  }
  workgroupBarrier();
  for (var d = lid; d < p.hs; d += WG) {
    let v0 = r.kvHead + p.Hkv * p.hs + d;
    var acc = 0.0;
    for (var j = 0u; j <= t; j++) { acc += rowA[j] * qkv[v0 + j * p.W]; }
    out[r.outHead + t * p.C + d] = acc;
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
  let t = flat % p.T;
  let bh = flat / p.T;
  let r = headOf(bh / p.H, bh % p.H);
  let attRow = flat * p.T;
  for (var d = lid; d < p.hs; d += WG) { headVec[d] = dout[r.outHead + t * p.C + d]; }
  workgroupBarrier();
  // dL/datt[t,j] = dout[t]·v[j]; softmax backward needs Σ_j att·dL/datt.
  var dot = 0.0;
  for (var j = lid; j <= t; j += WG) {
    let v0 = r.kvHead + j * p.W + p.Hkv * p.hs;
    var dprob = 0.0;
    for (var d = 0u; d < p.hs; d++) { dprob += headVec[d] * qkv[v0 + d]; }
    dprob = drop(dprob, attRow + j);
    let prob = att[attRow + j];
    rowA[j] = prob;
    rowB[j] = dprob;
    dot += prob * dprob;
  }
  dot = reduceSum(lid, dot);
  for (var j = lid; j <= t; j += WG) {
    let g = rowA[j] * (rowB[j] - dot);
    rowB[j] = g;
    datt_out[attRow + j] = g;
  }
  workgroupBarrier();
  for (var d = lid; d < p.hs; d += WG) {
    let k0 = r.kvHead + d;
    var acc = 0.0;
    for (var j = 0u; j <= t; j++) { acc += rowB[j] * qkv[k0 + j * p.W]; }
    dqkv[r.qHead + t * p.W + d] = acc * p.scale;
  }
}

@compute @workgroup_size(64)
fn backward_key(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let flat = wid.x + wid.y * nw.x;
  if (flat >= p.B * p.Hkv * p.T) { return; }
  let t2 = flat % p.T;
  let bj = flat / p.T;
  let b = bj / p.Hkv;
  let g = p.H / p.Hkv;
  let h0 = (bj % p.Hkv) * g;
  var dk: array<f32, PER_THREAD>;
  var dv: array<f32, PER_THREAD>;
  for (var i = 0u; i < g; i++) {
    let r = headOf(b, h0 + i);
    // Column t2 of this query head's att and datt, over the queries t >= t2 that saw this key.
    for (var j = t2 + lid; j < p.T; j += WG) {
      let at = r.bhStart + j * p.T + t2;
      rowA[j] = drop(att[at], at);
      rowB[j] = datt[at];
    }
    workgroupBarrier();
    for (var d = lid; d < p.hs; d += WG) {
      let c = d / WG;
      var sk = dk[c];
      var sv = dv[c];
      for (var j = t2; j < p.T; j++) {
        sk += rowB[j] * qkv[r.qHead + j * p.W + d];
        sv += rowA[j] * dout[r.outHead + j * p.C + d];
      }
      dk[c] = sk;
      dv[c] = sv;
    }
    // The next head's column overwrites rowA/rowB.
    workgroupBarrier();
  }
  let k0 = headOf(b, h0).kvHead + t2 * p.W;
  for (var d = lid; d < p.hs; d += WG) {
    dqkv[k0 + d] = dk[d / WG] * p.scale;
    dqkv[k0 + p.Hkv * p.hs + d] = dv[d / WG];
  }
}

// ---- rows variant -------------------------------------------------------------------------------

// Largest hs/4.
const MAX_HS4: u32 = 32u;

// headOf in vec4 units (hs, C and W are multiples of 4).
fn head4Of(b: u32, h: u32) -> Head {
  let r = headOf(b, h);
  return Head(r.bhStart, r.qHead / 4u, r.kvHead / 4u, r.outHead / 4u);
}

fn hsum(v: vec4f) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.H * p.T) { return; }
  let t = flat % p.T;
  let bh = flat / p.T;
  let r = head4Of(bh / p.H, bh % p.H);
  let n4 = p.hs / 4u;
  let C4 = p.C / 4u;
  let W4 = p.W / 4u;
  let V4 = p.Hkv * n4;
  var q: array<vec4f, MAX_HS4>;
  var acc: array<vec4f, MAX_HS4>;
  for (var c = 0u; c < n4; c++) { q[c] = qkv4[r.qHead + t * W4 + c] * p.scale; }
  // att_out holds the raw scores, then exp(score - max), then the probabilities.
  let row = flat * p.T;
  var m = -3.0e38;
  for (var j = 0u; j <= t; j++) {
    let k0 = r.kvHead + j * W4;
    var s = vec4f(0.0);
    for (var c = 0u; c < n4; c++) { s += q[c] * qkv4[k0 + c]; }
    let score = hsum(s);
    att_out[row + j] = score;
    m = max(m, score);
  }
  var sum = 0.0;
  for (var j = 0u; j <= t; j++) {
    let e = exp(att_out[row + j] - m);
    att_out[row + j] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j <= t; j++) {
    let prob = att_out[row + j] * inv;
    att_out[row + j] = prob;
    let weight = drop(prob, row + j);
    let v0 = r.kvHead + j * W4 + V4;
    for (var c = 0u; c < n4; c++) { acc[c] += weight * qkv4[v0 + c]; }
  }
  for (var j = t + 1u; j < p.T; j++) { att_out[row + j] = 0.0; }
  for (var c = 0u; c < n4; c++) { out4[r.outHead + t * C4 + c] = acc[c]; }
}

@compute @workgroup_size(64)
fn backward_query_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.H * p.T) { return; }
  let t = flat % p.T;
  let bh = flat / p.T;
  let r = head4Of(bh / p.H, bh % p.H);
  let n4 = p.hs / 4u;
  let C4 = p.C / 4u;
  let W4 = p.W / 4u;
  let V4 = p.Hkv * n4;
  var g: array<vec4f, MAX_HS4>;
  var acc: array<vec4f, MAX_HS4>;
  for (var c = 0u; c < n4; c++) { g[c] = dout4[r.outHead + t * C4 + c]; }
  // datt_out first holds dL/datt = dout[t]·v[j], then the score gradients.
  let row = flat * p.T;
  var dot = 0.0;
  for (var j = 0u; j <= t; j++) {
    let v0 = r.kvHead + j * W4 + V4;
    var s = vec4f(0.0);
    for (var c = 0u; c < n4; c++) { s += g[c] * qkv4[v0 + c]; }
    let dprob = drop(hsum(s), row + j);
    datt_out[row + j] = dprob;
    dot += att[row + j] * dprob;
  }
  for (var j = 0u; j <= t; j++) {
    let dscore = att[row + j] * (datt_out[row + j] - dot);
    datt_out[row + j] = dscore;
    let k0 = r.kvHead + j * W4;
    for (var c = 0u; c < n4; c++) { acc[c] += dscore * qkv4[k0 + c]; }
  }
  for (var c = 0u; c < n4; c++) { dqkv4[r.qHead + t * W4 + c] = acc[c] * p.scale; }
}

@compute @workgroup_size(64)
fn backward_key_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let flat = gid.x + gid.y * nw.x * 64u;
  if (flat >= p.B * p.Hkv * p.T) { return; }
  let t2 = flat % p.T;
  let bj = flat / p.T;
  let b = bj / p.Hkv;
  let g = p.H / p.Hkv;
  let h0 = (bj % p.Hkv) * g;
  let n4 = p.hs / 4u;
  let C4 = p.C / 4u;
  let W4 = p.W / 4u;
  var dk: array<vec4f, MAX_HS4>;
  var dv: array<vec4f, MAX_HS4>;
  for (var i = 0u; i < g; i++) {
    let r = head4Of(b, h0 + i);
    // Column t2 of this query head's att and datt, over the queries t >= t2 that saw this key.
    let col = r.bhStart + t2;
    for (var j = t2; j < p.T; j++) {
      let prob = drop(att[col + j * p.T], col + j * p.T);
      let dscore = datt[col + j * p.T];
      let q0 = r.qHead + j * W4;
      let o0 = r.outHead + j * C4;
      for (var c = 0u; c < n4; c++) {
        dk[c] += dscore * qkv4[q0 + c];
        dv[c] += prob * dout4[o0 + c];
      }
    }
  }
  let k0 = head4Of(b, h0).kvHead + t2 * W4;
  for (var c = 0u; c < n4; c++) {
    dqkv4[k0 + c] = dk[c] * p.scale;
    dqkv4[k0 + p.Hkv * n4 + c] = dv[c];
  }
}

// ---- gemm variant -------------------------------------------------------------------------------
// Scores, outputs and every gradient are batched GEMMs over the heads (kernels/matmul.ts, run by
// the wrapper: one GEMM per position in the group, batched over (b, kv head)); these two kernels
// do the row-wise softmax parts in place, one invocation per (b, h, t) row (flat index
// gid.x + gid.y * num_workgroups.x * 64), at most 4*T + 5 loop iterations
// (softmax_dropout_rows; T ≤ 1024 keeps every kernel far under Mesa's cap).
//   softmax_rows:          att[row, j] = softmax over j <= t of att[row, j] (the scaled scores
//                          written by the GEMM), 0 for j > t                          [in place, =]
//   softmax_backward_rows: datt[row, j] = att·(datt − Σ_{j2<=t} att·datt) for j <= t (datt holds
//                          dL/d prob = dout·v from the GEMM), 0 for j > t            [in place, =]
// With dropout the ·V GEMMs read drop(att) from a second tensor, and dL/d prob is drop(dout·v):
//   softmax_dropout_rows:  softmax_rows, then dropped[row, j] = drop(att)[row, j], 0 for j > t
//                                                                     [in place; dropped writes =]
//   softmax_backward_rows (DROPOUT): as above with drop(datt) for datt             [in place, =]
//   dropout_rows:          datt[row, j] = drop(att)[row, j], 0 for j > t (for the dv GEMM, after
//                          dq and dk have read the score gradients)                   [writes =]

// The (b, h, t) row of a gemm-variant row kernel: its query position t and first att index, or
// valid = false past the last row.
struct Row { valid: bool, t: u32, start: u32 }

fn rowOf(gid: vec3u, nw: vec3u) -> Row {
  let flat = gid.x + gid.y * nw.x * 64u;
  return Row(flat < p.B * p.H * p.T, flat % p.T, flat * p.T);
}

// Softmax over j <= t of att_out[row + j] in place, 0 for j > t.
fn softmax_row(row: u32, t: u32) {
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
fn softmax_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = rowOf(gid, nw);
  if (!r.valid) { return; }
  softmax_row(r.start, r.t);
}

@compute @workgroup_size(64)
fn softmax_dropout_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = rowOf(gid, nw);
  if (!r.valid) { return; }
  softmax_row(r.start, r.t);
  // att_out is 0 above the diagonal, so dropped_out is too.
  for (var j = 0u; j < p.T; j++) { dropped_out[r.start + j] = att_out[r.start + j] * keep_scale(r.start + j); }
}

@compute @workgroup_size(64)
fn dropout_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = rowOf(gid, nw);
  if (!r.valid) { return; }
  // att is 0 above the diagonal (forward wrote it), so datt_out is too.
  for (var j = 0u; j < p.T; j++) { datt_out[r.start + j] = att[r.start + j] * keep_scale(r.start + j); }
}

@compute @workgroup_size(64)
fn softmax_backward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = rowOf(gid, nw);
  if (!r.valid) { return; }
  let t = r.t;
  let row = r.start;
  var dot = 0.0;
  for (var j = 0u; j <= t; j++) { dot += att[row + j] * drop(datt_out[row + j], row + j); }
  for (var j = 0u; j <= t; j++) {
    datt_out[row + j] = att[row + j] * (drop(datt_out[row + j], row + j) - dot);
  }
  for (var j = t + 1u; j < p.T; j++) { datt_out[row + j] = 0.0; }
}
