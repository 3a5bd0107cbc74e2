// GELU, tanh approximation (GPT-2's gelu_new), forward and backward. Elementwise over n elements.
//   forward:  out (n) = gelu(x (n))                                  [writes =]
//   backward: dx (n) += dout (n) · gelu'(x (n))                      [accumulates +=]
// gelu(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³).
// Written as x·σ(2u) with σ(t) = 1/(1 + e^(−t)), which equals 0.5·(1 + tanh(u)), because WGSL's
// tanh returns NaN for large |u| on some drivers (it is computed as inf/inf). For |u| ≥ 40,
// σ(2u) is 0 or 1 to within e^(−80) ≈ 1.8e−35, so the saturated branch returns 0 or x (gradient 0
// or 1); the formula branch therefore never sees an exponent beyond ±80, and no inf/inf or inf·0
// can appear for any finite x.
// The flat index i = gid.x + gid.y · (num_workgroups.x · 256) lets n exceed 65,535 workgroups.

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;
const SATURATED: f32 = 40.0;

fn gelu_u(v: f32) -> f32 {
  return SQRT_2_OVER_PI * (v + GELU_C * v * v * v);
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  let v = x[i];
  let u = gelu_u(v);
  let e = exp(-2.0 * clamp(u, -SATURATED, SATURATED));
  out[i] = select(v / (1.0 + e), select(0.0, v, u > 0.0), abs(u) >= SATURATED);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  let v = x[i];
  let u = gelu_u(v);
  let e = exp(-2.0 * clamp(u, -SATURATED, SATURATED));
  let s = 1.0 / (1.0 + e); // σ(2u) = 0.5·(1 + tanh u)
  // d/dx [x·σ(2u)] = σ + x·2σ(1 − σ)·u', with 1 − σ = e·σ.
  let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v);
  let grad = select(s + 2.0 * v * du * s * (e * s), select(0.0, 1.0, u > 0.0), abs(u) >= SATURATED);
  dx[i] = dx[i] + dout[i] * grad;
}
