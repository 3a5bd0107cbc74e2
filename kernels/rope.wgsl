// Rotary position embedding (Hugging Face Llama's half-split form), forward and backward, in place.
// qkv is (B,T,(H + 2·Hkv)·d): q heads at channels [0, H·d), k heads at [H·d, (H + Hkv)·d), then v
// (never touched). table is (positions, d/2, 2): (cos, sin) of angle(pos, i) = pos·inv_freq[i].
// Row (b,t) is at position offset + t, or starts[b] + t with per_row. For each q or k head, with x1 = x[i], x2 = x[i + d/2]:
//   forward:  x[i] = x1·cos − x2·sin,  x[i + d/2] = x2·cos + x1·sin     [writes = in place]
//   backward: g[i] = g1·cos + g2·sin,  g[i + d/2] = g2·cos − g1·sin     [writes = in place]
// backward is forward with the angle negated: the transpose of a rotation, so dqkv's dq and dk
// parts become the gradients with respect to the unrotated q and k.
// One invocation per (row, q-or-k head, i < d/2), no loops; the flat index
// f = gid.x + gid.y·(num_workgroups.x·256) lets the count exceed 65,535 workgroups.

struct Params {
  n: u32, // B·T·(H + Hkv)·d/2 invocations
  T: u32,
  half: u32, // d/2
  heads: u32, // H + Hkv: the rotated heads of a row
  row_len: u32, // (H + 2·Hkv)·d
  offset: u32, // position of t = 0
  per_row: u32, // 1: row b starts at starts[b] instead (generation with a KV cache)
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;

// Rotates the pair (i, i + d/2) of flat invocation f by the table's angle, its sine times sign.
fn rotate(f: u32, sign: f32) {
  if (f >= p.n) { return; }
  let i = f % p.half;
  let rest = f / p.half;
  let head = rest % p.heads;
  let row = rest / p.heads;
  var first = p.offset;
  if (p.per_row == 1u) { first = starts[row / p.T]; }
  let cs = table[(first + row % p.T) * p.half + i];
  let s = sign * cs.y;
  // q and k heads are contiguous, so the rotated head `head` starts at channel head·d.
  let a = row * p.row_len + head * 2u * p.half + i;
  let x1 = qkv[a];
  let x2 = qkv[a + p.half];
  qkv[a] = x1 * cs.x - x2 * s;
  qkv[a + p.half] = x2 * cs.x + x1 * s;
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  rotate(gid.x + gid.y * nw.x * 256u, 1.0);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  rotate(gid.x + gid.y * nw.x * 256u, -1.0);
}
