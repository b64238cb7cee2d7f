"""Named callback events of the training loop, and the callbacks segforget ships.

Events, in the order the :class:`~segforget.train.loop.Trainer` emits them::

    on_train_start(trainer)
    per epoch:
        on_epoch_start(trainer, epoch)
        on_batch_end(trainer, batch, logits, loss)       # every training batch
        on_epoch_end(trainer, epoch, record)             # after validation; record -> history
        on_checkpoint(trainer, epoch, path)              # after RUN/checkpoints/last.pt is taken
    on_train_end(trainer, metrics)

``epoch`` is 0-based; ``record`` is the epoch's history entry (a dict callbacks may extend).
With ``train.checkpoint_async`` (the default) the checkpoint is written in the background: it
is on disk once the next epoch's checkpoint is taken, the run finishes, or the run stops (a
callback's exception included); ``trainer.wait_for_checkpoints()`` waits for it.
The trackers are callbacks too: :class:`PresentationTracking` observes ``on_batch_end``,
:class:`EpochTracking` runs its clean pass ``on_epoch_end``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from segforget.viz.numbers import format_percent

if TYPE_CHECKING:
    from segforget.train.loop import Trainer

__all__ = [
    "Callback",
    "PresentationTracking",
    "EpochTracking",
    "ProgressReporter",
    "TensorBoardLogger",
    "tracking_summary",
]


class Callback:
    """Base class: every event is a no-op; override what you need."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first epoch (also after a resume)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before the epoch's first batch."""

    def on_batch_end(
        self, trainer: Trainer, batch: dict[str, Any], logits: torch.Tensor, loss: torch.Tensor
    ) -> None:
        """After the optimizer step of a training batch (``logits`` (B, K, H, W), detached)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        """After training and validation of the epoch; ``record`` becomes its history entry."""

    def on_checkpoint(self, trainer: Trainer, epoch: int, path: Any) -> None:
        """After the epoch's checkpoint is taken (rank 0 writes it, in the background with
        ``train.checkpoint_async``; every rank gets the event)."""

    def on_train_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After the final metrics are computed."""


def tracking_summary(tracker: Any) -> dict[str, float]:
    """Shares of observed pixels that were forgotten at least once, learned, never learned
    (:meth:`ForgettingTracker.summary`: reduced on the tracker's device)."""
    return tracker.summary()


class PresentationTracking(Callback):
    """Feed the training forward pass to the ``presentation`` trackers, through augmentation."""

    def on_batch_end(self, trainer, batch, logits, loss) -> None:
        view = batch["view"][0]
        tracker = trainer.trackers.get(("presentation", "train", view))
        if tracker is None:
            return
        label, pixel_index = batch["label"], batch["pixel_index"]
        if pixel_index.shape[-1] > 1:
            # Undo horizontal flips (same permutation for logits, label and index, so the
            # observations are unchanged): whole unflipped sections take the tracker's fast
            # contiguous-block path instead of a scatter.
            flipped = pixel_index[:, 0, 0] > pixel_index[:, 0, -1]  # (B,)
            if bool(flipped.any()):
                on_device = flipped.to(logits.device, non_blocking=True)
                logits = torch.where(on_device.view(-1, 1, 1, 1), logits.flip(-1), logits)
                on_device = flipped.to(label.device, non_blocking=True)
                label = torch.where(on_device.view(-1, 1, 1), label.flip(-1), label)
                pixel_index = torch.where(flipped.view(-1, 1, 1), pixel_index.flip(-1), pixel_index)
        tracker.update(logits, label, pixel_index)

    def on_epoch_end(self, trainer, epoch, record) -> None:
        for key, tracker in trainer.trackers.items():
            if key[0] == "presentation":
                record.setdefault("tracking", {})["/".join(key)] = tracking_summary(tracker)


