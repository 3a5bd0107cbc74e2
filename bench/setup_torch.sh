#!/bin/sh
# Installs the PyTorch peer of `deno task bench --only big`: Debian's python3-torch (1.13.x on
# bookworm, CPU-only) and OpenBLAS. Debian builds torch against the generic libblas.so.3
# (BLAS_INFO=generic), which is whichever BLAS update-alternatives points it at: with
# python3-torch alone that is the netlib reference BLAS (libblas3), unoptimised loops, so the peer
# would be measured with a handicap; libopenblas0-pthread registers OpenBLAS for libblas.so.3 at a
# higher priority. Nothing comes from pip (unreachable here).
# Run as root (or through sudo). Prints the interpreter that imports torch, its version, BLAS and
# threads.
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "setup_torch.sh: run as root (apt-get installs python3-torch)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3-torch libopenblas0-pthread
# Debian's torch lives in /usr/lib/python3/dist-packages: only Debian's own interpreter sees it. A
# `python3` earlier on PATH (pyenv, a venv) does not; the bench tries `python3`, then /usr/bin/python3.
/usr/bin/python3 - <<'PY'
import torch
print("torch", torch.__version__, "threads", torch.get_num_threads())
print(torch.__config__.show())
torch.ones(2, 2) @ torch.ones(2, 2)  # loads the BLAS
with open("/proc/self/maps") as f:
    print("BLAS loaded:", sorted({l.split()[-1] for l in f if "blas" in l.lower()}))
PY
