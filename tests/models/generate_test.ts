import assert from "node:assert/strict";
import {
  ByteTokenizer,
  type Ctx,
  generate,
  type GenerateOptions,
  GPT,
  lora,
  Rng,
  sampleToken,
  type Tensor,
  type Tokenizer,
} from "../../mod.ts";
import { assertClose, gpu, randn } from "../helpers.ts";
import { gpt2Ref, type Weights } from "../ref/gpt2.ts";
import { f32Weights, randomWeights, SMALL } from "./_fixtures.ts";

// SMALL has n_positions 16: prompts of 3 and 6 tokens leave room for 10 new ones.
const PROMPTS = [[5, 60, 11], [1, 2, 3, 40, 66, 7]];
const MAX_NEW = 10;
// The cached and uncached paths run the same f32 arithmetic in different orders (M=B rows instead
// of B·T, the decode attention kernel instead of the full one): logits of O(1–10) differ by at most
// 1.4e-6 here; 1e-5 leaves room without hiding a wrong position, key or weight.
const LOGIT_TOL = { rtol: 1e-5, atol: 1e-5 };

async function smallModel(seed = 11): Promise<{ model: GPT; w: Weights }> {
  const w = randomWeights(SMALL, seed);
  const model = await GPT.create(await gpu(), SMALL, {
    weights: f32Weights(w, SMALL),
    trainable: false,
  });
  return { model, w };
}

/** Runs generate and records the logits of each (step, row). */
async function run(model: GPT, prompts: number[][], options: GenerateOptions) {
  const logits = new Map<string, Float32Array>();
  const out = await generate(model, prompts, {
    ...options,
    onLogits: (step, row, l) => logits.set(`${step},${row}`, l.slice()),
  });
  return { ...out, logits };
}

function assertSameLogits(a: Map<string, Float32Array>, b: Map<string, Float32Array>) {
  assert.deepEqual([...a.keys()], [...b.keys()], "the same (step, row) pairs were scored");
  for (const [key, l] of a) assertClose(l, b.get(key)!, LOGIT_TOL, `logits at (step,row)=${key}`);
}

Deno.test("generate() with the KV cache equals the uncached reference and the float64 model (greedy, 2 prompts of different lengths)", async () => {
  const { model, w } = await smallModel();
  const g = model.gpu, waits0 = g.stats.waits;
  const cached = await run(model, PROMPTS, { maxNewTokens: MAX_NEW });
  assert.equal(g.stats.waits - waits0, MAX_NEW, "one GPU wait per generated token");
  const full = await run(model, PROMPTS, { maxNewTokens: MAX_NEW, cache: false });
  assert.deepEqual(cached.ids, full.ids);
  assert.deepEqual(cached.finishReasons, ["length", "length"]);
  assert.equal(cached.ids[0].length, MAX_NEW);
  assertSameLogits(cached.logits, full.logits);
  // Each step's cached logits are the float64 model's at the last position of the sequence so far.
  for (const [key, l] of cached.logits) {
    const [step, row] = key.split(",").map(Number);
    const seq = [...PROMPTS[row], ...cached.ids[row].slice(0, step)];
    const ref = gpt2Ref(SMALL, w, seq, seq.map(() => -100), 1, seq.length).logits;
    const V = SMALL.vocab_size;
    // As tests/models/gpt_test.ts: f32 through two blocks, errors ~1e-6 of the largest logit.
    assertClose(l, ref.subarray((seq.length - 1) * V), { rtol: 1e-4, atol: 1e-5 }, `ref ${key}`);
  }
  model.release();
});

Deno.test("generate() sampling is deterministic for a seed, equal with and without the cache, and varies with the seed", async () => {
  const { model } = await smallModel(12);
  const opts = { maxNewTokens: 8, temperature: 1.3, topK: 20, topP: 0.95, seed: 5 };
  const a = await generate(model, PROMPTS, opts);
  const b = await generate(model, PROMPTS, opts);
  const c = await generate(model, PROMPTS, { ...opts, cache: false });
  const d = await generate(model, PROMPTS, { ...opts, seed: 6 });
  const greedy = await generate(model, PROMPTS, { maxNewTokens: 8 });
  assert.deepEqual(a.ids, b.ids);
  assert.deepEqual(a.ids, c.ids);
  assert.notDeepEqual(a.ids, d.ids);
  assert.notDeepEqual(a.ids, greedy.ids, "sampling at temperature 1.3 differs from greedy");
  model.release();
});

