"""Cost of the per-epoch tracking summary: ``ForgettingTracker.summary()`` (reduced where the
state lives) against the same shares computed from ``compute()`` (every statistic as a host
numpy array, what training logged per epoch before), on one F3-sized view.

    python benchmarks/bench_summary.py [--pixels 71700000] [--device cpu] [--extras]

``--extras``: the tracker records confidence and history (as epoch-mode trackers do). Both
results are compared (they must be equal) and the ratio of the times is printed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from segforget.dynamics import ForgettingTracker


def summary_from_compute(tracker: ForgettingTracker) -> dict[str, float]:
    """The reference: the shares from the full statistics on the host."""
    stats = tracker.compute()
    observed = stats.observations > 0
    count = int(observed.sum())
    forgetting = stats.forgetting_events[observed]
    return {
        "observed_pixels": count,
        "forgotten_fraction": float(np.mean(forgetting > 0)),
        "mean_forgetting_events": float(np.mean(forgetting)),
        "never_learned_fraction": float(stats.never_learned[observed].mean()),
        "correct_fraction": float(stats.last_correct[observed].mean()),
    }


def _best(fn, device: torch.device, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=401 * 255 * 701)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--extras", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    tracker = ForgettingTracker(
        args.pixels, 6, device=device, confidence=args.extras, history=args.extras
    )
    rng = torch.Generator().manual_seed(0)
    block = 255 * 701
    sections = args.pixels // block
    for _ in range(4):  # four observations of every section, some of them wrong
        for first in range(0, sections, 8):
            rows = min(8, sections - first)
            target = torch.randint(0, 6, (rows, 255, 701), generator=rng)
            logits = torch.randn(rows, 6, 255, 701, generator=rng)
            prediction = logits if args.extras else logits.argmax(1)
            offsets = [(first + r) * block for r in range(rows)]
            tracker.update_blocks(prediction.to(device), target.to(device), offsets)
    fast, a = _best(tracker.summary, device, args.repeats)
    slow, b = _best(lambda: summary_from_compute(tracker), device, args.repeats)
    assert a == b, (a, b)
    print(
        f"{args.pixels / 1e6:.1f} M pixels on {device}"
        f"{' with confidence and history' if args.extras else ''}: summary() {fast:.3f} s, "
        f"from compute() {slow:.3f} s ({slow / fast:.0f}x); equal results"
    )


if __name__ == "__main__":
    main()
