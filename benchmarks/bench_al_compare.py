"""Pair the learning curves of several al-sim runs by seed (e.g. with and without --spacing).

Every run of ``segforget al-sim`` / ``bench_active_learning.py --json`` starts a seed from the
same labeled sections and the same initialization, whatever its other settings, so curves of
different runs pair by seed just like curves of one run. Give each run configuration a label
and its JSON files (several files of one configuration, e.g. seeds 0-2 and 3-5, are joined):

    .venv/bin/python benchmarks/bench_al_compare.py \\
        --run plain=al_s012.json,al_s345.json --run spaced=sp4_012.json,sp4_345.json \\
        --pairs switch@spaced-entropy@plain,entropy@spaced-entropy@plain

Prints mean ± std (population) per configuration and strategy, then for each pair ``A-B``
(``strategy@label``) the paired differences per labeled count: mean ± sample std, seeds won,
two-sided paired t-test p and the 95 % confidence interval of the mean difference
(``segforget.compare.paired_differences``). Seeds are those every run has; a strategy that is
missing for some of them is left out (and named). For a ``random`` curve written with
``--random-draws R`` (R > 1) it also prints how much one random draw varies within a seed
against between seeds, i.e. how much steadier the mean of the draws is as a reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--run",
        action="append",
        required=True,
        help="LABEL=FILE[,FILE...]: curves.json files of one configuration (repeatable).",
    )
    parser.add_argument(
        "--pairs",
        default="",
        help="Comma-separated STRATEGY@LABEL-STRATEGY@LABEL differences to print "
        "(default: every strategy of every run against entropy@ and random@ of the first run).",
    )
    return parser.parse_args()


def load_runs(
    specs: list[str],
) -> tuple[dict[str, dict[str, np.ndarray]], list[int], list[int], dict[str, np.ndarray]]:
    """{label: {strategy: (seeds, points) mIoU}} with seeds in one shared order, the labeled
    counts, and {label: (seeds, draws, points)} random draws where every seed has several."""
    runs: dict[str, dict[int, dict[str, list[float]]]] = {}
    draws: dict[str, dict[int, list[list[float]]]] = {}
    labeled: list[int] | None = None
    for spec in specs:
        label, _, files = spec.partition("=")
        if not label or not files:
            raise SystemExit(f"Expected --run LABEL=FILE[,FILE...], got {spec!r}")
        by_seed = runs.setdefault(label, {})
        for name in files.split(","):
            result = json.loads(Path(name).read_text())
            seeds = result["config"]["seeds"]
            for strategy, curve in result["curves"].items():
                if labeled is None:
                    labeled = curve["labeled"]
                elif curve["labeled"] != labeled:
                    raise SystemExit(f"{name}: labeled counts {curve['labeled']} != {labeled}")
                for seed, values in zip(seeds, curve["miou"]):
                    by_seed.setdefault(seed, {})[strategy] = values
                for seed, chains in zip(seeds, curve.get("miou_draws", [])):
                    draws.setdefault(label, {})[seed] = chains
    common = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not common:
        raise SystemExit("Expected the runs to share at least one seed")
    out: dict[str, dict[str, np.ndarray]] = {}
    for label, by_seed in runs.items():
        # A strategy joins the comparison only where every shared seed has it.
        every = set.intersection(*(set(by_seed[s]) for s in common))
        dropped = sorted(set().union(*(by_seed[s] for s in common)) - every)
        if dropped:
            print(f"{label}: left out {', '.join(dropped)} (not run for every seed {common})")
        out[label] = {
            strategy: np.asarray([by_seed[s][strategy] for s in common])
            for strategy in by_seed[common[0]]
            if strategy in every
        }
    random_draws = {
        label: np.asarray([by_seed[s] for s in common])
        for label, by_seed in draws.items()
        if all(s in by_seed for s in common)
        and len({len(by_seed[s]) for s in common}) == 1
        and len(by_seed[common[0]]) > 1
    }
    return out, common, labeled or [], random_draws


def draw_spread(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Spread of random's curves, (seeds, draws, points) -> per point: the sample std of one
    draw within a seed (mean over seeds), and the sample std between seeds of a single draw
    (draw 0) and of the mean of the draws."""
    return {
        "within": draws.std(axis=1, ddof=1).mean(axis=0),
        "between_single": draws[:, 0].std(axis=0, ddof=1),
        "between_mean": draws.mean(axis=1).std(axis=0, ddof=1),
    }


def _split_pair(text: str, runs: dict[str, dict[str, np.ndarray]]) -> tuple[str, str]:
    """'A@x-B@y' -> ('A@x', 'B@y'), at the '-' where both sides name a loaded curve (strategy
    and label names may hold '-' themselves)."""
    known = {f"{strategy}@{label}" for label, curves in runs.items() for strategy in curves}
    for i, char in enumerate(text):
        if char == "-" and text[:i] in known and text[i + 1 :] in known:
            return text[:i], text[i + 1 :]
    raise SystemExit(
        f"Expected --pairs entries STRATEGY@LABEL-STRATEGY@LABEL of loaded curves "
        f"({', '.join(sorted(known))}), got {text!r}"
    )


def main() -> None:
    from segforget.compare import format_ci, format_p, paired_differences

    args = parse_args()
    runs, seeds, labeled, random_draws = load_runs(args.run)
    print(f"seeds {seeds}; labeled sections (or windows) {labeled}\n")
    print("test mIoU, mean ± std (population) over seeds")
    for label, curves in runs.items():
        for strategy, values in curves.items():
            cells = "".join(
                f"{m:>9.3f} ± {s:.3f}" for m, s in zip(values.mean(axis=0), values.std(axis=0))
            )
            print(f"{strategy + '@' + label:<22}{cells}")
    for label, draws in random_draws.items():
        spread = draw_spread(draws)
        print(
            f"\nrandom@{label}: the mean of {draws.shape[1]} draws per seed; sample std per "
            "labeled count"
        )
        for name, text in (
            ("within", "one draw, within a seed"),
            ("between_single", "between seeds, one draw"),
            ("between_mean", "between seeds, mean of the draws"),
        ):
            print(f"  {text:<34}" + "".join(f"{v:>9.3f}" for v in spread[name][1:]))
    first = next(iter(runs))
    if args.pairs:
        pairs = [_split_pair(p, runs) for p in args.pairs.split(",")]
    else:
        pairs = []
        for label, curves in runs.items():
            for strategy in curves:
                for ref in ("entropy", "random"):
                    a, b = f"{strategy}@{label}", f"{ref}@{first}"
                    if ref in runs[first] and a != b and (b, a) not in pairs:
                        pairs.append((a, b))
    print(
        "\npaired differences per labeled count: mean ± std, seeds won, paired t-test p, "
        "95 % confidence interval of the mean"
    )
    for a, b in pairs:
        values = [runs[x.split("@")[1]][x.split("@")[0]] for x in (a, b)]
        paired = paired_differences(values[0][:, 1:], values[1][:, 1:])  # round 0 is shared
        cells = "  ".join(
            f"{m:+.3f} ± {s:.3f}, {w}/{paired['seeds']}, {format_p(p)}, {format_ci(ci)}"
            for m, s, w, p, ci in zip(
                paired["mean"], paired["std"], paired["wins"], paired["p"], paired["ci95"]
            )
        )
        print(f"{a + ' - ' + b:<34}{cells}")


if __name__ == "__main__":
    main()
