"""When in training are pixels forgotten? Forgetting events per epoch of benchmark runs.

Reads the epoch-mode training stores (with their correctness history) of the runs a
``segforget benchmark`` wrote (``OUT/runs/<method>/seed<N>/``) and prints, per method and summed
over its seeds and training views, the forgetting events whose wrong observation is epoch t
(t = 2..T; an event needs a correct epoch before it): for all pixels, and for the frequently
forgotten ones (at least ``--threshold`` events, the benchmark's count). A steady count over
the epochs means pixels that keep oscillating; a count that falls means forgetting that ends
as the model settles.

    python benchmarks/bench_forgetting_epochs.py --runs bench_ema/runs --methods baseline,rotate
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="A benchmark's runs/ folder.")
    parser.add_argument("--methods", required=True, help="Comma-separated entries to read.")
    parser.add_argument("--threshold", type=int, default=2, help="Frequent: >= this many events.")
    return parser.parse_args()


def method_event_counts(method_dir: Path, threshold: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(T,) events per observation index of all pixels and of the frequently forgotten ones, and
    the number of frequently forgotten pixels, over every seed and training view."""
    from segforget.analysis.timing import classify_timing
    from segforget.dynamics import ForgettingStats

    totals = [np.zeros(0, np.int64), np.zeros(0, np.int64)]
    frequent_pixels = 0
    stores = sorted(method_dir.glob("seed*/dynamics/epoch/train_*"))
    if not stores:
        raise SystemExit(f"Expected epoch-mode training stores under {method_dir}, got none")
    for store in stores:
        stats = ForgettingStats.load(store)
        if stats.history is None:
            raise SystemExit(f"Expected {store} to hold the correctness history, got none")
        history = stats.correctness_history(np.arange(stats.num_pixels))  # (P, T)
        frequent = stats.forgetting_events >= threshold
        frequent_pixels += int(frequent.sum())
        for i, rows in enumerate((history, history[frequent])):
            counts = classify_timing(rows)[1]
            size = max(totals[i].size, counts.size)
            totals[i] = np.pad(totals[i], (0, size - totals[i].size))
            totals[i][: counts.size] += counts
    return totals[0], totals[1], frequent_pixels


def main() -> None:
    args = parse_args()
    rows = []
    for method in args.methods.split(","):
        rows.append((method, *method_event_counts(args.runs / method, args.threshold)))
    epochs = max(r[1].size for r in rows)
    print(f"forgetting events by epoch (2..{epochs}), summed over seeds and training views")
    print(f"{'method':<14}{'pixels':<18}" + "".join(f"{t:>9}" for t in range(2, epochs + 1)))
    for method, everything, frequent, count in rows:
        for label, counts in (("all", everything), (f"frequent ({count})", frequent)):
            cells = "".join(f"{int(c):>9}" for c in counts[1:])
            print(f"{method:<14}{label:<18}{cells}")
            method = ""


if __name__ == "__main__":
    main()
