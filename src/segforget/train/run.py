"""Read a finished run directory: configuration, metrics, dynamics stores and predictions.

Layout (written by :func:`segforget.train.train`)::

    RUN/config.yaml                         resolved configuration + run facts (versions, command)
    RUN/metrics.json                        {"test", "test_splits", "val", "history", ...}
    RUN/checkpoints/{last,best}.pt          torch.load(weights_only=True)
    RUN/dynamics/<mode>/<split>_<view>/     ForgettingStats stores (mode: epoch | presentation)
    RUN/predictions/<split>_<view>.npy      uint8 (N, H, W) final predicted classes
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["Run", "load_run"]

_MODES = ("epoch", "presentation")


@dataclass
class Run:
    """A finished training run on disk.

    Attributes:
        path: the run directory.
        config: the saved configuration (a nested dict; ``config["run"]`` holds run facts).
        metrics: the content of metrics.json.
        data_spec: the data specification the run trained on.
    """

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    data_spec: str

    def available_stats(self) -> list[tuple[str, str, str]]:
        """(mode, split, view) of every dynamics store (``epoch`` before ``presentation``)."""
        found = []
        for mode in _MODES:
            folder = self.path / "dynamics" / mode
            if not folder.is_dir():
                continue
            # Hidden names are temporaries of a writer that was killed (segforget.io).
            stores = (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            for store in sorted(stores):
                split, sep, view = store.name.rpartition("_")
                if sep:
                    found.append((mode, split, view))
        return found

    def stats(self, mode: str, split: str, view: str) -> Any:
        """The :class:`~segforget.dynamics.ForgettingStats` of (mode, split, view).

        Raises:
            ValueError: no such store in this run (the message lists the available ones).
        """
        from segforget.dynamics import ForgettingStats

        if (mode, split, view) not in self.available_stats():
            raise ValueError(
                f"Expected (mode, split, view) to be one of {self.available_stats()}, "
                f"got {(mode, split, view)}"
            )
        return ForgettingStats.load(self.path / "dynamics" / mode / f"{split}_{view}")

    def available_predictions(self) -> list[tuple[str, str]]:
        """(split, view) of every saved prediction array."""
        folder = self.path / "predictions"
        if not folder.is_dir():
            return []
        files = sorted(p for p in folder.glob("*.npy") if not p.name.startswith("."))
        return [tuple(p.stem.rpartition("_")[::2]) for p in files]  # type: ignore[misc]

    def predictions(self, split: str, view: str) -> np.ndarray:
        """uint8 (N, H, W) predicted classes of every section of (split, view) (memory-mapped).

        ``split`` is ``"train"`` for the whole training volume (train and val sections) or a
        test split.

        Raises:
            ValueError: no predictions for (split, view) (the message lists the available ones).
        """
        path = self.path / "predictions" / f"{split}_{view}.npy"
        if not path.is_file():
            raise ValueError(
                f"Expected (split, view) to be one of {self.available_predictions()}, "
                f"got {(split, view)}"
            )
        return np.load(path, mmap_mode="r")

    def load_data(self) -> Any:
        """The data set the run trained on (same spec, validation split and seed)."""
        from segforget.data import load_data

        data = self.config.get("data", {})
        train = self.config.get("train", {})
        return load_data(
            self.data_spec,
            val_fraction=data.get("val_fraction", 0.1),
            seed=train.get("seed", 0),
        )


def read_mapping(file: Path, parse: Any, fix: str) -> dict[str, Any]:
    """The mapping a run file holds (YAML or JSON text); a damaged file is a ValueError naming
    it, what is wrong and ``fix``."""
    try:
        value = parse(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as error:  # JSONDecodeError too
        problem = " ".join(str(error).split())
        raise ValueError(
            f"Expected {file} to be readable, got a damaged file ({problem}); {fix}"
        ) from None
    if value is None and file.suffix == ".yaml":
        value = {}
    if not isinstance(value, dict):
        raise ValueError(
            f"Expected {file} to hold a mapping, got {type(value).__name__}; the file is "
            f"damaged: {fix}"
        )
    return value


def load_run(path: str | Path) -> Run:
    """Open a finished run directory written by ``segforget train``.

    Raises:
        FileNotFoundError: ``path`` has no config.yaml or no metrics.json (not a finished run).
        ValueError: config.yaml or metrics.json is damaged (unreadable, or not a mapping).
    """
    path = Path(path)
    config_file = path / "config.yaml"
    metrics_file = path / "metrics.json"
    if not config_file.is_file():
        raise FileNotFoundError(
            f"Expected a run directory written by `segforget train` (with config.yaml), "
            f"got {str(path)!r}"
        )
    if not metrics_file.is_file():
        raise FileNotFoundError(
            f"Expected a finished run (with metrics.json) in {str(path)!r}, got none; "
            "continue it with `segforget train --out RUN --resume`"
        )
    config = read_mapping(config_file, yaml.safe_load, "train it again with --force")
    metrics = read_mapping(
        metrics_file, json.loads, "continue it with `segforget train --out RUN --resume`"
    )
    data = config.get("data", {})
    if not isinstance(data, dict):
        raise ValueError(
            f"Expected the `data` section of {config_file} to be a mapping, got "
            f"{type(data).__name__}; train the run again with --force"
        )
    return Run(
        path=path,
        config=config,
        metrics=metrics,
        data_spec=str(config.get("data", {}).get("spec", "")),
    )
