// AdamW (decoupled weight decay), one parameter element per invocation, in torch.optim.AdamW's
// operation order (_single_tensor_adam with decoupled weight decay):
//   g  = grad · gradMask · clipScale
//   p *= 1 − lr·wd·wdMask
//   m  = lerp(m, g, 1 − β1)                 (torch's lerp: m + w·(g − m) for w < 0.5)
//   v  = v·β2 + (1 − β2)·g·g
//   p += −stepSize · (m / (√v / √(1 − β2^t) + eps)),   stepSize = lr / (1 − β1^t)
// param, grad, m, v, gradMask, wdMask are (n); clip holds clipScale at element clipIndex.
//   param, m, v                                                                    [updated in place]
// An element whose gradMask is 0 is frozen: param, m and v are not written at all.
// Absent masks or clip are flagged off in the uniforms (the wrapper binds grad in their place).

struct Params {
  n: u32,
  lrWd: f32,          // lr · weight decay
  oneMinusBeta1: f32, // the lerp weight 1 − β1
  beta2: f32,
  oneMinusBeta2: f32,
  eps: f32,
  stepSize: f32,      // lr / (1 − β1^t)
  bc2Sqrt: f32,       // √(1 − β2^t)
  hasGradMask: u32,
  hasWdMask: u32,
  hasClip: u32,
  clipIndex: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> gradMask: array<f32>;
@group(0) @binding(3) var<storage, read> wdMask: array<f32>;
@group(0) @binding(4) var<storage, read> clip: array<f32>;
@group(0) @binding(5) var<storage, read_write> param: array<f32>;
@group(0) @binding(6) var<storage, read_write> m: array<f32>;
@group(0) @binding(7) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  var gm = 1.0;
  if (p.hasGradMask != 0u) { gm = gradMask[i]; }
  if (gm == 0.0) { return; } // frozen: leave param, m and v exactly as they are
  var g = grad[i] * gm;
  if (p.hasClip != 0u) { g = g * clip[p.clipIndex]; }
  var wm = 1.0;
  if (p.hasWdMask != 0u) { wm = wdMask[i]; }

  var x = param[i] * (1.0 - p.lrWd * wm);
  let m0 = m[i];
  let w = p.oneMinusBeta1;
  let m1 = select(g - (g - m0) * (1.0 - w), m0 + w * (g - m0), w < 0.5);
  let v1 = v[i] * p.beta2 + p.oneMinusBeta2 * g * g;
  let denom = sqrt(v1) / p.bc2Sqrt + p.eps;
  x = x + (-p.stepSize) * (m1 / denom);
  m[i] = m1;
  v[i] = v1;
  param[i] = x;
}
