"""Write the two data folders of the thick-body oracle: does the model learn a geometry it sees?

The synthetic survey's test volumes hold salt bodies thicker than any on a training trace, and
their interior is the class the model misses (``bench_unit_thickness.py``). Whether that is for
want of such bodies in training or something a model of this size cannot learn is answered by
training once more with the thick bodies in the training data. From an F3-layout data set
(``synthetic:small:0`` by default) this writes, in the F3 layout:

- ``OUT/A``: the train volume as it is; test2 the only test volume.
- ``OUT/B``: test1 joined to the train volume along the inlines (test1 is cut from the inlines
  just before the training block over the same crosslines, so the two are one contiguous
  block); test2 the only test volume.

Train both with one budget and compare the class's test2 accuracy by body thickness, with the
same thickness limit for both (B's training holds the thick bodies):

    python benchmarks/oracle_split.py --out oracle
    segforget benchmark --data f3:oracle/A --seeds 6 --first-seed 12 --epochs 8 \
        --model light --device cpu --out oracleA --methods baseline,rotate
    segforget benchmark --data f3:oracle/B ... --out oracleB ...
    python benchmarks/bench_unit_thickness.py --runs oracleA/runs --methods baseline,rotate \
        --limit 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder for A and B (new).")
    parser.add_argument(
        "--data", default="synthetic:small:0", help="An F3-layout data spec with test1, test2."
    )
    parser.add_argument("--force", action="store_true", help="Replace OUT/A and OUT/B.")
    return parser.parse_args()


def oracle_volumes(
    volumes: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The volumes of folders A and B from a data set's ``train``, ``test1`` and ``test2``.

    Args:
        volumes: name -> (seismic, labels), each (inline, crossline, depth); test1 shares the
            train volume's crosslines and depth.

    Returns:
        ``{"A": {"train": ..., "test2": ...}, "B": {"train": test1 + train, "test2": ...}}``.

    Raises:
        ValueError: without test1 and test2, or when test1's crosslines or depth differ.
    """
    missing = sorted({"train", "test1", "test2"} - set(volumes))
    if missing:
        raise ValueError(f"Expected the data set to hold train, test1 and test2, missing {missing}")
    train, test1, test2 = volumes["train"], volumes["test1"], volumes["test2"]
    if train[0].shape[1:] != test1[0].shape[1:]:
        raise ValueError(
            "Expected test1 to share the train volume's crosslines and depth, got "
            f"{test1[0].shape} and {train[0].shape}"
        )
    joined = tuple(np.concatenate([t, r]) for t, r in zip(test1, train, strict=True))
    return {"A": {"train": train, "test2": test2}, "B": {"train": joined, "test2": test2}}


def main() -> None:
    args = parse_args()
    from segforget.data import load_data
    from segforget.data.f3 import write_f3

    data = load_data(args.data)
    volumes = {name: data.volume(name) for name in ("train", *data.test_splits)}
    for name, folder in oracle_volumes(volumes).items():
        meta = {"source": f"oracle {name} of {args.data}", "class_names": list(data.class_names)}
        path = write_f3(args.out / name, folder, metadata=meta, overwrite=args.force)
        shapes = ", ".join(f"{v} {s[0].shape}" for v, s in folder.items())
        print(f"wrote {path}: {shapes}")


if __name__ == "__main__":
    main()
