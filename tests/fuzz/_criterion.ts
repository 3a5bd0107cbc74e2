/**
 * What counts as whet's own error in the fuzz tests.
 *
 * An input's load either returns (a valid load) or throws. What it throws is whet's own error
 * when all of these hold:
 * 1. it is an `Error` (any subclass: whet throws Error, TypeError, RangeError, ConfigError and
 *    DataError on purpose);
 * 2. its message starts with "Cannot " or "Invalid " (whet's wording: "Cannot X: reason",
 *    "Invalid GPT config (file): …");
 * 3. its message contains one of the input's names: the path of the file it was read from (for
 *    a checkpoint: its config.json or model.safetensors; for an override: the `--key` part).
 *
 * The third rule is what separates whet's errors from the engine's: V8 words some of its own
 * errors the same way ("Cannot read properties of null", "Invalid array length") but never puts
 * a path of ours in them, and an error that does not say which file is wrong does not help a
 * user either.
 *
 * Anything else (a non-Error, an engine TypeError or RangeError, a stack overflow) is a crash,
 * and so is an input whose load takes longer than the bound.
 *
 * @module
 */

/** How a thrown value is judged. */
export type Verdict =
  | { kind: "error" }
  | { kind: "crash"; what: string };

/** The verdict on `e`, thrown while loading an input whose names are `names`. */
export function classify(e: unknown, names: readonly string[]): Verdict {
  if (!(e instanceof Error)) {
    return { kind: "crash", what: `threw a non-Error: ${String(e).slice(0, 200)}` };
  }
  const worded = /^(Cannot|Invalid) /.test(e.message);
  if (worded && names.some((n) => e.message.includes(n))) return { kind: "error" };
  const stack = (e.stack ?? "").split("\n").slice(1, 6).join("\n");
  return { kind: "crash", what: `${e.name}: ${e.message.slice(0, 300)}\n${stack}` };
}
