// Token + position embedding, forward and backward. N = B·T positions, p = b·T + t.
//   forward:       out (B,T,C) = wte[ids[b,t]] (V,C) + wpe[t] (maxT,C)                [writes =]
//   forward_tokens: out (B,T,C) = wte[ids[b,t]] (no position table)                  [writes =]
//   backward_wte:  dwte (V,C) += Σ_{p : ids[p] = v} dout[p]                           [accumulates +=]
//   backward_wpe:  dwpe (maxT,C) rows 0..T-1 += Σ_b dout[b,t]                         [accumulates +=]
// No float atomics: the CPU builds a CSR index (positions sorted by token id, `order`, and one
// segment (id, start, end) per distinct id), so each dwte element has exactly one writer that sums
// its positions in a fixed order (deterministic). Segments up to SHORT positions take one
// invocation per (segment, channel) (backward_wte_short); longer ones take one workgroup per
// (segment, channel) that strides over the positions and reduces in workgroup memory
// (backward_wte_long), so no invocation loops more than SHORT + 1 or ceil(len/256) + 10 times (exit tests counted).
// A token table larger than one storage binding is bound in row chunks [v0, v1): `wte` and `dwte`
// are then that chunk's rows, the forward writes only the positions whose id falls in it (a
// dispatch per chunk), and the backward takes the chunk's segments (ids are sorted, so they are
// consecutive, from segStart on). One chunk (v0 = 0, v1 = V) is the whole table.
// The forward's table may be a frozen base weight stored in half precision (TABLE_DTYPE 1: f16,
// 2: bf16, packed two per u32 word, element 2i in the low 16 bits), widened exactly to f32 as it
// is read; `wte` is bound as u32 words for every dtype (f32 is a bitcast of its word).

struct Params {
  n: u32,   // forward: B·T·C; backward_wte_*: number of segments; backward_wpe: T·C
  T: u32,
  C: u32,
  V: u32,   // forward: vocabulary size (ids ≥ V give NaN; the wrapper rejects them on the CPU first)
  B: u32,   // backward_wpe: batch size
  v0: u32,  // forward, backward_wte_*: first row of the table chunk bound as wte / dwte
  v1: u32,  // forward: end of the chunk's rows (V for the last chunk)
  segStart: u32, // backward_wte_*: index of the chunk's first segment
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> wte: array<u32>;
@group(0) @binding(3) var<storage, read> wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> order: array<u32>;
@group(0) @binding(7) var<storage, read> segments: array<u32>; // 3 per segment: id, start, end
@group(0) @binding(8) var<storage, read_write> dwte: array<f32>;
@group(0) @binding(9) var<storage, read_write> dwpe: array<f32>;

var<workgroup> partial: array<f32, 256>;

override TABLE_DTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16

// Element i of the table chunk bound as wte, as f32.
fn table(i: u32) -> f32 {
  if (TABLE_DTYPE == 0u) { return bitcast<f32>(wte[i]); }
  let w = wte[i >> 1u];
  if (TABLE_DTYPE == 1u) { return unpack2x16float(w)[i & 1u]; }
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  let pos = i / p.C;
  let c = i % p.C;
  let t = pos % p.T;
  let id = ids[pos];
  let nan = bitcast<f32>(0x7fc00000u | (i & 0u)); // a runtime NaN (a constant NaN does not compile)
  if (id >= p.V) {
    if (p.v1 == p.V) { out[i] = nan; } // the last chunk marks a bad id
    return;
  }
  if (id < p.v0 || id >= p.v1) { return; }
  out[i] = table((id - p.v0) * p.C + c) + wpe[t * p.C + c];
}

// forward without positions (the Llama family's rotary models): out = wte[ids[b,t]]   [writes =]
@compute @workgroup_size(256)
fn forward_tokens(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  let pos = i / p.C;
  let id = ids[pos];
  let nan = bitcast<f32>(0x7fc00000u | (i & 0u));
  if (id >= p.V) {
    if (p.v1 == p.V) { out[i] = nan; }
    return;
  }
  if (id < p.v0 || id >= p.v1) { return; }
  out[i] = table((id - p.v0) * p.C + i % p.C);
}

@compute @workgroup_size(256)
fn backward_wte_short(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  let local = i / p.C;
  if (local >= p.n) { return; }
  let seg = p.segStart + local;
  let c = i % p.C;
  let id = segments[3u * seg];
  let end = segments[3u * seg + 2u];
  var sum = 0.0;
  for (var k = segments[3u * seg + 1u]; k < end; k++) {
    sum += dout[order[k] * p.C + c];
  }
  dwte[(id - p.v0) * p.C + c] += sum;
}

@compute @workgroup_size(256)
fn backward_wte_long(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = wid.x + wid.y * nw.x;
  let local = g / p.C;
  if (local >= p.n) { return; }
  let seg = p.segStart + local;
  let c = g % p.C;
  let id = segments[3u * seg];
  let end = segments[3u * seg + 2u];
  var sum = 0.0;
  for (var k = segments[3u * seg + 1u] + lid; k < end; k += 256u) {
    sum += dout[order[k] * p.C + c];
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { dwte[(id - p.v0) * p.C + c] += partial[0]; }
}

@compute @workgroup_size(256)
fn backward_wpe(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  var sum = 0.0;
  for (var b = 0u; b < p.B; b++) {
    sum += dout[b * p.n + i];
  }
  dwpe[i] += sum;
}
