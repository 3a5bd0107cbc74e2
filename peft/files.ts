/**
 * PEFT file I/O: the one module of peft/ that reads or writes files. Every method reads and
 * writes its files through here, and this module through io/files.ts (Deno's file system, or a
 * browser page's fetch and memory), so peft/ holds no other file access.
 *
 * Layout (Hugging Face PEFT's `save_pretrained`): `adapter_config.json`, a JSON object written
 * with sorted keys and two-space indentation, beside `adapter_model.safetensors` with metadata
 * `{"format":"pt"}`. A config is read once ({@linkcode readAdapterConfigFile}); its errors name
 * the file and the key. Writes go to a temporary file in the same folder, are read back and
 * checked, then renamed into place, so a folder never holds a partial or unreadable file and a
 * failed save leaves the previous files as they were.
 *
 * whet's own layouts for methods Python's PEFT lacks use the same two files (bottleneck adapters)
 * or `whet_peft.json` + `trainable.safetensors` (full, selective, BitFit: see peft/selective.ts).
 *
 * @module
 */

import { files, joinPath } from "../io/files.ts";
import {
  parseSafetensors,
  type Safetensors,
  serializeSafetensors,
  type TensorData,
  type WriteDtype,
} from "../models/safetensors.ts";

/** PEFT's config file name (`CONFIG_NAME` in peft/utils/constants.py). */
export const ADAPTER_CONFIG = "adapter_config.json";
/** PEFT's weights file name (`SAFETENSORS_WEIGHTS_NAME`). */
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
/** whet's config file for the masking methods (full, selective, BitFit). */
export const WHET_CONFIG = "whet_peft.json";
/** whet's weights file for the masking methods. */
export const WHET_WEIGHTS = "trainable.safetensors";

/** `dir` without trailing slashes, so that file names read `dir/adapter_config.json`. */
function folder(dir: string): string {
  return dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
}

/** Temporary files written by this process get distinct names. */
let serial = 0;

/**
 * `cfg` as JSON with its keys sorted and two-space indentation, as PEFT writes
 * adapter_config.json (`json.dumps(..., indent=2, sort_keys=True)`), plus a final newline.
 *
 * @example
 * ```ts
 * import { sortedJson } from "../mod.ts";
 * if (sortedJson({ r: 8, peft_type: "LORA" }) !== '{\n  "peft_type": "LORA",\n  "r": 8\n}\n') {
 *   throw new Error();
 * }
 * ```
 */
export function sortedJson(cfg: Readonly<Record<string, unknown>>): string {
  const sorted = Object.fromEntries(Object.keys(cfg).sort().map((k) => [k, cfg[k]]));
  return JSON.stringify(sorted, null, 2) + "\n";
}

/**
 * A parsed `adapter_config.json` (or `whet_peft.json`): read once, then asked for fields. Every
 * error it raises names the file and the key.
 *
 * @example
 * ```ts
 * import { readAdapterConfigFile } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/adapter_config.json`, '{"peft_type": "IA3", "r": 4, "x": 1}');
 * const cfg = await readAdapterConfigFile(dir);
 * if (cfg.peftType !== "IA3" || cfg.get("r") !== 4) throw new Error();
 * const warnings: string[] = [];
 * cfg.warnUnknown(["peft_type", "r"], (w) => warnings.push(w));
 * if (!warnings[0].includes('"x"')) throw new Error("unknown fields are named");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class AdapterConfigFile {
  /** The folder. */
  readonly dir: string;
  /** The file, `dir/adapter_config.json`. */
  readonly file: string;
  /** The parsed object. */
  readonly json: Readonly<Record<string, unknown>>;

  /** Use {@linkcode readAdapterConfigFile}. */
  constructor(dir: string, file: string, json: Record<string, unknown>) {
    this.dir = dir;
    this.file = file;
    this.json = json;
  }

  /** `peft_type` when it is a string, else undefined. */
  get peftType(): string | undefined {
    const t = this.json.peft_type;
    return typeof t === "string" ? t : undefined;
  }

  /** Whether the file holds `key` (with any value, null included). */
  has(key: string): boolean {
    return Object.hasOwn(this.json, key);
  }

  /** The value of `key` (undefined when absent). */
  get(key: string): unknown {
    return this.has(key) ? this.json[key] : undefined;
  }

  /** An error "Cannot load FILE: field "KEY" REASON". */
  error(key: string, reason: string): Error {
    return new Error(`Cannot load ${this.file}: field "${key}" ${reason}`);
  }

  /** Throws unless `key` holds `value` (e.g. `peft_type` is `"IA3"`). */
  expect(key: string, value: unknown): void {
    if (this.get(key) !== value) {
      throw this.error(
        key,
        `is ${JSON.stringify(this.get(key))}, expected ${JSON.stringify(value)}`,
      );
    }
  }

  /** Throws unless `key` is absent, null or one of `allowed` (a field whet does not implement). */
  refuseUnless(key: string, allowed: readonly unknown[], why: string): void {
    const v = this.get(key);
    if (v === undefined || v === null || allowed.some((a) => a === v)) return;
    throw this.error(key, `is ${JSON.stringify(v)}: ${why}`);
  }

  /**
   * Calls `warn` once with the fields not in `known`, named (as PEFT warns about keys a newer
   * version wrote); returns them.
   */
  warnUnknown(known: readonly string[], warn: (message: string) => void): string[] {
    const unknown = Object.keys(this.json).filter((k) => !known.includes(k)).sort();
    if (unknown.length > 0) {
      warn(
        `warning: ${this.file}: ignoring unknown field${unknown.length > 1 ? "s" : ""} ${
          unknown.map((k) => `"${k}"`).join(", ")
        }`,
      );
    }
    return unknown;
  }

  /**
   * Runs a method's `validate` on settings taken from this file: an error it throws comes back
   * naming the file (the key is already in its message).
   */
  validate<C>(validate: () => C): C {
    try {
      return validate();
    } catch (e) {
      const message = (e as Error).message.replace(/^Cannot [^:]*: /, "");
      throw new Error(`Cannot load ${this.file}: ${message}`, { cause: e });
    }
  }
}

