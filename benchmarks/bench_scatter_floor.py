"""How far the tracker's scatter path is from what the machine allows.

Compiles ``benchmarks/scatter_floor.c`` with the system's C compiler and times, per batch of
F3 sections rotated by 5 degrees (int64 index, classes and targets), loops that do less and
less of the scatter path's work (only reading the inputs; the scatter with the tracker's
duplicate reduction; a packed byte; plain stores), next to ``ForgettingTracker.update`` on the
same kind of batch and the bandwidth bound of the whole update (48 bytes per pixel moved at
the machine's copy bandwidth). Ratios are against the read-only loop of the same run.

    python benchmarks/bench_scatter_floor.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def find_compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def compile_floor(work: Path, compiler: str) -> Path:
    binary = work / "scatter_floor"
    command = [compiler, "-O3", "-march=native", str(HERE / "scatter_floor.c"), "-o", str(binary)]
    subprocess.run([*command, "-lm"], check=True)
    return binary


def copy_bandwidth() -> float:
    """Bytes read + written per CPU-second by a 256 MB np.copyto (best of 5)."""
    import numpy as np

    source = np.ones(32 * 2**20, dtype=np.float64)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        np.copyto(target, source)
        best = min(best, time.process_time() - start)
    return 2 * source.nbytes / best


def tracker_ms(samples: int, height: int, width: int, sections: int, rounds: int) -> float:
    """CPU milliseconds per ForgettingTracker.update on rotated sections (best of rounds)."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from bench_tracker import rotated_index

    from segforget.dynamics import ForgettingTracker

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    tracker = ForgettingTracker(sections * height * width, 6)
    batches = []
    for _ in range(8):
        chosen = torch.from_numpy(rng.choice(sections, samples, replace=False))
        index = rotated_index(chosen, height, width).contiguous()
        pred = torch.from_numpy(rng.integers(0, 6, (samples, height, width)))
        target = torch.from_numpy(rng.integers(0, 6, (samples, height, width)))
        batches.append((pred, target, index))
    best = float("inf")
    for _ in range(rounds + 1):  # the first round warms up (kernel build, workspace)
        start = time.process_time()
        for pred, target, index in batches:
            tracker.update(pred, target, index)
        best = min(best, (time.process_time() - start) / len(batches))
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="sections per batch")
    parser.add_argument("--height", type=int, default=255)
    parser.add_argument("--width", type=int, default=701)
    parser.add_argument("--sections", type=int, default=401, help="sections in the pixel space")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    compiler = find_compiler()
    if compiler is None:
        # Without a compiler the tracker runs its torch path: there is no fused kernel to bound.
        print("skipped: no C compiler (cc, gcc or clang) found; the fused kernel needs one too")
        return
    with tempfile.TemporaryDirectory() as work:
        binary = compile_floor(Path(work), compiler)
        done = subprocess.run(
            [binary, str(args.batch), str(args.height), str(args.width), str(args.rounds)],
            check=True,
            capture_output=True,
            text=True,
        )
    floors = {name: float(ms) for name, ms in (line.split() for line in done.stdout.splitlines())}
    pixels = args.batch * args.height * args.width
    bandwidth = copy_bandwidth()
    bound_ms = 48 * pixels / bandwidth * 1e3
    update_ms = tracker_ms(args.batch, args.height, args.width, args.sections, args.rounds)
    read = floors["read"]
    print(
        f"batch of {args.batch} sections of {args.height} x {args.width} rotated 5 deg "
        f"({pixels / 1e6:.2f} M entries, int64); copy bandwidth {bandwidth / 1e9:.2f} GB/s"
    )
    print(f"{'what':58s} {'ms/batch':>9s} {'x read':>7s}")
    rows = [
        ("C: read index, class, target only (floor of any route)", read),
        ("C: scatter with the tracker's duplicate reduction", floors["reduce"]),
        ("C: scatter, one packed byte per pixel (or)", floors["packed"]),
        ("C: plain byte stores, no reduction", floors["store"]),
        ("bound of the whole update: 48 B/pixel at copy bandwidth", bound_ms),
        ("ForgettingTracker.update (fused kernel, all passes)", update_ms),
    ]
    for name, ms in rows:
        print(f"{name:58s} {ms:9.2f} {ms / read:7.2f}")


if __name__ == "__main__":
    main()