class EpochTracking(Callback):
    """After each epoch, a clean eval-mode pass over all training (and test) sections; the
    test sections only once ``track.test_warmup`` epochs are done."""

    def on_epoch_end(self, trainer, epoch, record) -> None:
        started = time.perf_counter()
        for (mode, split, view), tracker in trainer.trackers.items():
            if mode != "epoch":
                continue
            if split != "train" and epoch < trainer.config.track.test_warmup:
                continue
            dataset = trainer.data.dataset(split, view)

            def observe(logits, batch, tracker=tracker):
                if batch is None:
                    # This rank has nothing left; the distributed tracker still needs the call.
                    shape = (0, trainer.data.num_classes, 1, 1)
                    logits = torch.zeros(shape, device=trainer.device)
                    tracker.update(
                        logits,
                        torch.zeros((0, 1, 1), dtype=torch.int64),
                        torch.zeros((0, 1, 1), dtype=torch.int64),
                    )
                    return
                tracker.update(logits, batch["label"], batch["pixel_index"])

            trainer.evaluate(dataset, [observe], description=f"track {split} {view}")
        record["tracking_pass_s"] = time.perf_counter() - started
        for key, tracker in trainer.trackers.items():
            if key[0] == "epoch":
                record.setdefault("tracking", {})["/".join(key)] = tracking_summary(tracker)


class ProgressReporter(Callback):
    """rich progress bar per epoch (loss, sections/s, ETA) and one summary line per epoch."""

    def __init__(self) -> None:
        self._progress = None
        self._task = None
        self._started = 0.0
        self._seen = 0

    def on_train_start(self, trainer) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:.1f} sections/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=trainer.console,
            transient=True,
        )
        self._progress.start()

    def on_epoch_start(self, trainer, epoch) -> None:
        total = trainer.batches_per_epoch()
        self._task = self._progress.add_task(
            f"epoch {epoch + 1}/{trainer.config.train.epochs}", total=total, loss=0.0, rate=0.0
        )
        self._started = time.perf_counter()
        self._seen = 0

    def on_batch_end(self, trainer, batch, logits, loss) -> None:
        self._seen += int(batch["image"].shape[0])
        rate = self._seen / max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(self._task, advance=1, loss=float(loss), rate=rate)

    def on_epoch_end(self, trainer, epoch, record) -> None:
        self._progress.remove_task(self._task)
        val = record.get("val") or {}
        parts = [f"epoch {record['epoch']}/{trainer.config.train.epochs}"]
        parts.append(f"loss {record['train_loss']:.4f}")
        if val.get("miou") is not None:
            parts.append(f"val mIoU {val['miou']:.3f}")
        forgotten = [
            f"{key.split('/')[0]}/{key.split('/')[2]} "
            f"{format_percent(summary['forgotten_fraction'])}"
            for key, summary in (record.get("tracking") or {}).items()
            if "forgotten_fraction" in summary and key.split("/")[1] == "train"
        ]
        if forgotten:
            parts.append("forgotten " + " ".join(forgotten))
        parts.append(f"{record['time_s']:.1f}s")
        # One line per epoch also in log files (a terminal wraps it; rich would cut it at 80).
        trainer.console.print("  ".join(parts), soft_wrap=True)

    def on_train_end(self, trainer, metrics) -> None:
        if self._progress is not None:
            self._progress.stop()


class TensorBoardLogger(Callback):
    """Scalars (loss, val mIoU, forgotten share) and one forgetting map per epoch.

    Writes RUN/tensorboard; used only when the ``tensorboard`` package is installed.
    """

    def __init__(self, log_dir: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_epoch_end(self, trainer, epoch, record) -> None:
        step = record["epoch"]
        self.writer.add_scalar("train/loss", record["train_loss"], step)
        val = record.get("val") or {}
        if val.get("miou") is not None:
            self.writer.add_scalar("val/miou", val["miou"], step)
        for key, summary in (record.get("tracking") or {}).items():
            if "forgotten_fraction" in summary:
                self.writer.add_scalar(f"forgotten/{key}", summary["forgotten_fraction"], step)
        for (mode, split, view), tracker in trainer.trackers.items():
            if split != "train":
                continue
            space = trainer.data.space(split, view)
            height, width = space.section_shape
            section = int(trainer.data.sections("train", view)[0])
            pixels = slice(section * height * width, (section + 1) * height * width)
            events = tracker.compute(pixels=pixels).forgetting_events
            image = events.reshape(height, width).astype(np.float32)
            image = image / max(float(image.max()), 1.0)
            self.writer.add_image(f"forgetting/{mode}_{view}", image[None], step)
            break
        self.writer.flush()

    def on_train_end(self, trainer, metrics) -> None:
        self.writer.close()