Deno.test("generate() with top-k=1 or top-p→0 equals greedy", async () => {
  const { model } = await smallModel(13);
  const greedy = await generate(model, PROMPTS, { maxNewTokens: 6 });
  const k1 = await generate(model, PROMPTS, { maxNewTokens: 6, temperature: 1, topK: 1, seed: 3 });
  const p0 = await generate(model, PROMPTS, {
    maxNewTokens: 6,
    temperature: 2,
    topP: 1e-9,
    seed: 4,
  });
  assert.deepEqual(k1.ids, greedy.ids);
  assert.deepEqual(p0.ids, greedy.ids);
  model.release();
});

/** A tokenizer whose token i reads "<i>" (several characters, so a stop string can start inside one). */
const angle: Tokenizer = {
  name: "angle",
  vocabSize: SMALL.vocab_size,
  encode: () => {
    throw new Error("not used");
  },
  decode: (ids) => ids.map((i) => `<${i}>`).join(""),
};

Deno.test("generate() stops at token-id stop sequences, the end-of-text id and the token budget, per row", async () => {
  const { model } = await smallModel(14);
  const base = await generate(model, PROMPTS, { maxNewTokens: MAX_NEW });
  const [g0, g1] = base.ids;
  const short = await generate(model, PROMPTS, { maxNewTokens: 3 });
  assert.deepEqual(short.ids, [g0.slice(0, 3), g1.slice(0, 3)]);
  assert.deepEqual(short.finishReasons, ["length", "length"]);

  // A stop sequence taken from row 0's output: the row ends at its first match, which is removed.
  const stop = g0.slice(2, 4);
  const firstMatch = (g: number[]) =>
    g.findIndex((_, i) => g[i] === stop[0] && g[i + 1] === stop[1]);
  const stopped = await generate(model, PROMPTS, { maxNewTokens: MAX_NEW, stop: [stop] });
  assert.deepEqual(stopped.ids[0], g0.slice(0, firstMatch(g0)));
  assert.equal(stopped.finishReasons[0], "stop");
  const m1 = firstMatch(g1);
  assert.deepEqual(stopped.ids[1], m1 >= 0 ? g1.slice(0, m1) : g1);

  // End-of-text: row 0 ends at its first eos (not included); row 1 goes on unaffected, with and
  // without the cache (a finished row keeps running in the batch and must not disturb the other).
  const eos = g0[4];
  const untilEos = (g: number[]) => g.includes(eos) ? g.slice(0, g.indexOf(eos)) : g;
  for (const cache of [true, false]) {
    const ended = await generate(model, PROMPTS, { maxNewTokens: MAX_NEW, eosId: eos, cache });
    assert.deepEqual(ended.ids, [untilEos(g0), untilEos(g1)], `cache=${cache}`);
    assert.equal(ended.finishReasons[0], "eos");
    assert.equal(ended.finishReasons[1], g1.includes(eos) ? "eos" : "length");
  }
  model.release();
});

Deno.test("generate() cuts text at a string stop sequence and drops a token that straddles its start", async () => {
  const { model } = await smallModel(14);
  const base = await generate(model, PROMPTS, { maxNewTokens: MAX_NEW, tokenizer: angle });
  const g0 = base.ids[0];
  assert.equal(base.text![0], angle.decode(g0));
  // "1><2" for tokens 1, 2: starts inside token g0[1]'s text "<1>", one character in.
  const stop = `${g0[1]}><${g0[2]}`;
  const out = await generate(model, PROMPTS, {
    maxNewTokens: MAX_NEW,
    tokenizer: angle,
    stop: [stop],
  });
  const at = base.text![0].indexOf(stop);
  assert.equal(out.text![0], base.text![0].slice(0, at));
  assert.equal(out.finishReasons[0], "stop");
  const whole = g0.findIndex((_, i) => angle.decode(g0.slice(0, i + 1)).length > at);
  assert.deepEqual(out.ids[0], g0.slice(0, whole), "ids stop before the straddling token");
  assert.ok(
    out.text![0].length > angle.decode(out.ids[0]).length,
    "the straddling token's start stays in text",
  );
  // A byte tokenizer: one character per token, so ids and text are cut at the same place.
  const bytes = new ByteTokenizer();
  const b0 = (await generate(model, PROMPTS, { maxNewTokens: MAX_NEW, tokenizer: bytes })).ids[0];
  const s = bytes.decode(b0.slice(3, 5));
  const cut = await generate(model, PROMPTS, {
    maxNewTokens: MAX_NEW,
    tokenizer: bytes,
    stop: [s],
  });
  const i = bytes.decode(b0).indexOf(s);
  assert.deepEqual(cut.ids[0], b0.slice(0, i));
  assert.equal(cut.text![0], bytes.decode(b0.slice(0, i)));
  model.release();
});

