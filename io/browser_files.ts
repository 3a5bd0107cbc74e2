/**
 * {@linkcode Files} for a browser page: the implementation the web bundle uses (its import map
 * puts this file in place of `./deno_files.ts`). Nothing here needs more than a browser gives a
 * page: reads of paths it does not hold go to `fetch` (relative paths resolved against the page),
 * and everything written (an adapter, a report) stays in memory, where the page offers it as a
 * download ({@linkcode BrowserFiles.written}). Files the user picks (`<input type="file">`) or
 * drops are added with {@linkcode BrowserFiles.addFile} and then read by path like any other.
 *
 * @module
 */

import type { DirEntry, FileInfo, Files, OpenedFile } from "./files.ts";

/** "No such file" from {@linkcode BrowserFiles}; {@linkcode BrowserFiles.isNotFound} knows it. */
class NotFoundError extends Error {}

/** A path as a memory key: no "./" parts, no repeated or trailing "/" (URLs keep their "//"). */
function key(path: string | URL): string {
  const s = String(path);
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s)?.[0] ?? "";
  const rest = s.slice(scheme.length).split("/").filter((p, i) =>
    p !== "." && (p !== "" || i === 0)
  )
    .join("/");
  return scheme + (rest.length > 1 ? rest.replace(/\/+$/, "") : rest);
}

function parentOf(k: string): string {
  const i = k.lastIndexOf("/");
  return i < 0 ? "" : k.slice(0, i);
}

/**
 * File access inside a browser page: written files and added inputs in memory, other reads over
 * `fetch`. Also usable under Deno as an in-memory file system (with a `base` URL for reads that
 * go to the network).
 *
 * @example
 * ```ts
 * import { BrowserFiles } from "../mod.ts";
 * const fs = new BrowserFiles();
 * await fs.addFile("data/train.jsonl", new Blob(['{"prompt":"a","completion":"b"}\n']));
 * await fs.writeAtomic("adapter/adapter_config.json", "{}");
 * const names = (await fs.readDir("adapter")).map((e) => e.name);
 * if (names.join() !== "adapter_config.json") throw new Error(names.join());
 * if (!(await fs.readText("data/train.jsonl")).startsWith('{"prompt"')) throw new Error();
 * ```
 */
export class BrowserFiles implements Files {
  readonly name = "browser";
  readonly #files = new Map<string, Uint8Array>();
  readonly #dirs = new Set<string>();
  readonly #base: string | undefined;
  #serial = 0;

  /** `base`: the URL that relative paths not held in memory are fetched against (default: the page's). */
  constructor(base?: string | URL) {
    this.#base = base === undefined
      ? (globalThis as { location?: { href: string } }).location?.href
      : String(base);
  }

  /** Adds a file the user chose (a `File` or any `Blob`), or bytes or text, under `path`. */
  async addFile(path: string, data: Blob | Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data instanceof Uint8Array
      ? data.slice()
      : new Uint8Array(await data.arrayBuffer());
    this.#put(key(path), bytes);
  }

  /** The bytes written to (or added at) `path`, or undefined when memory holds none there. */
  written(path: string): Uint8Array | undefined {
    return this.#files.get(key(path))?.slice();
  }

  /** Paths of the files held in memory under folder `dir` (all of them without `dir`), sorted. */
  paths(dir?: string): string[] {
    const all = [...this.#files.keys()];
    if (dir === undefined) return all.sort();
    const prefix = `${key(dir)}/`;
    return all.filter((k) => k.startsWith(prefix)).sort();
  }

  #put(k: string, bytes: Uint8Array): void {
    this.#files.set(k, bytes);
    for (let d = parentOf(k); d !== ""; d = parentOf(d)) this.#dirs.add(d);
  }

