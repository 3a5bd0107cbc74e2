/**
 * File access for the whole library, behind one small interface ({@linkcode Files}), so that
 * models, PEFT, training, data and evaluation run unchanged under Deno and in a browser.
 *
 * The implementation in use ({@linkcode files}) is the platform's: `./deno_files.ts` (Deno's file
 * system, atomic temp-and-rename writes) as imported here, and `./browser_files.ts` (`fetch` for
 * reads, an in-memory store for writes and for `File`/`Blob` inputs) in the browser bundle, whose
 * import map (web/import_map.json) puts that file in place of `./deno_files.ts`. So the library
 * code never names `Deno`, and the bundle holds no Deno-only API (tests/web/bundle_test.ts checks
 * it).
 *
 * @module
 */

import { platformFiles } from "./deno_files.ts";

/** What {@linkcode Files.stat} says about a path that exists. */
export interface FileInfo {
  /** A plain file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** Size in bytes (files; 0 or the platform's value for folders). */
  size: number;
}

/** One entry of a folder, as {@linkcode Files.readDir} lists it. */
export interface DirEntry {
  /** The entry's name (no folder part). */
  name: string;
  /** A plain file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
}

/** A file opened for reading in order, as {@linkcode Files.open} returns it. */
export interface OpenedFile {
  /** Its size in bytes when it was opened. */
  readonly size: number;
  /** The next `n` bytes; throws when the file ends before them (it shrank). */
  read(n: number): Promise<Uint8Array>;
  /** Whether nothing is left to read (false: the file grew since it was opened). */
  atEnd(): Promise<boolean>;
  /** Releases the file. */
  close(): void;
}

/**
 * The file operations the library uses. Paths are `/`-separated strings (in a browser, also
 * URLs, resolved against the page). Every write is atomic: a reader sees the old file or the new
 * one, never a partial one.
 */
export interface Files {
  /** Which implementation this is ("deno", "browser"). */
  readonly name: string;
  /** The whole file's bytes. */
  readBytes(path: string | URL): Promise<Uint8Array>;
  /** The whole file as UTF-8 text. */
  readText(path: string | URL): Promise<string>;
  /** The file opened for reading in order (see {@linkcode OpenedFile}). */
  open(path: string): Promise<OpenedFile>;
  /** What is at `path`, or undefined when nothing is. */
  stat(path: string): Promise<FileInfo | undefined>;
  /** Writes `data` (text as UTF-8) to `path` atomically, replacing any file there. */
  writeAtomic(path: string, data: Uint8Array | string): Promise<void>;
  /** Creates the folder and its parents (no error when it exists). */
  mkdir(path: string): Promise<void>;
  /** A new empty folder inside `dir` whose name starts with `prefix`; returns its path. */
  makeTempDir(dir: string, prefix: string): Promise<string>;
  /** The entries of a folder (throws a not-found error, see {@linkcode isNotFound}, if absent). */
  readDir(path: string): Promise<DirEntry[]>;
  /** Renames a file or folder (replacing an existing file, or an empty folder, at `to`). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file, or a folder with everything in it. */
  remove(path: string): Promise<void>;
  /** Whether `e` says that a path does not exist. */
  isNotFound(e: unknown): boolean;
}

let current: Files = platformFiles;

/**
 * The file access in use: Deno's file system under Deno, the browser's in the web bundle.
 *
 * @example
 * ```ts
 * import { files } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await files().writeAtomic(`${dir}/a.txt`, "hello");
 * if (await files().readText(`${dir}/a.txt`) !== "hello") throw new Error("round trip");
 * if (files().name !== "deno") throw new Error(files().name);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function files(): Files {
  return current;
}

/**
 * Puts `f` in place of the file access in use (an in-memory store, OPFS, a test double) and
 * returns the one it replaces, so that a caller can put that back.
 *
 * @example
 * ```ts
 * import { BrowserFiles, files, setFiles } from "../mod.ts";
 * const memory = new BrowserFiles();
 * const before = setFiles(memory);
 * try {
 *   await files().writeAtomic("out/a.txt", "kept in memory");
 *   if (new TextDecoder().decode(memory.written("out/a.txt")) !== "kept in memory") throw new Error();
 * } finally {
 *   setFiles(before);
 * }
 * ```
 */
export function setFiles(f: Files): Files {
  const before = current;
  current = f;
  return before;
}

/**
 * `dir/name` with one `/` between them (`name` alone when `dir` is "" or "."); works for URLs too.
 *
 * @example
 * ```ts
 * import { joinPath } from "../mod.ts";
 * if (joinPath("models/base/", "config.json") !== "models/base/config.json") throw new Error();
 * if (joinPath("http://127.0.0.1:8000/m", "config.json") !== "http://127.0.0.1:8000/m/config.json") {
 *   throw new Error();
 * }
 * ```
 */
export function joinPath(dir: string, name: string): string {
  if (dir === "" || dir === ".") return name;
  return `${dir.replace(/\/+$/, "") || "/"}${dir === "/" ? "" : "/"}${name}`;
}

/**
 * The folder part of a path ("." when it has none).
 *
 * @example
 * ```ts
 * import { dirOf } from "../mod.ts";
 * if (dirOf("runs/a/config.json") !== "runs/a" || dirOf("x.json") !== "." || dirOf("/x") !== "/") {
 *   throw new Error();
 * }
 * ```
 */
export function dirOf(path: string): string {
  const p = path.replace(/\/+$/, "");
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

/**
 * The last part of a path.
 *
 * @example
 * ```ts
 * import { baseName } from "../mod.ts";
 * if (baseName("runs/a/config.json") !== "config.json" || baseName("runs/a/") !== "a") {
 *   throw new Error();
 * }
 * ```
 */
export function baseName(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p.slice(p.lastIndexOf("/") + 1);
}
