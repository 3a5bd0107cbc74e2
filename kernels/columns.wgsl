// Column blocks between row-major matrices: packing q, k and v into one qkv buffer and splitting
// its gradient back (Llama-family attention), and summing input gradients of projections that
// share an input.
//   copy: dst[r, doff + c]  = src[r, soff + c]    r < rows, c < w        [writes =]
//   add:  dst[r, doff + c] += src[r, soff + c]                            [accumulates +=]
// Row strides lds and ldd. One invocation per element, no loops; the flat index
// i = gid.x + gid.y·(num_workgroups.x·256) lets rows·w exceed 65,535 workgroups.

struct Params {
  n: u32, // rows·w
  w: u32,
  lds: u32,
  soff: u32,
  ldd: u32,
  doff: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn at(gid: vec3u, nw: vec3u) -> vec3u {
  let i = gid.x + gid.y * nw.x * 256u;
  let r = i / max(p.w, 1u);
  let c = i % max(p.w, 1u);
  return vec3u(i, r * p.lds + p.soff + c, r * p.ldd + p.doff + c);
}

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let a = at(gid, nw);
  if (a.x >= p.n) { return; }
  dst[a.z] = src[a.y];
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let a = at(gid, nw);
  if (a.x >= p.n) { return; }
  dst[a.z] = dst[a.z] + src[a.y];
}
