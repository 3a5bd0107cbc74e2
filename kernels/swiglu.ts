/**
 * SwiGLU's gated activation, as in Llama's MLP `down(silu(gate(x)) · up(x))`:
 * `out = silu(gate) · up` with `silu(g) = g·σ(g) = g / (1 + e^(−g))`.
 * Forward writes `out = silu(gate)·up`; backward writes `dgate = dout·up·silu'(gate)` and
 * `dup = dout·silu(gate)` (`=`, not accumulated: in the MLP these are the only gradients that
 * reach gate(x) and up(x)), with `silu'(g) = σ(g)·(1 + g·(1 − σ(g)))`.
 * Shapes: all tensors hold the same n elements (e.g. (B·T, F) MLP activations).
 * Safe for any finite gate: no NaN or Inf at g = ±100, ±1e4, ±1e30 (see kernels/swiglu.wgsl).
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { grid, Params, sameSize } from "./common.ts";
import code from "./swiglu.wgsl" with { type: "text" };

const FILE = "kernels/swiglu.wgsl";
const VEC_FILE = "kernels/swiglu.wgsl (vec4 variant)";
/** Workgroup size of the scalar kernels (the WGSL default of WG). */
const GROUP = 64;
/**
 * The vec4 kernels: each invocation handles 4 vec4s `stride` apart in workgroups of 256, as
 * kernels/gelu.ts does, so lavapipe runs 16× fewer workgroups than the scalar kernels.
 */
const VEC_PER = 4;
const VEC_GROUP = 256;
/** The same source over vec4s: only the element type changes (see kernels/swiglu.wgsl). */
const VEC_CODE = code.replace("alias V = f32;", "alias V = vec4f;");

/**
 * The SwiGLU activation kernels (forward and backward), numerically safe for any finite gate.
 *
 * @example
 * ```ts
 * import { Gpu, SwiGLU } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const swiglu = await SwiGLU.create(gpu);
 * const gate = gpu.tensor([3], new Float32Array([-1e4, 0, 1e4]), "gate");
 * const up = gpu.tensor([3], new Float32Array([2, 2, 2]), "up");
 * const out = gpu.tensor([3], undefined, "out");
 * const batch = gpu.batch();
 * swiglu.forward(batch, gate, up, out);
 * await batch.submit();
 * const y = await out.read(); // silu(g)·up: [-0, 0, 20000]
 * if (y[0] !== 0 || y[1] !== 0 || y[2] !== 2e4) throw new Error("swiglu failed");
 * for (const t of [gate, up, out]) t.release();
 * ```
 */
export class SwiGLU {
  /**
   * Which kernels run: `"vec4"` (CPU adapters: four elements per load, four vec4s per
   * invocation; only when n is a multiple of 4, else the scalar kernels) or `"scalar"` (one
   * element per invocation). Both pass the same tests.
   */
  readonly variant: "vec4" | "scalar";
  readonly #fwd: Kernel;
  readonly #bwd: Kernel;
  readonly #fwd4: Kernel;
  readonly #bwd4: Kernel;

  private constructor(variant: "vec4" | "scalar", k: Kernel[]) {
    this.variant = variant;
    [this.#fwd, this.#bwd, this.#fwd4, this.#bwd4] = k;
  }

  /**
   * Compiles (or fetches from the cache) the kernels; `variant` defaults to `"vec4"` on software
   * adapters and `"scalar"` otherwise.
   */
  static async create(gpu: Gpu, opts: { variant?: "vec4" | "scalar" } = {}): Promise<SwiGLU> {
    const variant = opts.variant ?? (gpu.isSoftware ? "vec4" : "scalar");
    const fwd = ["uniform", "read", "read", "write"] as const;
    const bwd = ["uniform", "read", "read", null, "read", "write", "write"] as const;
    const vec = { PER: VEC_PER, WG: VEC_GROUP };
    const k = await Promise.all([
      gpu.kernel({ name: "swiglu.forward", file: FILE, code, entry: "forward", bindings: fwd }),
      gpu.kernel({ name: "swiglu.backward", file: FILE, code, entry: "backward", bindings: bwd }),
      gpu.kernel({
        name: "swiglu.forward_vec4",
        file: VEC_FILE,
        code: VEC_CODE,
        entry: "forward",
        bindings: fwd,
        constants: vec,
      }),
      gpu.kernel({
        name: "swiglu.backward_vec4",
        file: VEC_FILE,
        code: VEC_CODE,
        entry: "backward",
        bindings: bwd,
        constants: vec,
      }),
    ]);
    return new SwiGLU(variant, k);
  }

  /** gate, up and out are (n): `out = silu(gate)·up` (writes). */
  forward(batch: Batch, gate: Tensor, up: Tensor, out: Tensor): void {
    const n = sameSize("swiglu.forward", gate, up, out);
    const vec = this.variant === "vec4" && n % 4 === 0;
    const [params, groups] = vec ? launch(n / 4, VEC_PER, VEC_GROUP) : launch(n, 1, GROUP);
    batch.dispatch(vec ? this.#fwd4 : this.#fwd, [gate, up, out], params, groups);
  }

  /**
   * gate, up, dout, dgate and dup are (n): `dgate = dout·up·silu'(gate)`, `dup = dout·silu(gate)`
   * (both write).
   */
  backward(
    batch: Batch,
    gate: Tensor,
    up: Tensor,
    dout: Tensor,
    dgate: Tensor,
    dup: Tensor,
  ): void {
    const n = sameSize("swiglu.backward", gate, up, dout, dgate, dup);
    const vec = this.variant === "vec4" && n % 4 === 0;
    const [params, groups] = vec ? launch(n / 4, VEC_PER, VEC_GROUP) : launch(n, 1, GROUP);
    batch.dispatch(vec ? this.#bwd4 : this.#bwd, [gate, up, dout, dgate, dup], params, groups);
  }
}

/**
 * Parameters and workgroups for `count` elements (f32 or vec4), `per` per invocation, `stride`
 * (the grid's invocation count) apart.
 */
function launch(count: number, per: number, group: number): [ArrayBuffer, [number, number]] {
  const groups = grid(Math.ceil(count / per), group);
  const stride = groups[0] * groups[1] * group;
  return [new Params().u32(count).u32(stride).bytes, groups];
}
