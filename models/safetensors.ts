/**
 * safetensors reader and writer.
 *
 * Layout (huggingface/safetensors): 8 bytes little-endian u64 header length N; N bytes of UTF-8
 * JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`;
 * then the data area, with offsets relative to its start.
 *
 * The reader validates what the Rust `safetensors` crate validates (`SafeTensors::read_metadata`
 * and `Metadata::validate`): header at most 100 MB and inside the file, UTF-8 JSON object, known
 * dtypes, each tensor's byte span equal to its element count × dtype size, tensors (sorted by
 * offsets) tiling the data area from 0 with no gap and no overlap, and the last one ending exactly
 * at the end of the file. Every error names the file (when known) and the tensor. Unknown fields
 * inside a tensor entry are ignored, as serde does there. Beyond the crate, a key that appears
 * twice in one JSON object of the header is refused (JSON.parse would silently keep the last one,
 * so a second tensor of the same name would replace the first), and decoding refuses NaN and
 * ±Infinity unless the reader is told to allow them. {@linkcode readSafetensors} reads and checks
 * the header against the file's size before it reads (and allocates) the data.
 *
 * The writer stores every tensor of a file in one dtype (F32, F16 or BF16) and produces the bytes
 * that the Rust crate's `serialize` (and so the Python `safetensors.torch.save_file`) produces for
 * them: tensors sorted by descending dtype alignment, then by name (bytewise), packed back to back from offset 0; compact JSON with `__metadata__` first and
 * each entry's keys in the order dtype, shape, data_offsets; the header padded with spaces to a
 * multiple of 8 bytes so that the data area starts 8-byte aligned. (Metadata keys are written
 * sorted; the Rust crate keeps them in a hash map, whose order is arbitrary.)
 *
 * @module
 */

import { files, type OpenedFile } from "../io/files.ts";

/** safetensors dtypes whose elements are whole bytes, with their sizes in bytes. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  C64: 8,
  I64: 8,
  U64: 8,
});

/** dtypes that {@linkcode Safetensors.tensor} decodes to float32. */
export const FLOAT_DTYPES: readonly string[] = ["F32", "F16", "BF16", "F64"];

/** dtypes the writer can store float32 data as. */
export type WriteDtype = "F32" | "F16" | "BF16";

/** The Rust crate's limit on the header size. */
const MAX_HEADER_BYTES = 100_000_000;

/** A host tensor: a row-major float32 array and its shape. */
export interface TensorData {
  /** Dimensions, outermost first; `[]` is a scalar. */
  readonly shape: readonly number[];
  /** Row-major elements; length is the product of `shape`. */
  readonly data: Float32Array;
}

/** One tensor's header entry. Offsets are relative to the start of the data area. */
export interface SafetensorsEntry {
  /** dtype name as stored, e.g. "F32". */
  readonly dtype: string;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** First byte of the tensor's data. */
  readonly begin: number;
  /** One past the last byte of the tensor's data. */
  readonly end: number;
}

/**
 * A parsed, validated safetensors file. Tensors are decoded on demand, so buffers one does not
 * need (e.g. GPT-2's `attn.bias` masks) cost nothing.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "../mod.ts";
 * const bytes = serializeSafetensors(
 *   new Map([["w", { shape: [2], data: new Float32Array([1, 2]) }]]),
 *   { metadata: { format: "pt" } },
 * );
 * const st = parseSafetensors(bytes);
 * const w = st.tensor("w");
 * if (w.data[1] !== 2 || st.metadata.format !== "pt") throw new Error("round trip failed");
 * ```
 */
export class Safetensors {
  /** The file it was read from, when known. */
  readonly file: string | undefined;
  /** The `__metadata__` map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Header entries, in data-offset order. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  /** Whether {@linkcode tensor} returns NaN and ±Infinity values instead of refusing them. */
  readonly allowNonFinite: boolean;
  readonly #data: Uint8Array;

  /** Use {@linkcode parseSafetensors} or {@linkcode readSafetensors}. */
  constructor(
    data: Uint8Array,
    entries: ReadonlyMap<string, SafetensorsEntry>,
    metadata: Record<string, string>,
    file?: string,
    allowNonFinite = false,
  ) {
    this.#data = data;
    this.entries = entries;
    this.metadata = metadata;
    this.file = file;
    this.allowNonFinite = allowNonFinite;
  }

  /** Tensor names, in data-offset order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The header entry of `name`; throws naming the file when it is absent. */
  entry(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (e === undefined) {
      throw new Error(`Cannot find tensor "${name}" in ${where(this.file)}`);
    }
    return e;
  }

