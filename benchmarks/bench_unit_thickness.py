"""Where is a class missed on the test volumes? By the thickness of its body on each trace.

Reads the test predictions of the runs a ``segforget benchmark`` wrote
(``OUT/runs/<method>/seed<N>/predictions/<split>_<view>.npy``) and the labels of the data set
their ``config.yaml`` names. For every test pixel of ``--cls`` it finds the body the pixel
belongs to on its trace (the unbroken vertical run of that class) and compares that body's
thickness with the thickest body of the class on any trace of the training volume. The
table gives, per method (summed over its seeds, mean pixels per seed): accuracy and the share
predicted as the most frequent wrong class, for pixels of bodies no thicker than in training
and of thicker ones, by depth below the body's top. A class that is missed mostly inside
bodies thicker than any in training is missed for want of that geometry in training, not
for its depth or texture.

    python benchmarks/bench_unit_thickness.py --runs warp/runs --methods rotate,g2k9r10 \
        --cls zechstein
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

#: Depth below the body's top where the first band ends (the top rows: the boundary).
TOP_ROWS = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="A benchmark's runs/ folder.")
    parser.add_argument("--methods", required=True, help="Comma-separated entries to read.")
    parser.add_argument("--cls", default="zechstein", help="The class to look at (a name).")
    parser.add_argument(
        "--views", default="inline", help="Comma-separated views of the test predictions."
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="Body thickness that splits the rows (default: the class's thickest training "
        "body); fix it to compare runs trained on different data.",
    )
    return parser.parse_args()


def body_geometry(labels: np.ndarray, cls: int) -> tuple[np.ndarray, np.ndarray]:
    """Thickness of the body each pixel of class ``cls`` belongs to, and its depth below the
    body's top (:func:`segforget.analysis.body_thickness`, 0 for the other pixels).

    Args:
        labels: (N, H, W) sections, depth down axis 1.
        cls: the class.

    Returns:
        ``thickness`` and ``below_top``, each (N, H, W) int64.
    """
    from segforget.analysis import body_thickness

    labels = np.asarray(labels)
    thickness, below_top = body_thickness(labels)
    inside = labels == cls
    return np.where(inside, thickness, 0), np.where(inside, below_top, 0)


def band_names(limit: int, as_training: bool = True) -> list[str]:
    """The table's rows for a thickness ``limit`` (``as_training``: the training maximum)."""
    return [
        f"body <= {limit}{' (as in training)' if as_training else ''}, top {TOP_ROWS} rows",
        f"body <= {limit}, deeper",
        f"body > {limit}, top {TOP_ROWS} rows",
        f"body > {limit}, {TOP_ROWS}-{limit - 1} rows below its top",
        f"body > {limit}, {limit}+ rows below its top",
    ]


def bands(thickness: np.ndarray, below_top: np.ndarray, limit: int) -> np.ndarray:
    """Row of :func:`band_names` for each pixel (-1 outside the class), same shape."""
    thick = thickness > limit
    top = below_top < TOP_ROWS
    band = np.where(thick, np.where(top, 2, np.where(below_top < limit, 3, 4)), np.where(top, 0, 1))
    return np.where(thickness > 0, band, -1)


def method_table(
    method_dir: Path, cls_name: str, views: list[str], limit: int | None = None
) -> tuple[list[str], np.ndarray, int, int, list[str]]:
    """Test pixels of ``cls_name`` by band and predicted class, summed over a method's seeds,
    the test splits and ``views``.

    Args:
        limit: the thickness that splits the bands (default: the thickest body of the class
            in the training labels).

    Returns:
        (row names, (5, C) pixels per band and predicted class, the training maximum
        thickness, number of seeds, class names).
    """
    from segforget.data import load_data

    seeds = sorted(method_dir.glob("seed*/predictions"))
    if not seeds:
        raise SystemExit(f"Expected runs with test predictions under {method_dir}, got none")
    config = yaml.safe_load((seeds[0].parent / "config.yaml").read_text())
    data = load_data(str(config["data"]["spec"]))
    names = list(data.class_names)
    if cls_name not in names:
        raise SystemExit(f"Expected --cls to be one of {names}, got {cls_name!r}")
    cls = names.index(cls_name)
    train = np.asarray(data.label_sections("train+val", views[0]))
    thickest = int(body_geometry(train, cls)[0].max())
    if thickest == 0:
        raise SystemExit(f"Expected class {cls_name!r} in the training labels, got none")
    if limit is not None and limit < 1:
        raise SystemExit(f"Expected --limit to be >= 1, got {limit}")
    limit = thickest if limit is None else limit
    predicted = np.zeros((5, len(names)), np.int64)
    for split in data.test_splits:
        for view in views:
            labels = np.asarray(data.label_sections(split, view))
            band = bands(*body_geometry(labels, cls), limit)
            for folder in seeds:
                prediction = np.load(folder / f"{split}_{view}.npy")
                for b in range(5):
                    hit = prediction[band == b].astype(np.int64)
                    predicted[b] += np.bincount(hit, minlength=len(names))[: len(names)]
    return band_names(limit, limit == thickest), predicted, thickest, len(seeds), names


def main() -> None:
    args = parse_args()
    views = [v for v in args.views.split(",") if v]
    for method in [m for m in args.methods.split(",") if m]:
        rows, predicted, thickest, seeds, names = method_table(
            args.runs / method, args.cls, views, args.limit
        )
        cls = names.index(args.cls)
        print(f"{method} ({seeds} seeds; thickest {args.cls} body in training: {thickest} rows)")
        print("| test pixels | px per seed | accuracy | most frequent wrong class |")
        print("|---|---:|---|---|")
        for name, counts in zip(rows, predicted):
            total = int(counts.sum())
            if total == 0:
                print(f"| {name} | 0 | - | - |")
                continue
            wrong = counts.copy()
            wrong[cls] = -1
            other = int(wrong.argmax())
            print(
                f"| {name} | {total / seeds:.0f} | {counts[cls] / total:.3f} | "
                f"{names[other]} {counts[other] / total:.3f} |"
            )
        print()


if __name__ == "__main__":
    main()
