/**
 * Strided, batched GEMM for real GPUs: `C = alpha · op(A) · op(B) (+ bias) (+ C)`, the same
 * contract as {@linkcode Matmul.gemm} (every layout NN, NT, TN, TT; offsets, row strides, two-level
 * batch strides; bias and accumulate epilogues; the `triangularA` and `lowerC` hints), with WGSL
 * generated here per tile configuration ({@linkcode TileConfig}). Read this generator first: the
 * WGSL it writes is shown by {@linkcode gemmTiledWgsl}.
 *
 * Each workgroup computes a BM×BN block of C (per batch entry: `workgroup_id.z`); each invocation
 * a TM×TN register tile of it (TM contiguous rows, TN contiguous columns, held as vec4
 * accumulators). K is walked in tiles of BK staged through two workgroup-memory buffers (double
 * buffering): while the block multiplies tile t from one buffer, every invocation has already
 * fetched its share of tile t + 1 into registers, which it stores into the other buffer after the
 * multiply, so one barrier per K tile suffices. Operands are fetched with vec4 loads along each
 * stored operand's contiguous dimension when the offset, row stride and batch strides are
 * multiples of 4 (else scalar loads, same tiling), and kept k-major in workgroup memory so the
 * multiply reads vec4s of op(A)'s rows and op(B)'s columns. Bounds are handled at the tile fetch
 * (indices clamped into the matrix, values outside it replaced by 0 with `select`), so the multiply
 * has no branch; only the final store checks bounds. Opt-in precision `"f16-compute"` (needs
 * `shader-f16`) stages the tiles as f16 and multiplies in f16, accumulating in f32.
 *
 * The loop an invocation runs is the K-tile loop alone (ceil(K_used/BK) + 1 iterations; the tile
 * fetch, multiply and store are unrolled here), far below Mesa's 65,535-iteration cap for any K a
 * buffer holds; the wrapper still checks it.
 *
 * Shapes: op(A) is (M,K), op(B) is (K,N), C is (M,N), bias is (N); C is written `=` (or `+=` with
 * `accumulate`).
 *
 * @module
 */

import type { Batch, Binding, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, Params } from "./common.ts";
import { checkGemmLayout, type GemmSpec } from "./matmul.ts";

const FILE = "kernels/gemm_tiled.ts (generated)";

/** One tile configuration of the generated kernel. */
export interface TileConfig {
  /** Rows of C per workgroup (a multiple of `tm`). */
  bm: number;
  /** Columns of C per workgroup (a multiple of `tn`). */
  bn: number;
  /** Depth of a K tile (a multiple of 4). */
  bk: number;
  /** Rows of C per invocation: 4 or 8. */
  tm: number;
  /** Columns of C per invocation: 4 or 8. */
  tn: number;
}

/**
 * The configurations {@linkcode GemmTiled} tunes over, largest blocks first (64, 128 or 256
 * invocations; workgroup memory 2·BK·(BM + BN)·4 bytes ≤ 16 KiB, WebGPU's default limit).
 */
