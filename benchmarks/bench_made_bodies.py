"""Do bodies thickened by augmentation look like real thick bodies to a trained model?

A test class missed inside bodies thicker than any in training (``bench_unit_thickness.py``)
asks for thick bodies in training. This script makes them from the training sections by
repeating a unit's own rows (``warp_mode: insert``, composed until the unit has grown by
``--rows`` rows at the centre) and asks two questions:

``measure``: what do trained runs predict inside the made bodies? A run that learned real
thick bodies (the oracle of ``oracle_split.py``) and gets the made ones wrong says the made
bodies are unlike real ones; one that gets them right says they are alike.

``train``: ``segforget benchmark`` with ``warp_mode: insert`` replaced by this grown body
(only thicker, by up to ``pixels`` rows; with ``--centres class`` method ``warp`` centres it on
a pixel of ``--cls``, with ``regions-class`` the region methods' ``warp`` on a selected pixel
of ``--cls``, with ``regions`` on any selected pixel). An experiment
variant, not a library feature (the result is in docs/experiments/forgetting-aware-training.md):

    python benchmarks/bench_made_bodies.py measure --data f3:oracle/A --cls zechstein \
        --runs A=oracleA/runs/baseline,B=oracleB/runs/baseline
    python benchmarks/bench_made_bodies.py train --cls zechstein -- --preset small --seeds 6 \
        --first-seed 12 --epochs 8 --model light --device cpu --out grown --methods grow20 \
        --options '{"grow20": {"method": "warp", "pixels": 20.0, "mode": "insert"}}'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Lateral spread of a grown body's bump as a share of the section width.
SPREAD = 0.15
#: The library's insert, kept here because ``train`` replaces the library's with the grown body.
_INSERT: list[Any] = []
#: Rows below the top of a body thicker than ``--limit`` from which its pixels are "interior".
INTERIOR = 10


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; for ``train``, what follows ``--`` goes to ``segforget benchmark``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("measure", "train"), help="See the module docstring.")
    parser.add_argument("--cls", default="zechstein", help="The class whose bodies grow.")
    parser.add_argument("--data", help="measure: data spec whose training sections grow.")
    parser.add_argument("--runs", help="measure: NAME=DIR,...; DIR holds seed*/ run folders.")
    parser.add_argument("--rows", type=float, default=24.0, help="measure: rows added.")
    parser.add_argument("--limit", type=int, default=10, help="measure: a thick body's rows.")
    parser.add_argument(
        "--centres",
        choices=("class", "regions", "regions-class"),
        default="class",
        help="train: class: method warp's centres are --cls pixels; regions: the region "
        "methods' warp keeps its centres (selected pixels); regions-class: selected --cls "
        "pixels.",
    )
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.rest = argv[split + 1 :]
    if args.command == "measure" and not (args.data and args.runs):
        parser.error("measure needs --data and --runs")
    return args


def grow_offset(
    labels: torch.Tensor, *, rows: float, row: int, column: int, spread: float
) -> torch.Tensor:
    """Source offset that thickens the unit of pixel (row, column) by up to ``rows`` rows.

    Clipped inserts (:func:`segforget.augment.geometry.insert_displacement`) are composed, each
    on the labels the previous ones made, until the unit's label has ``rows * g(x)`` more
    pixels on every column (``g`` the bump's Gaussian across, 1 at ``column``) or stops
    growing (each insert also squeezes the unit's rows above its centre a little, so it adds
    fewer rows than its shift); from the second on, each is centred at the unit's top, so it
    repeats the rows a third of the way into the unit. Output row y shows source row
    ``y + offset``; the composition follows the source of the row just above each position (no
    interpolation across the seams where rows repeat).

    Args:
        labels: (H, W) one section.

    Returns:
        (H, W) float64.
    """
    from segforget.augment import geometry

    insert_displacement = _INSERT[0] if _INSERT else geometry.insert_displacement
    height, width = labels.shape
    ys = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    columns = torch.arange(width)[None, :].expand(height, width)
    unit = labels[row, column]
    before = (labels == unit).sum(dim=0)
    source = ys.clone()
    budget = abs(float(rows)) * geometry._across(width, column, spread)
    current = labels
    for _ in range(32):
        room = (budget - ((current == unit).sum(dim=0) - before)).clamp(min=0)
        if float(room.max()) < 0.5:
            break
        # The centre moves up to the unit's grown top, so that every step repeats rows a third
        # of the way into the unit on each column (not a depth the flanks do not reach).
        top = row
        while top > 0 and bool(current[top - 1, column] == unit):
            top -= 1
        offset = insert_displacement(
            current, shift=float(rows), row=top, column=column, spread=spread
        )
        peak = offset.max(dim=0).values
        offset = offset * torch.where(peak > 0, room / peak.clamp(min=1e-9), 0.0).clamp(max=1)[None]
        if float(offset.max()) < 0.5:
            break
        position = ys + offset
        floor = position.floor().long().clamp(0, height - 1)
        source = torch.gather(source, 0, floor) + (position - position.floor())
        current = labels[source.round().long().clamp(0, height - 1), columns]
    return source - ys


def centre_of(labels: torch.Tensor, cls: int) -> tuple[int, int] | None:
    """(row, column): the middle column holding ``cls``, the middle of its run there."""
    cols = torch.nonzero((labels == cls).any(dim=0)).flatten()
    if cols.numel() == 0:
        return None
    column = int(cols[cols.numel() // 2])
    rows = torch.nonzero(labels[:, column] == cls).flatten()
    return int(rows[0] + (rows[-1] - rows[0]) // 2), column


def grow_batch(batch: dict[str, Any], *, rows: float, cls: int) -> dict[str, Any]:
    """Every sample holding ``cls`` with that unit grown by ``rows`` at :func:`centre_of`."""
    from segforget.augment.geometry import _resample

    size, _, height, width = batch["image"].shape
    ys = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    xs = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
    sources = {}
    for b in range(size):
        centre = centre_of(batch["label"][b], cls)
        if centre is None:
            continue
        offset = grow_offset(
            batch["label"][b], rows=rows, row=centre[0], column=centre[1], spread=SPREAD * width
        )
        sources[b] = (xs, ys + offset)
    return _resample(batch, sources, 255)


def interior_masks(labels: np.ndarray, cls: int, limit: int) -> dict[str, np.ndarray]:
    """Pixels of ``cls`` by the thickness of their body and depth below its top."""
    from segforget.analysis import body_thickness

    thickness, below = body_thickness(labels)
    inside = labels == cls
    thick = inside & (thickness > limit)
    return {
        f"body <= {limit}": inside & (thickness <= limit),
        f"body > {limit}, < {INTERIOR} rows below its top": thick & (below < INTERIOR),
        f"body > {limit}, {INTERIOR}+ rows below its top": thick & (below >= INTERIOR),
    }


def predict(run: Path, raw: torch.Tensor) -> np.ndarray:
    """Classes (N, H, W) the run's last checkpoint predicts for raw (N, 1, H, W) amplitudes."""
    import yaml

    from segforget.data import load_data
    from segforget.models import build_model

    config = yaml.safe_load((run / "config.yaml").read_text())
    data = load_data(str(config["data"]["spec"]))
    mean, std = data.normalization
    model = build_model(
        config["model"]["name"],
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        encoder_weights=None,
    )
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    with torch.no_grad():
        parts = [model((raw[i : i + 16] - mean) / std).argmax(1) for i in range(0, len(raw), 16)]
    return torch.cat(parts).numpy()


def measure(args: argparse.Namespace) -> None:
    from segforget.data import load_data

    data = load_data(args.data)
    cls = list(data.class_names).index(args.cls)
    mean, std = data.normalization
    dataset = data.dataset("train+val", "inline")
    items = [dataset[i] for i in range(len(dataset))]
    batch = {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.stack([it["label"] for it in items]),
        "pixel_index": torch.stack([it["pixel_index"] for it in items]),
    }
    made = grow_batch(batch, rows=args.rows, cls=cls)
    labels = made["label"].numpy()
    masks = interior_masks(labels, cls, args.limit)
    before = int((batch["label"] == cls).sum())
    print(
        f"{args.cls} pixels {before} -> {int((labels == cls).sum())} after growing by "
        f"{args.rows:g} rows; " + ", ".join(f"{k}: {int(m.sum())}" for k, m in masks.items())
    )
    print("| runs | seeds | " + " | ".join(masks) + " | called (interior) |")
    print("|---|---:|" + "---|" * (len(masks) + 1))
    raw = made["image"] * std + mean
    for spec in [s for s in args.runs.split(",") if s]:
        name, _, folder = spec.partition("=")
        runs = sorted(p for p in Path(folder).glob("seed*") if (p / "checkpoints").is_dir())
        if not runs:
            raise SystemExit(f"Expected seed*/checkpoints under {folder}, got none")
        right = {k: [] for k in masks}
        called = np.zeros(len(data.class_names))
        interior = list(masks.values())[-1]
        for run in runs:
            predicted = predict(run, raw)
            for key, mask in masks.items():
                right[key].append(float((predicted[mask] == cls).mean()) if mask.any() else np.nan)
            called += np.bincount(predicted[interior], minlength=len(called))[: len(called)]
        top = int(np.argsort(called)[-1]) if called[cls] < called.max() else cls
        share = called[top] / max(called.sum(), 1)
        print(
            f"| {name} | {len(runs)} | "
            + " | ".join(f"{np.mean(v):.3f}" for v in right.values())
            + f" | {data.class_names[top]} {share:.2f} |"
        )


def train(args: argparse.Namespace) -> None:
    from segforget.augment import geometry, methods
    from segforget.cli import main

    def transform(self, batch, *, generator):
        centres = geometry.region_centres(batch["label"] == cls, generator)
        return geometry.warp_batch(
            batch,
            pixels=self.pixels,
            width=self.width,
            p=self.p,
            generator=generator,
            centres=centres,
            mode=self.mode,
            ignore_index=self.ignore_index,
        )

    def grown(labels, *, shift, row, column, spread):
        return grow_offset(labels, rows=shift, row=row, column=column, spread=spread)

    from segforget.classes import F3_CLASS_NAMES

    if args.cls not in F3_CLASS_NAMES:
        raise SystemExit(f"Expected --cls to be one of {list(F3_CLASS_NAMES)}, got {args.cls!r}")
    cls = F3_CLASS_NAMES.index(args.cls)
    original_regions = methods.RegionMethod.batch_regions

    def class_regions(self, batch):  # the warp's centres only (rotate_scope reads its own)
        return original_regions(self, batch) & (batch["label"] == cls)

    def warp_at_class(self, batch, generator):
        self.batch_regions = lambda b: class_regions(self, b)
        try:
            return original_warp(self, batch, generator)
        finally:
            del self.batch_regions

    original_warp = methods.RegionMethod._maybe_warp
    _INSERT.append(geometry.insert_displacement)
    geometry.insert_displacement = grown
    if args.centres == "class":
        methods.Warp.transform_batch = transform
    elif args.centres == "regions-class":
        methods.RegionMethod._maybe_warp = warp_at_class
    main(["benchmark", *args.rest])


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    measure(arguments) if arguments.command == "measure" else train(arguments)
