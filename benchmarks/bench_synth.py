"""Time and peak memory of ``generate_survey`` per preset, against a plain random fill.

Each preset runs in a fresh subprocess so that peak RSS (``ru_maxrss``) belongs to that run
alone. The reference fills arrays of the same shapes (float32 seismic via
``Generator.random`` and uint8 labels) in the same way, so the ratio says how much the geology
costs over merely allocating and writing the output.

``--learn SECONDS`` also checks that ``synthetic:small`` is a real learning problem: a small
U-Net trained for that long on one CPU thread, then per-class IoU on val, test1 and test2
(learned well, not perfectly; the rare classes are the hard ones).

Usage::

    .venv/bin/python benchmarks/bench_synth.py [--presets small medium f3] [--seed 0] [--learn 90]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from segforget.data.synthetic import generate_survey, survey_config

preset, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
shapes = survey_config(preset).volume_shapes
start = time.perf_counter()
if mode == "generate":
    survey = generate_survey(preset, seed=seed)
    fractions = survey.info["train_class_fractions"]
else:
    rng = np.random.default_rng(seed)
    volumes = {
        name: (rng.random(shape, dtype=np.float32), rng.integers(0, 6, shape, dtype=np.uint8))
        for name, shape in shapes.items()
    }
    fractions = None
seconds = time.perf_counter() - start
peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
print(json.dumps({"seconds": seconds, "peak_gib": peak_gib, "fractions": fractions}))
"""


def _run(preset: str, seed: int, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, preset, str(seed), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def learnability(seconds: float, seed: int) -> None:
    """Train a small U-Net on synthetic:small for ``seconds`` and print per-class IoU."""
    import time

    import numpy as np
    import segmentation_models_pytorch as smp
    import torch
    from torch.utils.data import DataLoader

    from segforget.data import Compose, HorizontalFlip, PadToMultiple, load_data

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data = load_data(f"synthetic:small:{seed}")
    model = smp.Unet(
        "resnet18",
        encoder_weights=None,
        in_channels=1,
        classes=data.num_classes,
        encoder_depth=4,
        decoder_channels=(128, 64, 32, 16),
    )
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    pad = PadToMultiple(16)
    augment = Compose([HorizontalFlip(), pad])
    loaders = [
        DataLoader(data.dataset("train", view, transform=augment), batch_size=8, shuffle=True)
        for view in data.views
    ]

    def iou(split: str) -> np.ndarray:
        k = data.num_classes
        confusion = np.zeros((k, k), dtype=np.int64)
        model.eval()
        with torch.no_grad():
            for view in data.views:
                for batch in DataLoader(data.dataset(split, view, transform=pad), batch_size=16):
                    predicted = model(batch["image"]).argmax(1)
                    keep = batch["label"] != data.ignore_index
                    pairs = batch["label"][keep] * k + predicted[keep]
                    confusion += np.bincount(pairs.numpy(), minlength=k * k).reshape(k, k)
        model.train()
        hits = np.diag(confusion)
        return hits / np.maximum(confusion.sum(0) + confusion.sum(1) - hits, 1)

    start, epochs = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for loader in loaders:
            for batch in loader:
                loss = torch.nn.functional.cross_entropy(
                    model(batch["image"]), batch["label"], ignore_index=data.ignore_index
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        epochs += 1
    print(f"learnability: {epochs} epochs in {time.perf_counter() - start:.0f} s")
    print(f"{'split':>6} {'mIoU':>6} " + " ".join(f"{n:>14}" for n in data.class_names))
    for split in ("val", *data.test_splits):
        values = iou(split)
        print(f"{split:>6} {values.mean():>6.3f} " + " ".join(f"{v:>14.3f}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "medium", "f3"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learn", type=float, default=0.0, help="seconds of learnability check")
    args = parser.parse_args()
    from segforget.data.synthetic import survey_config

    print(
        f"{'preset':>7} {'voxels':>12} {'gen s':>8} {'fill s':>8} {'ratio':>6} "
        f"{'gen GiB':>8} {'fill GiB':>9} {'ratio':>6}"
    )
    for preset in args.presets:
        generated = _run(preset, args.seed, "generate")
        reference = _run(preset, args.seed, "fill")
        voxels = sum(a * b * c for a, b, c in survey_config(preset).volume_shapes.values())
        print(
            f"{preset:>7} {voxels:>12,} {generated['seconds']:>8.2f} {reference['seconds']:>8.2f} "
            f"{generated['seconds'] / reference['seconds']:>6.1f} {generated['peak_gib']:>8.2f} "
            f"{reference['peak_gib']:>9.2f} {generated['peak_gib'] / reference['peak_gib']:>6.2f}"
        )
        fractions = generated["fractions"]
        print(
            "        train fractions: "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in fractions.items())
        )
    if args.learn > 0:
        learnability(args.learn, args.seed)


if __name__ == "__main__":
    main()
