/**
 * cli/web.ts: the demo page's server serves web/, the bundle and models/base on 127.0.0.1, and
 * nothing else of the checkout.
 *
 * @module
 */

import assert from "node:assert/strict";
import { serveWeb } from "../../cli/web.ts";

Deno.test("`serveWeb()` serves the page, its bundle and the base model, and nothing else", async () => {
  const dist = await Deno.makeTempDir({ prefix: "whet-web-dist-" });
  await Deno.writeTextFile(`${dist}/main.js`, "console.log(1);");
  const server = serveWeb({ port: 0, bundleDir: dist });
  const origin = new URL(server.url).origin;
  const get = async (path: string, method = "GET") => {
    const res = await fetch(`${origin}${path}`, { method, redirect: "manual" });
    const body = await res.text();
    return { status: res.status, body, res };
  };
  try {
    assert.ok(server.url.startsWith("http://127.0.0.1:") && server.url.endsWith("/web/"));
    const root = await get("/");
    assert.equal(root.status, 302);
    assert.equal(root.res.headers.get("location"), "/web/");
    const page = await get("/web/");
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module" src="dist\/main.js">/);
    assert.equal(page.res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal((await get("/web/dist/main.js")).body, "console.log(1);");
    assert.equal((await get("/web/style.css")).status, 200);
    const config = await get("/models/base/config.json");
    assert.equal(config.status, 200);
    assert.equal(JSON.parse(config.body).model_type, "gpt2");
    const head = await get("/models/base/model.safetensors", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.ok(Number(head.res.headers.get("content-length")) > 1_000_000);
    for (
      const path of [
        "/deno.json",
        "/web/%2e%2e/deno.json",
        "/models/base/../../deno.json",
        "/models/base%2f..%2f..%2fdeno.json",
        "/models/other/config.json",
        "/web/absent.html",
        "/cli/web.ts",
      ]
    ) {
      const res = await get(path);
      assert.equal(res.status, 404, `${path}: ${res.status}`);
    }
    assert.equal((await get("/web/index.html", "POST")).status, 404);
  } finally {
    await server.shutdown();
    await Deno.remove(dist, { recursive: true });
  }
});
