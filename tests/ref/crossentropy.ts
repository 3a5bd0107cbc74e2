/** Plain-loop float64 reference of kernels/crossentropy.wgsl. */

/** The target that marks an ignored row. */
const IGNORE = -100;

/** losses[r] = logsumexp(logits[r]) − logits[r, targets[r]] (0 for an ignored row). logits is (N,V). */
export function crossEntropyForward(
  logits: Float64Array,
  targets: ArrayLike<number>,
  N: number,
  V: number,
): Float64Array {
  const losses = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    if (targets[r] === IGNORE) continue;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[r * V + j] - mx);
    losses[r] = mx + Math.log(sum) - logits[r * V + targets[r]];
  }
  return losses;
}

/** The mean loss over rows not ignored: scale · Σ losses. */
export function crossEntropyMean(
  logits: Float64Array,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  scale: number,
): number {
  return crossEntropyForward(logits, targets, N, V).reduce((a, b) => a + b, 0) * scale;
}

/** dlogits (N,V) = (softmax(logits[r]) − onehot(targets[r])) · scale (0 rows for ignored rows). */
export function crossEntropyBackward(
  logits: Float64Array,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  scale: number,
): Float64Array {
  const d = new Float64Array(N * V);
  for (let r = 0; r < N; r++) {
    if (targets[r] === IGNORE) continue;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[r * V + j] - mx);
    for (let j = 0; j < V; j++) {
      d[r * V + j] = (Math.exp(logits[r * V + j] - mx) / sum - (j === targets[r] ? 1 : 0)) * scale;
    }
  }
  return d;
}
