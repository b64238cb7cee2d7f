"""A tiny run directory in the layout `segforget train` writes, built without training.

Data: an F3-layout folder (train 8 inline x 10 crossline x 96 depth, test1 4 x 10 x 96) with
layered labels. "Training": for 6 epochs, predictions are the labels, wrong with a probability
that is high within 1 px of a label boundary and low elsewhere, fed through the real
ForgettingTracker (confidence + history), so forgetting is concentrated at boundaries by
construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from segforget.analysis import boundary_distance
from segforget.classes import F3_CLASS_NAMES
from segforget.dynamics import ForgettingTracker

EPOCHS = 6
TRAIN_SHAPE = (8, 10, 96)
TEST_SHAPE = (4, 10, 96)


def _volume(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    i_n, x_n, d_n = shape
    depth = np.arange(d_n)[None, None, :]
    tilt = 3 * (np.arange(x_n)[None, :, None] // 8) + 0 * np.arange(i_n)[:, None, None]
    labels = np.clip((depth + tilt) // 16, 0, 5).astype(np.uint8)
    seismic = (np.sin(depth * 1.3 + labels) + 0.3 * rng.normal(size=shape)).astype(np.float32)
    return seismic, labels


def write_f3_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    (root / "test_once").mkdir()
    s, lab = _volume(TRAIN_SHAPE, rng)
    np.save(root / "train" / "train_seismic.npy", s)
    np.save(root / "train" / "train_labels.npy", lab)
    for name in ("test1", "test2"):
        s, lab = _volume(TEST_SHAPE, rng)
        np.save(root / "test_once" / f"{name}_seismic.npy", s)
        np.save(root / "test_once" / f"{name}_labels.npy", lab)
    return root


def _sections(volume: np.ndarray, view: str) -> np.ndarray:
    if view == "inline":
        return volume.transpose(0, 2, 1)
    return volume.transpose(1, 2, 0)


def make_fake_run(root: Path, *, history: bool = True, test: bool = True) -> Path:
    """Write DATA and RUN folders under ``root``; returns the run directory."""
    data_dir = write_f3_folder(root / "data")
    run = root / "run"
    spec = f"f3:{data_dir}"
    (run / "predictions").mkdir(parents=True)
    (run / "config.yaml").write_text(
        yaml.safe_dump({"data": {"spec": spec, "val_fraction": 0.25}, "seed": 0})
    )
    (run / "metrics.json").write_text(
        '{"test": {"pixel_accuracy": 0.9, "mean_class_accuracy": 0.8, "miou": 0.7, "fwiou": 0.85,'
        ' "class_iou": {"upper_ns": 0.9}}, "val": {"miou": 0.72}, "history": []}'
    )
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(0)
    volumes = {"train": np.load(data_dir / "train" / "train_labels.npy")}
    if test:
        volumes["test1"] = np.load(data_dir / "test_once" / "test1_labels.npy")
    for split, vol in volumes.items():
        for view in ("inline", "crossline"):
            labels = _sections(vol, view).astype(np.int64)  # (N, H, W)
            n, h, w = labels.shape
            dist = boundary_distance(labels, num_classes=6)
            p_wrong = np.where(dist <= 1, 0.45, 0.03)
            tracker = ForgettingTracker(n * h * w, 6, confidence=True, history=history)
            index = torch.arange(n * h * w).reshape(n, h, w)
            target = torch.from_numpy(labels)
            for _ in range(EPOCHS):
                wrong = rng.random(labels.shape) < p_wrong
                pred = np.where(wrong, (labels + 1) % 6, labels)
                logits = torch.nn.functional.one_hot(torch.from_numpy(pred), 6).permute(0, 3, 1, 2)
                logits = 3.0 * logits.float() + torch.randn(logits.shape, generator=gen)
                tracker.update(logits, target, index)
            meta = {
                "mode": "epoch",
                "split": split,
                "view": view,
                "num_sections": n,
                "section_shape": [h, w],
                "class_names": list(F3_CLASS_NAMES),
                "data_spec": spec,
                "epochs": EPOCHS,
            }
            tracker.compute(meta=meta).save(run / "dynamics" / "epoch" / f"{split}_{view}")
            np.save(run / "predictions" / f"{split}_{view}.npy", pred.astype(np.uint8))
    return run


_ANALYZED: dict[str, object] = {}


def analyzed_fake_run(tmp_path_factory) -> tuple[Path, dict]:
    """One fake run analysed once per test session (figures are the slow part), shared by the
    analysis and report tests; treat it as read-only."""
    if "run" not in _ANALYZED:
        from segforget.analysis import analyze_run

        run = make_fake_run(tmp_path_factory.mktemp("fake"))
        _ANALYZED["summary"] = analyze_run(
            run,
            progress=False,
            chunk_pixels=2000,
            top_sections=1,
            browser_sections=4,
            min_region_size=1,
        )
        _ANALYZED["run"] = run
    return _ANALYZED["run"], _ANALYZED["summary"]
