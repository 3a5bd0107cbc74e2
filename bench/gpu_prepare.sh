#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for bench/gpu_run.sh on a device machine, under the run tool's
# 64 MiB carry limit: ../shared/gpu/prepare.sh for the Deno binary, the Vulkan/EGL loader .debs and
# a Deno cache of every entry point the run needs, then that cache packed as deno-dir.tar.gz
# (measured 2026-12-05: the unpacked cache, 25 MB of it js-tiktoken's ranks, made .gpu/ 72.6 MB;
# packed, 12.3 MB). bench/main.ts (`deno task bench`) cannot travel: Deno installs every npm package
# of bench/deno.lock at start, TF.js included (290 MB unpacked), so the run profiles with
# bench/gpu_bench.ts instead.
#   bash bench/gpu_prepare.sh        (from the project root)
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu/deno-dir .gpu/deno-dir.tar.gz
bash ../shared/gpu/prepare.sh mod.ts bench/gpu_bench.ts \
  tests/kernels/gemm_tiled_test.ts tests/kernels/flash_attention_test.ts \
  tests/kernels/flash_attention_model_test.ts tests/models/gpt_test.ts tests/train/trainer_test.ts
tar -C .gpu -czf .gpu/deno-dir.tar.gz deno-dir
rm -rf .gpu/deno-dir
du -sb .gpu | awk '{ printf "%.1f MB in .gpu/ (the carry limit is 67.1 MB)\n", $1 / 1e6 }'
