"""Active-learning simulation: switch-based strategies vs entropy, margin and random.

Runs :func:`segforget.analysis.active_learning.simulate_active_learning` (the library behind
``segforget al-sim``) and prints test mIoU (mean ± std over seeds) per number of labeled
sections, the ratio of each strategy's mean to random's at the same budget, and whether the
strategy is above random by more than the seed spread (mean difference > the larger std).

CPU-sized by default (2 seeds x 4 strategies x 3 points, a fresh tiny model per point; about
15 minutes on 2 cores shared with other jobs):

    .venv/bin/python benchmarks/bench_active_learning.py --preset small --rounds 2 --budget 3 \
        --seeds 0,1 --epochs 4 --steps 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--strategies", default="switch,gauss,entropy,random")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=3)
    parser.add_argument("--initial", type=int, default=2)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument(
        "--track-warmup",
        type=int,
        default=None,
        help="Epochs before the pool is first observed (default: a third of --epochs).",
    )
    parser.add_argument(
        "--pool-passes",
        type=int,
        default=1,
        help="Pool observations per tracked epoch, evenly spaced over its steps (1: after it).",
    )
    parser.add_argument(
        "--spacing",
        type=int,
        default=0,
        help="Chosen sections at least this many section numbers apart (0: no rule).",
    )
    parser.add_argument(
        "--patch",
        default=None,
        help="Label H,W windows instead of whole sections (--initial/--budget count windows).",
    )
    parser.add_argument(
        "--random-draws",
        type=int,
        default=1,
        help="Independent random labeling chains per seed; random's curve is their mean.",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="Also write the curves as JSON.")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import torch

    from segforget.analysis.active_learning import simulate_active_learning

    torch.set_num_threads(args.threads)
    started = time.time()
    result = simulate_active_learning(
        f"synthetic:{args.preset}",
        strategies=args.strategies.split(","),
        rounds=args.rounds,
        budget=args.budget,
        seeds=[int(s) for s in args.seeds.split(",")],
        initial=args.initial,
        model=args.model,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        track_warmup=args.track_warmup,
        pool_passes=args.pool_passes,
        spacing=args.spacing,
        patch=None if args.patch is None else tuple(int(v) for v in args.patch.split(",")),
        random_draws=args.random_draws,
        device=args.device,
        on_round=lambda s, seed, r, n, m: print(f"  {s:<10} seed {seed} labeled {n:>3}: {m:.4f}"),
    )
    curves = result["curves"]
    labeled = next(iter(curves.values()))["labeled"]
    print(f"\ntest mIoU, mean ± std over seeds {args.seeds} ({result['config']['view']} sections)")
    print(f"{'strategy':<12}" + "".join(f"{n:>18}" for n in labeled))
    for name, curve in curves.items():
        cells = "".join(
            f"{m:>11.4f} ± {s:.3f}" for m, s in zip(curve["miou_mean"], curve["miou_std"])
        )
        print(f"{name:<12}{cells}")
    if "random" in curves:
        reference = curves["random"]
        print("\nratio of mean mIoU to random's (* = above random by more than the seed spread)")
        for name, curve in curves.items():
            cells = []
            for m, s, rm, rs in zip(
                curve["miou_mean"], curve["miou_std"], reference["miou_mean"], reference["miou_std"]
            ):
                mark = "*" if m - rm > max(s, rs) else " "
                cells.append(f"{m / rm:>17.3f}{mark}")
            print(f"{name:<12}" + "".join(cells))
    print(f"\ntotal {time.time() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
