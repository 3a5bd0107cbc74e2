/**
 * `deno task web [--port N]`: serves the demo page (web/), its bundle (web/dist/, built by
 * `deno task web:build`) and the embedded base model (models/base/) on 127.0.0.1, nothing else.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { integerFlag, UsageError } from "./common.ts";

const HELP = `Usage: deno task web [--port N]

Builds the browser bundle (web/dist/main.js) and serves the demo page on http://127.0.0.1:N/
(default 8000): fine-tune the embedded base model in the browser on WebGPU.

  --port N     the port (0: any free one)
  -h, --help   this text
`;

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  png: "image/png",
  safetensors: "application/octet-stream",
  md: "text/markdown; charset=utf-8",
};

/** Options for {@linkcode serveWeb}. */
export interface ServeWebOptions {
  /** The port on 127.0.0.1 (0, the default: any free one). */
  port?: number;
  /** The checkout whose web/ and models/base/ are served (default: this file's checkout). */
  root?: string;
  /** Where the bundle is (served as /web/dist/); default `<root>/web/dist`. */
  bundleDir?: string;
}

/** A running server: its page's URL and how to stop it. */
export interface WebServer {
  /** The page, e.g. `http://127.0.0.1:8000/web/`. */
  url: string;
  /** Stops the server (and waits for it). */
  shutdown(): Promise<void>;
}

/**
 * Serves the demo page on 127.0.0.1: `/` redirects to `/web/`; `/web/…` is web/ (the bundle's
 * folder in place of web/dist/), `/models/base/…` the embedded base model; anything else, and any
 * path with a `..` part, is 404. Needs read access to those folders and net access to 127.0.0.1.
 *
 * @example
 * ```ts ignore
 * import { serveWeb } from "./web.ts";
 * const server = serveWeb({ port: 0 });
 * console.log(await (await fetch(server.url)).text());
 * await server.shutdown();
 * ```
 */
export function serveWeb(options: ServeWebOptions = {}): WebServer {
  const root = options.root ?? new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const bundleDir = options.bundleDir ?? `${root}/web/dist`;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      if (path === "/" || path === "/web") {
        return new Response(null, { status: 302, headers: { location: "/web/" } });
      }
      const file = resolve(path, root, bundleDir);
      if (file === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
        return new Response("not found", { status: 404 });
      }
      let body: Uint8Array;
      try {
        body = await Deno.readFile(file);
      } catch (e) {
        const status = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory
          ? 404
          : 500;
        return new Response(status === 404 ? "not found" : "cannot read", { status });
      }
      const type = TYPES[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream";
      return new Response(req.method === "HEAD" ? null : body as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": type,
          "content-length": String(body.length),
          "cache-control": "no-store",
        },
      });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/web/`,
    shutdown: () => server.shutdown(),
  };
}

/** The file behind a URL path, or undefined when the path is not one the server serves. */
function resolve(path: string, root: string, bundleDir: string): string | undefined {
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.some((p) => p === ".." || p === "." || p.includes("\\") || p.includes("\0"))) {
    return undefined;
  }
  if (parts[0] === "web" && parts[1] === "dist" && parts.length > 2) {
    return `${bundleDir}/${parts.slice(2).join("/")}`;
  }
  if (parts[0] === "web") {
    return `${root}/web/${parts.length === 1 ? "index.html" : parts.slice(1).join("/")}`;
  }
  if (parts[0] === "models" && parts[1] === "base" && parts.length === 3) {
    return `${root}/models/base/${parts[2]}`;
  }
  return undefined;
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: { port: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
    });
    if (values.help) {
      console.log(HELP);
      Deno.exit(0);
    }
    const server = serveWeb({ port: integerFlag("port", values.port, 8000) });
    console.log(`whet web: ${server.url} (Ctrl-C stops it)`);
  } catch (e) {
    console.error(`whet web: ${(e as Error).message}`);
    if (e instanceof UsageError || e instanceof TypeError) {
      console.error("see deno task web --help");
      Deno.exit(2);
    }
    Deno.exit(1);
  }
}