export const TILE_CONFIGS: readonly TileConfig[] = [
  { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
  { bm: 128, bn: 64, bk: 8, tm: 8, tn: 8 },
  { bm: 64, bn: 128, bk: 8, tm: 8, tn: 8 },
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  { bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 },
];

/** Options for {@linkcode GemmTiled.create}. */
export interface GemmTiledOptions {
  /**
   * Configurations compiled now and chosen among (default {@linkcode TILE_CONFIGS}, less any over
   * the device's workgroup limits).
   */
  configs?: readonly TileConfig[];
  /**
   * `"f32"` (default), or `"f16-compute"`: tiles staged as f16, products in f16, sums in f32
   * (needs `gpu.hasF16`; operands are rounded to f16, so results carry f16's relative error).
   */
  precision?: "f32" | "f16-compute";
}

/** A shape to tune for (see {@linkcode GemmTiled.tune}). */
export interface GemmShape {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** Batch count (default 1). */
  batch?: number;
}

/** The name of a configuration, e.g. `"128x128x8.8x8"`. */
export function configName(c: TileConfig): string {
  return `${c.bm}x${c.bn}x${c.bk}.${c.tm}x${c.tn}`;
}

/** Invocations per workgroup of a configuration. */
function threads(c: TileConfig): number {
  return (c.bm / c.tm) * (c.bn / c.tn);
}

/** Why a configuration cannot be generated, or null. */
function invalid(c: TileConfig): string | null {
  if (![4, 8].includes(c.tm) || ![4, 8].includes(c.tn)) return "tm and tn must be 4 or 8";
  if (c.bm % c.tm || c.bn % c.tn || c.bk % 4 || c.bk < 4) {
    return "bm, bn must be multiples of tm, tn and bk a multiple of 4";
  }
  const wg = threads(c);
  // Each invocation fetches a whole number of vec4s (and of scalars) of each operand tile.
  if ((c.bm * c.bk / 4) % wg || (c.bn * c.bk / 4) % wg) {
    return `${wg} invocations do not evenly share the ${c.bm}×${c.bk} and ${c.bk}×${c.bn} tiles in vec4s`;
  }
  return null;
}

/** Which generated kernel: configuration, layout and per-operand load width. */
interface Variant {
  config: TileConfig;
  transA: boolean;
  transB: boolean;
  vecA: boolean;
  vecB: boolean;
  f16: boolean;
}

/**
 * The WGSL of one configuration and layout (for reading and for tests; {@linkcode GemmTiled}
 * compiles it).
 *
 * @example
 * ```ts
 * import { gemmTiledWgsl } from "./gemm_tiled.ts";
 * const code = gemmTiledWgsl({ bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 }, { transB: true });
 * if (!code.includes("@compute @workgroup_size(256)")) throw new Error("16×16 invocations");
 * ```
 */
export function gemmTiledWgsl(
  config: TileConfig,
  layout: {
    transA?: boolean;
    transB?: boolean;
    vecA?: boolean;
    vecB?: boolean;
    f16?: boolean;
  } = {},
): string {
  const why = invalid(config);
  if (why) throw new RangeError(`Cannot generate gemm_tiled ${configName(config)}: ${why}`);
  return generate({
    config,
    transA: layout.transA ?? false,
    transB: layout.transB ?? false,
    vecA: layout.vecA ?? false,
    vecB: layout.vecB ?? false,
    f16: layout.f16 ?? false,
  });
}

/** Generates the kernel (see the module comment for the scheme). */
function generate(v: Variant): string {
  const { bm, bn, bk, tm, tn } = v.config;
  const wg = threads(v.config), tx = bn / tn;
  const st = v.f16 ? "f16" : "f32"; // staged element type
  const lines: string[] = [];
  const L = (s: string) => lines.push(s);
  L(
    `// gemm_tiled ${configName(v.config)} ${v.transA ? "T" : "N"}${v.transB ? "T" : "N"}` +
      ` vecA=${v.vecA} vecB=${v.vecB}${
        v.f16 ? " f16-compute" : ""
      }: generated by kernels/gemm_tiled.ts`,
  );
  if (v.f16) L("enable f16;");
  L(`struct Params {
  M: u32, N: u32, K: u32, inner: u32,
  lda: u32, ldb: u32, ldc: u32, tri: u32,
  offA: u32, offB: u32, offC: u32, offBias: u32,
  sAo: u32, sAi: u32, sBo: u32, sBi: u32,
  sCo: u32, sCi: u32, alpha: f32, accumulate: u32,
  hasBias: u32, lowerC: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<${v.vecA ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read> B: array<${v.vecB ? "vec4<f32>" : "f32"}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
// Two buffers of each operand tile, k-major: As[buf][k][m/4], Bs[buf][k][n/4].
var<workgroup> As: array<vec4<${st}>, ${2 * bk * bm / 4}>;
var<workgroup> Bs: array<vec4<${st}>, ${2 * bk * bn / 4}>;
`);
  // Fetch (global → registers) and stage (registers → workgroup memory) of one operand tile.
  // `rows` is the tile's extent along the operand's non-K dimension (bm for A, bn for B).
  const fetch = (op: "A" | "B") => {
    const rows = op === "A" ? bm : bn;
    const vec = op === "A" ? v.vecA : v.vecB;
    // Stored with K contiguous: A not transposed (M,K), B transposed (N,K).
    const kContig = op === "A" ? !v.transA : v.transB;
    const [ld, lim, base] = op === "A" ? ["p.lda", "p.M", "baseA"] : ["p.ldb", "p.N", "baseB"];
    const r0 = op === "A" ? "bm0" : "bn0";
    const out: string[] = [];
    const stage: string[] = [];
    const per = vec ? rows * bk / 4 / wg : rows * bk / wg;
    for (let s = 0; s < per; s++) {
      const e = `(li + ${s * wg}u)`;
      const r = `r${op}${s}`;
      if (vec && kContig) {
        // vec4 along k: tile row rr, k quad kq.
        out.push(
          `{ let rr = ${e} / ${bk / 4}u; let kk = (${e} % ${bk / 4}u) * 4u;` +
            ` let row = ${r0} + rr; let k = k0 + kk;` +
            ` let x = ${op}[(${base} + min(row, ${lim} - 1u) * ${ld} + min(k, kEndV)) / 4u];` +
            ` ${r} = select(vec4<f32>(0.0), x, vec4<bool>(k < p.K, k + 1u < p.K, k + 2u < p.K, k + 3u < p.K) & vec4<bool>(row < ${lim})); }`,
        );
        stage.push(
          `{ let rr = ${e} / ${bk / 4}u; let kk = (${e} % ${bk / 4}u) * 4u;` +
            [0, 1, 2, 3].map((c) =>
              ` ${op}s[nb + (kk + ${c}u) * ${rows / 4}u + rr / 4u][rr % 4u] = ${st}(${r}[${c}]);`
            ).join("") + " }",
        );
      } else if (vec) {
        // vec4 along the rows: k kk, row quad rq.
        out.push(
          `{ let kk = ${e} / ${rows / 4}u; let rr = (${e} % ${rows / 4}u) * 4u;` +
            ` let row = ${r0} + rr; let k = k0 + kk;` +
            ` let x = ${op}[(${base} + min(k, p.K - 1u) * ${ld} + min(row, ${
              op === "A" ? "MV" : "NV"
            })) / 4u];` +
            ` ${r} = select(vec4<f32>(0.0), x, vec4<bool>(row < ${lim}, row + 1u < ${lim}, row + 2u < ${lim}, row + 3u < ${lim}) & vec4<bool>(k < p.K)); }`,
        );
        stage.push(
          `{ let kk = ${e} / ${rows / 4}u; let rr = (${e} % ${rows / 4}u) * 4u;` +
            ` ${op}s[nb + kk * ${rows / 4}u + rr / 4u] = vec4<${st}>(${r}); }`,
        );
      } else {
        // Scalars, the contiguous dimension fastest across invocations (coalesced).
        const [rrE, kkE] = kContig
          ? [`${e} / ${bk}u`, `${e} % ${bk}u`]
          : [`${e} % ${rows}u`, `${e} / ${rows}u`];
        const addr = kContig
          ? `min(row, ${lim} - 1u) * ${ld} + min(k, p.K - 1u)`
          : `min(k, p.K - 1u) * ${ld} + min(row, ${lim} - 1u)`;
        out.push(
          `{ let rr = ${rrE}; let kk = ${kkE}; let row = ${r0} + rr; let k = k0 + kk;` +
            ` ${r} = select(0.0, ${op}[${base} + ${addr}], row < ${lim} && k < p.K); }`,
        );
        stage.push(
          `{ let rr = ${rrE}; let kk = ${kkE};` +
            ` ${op}s[nb + kk * ${rows / 4}u + rr / 4u][rr % 4u] = ${st}(${r}); }`,
        );
      }
    }
    const decl = Array.from(
      { length: per },
      (_, s) => `var r${op}${s}: ${vec ? "vec4<f32>" : "f32"};`,
    );
    return { decl, out, stage };
  };
  const fa = fetch("A"), fb = fetch("B");
  L(`@compute @workgroup_size(${wg})
fn gemm_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let bm0 = wid.y * ${bm}u;
  let bn0 = wid.x * ${bn}u;
  // lowerC: a block wholly above the diagonal is left unwritten (uniform per workgroup).
  if (p.lowerC != 0u && bn0 >= bm0 + ${bm}u) { return; }
  let bo = wid.z / p.inner;
  let bi = wid.z - bo * p.inner;
  let baseA = p.offA + bo * p.sAo + bi * p.sAi;
  let baseB = p.offB + bo * p.sBo + bi * p.sBi;
  let baseC = p.offC + bo * p.sCo + bi * p.sCi;
  // Last valid start of a vec4 along a contiguous dimension (vec4 loads are 4-aligned).
  let kEndV = ((p.K - 1u) / 4u) * 4u;
  let MV = ((p.M - 1u) / 4u) * 4u;
  let NV = ((p.N - 1u) / 4u) * 4u;
  // triangularA: lower (op(A)[m][k] = 0 for k > m) needs k < bm0 + BM; upper (0 for k < m) k ≥ bm0.
  var kStart = 0u;
  var kEnd = p.K;
  if (p.tri == 1u) { kEnd = min(p.K, bm0 + ${bm}u); }
  if (p.tri == 2u) { kStart = min(bm0 / ${bk}u * ${bk}u, p.K); }
  let tiles = (kEnd - kStart + ${bk - 1}u) / ${bk}u;
  let ty = li / ${tx}u;
  let tx = li % ${tx}u;
  ${fa.decl.join(" ")}
  ${fb.decl.join(" ")}`);
  const accs: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn / 4; j++) accs.push(`acc${i}_${j}`);
  }
  L(`  ${accs.map((a) => `var ${a} = vec4<f32>(0.0);`).join(" ")}`);
  L(`  var k0 = kStart;
  var nb = 0u;
  ${fa.out.join("\n  ")}
  ${fb.out.join("\n  ")}
  ${fa.stage.join("\n  ")}
  ${fb.stage.join("\n  ")}
  workgroupBarrier();
  for (var t = 0u; t < tiles; t++) {
    let cb = (t & 1u) * ${bk * bm / 4}u;
    let cbB = (t & 1u) * ${bk * bn / 4}u;
    // Prefetch tile t + 1 (the last tile again on the last step: harmless, never read).
    k0 = kStart + min(t + 1u, tiles - 1u) * ${bk}u;
    ${fa.out.join("\n    ")}
    ${fb.out.join("\n    ")}`);
  for (let kk = 0; kk < bk; kk++) {
    const a = Array.from(
      { length: tm / 4 },
      (_, q) => `As[cb + ${kk * bm / 4}u + ty * ${tm / 4}u + ${q}u]`,
    );
    const b = Array.from(
      { length: tn / 4 },
      (_, q) => `Bs[cbB + ${kk * bn / 4}u + tx * ${tn / 4}u + ${q}u]`,
    );
    L(`    { ${a.map((x, q) => `let a${q} = ${x};`).join(" ")} ${
      b.map((x, q) => `let b${q} = ${x};`).join(" ")
    }`);
    for (let i = 0; i < tm; i++) {
      const ai = `a${Math.floor(i / 4)}[${i % 4}]`;
      const row = Array.from(
        { length: tn / 4 },
        (_, j) =>
          v.f16
            ? `acc${i}_${j} = acc${i}_${j} + vec4<f32>(${ai} * b${j});`
            : `acc${i}_${j} = fma(vec4<f32>(${ai}), b${j}, acc${i}_${j});`,
      );
      L(`      ${row.join(" ")}`);
    }
    L("    }");
  }
  L(`    nb = (1u - (t & 1u)) * ${bk * bm / 4}u;
    ${fa.stage.join("\n    ")}
    nb = (1u - (t & 1u)) * ${bk * bn / 4}u;
    ${fb.stage.join("\n    ")}
    workgroupBarrier();
  }`);
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn / 4; j++) {
      L(`  store(baseC, bm0 + ty * ${tm}u + ${i}u, bn0 + tx * ${tn}u + ${4 * j}u, acc${i}_${j});`);
    }
  }
  L("}");
  L(`
// C[m][n..n+3] = alpha · acc (+ bias) (+ C), inside the matrix only. Uniform branches, once per
// output: C is never read unless accumulating (a NaN-poisoned C must not leak in).
fn store(baseC: u32, m: u32, n: u32, acc: vec4<f32>) {
  if (m >= p.M) { return; }
  for (var c = 0u; c < 4u; c++) {
    let col = n + c;
    if (col < p.N) {
      let ci = baseC + m * p.ldc + col;
      var x = p.alpha * acc[c];
      if (p.hasBias != 0u) { x = x + bias[p.offBias + col]; }
      if (p.accumulate != 0u) { x = x + C[ci]; }
      C[ci] = x;
    }
  }
}`);
  return lines.join("\n");
}

