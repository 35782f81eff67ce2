#!/usr/bin/env bash
# The GPU check: encoder, training-step, entity-embedding and gpu-flat linking throughput in one run.
# Needs torch, transformers, pyarrow and numpy only (no Ray, no faiss); finishes within 8 minutes.
# Writes gpu_check.json to $OUT when set (the device machine), else to benchmarks/results/.
#   bash scripts/gpu_check.sh                     # on a GPU node
#   bash scripts/gpu_check.sh --device cpu --tiny # the CPU rehearsal (tests/test_gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 python benchmarks/gpu_check.py "$@"