  /** The raw little-endian bytes of `name` (a view into the file, not a copy). */
  bytes(name: string): Uint8Array {
    const e = this.entry(name);
    return this.#data.subarray(e.begin, e.end);
  }

  /**
   * `name` decoded to float32 (a fresh copy): F32 as is, F16 and BF16 exactly, F64 rounded.
   * Other dtypes are an error naming the tensor; so are NaN and ±Infinity values (a corrupt or
   * diverged file) unless the file was read with `allowNonFinite`.
   */
  tensor(name: string): TensorData {
    const t = this.#decode(name);
    if (!this.allowNonFinite) {
      const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
      let count = 0, first = -1;
      for (let i = 0; i < bits.length; i++) {
        if ((bits[i] & 0x7f800000) === 0x7f800000) { // exponent all ones: ±Infinity or NaN
          if (count++ === 0) first = i;
        }
      }
      if (count > 0) {
        throw new Error(
          `Cannot decode tensor "${name}" in ${where(this.file)}: ${count} of its ${bits.length} ` +
            `values are not finite (first: element ${first} = ${t.data[first]}); the weights are ` +
            `corrupt or diverged (read with allowNonFinite: true to load them anyway)`,
        );
      }
    }
    return t;
  }

  #decode(name: string): TensorData {
    const e = this.entry(name);
    const raw = this.bytes(name);
    const n = raw.length / DTYPE_SIZES[e.dtype];
    if (e.dtype === "F32" && LITTLE_ENDIAN) {
      return { shape: [...e.shape], data: new Float32Array(raw.slice().buffer) };
    }
    const out = new Float32Array(n);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    switch (e.dtype) {
      case "F32":
        for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
        break;
      case "F16": {
        const table = f16Table();
        for (let i = 0; i < n; i++) out[i] = table[view.getUint16(2 * i, true)];
        break;
      }
      case "BF16": {
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
        break;
      }
      case "F64":
        for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
        break;
      default:
        throw new Error(
          `Cannot decode tensor "${name}" in ${where(this.file)}: dtype ${e.dtype} is not a ` +
            `float type (supported: ${FLOAT_DTYPES.join(", ")})`,
        );
    }
    return { shape: [...e.shape], data: out };
  }
}

/**
 * Parses and validates safetensors bytes. The returned object keeps a reference to `bytes`.
 *
 * @param bytes the whole file
 * @param file its path, for error messages
 * @param options `allowNonFinite`: let {@linkcode Safetensors.tensor} return NaN and ±Infinity
 * values instead of refusing them (default false)
 *
 * @example
 * ```ts
 * import { parseSafetensors } from "../mod.ts";
 * // An empty file as the Rust crate writes it: length 8, "{}" and six spaces of padding.
 * const bytes = new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
 * if (parseSafetensors(bytes).names().length !== 0) throw new Error("expected no tensors");
 * ```
 */
export function parseSafetensors(
  bytes: Uint8Array,
  file?: string,
  options: { allowNonFinite?: boolean } = {},
): Safetensors {
  const fail = failure(file);
  const n = headerLength(bytes, bytes.length, fail);
  const { entries, metadata } = parseHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, fail);
  return new Safetensors(bytes.subarray(8 + n), entries, metadata, file, options.allowNonFinite);
}

/**
 * Reads and validates a safetensors file (needs read permission for `path`). The header is read
 * and checked against the file's size first, so a file whose header does not fit its size fails
 * before its data is read.
 *
 * @param path the file
 * @param options `allowNonFinite`: let {@linkcode Safetensors.tensor} return NaN and ±Infinity
 * values instead of refusing them (default false)
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const w = { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
 * await writeSafetensors(`${dir}/w.safetensors`, [["w", w]], { metadata: { format: "pt" } });
 * const st = await readSafetensors(`${dir}/w.safetensors`);
 * if (st.names().join() !== "w" || st.metadata.format !== "pt" || st.tensor("w").data[3] !== 4) {
 *   throw new Error("round trip failed");
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readSafetensors(
  path: string,
  options: { allowNonFinite?: boolean } = {},
): Promise<Safetensors> {
  const fail = failure(path);
  const io = (e: unknown): never => {
    throw new Error(`Cannot read safetensors file ${path}: ${(e as Error).message}`, { cause: e });
  };
  let f: OpenedFile | undefined;
  try {
    f = await files().open(path).catch(io);
    const size = f.size;
    const start = await f.read(Math.min(8, size)).catch(io);
    const n = headerLength(start, size, fail);
    const header = await f.read(n).catch(io);
    const { entries, metadata } = parseHeader(header, size - 8 - n, fail);
    const data = await f.read(size - 8 - n).catch(io);
    if (!(await f.atEnd().catch(io))) fail("it grew while being read");
    return new Safetensors(data, entries, metadata, path, options.allowNonFinite);
  } finally {
    f?.close();
  }
}

/** The error thrower of a file: "Cannot read safetensors file X: why". */
function failure(file: string | undefined): (why: string) => never {
  return (why) => {
    throw new Error(`Cannot read safetensors ${where(file)}: ${why}`);
  };
}

