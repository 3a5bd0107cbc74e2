import assert from "node:assert/strict";
import {
  type BigJob,
  bigTargets,
  blasName,
  compareMeasures,
  parseMeasure,
  parseTorchInfo,
  type TrainMeasure,
} from "./big.ts";

// One line of `python3 bench/torch_peer.py train --model tiny --method lora --steps 1 --batch 2
// --seq 16` on this machine (its torch.__config__.show() shortened).
const TORCH_LINE = JSON.stringify({
  framework: "pytorch",
  torch: "1.13.0a0",
  python: "3.11.2",
  executable: "/usr/bin/python3",
  threads: 2,
  cpus: 2,
  blasLibraries: [
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3",
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so",
  ],
  openblasThreadsEnv: null,
  config: "PyTorch built with: (trimmed)",
  model: "tiny",
  parameters: 35712,
  createSeconds: 0.00324869399992167,
  method: "lora",
  trainable: 2048,
  batch: 2,
  seq: 16,
  steps: 1,
  seconds: 0.2951382060000469,
  cpuSeconds: 0.20312099999999988,
  tokensPerSecond: 108.42378028141471,
  tokensPerCpuSecond: 157.5415638954122,
  losses: [5.5373854637146],
  peakRssBytes: 256520192,
});
const JOB: BigJob = { kind: "train", model: "tiny", method: "lora", steps: 1, batch: 2, seq: 16 };

Deno.test("parseMeasure() and parseTorchInfo() read torch_peer.py's last output line", () => {
  const r = parseMeasure(JOB, `some warning\n${TORCH_LINE}\n`) as TrainMeasure;
  assert.equal(r.framework, "pytorch");
  assert.equal(r.tokensPerCpuSecond, 157.5415638954122);
  assert.deepEqual(r.losses, [5.5373854637146]);
  const info = parseTorchInfo(TORCH_LINE);
  assert.equal(info.threads, 2);
  assert.equal(blasName(info.blasLibraries), "OpenBLAS 0.3.21 (openblas-pthread)");
});

Deno.test("parseMeasure() refuses output that is not the job's result, naming the field", () => {
  const edit = (patch: Record<string, unknown>) =>
    JSON.stringify({ ...JSON.parse(TORCH_LINE), ...patch });
  assert.throws(
    () => parseMeasure(JOB, "Traceback (most recent call last):"),
    /Cannot read the train result of tiny lora: its last output line is not JSON/,
  );
  assert.throws(
    () => parseMeasure(JOB, edit({ tokensPerSecond: null })),
    /"tokensPerSecond" is null, expected a finite number/,
  );
  assert.throws(() => parseMeasure(JOB, edit({ method: "full" })), /it ran full at 2×16/);
  assert.throws(() => parseMeasure(JOB, edit({ losses: [NaN] })), /expected a list of numbers/);
  assert.throws(
    () => parseMeasure({ kind: "generate", model: "tiny", newTokens: 3, prompt: 4 }, TORCH_LINE),
    /"promptTokens" is undefined/,
  );
});

Deno.test("blasName() tells OpenBLAS from the reference BLAS", () => {
  assert.equal(
    blasName(["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"]),
    "reference BLAS (/usr/lib/x86_64-linux-gnu/blas/libblas.so.3)",
  );
  assert.equal(blasName([]), "no BLAS library mapped");
});

Deno.test("bigTargets() judges issue 13's targets from the comparisons", () => {
  const torch = parseMeasure(JOB, TORCH_LINE);
  const whet = (tps: number, rss: number) => ({
    ...torch,
    framework: "whet" as const,
    tokensPerSecond: tps,
    tokensPerCpuSecond: tps,
    peakRssBytes: rss,
  });
  const lora = compareMeasures("LoRA training", whet(50, 2e8), torch);
  const gen = compareMeasures("generation", whet(70, 3e8), torch);
  const t = bigTargets([lora, gen], []);
  assert.deepEqual(t.map((x) => x.met), [true, true, false]);
  assert.equal(t[0].measured, "0.32× per CPU second (0.46× wall), PyTorch on 2 threads");
  // With the peer at two thread counts, a target is judged against its best per CPU second.
  const oneThread = { ...torch, threads: 1, tokensPerCpuSecond: 200 };
  const both = bigTargets([lora, compareMeasures("LoRA training", whet(50, 2e8), oneThread)], []);
  assert.equal(both[0].met, false);
  assert.match(both[0].measured, /^0\.25× per CPU second .*, PyTorch on 1 thread$/);
});
