"""When in training are pixels forgotten? Forgetting events per epoch of benchmark runs.

Reads the epoch-mode training stores (with their correctness history) of the runs a
``segforget benchmark`` wrote (``OUT/runs/<method>/seed<N>/``) and prints, per method and summed
over its seeds and training views, the forgetting events whose wrong observation is epoch t
(t = 2..T; an event needs a correct epoch before it): for all pixels, and for the frequently
forgotten ones (at least ``--threshold`` events, the benchmark's count). A steady count over
the epochs means pixels that keep oscillating; a count that falls means forgetting that ends
as the model settles.

With ``--boundary`` it also prints where the frequently forgotten pixels lie: their share at
each distance (0, 1, 2, >= 3 px) from the nearest label boundary of their section
(:meth:`segforget.analysis.BoundaryAccumulator.frequent`; 0 = the pixel has a 4-neighbour of
another class), next to the share of all observed training pixels there, and the fraction of the
pixels at that distance that are frequently forgotten. The labels come from the data set named
in the stores' metadata (``data_spec``).

    python benchmarks/bench_forgetting_epochs.py --runs bench_ema/runs --methods baseline,rotate
    python benchmarks/bench_forgetting_epochs.py --runs bench_ema/runs --methods baseline --boundary
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
    parser.add_argument(
        "--boundary",
        action="store_true",
        help="Also print the frequently forgotten pixels by distance to the label boundary.",
    )
    return parser.parse_args()


def method_boundary_counts(method_dir: Path, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequently forgotten and observed pixels at 0, 1, 2, >= 3 px from the label boundary,
    summed over every seed and training view of a method (each (4,) int64)."""
    from segforget.analysis import BoundaryAccumulator
    from segforget.data import load_data
    from segforget.dynamics import ForgettingStats

    frequent, observed = np.zeros(4, np.int64), np.zeros(4, np.int64)
    loaded: dict[str, object] = {}
    for store in sorted(method_dir.glob("seed*/dynamics/epoch/train_*")):
        stats = ForgettingStats.load(store)
        spec = str(stats.meta.get("data_spec") or "")
        if not spec:
            raise SystemExit(f"Expected {store} to name its data set (meta data_spec), got none")
        data = loaded.setdefault(spec, load_data(spec))
        labels = data.label_sections("train+val", str(stats.meta["view"]))  # type: ignore[attr-defined]
        if labels.size != stats.num_pixels:
            raise SystemExit(
                f"Expected {store} to cover {labels.size} training pixels of {spec}, "
                f"got {stats.num_pixels}"
            )
        boundary = BoundaryAccumulator(data.class_names, max_distance=3)  # type: ignore[attr-defined]
        boundary.update(
            stats.forgetting_events.reshape(labels.shape),
            stats.observations.reshape(labels.shape),
            labels,
        )
        counts = boundary.frequent(threshold)
        frequent += counts["by_distance"]
        observed += counts["pixels_by_distance"]
    return frequent, observed


def print_boundary_table(runs: Path, methods: list[str], threshold: int) -> None:
    """Print the share of frequently forgotten pixels per distance to the label boundary."""
    heads = ["0 px", "1 px", "2 px", ">= 3 px"]
    print()
    print(
        "frequently forgotten pixels by distance to the nearest label boundary, summed over "
        "seeds and training views"
    )
    print(f"{'method':<14}{'row':<30}" + "".join(f"{h:>10}" for h in heads))
    for method in methods:
        frequent, observed = method_boundary_counts(runs / method, threshold)
        cells = "".join(f"{int(c):>10}" for c in frequent)
        print(f"{method:<14}{'frequent pixels':<30}{cells}")
        rows = (
            (f"share of frequent ({int(frequent.sum())})", frequent / max(frequent.sum(), 1)),
            (f"share of pixels ({int(observed.sum())})", observed / max(observed.sum(), 1)),
            ("frequent / pixels there", frequent / np.maximum(observed, 1)),
        )
        for label, values in rows:
            print(f"{'':<14}{label:<30}" + "".join(f"{100 * v:>9.1f}%" for v in values))


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
    if args.boundary:
        print_boundary_table(args.runs, args.methods.split(","), args.threshold)


if __name__ == "__main__":
    main()
