"""Do bodies thickened by augmentation look like real thick bodies to a trained model?

A test class missed inside bodies thicker than any in training (``bench_unit_thickness.py``)
asks for thick bodies in training. ``warp_mode: grow``
(:func:`segforget.augment.geometry.grow_displacement`) makes them from a unit's own rows;
this script asks what they teach:

``measure``: what do trained runs predict inside bodies grown by ``--rows`` rows (each
training inline's ``--cls`` unit, at its middle)? A run that learned real thick bodies (the
oracle of ``oracle_split.py``) and gets the grown ones wrong says they are unlike real ones;
one that gets them right says they are alike.

``wrap``: is it the texture? The synthetic generator indexes the salt's layers by depth below
the salt top, so a body thicker than any in training holds layers no training body shows.
This regenerates ``synthetic:PRESET:0`` with that depth taken modulo ``--limit`` rows (the
training salt, no thicker, is unchanged) and compares the runs' accuracy inside the thick
test bodies on the original and the wrapped test volumes (inline sections).

``train``: ``segforget benchmark`` with method ``warp`` centred on a pixel of ``--cls`` (the
library's method ``warp`` centres anywhere; the region methods' ``warp_class`` does this for
selected pixels). The results are in docs/experiments/forgetting-aware-training.md:

    python benchmarks/bench_made_bodies.py measure --data f3:oracle/A --cls zechstein \
        --runs A=oracleA/runs/baseline,B=oracleB/runs/baseline
    python benchmarks/bench_made_bodies.py train --cls zechstein -- --preset small --seeds 6 \
        --first-seed 12 --epochs 8 --model light --device cpu --out grown --methods grow20 \
        --options '{"grow20": {"method": "warp", "pixels": 20.0, "mode": "grow"}}'
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
#: Rows below the top of a body thicker than ``--limit`` from which its pixels are "interior".
INTERIOR = 10


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; for ``train``, what follows ``--`` goes to ``segforget benchmark``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "command", choices=("measure", "train", "wrap"), help="See the module docstring."
    )
    parser.add_argument("--cls", default="zechstein", help="The class whose bodies grow.")
    parser.add_argument("--data", help="measure: data spec whose training sections grow.")
    parser.add_argument("--runs", help="measure: NAME=DIR,...; DIR holds seed*/ run folders.")
    parser.add_argument("--rows", type=float, default=24.0, help="measure: rows added.")
    parser.add_argument(
        "--limit",
        type=int,
        default=10,
        help="measure, wrap: a thick body's rows (wrap: the period).",
    )
    parser.add_argument("--preset", default="small", help="wrap: the synthetic preset (seed 0).")
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.rest = argv[split + 1 :]
    if args.command == "measure" and not (args.data and args.runs):
        parser.error("measure needs --data and --runs")
    if args.command == "wrap" and not args.runs:
        parser.error("wrap needs --runs")
    return args


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
    from segforget.augment.geometry import _resample, grow_displacement

    size, _, height, width = batch["image"].shape
    ys = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    xs = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
    sources = {}
    for b in range(size):
        centre = centre_of(batch["label"][b], cls)
        if centre is None:
            continue
        offset = grow_displacement(
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
    """``segforget benchmark`` with method ``warp`` centred on a pixel of ``--cls`` (a sample
    without one takes a random centre, as the method's own draw would)."""
    from segforget.augment import geometry, methods
    from segforget.classes import F3_CLASS_NAMES
    from segforget.cli import main

    if args.cls not in F3_CLASS_NAMES:
        raise SystemExit(f"Expected --cls to be one of {list(F3_CLASS_NAMES)}, got {args.cls!r}")
    cls = F3_CLASS_NAMES.index(args.cls)

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

    methods.Warp.transform_batch = transform
    main(["benchmark", *args.rest])


def wrapped_layering(period: float) -> Any:
    """A replacement of the generator's ``_Geology._layering`` whose salt (unit 5) layer
    coordinate counts depth below the salt top modulo ``period`` rows (other units as they
    were)."""
    from segforget.data.synthetic import _Geology

    original = _Geology._layering

    def layering(self, unit, il, maps, h, zs, window, layers):
        if unit != 5:
            return original(self, unit, il, maps, h, zs, window, layers)
        blocks = self.block_offset[self.blocks[il]].astype(np.float32)[:, :, None]
        below = np.mod(zs - h[4][:, :, None], np.float32(period))
        return below / np.float32(self.layer_samples[5]) + blocks

    return layering


def wrap(args: argparse.Namespace) -> None:
    from unittest import mock

    from segforget.data.synthetic import _Geology, generate_survey

    cls = 5  # the generator's salt
    surveys = {"original": generate_survey(args.preset, seed=0)}
    with mock.patch.object(_Geology, "_layering", wrapped_layering(float(args.limit))):
        surveys["wrapped"] = generate_survey(args.preset, seed=0)
    same = np.array_equal(surveys["original"].train_labels, surveys["wrapped"].train_labels)
    print(f"training labels unchanged: {same}")
    heads = list(interior_masks(np.zeros((1, 1, 1), np.int64), cls, args.limit))
    print(f"| runs | test volumes | seeds | {' | '.join(heads)} |")
    print("|---|---|---:|" + "---|" * len(heads))
    for spec in [s for s in args.runs.split(",") if s]:
        name, _, folder = spec.partition("=")
        runs = sorted(p for p in Path(folder).glob("seed*") if (p / "checkpoints").is_dir())
        for label, survey in surveys.items():
            right = np.zeros((len(runs), 3))
            total = np.zeros(3)
            for split, (seismic, labels) in survey.volumes.items():
                if split == "train":
                    continue
                sections = np.ascontiguousarray(np.transpose(labels, (0, 2, 1))).astype(np.int64)
                raw = torch.from_numpy(np.ascontiguousarray(np.transpose(seismic, (0, 2, 1))))
                masks = list(interior_masks(sections, cls, args.limit).values())
                total += [m.sum() for m in masks]
                for k, run in enumerate(runs):
                    predicted = predict(run, raw[:, None])
                    right[k] += [(predicted[m] == cls).sum() for m in masks]
            acc = (right / total).mean(axis=0)
            cells = " | ".join(f"{a:.3f}" for a in acc)
            print(f"| {name} | {label} layers | {len(runs)} | {cells} |")


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    {"measure": measure, "train": train, "wrap": wrap}[arguments.command](arguments)
