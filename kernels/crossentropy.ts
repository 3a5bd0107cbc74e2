/**
 * Fused softmax cross-entropy with an ignore index, with Hugging Face semantics: targets are
 * already shifted by the caller, a target of -100 is ignored, and the loss is the mean over the
 * targets that are not ignored.
 *
 * The kernel writes per-row losses (0 for ignored rows) and, when asked, the gradient of the mean
 * loss, `dlogits = (softmax − onehot) · scale` with `scale = 1 / (number of targets not ignored)`
 * (0 rows for ignored rows). Targets are known on the CPU when a batch is built:
 * {@linkcode CrossEntropy.meanScale} checks them there and returns that scale.
 *
 * The same loss and gradient also come chunk by chunk over the vocabulary, for an LM head that
 * never holds the (N,V) logits (kernels/headloss.ts): {@linkcode CrossEntropy.chunkStats} keeps an
 * online log-sum-exp per row over chunks of columns, {@linkcode CrossEntropy.chunkGrad} turns a
 * chunk of logits into its gradient with the final statistics.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, LOOP_CAP, Params } from "./common.ts";
import code from "./crossentropy.wgsl" with { type: "text" };

const FILE = "kernels/crossentropy.wgsl";
/** Invocations per workgroup of the rows variant (one row each). */
const ROWS_GROUP = 64;
/** Loop iterations the rows variant may spend on compiler-made loops besides its own. */
const ROWS_SLACK = 128;

/**
 * Which kernels run:
 * - `"workgroup"`: a 256-wide workgroup per row, reducing through workgroup memory; any V.
 * - `"rows"`: one invocation per row with vec4 loads, no barriers (fastest on CPU adapters); needs
 *   V a multiple of 4 and 3·(V/4 + 1) + 128 ≤ 65,535 loop iterations (V ≤ 87,200).
 * - `"auto"` (default): rows on a software adapter where V allows, workgroup otherwise.
 */
export type CrossEntropyVariant = "auto" | "workgroup" | "rows";

/** Options for {@linkcode CrossEntropy.create}. */
export interface CrossEntropyOptions {
  /** Which kernels run (default `"auto"`). */
  variant?: CrossEntropyVariant;
}

/**
 * One chunk of vocabulary columns of a chunked cross-entropy: a (N, W) scratch holds the logits of
 * columns `[start, start + W)` of a vocabulary of `V`, of which the first `skip` were counted by an
 * earlier chunk (a last chunk that overlaps the one before it, so that every chunk has one width).
 */
export interface VocabChunk {
  /** Vocabulary id of the scratch's first column. */
  start: number;
  /** Leading columns already counted by an earlier chunk: left out (their gradient is 0). */
  skip: number;
  /** The whole vocabulary size V (targets are checked against it). */
  V: number;
}

/** The target value that marks a row as ignored (PyTorch's and Hugging Face's default). */
export const IGNORE_INDEX: number = -100;

/**
 * The fused softmax cross-entropy kernels.
 *
 * @example
 * ```ts
 * import { CrossEntropy, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const ce = await CrossEntropy.create(gpu);
 * const [N, V] = [2, 3];
 * const hostTargets = new Int32Array([2, -100]); // the second row is ignored
 * const logits = gpu.tensor([N, V], new Float32Array([0, 0, 0, 5, 1, 2]), "logits");
 * const targets = gpu.tensor([N], hostTargets, "targets");
 * const losses = gpu.tensor([N]), dlogits = gpu.tensor([N, V]);
 * const batch = gpu.batch();
 * ce.forward(batch, logits, targets, losses, dlogits, CrossEntropy.meanScale(hostTargets, V));
 * await batch.submit();
 * const [loss, grad] = await gpu.read([losses, dlogits]);
 * if (Math.abs(loss[0] - Math.log(3)) > 1e-6 || loss[1] !== 0 || grad[5] !== 0) throw new Error("cross-entropy failed");
 * for (const t of [logits, targets, losses, dlogits]) t.release();
 * ```
 */
