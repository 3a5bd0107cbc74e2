/**
 * `deno task generate`: continue text prompts with a GPT-2 model (a Hugging Face GPT-2 folder or a
 * built-in preset with random weights), optionally with an adapter of any PEFT method, and print
 * the result.
 *
 * @module
 */

import {
  applyAdapterFlag,
  integerFlag,
  loadInferenceModel,
  realFlag,
  tokenizerFor,
  UsageError,
} from "./common.ts";
import { parseArgs } from "node:util";
import { generate, type GenerateOptions, Gpu, PRESETS } from "../mod.ts";

const HELP = `Usage: deno task generate (--model DIR | --preset NAME) --prompt TEXT [options]

Continues each prompt with a GPT-2 model and prints prompt + continuation, one block per prompt.

Model:
  --model DIR          a Hugging Face GPT-2 folder (config.json + model.safetensors)
  --preset NAME        a built-in size with random weights, for smoke tests: ${
  Object.keys(PRESETS).join(", ")
}
  --tokenizer T        bytes | tiktoken-gpt2 | PATH (a tokenizer.json or a folder holding one).
                       Default: DIR/tokenizer.json when present, else tiktoken-gpt2 for a
                       50,257-token vocabulary; bytes for a preset
  --adapter DIR        an adapter folder of any method: LoRA, IA³, prompt or prefix tuning in
                       Hugging Face PEFT's layout (adapter_config.json +
                       adapter_model.safetensors), or one whet saved (adapters, full,
                       selective, bitfit); the method comes from the folder

Generation:
  --prompt TEXT        a prompt (repeat for a batch); an empty prompt starts from the
                       tokenizer's end-of-text token
  --max-tokens N       most new tokens per prompt (default 32)
  --temperature X      0 = greedy (default), > 0 samples
  --top-k N            sample among the N most likely tokens (default 0: all)
  --top-p X            nucleus sampling: the most likely tokens up to probability X (default 1)
  --stop TEXT          stop when the output contains TEXT (repeatable; removed from the output)
  --seed N             sampling seed, and the random weights' seed of a preset (default 0)
  --truncate-left      drop the oldest prompt tokens when a prompt leaves no room for
                       --max-tokens (default: an error)
  --no-cache           recompute the whole sequence every token (the reference path; slow)
  -h, --help           this help

Permissions: the task may read files under the current folder only; for a model elsewhere run
  deno run --allow-read=DIR cli/generate.ts --model DIR ...`;

/** Parses argv and runs; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: "string" },
        preset: { type: "string" },
        tokenizer: { type: "string" },
        adapter: { type: "string" },
        prompt: { type: "string", multiple: true },
        "max-tokens": { type: "string" },
        temperature: { type: "string" },
        "top-k": { type: "string" },
        "top-p": { type: "string" },
        stop: { type: "string", multiple: true },
        seed: { type: "string" },
        "truncate-left": { type: "boolean" },
        "no-cache": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`whet generate: ${(e as Error).message}\nRun with --help for the options.`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    if ((values.model === undefined) === (values.preset === undefined)) {
      throw new UsageError("give exactly one of --model DIR and --preset NAME");
    }
    if (values.preset !== undefined && !(values.preset in PRESETS)) {
      throw new UsageError(
        `--preset must be one of ${Object.keys(PRESETS).join(", ")}, got ${
          JSON.stringify(values.preset)
        }`,
      );
    }
    const prompts = values.prompt ?? [];
    if (prompts.length === 0) throw new UsageError("--prompt is required (repeat it for a batch)");
    const options: GenerateOptions = {
      maxNewTokens: integerFlag("max-tokens", values["max-tokens"], 32),
      temperature: realFlag("temperature", values.temperature, 0, (v) => v >= 0, "≥ 0"),
      topK: integerFlag("top-k", values["top-k"], 0),
      topP: realFlag("top-p", values["top-p"], 1, (v) => v > 0 && v <= 1, "in (0, 1]"),
      seed: integerFlag("seed", values.seed, 0),
      truncate: values["truncate-left"] ? "left" : "error",
      cache: !values["no-cache"],
    };
    for (const s of values.stop ?? []) {
      if (s === "") throw new UsageError("--stop must not be empty");
    }

    const gpu = await Gpu.get();
    const model = await loadInferenceModel(gpu, values.model, values.preset, options.seed ?? 0);
    try {
      const tokenizer = await tokenizerFor(
        values.tokenizer,
        values.model,
        model.shape.V,
      );
      if (values.adapter !== undefined) {
        const described = await applyAdapterFlag(
          model,
          values.adapter,
          tokenizer,
          (line) => console.error(`whet generate: ${line}`),
        );
        console.error(`whet generate: adapter ${values.adapter}: ${described}`);
      }
      const ids = prompts.map((p, i) => {
        const encoded = tokenizer.encode(p);
        if (encoded.length > 0) return encoded;
        if (tokenizer.eosId === undefined) {
          throw new UsageError(
            `--prompt ${
              i + 1
            } is empty and tokenizer ${tokenizer.name} has no end-of-text token to start from`,
          );
        }
        return [tokenizer.eosId];
      });
      const started = performance.now();
      const out = await generate(model, ids, {
        ...options,
        tokenizer,
        stop: values.stop ?? [],
      });
      const seconds = (performance.now() - started) / 1000;
      const tokens = out.ids.reduce((n, r) => n + r.length, 0);
      prompts.forEach((p, i) => {
        if (i > 0) console.log();
        const cut = out.promptLengths[i] < ids[i].length
          ? ` (prompt cut to its last ${out.promptLengths[i]} tokens)`
          : "";
        console.error(`--- ${i + 1}: ${out.finishReasons[i]}${cut}`);
        console.log(p + out.text![i]);
      });
      console.error(
        `whet generate: ${tokens} tokens in ${seconds.toFixed(2)} s (${
          (tokens / seconds).toFixed(1)
        } tokens/s) on ${gpu.adapterName}${options.cache ? "" : ", no cache"}`,
      );
    } finally {
      model.release();
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`whet generate: ${e.message}\nRun with --help for the options.`);
      return 2;
    }
    console.error(`whet generate: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
