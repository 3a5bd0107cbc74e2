#!/usr/bin/env bash
# Issue 18's whole GPU run in ONE device call (../shared/gpu/README.md): adapter, correctness tests
# of the new kernels and of the model on the GPU, whet's measurements with per-kernel-family
# timestamp profiles (bench/gpu_bench.ts: `deno task bench --profile` cannot travel, see
# bench/gpu_prepare.sh), PyTorch + PEFT on the same card (bench/gpu_bench_torch.py), and the ratios
# (summary.json). Everything lands under $OUT; run.log says what passed.
#
# Here, once: `bash bench/gpu_prepare.sh` (fills .gpu/, git-ignored, about 53 MB).
# On the device machine (run tool: carry [".gpu"], timeout_s 600):
#   bash bench/gpu_run.sh
# Verified on lavapipe with tiny shapes (not a measurement):
#   OUT=/tmp/out TESTS=tests/kernels/flash_attention_model_test.ts bash bench/gpu_run.sh --quick
# A second, shorter run: TESTS=none (skips the tests) and BENCH_ARGS="--parts lora,full --steps 5"
# (passed to both benchmarks).
set -uo pipefail
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"
OUT=${OUT:-/tmp/gpu_run}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."

# ../shared/gpu/env.sh, on the device machine only (there deno is not installed; .gpu/ travelled).
if ! command -v deno >/dev/null && [ -s .gpu/deno.gz ]; then
  for f in .gpu/*.deb; do dpkg -x "$f" /; done
  ldconfig
  gzip -dc .gpu/deno.gz >/tmp/deno && chmod +x /tmp/deno && export PATH=/tmp:$PATH
fi
# The Deno cache travels packed (bench/gpu_prepare.sh); --cached-only below: nothing is fetched.
if [ -s .gpu/deno-dir.tar.gz ]; then
  rm -rf /tmp/whet-deno-dir && mkdir -p /tmp/whet-deno-dir
  tar -C /tmp/whet-deno-dir -xzf .gpu/deno-dir.tar.gz
  export DENO_DIR=/tmp/whet-deno-dir/deno-dir
fi
export XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=${DENO_WEBGPU_BACKEND:-vulkan}
if [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi

log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/run.log"; }
# step NAME SECONDS CMD...: runs CMD with a time limit, output to $OUT/NAME.txt, result to run.log.
step() {
  local name=$1 limit=$2
  shift 2
  log "$name: $*"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  log "$name: exit $rc after $((SECONDS - t0)) s"
  tail -n 5 "$OUT/$name.txt" | sed 's/\x1b\[[0-9;]*m//g' | tee -a "$OUT/run.log"
  return $rc
}

log "start ${quick:-full run}"
deno eval 'const a = await navigator.gpu.requestAdapter({powerPreference: "high-performance"}); const i = a?.info; console.log("adapter:", i?.description || i?.device || a, "| vendor", i?.vendor, "| architecture", i?.architecture, "| features", [...(a?.features ?? [])].join(","), "| workgroup storage", a?.limits.maxComputeWorkgroupStorageSize, "| invocations", a?.limits.maxComputeInvocationsPerWorkgroup)' 2>&1 | tee "$OUT/adapter.txt" | tee -a "$OUT/run.log"
command -v nvidia-smi >/dev/null && nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
if [ -z "$quick" ] && grep -qi 'llvmpipe\|lavapipe\|swiftshader' "$OUT/adapter.txt"; then
  log "the adapter is a CPU driver, not the GPU: stopping (run with --quick for a smoke test)"
  exit 3
fi

# Correctness first: the new kernels against their float64 references, then the whole model
# (logits, loss, every gradient, optimizer steps) with the hardware path (tiled GEMM, fused attention).
TESTS=${TESTS:-tests/kernels/gemm_tiled_test.ts tests/kernels/flash_attention_test.ts tests/kernels/flash_attention_model_test.ts tests/models/gpt_test.ts tests/train/trainer_test.ts}
# shellcheck disable=SC2086 # TESTS is a list of files
[ "$TESTS" = none ] || step tests 200 deno test --cached-only --frozen --allow-read --allow-write=/tmp --allow-net=127.0.0.1 --allow-run $TESTS

# whet: GEMM GFLOP/s (tuned), GPT-2 small LoRA and full tokens/s with per-family profiles, generation.
step whet 260 deno run --cached-only --frozen --config deno.json --allow-read --allow-write="$OUT" bench/gpu_bench.ts --out "$OUT" $quick ${BENCH_ARGS:-}

# PyTorch + PEFT on the same card, then the ratios.
if python3 -c 'import torch, transformers, peft' 2>/dev/null; then
  step torch 120 python3 bench/gpu_bench_torch.py --whet "$OUT/whet.json" --out "$OUT/torch.json" $quick ${BENCH_ARGS:-} &&
    step summary 20 deno run --cached-only --frozen --config deno.json --allow-read --allow-write="$OUT" bench/gpu_bench.ts --out "$OUT" \
      --summarize --torch "$OUT/torch.json"
else
  log "torch: python3 cannot import torch, transformers and peft; PyTorch's side skipped"
fi

log "done"
