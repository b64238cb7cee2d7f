#!/usr/bin/env bash
# Device checks for a machine with a CUDA GPU, in one short run (a few minutes):
#   1. which device and tracker kernel segforget sees (segforget env);
#   2. a CUDA tracker holds exactly the state of a CPU tracker given the same updates
#      (tests/dynamics/test_cuda.py: blocks, flips, duplicates, padding, spread entries,
#      confidence and history; and no update waits for the device: sync debug mode "error");
#   3. the tracker benchmark with the state on the GPU (F3-sized, wall-clock rates).
# Usage: bash scripts/gpu-check.sh [PYTHON]      (default: .venv/bin/python)
set -euo pipefail
PY=${1:-.venv/bin/python}
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device visible to torch; run this on a GPU machine')"
"$PY" -m segforget env
"$PY" -m pytest -q -rs tests/dynamics/test_cuda.py
"$PY" benchmarks/bench_tracker.py --device cuda
