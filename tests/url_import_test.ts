/**
 * whet used as a library by URL: the checkout is served over HTTP on 127.0.0.1 and a separate
 * Deno process, with no config, import map or lockfile and no permission but
 * `--allow-import=127.0.0.1:PORT`, runs tests/url_import/train_script.ts from that server (so its
 * `../../mod.ts` is `http://127.0.0.1:PORT/mod.ts`): tiny GPT + LoRA, a few training steps,
 * greedy generation, ROUGE and BLEU. The same script is also run from the local files; both runs
 * must print the same numbers.
 *
 * Both runs share one DENO_DIR that starts empty: the local run downloads the npm packages that
 * deps.ts pins from the npm registry, exactly as a newcomer's first import does, and the remote run
 * must then need nothing but the served checkout (npm is pointed at a proxy that is not there). So
 * nothing depends on what this machine's own Deno cache holds, and the served modules are not left
 * in it.
 *
 * Needs: `--allow-net=127.0.0.1` (the server), `--allow-run` (the children: `Deno.execPath()`, whose
 * path is not known in advance), `--allow-read` (the checkout and /tmp) and `--allow-write=/tmp`
 * (the children's DENO_DIR and working folder). The local run needs the npm registry.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CONTENT_TYPES, resolveUnder, serveStatic } from "./url_import/static_server.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCRIPT = "tests/url_import/train_script.ts";
/** Port 9 (discard) on 127.0.0.1: nothing listens there. */
const DEAD_PROXY = "http://127.0.0.1:9";

/** The JSON line train_script.ts prints. */
interface ScriptReport {
  moduleUrl: string;
  adapter: string;
  trainable: string[];
  losses: number[];
  generated: string[];
  generatedIds: number[][];
  rougeL: number[];
  bleu: { score: number; signature: string };
  fixed: {
    rouge1: { precision: number; recall: number; fmeasure: number };
    rouge2: { precision: number; recall: number; fmeasure: number };
    rougeL: { precision: number; recall: number; fmeasure: number };
    bleu: string;
  };
  permissions: Record<string, string>;
}

