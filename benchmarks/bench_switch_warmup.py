"""Does a switch score rank the unlabeled pool like the model's error does? By tracking warm-up.

One al-sim round per seed (``--initial`` random labeled inline sections of the synthetic
survey, a fresh model trained as ``segforget al-sim`` trains it), with the pool tracked after
every epoch past a warm-up of 0, 1, 3 and 5 epochs (the same training every time: the pool
passes draw no randomness). Prints, per seed, the Spearman rank correlation between each
per-section acquisition score (mean switch events per pixel for each warm-up; entropy and
margin of the final model) and the final model's per-section pixel error on the pool: how well
the score finds the sections the model gets wrong. A second table counts how many of the
``--budget`` sections each score would label next (its top scores, as ``al-sim`` takes them)
are also entropy's picks, next to what a random choice shares on average. About a minute per
seed on 2 cores.

    .venv/bin/python benchmarks/bench_switch_warmup.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def section_error(model, dataset, num_sections: int, ignore_index: int) -> np.ndarray:
    """(num_sections,) pixel error of ``model`` per section of ``dataset`` (NaN elsewhere;
    pixels labeled ``ignore_index`` do not count)."""
    import torch
    from torch.utils.data import DataLoader

    wrong = np.zeros(num_sections)
    total = np.zeros(num_sections)
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=8):
            pred = model(batch["image"]).argmax(dim=1)
            label = batch["label"]
            section = (batch["pixel_index"].flatten(1).amax(dim=1) // label[0].numel()).numpy()
            counted = label != ignore_index
            np.add.at(wrong, section, ((pred != label) & counted).flatten(1).sum(1).numpy())
            np.add.at(total, section, counted.flatten(1).sum(1).numpy())
    with np.errstate(invalid="ignore"):
        return wrong / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--initial", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmups", default="0,1,3,5")
    parser.add_argument("--budget", type=int, default=3, help="sections labeled next")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from segforget.analysis import active_learning as al
    from segforget.data import load_data

    torch.set_num_threads(args.threads)
    data = load_data(f"synthetic:{args.preset}")
    view = data.views[0]
    space = data.space("train", view)
    train = np.asarray(data.sections("train", view), dtype=np.int64)
    warmups = [int(w) for w in args.warmups.split(",")]
    training = al.RoundTraining(epochs=args.epochs, steps_per_epoch=args.steps)
    names = [f"switch, warm-up {w}" for w in warmups] + ["entropy", "margin"]
    print(
        f"synthetic:{args.preset}, {args.initial} labeled inline sections, "
        f"{train.size - args.initial} pool sections, {args.epochs} x {args.steps} steps; "
        "Spearman correlation of each score with the final model's per-section pool error"
    )
    print(f"{'seed':>4}  " + "  ".join(f"{n:>17}" for n in names))
    table, shared = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        rng = np.random.default_rng([seed, 7])
        labeled = np.sort(rng.choice(train, size=args.initial, replace=False))
        pool = np.setdiff1d(train, labeled)
        scores = []
        model = None
        for warmup in warmups:
            settings = replace(training, track_warmup=warmup)
            model, stats = al._train_on_sections(
                data, view, labeled, pool, track=True, seed=seed * 1000, settings=settings
            )
            per_section = al.pixel_to_section_scores(
                stats.switch_events,
                num_sections=space.num_sections,
                observed=np.asarray(stats.observations) > 0,
            )
            scores.append(per_section[pool])
        pool_set = data.dataset("train", view, sections=pool)
        uncertainty = al.section_uncertainty(model, pool_set, device="cpu")
        scores += [uncertainty["entropy"], uncertainty["margin"]]
        error = section_error(model, pool_set, space.num_sections, data.ignore_index)[pool]
        row = [spearman(score, error) for score in scores]
        table.append(row)
        picks = [set(al.rank_sections(score, args.budget).tolist()) for score in scores]
        shared.append([len(p & picks[len(warmups)]) for p in picks])
        print(f"{seed:>4}  " + "  ".join(f"{r:>17.2f}" for r in row), flush=True)
    mean = np.mean(table, axis=0)
    print(f"{'mean':>4}  " + "  ".join(f"{r:>17.2f}" for r in mean))
    chance = args.budget * args.budget / (train.size - args.initial)
    print(
        f"\nsections of the next {args.budget} that are also entropy's picks "
        f"(a random choice shares {chance:.2f} on average)"
    )
    print(f"{'seed':>4}  " + "  ".join(f"{n:>17}" for n in names))
    for seed, row in zip(args.seeds.split(","), shared):
        print(f"{int(seed):>4}  " + "  ".join(f"{r:>17d}" for r in row))
    print(f"{'mean':>4}  " + "  ".join(f"{r:>17.2f}" for r in np.mean(shared, axis=0)))


if __name__ == "__main__":
    main()
