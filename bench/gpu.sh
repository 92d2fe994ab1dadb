#!/usr/bin/env bash
# The device benchmark on the first CUDA GPU: one command, at most ~8 minutes (bench/gpu.py's
# --budget-s 420 stops starting configurations after 7). Figures go to bench/gpu-results/.
# Extra arguments pass through, e.g. bash bench/gpu.sh --device cpu --dry-run
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python
cd "$root"
PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false exec "$python" bench/gpu.py "$@"
