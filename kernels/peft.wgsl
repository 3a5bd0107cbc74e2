// Small kernels for the PEFT methods (IA³ scaling, virtual-token rows, adapter activations).
//
//   scale:       out (M,N) = x (M,N) · s, s = l[n] (mode 0, per column) or l[m] (mode 1, per row);
//                divided instead of multiplied when flag = 1                          [writes =]
//   scale_grad:  dl (N) += Σ_m dy[m,n] · x[m,n]                                      [accumulates +=]
//   rows_set:    for b < B, j < nv, c < w:
//                dst[b·T·ldd + j·ldd + doff + c] = src[j·lds + soff + c] (+ addv[j·w + c] if flag)
//                                                                                    [writes =]
//   rows_grad:   for j < nv, c < w: dsrc[j·lds + soff + c] += Σ_b dst[b·T·ldd + j·ldd + doff + c];
//                then dst[b·T·ldd + j·ldd + c'] = 0 for every b and every c' < ldd  [+= then = 0]
//   act_forward: out (n) = act(x (n))                                                [writes =]
//   act_backward: out (n) = dy (n) · act'(x (n))                                     [writes =]
//   act (mode): 0 relu, 1 swish (x·σ(x)), 2 gelu_new (tanh form), 3 gelu (erf form, erf by
//   Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e−7).
//
// Elementwise entry points use the flat index i = gid.x + gid.y · (num_workgroups.x · 256);
// scale_grad runs one workgroup of 64 lanes per column (group index wid.x + wid.y · nw.x), each
// lane summing rows lane, lane+64, … and a fixed-order tree combining the lanes (deterministic);
// rows_grad loops over B.

struct Params {
  m: u32,
  n: u32,
  mode: u32,
  flag: u32,
  nb: u32,
  t: u32,
  nv: u32,
  ldd: u32,
  doff: u32,
  w: u32,
  lds: u32,
  soff: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> l: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dl: array<f32>;
@group(0) @binding(6) var<storage, read> src: array<f32>;
@group(0) @binding(7) var<storage, read> addv: array<f32>;
@group(0) @binding(8) var<storage, read_write> dst: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad: array<f32>;
@group(0) @binding(10) var<storage, read_write> dsrc: array<f32>;

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.m * p.n) { return; }
  let s = l[select(i % p.n, i / p.n, p.mode == 1u)];
  out[i] = select(x[i] * s, x[i] / s, p.flag == 1u);
}

const LANES: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn scale_grad(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
) {
  let col = wid.x + wid.y * nw.x;
  let lane = lid.x;
  var acc = 0.0;
  if (col < p.n) {
    for (var m = lane; m < p.m; m += LANES) {
      let k = m * p.n + col;
      acc += dy[k] * x[k];
    }
  }
  partial[lane] = acc;
  workgroupBarrier();
  for (var half = LANES / 2u; half > 0u; half >>= 1u) {
    if (lane < half) { partial[lane] = partial[lane] + partial[lane + half]; }
    workgroupBarrier();
  }
  if (lane == 0u && col < p.n) { dl[col] = dl[col] + partial[0]; }
}

@compute @workgroup_size(256)
fn rows_set(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  let per = p.nv * p.w;
  if (i >= p.nb * per) { return; }
  let b = i / per;
  let r = i % per;
  let j = r / p.w;
  let c = r % p.w;
  var v = src[j * p.lds + p.soff + c];
  if (p.flag == 1u) { v += addv[j * p.w + c]; }
  dst[b * p.t * p.ldd + j * p.ldd + p.doff + c] = v;
}

@compute @workgroup_size(256)
fn rows_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.nv * p.ldd) { return; }
  let j = i / p.ldd;
  let c = i % p.ldd;
  var acc = 0.0;
  for (var b = 0u; b < p.nb; b++) {
    let k = b * p.t * p.ldd + j * p.ldd + c;
    acc += grad[k];
    grad[k] = 0.0;
  }
  if (c >= p.doff && c < p.doff + p.w) {
    let d = j * p.lds + p.soff + (c - p.doff);
    dsrc[d] = dsrc[d] + acc;
  }
}

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;
const INV_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
const SATURATED: f32 = 40.0;

// σ(t) = 1/(1 + e^(−t)), with the exponent clamped so no inf/inf can appear.
fn sigmoid(t: f32) -> f32 {
  return 1.0 / (1.0 + exp(-clamp(t, -80.0, 80.0)));
}

// erf(z), Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e−7).
fn erf_approx(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 +
    t * 1.061405429))));
  let r = 1.0 - poly * exp(-a * a);
  return select(r, -r, z < 0.0);
}

fn act(v: f32) -> f32 {
  switch p.mode {
    case 0u: { return max(v, 0.0); }
    case 1u: { return v * sigmoid(v); }
    case 2u: {
      // gelu_new as x·σ(2u), saturated for |u| ≥ 40 (see gelu.wgsl).
      let u = SQRT_2_OVER_PI * (v + GELU_C * v * v * v);
      return select(v * sigmoid(2.0 * u), select(0.0, v, u > 0.0), abs(u) >= SATURATED);
    }
    default: { return 0.5 * v * (1.0 + erf_approx(v * INV_SQRT_2)); }
  }
}

fn act_grad(v: f32) -> f32 {
  switch p.mode {
    case 0u: { return select(0.0, 1.0, v > 0.0); }
    case 1u: {
      let s = sigmoid(v);
      return s * (1.0 + v * (1.0 - s));
    }
    case 2u: {
      let u = SQRT_2_OVER_PI * (v + GELU_C * v * v * v);
      let s = sigmoid(2.0 * u);
      let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v);
      return select(s + 2.0 * v * du * s * (1.0 - s), select(0.0, 1.0, u > 0.0), abs(u) >= SATURATED);
    }
    default: {
      // Φ(x) + x·φ(x)
      return 0.5 * (1.0 + erf_approx(v * INV_SQRT_2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v);
    }
  }
}

@compute @workgroup_size(256)
fn act_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  out[i] = act(x[i]);
}

@compute @workgroup_size(256)
fn act_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= p.n) { return; }
  out[i] = dy[i] * act_grad(x[i]);
}
