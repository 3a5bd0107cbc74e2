import assert from "node:assert/strict";
import {
  configToHF,
  gpt2ParameterShapes,
  type GPTConfig,
  LLAMA_PRESETS,
  llamaConfigToHF,
  llamaParameterShapes,
  loadHFCheckpoint,
  loadModelCheckpoint,
  parseHFCheckpoint,
  parseModelCheckpoint,
  parseSafetensors,
  PRESETS,
  saveHFCheckpoint,
  serializeHFCheckpoint,
  serializeSafetensors,
  type TensorData,
} from "../../models/mod.ts";

const tiny: GPTConfig = { ...PRESETS.tiny, n_layer: 2, n_inner: 40 };

/** Random parameters for `cfg` (values from a small LCG, so each tensor differs). */
function params(cfg: GPTConfig, seed = 1): Map<string, TensorData> {
  let s = seed;
  const out = new Map<string, TensorData>();
  for (const [name, shape] of gpt2ParameterShapes(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      data[i] = s / 2 ** 31 - 0.5;
    }
    out.set(name, { shape, data });
  }
  return out;
}

/** A model.safetensors as other tools write it: chosen keys, extra buffers. */
function weights(
  tensors: Map<string, TensorData>,
  key: (name: string) => string,
  extra: [string, TensorData][] = [],
  dtype?: "F16",
): Uint8Array {
  const entries: [string, TensorData][] = [...tensors].map(([n, t]) => [key(n), t]);
  return serializeSafetensors([...entries, ...extra], { dtype });
}

const json = (cfg: GPTConfig) => JSON.parse(JSON.stringify(configToHF(cfg)));

function sameTensors(a: Map<string, TensorData>, b: Map<string, TensorData>): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, t] of a) {
    assert.deepEqual([...b.get(name)!.shape], [...t.shape], name);
    assert.deepEqual(b.get(name)!.data, t.data, name);
  }
}

Deno.test("`gpt2ParameterShapes()` lists GPT-2 small's 148 tensors and 124,439,808 parameters", () => {
  const shapes = gpt2ParameterShapes(PRESETS.gpt2);
  assert.equal(shapes.size, 2 + 12 * 12 + 2);
  let total = 0;
  for (const s of shapes.values()) total += s.reduce((a, b) => a * b, 1);
  assert.equal(total, 124_439_808);
  assert.deepEqual([...shapes.keys()].slice(0, 14), [
    "wte.weight",
    "wpe.weight",
    "h.0.ln_1.weight",
    "h.0.ln_1.bias",
    "h.0.attn.c_attn.weight",
    "h.0.attn.c_attn.bias",
    "h.0.attn.c_proj.weight",
    "h.0.attn.c_proj.bias",
    "h.0.ln_2.weight",
    "h.0.ln_2.bias",
    "h.0.mlp.c_fc.weight",
    "h.0.mlp.c_fc.bias",
    "h.0.mlp.c_proj.weight",
    "h.0.mlp.c_proj.bias",
  ]);
  assert.deepEqual([...shapes.keys()].slice(-2), ["ln_f.weight", "ln_f.bias"]);
  assert.deepEqual(shapes.get("wte.weight"), [50257, 768]);
  assert.deepEqual(shapes.get("wpe.weight"), [1024, 768]);
  assert.deepEqual(shapes.get("h.11.attn.c_attn.weight"), [768, 2304]);
  assert.deepEqual(shapes.get("h.11.mlp.c_fc.weight"), [768, 3072]);
  assert.deepEqual(shapes.get("h.11.mlp.c_proj.weight"), [3072, 768]);
  // n_inner, when set, sizes the MLP.
  assert.deepEqual(gpt2ParameterShapes(tiny).get("h.1.mlp.c_fc.weight"), [32, 40]);
  assert.deepEqual(gpt2ParameterShapes(tiny).get("h.1.mlp.c_proj.bias"), [32]);
});

Deno.test("`serializeHFCheckpoint()` writes save_pretrained's keys, metadata and config.json", () => {
  const tensors = params(tiny);
  const files = serializeHFCheckpoint(tiny, tensors);
  const st = parseSafetensors(files.weights);
  assert.deepEqual({ ...st.metadata }, { format: "pt" });
  assert.deepEqual(
    st.names().sort(),
    [...tensors.keys()].map((n) => "transformer." + n).sort(),
    "transformer. prefix, no lm_head.weight, no attn.bias buffers",
  );
  assert.ok(st.names().every((n) => st.entry(n).dtype === "F32"));
  assert.ok(files.config.endsWith("}\n"));
  assert.ok(
    files.config.startsWith('{\n  "activation_function": "gelu_new",\n  "architectures": [\n'),
    "2-space indent",
  );
  const cfg = JSON.parse(files.config);
  assert.deepEqual(Object.keys(cfg), Object.keys(cfg).sort());
  assert.equal(cfg.n_inner, 40);
});

