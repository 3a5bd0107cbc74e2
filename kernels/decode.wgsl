// KV-cache attention for decoding: new query rows attend to the keys and values of every earlier
// position, kept in a per-layer cache, instead of recomputing the whole sequence.
// Heads: H query heads of size hs, Hkv key/value heads (Hkv divides H, g = H/Hkv); query head h
// uses key/value head h/g (Hugging Face's repeat_kv). C = H*hs, the width of q and out.
// Shapes: qkv is (B,Tn,W), W = (H + 2*Hkv)*hs, the q/k/v rows of the Tn new positions of each
// sequence as attention.wgsl reads them (q = [0,C), k = [C,C+KV), v = [C+KV,W), KV = Hkv*hs; head
// j at j*hs of its part; with Hkv = H this is GPT-2's c_attn output (B,Tn,3C)).
// cache is (B,S,2*KV): position j of sequence b holds its keys at [0,KV) and its values at
// [KV,2KV).
// start is (B) u32: the new rows of sequence b sit at positions start[b]..start[b]+Tn-1.
// out is (B,Tn,C), heads concatenated.
//   append: cache[b, start[b]+t, :] = qkv[b, t, C:W]                             [writes =, those
//                                                                               rows only]
//   attend: out[b,t,h*hs+d] = Σ_{j <= start[b]+t} att[j]·v[b,j,(h/g)*hs+d], with [writes =]
//           att = softmax over j <= start[b]+t of scale·q[b,t,h]·k[b,j,h/g]
// Run append before attend (in the same batch): a new row attends to its own key.
// attend: one workgroup of 64 threads per (b,h,t) row; its threads share the keys of the row
// (stride 64) and the channels of the head (stride 64) and reduce through workgroup memory, as
// attention.wgsl's forward does. Counting each loop's exit test, one invocation loops at most
// ceil(hs/64)*(L+3) + ceil(L/64)*(hs+3) + 24 times for L = start[b]+t+1 keys (4,174 at L=1024,
// hs=128), far below Mesa's 65,535 cap; the wrapper checks it for the longest row. The flat row index (b*H + h)*Tn + t is wid.x + wid.y * num_workgroups.x.
// append: one invocation per element of the B*Tn*2*KV copied; flat index gid.x + gid.y*nw.x*256.

const WG: u32 = 64u;
const MAX_S: u32 = 1024u;
const MAX_HS: u32 = 128u;

// KV = Hkv*hs, the width of a position's keys (and of its values); W = C + 2*KV.
struct Params {
  B: u32, Tn: u32, S: u32, C: u32, H: u32, hs: u32, scale: f32, Hkv: u32, KV: u32, W: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> start: array<u32>;
@group(0) @binding(3) var<storage, read> cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> cache_out: array<f32>;

// Scores, then probabilities, of the keys of one row, indexed by position.
var<workgroup> row: array<f32, MAX_S>;
// The head's slice of the query.
var<workgroup> q: array<f32, MAX_HS>;
var<workgroup> red: array<f32, WG>;

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

@compute @workgroup_size(256)
fn append(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  let C2 = 2u * p.KV;
  if (i >= p.B * p.Tn * C2) { return; }
  let c = i % C2;
  let r = i / C2;
  let t = r % p.Tn;
  let b = r / p.Tn;
  let pos = start[b] + t;
  if (pos >= p.S) { return; }
  cache_out[(b * p.S + pos) * C2 + c] = qkv[r * p.W + p.C + c];
}

@compute @workgroup_size(64)
fn attend(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let flat = wid.x + wid.y * nw.x;
  if (flat >= p.B * p.H * p.Tn) { return; }
  let t = flat % p.Tn;
  let bh = flat / p.Tn;
  let b = bh / p.H;
  let h = bh % p.H;
  let L = min(start[b] + t + 1u, p.S);
  let C2 = 2u * p.KV;
  let qAt = (b * p.Tn + t) * p.W + h * p.hs;
  // cache index of (b, position 0, key, kv head h/g, channel 0); position j's key starts at
  // kAt + j*2KV, its value at kAt + j*2KV + KV.
  let kAt = b * p.S * C2 + (h / (p.H / p.Hkv)) * p.hs;
  for (var d = lid; d < p.hs; d += WG) { q[d] = qkv[qAt + d]; }
  workgroupBarrier();
  var m = -3.0e38;
  for (var j = lid; j < L; j += WG) {
    let k0 = kAt + j * C2;
    var s = 0.0;
    for (var d = 0u; d < p.hs; d++) { s += q[d] * cache[k0 + d]; }
    s *= p.scale;
    row[j] = s;
    m = max(m, s);
  }
  m = reduceMax(lid, m);
  var sum = 0.0;
  for (var j = lid; j < L; j += WG) {
    let e = exp(row[j] - m);
    row[j] = e;
    sum += e;
  }
  let inv = 1.0 / reduceSum(lid, sum);
  // reduceSum ends with a barrier, so every thread's row[j] is visible below.
  for (var d = lid; d < p.hs; d += WG) {
    let v0 = kAt + p.KV + d;
    var acc = 0.0;
    for (var j = 0u; j < L; j++) { acc += row[j] * cache[v0 + j * C2]; }
    out[(b * p.Tn + t) * p.C + h * p.hs + d] = acc * inv;
  }
}
