/**
 * Seeded mutators for the fuzz tests: byte-level edits (bit flips, boundary bytes, inserted,
 * deleted, repeated and truncated ranges, dictionary tokens), text-level edits for line-based
 * formats, and structure-aware JSON edits (a value replaced by an edge case, a key removed, added
 * or repeated). Every function draws only from the `Rng` it is given, so an input is a pure
 * function of its seed.
 *
 * @module
 */

import { Rng } from "../../runtime/rng.ts";
import type { Target } from "./_targets.ts";

const encoder = new TextEncoder();

/** Input `i` of `target`: drawn from a generator seeded by the target's seed and `i` alone. */
export function inputOf(target: Target, i: number): Uint8Array {
  return target.input(new Rng((Math.imul(target.seed, 0x9e3779b1) ^ i) >>> 0));
}

/** One of `items`, uniformly. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** Bytes that sit on boundaries: of signedness, of UTF-8 lead and continuation ranges, of ASCII. */
const EDGE_BYTES = [
  0x00,
  0x01,
  0x0a,
  0x0d,
  0x20,
  0x22,
  0x5c,
  0x7f,
  0x80,
  0xbf,
  0xc0,
  0xc2,
  0xe0,
  0xed,
  0xef,
  0xf0,
  0xf4,
  0xf5,
  0xfe,
  0xff,
];

/**
 * `bytes` with one to four random edits; `dictionary` holds tokens of the format (JSON
 * punctuation, keys, numbers) spliced in whole.
 */
export function mutateBytes(
  rng: Rng,
  bytes: Uint8Array,
  dictionary: readonly string[],
): Uint8Array {
  let out: Uint8Array = bytes.slice();
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(out.length + 1);
    switch (rng.int(9)) {
      case 0: // flip one bit
        if (out.length > 0) out[Math.min(at, out.length - 1)] ^= 1 << rng.int(8);
        break;
      case 1: // a boundary byte
        if (out.length > 0) out[Math.min(at, out.length - 1)] = pick(rng, EDGE_BYTES);
        break;
      case 2: // a random byte
        if (out.length > 0) out[Math.min(at, out.length - 1)] = rng.int(256);
        break;
      case 3: // insert a dictionary token
        out = splice(out, at, 0, encoder.encode(pick(rng, dictionary)));
        break;
      case 4: // delete a range
        out = splice(out, at, 1 + rng.int(16), new Uint8Array());
        break;
      case 5: { // repeat a range in place
        const len = 1 + rng.int(32);
        out = splice(out, at, 0, out.slice(at, at + len));
        break;
      }
      case 6: // truncate
        out = out.slice(0, at);
        break;
      case 7: { // copy a range elsewhere
        const from = rng.int(out.length + 1);
        out = splice(out, at, 0, out.slice(from, from + 1 + rng.int(64)));
        break;
      }
      default: // insert random bytes
        out = splice(out, at, 0, Uint8Array.from({ length: 1 + rng.int(8) }, () => rng.int(256)));
    }
  }
  return out;
}

/** `bytes` with `remove` bytes at `at` replaced by `insert`. */
function splice(bytes: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const end = Math.min(bytes.length, at + remove);
  const out = new Uint8Array(at + insert.length + bytes.length - end);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(end), at + insert.length);
  return out;
}

/** `text` with one to three line-level edits: a line removed, repeated, swapped or cut. */
export function mutateLines(rng: Rng, text: string, dictionary: readonly string[]): string {
  const lines = text.split("\n");
  const edits = 1 + rng.int(3);
  for (let e = 0; e < edits; e++) {
    const i = rng.int(lines.length);
    switch (rng.int(5)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[i] ?? "");
        break;
      case 2: {
        const j = rng.int(lines.length);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        break;
      }
      case 3:
        lines[i] = (lines[i] ?? "").slice(0, rng.int((lines[i]?.length ?? 0) + 1));
        break;
      default: { // a token inside the line
        const line = lines[i] ?? "";
        const at = rng.int(line.length + 1);
        lines[i] = line.slice(0, at) + pick(rng, dictionary) + line.slice(at);
      }
    }
  }
  return lines.join("\n");
}

