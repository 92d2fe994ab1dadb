#!/usr/bin/env bash
# The device benchmark on the first CUDA GPU: one command, at most ~8 minutes (bench/gpu.py's
# --budget-s 420 stops starting configurations after 7). Figures go to bench/gpu-results/.
# Extra arguments pass through, e.g. bash bench/gpu.sh --device cpu --dry-run
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# $PYTHON, else the repository's .venv, else python3 (or python) on the PATH
python="${PYTHON:-$root/.venv/bin/python}"
if ! command -v "$python" >/dev/null; then python="$(command -v python3 || command -v python || true)"; fi
[ -n "$python" ] || { echo "bench/gpu.sh: no Python found; set PYTHON=/path/to/python" >&2; exit 1; }
cd "$root"
PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false exec "$python" bench/gpu.py "$@"
