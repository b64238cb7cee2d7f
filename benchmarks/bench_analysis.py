"""Peak memory and time of ``analyze_run`` on an F3-sized run (inline + crossline stores).

Builds, under a temporary directory, an F3-shaped data folder (train 401 x 701 x 255) and a run
directory with ForgettingStats stores of both views (72 M pixels each, with confidence and a
10-epoch history), prediction arrays of the train volume and of F3-sized test volumes (test1
200 x 701, test2 601 x 200, both views), then runs ``analyze_run`` in a child process and reports
its peak resident memory against two references computed here: the 4 GiB budget and the memory
that loading one view's statistics whole would take.

    .venv/bin/python benchmarks/bench_analysis.py [--shape 401 701 255] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

# Peak memory is the child's VmHWM (high-water mark of its own address space, reset by exec);
# ru_maxrss would carry over the parent's peak through fork + exec.
CHILD = """
import json, sys, time
from segforget.analysis import analyze_run
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
t = time.time()
s = analyze_run(sys.argv[1], progress=False)
print(json.dumps({"seconds": time.time() - t, "peak_mib": hwm(),
                  "enrichment_2px": s["boundary"]["enrichment_2px"], "k": s["k"],
                  "thickness": s["thickness"] is not None}))
"""


def _hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_shapes(shape: tuple[int, int, int]) -> dict[str, tuple[int, int, int]]:
    """F3's test volumes for a train volume of ``shape`` (F3: test1 200 x 701, test2 601 x 200)."""
    i_n, x_n, d_n = shape
    test1 = (max(1, round(i_n * 200 / 401)), x_n, d_n)
    return {"test1": test1, "test2": (i_n + test1[0], max(1, round(x_n * 200 / 701)), d_n)}


def _test_labels(shape: tuple[int, int, int]) -> np.ndarray:
    """Six layers like the train labels, bent twice as much: the base unit gets thicker."""
    i_n, x_n, d_n = shape
    depth = np.arange(d_n)[None, None, :]
    bend = (16 * np.sin(np.arange(x_n) / 30.0))[None, :, None].astype(np.int64)
    return np.clip((depth + bend) * 6 // d_n, 0, 5).astype(np.uint8) + np.zeros(
        (i_n, 1, 1), np.uint8
    )


def build(root: Path, shape: tuple[int, int, int], epochs: int = 10) -> tuple[Path, int]:
    from segforget.dynamics import ForgettingStats

    rng = np.random.default_rng(0)
    i_n, x_n, d_n = shape
    data = root / "data"
    (data / "train").mkdir(parents=True)
    (data / "test_once").mkdir()
    depth = np.arange(d_n)[None, None, :]
    bend = (8 * np.sin(np.arange(x_n) / 60.0))[None, :, None].astype(np.int64)
    labels = np.clip((depth + bend) * 6 // d_n, 0, 5).astype(np.uint8) + np.zeros(
        (i_n, 1, 1), np.uint8
    )
    seismic = rng.standard_normal(shape, dtype=np.float32)
    np.save(data / "train" / "train_labels.npy", labels)
    np.save(data / "train" / "train_seismic.npy", seismic)
    del seismic
    run = root / "run"
    (run / "predictions").mkdir(parents=True)
    for name, test_shape in test_shapes(shape).items():
        test_labels = _test_labels(test_shape)
        np.save(data / "test_once" / f"{name}_labels.npy", test_labels)
        np.save(
            data / "test_once" / f"{name}_seismic.npy",
            rng.standard_normal(test_shape, dtype=np.float32),
        )
        # Predictions: the labels with a tenth of the pixels one class off, so the test half of
        # the thickness analysis reads and compares every test pixel of both views.
        wrong = rng.random(test_shape) < 0.1
        predicted = np.where(wrong, (test_labels + 1) % 6, test_labels).astype(np.uint8)
        np.save(run / "predictions" / f"{name}_inline.npy", predicted.transpose(0, 2, 1))
        np.save(run / "predictions" / f"{name}_crossline.npy", predicted.transpose(1, 2, 0))
        del test_labels, wrong, predicted
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"spec": f"f3:{data}"}}))
    (run / "metrics.json").write_text("{}")
    whole_view_bytes = 0
    for view in ("inline", "crossline"):
        sections = labels.transpose(0, 2, 1) if view == "inline" else labels.transpose(1, 2, 0)
        n = sections.size
        events = rng.poisson(0.3, n).astype(np.int32)
        obs = np.full(n, epochs, np.int32)
        correct = np.clip(epochs - 2 * events, 0, epochs).astype(np.int32)
        stats = ForgettingStats(
            observations=obs,
            correct=correct,
            forgetting_events=events,
            switch_events=events,
            first_learned=np.where(correct > 0, 0, -1).astype(np.int32),
            last_correct=np.ones(n, bool),
            last_prediction=sections.reshape(-1).astype(np.int16),
            confidence=rng.random(n, dtype=np.float32),
            variability=(0.5 * rng.random(n, dtype=np.float32)),
            aum=rng.standard_normal(n, dtype=np.float32),
            history=rng.integers(0, 256, (-(-epochs // 8), n), dtype=np.uint8),
            meta={"mode": "epoch", "split": "train", "view": view},
        )
        whole_view_bytes = max(
            whole_view_bytes, sum(a.nbytes for a in stats._arrays().values()) + stats.history.nbytes
        )
        stats.save(run / "dynamics" / "epoch" / f"train_{view}")
        np.save(run / "predictions" / f"train_{view}.npy", sections.astype(np.uint8))
        del stats, events, obs, correct
    return run, whole_view_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=3, default=[401, 701, 255])
    parser.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    parser.add_argument("--whole-mib", type=float, default=2529.0, help=argparse.SUPPRESS)
    parser.add_argument("--reuse", action="store_true", help="analyse the run kept in --keep")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_analysis_"))
    try:
        t = time.time()
        if args.reuse and args.keep is not None:
            run, whole = root / "run", args.whole_mib * 2**20
        else:
            run, whole = build(root, tuple(args.shape))
        print(f"built F3-shaped run {tuple(args.shape)} in {time.time() - t:.0f} s: {run}")
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(run)], capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        budget = 4 * 1024
        print(f"analyze_run: {result['seconds']:.0f} s, peak RSS {result['peak_mib']:.0f} MiB")
        print(f"  ratio to the 4 GiB budget: {result['peak_mib'] / budget:.2f}")
        print(
            f"  ratio to one view's statistics loaded whole ({whole / 2**20:.0f} MiB): "
            f"{result['peak_mib'] / (whole / 2**20):.2f}"
        )
        print(f"  (enrichment_2px {result['enrichment_2px']:.2f} on random events, expected ~1)")
        print(f"  test predictions analysed (thickness): {result['thickness']}")
        print(f"bench process peak RSS (building): {_hwm_mib():.0f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
