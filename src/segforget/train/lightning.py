"""PyTorch Lightning callback that records per-pixel forgetting while a LightningModule trains.

Lightning is optional (``pip install lightning``); importing this module without it raises an
ImportError that names the command.

Your dataset returns dict items with ``image``, ``label`` and ``pixel_index`` (see
:mod:`segforget.data`), so batches carry pixel identity.

- ``mode="presentation"``: your ``training_step`` returns ``{"loss": loss, "logits": logits}``
  (logits (B, K, H, W) of the batch); the callback observes them (no extra forward pass).
- ``mode="epoch"``: after each training epoch the callback runs the module in eval mode over
  ``epoch_loader`` (your training sections without augmentation) and observes that pass.

At the end of training the statistics are saved to ``store`` (a ForgettingStats store that
``ForgettingStats.load`` and the analysis read).

Example:
    >>> callback = ForgettingCallback(num_pixels=data.space("train", "inline").num_pixels,
    ...                               num_classes=6, store="runs/pl/dynamics/epoch/train_inline",
    ...                               mode="epoch", epoch_loader=eval_loader)  # doctest: +SKIP
    >>> lightning.Trainer(callbacks=[callback]).fit(module, train_loader)      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - exercised only without lightning
    raise ImportError(
        "segforget.train.lightning needs PyTorch Lightning: pip install 'segforget[lightning]' "
        "(or pip install lightning)"
    ) from exc

from segforget.dynamics import ForgettingTracker

__all__ = ["ForgettingCallback"]


class ForgettingCallback(pl.Callback):
    """Record forgetting events of every training pixel during ``Trainer.fit``.

    Args:
        num_pixels: size of the training pixel space (``data.space("train", view).num_pixels``).
        num_classes: K.
        store: where to save the statistics at the end of training (None: do not save).
        mode: ``"presentation"`` (training forward pass) or ``"epoch"`` (eval pass per epoch).
        epoch_loader: batches for the epoch pass (required in epoch mode).
        logits_key: key of the logits in the dict your ``training_step`` returns.
        ignore_index: label value that is not observed.
        confidence: record confidence/variability/AUM (default: on in epoch mode).
        history: keep every observation's correctness bit (default: on in epoch mode).
        meta: extra facts saved with the statistics (e.g. section_shape, view).
        warmup_epochs: epochs whose observations are skipped (0: record from the first);
            e.g. for switch counts of an unlabeled pool passed as ``epoch_loader``, which a
            freshly initialized model's flips would otherwise dominate.

    Attributes:
        tracker: the live :class:`~segforget.dynamics.ForgettingTracker`.
    """

    def __init__(
        self,
        num_pixels: int,
        num_classes: int,
        *,
        store: str | Path | None = None,
        mode: Literal["presentation", "epoch"] = "presentation",
        epoch_loader: Iterable[dict[str, Any]] | None = None,
        logits_key: str = "logits",
        ignore_index: int = 255,
        confidence: bool | None = None,
        history: bool | None = None,
        meta: dict[str, Any] | None = None,
        warmup_epochs: int = 0,
    ) -> None:
        super().__init__()
        if (
            isinstance(warmup_epochs, bool)
            or not isinstance(warmup_epochs, int)
            or warmup_epochs < 0
        ):
            raise ValueError(
                f"Expected `warmup_epochs` to be an integer >= 0, got {warmup_epochs!r}"
            )
        self.warmup_epochs = warmup_epochs
        if mode not in ("presentation", "epoch"):
            raise ValueError(f"Expected `mode` to be presentation or epoch, got {mode!r}")
        if mode == "epoch" and epoch_loader is None:
            raise ValueError(
                "Expected `epoch_loader` (batches of the training sections without augmentation) "
                "in epoch mode, got None"
            )
        self.mode = mode
        self.store = None if store is None else Path(store)
        self.epoch_loader = epoch_loader
        self.logits_key = logits_key
        self.meta = dict(meta or {})
        self.tracker = ForgettingTracker(
            num_pixels,
            num_classes,
            ignore_index=ignore_index,
            confidence=(mode == "epoch") if confidence is None else confidence,
            history=(mode == "epoch") if history is None else history,
        )
        self._epochs = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.tracker = _moved(self.tracker, pl_module.device)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.mode != "presentation" or self._epochs < self.warmup_epochs:
            return
        if not isinstance(outputs, dict) or self.logits_key not in outputs:
            raise ValueError(
                f"Expected training_step to return a dict with {self.logits_key!r} (B, K, H, W) "
                f"in presentation mode, got {type(outputs).__name__}"
            )
        logits = outputs[self.logits_key].detach()
        self.tracker.update(logits, batch["label"], batch["pixel_index"])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epochs += 1
        if self.mode != "epoch" or self._epochs <= self.warmup_epochs:
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.inference_mode():
            for batch in self.epoch_loader:
                logits = pl_module(batch["image"].to(pl_module.device))
                self.tracker.update(logits, batch["label"], batch["pixel_index"])
        pl_module.train(was_training)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.store is None or not trainer.is_global_zero:
            return
        meta = {
            "mode": self.mode,
            "epochs": self._epochs,
            "warmup_epochs": self.warmup_epochs,
            **self.meta,
        }
        self.tracker.compute(meta=meta).save(self.store)

    def state_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker.state_dict(), "epochs": self._epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state_dict["tracker"])
        self._epochs = int(state_dict["epochs"])


def _moved(tracker: ForgettingTracker, device: torch.device) -> ForgettingTracker:
    if tracker.device == torch.device(device):
        return tracker
    moved = ForgettingTracker(
        tracker.num_pixels,
        tracker.num_classes,
        ignore_index=tracker.ignore_index,
        device=device,
        confidence=tracker.confidence,
        history=tracker.history,
    )
    moved.load_state_dict(tracker.state_dict())
    return moved