Deno.test("`saveHFCheckpoint()` and `loadHFCheckpoint()` round-trip a model through a folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tensors = params(tiny, 7);
    const out = `${dir}/nested/ckpt`;
    await saveHFCheckpoint(out, tiny, tensors);
    const names = (await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort();
    assert.deepEqual(names, ["config.json", "model.safetensors"], "no temporary files left");
    const back = await loadHFCheckpoint(out);
    assert.deepEqual(back.config, tiny);
    sameTensors(tensors, back.tensors);

    // BF16 storage: values come back rounded to bfloat16.
    await saveHFCheckpoint(out, tiny, tensors, { dtype: "BF16" });
    const bf = await loadHFCheckpoint(out);
    const w = tensors.get("h.1.attn.c_attn.weight")!.data;
    const r = bf.tensors.get("h.1.attn.c_attn.weight")!.data;
    assert.ok(
      r.every((x, i) => Math.abs(x - w[i]) <= Math.abs(w[i]) * 2 ** -8),
      "within bf16 rounding",
    );
    assert.ok(r.some((x, i) => x !== w[i]), "stored as bf16, not f32");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`parseHFCheckpoint()` accepts unprefixed keys, mask buffers, a tied lm_head and F16", () => {
  const tensors = params(tiny, 3);
  const buffers: [string, TensorData][] = [];
  for (let i = 0; i < tiny.n_layer; i++) {
    buffers.push([`h.${i}.attn.bias`, { shape: [1, 1, 64, 64], data: new Float32Array(64 * 64) }]);
    buffers.push([`h.${i}.attn.masked_bias`, { shape: [], data: new Float32Array([-1e4]) }]);
  }
  buffers.push(["lm_head.weight", tensors.get("wte.weight")!]);
  const ckpt = parseHFCheckpoint(json(tiny), weights(tensors, (n) => n, buffers));
  sameTensors(tensors, ckpt.tensors);

  const prefixed = (n: string) => "transformer." + n;
  const withPrefix = weights(tensors, prefixed, [["transformer.h.0.attn.bias", buffers[0][1]]]);
  sameTensors(tensors, parseHFCheckpoint(json(tiny), withPrefix).tensors);

  const half = parseHFCheckpoint(json(tiny), weights(tensors, prefixed, [], "F16"));
  const w = tensors.get("wpe.weight")!.data;
  const h = half.tensors.get("wpe.weight")!.data;
  assert.ok(
    h.every((x, i) => Math.abs(x - w[i]) <= 2 ** -11),
    "within f16 rounding of values < 0.5",
  );
  assert.ok(h.some((x, i) => x !== w[i]));
});

Deno.test("`parseHFCheckpoint()` rejects an untied lm_head naming it", () => {
  const tensors = params(tiny);
  const head = tensors.get("wte.weight")!;
  const other = { shape: head.shape, data: head.data.slice() };
  other.data[5] += 1;
  assert.throws(
    () => parseHFCheckpoint(json(tiny), weights(tensors, (n) => n, [["lm_head.weight", other]])),
    /"lm_head\.weight" differs from "wte\.weight" \(first at element 5: .*\); whet ties the LM head/,
  );
  const small = { shape: [2, 32], data: new Float32Array(64) };
  assert.throws(
    () => parseHFCheckpoint(json(tiny), weights(tensors, (n) => n, [["lm_head.weight", small]])),
    /tensor "lm_head\.weight" has shape \[2, 32\]; the config needs \[256, 32\]/,
  );
});