/** The header length N from the first 8 bytes, checked against the file's size. */
function headerLength(start: Uint8Array, size: number, fail: (why: string) => never): number {
  if (size < 8) fail(`it is ${size} bytes long, shorter than the 8-byte header length`);
  const headerLen = new DataView(start.buffer, start.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLen);
  if (8 + n > size) fail(`header length ${n} runs past the end of the file (${size} bytes)`);
  return n;
}

/**
 * Parses the header JSON and checks it against a data area of `dataLen` bytes: entries well
 * formed, no key twice, tensors tiling the data area exactly.
 */
function parseHeader(
  bytes: Uint8Array,
  dataLen: number,
  fail: (why: string) => never,
): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail(`header must be a JSON object, got ${jsonType(header)}`);
  }
  const twice = repeatedKey(text);
  if (twice !== undefined) {
    const [key, ...path] = twice;
    fail(
      path.length === 0
        ? `${key === "__metadata__" ? '"__metadata__"' : `tensor ${JSON.stringify(key)}`} ` +
          `appears twice in the header (a JSON reader keeps only the last)`
        : `key ${JSON.stringify(key)} appears twice in ${
          path[0] === "__metadata__"
            ? '"__metadata__"'
            : `the entry of tensor ${JSON.stringify(path[0])}`
        } (a JSON reader keeps only the last)`,
    );
  }

  let metadata: Record<string, string> = {};
  const list: [string, SafetensorsEntry][] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = parseMetadata(value, fail);
    } else {
      list.push([name, parseEntry(name, value, fail)]);
    }
  }

  // As the Rust crate does: sort by (begin, end), then the tensors must tile [0, total).
  list.sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let start = 0;
  let previous: string | undefined;
  for (const [name, e] of list) {
    if (e.begin < start) {
      fail(`tensor "${name}" data_offsets [${e.begin}, ${e.end}] overlap tensor "${previous}"`);
    }
    if (e.begin > start) {
      const after = previous === undefined ? "at the start of the data" : `after "${previous}"`;
      fail(
        `tensor "${name}" data_offsets [${e.begin}, ${e.end}] leave ${
          e.begin - start
        } unused bytes ${after} (tensors must be contiguous)`,
      );
    }
    const need = e.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[e.dtype];
    if (!Number.isSafeInteger(need)) fail(`tensor "${name}" shape [${e.shape}] is too large`);
    if (e.end - e.begin !== need) {
      fail(
        `tensor "${name}" of dtype ${e.dtype} and shape [${e.shape}] needs ${need} bytes but ` +
          `data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin}`,
      );
    }
    start = e.end;
    previous = name;
  }
  if (start > dataLen) {
    fail(
      `tensor "${previous}" ends at data offset ${start}, past the end of the data area ` +
        `(${dataLen} bytes)`,
    );
  }
  if (start < dataLen) {
    const last = previous === undefined ? "the header" : `the last tensor "${previous}"`;
    fail(`${dataLen - start} bytes follow ${last} (the data area must end with the last tensor)`);
  }
  return { entries: new Map(list), metadata };
}

/**
 * The first key that appears twice in one object of valid JSON `text`, followed by the keys of
 * the objects it is nested in (innermost last), or undefined. JSON.parse keeps the last of
 * repeated keys silently, so they are found in the text: one pass, strings skipped whole.
 */
function repeatedKey(text: string): string[] | undefined {
  // One frame per open container: the keys seen (null for an array) and the key it sits under.
  const frames: { keys: Set<string> | null; under: string }[] = [];
  let expectKey = false;
  let lastKey = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const keys = frames.at(-1)?.keys;
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return [key, ...frames.slice(1).map((f) => f.under)];
        keys.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      frames.push({ keys: c === "{" ? new Set() : null, under: lastKey });
      expectKey = c === "{";
    } else if (c === "}" || c === "]") {
      frames.pop();
    } else if (c === ",") {
      expectKey = frames.at(-1)?.keys != null;
    }
  }
  return undefined;
}