Deno.test("generate() with LoRA applied: cached equals uncached, and the adapter changes the output", async () => {
  const { model } = await smallModel(15);
  const plain = await run(model, PROMPTS, { maxNewTokens: 6 });
  const instance = await lora.apply(
    model,
    lora.validate({ r: 2, lora_alpha: 4, target_modules: ["c_attn", "c_proj", "c_fc"] }),
    7,
  );
  const rng = new Rng(9);
  for (const p of instance.added) {
    if (p.name.includes("lora_B")) p.value.write(Float32Array.from(randn(rng, p.value.size, 0.5)));
  }
  const cached = await run(model, PROMPTS, { maxNewTokens: 6 });
  const full = await run(model, PROMPTS, { maxNewTokens: 6, cache: false });
  assert.deepEqual(cached.ids, full.ids);
  assertSameLogits(cached.logits, full.logits);
  assert.throws(
    () => assertClose(cached.logits.get("0,0")!, plain.logits.get("0,0")!, LOGIT_TOL, "0,0"),
    /outside/,
    "LoRA with non-zero B changes the logits",
  );
  model.release();
});

Deno.test("generate() with virtual tokens (prompt embeddings and prefix keys/values): cached equals uncached", async () => {
  const { model } = await smallModel(16);
  const g = model.gpu, C = SMALL.n_embd, n = 2, rng = new Rng(3);
  const emb = g.tensor([n, C], Float32Array.from(randn(rng, n * C)), "virtual.emb");
  const kv = model.blocks.map((_, l) =>
    g.tensor([n, 2 * C], Float32Array.from(randn(rng, n * 2 * C)), `virtual.kv.${l}`)
  );
  const copyRows = (ctx: Ctx, src: Tensor, dst: Tensor, B: number, T: number, w: number) => {
    // rows 0..n−1 of each sequence of dst (B, T, w·…) take src (n, w) at channel offset w' below.
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < n; i++) {
        const rowWidth = dst.size / (B * T);
        ctx.batch.copy(
          { buffer: src.buffer, offset: i * w * 4, size: w * 4 },
          { buffer: dst.buffer, offset: ((b * T + i) * rowWidth + rowWidth - w) * 4, size: w * 4 },
        );
      }
    }
  };
  model.setVirtual({
    n,
    embedForward: (ctx, encoded, B, T) => copyRows(ctx, emb, encoded, B, T, C),
    kvForward: (ctx, layer, qkv, B, T) => copyRows(ctx, kv[layer], qkv, B, T, 2 * C),
  });
  const prompts = [[5, 60, 11], [1, 2, 3, 40, 66]];
  const cached = await run(model, prompts, { maxNewTokens: 8 });
  const full = await run(model, prompts, { maxNewTokens: 8, cache: false });
  assert.deepEqual(cached.ids, full.ids);
  assertSameLogits(cached.logits, full.logits);
  // n_positions 16 − 2 virtual − 8 new leaves 6 prompt tokens.
  await assert.rejects(
    () => generate(model, [[1, 2, 3, 4, 5, 6, 7]], { maxNewTokens: 8 }),
    /prompt 0 has 7 tokens; with maxNewTokens=8 and 2 virtual tokens it must have at most 6/,
  );
  model.setVirtual(null);
  for (const t of [emb, ...kv]) t.release();
  model.release();
});

Deno.test('generate() rejects prompts too long for the budget, or drops their oldest tokens with truncate: "left"', async () => {
  const { model } = await smallModel(17);
  const long = Array.from({ length: 14 }, (_, i) => (i * 7) % SMALL.vocab_size);
  await assert.rejects(
    () => generate(model, [long], { maxNewTokens: 4 }),
    /prompt 0 has 14 tokens; with maxNewTokens=4 it must have at most 12 \(the model takes 16 positions\); pass truncate: "left"/,
  );
  const cut = await generate(model, [long], { maxNewTokens: 4, truncate: "left" });
  const tail = await generate(model, [long.slice(2)], { maxNewTokens: 4 });
  assert.deepEqual(cut.promptLengths, [12]);
  assert.deepEqual(cut.ids, tail.ids);
  await assert.rejects(
    () => generate(model, [[1]], { maxNewTokens: 16, truncate: "left" }),
    /maxNewTokens=16 leaves no room for a prompt in the model's 16 positions/,
  );
  model.release();
});

