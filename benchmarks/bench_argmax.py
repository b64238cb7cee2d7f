"""The class dimension's argmax on CPU: ``segforget.ops.class_argmax`` against
``torch.argmax(logits, 1)`` on training-sized batches of 6-class logits (the results are
asserted equal), best of ``--repeats`` calls each.

    python benchmarks/bench_argmax.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from segforget.ops import class_argmax

SHAPES = {
    "small batch (8 x 96 x 128)": (8, 6, 96, 128),
    "medium batch (8 x 280 x 160)": (8, 6, 280, 160),
    "f3 eval batch (16 x 255 x 701)": (16, 6, 255, 701),
}


def _best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'batch':32s} {'torch.argmax ms':>16s} {'class_argmax ms':>16s} {'ratio':>6s}")
    for name, shape in SHAPES.items():
        logits = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        assert torch.equal(class_argmax(logits), logits.argmax(1))
        slow = _best(lambda logits=logits: logits.argmax(1), args.repeats)
        fast = _best(lambda logits=logits: class_argmax(logits), args.repeats)
        print(f"{name:32s} {slow * 1e3:16.2f} {fast * 1e3:16.2f} {slow / fast:6.1f}")


if __name__ == "__main__":
    main()
