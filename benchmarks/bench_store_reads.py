"""Store reading in the analysis: verify-then-read against verify-while-reading.

``analyze_run`` reads each training store in two passes of section chunks. It used to check a
store's CRC32 checksums first with ``ForgettingStats.verify`` (one more full read) and to load
every array again in the second pass, which needs only two. It now feeds the first pass's
ranges to ``StoreChecksums`` and reads the two arrays it needs in the second pass
(``ForgettingStats.read``). Both read patterns run here on the same store, alternating, and the
script prints the ratio of their times (median of the repeats):

    .venv/bin/python benchmarks/bench_store_reads.py [--store DIR] [--section-pixels N]
        [--chunk-pixels N] [--repeats 3]

Without ``--store`` it builds an F3-sized inline store (401 sections of 255 x 701, with
confidence and a 10-epoch history, as ``bench_analysis.py`` does) in a temporary directory.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from segforget.dynamics import ForgettingStats, StoreChecksums

PASS2 = ("forgetting_events", "observations")


def build(root: Path, sections: int = 401, height: int = 255, width: int = 701) -> Path:
    """An F3-sized store of random statistics (events ~ Poisson(0.3), 10 epochs)."""
    rng = np.random.default_rng(0)
    n, epochs = sections * height * width, 10
    events = rng.poisson(0.3, n).astype(np.int32)
    correct = np.clip(epochs - 2 * events, 0, epochs).astype(np.int32)
    stats = ForgettingStats(
        observations=np.full(n, epochs, np.int32),
        correct=correct,
        forgetting_events=events,
        switch_events=events,
        first_learned=np.where(correct > 0, 0, -1).astype(np.int32),
        last_correct=np.ones(n, bool),
        last_prediction=rng.integers(0, 6, n).astype(np.int16),
        confidence=rng.random(n, dtype=np.float32),
        variability=0.5 * rng.random(n, dtype=np.float32),
        aum=rng.standard_normal(n, dtype=np.float32),
        history=rng.integers(0, 256, (2, n), dtype=np.uint8),
        meta={"section_shape": [height, width]},
    )
    return stats.save(root / "train_inline")


def ranges(total: int, step: int) -> list[slice]:
    return [slice(start, min(total, start + step)) for start in range(0, total, step)]


def verify_then_read(store: Path, parts: list[slice]) -> int:
    """The earlier pattern: verify, load every array per chunk, load every array again."""
    ForgettingStats.verify(store)
    touched = 0
    for part in parts:
        touched += int(ForgettingStats.load(store, pixels=part).forgetting_events.sum())
    for part in parts:
        touched += int(ForgettingStats.load(store, pixels=part).observations.sum())
    return touched


def verify_while_reading(store: Path, parts: list[slice]) -> int:
    """The current pattern: checksums over the first pass, two arrays in the second."""
    sums = StoreChecksums(store)
    touched = 0
    for part in parts:
        stats = ForgettingStats.load(store, pixels=part)
        sums.feed(stats)
        touched += int(stats.forgetting_events.sum())
    sums.check()
    for part in parts:
        touched += int(ForgettingStats.read(store, PASS2, pixels=part)["observations"].sum())
    return touched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="an existing store")
    parser.add_argument("--section-pixels", type=int, default=255 * 701)
    parser.add_argument("--chunk-pixels", type=int, default=1 << 22, help="analyze_run's default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = None
    store = args.store
    if store is None:
        root = Path(tempfile.mkdtemp(prefix="bench_store_reads_"))
        started = time.perf_counter()
        store = build(root)
        print(f"built an F3-sized store in {time.perf_counter() - started:.0f} s: {store}")
    try:
        total = int(ForgettingStats.info(store)["num_pixels"])
        step = max(1, args.chunk_pixels // args.section_pixels) * args.section_pixels
        parts = ranges(total, step)
        print(f"{total:,} pixels, {len(parts)} chunks of {step:,} pixels")
        times: dict[str, list[float]] = {"verify_then_read": [], "verify_while_reading": []}
        checks = set()
        for _ in range(args.repeats):
            for name, read in (
                ("verify_then_read", verify_then_read),
                ("verify_while_reading", verify_while_reading),
            ):
                started = time.perf_counter()
                checks.add(read(store, parts))
                times[name].append(time.perf_counter() - started)
        assert len(checks) == 1, "the two patterns read different values"
        old, new = (statistics.median(times[k]) for k in times)
        for name, values in times.items():
            print(f"{name:>22}: median {statistics.median(values):6.1f} s  ({values})")
        print(f"ratio verify_while_reading / verify_then_read: {new / old:.2f}")
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