export class CrossEntropy {
  readonly #loss: Kernel;
  readonly #grad: Kernel;
  readonly #inplace: Kernel;

  readonly #rows: Kernel[];
  /** chunk_stats, chunk_grad, chunk_stats_rows, chunk_grad_rows. */
  readonly #chunk: Kernel[];
  readonly #variant: CrossEntropyVariant;

  private constructor(kernels: Kernel[], variant: CrossEntropyVariant) {
    [this.#loss, this.#grad, this.#inplace] = kernels;
    this.#rows = kernels.slice(3, 6);
    this.#chunk = kernels.slice(6);
    this.#variant = variant;
  }

  /**
   * Compiles (or fetches from the cache) the kernels. `options.variant` forces one variant (tests
   * use it to check both); the default picks per adapter and shape.
   */
  static async create(gpu: Gpu, options: CrossEntropyOptions = {}): Promise<CrossEntropy> {
    const k = (entry: string, bindings: ("uniform" | "read" | "write" | null)[]) =>
      gpu.kernel({ name: `crossentropy.${entry}`, file: FILE, code, entry, bindings });
    const kernels = await Promise.all([
      k("forward", ["uniform", "write", "read", "write"]),
      k("forward_grad", ["uniform", "write", "read", "write", "write"]),
      k("forward_grad_inplace", ["uniform", "write", "read", "write"]),
      k("forward_rows", ["uniform", null, "read", "write", null, "write"]),
      k("forward_grad_rows", ["uniform", null, "read", "write", null, "write", "write"]),
      k("forward_grad_inplace_rows", ["uniform", null, "read", "write", null, "write"]),
      k("chunk_stats", ["uniform", "write", "read", "write", null, null, null, "write"]),
      k("chunk_grad", ["uniform", "write", "read", null, null, null, null, "write"]),
      k("chunk_stats_rows", ["uniform", null, "read", "write", null, "write", null, "write"]),
      k("chunk_grad_rows", ["uniform", null, "read", null, null, "write", null, "write"]),
    ]);
    const variant = options.variant ?? "auto";
    return new CrossEntropy(kernels, variant === "auto" && !gpu.isSoftware ? "workgroup" : variant);
  }

  /** The variant that runs rows of V logits (`"rows"` or `"workgroup"`). */
  variantFor(V: number): "workgroup" | "rows" {
    return this.#useRows("crossentropy.forward", V) ? "rows" : "workgroup";
  }

  /** Whether the rows variant runs rows of V; throws when it is forced on a V it cannot run. */
  #useRows(kernel: string, V: number): boolean {
    if (this.#variant === "workgroup") return false;
    const loops = 3 * (V / 4 + 1) + ROWS_SLACK;
    if (this.#variant === "auto") return V % 4 === 0 && loops <= LOOP_CAP;
    if (V % 4 !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (rows variant)": V=${V} is not a multiple of 4`,
      );
    }
    checkLoops(`${kernel} (rows variant)`, loops, `a row of V=${V} logits`);
    return true;
  }

  /**
   * Checks targets (one per row, each in `[0, V)` or {@linkcode IGNORE_INDEX}) and returns the
   * scale of the mean loss: `1 / count` of targets not ignored, or 0 when every target is ignored
   * (then the gradient is all zeros; the mean loss itself, 0/0, is undefined, as in PyTorch).
   * Throws a `RangeError` naming the first bad row and its value.
   */
  static meanScale(targets: ArrayLike<number>, V: number): number {
    let count = 0;
    for (let r = 0; r < targets.length; r++) {
      const t = targets[r];
      if (t === IGNORE_INDEX) continue;
      if (!(Number.isInteger(t) && t >= 0 && t < V)) {
        throw new RangeError(
          `Cannot use target ${t} at row ${r}: targets must be in 0..${
            V - 1
          } or ${IGNORE_INDEX} (ignored)`,
        );
      }
      count++;
    }
    return count > 0 ? 1 / count : 0;
  }

  /**
   * `logits (N,V)`, `targets (N)` i32; writes `losses (N) = logsumexp(logits[r]) − logits[r, t]`
   * (0 for ignored rows) and, when `dlogits (N,V)` is given, `dlogits = (softmax − onehot) · scale`
   * (0 rows for ignored rows; writes, does not accumulate). `dlogits` may be `logits` itself: the
   * gradient then overwrites the logits in place (as llm.c does). `scale` is usually
   * {@linkcode CrossEntropy.meanScale}, which also checks the targets on the CPU; a target this
   * kernel finds out of range gives NaN in its row's loss and gradient.
   */
  forward(
    batch: Batch,
    logits: Tensor,
    targets: Tensor,
    losses: Tensor,
    dlogits: Tensor | null,
    scale: number,
  ): void {
    const name = "crossentropy.forward";
    const V = logits.shape[logits.shape.length - 1] ?? 0;
    if (logits.shape.length < 2 || V === 0) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${logits.label}" has shape [${
          logits.shape.join(", ")
        }], expected (N, V)`,
      );
    }
    const N = logits.size / V;
    for (
      const [t, n, what] of [[targets, N, "targets, (N)"], [losses, N, "losses, (N)"], [
        dlogits,
        N * V,
        "dlogits, (N, V)",
      ]] as const
    ) {
      if (t && t.size !== n) {
        throw new RangeError(
          `Cannot run kernel "${name}": tensor "${t.label}" (${what}) has ${t.size} elements, expected ${n}`,
        );
      }
    }
    if (!Number.isFinite(scale)) {
      throw new RangeError(`Cannot run kernel "${name}": scale ${scale} is not finite`);
    }
    const params = new Params(7).u32(N).u32(V).f32(scale).u32(0).u32(0).u32(0).u32(0).bytes;
    if (this.#useRows(name, V)) {
      const [loss, grad, inplace] = this.#rows, groups = grid(N, ROWS_GROUP);
      if (!dlogits) batch.dispatch(loss, [targets, losses, logits], params, groups);
      else if (dlogits.buffer === logits.buffer) {
        batch.dispatch(inplace, [targets, losses, logits], params, groups);
      } else batch.dispatch(grad, [targets, losses, logits, dlogits], params, groups);
      return;
    }
    checkLoops(name, 3 * Math.ceil(V / 256) + 21, `a row of V=${V} logits`);
    if (!dlogits) {
      batch.dispatch(this.#loss, [logits, targets, losses], params, grid(N, 1));
    } else if (dlogits.buffer === logits.buffer) {
      batch.dispatch(this.#inplace, [logits, targets, losses], params, grid(N, 1));
    } else {
      batch.dispatch(this.#grad, [logits, targets, losses, dlogits], params, grid(N, 1));
    }
  }

  /**
   * One chunk of the online log-sum-exp (`chunk (N, W)` holds the logits of vocabulary columns
   * `c.start … c.start + W`, the first `c.skip` already counted; `targets (N)` i32): updates
   * `stats (N,3) = [running max, running Σ exp(x − max), target logit]` in place (`first` starts
   * them) and, for the `last` chunk, writes `losses (N) = logsumexp − target logit` (0 for
   * ignored rows, NaN for a target outside `[0, V)`). Run the chunks in any order, first to last.
   */
  chunkStats(
    batch: Batch,
    chunk: Tensor,
    targets: Tensor,
    stats: Tensor,
    losses: Tensor,
    c: VocabChunk,
    first: boolean,
    last: boolean,
  ): void {
    const name = "crossentropy.chunkStats";
    const [N, W] = this.#checkChunk(name, chunk, targets, stats, c);
    if (losses.size !== N) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${losses.label}" (losses, (N)) has ${losses.size} elements, expected ${N}`,
      );
    }
    const params = new Params(7).u32(N).u32(c.V).f32(0).u32(W).u32(c.start).u32(c.skip)
      .u32((first ? 1 : 0) | (last ? 2 : 0)).bytes;
    const [stat, , statRows] = this.#chunk;
    if (this.#useChunkRows(name, W, 2 * (W / 4 + 1))) {
      batch.dispatch(statRows, [targets, losses, chunk, stats], params, grid(N, ROWS_GROUP));
    } else {
      checkLoops(name, 3 * Math.ceil(W / 256) + 21, `a chunk of ${W} logits`);
      batch.dispatch(stat, [chunk, targets, losses, stats], params, grid(N, 1));
    }
  }

  /**
   * Overwrites `chunk (N, W)` (the logits of vocabulary columns `c.start …`) with their gradient
   * `(softmax − onehot) · scale`, the softmax from the final `stats (N,3)` of
   * {@linkcode chunkStats} (0 for ignored rows and for the `c.skip` leading columns).
   */
  chunkGrad(
    batch: Batch,
    chunk: Tensor,
    targets: Tensor,
    stats: Tensor,
    c: VocabChunk,
    scale: number,
  ): void {
    const name = "crossentropy.chunkGrad";
    const [N, W] = this.#checkChunk(name, chunk, targets, stats, c);
    if (!Number.isFinite(scale)) {
      throw new RangeError(`Cannot run kernel "${name}": scale ${scale} is not finite`);
    }
    const params = new Params(7).u32(N).u32(c.V).f32(scale).u32(W).u32(c.start).u32(c.skip)
      .u32(0).bytes;
    const [, grad, , gradRows] = this.#chunk;
    if (this.#useChunkRows(name, W, W / 4 + 1)) {
      batch.dispatch(gradRows, [targets, chunk, stats], params, grid(N, ROWS_GROUP));
    } else {
      checkLoops(name, Math.ceil(W / 256) + 1, `a chunk of ${W} logits`);
      batch.dispatch(grad, [chunk, targets, stats], params, grid(N, 1));
    }
  }

  /** Whether the rows variant runs a chunk of W columns. */
  #useChunkRows(kernel: string, W: number, loops: number): boolean {
    if (this.#variant === "workgroup") return false;
    if (this.#variant === "auto") return W % 4 === 0 && loops + ROWS_SLACK <= LOOP_CAP;
    if (W % 4 !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (rows variant)": a chunk of W=${W} columns is not a multiple of 4`,
      );
    }
    checkLoops(`${kernel} (rows variant)`, loops + ROWS_SLACK, `a chunk of ${W} logits`);
    return true;
  }

  /** Checks a chunk's tensors; returns [N, W]. */
  #checkChunk(
    name: string,
    chunk: Tensor,
    targets: Tensor,
    stats: Tensor,
    c: VocabChunk,
  ): [number, number] {
    const N = targets.size;
    const W = chunk.shape[chunk.shape.length - 1] ?? 0;
    if (chunk.shape.length !== 2 || chunk.shape[0] !== N) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${chunk.label}" has shape [${
          chunk.shape.join(", ")
        }], expected (N, W) with N = ${N} targets`,
      );
    }
    if (stats.size !== 3 * N) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${stats.label}" (stats, (N, 3)) has ${stats.size} elements, expected ${
          3 * N
        }`,
      );
    }
    if (
      !(Number.isInteger(c.start) && c.start >= 0 && c.start + W <= c.V &&
        Number.isInteger(c.skip) && c.skip >= 0 && c.skip < W)
    ) {
      throw new RangeError(
        `Cannot run kernel "${name}": a chunk of ${W} columns from ${c.start} (skipping ${c.skip}) does not fit a vocabulary of ${c.V}`,
      );
    }
    return [N, W];
  }
}