/** Runs `deno <args>` in `cwd` with `env` added; returns stdout, failing with stderr on a non-zero exit. */
async function deno(args: string[], cwd: string, env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `deno ${
        args.join(" ")
      } exited with ${out.code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
    );
  }
  return stdout;
}

/** The last line of `stdout`, parsed. */
function report(stdout: string): ScriptReport {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

Deno.test("tests/url_import/static_server.ts resolves only files under the root with a known type", () => {
  assert.equal(resolveUnder("/srv/x", "/mod.ts"), "/srv/x/mod.ts");
  assert.equal(resolveUnder("/srv/x", "/kernels/gelu.wgsl"), "/srv/x/kernels/gelu.wgsl");
  assert.equal(resolveUnder("/srv/x", "/a%20b.json"), "/srv/x/a b.json");
  assert.equal(resolveUnder("/srv/x", "/../x2/mod.ts"), null);
  assert.equal(resolveUnder("/srv/x", "/%2e%2e/y/mod.ts"), null);
  assert.equal(resolveUnder("/srv/x", "/a/../../etc/passwd.json"), null);
  assert.equal(resolveUnder("/srv/x", "/..%5cmod.ts"), null);
  assert.equal(resolveUnder("/srv/x", "/%00.ts"), null);
  assert.equal(resolveUnder("/srv/x", "/%zz.ts"), null);
  assert.equal(resolveUnder("/srv/x", "/"), null);
  assert.equal(resolveUnder("/srv/x", "/LICENSE"), null);
  assert.equal(resolveUnder("/srv/x", "/.git/config"), null);
  assert.equal(resolveUnder("/srv/x", "/deno.lock"), null);
});

Deno.test("the static server answers with the right content types, 404 and 405", async () => {
  const server = await serveStatic(ROOT);
  try {
    const get = async (path: string, method = "GET") => {
      const res = await fetch(server.origin + path, { method });
      await res.body?.cancel();
      return [res.status, res.headers.get("content-type")];
    };
    assert.deepEqual(await get("/mod.ts"), [200, CONTENT_TYPES[".ts"]]);
    assert.deepEqual(await get("/kernels/gelu.wgsl"), [200, CONTENT_TYPES[".wgsl"]]);
    assert.deepEqual(await get("/deno.json"), [200, CONTENT_TYPES[".json"]]);
    assert.equal((await get("/README.md"))[0], 404);
    assert.equal((await get("/no_such_file.ts"))[0], 404);
    assert.equal((await get("/kernels.ts"))[0], 404);
    assert.equal((await get("/%2e%2e/etc/passwd.json"))[0], 404);
    assert.equal((await get("/mod.ts", "POST"))[0], 405);
    const body = await (await fetch(server.origin + "/mod.ts")).text();
    assert.equal(body, await Deno.readTextFile(join(ROOT, "mod.ts")));
  } finally {
    await server.shutdown();
  }
});

Deno.test("mod.ts imported by URL trains LoRA, generates and scores, with no permission but --allow-import", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "whet_url_import_" });
  const server = await serveStatic(ROOT);
  try {
    // Flags of a plain importer: no config (the child's cwd is an empty folder too), no lockfile,
    // never prompt (so a permission the library wrongly asks for is an error, not a hang).
    const base = ["run", "--no-config", "--no-lock", "--no-prompt"];
    const denoDir = join(dir, "deno_dir");
    const local = report(await deno([...base, join(ROOT, SCRIPT)], dir, { DENO_DIR: denoDir }));
    const hostPort = `127.0.0.1:${server.port}`;
    const remote = report(
      await deno(
        [...base, `--allow-import=${hostPort}`, `${server.origin}/${SCRIPT}`],
        dir,
        // Any npm download would go to a proxy that is not there: what the local run cached must do.
        {
          DENO_DIR: denoDir,
          HTTPS_PROXY: DEAD_PROXY,
          HTTP_PROXY: DEAD_PROXY,
          NO_PROXY: "127.0.0.1",
        },
      ),
    );

    // It really came over HTTP, every module from the server.
    assert.equal(remote.moduleUrl, `${server.origin}/mod.ts`);
    assert.equal(local.moduleUrl, new URL("../mod.ts", import.meta.url).href);
    const fetched = server.requests.map((r) => r.path);
    assert.ok(fetched.includes("/mod.ts"), "the child fetched /mod.ts");
    assert.ok(fetched.includes("/deps.ts"), "the child fetched /deps.ts");
    assert.ok(fetched.some((p) => p.endsWith(".wgsl")), "the child fetched the WGSL kernels");
    assert.deepEqual(server.requests.filter((r) => r.status !== 200), [], "no request failed");

    // No permission was granted, and none was needed.
    for (const [name, state] of Object.entries(remote.permissions)) {
      assert.notEqual(state, "granted", `--${name} was not given`);
    }

    // LoRA on c_attn of both blocks, trained: the loss fell.
    assert.equal(remote.adapter, "LoRA r=4 alpha=8 (scaling 2) on c_attn, 2 modules");
    assert.equal(remote.trainable.length, 4);
    const first = remote.losses[0], last = remote.losses[remote.losses.length - 1];
    assert.equal(remote.losses.length, 30);
    // An untrained byte-level model starts near ln 256 ≈ 5.55 and 30 LoRA steps must move it.
    assert.ok(Math.abs(first - Math.log(256)) < 0.2, `first loss ${first}`);
    assert.ok(last < first - 0.1, `loss fell from ${first} to ${last}`);

    // Generation and scores are well formed.
    assert.equal(remote.generatedIds.length, 2);
    for (const ids of remote.generatedIds) {
      assert.equal(ids.length, 12);
      assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 256));
    }
    for (const f of remote.rougeL) assert.ok(f >= 0 && f <= 1, `ROUGE-L ${f}`);
    assert.ok(remote.bleu.score >= 0 && remote.bleu.score <= 100, `BLEU ${remote.bleu.score}`);
    assert.equal(
      remote.bleu.signature,
      "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    );

    // Fixed strings, scored by hand. Hypothesis "the cat is on the mat", reference "the cat sat on
    // the mat": 5 of 6 unigrams match, 3 of 5 bigrams (the cat, on the, the mat), the LCS is 5.
    // BLEU: 3-grams 1/4 (on the mat), 4-grams 0/3 smoothed to 1/(2·3); geometric mean of
    // 5/6, 3/5, 1/4, 1/6 is 0.3799; equal lengths, so BP = 1.
    const fiveSixths = { precision: 5 / 6, recall: 5 / 6, fmeasure: 5 / 6 };
    assert.deepEqual(remote.fixed.rouge1, fiveSixths);
    assert.deepEqual(remote.fixed.rouge2, { precision: 0.6, recall: 0.6, fmeasure: 0.6 });
    assert.deepEqual(remote.fixed.rougeL, fiveSixths);
    assert.equal(
      remote.fixed.bleu,
      "BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)",
    );

    // The URL import computes exactly what the local files compute.
    assert.deepEqual({ ...remote, moduleUrl: "" }, { ...local, moduleUrl: "" });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
