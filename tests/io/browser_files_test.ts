/**
 * io/browser_files.ts: the file access of the web bundle, run here under Deno: its in-memory
 * folder operations (what checkpoints and adapters use), its reads over `fetch` against a page
 * URL, and the core path (checkpoint and safetensors I/O) running on it unchanged.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BrowserFiles } from "../../io/browser_files.ts";
import { files, setFiles } from "../../io/files.ts";
import { loadModelCheckpoint } from "../../models/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../../models/safetensors.ts";
import { serveWeb } from "../../cli/web.ts";

Deno.test("`BrowserFiles` makes, lists, renames and removes folders in memory", async () => {
  const fs = new BrowserFiles();
  await fs.mkdir("out");
  const tmp = await fs.makeTempDir("out", ".checkpoint.");
  assert.ok(tmp.startsWith("out/.checkpoint."), tmp);
  await fs.writeAtomic(`${tmp}/state.json`, "{}");
  await fs.writeAtomic(`${tmp}/w.bin`, new Uint8Array([1, 2, 3]));
  assert.deepEqual(
    (await fs.readDir("out")).map((e) => [e.name, e.isDirectory]),
    [[tmp.slice(4), true]],
  );
  await fs.rename(tmp, "out/checkpoint");
  assert.deepEqual((await fs.readDir("out/checkpoint")).map((e) => e.name), [
    "state.json",
    "w.bin",
  ]);
  assert.deepEqual(await fs.stat("out/checkpoint/w.bin"), {
    isFile: true,
    isDirectory: false,
    size: 3,
  });
  assert.equal((await fs.stat("out/checkpoint"))?.isDirectory, true);
  assert.equal(await fs.stat(tmp), undefined);
  // Written bytes are copies: changing what was passed in changes nothing stored.
  const data = new Uint8Array([9]);
  await fs.writeAtomic("out/x", data);
  data[0] = 0;
  assert.deepEqual(fs.written("out/x"), new Uint8Array([9]));
  await fs.remove("out/checkpoint");
  assert.deepEqual(fs.paths("out"), ["out/x"]);
  for (
    const op of [() => fs.remove("nowhere"), () => fs.rename("nowhere", "b"), () => fs.readDir("x")]
  ) {
    await assert.rejects(op, (e) => fs.isNotFound(e));
  }
  // Without a page URL, a path not held in memory cannot be fetched: a not-found error naming it.
  await assert.rejects(() => fs.readBytes("models/base/config.json"), /models\/base\/config\.json/);
});

Deno.test("`BrowserFiles` reads and stats over fetch against the page's URL", async () => {
  const server = serveWeb({ port: 0 });
  try {
    const fs = new BrowserFiles(server.url);
    const text = await fs.readText("../models/base/config.json");
    const disk = await Deno.readTextFile(new URL("../../models/base/config.json", import.meta.url));
    assert.equal(text, disk);
    const stat = await fs.stat("../models/base/model.safetensors");
    const size = (await Deno.stat(new URL("../../models/base/model.safetensors", import.meta.url)))
      .size;
    assert.deepEqual(stat, { isFile: true, isDirectory: false, size });
    assert.equal(await fs.stat("../models/base/absent.json"), undefined);
    await assert.rejects(() => fs.readBytes("../models/base/absent.json"), (e) => fs.isNotFound(e));
    // An added file (a user's upload) is read by its path, before any fetch.
    await fs.addFile("../models/base/config.json", new Blob(["{}"]));
    assert.equal(await fs.readText("../models/base/config.json"), "{}");
  } finally {
    await server.shutdown();
  }
});

Deno.test("the checkpoint and safetensors code runs unchanged on `BrowserFiles`", async () => {
  const server = serveWeb({ port: 0 });
  const memory = new BrowserFiles(server.url);
  const before = setFiles(memory);
  try {
    assert.equal(files(), memory);
    const base = new URL("../models/base", server.url).href;
    const web = await loadModelCheckpoint(base);
    setFiles(before);
    const disk = await loadModelCheckpoint(new URL("../../models/base", import.meta.url).pathname);
    setFiles(memory);
    assert.deepEqual(web.config, disk.config);
    assert.deepEqual([...web.weights.keys()], [...disk.weights.keys()]);
    for (const [name, t] of disk.weights) assert.deepEqual(web.weights.get(name)!.data, t.data);
    // Writes stay in memory and read back through the same reader.
    const w = { shape: [2], data: new Float32Array([1, -2]) };
    await writeSafetensors("adapter/a.safetensors", [["w", w]], { metadata: { format: "pt" } });
    assert.ok(memory.written("adapter/a.safetensors")!.length > 8);
    const st = await readSafetensors("adapter/a.safetensors");
    assert.deepEqual(st.tensor("w").data, w.data);
  } finally {
    setFiles(before);
    await server.shutdown();
  }
});