/** Options for {@linkcode serializeSafetensors} and {@linkcode writeSafetensors}. */
export interface SafetensorsWriteOptions {
  /** The `__metadata__` map, e.g. `{ format: "pt" }` as transformers writes. Default none. */
  metadata?: Readonly<Record<string, string>>;
  /** Storage dtype of every tensor; F16 and BF16 round to nearest even. Default "F32". */
  dtype?: WriteDtype;
}

/**
 * Serializes tensors to safetensors bytes, byte for byte as the Rust crate / Python library
 * would for the same tensors and dtype (see the module doc for the layout rules).
 *
 * @param tensors name → tensor; names must be unique, well-formed Unicode and not `__metadata__`
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "../mod.ts";
 * const bytes = serializeSafetensors(new Map([["b", { shape: [], data: new Float32Array([1]) }]]));
 * if ((bytes.length - 8) % 8 !== 4) throw new Error("data area should start 8-byte aligned");
 * ```
 */
export function serializeSafetensors(
  tensors: Iterable<readonly [string, TensorData]>,
  options: SafetensorsWriteOptions = {},
): Uint8Array {
  const dtype = options.dtype ?? "F32";
  if (!["F32", "F16", "BF16"].includes(dtype)) {
    throw new Error(`Cannot write safetensors: dtype "${dtype}" is not one of F32, F16, BF16`);
  }
  const encoder = new TextEncoder();
  const items: { name: string; key: Uint8Array; t: TensorData }[] = [];
  const seen = new Set<string>();
  for (const [name, t] of tensors) {
    const fail = (why: string): never => {
      throw new Error(`Cannot write safetensors: tensor "${name}" ${why}`);
    };
    if (name === "__metadata__") fail("uses the reserved name __metadata__");
    if (!name.isWellFormed()) fail("has a name with a lone surrogate (not valid UTF-8)");
    if (seen.has(name)) fail("appears twice");
    seen.add(name);
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) fail(`has an invalid shape [${t.shape}]`);
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) {
      fail(`has shape [${t.shape}] (${count} elements) but ${t.data.length} values`);
    }
    items.push({ name, key: encoder.encode(name), t });
  }
  // The Rust crate sorts by descending dtype alignment, then by name; with one dtype for the
  // whole file that is by name alone: bytewise UTF-8, as Rust's String ordering.
  items.sort((a, b) => compareBytes(a.key, b.key));

  const size = DTYPE_SIZES[dtype];
  const parts: string[] = [];
  const metadata = options.metadata;
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort();
    for (const k of keys) {
      if (typeof metadata[k] !== "string" || !k.isWellFormed() || !metadata[k].isWellFormed()) {
        throw new Error(`Cannot write safetensors: metadata "${k}" must be a well-formed string`);
      }
    }
    const fields = keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    parts.push(`"__metadata__":{${fields.join(",")}}`);
  }
  let offset = 0;
  for (const { name, t } of items) {
    const end = offset + t.data.length * size;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${t.shape.join(",")}],` +
        `"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = encoder.encode(`{${parts.join(",")}}`);
  const headerLen = json.length + ((8 - json.length % 8) % 8);
  const out = new Uint8Array(8 + headerLen + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const { t } of items) {
    const d = t.data;
    if (dtype === "F32") {
      if (LITTLE_ENDIAN) out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
      else for (let i = 0; i < d.length; i++) view.setFloat32(pos + 4 * i, d[i], true);
    } else {
      const encode = dtype === "F16" ? encodeF16 : encodeBF16;
      for (let i = 0; i < d.length; i++) view.setUint16(pos + 2 * i, encode(d[i]), true);
    }
    pos += d.length * size;
  }
  return out;
}