  #isDir(k: string): boolean {
    if (this.#dirs.has(k)) return true;
    const prefix = `${k}/`;
    for (const f of this.#files.keys()) if (f.startsWith(prefix)) return true;
    return false;
  }

  #url(path: string | URL): URL {
    if (path instanceof URL) return path;
    try {
      return new URL(path, this.#base);
    } catch {
      throw new NotFoundError(
        `Cannot read ${path}: it is not in memory and there is no page URL to fetch it against`,
      );
    }
  }

  async #fetch(path: string | URL, method: "GET" | "HEAD"): Promise<Response> {
    const res = await fetch(this.#url(path), { method });
    if (res.ok) return res;
    await res.body?.cancel();
    const why = `${res.status} ${res.statusText} from ${this.#url(path).href}`.trim();
    if (res.status === 404 || res.status === 410) throw new NotFoundError(`No such file: ${why}`);
    throw new Error(`Cannot fetch ${path}: ${why}`);
  }

  async readBytes(path: string | URL): Promise<Uint8Array> {
    const held = this.#files.get(key(path));
    if (held) return held.slice();
    return new Uint8Array(await (await this.#fetch(path, "GET")).arrayBuffer());
  }

  async readText(path: string | URL): Promise<string> {
    return new TextDecoder().decode(await this.readBytes(path));
  }

  async open(path: string): Promise<OpenedFile> {
    const bytes = await this.readBytes(path);
    let at = 0;
    return {
      size: bytes.length,
      read(n: number): Promise<Uint8Array> {
        if (at + n > bytes.length) {
          return Promise.reject(
            new Error(`the file ended after ${bytes.length - at} of ${n} bytes being read`),
          );
        }
        at += n;
        return Promise.resolve(bytes.slice(at - n, at));
      },
      atEnd: () => Promise.resolve(at >= bytes.length),
      close: () => {},
    };
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const k = key(path);
    const held = this.#files.get(k);
    if (held) return { isFile: true, isDirectory: false, size: held.length };
    if (this.#isDir(k)) return { isFile: false, isDirectory: true, size: 0 };
    try {
      const res = await this.#fetch(path, "HEAD");
      return { isFile: true, isDirectory: false, size: Number(res.headers.get("content-length")) };
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data.slice();
    this.#put(key(path), bytes);
    return Promise.resolve();
  }

  mkdir(path: string): Promise<void> {
    for (let d = key(path); d !== ""; d = parentOf(d)) this.#dirs.add(d);
    return Promise.resolve();
  }

  async makeTempDir(dir: string, prefix: string): Promise<string> {
    const path = `${key(dir)}/${prefix}${(++this.#serial).toString(36)}`;
    await this.mkdir(path);
    return path;
  }

  readDir(path: string): Promise<DirEntry[]> {
    const k = key(path);
    if (!this.#isDir(k)) {
      return Promise.reject(new NotFoundError(`No such folder in memory: ${path}`));
    }
    const entries = new Map<string, DirEntry>();
    const prefix = `${k}/`;
    for (const d of this.#dirs) {
      if (d.startsWith(prefix) && !d.slice(prefix.length).includes("/")) {
        entries.set(d, { name: d.slice(prefix.length), isFile: false, isDirectory: true });
      }
    }
    for (const f of this.#files.keys()) {
      if (!f.startsWith(prefix)) continue;
      const rest = f.slice(prefix.length), slash = rest.indexOf("/");
      const name = slash < 0 ? rest : rest.slice(0, slash);
      if (!entries.has(`${prefix}${name}`)) {
        entries.set(`${prefix}${name}`, { name, isFile: slash < 0, isDirectory: slash >= 0 });
      }
    }
    return Promise.resolve([...entries.values()].sort((a, b) => a.name < b.name ? -1 : 1));
  }

  rename(from: string, to: string): Promise<void> {
    const a = key(from), b = key(to);
    const file = this.#files.get(a);
    if (file) {
      this.#files.delete(a);
      this.#put(b, file);
      return Promise.resolve();
    }
    if (!this.#isDir(a)) return Promise.reject(new NotFoundError(`No such file: ${from}`));
    const moved = [...this.#files].filter(([k]) => k.startsWith(`${a}/`));
    const dirs = [...this.#dirs].filter((d) => d === a || d.startsWith(`${a}/`));
    for (const [k] of moved) this.#files.delete(k);
    for (const d of dirs) this.#dirs.delete(d);
    for (const d of dirs) this.#dirs.add(b + d.slice(a.length));
    for (const [k, v] of moved) this.#put(b + k.slice(a.length), v);
    return this.mkdir(b);
  }

  remove(path: string): Promise<void> {
    const k = key(path);
    if (this.#files.delete(k)) return Promise.resolve();
    if (!this.#isDir(k)) return Promise.reject(new NotFoundError(`No such file: ${path}`));
    for (const f of [...this.#files.keys()]) if (f.startsWith(`${k}/`)) this.#files.delete(f);
    for (const d of [...this.#dirs]) if (d === k || d.startsWith(`${k}/`)) this.#dirs.delete(d);
    return Promise.resolve();
  }

  isNotFound(e: unknown): boolean {
    return e instanceof NotFoundError;
  }
}

/** The platform's file access (see `./files.ts`): the page's, in memory and over `fetch`. */
export const platformFiles: Files = new BrowserFiles();
