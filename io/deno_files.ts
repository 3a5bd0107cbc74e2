/**
 * {@linkcode Files} on Deno's file system: the implementation the library uses under Deno (the
 * browser bundle's import map puts `./browser_files.ts` in place of this file). Writes go to a
 * fresh temporary file in the same folder, are made readable like any other file, and are renamed
 * over the target, so readers never see a partial file.
 *
 * @module
 */

import type { DirEntry, FileInfo, Files, OpenedFile } from "./files.ts";

/** Deno's file system as {@linkcode Files}. */
class DenoFiles implements Files {
  readonly name = "deno";

  readBytes(path: string | URL): Promise<Uint8Array> {
    return Deno.readFile(path);
  }

  readText(path: string | URL): Promise<string> {
    return Deno.readTextFile(path);
  }

  async open(path: string): Promise<OpenedFile> {
    const f = await Deno.open(path);
    let size: number;
    try {
      size = (await f.stat()).size;
    } catch (e) {
      f.close();
      throw e;
    }
    return {
      size,
      async read(n: number): Promise<Uint8Array> {
        const out = new Uint8Array(n);
        let at = 0;
        while (at < n) {
          const got = await f.read(out.subarray(at));
          if (got === null) throw new Error(`the file ended after ${at} of ${n} bytes being read`);
          at += got;
        }
        return out;
      },
      async atEnd(): Promise<boolean> {
        return (await f.read(new Uint8Array(1))) === null;
      },
      close: () => f.close(),
    };
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    try {
      const s = await Deno.stat(path);
      return { isFile: s.isFile, isDirectory: s.isDirectory, size: s.size };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
        return undefined;
      }
      throw e;
    }
  }

  async writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
    let tmp: string | undefined;
    try {
      const slash = path.lastIndexOf("/");
      tmp = await Deno.makeTempFile({
        dir: slash < 0 ? "." : path.slice(0, slash) || "/",
        prefix: `.${path.slice(slash + 1)}.`,
        suffix: ".tmp",
      });
      if (typeof data === "string") await Deno.writeTextFile(tmp, data);
      else await Deno.writeFile(tmp, data);
      // Temporary files are created private (0600); the file itself should read like any other.
      if (Deno.build.os !== "windows") await Deno.chmod(tmp, 0o644);
      await Deno.rename(tmp, path);
    } catch (e) {
      if (tmp !== undefined) await Deno.remove(tmp).catch(() => {});
      throw new Error(`Cannot write ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  mkdir(path: string): Promise<void> {
    return Deno.mkdir(path, { recursive: true });
  }

  makeTempDir(dir: string, prefix: string): Promise<string> {
    return Deno.makeTempDir({ dir, prefix });
  }

  async readDir(path: string): Promise<DirEntry[]> {
    const out: DirEntry[] = [];
    for await (const e of Deno.readDir(path)) {
      out.push({ name: e.name, isFile: e.isFile, isDirectory: e.isDirectory });
    }
    return out;
  }

  rename(from: string, to: string): Promise<void> {
    return Deno.rename(from, to);
  }

  remove(path: string): Promise<void> {
    return Deno.remove(path, { recursive: true });
  }

  isNotFound(e: unknown): boolean {
    return e instanceof Deno.errors.NotFound;
  }
}

/** The platform's file access (see `./files.ts`): Deno's. */
export const platformFiles: Files = new DenoFiles();