/**
 * Writes tensors to a safetensors file atomically (temporary file in the same folder, then
 * rename). Needs read and write permission for the folder.
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const tensors = new Map([["w", { shape: [3], data: new Float32Array([0.1, 1, -2]) }]]);
 * await writeSafetensors(`${dir}/half.safetensors`, tensors, { dtype: "F16" });
 * const st = await readSafetensors(`${dir}/half.safetensors`);
 * // Stored as F16 (2 bytes each), read back as float32.
 * if (st.entry("w").dtype !== "F16" || st.tensor("w").data[0] !== 0.0999755859375) {
 *   throw new Error("F16 round trip");
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<readonly [string, TensorData]>,
  options: SafetensorsWriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, options));
}

/**
 * Writes `data` to `path` atomically: to a fresh temporary file in the same folder, then renamed
 * over `path`, so readers see the old file or the new one, never a partial one. The temporary
 * file is removed if anything fails.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/config.json`, JSON.stringify({ a: 1 }));
 * await writeFileAtomic(`${dir}/config.json`, JSON.stringify({ a: 2 })); // replaces it whole
 * if (JSON.parse(await Deno.readTextFile(`${dir}/config.json`)).a !== 2) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await files().writeAtomic(path, data);
}

/**
 * Decodes IEEE half-precision bits (0…65535) to a number; exact, including subnormals.
 *
 * @example
 * ```ts
 * import { decodeF16 } from "../mod.ts";
 * if (decodeF16(0x3c00) !== 1 || decodeF16(0xc000) !== -2 || decodeF16(0x0001) !== 2 ** -24) {
 *   throw new Error("bad f16");
 * }
 * ```
 */
export function decodeF16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * Encodes a number as IEEE half-precision bits: the float32 value rounded to nearest even,
 * overflow to ±Infinity, NaN kept NaN (quiet).
 *
 * @example
 * ```ts
 * import { decodeF16, encodeF16 } from "../mod.ts";
 * if (encodeF16(1) !== 0x3c00 || encodeF16(65520) !== 0x7c00) throw new Error("1, and overflow to ∞");
 * if (decodeF16(encodeF16(0.1)) !== 0.0999755859375) throw new Error("0.1 rounds to nearest");
 * ```
 */
export function encodeF16(x: number): number {
  F32[0] = x;
  const b = U32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal result: the count of 2^-24 units, from the 24-bit significand.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may round up to Infinity
  return h;
}

/**
 * Decodes bfloat16 bits (0…65535) to a number (exact: bf16 is the top half of a float32).
 *
 * @example
 * ```ts
 * import { decodeBF16 } from "../mod.ts";
 * if (decodeBF16(0x3f80) !== 1 || decodeBF16(0x4049) !== 3.140625) throw new Error("bad bf16");
 * ```
 */
export function decodeBF16(bits: number): number {
  U32[0] = bits << 16;
  return F32[0];
}

/**
 * Encodes a number as bfloat16 bits: the float32 value rounded to nearest even, NaN kept NaN.
 *
 * @example
 * ```ts
 * import { encodeBF16 } from "../mod.ts";
 * if (encodeBF16(1) !== 0x3f80 || encodeBF16(Math.PI) !== 0x4049) throw new Error("bad bf16");
 * ```
 */
export function encodeBF16(x: number): number {
  F32[0] = x;
  const b = U32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let F16_TABLE: Float32Array | undefined;
function f16Table(): Float32Array {
  if (F16_TABLE === undefined) {
    F16_TABLE = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) F16_TABLE[i] = decodeF16(i);
  }
  return F16_TABLE;
}

function parseMetadata(value: unknown, fail: (why: string) => never): Record<string, string> {
  if (value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    fail(`"__metadata__" must be an object of strings, got ${jsonType(value)}`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (typeof v !== "string") {
      fail(`"__metadata__" entry "${k}" must be a string, got ${jsonType(v)}`);
    }
  }
  // fromEntries defines own properties, so even a key "__proto__" stays plain data.
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseEntry(
  name: string,
  value: unknown,
  fail: (why: string) => never,
): SafetensorsEntry {
  const bad = (why: string): never => fail(`tensor "${name}" ${why}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad(`must be an object {dtype, shape, data_offsets}, got ${jsonType(value)}`);
  }
  const v = value as Record<string, unknown>;
  if (typeof v.dtype !== "string") bad(`has no string "dtype" (got ${jsonType(v.dtype)})`);
  const dtype = v.dtype as string;
  if (!Object.hasOwn(DTYPE_SIZES, dtype)) {
    bad(`has unsupported dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZES)})`);
  }
  if (!Array.isArray(v.shape) || !v.shape.every(isCount)) {
    bad(`"shape" must be an array of non-negative integers, got ${JSON.stringify(v.shape)}`);
  }
  const off = v.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount)) {
    bad(`"data_offsets" must be [begin, end] byte offsets, got ${JSON.stringify(off)}`);
  }
  const [begin, end] = off as number[];
  if (end < begin) bad(`data_offsets [${begin}, ${end}] end before they begin`);
  return { dtype, shape: v.shape as number[], begin, end };
}

function isCount(x: unknown): boolean {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return v === undefined ? "nothing" : `a ${typeof v}`;
}

function where(file: string | undefined): string {
  return file === undefined ? "data" : `file ${file}`;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