/**
 * Reads `dir/adapter_config.json` (or another config file of the folder, `name`) once: a missing
 * file, bad JSON or a value that is not an object is an error naming the file.
 *
 * @example
 * ```ts
 * import { readAdapterConfigFile } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/adapter_config.json`, "[1]");
 * try {
 *   await readAdapterConfigFile(dir);
 *   throw new Error("a list is not a config");
 * } catch (e) {
 *   if (!(e as Error).message.includes("adapter_config.json: it must hold a JSON object")) throw e;
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readAdapterConfigFile(
  dir: string,
  name: string = ADAPTER_CONFIG,
): Promise<AdapterConfigFile> {
  const file = `${folder(dir)}/${name}`;
  let json: unknown;
  try {
    json = JSON.parse(await files().readText(file));
  } catch (e) {
    throw new Error(`Cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`Cannot load ${file}: it must hold a JSON object, got ${JSON.stringify(json)}`);
  }
  return new AdapterConfigFile(folder(dir), file, json as Record<string, unknown>);
}

/**
 * Which config file a folder holds: PEFT's `adapter_config.json`, whet's `whet_peft.json` (the
 * masking methods), or neither (null). Needs read permission for the folder.
 */
export async function adapterConfigName(dir: string): Promise<string | null> {
  for (const name of [ADAPTER_CONFIG, WHET_CONFIG]) {
    if ((await files().stat(joinPath(folder(dir), name)))?.isFile) return name;
  }
  return null;
}

/**
 * The tensors of an adapter folder's safetensors file (read once; F32, F16 and BF16 come back as
 * f32), with shape checks whose errors name the file and the tensor.
 *
 * @example
 * ```ts
 * import { readAdapterWeights, writeAdapterFiles } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const l = { shape: [4, 1], data: new Float32Array([1, 1, 2, 1]) };
 * await writeAdapterFiles(dir, { peft_type: "IA3" }, [["m.ia3_l", l]], { dtype: "F16" });
 * const w = await readAdapterWeights(dir);
 * if (w.dtype("m.ia3_l") !== "F16" || w.tensor(["m.ia3_l"], [4, 1], "IA³")[2] !== 2) throw new Error();
 * try {
 *   w.tensor(["m.ia3_l"], [1, 4], "IA³");
 *   throw new Error("a wrong shape is refused");
 * } catch (e) {
 *   if (!(e as Error).message.includes('tensor "m.ia3_l" has shape [4,1], expected [1,4]')) throw e;
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class AdapterWeights {
  /** The file. */
  readonly file: string;
  readonly #st: Safetensors;

  /** Use {@linkcode readAdapterWeights}. */
  constructor(file: string, st: Safetensors) {
    this.file = file;
    this.#st = st;
  }

  /** Tensor names in the file. */
  names(): string[] {
    return this.#st.names();
  }

  /** The `__metadata__` map. */
  get metadata(): Readonly<Record<string, string>> {
    return this.#st.metadata;
  }

  /** The dtype of tensor `key` as stored (`"F32"`, `"F16"`, …). */
  dtype(key: string): string {
    return this.#st.entry(key).dtype;
  }

  /**
   * The first of `keys` present, checked to have `shape`; `what` names the method in errors.
   */
  tensor(keys: readonly string[], shape: readonly number[], what: string): Float32Array {
    const names = this.#st.names();
    const key = keys.find((k) => names.includes(k));
    if (key === undefined) {
      throw new Error(`Cannot load ${what} from ${this.file}: tensor "${keys[0]}" is missing`);
    }
    const t = this.#st.tensor(key);
    if (t.shape.join() !== shape.join()) {
      throw new Error(
        `Cannot load ${what} from ${this.file}: tensor "${key}" has shape [${t.shape}], expected [${shape}]`,
      );
    }
    return t.data;
  }
}