/** Tuned choices: adapter name → shape class → configuration name (process-wide). */
const TUNED = new Map<string, Map<string, string>>();

/** ceil(log2(x)): the shape classes group sizes within a factor of 2. */
function bucket(x: number): number {
  return Math.ceil(Math.log2(Math.max(1, x)));
}

/** The class a GEMM shape is tuned as: layout and the log2 buckets of M, N, K and the batch. */
export function shapeClass(s: GemmShape): string {
  const layout = `${s.transA ? "T" : "N"}${s.transB ? "T" : "N"}`;
  return `${layout}.m${bucket(s.m)}.n${bucket(s.n)}.k${bucket(s.k)}.b${bucket(s.batch ?? 1)}`;
}

/** Enough workgroups to keep a large GPU busy; the untuned choice takes the largest block that makes them. */
const BUSY_GROUPS = 256;

/**
 * The tiled GEMM for hardware adapters: one compiled pipeline per configuration, layout and load
 * width, the configuration picked per call from the adapter's tuned table (see
 * {@linkcode GemmTiled.tune}) or, untuned, the largest block that still makes
 * 256 workgroups.
 *
 * @example
 * ```ts
 * import { Gpu } from "../mod.ts";
 * import { GemmTiled } from "./gemm_tiled.ts";
 * const gpu = await Gpu.get();
 * const mm = await GemmTiled.create(gpu, { configs: [{ bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 }] });
 * // C (2,2) = A (2,3) · B (3,2) + bias
 * const a = gpu.tensor([2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
 * const b = gpu.tensor([3, 2], new Float32Array([1, 0, 0, 1, 1, 1]));
 * const bias = gpu.tensor([2], new Float32Array([10, 20]));
 * const c = gpu.tensor([2, 2]);
 * const batch = gpu.batch();
 * mm.gemm(batch, { a, b, c, bias, m: 2, n: 2, k: 3 });
 * await batch.submit();
 * const [y] = await gpu.read([c]);
 * if (y.join() !== "14,25,20,31") throw new Error(`${y}`);
 * for (const t of [a, b, bias, c]) t.release();
 * ```
 */
