/**
 * The whole journey with a Llama-family folder, as a user holding SmolLM2 would take it: a
 * checkpoint folder with its own tokenizer.json and chat template, chat JSONL, `runJob` with the
 * default LoRA settings, the adapter in PEFT's Llama layout, and `deno task generate` on the
 * folder plus the adapter.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../cli/config.ts";
import { main as generateMain } from "../../cli/generate.ts";
import { runJob } from "../../cli/job.ts";
import { Gpu, Llama, llamaConfig, readSafetensors, saveModelCheckpoint } from "../../mod.ts";
import { byteLevelJson, CHAT_TEMPLATES, SPECIAL } from "../models/_llama_tokenizers.ts";

/** A SmolLM2-shaped folder: random tiny weights, a byte-level tokenizer and the real chat template. */
async function smolFolder(dir: string): Promise<void> {
  const cfg = llamaConfig("smollm-tiny", {
    vocab_size: 274,
    max_position_embeddings: 128,
    bos_token_id: SPECIAL.smollm2["<|im_start|>"],
    eos_token_id: SPECIAL.smollm2["<|im_end|>"],
  });
  const model = await Llama.create(await Gpu.get(), cfg, { seed: 5 });
  await saveModelCheckpoint(dir, cfg, await model.exportWeights());
  model.release();
  const template = CHAT_TEMPLATES["SmolLM2-Instruct"];
  await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(byteLevelJson("smollm2")));
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    JSON.stringify({
      chat_template: template.chat_template,
      bos_token: template.bos_token,
      eos_token: template.eos_token,
    }),
  );
}

Deno.test("runJob() fine-tunes a Llama-family folder on chat JSONL with its own tokenizer and template; generate reads the folder and the adapter", async () => {
  const out = await Deno.makeTempDir();
  try {
    await smolFolder(`${out}/smol`);
    const lines = Array.from({ length: 24 }, (_, i) =>
      JSON.stringify({
        messages: [
          { role: "user", content: `hello ${i % 3}` },
          { role: "assistant", content: "hello world" },
        ],
      }));
    await Deno.writeTextFile(`${out}/chat.jsonl`, lines.join("\n") + "\n");
    const log: string[] = [];
    const c = await loadConfig(undefined, [
      `--model=${out}/smol`,
      `--data=${out}/chat.jsonl`,
      `--out=${out}/runs`,
      "--name=smol",
      "--steps=8",
      "--lr=0.02",
      "--schedule.batch_size=4",
      "--data.max_length=96",
      "--eval.every=0",
    ]);
    const job = await runJob(c, { log: (l) => log.push(l), progress: false });
    assert.ok(log.some((l) => l.includes(`tokenizer hf:`)), log.join("\n"));
    assert.ok(job.losses[7] < job.losses[0], `loss ${job.losses[0]} → ${job.losses[7]}`);

    // The default targets ("all-linear") expand to the Llama names; PEFT's layout for nn.Linear.
    const adapter = `${out}/runs/smol/adapter`;
    const config = JSON.parse(await Deno.readTextFile(`${adapter}/adapter_config.json`));
    assert.equal(config.fan_in_fan_out, false);
    assert.deepEqual(
      [...config.target_modules].sort(),
      ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    );
    const st = await readSafetensors(`${adapter}/adapter_model.safetensors`);
    const a = st.entry("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    assert.deepEqual(a.shape, [16, 36], "lora_A (r, in)");

    // generate: the folder's tokenizer and template, the adapter, and a stop at <|im_end|>.
    const printed: string[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => printed.push(args.join(" "));
    let code: number;
    try {
      code = await generateMain([
        `--model=${out}/smol`,
        `--adapter=${adapter}`,
        "--prompt=<|im_start|>user\nhello 1<|im_end|>\n<|im_start|>assistant\n",
        "--max-tokens=12",
      ]);
    } finally {
      console.log = original;
    }
    assert.equal(code, 0, printed.join("\n"));
    assert.ok(printed.join("\n").includes("hello 1"), printed.join("\n"));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