Deno.test("generate() rejects bad options and prompts with errors naming them", async () => {
  const { model } = await smallModel(18);
  const cases: [number[][], GenerateOptions, RegExp][] = [
    [[], {}, /no prompts/],
    [[[1], []], {}, /prompt 1 is empty/],
    [[[1, 67]], {}, /prompt 0 token 1 is 67, outside the vocabulary 0\.\.66/],
    [[[1]], { topP: 0 }, /topP must be in \(0, 1\], got 0/],
    [[[1]], { temperature: -1 }, /temperature must be a finite number ≥ 0, got -1/],
    [[[1]], { topK: 1.5 }, /topK must be an integer ≥ 0, got 1\.5/],
    [[[1]], { maxNewTokens: -1 }, /maxNewTokens must be a non-negative integer, got -1/],
    [[[1]], { stop: ["x"] }, /stop string "x" needs a tokenizer/],
    [[[1]], { stop: [[]] }, /stop sequence of token ids is empty/],
    [[[1]], { eosId: 67 }, /eosId 67 is outside the vocabulary/],
  ];
  for (const [prompts, opts, re] of cases) {
    await assert.rejects(() => generate(model, prompts, { maxNewTokens: 4, ...opts }), re);
  }
  const none = await generate(model, [[1, 2]], { maxNewTokens: 0 });
  assert.deepEqual(none, { ids: [[]], finishReasons: ["length"], promptLengths: [2] });
  model.release();
});

Deno.test("sampleToken() applies temperature, top-k (keeping ties) and top-p like Hugging Face's warpers", () => {
  const draws = (logits: number[], opts: Parameters<typeof sampleToken>[1], n = 4000) => {
    const rng = new Rng(1), counts = new Array(logits.length).fill(0);
    for (let i = 0; i < n; i++) counts[sampleToken(logits, opts, rng)]++;
    return counts.map((c) => c / n);
  };
  // Greedy takes the first maximum.
  assert.equal(sampleToken([1, 3, 3, 2], {}, new Rng(0)), 1);
  // p(1) = 3/4 at temperature 1; e^(ln3/2) = √3 at temperature 2: p(1) = √3/(1+√3) ≈ 0.634.
  // 4,000 draws: standard error ≈ 0.008, so ±0.03 is nearly 4σ.
  assert.ok(Math.abs(draws([0, Math.log(3)], { temperature: 1 })[1] - 0.75) < 0.03);
  assert.ok(Math.abs(draws([0, Math.log(3)], { temperature: 2 })[1] - 0.634) < 0.03);
  // top-k=2 keeps the two largest and the tie with the second.
  const k = draws([5, 1, 4, 4, 0], { temperature: 1, topK: 2 });
  assert.ok(k[0] > 0 && k[2] > 0 && k[3] > 0 && k[1] === 0 && k[4] === 0, `top-k ${k}`);
  // top-p over probabilities 0.5, 0.3, 0.2: p=0.45 keeps {0}; 0.55 keeps {0,1} (renormalised to
  // 0.625, 0.375); 0.85 keeps all.
  const lp = [0.5, 0.3, 0.2].map(Math.log);
  assert.deepEqual(draws(lp, { temperature: 1, topP: 0.45 }), [1, 0, 0]);
  const p55 = draws(lp, { temperature: 1, topP: 0.55 });
  assert.ok(p55[2] === 0 && Math.abs(p55[0] - 0.625) < 0.03, `top-p 0.55 ${p55}`);
  assert.ok(draws(lp, { temperature: 1, topP: 0.85 })[2] > 0.15);
  assert.throws(() => sampleToken([0, NaN], { temperature: 1 }, new Rng(0)), /logit 1 is NaN/);
  assert.throws(
    () => sampleToken([0, 1], { topP: 1.5 }, new Rng(0)),
    /topP in \(0, 1\]; got 0, 0, 1\.5/,
  );
});

Deno.test("cli/generate.ts main() prints prompt + continuation and names the flag of a bad argument", async () => {
  const { main } = await import("../../cli/generate.ts");
  const log: string[] = [], err: string[] = [];
  const [origLog, origErr] = [console.log, console.error];
  console.log = (...a: unknown[]) => log.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const args = ["--preset", "tiny", "--prompt", "Hi", "--prompt", "Yo", "--max-tokens", "3"];
    assert.equal(await main(args), 0, err.join("\n"));
    assert.equal(log.length, 3, "two prompts, a blank line between");
    assert.ok(log[0].startsWith("Hi") && log[2].startsWith("Yo"), log.join("|"));
    assert.equal(await main([...args, "--no-cache"]), 0);
    assert.deepEqual(log.slice(3), log.slice(0, 3), "the uncached path prints the same text");
    err.length = 0;
    assert.equal(await main(["--preset", "tiny", "--prompt", "Hi", "--top-k", "1.5"]), 2);
    assert.match(err.join("\n"), /--top-k must be an integer ≥ 0, got "1.5"/);
    assert.equal(await main(["--preset", "tiny", "--temprature", "1"]), 2);
    assert.match(err.join("\n"), /Unknown option '--temprature'/);
    assert.equal(await main(["--prompt", "Hi"]), 2);
    assert.match(err.join("\n"), /exactly one of --model DIR and --preset NAME/);
  } finally {
    console.log = origLog;
    console.error = origErr;
  }
});