/**
 * Reads `dir/adapter_model.safetensors` (or `name`) once.
 *
 * @example
 * ```ts
 * import { readAdapterWeights, writeAdapterFiles } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const P = { shape: [1, 2], data: new Float32Array([3, 4]) };
 * await writeAdapterFiles(dir, { peft_type: "PROMPT_TUNING" }, [["prompt_embeddings", P]]);
 * if ((await readAdapterWeights(dir)).names().join() !== "prompt_embeddings") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readAdapterWeights(
  dir: string,
  name: string = ADAPTER_WEIGHTS,
): Promise<AdapterWeights> {
  const file = `${folder(dir)}/${name}`;
  let bytes: Uint8Array;
  try {
    bytes = await files().readBytes(file);
  } catch (e) {
    throw new Error(`Cannot read safetensors file ${file}: ${(e as Error).message}`, { cause: e });
  }
  return new AdapterWeights(file, parseSafetensors(bytes, file));
}

/**
 * Writes `bytes` to `path` through a temporary file in the same folder, read back and compared
 * byte for byte (and checked by `verify`) before it is renamed over `path`; on any failure the
 * temporary file is removed and `path` is left as it was.
 */
async function writeVerified(
  path: string,
  bytes: Uint8Array,
  verify: (back: Uint8Array) => void,
): Promise<void> {
  const fs = files();
  const name = path.slice(path.lastIndexOf("/") + 1);
  const tmp = `${path.slice(0, path.length - name.length)}.${name}.${Date.now()}-${serial++}.tmp`;
  try {
    await fs.writeAtomic(tmp, bytes);
    const back = await fs.readBytes(tmp);
    if (back.length !== bytes.length || back.some((b, i) => b !== bytes[i])) {
      throw new Error(`the temporary file read back differs from what was written`);
    }
    verify(back);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.remove(tmp).catch(() => {});
    throw new Error(`Cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Options of {@linkcode writeAdapterFiles}. */
export interface WriteAdapterOptions {
  /** Storage dtype of the tensors. Default `"F32"`. */
  dtype?: WriteDtype;
  /** Config file name. Default `adapter_config.json`. */
  configName?: string;
  /** Weights file name. Default `adapter_model.safetensors`. */
  weightsName?: string;
  /** Extra `__metadata__` entries beside `format: "pt"`. */
  metadata?: Readonly<Record<string, string>>;
}

/**
 * Writes an adapter folder: `adapter_model.safetensors` (metadata `{"format":"pt"}`) and then
 * `adapter_config.json` (sorted keys), each verified and renamed into place (see the module doc).
 * Creates `dir` when needed.
 *
 * @example
 * ```ts
 * import { readAdapterConfigFile, readAdapterWeights, writeAdapterFiles } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const P = { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
 * await writeAdapterFiles(dir, { peft_type: "PROMPT_TUNING" }, [["prompt_embeddings", P]]);
 * const w = await readAdapterWeights(dir);
 * if (w.tensor(["prompt_embeddings"], [2, 3], "prompt tuning")[5] !== 6) throw new Error();
 * if (w.metadata.format !== "pt") throw new Error();
 * if ((await readAdapterConfigFile(dir)).peftType !== "PROMPT_TUNING") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeAdapterFiles(
  dir: string,
  config: Readonly<Record<string, unknown>>,
  tensors: Iterable<readonly [string, TensorData]>,
  options: WriteAdapterOptions = {},
): Promise<void> {
  const d = folder(dir);
  try {
    await files().mkdir(d);
  } catch (e) {
    throw new Error(`Cannot write ${d}: ${(e as Error).message}`, { cause: e });
  }
  const list = [...tensors];
  const weights = `${d}/${options.weightsName ?? ADAPTER_WEIGHTS}`;
  const bytes = serializeSafetensors(list, {
    metadata: { format: "pt", ...options.metadata },
    dtype: options.dtype,
  });
  await writeVerified(weights, bytes, (back) => {
    const st = parseSafetensors(back, weights);
    if (st.names().length !== list.length) throw new Error("a tensor is missing when read back");
  });
  const text = sortedJson(config);
  await writeVerified(
    `${d}/${options.configName ?? ADAPTER_CONFIG}`,
    new TextEncoder().encode(text),
    (back) => void JSON.parse(new TextDecoder().decode(back)),
  );
}
