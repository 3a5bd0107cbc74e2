/**
 * A read-only static file server for the URL-import test: serves one folder on 127.0.0.1 with the
 * content types Deno needs to load it as modules (`.ts` as application/typescript, `.wgsl` as
 * text/plain, `.json` as application/json). Anything else, a missing file, a folder, a path that
 * escapes the root (also through a symbolic link), or a method other than GET/HEAD is a 404 (405 for methods); every request is
 * logged so the test can say what the importer fetched.
 *
 * @module
 */

import { resolve, sep } from "node:path";

/** Content types by file extension; other extensions are not served. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  ".ts": "application/typescript; charset=utf-8",
  ".wgsl": "text/plain; charset=utf-8",
  ".json": "application/json; charset=utf-8",
});

/** One request the server answered. */
export interface LoggedRequest {
  /** The request path, as sent (percent-decoded). */
  path: string;
  /** The status answered. */
  status: number;
}

/** A running server. */
export interface StaticServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly origin: string;
  /** The port the system chose. */
  readonly port: number;
  /** Every request answered so far, in order. */
  readonly requests: readonly LoggedRequest[];
  /** Stops the server and waits for it to finish. */
  shutdown(): Promise<void>;
}

/**
 * The file under `root` that `pathname` names, or null when it escapes the root, contains a NUL
 * or a backslash, or has an extension not in {@linkcode CONTENT_TYPES}.
 */
export function resolveUnder(root: string, pathname: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (path.includes("\0") || path.includes("\\")) return null;
  const base = resolve(root);
  const file = resolve(base, "." + path);
  if (!file.startsWith(base + sep)) return null;
  const dot = file.lastIndexOf(".");
  if (dot < file.lastIndexOf(sep) || !(file.slice(dot) in CONTENT_TYPES)) return null;
  return file;
}

/**
 * Serves `root` on 127.0.0.1 at a port the system chooses (port 0). Needs `--allow-net=127.0.0.1`
 * and read permission for `root`.
 */
export function serveStatic(root: string): Promise<StaticServer> {
  const requests: LoggedRequest[] = [];
  const realRoot = Deno.realPathSync(root);
  const { promise, resolve: ready } = Promise.withResolvers<StaticServer>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen({ port }) {
      ready({
        origin: `http://127.0.0.1:${port}`,
        port,
        requests,
        shutdown: () => server.shutdown(),
      });
    },
  }, async (req) => {
    const url = new URL(req.url);
    const answer = (status: number, body: BodyInit | null, type = "text/plain") => {
      requests.push({ path: safeDecode(url.pathname), status });
      return new Response(req.method === "HEAD" ? null : body, {
        status,
        headers: { "content-type": type },
      });
    };
    if (req.method !== "GET" && req.method !== "HEAD") return answer(405, "method not allowed\n");
    const file = resolveUnder(root, url.pathname);
    if (file === null) return answer(404, "not found\n");
    try {
      const info = await Deno.stat(file);
      // A symbolic link inside the root may still point outside it.
      const real = await Deno.realPath(file);
      if (!info.isFile || !real.startsWith(realRoot + sep)) return answer(404, "not found\n");
      const type = CONTENT_TYPES[file.slice(file.lastIndexOf("."))];
      return answer(200, await Deno.readFile(file), type);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return answer(404, "not found\n");
      throw e;
    }
  });
  return promise;
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