Deno.test("`parseHFCheckpoint()` rejects missing, misshapen, unexpected and duplicate tensors naming them", () => {
  const tensors = params(tiny);
  const src = { weightsFile: "ck/model.safetensors" };
  const load = (bytes: Uint8Array) => () => parseHFCheckpoint(json(tiny), bytes, src);
  const prefix = /^Error: Cannot load GPT-2 weights from ck\/model\.safetensors: /;

  const missing = new Map(tensors);
  missing.delete("h.1.ln_2.bias");
  assert.throws(load(weights(missing, (n) => n)), prefix);
  assert.throws(load(weights(missing, (n) => n)), /missing tensor "h\.1\.ln_2\.bias"$/);

  const wrong = new Map(tensors);
  wrong.set("h.0.attn.c_attn.weight", { shape: [96, 32], data: new Float32Array(96 * 32) });
  assert.throws(
    load(weights(wrong, (n) => "transformer." + n)),
    /tensor "transformer\.h\.0\.attn\.c_attn\.weight" has shape \[96, 32\]; the config needs \[32, 96\]/,
  );

  const extra: [string, TensorData][] = [["h.2.ln_1.weight", {
    shape: [32],
    data: new Float32Array(32),
  }]];
  assert.throws(
    load(weights(tensors, (n) => n, extra)),
    /unexpected tensor "h\.2\.ln_1\.weight" \(a GPT-2 checkpoint holds only 28 parameters/,
  );

  const dup: [string, TensorData][] = [["transformer.wpe.weight", tensors.get("wpe.weight")!]];
  assert.throws(
    load(weights(tensors, (n) => n, dup)),
    /tensors "transformer\.wpe\.weight" and "wpe\.weight" are the same parameter/,
  );

  // The shapes come from config.json: a config that disagrees with the weights is named too.
  assert.throws(
    () => parseHFCheckpoint(json({ ...tiny, n_positions: 32 }), weights(tensors, (n) => n)),
    /tensor "wpe\.weight" has shape \[64, 32\]; the config needs \[32, 32\]/,
  );
  assert.throws(
    () =>
      parseHFCheckpoint({ ...json(tiny), n_head: 5 }, weights(tensors, (n) => n), {
        configFile: "ck/config.json",
      }),
    /Invalid GPT config \(ck\/config\.json\): .*"n_head" \(5\)/,
  );
});

Deno.test("`parseHFCheckpoint()` names a non-float parameter tensor", () => {
  const tensors = params(tiny);
  const bytes = weights(tensors, (n) => n);
  // Relabel ln_f.bias (32 × F32 = 128 bytes) as 16 × I64 in the header, same span.
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  header["ln_f.bias"] = { ...header["ln_f.bias"], dtype: "I64", shape: [16] };
  const text = new TextEncoder().encode(JSON.stringify(header));
  const relabelled = new Uint8Array(8 + text.length + bytes.length - 8 - headerLen);
  new DataView(relabelled.buffer).setBigUint64(0, BigInt(text.length), true);
  relabelled.set(text, 8);
  relabelled.set(bytes.subarray(8 + headerLen), 8 + text.length);
  assert.throws(
    () => parseHFCheckpoint(json(tiny), relabelled),
    /tensor "ln_f\.bias" has shape \[16\]; the config needs \[32\]/,
  );
  header["ln_f.bias"].shape = [32];
  header["ln_f.bias"].dtype = "I32";
  const text2 = new TextEncoder().encode(JSON.stringify(header));
  const again = new Uint8Array(8 + text2.length + bytes.length - 8 - headerLen);
  new DataView(again.buffer).setBigUint64(0, BigInt(text2.length), true);
  again.set(text2, 8);
  again.set(bytes.subarray(8 + headerLen), 8 + text2.length);
  assert.throws(
    () => parseHFCheckpoint(json(tiny), again),
    /Cannot decode tensor "ln_f\.bias" .*dtype I32 is not a float type/,
  );
});

Deno.test("`saveHFCheckpoint()` rejects tensors that do not fit the config naming them", async () => {
  const tensors = params(tiny);
  const wrong = new Map(tensors);
  wrong.set("ln_f.weight", { shape: [31], data: new Float32Array(31) });
  await assert.rejects(
    saveHFCheckpoint("/nonexistent/never-written", tiny, wrong),
    /Cannot save checkpoint: tensor "ln_f\.weight" has shape \[31\]; the config needs \[32\]/,
  );
  const missing = new Map(tensors);
  missing.delete("wte.weight");
  assert.throws(() => serializeHFCheckpoint(tiny, missing), /missing tensor "wte\.weight"/);
  const extra = new Map(tensors);
  extra.set("lm_head.weight", tensors.get("wte.weight")!);
  assert.throws(() => serializeHFCheckpoint(tiny, extra), /unexpected tensor "lm_head\.weight"/);
});

Deno.test("`loadHFCheckpoint()` names the file that is missing or broken", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      loadHFCheckpoint(dir),
      new RegExp(`Cannot load checkpoint ${dir}: cannot read ${dir}/config\\.json: `),
    );
    // The config is read and checked before the weights are looked at.
    await Deno.writeTextFile(`${dir}/config.json`, "{ not json");
    await assert.rejects(
      loadHFCheckpoint(dir),
      new RegExp(`${dir}/config\\.json is not valid JSON`),
    );
    const files = serializeHFCheckpoint(tiny, params(tiny));
    await Deno.writeTextFile(`${dir}/config.json`, files.config);
    await Deno.writeTextFile(`${dir}/pytorch_model.bin`, "");
    await assert.rejects(
      loadHFCheckpoint(dir),
      /cannot read .*model\.safetensors: .*\(pytorch_model\.bin exists: only safetensors weights are supported/,
    );
    await Deno.writeFile(
      `${dir}/model.safetensors`,
      files.weights.subarray(0, files.weights.length - 4),
    );
    await assert.rejects(
      loadHFCheckpoint(dir),
      new RegExp(`Cannot read safetensors file ${dir}/model\\.safetensors: tensor .* past the end`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`loadHFCheckpoint()` and `loadModelCheckpoint()` check config ranges before reading the weights", async () => {
  // Issue 14: `n_layer: 2000000` cost 30 s and 3 GB before "Map maximum size exceeded", naming
  // neither file nor field. The weights here are a 4 GiB sparse file: reading them first would
  // show in the time.
  const dir = await Deno.makeTempDir();
  try {
    const files = serializeHFCheckpoint(tiny, params(tiny));
    await Deno.writeFile(`${dir}/model.safetensors`, files.weights);
    await Deno.truncate(`${dir}/model.safetensors`, 2 ** 32);
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { ...json(tiny), n_layer: 2_000_000 },
        /"n_layer" must be an integer in \[1, 1024\], got 2000000/,
      ],
      [{ ...json(tiny), n_embd: 1e9, n_head: 1 }, /"n_embd" must be an integer in \[1, 65536\]/],
      [{ ...json(tiny), vocab_size: 2 ** 40 }, /"vocab_size" must be an integer in \[1, 2097152\]/],
      [
        { ...llamaConfigToHF(LLAMA_PRESETS["llama-tiny"]), num_hidden_layers: 2_000_000 },
        /"num_hidden_layers" must be an integer in \[1, 1024\], got 2000000/,
      ],
      [
        { ...llamaConfigToHF(LLAMA_PRESETS["llama-tiny"]), max_position_embeddings: 1e300 },
        /"max_position_embeddings" must be an integer in \[1, 16777216\]/,
      ],
    ];
    for (const [config, pattern] of cases) {
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
      for (
        const load of [
          loadModelCheckpoint,
          ...(config.model_type === "gpt2" ? [loadHFCheckpoint] : []),
        ]
      ) {
        const started = performance.now();
        await assert.rejects(load(dir), (e: Error) => {
          assert.ok(e.message.includes(`${dir}/config.json`), e.message); // names the file
          assert.match(e.message, pattern); // and the field with its range
          return true;
        });
        assert.ok(
          performance.now() - started < 1000,
          `${pattern}: failed before reading the weights`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint loaders refuse NaN/±Infinity weights naming the tensor unless allowNonFinite", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tensors = params(tiny);
    tensors.get("h.1.mlp.c_fc.bias")!.data[3] = NaN;
    const files = serializeHFCheckpoint(tiny, tensors);
    await Deno.writeFile(`${dir}/model.safetensors`, files.weights);
    await Deno.writeTextFile(`${dir}/config.json`, files.config);
    const refused =
      /Cannot decode tensor "transformer\.h\.1\.mlp\.c_fc\.bias" in file .*model\.safetensors: 1 of its 40 values are not finite \(first: element 3 = NaN\)/;
    await assert.rejects(loadHFCheckpoint(dir), refused);
    await assert.rejects(loadModelCheckpoint(dir), refused);
    assert.throws(() => parseHFCheckpoint(json(tiny), files.weights), refused);
    const allowed = await loadHFCheckpoint(dir, { allowNonFinite: true });
    assert.ok(Number.isNaN(allowed.tensors.get("h.1.mlp.c_fc.bias")!.data[3]));
    const model = await loadModelCheckpoint(dir, { allowNonFinite: true });
    assert.ok(Number.isNaN(model.weights.get("h.1.mlp.c_fc.bias")!.data[3]));

    // Llama: an Infinity in an F16 file.
    const config = LLAMA_PRESETS["smollm-tiny"];
    const llama = new Map(
      [...llamaParameterShapes(config)].map(([name, shape]) => [
        name,
        { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) },
      ]),
    );
    llama.get("model.norm.weight")!.data[0] = 1e6; // past F16's largest finite value: Infinity
    const bytes = serializeSafetensors(llama, { dtype: "F16" });
    assert.throws(
      () => parseModelCheckpoint(llamaConfigToHF(config), bytes),
      /Cannot decode tensor "model\.norm\.weight" .*element 0 = Infinity/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint loaders refuse a tensor stored twice under one name", () => {
  // JSON.parse kept the second entry; now the header is refused naming the tensor.
  const bytes = weights(params(tiny), (n) => n);
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
  const entry = /"ln_f\.bias":\{[^}]*\}/.exec(text)![0];
  const doubled = new TextEncoder().encode(text.trimEnd().slice(0, -1) + "," + entry + "}");
  const out = new Uint8Array(8 + doubled.length + bytes.length - 8 - headerLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(doubled.length), true);
  out.set(doubled, 8);
  out.set(bytes.subarray(8 + headerLen), 8 + doubled.length);
  assert.throws(
    () => parseModelCheckpoint(json(tiny), out, { weightsFile: "ck/model.safetensors" }),
    /Cannot read safetensors file ck\/model\.safetensors: tensor "ln_f\.bias" appears twice/,
  );
});
