"""The hook interface through which a training method changes what the model sees.

The training loop knows nothing about individual methods: it asks the configured
:class:`TrainingMethod` for sampling weights, passes every training batch through
:meth:`TrainingMethod.transform_batch`, asks for per-pixel loss weights, lets it wrap the model,
and tells it when an epoch ends (with the live trackers, for online methods). ``baseline`` is
the identity on all hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn


class TrainingMethod:
    """Base class: every hook is the identity. Subclasses override what they need.

    A batch is the dict the data loader yields: ``image`` (B, C, H, W) float32,
    ``label`` (B, H, W) int64, ``pixel_index`` (B, H, W) int64 (negative: no source pixel),
    ``view`` (list of B str, all equal), ``section`` (B,) int64.
    """

    name: str = "baseline"

    def setup(self, *, data: Any, num_classes: int, ignore_index: int, seed: int) -> None:
        """Called once before training with the loaded data set."""

    def sampler_weights(self, view: str, sections: np.ndarray) -> np.ndarray | None:
        """Relative sampling weight of each training section of ``view`` (None: uniform).

        Args:
            view: the view name (``"inline"``, ``"crossline"``, ``"image"``).
            sections: (S,) int64 section numbers of the training sections of that view.
        """
        return None

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        """Return the (possibly altered) training batch. Labels and pixel_index must stay valid."""
        return batch

    def loss_weights(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """Per-pixel weights of the training loss for a (transformed) batch, or None (all 1).

        Returns:
            (B, H, W) float32 weights >= 0; the loss is the weighted mean over labeled pixels.
        """
        return None

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Return the model to train (e.g. with a feature-statistics module inserted)."""
        return model

    def extra_loss(
        self, batch: dict[str, Any], image: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor | None:
        """An extra term of the training loss for a (transformed) batch, or None.

        Args:
            batch: the batch (CPU tensors, as :meth:`transform_batch` returned it).
            image: (B, C, H, W) the batch's images on the model's device.
            logits: (B, K, H, W) the model's output for ``image`` (part of the graph).

        Returns:
            A scalar tensor added to the loss, or None.
        """
        return None

    def after_step(self, model: nn.Module) -> None:
        """Called after every optimizer step with the trained model (e.g. to average it)."""

    def on_epoch_end(self, epoch: int, trackers: Mapping[str, Any]) -> None:
        """Called after each epoch with the live trackers by name (online methods refresh here)."""

    def epoch_summary(self) -> dict[str, Any]:
        """Plain values recorded in the run's history after each epoch (``"method"``; {}: none)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