/** JSON values at the edges of what a field can hold. */
export const EDGE_VALUES: readonly unknown[] = [
  0,
  -1,
  1,
  2,
  3,
  1.5,
  -0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53 + 2,
  2_000_000,
  1e21,
  1e308,
  -1e308,
  5e-324,
  "",
  "a",
  "__proto__",
  "constructor",
  "toString",
  "F32",
  "gpt2",
  "llama",
  "LORA",
  "\u0000",
  "\ud800",
  "x".repeat(10_000),
  null,
  true,
  false,
  [],
  {},
  [0, 1],
  [-1, 2 ** 60],
  { a: 1 },
  { rope_type: "default" },
];

/** Numbers at the edges of sizes, ids and rates. */
const NUMERIC_EDGES = [
  0,
  -1,
  1,
  2,
  3,
  1.5,
  -0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53 + 2,
  2_000_000,
  1e21,
  1e308,
  5e-324,
];

/** Literal JSON texts JSON.stringify cannot produce, spliced in by text: Infinity, depth, size. */
export const JSON_TOKENS: readonly string[] = [
  "1e999",
  "-1e999",
  "-0",
  "9007199254740993",
  "0.1e-400",
  '"\\ud800"',
  '"\\u0000"',
  "[".repeat(2000) + "]".repeat(2000),
  '{"__proto__": {"polluted": 1}}',
  "null",
  "true",
  "[]",
  "{}",
  '""',
  ",",
  ":",
  "{",
  "}",
  "[",
  "]",
  '"',
  "\\",
];

/**
 * A structural edit of parsed JSON: at a random place, a value replaced by an edge value or a
 * random sibling's, a key removed or added, a list emptied or grown. Returns a new value.
 */
export function mutateJson(rng: Rng, value: unknown, keys: readonly string[]): unknown {
  const copy = structuredClone(value);
  // Walk to a random container (the root or something inside it).
  let node: unknown = copy;
  for (let depth = 0; depth < 4 && rng.float() < 0.6; depth++) {
    const children = containers(node);
    if (children.length === 0) break;
    node = pick(rng, children);
  }
  if (typeof node !== "object" || node === null) return pick(rng, EDGE_VALUES);
  const obj = node as Record<string, unknown>;
  const own = Object.keys(obj);
  const key = own.length > 0 && rng.float() < 0.8 ? pick(rng, own) : pick(rng, keys);
  switch (rng.int(6)) {
    case 0:
      if (Array.isArray(obj)) obj.splice(Number(key) || 0, 1);
      else delete obj[key];
      break;
    case 1: // a sibling's value under this key
      obj[key] = own.length > 0 ? structuredClone(obj[pick(rng, own)]) : null;
      break;
    case 2: // a number: the one next to it, or an edge (sizes are where loaders allocate)
      obj[key] = typeof obj[key] !== "number"
        ? 0
        : rng.float() < 0.5
        ? (obj[key] as number) + pick(rng, [-1, 1, 0.5])
        : pick(rng, NUMERIC_EDGES);
      break;
    case 3: // wrapped in a list
      obj[key] = [obj[key]];
      break;
    default:
      obj[key] = structuredClone(pick(rng, EDGE_VALUES));
  }
  return copy;
}

function containers(node: unknown): unknown[] {
  if (typeof node !== "object" || node === null) return [];
  return Object.values(node).filter((v) => typeof v === "object" && v !== null);
}

/**
 * A JSON text for `value` that may go beyond JSON.stringify: a key repeated (JSON.parse keeps the
 * last), a literal token spliced in, or the text cut short.
 */
export function jsonText(rng: Rng, value: unknown): string {
  let text = JSON.stringify(value, null, rng.float() < 0.5 ? 2 : undefined) ?? "null";
  const r = rng.float();
  if (r < 0.15) {
    // Repeat one "key": value pair right after itself.
    const m = [
      ...text.matchAll(/"(?:[^"\\]|\\.)*":\s*(?:"(?:[^"\\]|\\.)*"|-?[\d.eE+-]+|true|false|null)/g),
    ];
    if (m.length > 0) {
      const pair = pick(rng, m);
      const end = pair.index! + pair[0].length;
      text = text.slice(0, end) + "," + pair[0] + text.slice(end);
    }
  } else if (r < 0.3) {
    // A literal token in place of a number.
    const m = [...text.matchAll(/-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g)];
    if (m.length > 0) {
      const n = pick(rng, m);
      text = text.slice(0, n.index!) + pick(rng, JSON_TOKENS) + text.slice(n.index! + n[0].length);
    }
  } else if (r < 0.35) {
    text = text.slice(0, rng.int(text.length + 1));
  }
  return text;
}