export class GemmTiled {
  /** The configurations this instance compiled, in preference order. */
  readonly configs: readonly TileConfig[];
  /** `"f32"` or `"f16-compute"`. */
  readonly precision: "f32" | "f16-compute";
  readonly #gpu: Gpu;
  readonly #kernels: Map<string, Kernel>;

  private constructor(
    gpu: Gpu,
    configs: readonly TileConfig[],
    precision: "f32" | "f16-compute",
    kernels: Map<string, Kernel>,
  ) {
    this.#gpu = gpu;
    this.configs = configs;
    this.precision = precision;
    this.#kernels = kernels;
  }

  /** Compiles every layout and load width of each configuration (cached by the device). */
  static async create(gpu: Gpu, options: GemmTiledOptions = {}): Promise<GemmTiled> {
    const precision = options.precision ?? "f32";
    if (precision === "f16-compute" && !gpu.hasF16) {
      throw new RangeError(
        'Cannot create GemmTiled: precision "f16-compute" needs a device with shader-f16',
      );
    }
    const limits = gpu.device.limits;
    const fits = (c: TileConfig) =>
      threads(c) <= limits.maxComputeInvocationsPerWorkgroup &&
      2 * c.bk * (c.bm + c.bn) * (precision === "f16-compute" ? 2 : 4) <=
        limits.maxComputeWorkgroupStorageSize;
    const configs = options.configs ?? TILE_CONFIGS.filter(fits);
    if (configs.length === 0) {
      throw new RangeError("Cannot create GemmTiled: no configuration given");
    }
    for (const c of configs) {
      const why = invalid(c) ??
        (fits(c) ? null : "over this device's workgroup size or workgroup memory");
      if (why) throw new RangeError(`Cannot create GemmTiled: ${configName(c)}: ${why}`);
    }
    const f16 = precision === "f16-compute";
    const specs: [string, Promise<Kernel>][] = [];
    for (const config of configs) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          // vec4 loads for both operands or for neither: half the pipelines of a per-operand
          // choice (compile time), and the models' operands are aligned together or not at all.
          for (const vec of [false, true]) {
            const key = variantKey(config, transA, transB, vec);
            specs.push([
              key,
              gpu.kernel({
                name: `gemm_tiled.${key}${f16 ? ".f16" : ""}`,
                file: FILE,
                code: generate({ config, transA, transB, vecA: vec, vecB: vec, f16 }),
                entry: "gemm_tiled",
                bindings: ["uniform", "read", "read", "read", "write"],
              }),
            ]);
          }
        }
      }
    }
    const kernels = await Promise.all(specs.map(([, k]) => k));
    return new GemmTiled(
      gpu,
      configs,
      precision,
      new Map(specs.map(([key], i) => [key, kernels[i]])),
    );
  }

  /** The configuration a GEMM of this shape runs with: tuned for this adapter, else the untuned rule. */
  configFor(s: GemmShape): TileConfig {
    const tuned = TUNED.get(this.#key)?.get(shapeClass(s));
    const hit = tuned && this.configs.find((c) => configName(c) === tuned);
    if (hit) return hit;
    const count = s.batch ?? 1;
    const groups = (c: TileConfig) => Math.ceil(s.m / c.bm) * Math.ceil(s.n / c.bn) * count;
    let best = this.configs[this.configs.length - 1];
    for (const c of this.configs) {
      if (groups(c) >= BUSY_GROUPS && c.bm * c.bn > best.bm * best.bn) best = c;
      else if (groups(c) >= BUSY_GROUPS && groups(best) < BUSY_GROUPS) best = c;
    }
    return best;
  }

  /**
   * Times every configuration on each shape (timestamp queries where the device has them, else the
   * wall clock over `reps` runs) and records the fastest per shape class for this adapter; shapes
   * whose class is already tuned are skipped. Returns this adapter's table (class → configuration).
   */
  async tune(shapes: readonly GemmShape[], reps = 5): Promise<Record<string, string>> {
    const gpu = this.#gpu;
    const table = TUNED.get(this.#key) ?? new Map<string, string>();
    TUNED.set(this.#key, table);
    for (const s of shapes) {
      const cls = shapeClass(s);
      if (table.has(cls) || this.configs.length === 1) continue;
      const count = s.batch ?? 1;
      const a = gpu.tensor([count * s.m * s.k], undefined, "gemm_tiled.tune.a");
      const b = gpu.tensor([count * s.k * s.n], undefined, "gemm_tiled.tune.b");
      const c = gpu.tensor([count * s.m * s.n], undefined, "gemm_tiled.tune.c");
      let best = { name: "", ms: Infinity };
      try {
        for (const config of this.configs) {
          const spec: GemmSpec = {
            a,
            b,
            c,
            m: s.m,
            n: s.n,
            k: s.k,
            transA: s.transA,
            transB: s.transB,
            batch: count,
            strideA: s.m * s.k,
            strideB: s.k * s.n,
            strideC: s.m * s.n,
          };
          const ms = await this.#time(spec, config, reps);
          if (ms < best.ms) best = { name: configName(config), ms };
        }
      } finally {
        for (const t of [a, b, c]) t.release();
      }
      table.set(cls, best.name);
    }
    return Object.fromEntries(table);
  }

  /** The tuned table of this instance's adapter (class → configuration name). */
  get tuned(): Record<string, string> {
    return Object.fromEntries(TUNED.get(this.#key) ?? []);
  }

  /** Median milliseconds of one GEMM with `config` (after one warm-up run). */
  async #time(spec: GemmSpec, config: TileConfig, reps: number): Promise<number> {
    const gpu = this.#gpu;
    const warm = gpu.batch();
    this.gemm(warm, spec, config);
    await warm.submit();
    await gpu.sync();
    const times: number[] = [];
    if (gpu.canProfile) {
      const was = gpu.profile;
      gpu.profile = true;
      try {
        const batch = gpu.batch();
        for (let r = 0; r < reps; r++) this.gemm(batch, spec, config);
        await batch.submit();
        for (const e of await gpu.readProfile()) times.push(e.ms);
      } finally {
        gpu.profile = was;
      }
    }
    // Timestamps can be missing or zero (lavapipe's are coarse): fall back to the wall clock.
    if (times.length === 0 || times.every((t) => t === 0)) {
      times.length = 0;
      for (let r = 0; r < reps; r++) {
        const batch = gpu.batch();
        this.gemm(batch, spec, config);
        const t0 = performance.now();
        await batch.submit();
        await gpu.sync();
        times.push(performance.now() - t0);
      }
    }
    times.sort((x, y) => x - y);
    return times[Math.floor(times.length / 2)];
  }

  get #key(): string {
    return `${this.#gpu.adapterName}|${this.precision}`;
  }

  /**
   * `C (M,N) = alpha · op(A) (M,K) · op(B) (K,N) (+ bias) (+ C when accumulate)` per batch entry
   * (see {@linkcode GemmSpec}); `config` forces a configuration this instance compiled. Throws a
   * RangeError naming the tensor when an operand is too small for its shape, offset and strides.
   */
  gemm(batch: Batch, s: GemmSpec, config?: TileConfig): void {
    const { m, n, k } = s;
    const transA = s.transA ?? false, transB = s.transB ?? false;
    const name = `gemm_tiled(${transA ? "T" : "N"}${transB ? "T" : "N"})`;
    const {
      count,
      inner,
      sAo,
      sAi,
      sBo,
      sBi,
      sCo,
      sCi,
      offA,
      offB,
      offC,
      offBias,
      lda,
      ldb,
      ldc,
    } = checkGemmLayout(name, s);
    const cfg = config ?? this.configFor({ m, n, k, transA, transB, batch: count });
    // vec4 loads need 4-aligned rows and a binding rounded up to whole vec4s (else the last
    // partial vec4 would be out of the binding): scalar loads otherwise.
    const vec = (t: Tensor, ...xs: number[]) =>
      xs.every((x) => x % 4 === 0) &&
      t.byteOffset + Math.ceil(t.byteLength / 16) * 16 <= t.buffer.size;
    const vecAB = vec(s.a, offA, lda, sAo, sAi) && vec(s.b, offB, ldb, sBo, sBi);
    const kernel = this.#kernels.get(variantKey(cfg, transA, transB, vecAB));
    if (!kernel) {
      throw new RangeError(
        `Cannot run kernel "${name}": configuration ${configName(cfg)} was not compiled`,
      );
    }
    // The K-tile loop, the prologue and the 4-column store loops of the TM·TN/4 stores.
    checkLoops(kernel.name, Math.ceil(k / cfg.bk) + 1 + (cfg.tm * cfg.tn / 4) * 5, `K=${k}`);
    const tri = s.triangularA === "lower" ? 1 : s.triangularA === "upper" ? 2 : 0;
    const params = new Params(24)
      .u32(m).u32(n).u32(k).u32(inner)
      .u32(lda).u32(ldb).u32(ldc).u32(tri)
      .u32(offA).u32(offB).u32(offC).u32(offBias)
      .u32(sAo).u32(sAi).u32(sBo).u32(sBi)
      .u32(sCo).u32(sCi).f32(s.alpha ?? 1).u32(s.accumulate ? 1 : 0)
      .u32(s.bias ? 1 : 0).u32(s.lowerC ? 1 : 0).bytes;
    // Without a bias, A stands in for the unused binding (both read-only: no usage conflict).
    const bindings: Binding[] = [vec4Range(s.a, vecAB), vec4Range(s.b, vecAB), s.bias ?? s.a, s.c];
    batch.dispatch(kernel, bindings, params, [Math.ceil(n / cfg.bn), Math.ceil(m / cfg.bm), count]);
  }
}

function variantKey(c: TileConfig, transA: boolean, transB: boolean, vec: boolean): string {
  return `${configName(c)}.${transA ? "T" : "N"}${transB ? "T" : "N"}.${vec ? "vec4" : "scalar"}`;
}

/** A tensor bound as vec4s (its range rounded up to 16 bytes; the caller checked the room). */
function vec4Range(t: Tensor, vec: boolean): Binding {
  return vec
    ? { buffer: t.buffer, offset: t.byteOffset, size: Math.ceil(t.byteLength / 16) * 16 }
    : t;
}
