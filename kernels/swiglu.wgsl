// SwiGLU's gated activation (Llama's MLP: down(silu(gate(x)) · up(x))), forward and backward.
// Elementwise over n elements:
//   forward:  out (n)   = silu(gate (n)) · up (n)                       [writes =]
//   backward: dgate (n) = dout (n) · up (n) · silu'(gate (n))           [writes =]
//             dup (n)   = dout (n) · silu(gate (n))                     [writes =]
// silu(g) = g·σ(g), σ(g) = 1/(1 + e^(−g)), silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
//
// Numerics, for every finite g: σ and 1 − σ both come from t = e^(−|g|) ∈ (0, 1] (for g ≥ 0,
// σ = 1/(1 + t) and 1 − σ = t/(1 + t); for g < 0 the two swap), so exp never overflows, the
// divisor lies in [1, 2], and 1 − σ is never a difference that would lose t's digits (silu' for
// large positive g). For |g| ≥ 80, t is taken as 0 (the exact e^(−|g|) is ≤ 1.8e−35): σ and 1 − σ
// become exactly 1 and 0 (g > 0) or 0 and 1 (g < 0), so silu = g or −0 and silu' = 1 or −0,
// which is what f32 rounds the exact values to, or within 80·e^(−80) ≈ 1.4e−33 of them. Without that, silu(−1e30) = g·σ would rest
// on exp(−1e30) being 0, and WGSL only promises exp to (3 + 2|x|) ulp, which says nothing for
// large |x| (drivers compute exp2(x·log2 e), and x·log2 e is −inf for |g| > 2.4e38); any
// nonzero t there would make g·σ huge instead of 0. Below 80, that bound is ≤ 163 ulp.
//
// kernels/swiglu.ts builds two variants from this one source: the scalar kernels as written
// (V = f32, one element per invocation) and the vec4 kernels for CPU adapters, with the alias
// line below replaced by `alias V = vec4f;`, PER = 4 vec4s per invocation `stride` apart and
// WG = 256. Each invocation loops PER ≤ 4 times, far under Mesa's 65,535-iteration cap.
// The flat index gid.x + gid.y·(num_workgroups.x·WG) lets n exceed 65,535 workgroups.

alias V = f32;
override PER: u32 = 1u;
override WG: u32 = 64u;

// n: number of V elements; stride: invocations in the whole grid (the step between an
// invocation's PER elements).
struct Params { n: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<V>;
@group(0) @binding(2) var<storage, read> up: array<V>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;
@group(0) @binding(4) var<storage, read> dout: array<V>;
@group(0) @binding(5) var<storage, read_write> dgate: array<V>;
@group(0) @binding(6) var<storage, read_write> dup: array<V>;

const SATURATED: f32 = 80.0;

// σ(g) and 1 − σ(g), each computed without cancellation.
struct Sigmoid { s: V, c: V }

fn sigmoid(g: V) -> Sigmoid {
  let a = abs(g);
  // select discards exp's value for |g| ≥ 80, whatever a driver returns there.
  let t = select(exp(-a), V(0.0), a >= V(SATURATED));
  let r = 1.0 / (1.0 + t);
  let neg = g < V(0.0);
  return Sigmoid(select(r, t * r, neg), select(t * r, r, neg));
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let first = gid.x + gid.y * nw.x * WG;
  for (var r = 0u; r < PER; r++) {
    let i = first + r * p.stride;
    if (i >= p.n) { return; }
    let g = gate[i];
    out[i] = g * sigmoid(g).s * up[i];
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let first = gid.x + gid.y * nw.x * WG;
  for (var r = 0u; r < PER; r++) {
    let i = first + r * p.stride;
    if (i >= p.n) { return; }
    let g = gate[i];
    let sg = sigmoid(g);
    let d = dout[i];
    dup[i] = d * (g * sg.s);
    dgate[i] = d * up[i] * (sg.s * (1.0 + g * sg.c));
  }
}
