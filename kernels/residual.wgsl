// Residual add, forward and backward. Elementwise over n elements.
//   forward:  out (n) = a (n) + b (n)                     [writes =]
//   backward: da (n) += dout (n); db (n) += dout (n)      [accumulates +=]
// The flat index i = gid.x + gid.y * (num_workgroups.x * 256) lets n exceed 65,535 workgroups.

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> da: array<f32>;
@group(0) @binding(6) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  out[i] = a[i] + b[i];
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  let g = dout[i];
  da[i] = da[i] + g;
  db[i] = db[i] + g;
}
