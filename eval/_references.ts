// Reference handling shared by corpus BLEU and chrF, following sacreBLEU's
// Metric._cache_references (metrics/base.py). Internal to eval/.

/** References of every segment, and the count a signature reports. */
export interface SegmentReferences {
  /** perSegment[i]: the references of segment i (empty strings included). */
  perSegment: string[][];
  /** References per segment, or "var" when the count differs between segments. */
  nrefs: number | "var";
}

/**
 * Regroups reference streams (`streams[k][i]` is the k-th reference of
 * segment i) by segment. As in sacreBLEU 2.6 (`Metric._cache_references`),
 * null or undefined means "no k-th reference for this segment" and is dropped,
 * while an empty string is a reference like any other (of length 0). A segment
 * left with no reference at all is an error here; sacreBLEU has no score for
 * it either (BLEU fails on its missing n-grams, chrF on its empty statistics).
 * Unlike sacreBLEU, which silently truncates to the shortest input (Python's
 * zip), streams whose length differs from the hypotheses' are an error too.
 */
export function segmentReferences(
  metric: string,
  hypothesisCount: number,
  streams: readonly (readonly (string | null | undefined)[])[],
): SegmentReferences {
  if (hypothesisCount === 0) throw new RangeError(`Cannot compute ${metric}: no hypotheses given`);
  if (streams.length === 0) {
    throw new RangeError(`Cannot compute ${metric}: no reference streams given`);
  }
  streams.forEach((stream, k) => {
    if (stream.length !== hypothesisCount) {
      throw new RangeError(
        `Cannot compute ${metric}: ${hypothesisCount} hypotheses but reference stream ${k} has ${stream.length} segments`,
      );
    }
  });
  const counts = new Set<number>();
  const perSegment: string[][] = [];
  for (let i = 0; i < hypothesisCount; i++) {
    const refs = streams.map((stream) => stream[i])
      .filter((ref): ref is string => ref !== null && ref !== undefined);
    if (refs.length === 0) {
      throw new RangeError(
        `Cannot compute ${metric}: segment ${i} has no reference (null or undefined in every stream)`,
      );
    }
    counts.add(refs.length);
    perSegment.push(refs);
  }
  return { perSegment, nrefs: counts.size === 1 ? [...counts][0] : "var" };
}
