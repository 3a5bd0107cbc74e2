/**
 * peft/files.ts: a save is verified before it replaces anything (a temporary file read back and
 * compared, then renamed), so a write that does not read back leaves the previous adapter whole
 * and no temporary file behind; configs are read once with errors naming the file and field.
 */

import assert from "node:assert/strict";
import {
  BrowserFiles,
  readAdapterConfigFile,
  readAdapterWeights,
  setFiles,
  writeAdapterFiles,
} from "../../mod.ts";

/** In-memory files whose reads of temporary files come back with one byte changed. */
class CorruptingFiles extends BrowserFiles {
  corrupt = false;
  override async readBytes(path: string | URL): Promise<Uint8Array> {
    const bytes = await super.readBytes(path);
    if (!this.corrupt || !String(path).endsWith(".tmp")) return bytes;
    const out = bytes.slice();
    out[out.length - 1] ^= 1;
    return out;
  }
}

Deno.test("writeAdapterFiles() keeps the previous adapter when the new file does not read back as written", async () => {
  const fs = new CorruptingFiles();
  const before = setFiles(fs);
  try {
    const P = (v: number) => ({ shape: [1, 2], data: new Float32Array([v, v]) });
    await writeAdapterFiles("run/adapter", { peft_type: "PROMPT_TUNING", r: 1 }, [["p", P(1)]]);
    fs.corrupt = true;
    await assert.rejects(
      () => writeAdapterFiles("run/adapter", { peft_type: "PROMPT_TUNING", r: 2 }, [["p", P(2)]]),
      /Cannot write run\/adapter\/adapter_model\.safetensors: the temporary file read back differs/,
    );
    fs.corrupt = false;
    const names = (await fs.readDir("run/adapter")).map((e) => e.name).sort();
    assert.deepEqual(
      names,
      ["adapter_config.json", "adapter_model.safetensors"],
      "no temporary file",
    );
    assert.equal((await readAdapterWeights("run/adapter")).tensor(["p"], [1, 2], "test")[0], 1);
    assert.equal((await readAdapterConfigFile("run/adapter")).get("r"), 1);
  } finally {
    setFiles(before);
  }
});

Deno.test("readAdapterConfigFile() errors name the file and the field", async () => {
  const fs = new BrowserFiles();
  const before = setFiles(fs);
  try {
    await assert.rejects(
      () => readAdapterConfigFile("none"),
      /Cannot read none\/adapter_config\.json/,
    );
    await fs.writeAtomic("a/adapter_config.json", '{"peft_type": "IA3", "task_type": "SEQ_CLS"}');
    const cfg = await readAdapterConfigFile("a/");
    assert.equal(cfg.file, "a/adapter_config.json", "a trailing slash is not doubled");
    assert.throws(
      () => cfg.expect("peft_type", "LORA"),
      /a\/adapter_config\.json: field "peft_type" is "IA3", expected "LORA"/,
    );
    assert.throws(
      () => cfg.refuseUnless("task_type", ["CAUSAL_LM"], "not a causal LM"),
      /field "task_type" is "SEQ_CLS": not a causal LM/,
    );
    await fs.writeAtomic("b/adapter_config.json", "{ not json");
    await assert.rejects(() => readAdapterConfigFile("b"), /Cannot read b\/adapter_config\.json: /);
  } finally {
    setFiles(before);
  }
});
