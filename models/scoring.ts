/**
 * Which label positions are scored: the one rule that the model, the trainer, the batcher and the
 * evaluation harness share.
 *
 * Labels follow Hugging Face's convention: aligned with the ids, shifted inside the model, so the
 * position before token t predicts `labels[t]`; −100 is never scored. Label 0 has no position
 * before it, so it is not scored, except under prompt tuning, where the last virtual token comes
 * before it (as in PEFT, which prepends the virtual tokens and gives them label −100). Prefix
 * tuning's virtual rows are only keys and values (Hugging Face's `past_key_values`), so label 0 is
 * not scored there either.
 *
 * @module
 */

import { IGNORE_INDEX } from "../kernels/crossentropy.ts";

/**
 * What decides which labels are scored: the number of virtual tokens in front of each sequence
 * and whether the last of them predicts the first real token.
 */
export interface ScoringRule {
  /** Virtual tokens in front of each sequence (0 without prompt or prefix tuning). */
  readonly nVirtual: number;
  /** The last virtual position predicts label 0 (prompt tuning). */
  readonly scoresFirstLabel: boolean;
}

/** Plain models: no virtual tokens, label 0 not scored. */
export const PLAIN_SCORING: ScoringRule = Object.freeze({ nVirtual: 0, scoresFirstLabel: false });

/**
 * The first label index that can be scored in a sequence: 0 when a virtual token precedes it
 * (prompt tuning), else 1.
 *
 * @example
 * ```ts
 * import { firstScoredLabel } from "../mod.ts";
 * if (firstScoredLabel({ nVirtual: 0, scoresFirstLabel: false }) !== 1) throw new Error();
 * if (firstScoredLabel({ nVirtual: 20, scoresFirstLabel: true }) !== 0) throw new Error();
 * ```
 */
export function firstScoredLabel(rule: ScoringRule): 0 | 1 {
  return rule.nVirtual > 0 && rule.scoresFirstLabel ? 0 : 1;
}

/**
 * The position (virtual ones included) whose logits predict label `t`: n + t − 1. Throws when
 * label t is never scored under `rule` (label 0 without prompt tuning).
 *
 * @example
 * ```ts
 * import { predictorPosition } from "../mod.ts";
 * if (predictorPosition({ nVirtual: 0, scoresFirstLabel: false }, 4) !== 3) throw new Error();
 * if (predictorPosition({ nVirtual: 20, scoresFirstLabel: true }, 0) !== 19) throw new Error();
 * ```
 */
export function predictorPosition(rule: ScoringRule, t: number): number {
  if (!(Number.isInteger(t) && t >= firstScoredLabel(rule))) {
    throw new RangeError(
      `Cannot score label ${t}: the first label scored is ${
        firstScoredLabel(rule)
      } (no position comes before label 0 without prompt tuning)`,
    );
  }
  return rule.nVirtual + t - 1;
}

/**
 * Counts the scored labels of rows of `T` labels each (flat, row-major).
 *
 * @example
 * ```ts
 * import { countScoredLabels, PLAIN_SCORING } from "../mod.ts";
 * // Label 0 of each row has no position before it; −100 is ignored.
 * if (countScoredLabels([5, 6, -100, 7], 4, PLAIN_SCORING) !== 2) throw new Error();
 * if (countScoredLabels([5, 6, -100, 7], 4, { nVirtual: 3, scoresFirstLabel: true }) !== 3) {
 *   throw new Error("prompt tuning scores label 0");
 * }
 * ```
 */
export function countScoredLabels(
  labels: ArrayLike<number>,
  T: number,
  rule: ScoringRule,
): number {
  const first = firstScoredLabel(rule);
  let n = 0;
  for (let i = 0; i < labels.length; i++) {
    if (i % T >= first && labels[i] !== IGNORE_INDEX) n++;
  }
  return n;
}

/**
 * Writes the targets of the model's positions: `targets` is (B, n+T) over the virtual and real
 * positions, position p scored against the label it predicts or −100. `labels` is (B, T).
 *
 * @example
 * ```ts
 * import { PLAIN_SCORING, shiftLabels } from "../mod.ts";
 * const targets = new Int32Array(3);
 * shiftLabels([7, 8, 9], 1, 3, PLAIN_SCORING, targets);
 * if (targets.join() !== "8,9,-100") throw new Error(targets.join());
 * ```
 */
export function shiftLabels(
  labels: ArrayLike<number>,
  B: number,
  T: number,
  rule: ScoringRule,
  targets: Int32Array,
): void {
  const n = rule.nVirtual, first = firstScoredLabel(rule), width = n + T;
  if (labels.length !== B * T || targets.length !== B * width) {
    throw new RangeError(
      `Cannot shift labels: ${labels.length} labels and ${targets.length} targets for B=${B}, T=${T} and ${n} virtual tokens`,
    );
  }
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < width; p++) {
      const next = p + 1 - n;
      const scored = next >= first && next < T;
      targets[b * width + p] = scored ? labels[b * T + next] : IGNORE_INDEX;
    }
  }
}
