/**
 * The metrics table: every metric by name. Task definitions, the benchmark harness and
 * `deno task eval --metric` all take their metric names from here, so a new metric is one file
 * in `eval/metrics/`, one line in {@linkcode METRICS} and its name in {@linkcode MetricName}.
 *
 * @module
 */

import type { Metric } from "../metric.ts";
import { accuracyMetric } from "./accuracy.ts";
import { bleuMetric } from "./bleu.ts";
import { chrfMetric } from "./chrf.ts";
import { exactMatchMetric } from "./exact_match.ts";
import { rougeMetric } from "./rouge.ts";
import { squadExactMatchMetric } from "./squad_exact_match.ts";
import { tokenF1Metric } from "./token_f1.ts";

/**
 * The name of a metric in {@linkcode METRICS}. Written out (not derived from the table) so the
 * public type names no private one; the compiler refuses a name here without its table line, or
 * a table line without its name here.
 */
export type MetricName =
  | "rouge"
  | "bleu"
  | "chrf"
  | "exact_match"
  | "token_f1"
  | "squad_exact_match"
  | "accuracy";

/**
 * Every metric by name, in the order `--help` lists them.
 *
 * @example
 * ```ts
 * import { METRICS } from "../metrics.ts";
 * if (METRICS.bleu.displayName !== "BLEU" || METRICS.rouge.mainPart !== "rougeL") throw new Error();
 * ```
 */
export const METRICS: Readonly<Record<MetricName, Metric>> = Object.freeze({
  rouge: rougeMetric,
  bleu: bleuMetric,
  chrf: chrfMetric,
  exact_match: exactMatchMetric,
  token_f1: tokenF1Metric,
  squad_exact_match: squadExactMatchMetric,
  accuracy: accuracyMetric,
});

/**
 * The names of {@linkcode METRICS}, in order.
 *
 * @example
 * ```ts
 * import { METRIC_NAMES } from "../metrics.ts";
 * if (!METRIC_NAMES.includes("chrf")) throw new Error();
 * ```
 */
export const METRIC_NAMES: readonly MetricName[] = Object.freeze(
  Object.keys(METRICS) as MetricName[],
);

/**
 * The metric called `name`, or an error listing the names in the table.
 *
 * @example
 * ```ts
 * import { metricByName } from "../metrics.ts";
 * if (metricByName("chrf").displayName !== "chrF2") throw new Error();
 * ```
 */
export function metricByName(name: string): Metric {
  if (!Object.hasOwn(METRICS, name)) {
    throw new RangeError(
      `Cannot find metric ${JSON.stringify(name)}: the metrics are ${METRIC_NAMES.join(", ")}`,
    );
  }
  return METRICS[name as MetricName];
}
