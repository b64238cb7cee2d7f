#!/usr/bin/env bash
# Device checks for a machine with a CUDA GPU, in one short run (a few minutes):
#   1. which device and tracker kernel segforget sees (segforget env);
#   2. a CUDA tracker holds exactly the state of a CPU tracker given the same updates
#      (tests/dynamics/test_cuda.py: blocks, flips, duplicates, padding, spread entries,
#      confidence and history; and no update waits for the device: sync debug mode "error");
#   3. the tracker benchmark with the state on the GPU (F3-sized, wall-clock rates, against the
#      GPU's own copy bandwidth);
#   4. the cost of tracking during training on the GPU (bench_training.py, `small` preset);
#   5. the same on the F3-sized `f3` preset (2 epochs per tracking mode; the survey is generated
#      first, ~30 s);
#   6. stage 5 again with checkpoints written before the next epoch (--sync-checkpoints), to
#      show what the background writer saves.
# Every stage runs even if an earlier one fails; the exit status is 1 if any failed. Each
# stage's output goes to the terminal and, with LOG_DIR set, to LOG_DIR/<stage>.log.
# Usage: [LOG_DIR=dir] [STAGES="1 2 3 4 5 6"] bash scripts/gpu-check.sh [PYTHON]
#        (default PYTHON: .venv/bin/python). Without an installed segforget, any Python with
#        torch + CUDA works given PYTHONPATH=src and segforget's dependencies importable (a
#        stock GPU image typically lacks zarr, numcodecs, donfig, google-crc32c, segyio and
#        segmentation-models-pytorch: install them, e.g. from wheels, with --no-deps).
# Measured on one H200: stages 1-5 take about 3.5 minutes (stage 5 generates the f3 survey).
set -uo pipefail
PY=${1:-.venv/bin/python}
STAGES=${STAGES:-1 2 3 4 5 6}
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device visible to torch; run this on a GPU machine')" || exit 2

failed=()
stage() {  # stage NUMBER NAME COMMAND...
    local number=$1 name=$2
    shift 2
    [[ " $STAGES " == *" $number "* ]] || return 0
    echo "=== stage $number: $name ($(date -u +%H:%M:%S))"
    local log=/dev/null
    [[ -n "${LOG_DIR:-}" ]] && mkdir -p "$LOG_DIR" && log="$LOG_DIR/$number-$name.log"
    local start=$SECONDS
    if "$@" 2>&1 | tee "$log"; then
        echo "=== stage $number: ok in $((SECONDS - start)) s"
    else
        echo "=== stage $number: FAILED after $((SECONDS - start)) s"
        failed+=("$number-$name")
    fi
}

export PYTHONUNBUFFERED=1
stage 1 env "$PY" -m segforget env
stage 2 cuda-tests "$PY" -m pytest -q -rs -p no:cacheprovider tests/dynamics/test_cuda.py
stage 3 bench-tracker "$PY" benchmarks/bench_tracker.py --device cuda
stage 4 bench-training-small "$PY" benchmarks/bench_training.py --device cuda --preset small
stage 5 bench-training-f3 "$PY" benchmarks/bench_training.py --device cuda --preset f3 --epochs 2
stage 6 bench-training-f3-sync "$PY" benchmarks/bench_training.py --device cuda --preset f3 \
    --epochs 2 --sync-checkpoints
if ((${#failed[@]})); then
    echo "failed stages: ${failed[*]}"
    exit 1
fi
echo "all stages passed"
