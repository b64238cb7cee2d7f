"""Label-error detection: learning-dynamics scores vs cleanlab on a corrupted synthetic survey.

1. Generate a synthetic survey, corrupt its training labels (shifted boundaries, mislabeled
   lenses, a class swap in a patch; seeded, true error mask kept) and write it in the F3 layout.
2. Train once on the corrupted labels with epoch tracking (confidence/AUM on) -> our scores.
3. K-fold cross-validation (each fold's inline sections get label 255 = ignored, a model is
   trained on the rest and predicts the held-out fold) -> out-of-sample probabilities for
   ``cleanlab.segmentation.rank.get_label_quality_scores``.
4. Pixel-level average precision and AUROC of every score against the true error mask, over
   the pixels of the training sections (inline view), plus ratios to cleanlab's AP.

Needs the benchmark extra: ``pip install cleanlab`` (scikit-learn comes with it and is used to
cross-check our AP/AUROC). CPU-sized by default (about 5 minutes on 2 cores):

    .venv/bin/python benchmarks/bench_label_issues.py --preset small --epochs 8 --folds 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--survey-seed", type=int, default=0)
    parser.add_argument("--corruption-seed", type=int, default=0)
    parser.add_argument(
        "--seeds",
        default=None,
        help="Comma-separated seeds: one survey per seed (survey and corruption seed = s), each "
        "in WORKDIR/seed<s>; prints every table and the mean over seeds.",
    )
    parser.add_argument(
        "--opening",
        type=int,
        default=1,
        help="Radius of the per-section opening applied to our scores (0: raw only).",
    )
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write the table as JSON.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Reuse the survey, error mask and runs already in --workdir (re-score only).",
    )
    return parser.parse_args()


def train_run(spec: str, out: Path, args: argparse.Namespace, *, track: bool) -> None:
    from segforget.train import RunConfig, apply_overrides, train

    config = RunConfig()
    apply_overrides(
        config,
        [
            f"data.spec={spec}",
            "data.views=[inline]",
            f"model.name={args.model}",
            f"train.epochs={args.epochs}",
            f"train.batch_size={args.batch_size}",
            f"train.lr={args.lr}",
            f"train.device={args.device}",
            f"train.threads={args.threads}",
            f"track.mode={'epoch' if track else 'none'}",
            "log.progress=false",
            "log.tensorboard=false",
        ],
    )
    train(config, out, force=True)


def probabilities(run_dir: Path, sections: np.ndarray, device: str) -> np.ndarray:
    """Softmax of the run's best model on inline training sections: (N, K, H, W) float32."""
    import torch

    from segforget.analysis.active_learning import load_final_model
    from segforget.train import load_run

    run = load_run(run_dir)
    model = load_final_model(run, device=device)
    dataset = run.load_data().dataset("train", "inline", sections=sections)
    out = []
    with torch.no_grad():
        for start in range(0, len(dataset), 8):
            batch = torch.stack(
                [dataset[i]["image"] for i in range(start, min(start + 8, len(dataset)))]
            )
            out.append(torch.softmax(model(batch.to(device)), dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.seeds is None:
        run_one(args, args.workdir)
        return
    seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench_label_issues_"))
    tables = {}
    for seed in seeds:
        args.survey_seed = args.corruption_seed = seed
        print(f"\n=== seed {seed}", flush=True)
        tables[seed] = run_one(args, base / f"seed{seed}")
    summary = print_mean_table(tables, seeds)
    reference = next(r["score"] for r in summary if r["score"].startswith("cleanlab (out-of"))
    paired = print_paired_table(summary, reference)
    if args.json:
        result = {"seeds": seeds, "mean": summary, "paired": paired, "tables": tables}
        args.json.write_text(json.dumps(result, indent=2))


def print_mean_table(tables: dict[int, list[dict]], seeds: list[int]) -> list[dict]:
    """Print and return each score's AP and AUROC averaged over the surveys (seeds)."""
    names = [r["score"] for r in next(iter(tables.values()))]
    reference = next(n for n in names if n.startswith("cleanlab (out-of-sample"))
    print(f"\n=== mean over seeds {seeds} (AP per seed in brackets)")
    print(f"{'score':<38} {'AP':>7} {'AUROC':>7} {'AP / cleanlab':>14}  wins vs cleanlab")
    summary = []
    for name in names:
        rows = [next(r for r in tables[s] if r["score"] == name) for s in seeds]
        refs = [next(r for r in tables[s] if r["score"] == reference)["ap"] for s in seeds]
        ap = float(np.mean([r["ap"] for r in rows]))
        auc = float(np.mean([r["auroc"] for r in rows]))
        wins = sum(r["ap"] > ref for r, ref in zip(rows, refs))
        per_seed = " ".join(f"{r['ap']:.3f}" for r in rows)
        print(
            f"{name:<38} {ap:7.4f} {auc:7.4f} {ap / float(np.mean(refs)):14.2f}  "
            f"{wins}/{len(seeds)}  [{per_seed}]"
        )
        per_seed_ap = [r["ap"] for r in rows]
        summary.append({"score": name, "ap": ap, "auroc": auc, "ap_per_seed": per_seed_ap})
    return summary


def paired_against(summary: list[dict], reference: str) -> list[dict]:
    """Per-survey AP differences of every score against ``reference`` (the same surveys).

    Returns:
        One dict per other score: ``score`` and the
        :func:`segforget.compare.paired_differences` fields of its AP minus the reference's
        (``mean``, ``std``, ``wins``, ``p``, ``ci95``; one point each).
    """
    from segforget.compare import paired_differences

    ref = next(r["ap_per_seed"] for r in summary if r["score"] == reference)
    out = []
    for row in summary:
        if row["score"] == reference:
            continue
        diff = paired_differences(np.asarray(row["ap_per_seed"])[:, None], np.asarray(ref)[:, None])
        point = {key: diff[key][0] for key in ("mean", "std", "wins", "p", "ci95")}
        out.append({"score": row["score"], **point})
    return out


def print_paired_table(summary: list[dict], reference: str) -> list[dict]:
    """Print and return :func:`paired_against` (needs at least two surveys for a p-value)."""
    paired = paired_against(summary, reference)
    surveys = len(summary[0]["ap_per_seed"])
    print(f"\n=== AP minus {reference}'s, paired by survey ({surveys} surveys)")
    print(f"{'score':<38} {'mean ± std':>17}  {'wins':>6}  {'p':>7}  95 % interval")
    for row in paired:
        p = "n/a" if row["p"] is None else ("< 0.001" if row["p"] < 0.001 else f"{row['p']:.3f}")
        ci = "n/a" if row["ci95"] is None else f"[{row['ci95'][0]:+.3f}, {row['ci95'][1]:+.3f}]"
        print(
            f"{row['score']:<38} {row['mean']:+8.3f} ± {row['std']:.3f}  "
            f"{row['wins']:>2}/{surveys:<3}  {p:>7}  {ci}"
        )
    return paired


def run_one(args: argparse.Namespace, workdir: Path | None) -> list[dict]:
    """One survey: corrupt, train, score, compare; prints and returns the table."""
    from segforget.analysis.label_issues import (
        ISSUE_METHODS,
        average_precision,
        label_issue_scores,
        open_scores,
        roc_auc,
    )
    from segforget.data import load_data
    from segforget.data.corruption import corrupt_labels
    from segforget.data.f3 import write_f3
    from segforget.data.synthetic import generate_survey
    from segforget.train import load_run

    workdir = workdir or Path(tempfile.mkdtemp(prefix="bench_label_issues_"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    reuse = args.reuse and (workdir / "error_mask.npy").is_file()
    if reuse:
        # The generator may change between versions: the saved mask is the truth of these runs.
        error_mask = np.load(workdir / "error_mask.npy")
        events = json.loads((workdir / "events.json").read_text())
    else:
        survey = generate_survey(args.preset, seed=args.survey_seed)
        seismic, clean = survey.volumes["train"]
        corrupted = corrupt_labels(
            np.asarray(clean),
            num_classes=len(survey.metadata()["class_names"]),
            seed=args.corruption_seed,
        )
        error_mask, events = corrupted.error_mask, corrupted.events
        volumes = dict(survey.volumes)
        volumes["train"] = (seismic, corrupted.labels.astype(np.asarray(clean).dtype))
        write_f3(workdir / "corrupted", volumes, metadata=survey.metadata(), overwrite=True)
        np.save(workdir / "error_mask.npy", error_mask)
        (workdir / "events.json").write_text(json.dumps(events))
    spec = f"f3:{workdir / 'corrupted'}"
    data = load_data(spec)
    num_classes = data.num_classes
    train_sections = data.sections("train", "inline")
    space = data.space("train", "inline")
    # Error mask in the inline pixel space: section i = volume[i].T -> (depth, crossline).
    error_volume = error_mask.transpose(0, 2, 1)  # (I, Z, X) = (N, H, W)
    truth = error_volume[train_sections].reshape(-1)
    print(
        f"survey {args.preset}: {len(train_sections)} inline training sections "
        f"{space.section_shape}, "
        f"{truth.mean():.2%} of their pixels corrupted "
        f"({', '.join(e['kind'] + ':' + str(e['changed']) for e in events)} voxels)",
        flush=True,
    )

    # 2. one tracked run on the corrupted labels
    t0 = time.time()
    if not reuse:
        train_run(spec, workdir / "tracked", args, track=True)
    run = load_run(workdir / "tracked")
    stats = run.stats("epoch", "train", "inline")
    h, w = space.section_shape
    ours = {}
    for method in ISSUE_METHODS:
        raw = label_issue_scores(stats, method=method)
        ours[method] = raw.reshape(space.num_sections, h * w)[train_sections].reshape(-1)
        if args.opening > 0:
            opened = open_scores(raw, (h, w), radius=args.opening)
            name = f"{method}, opened r={args.opening}"
            ours[name] = opened.reshape(space.num_sections, h * w)[train_sections].reshape(-1)
    tracked_seconds = time.time() - t0

    # 3. K-fold out-of-sample probabilities
    t0 = time.time()
    rng = np.random.default_rng(args.corruption_seed)
    folds = np.array_split(rng.permutation(train_sections), args.folds)
    oos = np.zeros((len(train_sections), num_classes, h, w), dtype=np.float32)
    position = {int(s): k for k, s in enumerate(train_sections)}
    for k, held_out in enumerate(folds):
        if not reuse:
            masked = np.asarray(corrupted.labels).copy()
            masked[np.sort(held_out)] = 255  # inline section i is volume[i]: ignored in training
            fold_volumes = dict(volumes)
            fold_volumes["train"] = (seismic, masked.astype(np.asarray(clean).dtype))
            fold_dir = workdir / f"fold{k}"
            write_f3(fold_dir, fold_volumes, metadata=survey.metadata(), overwrite=True)
            train_run(f"f3:{fold_dir}", workdir / f"fold{k}_run", args, track=False)
        held_sorted = np.sort(held_out)
        probs = probabilities(workdir / f"fold{k}_run", held_sorted, args.device)
        for row, section in enumerate(held_sorted):
            oos[position[int(section)]] = probs[row]
    folds_seconds = time.time() - t0
    in_sample = probabilities(workdir / "tracked", train_sections, args.device)

    from cleanlab.segmentation.rank import get_label_quality_scores

    given = data.label_sections("train", "inline")  # (N, H, W) corrupted labels, train sections
    t0 = time.time()
    _, cl_pixels = get_label_quality_scores(given, oos, verbose=False)
    cleanlab_seconds = time.time() - t0
    _, cl_in_pixels = get_label_quality_scores(given, in_sample, verbose=False)
    final_wrong = (in_sample.argmax(axis=1) != given).reshape(-1).astype(float)

    rows = {f"ours: {m}": s for m, s in ours.items()}
    reference_name = f"cleanlab (out-of-sample, {args.folds}-fold)"
    rows[reference_name] = 1.0 - cl_pixels.reshape(-1)
    rows["cleanlab (in-sample, final model)"] = 1.0 - cl_in_pixels.reshape(-1)
    rows["final prediction != label"] = final_wrong

    from sklearn.metrics import average_precision_score, roc_auc_score

    table = []
    for name, scores in rows.items():
        keep = np.isfinite(scores)
        ap = average_precision(truth[keep], scores[keep])
        auc = roc_auc(truth[keep], scores[keep])
        check = max(
            abs(ap - average_precision_score(truth[keep], scores[keep])),
            abs(auc - roc_auc_score(truth[keep], scores[keep])),
        )
        table.append(
            {
                "score": name,
                "ap": ap,
                "auroc": auc,
                "pixels": int(keep.sum()),
                "sklearn_diff": check,
            }
        )
    reference_ap = next(r["ap"] for r in table if r["score"] == reference_name)
    print(f"\npositive rate (AP of a random ranking): {truth.mean():.4f}")
    print(f"{'score':<38} {'AP':>7} {'AUROC':>7} {'AP / cleanlab':>14}")
    for r in table:
        print(f"{r['score']:<38} {r['ap']:7.4f} {r['auroc']:7.4f} {r['ap'] / reference_ap:14.2f}")
    print(
        f"\nmax |ours - sklearn| over AP/AUROC: {max(r['sklearn_diff'] for r in table):.2e}; "
        f"tracked run {tracked_seconds:.0f} s, {args.folds} fold runs {folds_seconds:.0f} s, "
        f"cleanlab scoring {cleanlab_seconds:.1f} s, total {time.time() - started:.0f} s; "
        f"test mIoU of the tracked run {run.metrics['test']['miou']:.3f}"
    )
    if args.json and args.seeds is None:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "positive_rate": float(truth.mean()),
                    "table": table,
                },
                indent=2,
            )
        )
    return table


if __name__ == "__main__":
    main()
