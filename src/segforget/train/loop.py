"""The training loop: one readable :class:`Trainer` with named callback events.

Reading order: :func:`train` validates everything, creates the run directory and runs a
:class:`Trainer`; :meth:`Trainer.fit` runs the epochs (train batches, validation, tracking,
checkpoint) and :meth:`Trainer.finish` computes the test metrics, predictions and dynamics
stores. Shapes: B sections per batch, C channels, K classes, H x W section size.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from segforget.io import atomic_path, atomic_write_json, atomic_write_text, is_temporary
from segforget.models import update_weight_average, weight_average
from segforget.ops import class_argmax
from segforget.train.callbacks import (
    Callback,
    EpochTracking,
    PresentationTracking,
    ProgressReporter,
    TensorBoardLogger,
)
from segforget.train.checkpoint import (
    CheckpointWriter,
    capture_rng_state,
    host_copy,
    load_checkpoint,
    restore_rng_state,
)
from segforget.train.config import RunConfig
from segforget.train.distributed import DistributedContext, setup_distributed, shard
from segforget.train.run import read_mapping

__all__ = [
    "Trainer",
    "train",
    "resume",
    "resolve_device",
    "build_method",
    "read_config",
    "check_replaceable",
    "segmentation_loss",
]

#: Files and folders of a run directory (see the README, "The run directory").
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "checkpoints/last.pt"
BEST_CHECKPOINT = "checkpoints/best.pt"
#: Every name the top level of a run directory may hold: what ``segforget train`` writes, and
#: what later commands add to it (``analyze``, ``report``, ``select``, ``label-issues`` and the
#: benchmark's timing file). ``--force`` deletes no folder holding anything else.
RUN_ENTRIES = frozenset(
    {
        CONFIG_FILE,
        METRICS_FILE,
        CHECKPOINTS,
        "dynamics",
        "predictions",
        "tensorboard",
        "analysis",
        "report.html",
        "select",
        "label_issues",
        "benchmark_wall_s.json",
    }
)


# ---------------------------------------------------------------------------------- helpers
def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda``/``cuda:N`` must exist.

    Raises:
        ValueError: unknown device name, or CUDA asked for on a machine without it.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"Expected `--device` to be auto, cpu, cuda or cuda:N, got {name!r}"
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"Expected `--device` to be available, got {name!r} but no CUDA device is "
                "available here (use --device cpu)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"Expected `--device` index below {torch.cuda.device_count()}, got {name!r}"
            )
    elif device.type != "cpu":
        raise ValueError(f"Expected `--device` to be auto, cpu, cuda or cuda:N, got {name!r}")
    return device


def build_method(name: str, options: dict[str, Any]) -> Any:
    """The :class:`~segforget.augment.base.TrainingMethod` called ``name``.

    Uses :func:`segforget.augment.build_method`; falls back to the identity method for
    ``baseline`` when that function is not available.
    """
    try:
        from segforget.augment import build_method as build
    except ImportError:
        from segforget.augment.base import TrainingMethod

        if name != "baseline" or options:
            raise ValueError(
                f"Expected `method.name` to be baseline without options (segforget.augment."
                f"build_method is not available in this installation), got {name!r}"
            ) from None
        return TrainingMethod()
    return build(name, options)


def segmentation_loss(
    logits: torch.Tensor,
    label: torch.Tensor,
    *,
    class_weights: torch.Tensor | None,
    ignore_index: int,
    pixel_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of a batch: class weights, ignored pixels, optional per-pixel weights.

    Args:
        logits: (B, K, H, W).
        label: (B, H, W) int64; ``ignore_index`` pixels do not count.
        class_weights: (K,) or None.
        pixel_weights: (B, H, W) weights >= 0 from the training method, or None.

    Returns:
        The weighted mean ``sum(p * w_c * l) / sum(p * w_c)`` over labeled pixels (``p`` pixel
        weight, ``w_c`` class weight, ``l`` per-pixel loss) -- torch's mean reduction when
        there are no pixel weights; 0 (keeping the graph) when nothing counts.
    """
    labeled = label != ignore_index
    if not bool(labeled.any()):
        # Every pixel ignored (e.g. a fully rotated-out crop): no signal, but keep the graph.
        return logits.sum() * 0.0
    if pixel_weights is None:
        return F.cross_entropy(logits, label, weight=class_weights, ignore_index=ignore_index)
    losses = F.cross_entropy(logits, label, ignore_index=ignore_index, reduction="none")
    weights = pixel_weights.to(losses.dtype) * labeled
    if class_weights is not None:
        weights = weights * class_weights[label.clamp(0, len(class_weights) - 1)]
    total = weights.sum()
    if not bool(total > 0):
        return logits.sum() * 0.0
    return (weights * losses).sum() / total


def _class_weights(config: RunConfig, num_classes: int) -> torch.Tensor | None:
    weights = config.train.class_weights
    if weights == "none":
        return None
    if weights == "f3":
        from segforget.classes import F3_CLASS_WEIGHTS

        if num_classes != len(F3_CLASS_WEIGHTS):
            raise ValueError(
                f"Expected `train.class_weights` f3 only with {len(F3_CLASS_WEIGHTS)} classes, "
                f"got data with {num_classes} classes (give a list of {num_classes} weights)"
            )
        weights = list(F3_CLASS_WEIGHTS)
    if len(weights) != num_classes:
        raise ValueError(
            f"Expected `train.class_weights` to hold {num_classes} weights (one per class), "
            f"got {len(weights)}"
        )
    return torch.tensor(weights, dtype=torch.float32)


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in ("segforget", "torch", "segmentation-models-pytorch", "timm", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def read_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` saved in ``RUN/config.yaml``.

    Raises:
        FileNotFoundError: no ``config.yaml`` in ``run_dir``.
        ValueError: a damaged ``config.yaml`` (unreadable, not a mapping, unknown keys or
            invalid values).
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected a run directory with {CONFIG_FILE}, got {str(run_dir)!r}"
        )
    saved = read_mapping(path, yaml.safe_load, "train it again with --force")
    saved.pop("run", None)
    return RunConfig.from_dict(saved)


def _collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": torch.stack([item["image"] for item in items]),  # (B, C, H, W)
        "label": torch.stack([item["label"] for item in items]),  # (B, H, W)
        "pixel_index": torch.stack([item["pixel_index"] for item in items]),  # (B, H, W)
        "view": [item["view"] for item in items],
        "section": torch.tensor([int(item["section"]) for item in items], dtype=torch.int64),
    }


def _augmentation(config: RunConfig, generator: torch.Generator, ignore_index: int) -> Any:
    from segforget.data.transforms import AdditiveNoise, Compose, HorizontalFlip, RandomRotation

    steps: list[Any] = []
    if config.data.flip:
        steps.append(HorizontalFlip(0.5, ignore_index=ignore_index))
    if config.data.rotation > 0:
        steps.append(RandomRotation(float(config.data.rotation), ignore_index=ignore_index))
    if config.data.noise > 0:
        steps.append(AdditiveNoise(float(config.data.noise), ignore_index=ignore_index))
    return Compose(steps, generator=generator) if steps else None


# ---------------------------------------------------------------------------------- trainer
class Trainer:
    """Trains one model with forgetting trackers attached; see the module docstring.

    Build it through :func:`train`, which validates the configuration and prepares the run
    directory. Attributes that callbacks use: ``config``, ``data``, ``model`` (unwrapped),
    ``device``, ``trackers`` (``{(mode, split, view): ForgettingTracker}``), ``history``,
    ``method``, ``context`` (rank and world size), ``out`` (run directory), ``console``.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        data: Any,
        views: tuple[str, ...],
        model: nn.Module,
        method: Any,
        device: torch.device,
        context: DistributedContext,
        out: Path,
        callbacks: Iterable[Callback] = (),
        console: Any = None,
    ) -> None:
        from segforget.dynamics import ForgettingTracker
        from segforget.viz.console import log_console

        self.config = config
        self.data = data
        self.views = views
        self.device = device
        self.context = context
        self.out = out
        self.method = method
        self.console = console or log_console(stderr=True)
        self._checkpoints = CheckpointWriter(background=config.train.checkpoint_async)
        seed = config.train.seed
        # Separate streams, so that e.g. turning augmentation on does not change the data order.
        self.order_generator = torch.Generator().manual_seed(seed)
        self.augment_generator = torch.Generator().manual_seed(seed + 1)
        self.model = model.to(device)
        self.train_model: nn.Module = self.model
        if context.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(
                self.model,
                device_ids=[device.index or 0] if device.type == "cuda" else None,
                # smp encoders built shallower than 5 stages keep unused deeper layers.
                find_unused_parameters=True,
            )
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
        )
        # The weight average (train.ema), when on, is the run's model: every evaluation uses it.
        self.averaged: nn.Module | None = None
        if config.train.ema > 0:
            self.averaged = weight_average(self.model)
        self.scheduler = None
        if config.train.scheduler == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=config.train.epochs
            )
        weights = _class_weights(config, data.num_classes)
        self.class_weights = None if weights is None else weights.to(device)
        self.transform = _augmentation(config, self.augment_generator, data.ignore_index)
        self.train_sets = {
            view: data.dataset("train", view, transform=self.transform) for view in views
        }
        self.val_sets = {view: data.dataset("val", view) for view in views}
        self.trackers: dict[tuple[str, str, str], Any] = {}
        for mode in config.track.modes:
            splits = ("train",)
            if mode == "epoch" and config.track.test:
                splits = ("train", *data.test_splits)
            for split in splits:
                for view in views:
                    space = data.space(split, view)
                    self.trackers[(mode, split, view)] = ForgettingTracker(
                        space.num_pixels,
                        data.num_classes,
                        ignore_index=data.ignore_index,
                        device=device,
                        confidence=config.track.confidence_for(mode),
                        history=config.track.history_for(mode),
                    )
        self.callbacks: list[Callback] = []
        if "presentation" in config.track.modes:
            self.callbacks.append(PresentationTracking())
        if "epoch" in config.track.modes:
            self.callbacks.append(EpochTracking())
        if context.is_main and config.log.progress:
            self.callbacks.append(ProgressReporter())
        if context.is_main and config.log.tensorboard:
            try:
                self.callbacks.append(TensorBoardLogger(out / "tensorboard"))
            except ImportError:
                pass  # TensorBoard is optional: without the package there is nothing to log.
        self.callbacks.extend(callbacks)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_miou: float | None = None

    # ------------------------------------------------------------------ events
    def emit(self, event: str, *args: Any) -> None:
        """Call ``event`` on every callback, in order."""
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    # ------------------------------------------------------------------ state
    def _generators(self) -> dict[str, torch.Generator]:
        return {"order": self.order_generator, "augment": self.augment_generator}

    @property
    def eval_model(self) -> nn.Module:
        """The model every evaluation pass uses: the weight average when on, else the model."""
        return self.model if self.averaged is None else self.averaged

    def _update_average(self) -> None:
        """One EMA step of the averaged weights and floating-point buffers towards the model's."""
        if self.averaged is not None:
            update_weight_average(self.averaged, self.model, float(self.config.train.ema))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: tensors and plain values only.

        ``model`` holds the run's model (the weight average when ``train.ema`` is on, with the
        trained weights under ``train_model``), so readers of a checkpoint get what was evaluated.
        """
        extra = {} if self.averaged is None else {"train_model": self.model.state_dict()}
        return {
            "format": 1,
            "epoch": self.epoch,
            "model": self.eval_model.state_dict(),
            **extra,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "trackers": {"/".join(k): t.state_dict() for k, t in self.trackers.items()},
            "method": self.method.state_dict(),
            "rng": capture_rng_state(self._generators()),
            "history": self.history,
            "best_miou": self.best_miou,
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (model, optimizer, scheduler, trackers, RNG, progress)."""
        if self.averaged is None:
            self.model.load_state_dict(state["model"])
        else:
            self.model.load_state_dict(state["train_model"])
            self.averaged.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for key, tracker in self.trackers.items():
            tracker.load_state_dict(state["trackers"]["/".join(key)])
        self.method.load_state_dict(state["method"])
        restore_rng_state(state["rng"], self._generators())
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best_miou = state["best_miou"]

    # ------------------------------------------------------------------ batches
    def _plan(self) -> list[tuple[str, list[int]]]:
        """This epoch's batches as (view, dataset positions); one view per batch.

        Every rank draws the same plan from the data-order generator and takes every
        world_size-th batch; the plan is padded by repetition so all ranks step equally often.
        """
        gen = self.order_generator
        batch_size = self.config.train.batch_size
        batches: list[tuple[str, list[int]]] = []
        for view in self.views:
            dataset = self.train_sets[view]
            count = len(dataset)
            weights = self.method.sampler_weights(view, dataset.sections)
            if weights is None:
                order = torch.randperm(count, generator=gen)
            else:
                probs = torch.as_tensor(np.asarray(weights, dtype=np.float64))
                order = torch.multinomial(probs, count, replacement=True, generator=gen)
            order = order.tolist()
            batches.extend((view, order[i : i + batch_size]) for i in range(0, count, batch_size))
        shuffled = torch.randperm(len(batches), generator=gen).tolist()
        batches = [batches[i] for i in shuffled]
        world = self.context.world_size
        if world > 1 and batches:
            padded = -(-len(batches) // world) * world
            batches = (batches * world)[:padded]
            batches = batches[self.context.rank :: world]
        return batches

    def batches_per_epoch(self) -> int:
        """Training batches per epoch on this rank."""
        count = sum(
            math.ceil(len(self.train_sets[v]) / self.config.train.batch_size) for v in self.views
        )
        return -(-count // self.context.world_size)

    def _loss(
        self, logits: torch.Tensor, label: torch.Tensor, pixel_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return segmentation_loss(
            logits,
            label,
            class_weights=self.class_weights,
            ignore_index=self.data.ignore_index,
            pixel_weights=pixel_weights,
        )

    def train_epoch(self) -> float:
        """One pass over the training sections; returns the mean batch loss (this rank)."""
        self.train_model.train()
        total, count = 0.0, 0
        for view, positions in self._plan():
            dataset = self.train_sets[view]
            batch = _collate([dataset[i] for i in positions])
            batch = self.method.transform_batch(batch, generator=self.augment_generator)
            image = batch["image"].to(self.device, non_blocking=True)
            label = batch["label"].to(self.device, non_blocking=True)
            weights = self.method.loss_weights(batch)
            if weights is not None:
                weights = weights.to(self.device, non_blocking=True)
            logits = self.train_model(image)  # (B, K, H, W)
            loss = self._loss(logits, label, weights)
            extra = self.method.extra_loss(batch, image, logits)
            if extra is not None:
                loss = loss + extra
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.train.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
            self.optimizer.step()
            self._update_average()
            self.method.after_step(self.model)
            batch["label"] = label
            self.emit("on_batch_end", batch, logits.detach(), loss.detach())
            total += float(loss.detach())
            count += 1
        return total / max(count, 1)

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics).

        DDP broadcasts them only at the start of a training forward pass, so after the last
        step each rank holds statistics of its own batches; the evaluation passes and the
        checkpoint must all use the same model.
        """
        if not self.context.enabled:
            return
        import torch.distributed as dist

        models = [self.model] if self.averaged is None else [self.model, self.averaged]
        for model in models:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    # ------------------------------------------------------------------ evaluation
    @torch.inference_mode()
    def evaluate(
        self,
        dataset: Any,
        sinks: Sequence[Callable[[torch.Tensor | None, dict[str, Any] | None], None]],
        *,
        description: str = "",
    ) -> None:
        """Eval-mode forward pass over ``dataset``; each sink gets (logits (B, K, H, W), batch).

        Under torch.distributed each rank takes every world_size-th section; a rank with
        nothing left in a round calls the sinks with (None, None) so collectives line up.
        """
        model = self.eval_model
        # The trained model goes to eval mode even when the average is evaluated: hooks of the
        # training method (the feature mixer) follow its mode and are copied into the average.
        self.model.eval()
        model.eval()
        batch_size = self.config.train.eval_batch_size or 2 * self.config.train.batch_size
        positions = shard(len(dataset), self.context)
        for start in range(0, len(positions), batch_size):
            chunk = [p for p in positions[start : start + batch_size] if p is not None]
            if not chunk:
                for sink in sinks:
                    sink(None, None)
                continue
            batch = _collate([dataset[p] for p in chunk])
            logits = model(batch["image"].to(self.device, non_blocking=True))
            for sink in sinks:
                sink(logits, batch)
        self.model.train()

    def validate(self) -> dict[str, Any] | None:
        """Scores of the current model on the validation sections of all views (None if none)."""
        from segforget.metrics import ConfusionMatrix

        if sum(len(d) for d in self.val_sets.values()) == 0:
            return None
        matrix = ConfusionMatrix(
            self.data.num_classes, ignore_index=self.data.ignore_index, device=self.device
        )

        def count(logits, batch):
            if batch is not None:
                matrix.update(class_argmax(logits), batch["label"].to(self.device))

        for view in self.views:
            self.evaluate(self.val_sets[view], [count], description=f"val {view}")
        matrix.sync()
        return matrix.scores(class_names=list(self.data.class_names))

    # ------------------------------------------------------------------ fit
    def fit(self) -> None:
        """Run the remaining epochs (all of them, or those after a resumed checkpoint)."""
        self.emit("on_train_start")
        for epoch in range(self.epoch, self.config.train.epochs):
            started = time.perf_counter()
            self.emit("on_epoch_start", epoch)
            loss = self.train_epoch()
            self._sync_buffers()
            lr = self.optimizer.param_groups[0]["lr"]
            if self.scheduler is not None:
                self.scheduler.step()
            train_s = time.perf_counter() - started
            record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss, "lr": lr}
            record["train_s"] = train_s
            val = self.validate()
            record["val"] = val
            record["time_s"] = time.perf_counter() - started
            self.emit("on_epoch_end", epoch, record)
            self.method.on_epoch_end(epoch, {"/".join(k): t for k, t in self.trackers.items()})
            summary = self.method.epoch_summary()
            if summary:
                record["method"] = summary
            record["time_s"] = time.perf_counter() - started
            self.history.append(record)
            self.epoch = epoch + 1
            improved = val is not None and (
                self.best_miou is None or (val["miou"] or 0.0) > self.best_miou
            )
            if improved:
                self.best_miou = float(val["miou"] or 0.0)
            self._save_checkpoints(best=improved or val is None)
            self.emit("on_checkpoint", epoch, self.out / LAST_CHECKPOINT)

    def _save_checkpoints(self, *, best: bool) -> None:
        """Hand this epoch's checkpoints (last, and best when it improved) to the writer: a
        host copy now, the files in the background (``train.checkpoint_async``)."""
        state = self.state_dict()
        if self.context.is_main:
            # The trackers' state dicts are fresh copies already: moved to the host, not copied.
            state = {key: host_copy(value, copy=key != "trackers") for key, value in state.items()}
            files = [(self.out / LAST_CHECKPOINT, state)]
            if best:
                best_state = {
                    "epoch": self.epoch,
                    "model": state["model"],
                    "best_miou": self.best_miou,
                    "config": state["config"],
                }
                files.append((self.out / BEST_CHECKPOINT, best_state))
            self._checkpoints.save(files)
        self.context.barrier()

    def wait_for_checkpoints(self, *, raise_errors: bool = True) -> None:
        """Block until the checkpoint being written (if any) is on disk.

        Args:
            raise_errors: re-raise a failed write's error (False: report it on the console;
                for a run that is stopping on another error).
        """
        try:
            self._checkpoints.wait()
        except Exception as exc:
            if raise_errors:
                raise
            self.console.print(f"[red]error:[/] writing the last checkpoint failed: {exc}")

    # ------------------------------------------------------------------ finish
    def finish(self) -> dict[str, Any]:
        """Test metrics, predictions of every section and the dynamics stores; writes RUN files.

        Returns:
            The metrics dict written to RUN/metrics.json.
        """
        from segforget.metrics import ConfusionMatrix

        num_classes, ignore = self.data.num_classes, self.data.ignore_index
        names = list(self.data.class_names)
        predictions: dict[str, np.ndarray] = {}

        def predictor(split: str, view: str) -> tuple[Callable, dict[int, np.ndarray]]:
            found: dict[int, np.ndarray] = {}

            def keep(logits, batch):
                if batch is not None:
                    classes = class_argmax(logits, dtype=torch.uint8).cpu().numpy()
                    for section, prediction in zip(batch["section"].tolist(), classes):
                        found[int(section)] = prediction

            return keep, found

        def gather(split: str, view: str, found: dict[int, np.ndarray]) -> None:
            if self.context.enabled:
                import torch.distributed as dist

                parts: list[Any] = [None] * self.context.world_size
                dist.all_gather_object(parts, found)
                found = {k: v for part in parts for k, v in part.items()}
            if self.context.is_main:
                space = self.data.space(split, view)
                array = np.zeros((space.num_sections, *space.section_shape), dtype=np.uint8)
                for section, prediction in found.items():
                    array[section] = prediction
                predictions[f"{space.split}_{view}"] = array

        for view in self.views:
            keep, found = predictor("train", view)
            self.evaluate(self.data.dataset("train+val", view), [keep], description="predict")
            gather("train", view, found)

        test: dict[str, Any] = {}
        overall = ConfusionMatrix(num_classes, ignore_index=ignore, device=self.device)
        for split in self.data.test_splits:
            matrix = ConfusionMatrix(num_classes, ignore_index=ignore, device=self.device)
            for view in self.views:
                keep, found = predictor(split, view)

                def count(logits, batch, matrix=matrix):
                    if batch is not None:
                        classes = class_argmax(logits)
                        label = batch["label"].to(self.device)
                        matrix.update(classes, label)
                        overall.update(classes, label)

                self.evaluate(self.data.dataset(split, view), [count, keep], description="test")
                gather(split, view, found)
            matrix.sync()
            test[split] = matrix.scores(class_names=names)
        overall.sync()
        metrics: dict[str, Any] = {}
        if self.data.test_splits:
            metrics["test"] = overall.scores(class_names=names)
            metrics["test_splits"] = test
        else:
            metrics["test"] = None
            metrics["test_splits"] = {}
        metrics["val"] = self.history[-1]["val"] if self.history else None
        metrics["history"] = self.history
        metrics["epochs"] = self.epoch
        metrics["best_val_miou"] = self.best_miou
        stats = {}
        for (mode, split, view), tracker in self.trackers.items():
            space = self.data.space(split, view)
            meta = {
                **space.meta(),
                "mode": mode,
                "split": split,
                "view": view,
                "class_names": names,
                "data_spec": self.config.data.spec,
                "epochs": self.epoch,
                "method": self.config.method.name,
                "model": self.config.model.name,
            }
            if split == "train":
                meta["train_sections"] = self.data.sections("train", view).tolist()
                meta["val_sections"] = self.data.sections("val", view).tolist()
            else:  # test sections: observed after the warm-up epochs only
                meta["warmup_epochs"] = int(self.config.track.test_warmup)
            stats[(mode, split, view)] = tracker.compute(meta=meta)
        if self.context.is_main:
            for (mode, split, view), value in stats.items():
                value.save(self.out / "dynamics" / mode / f"{split}_{view}", overwrite=True)
            for name, array in predictions.items():
                with atomic_path(self.out / "predictions" / f"{name}.npy") as tmp:
                    np.save(tmp, array)
            # metrics.json marks a finished run: the last checkpoint is complete before it.
            self.wait_for_checkpoints()
            atomic_write_json(self.out / METRICS_FILE, metrics)
        self.emit("on_train_end", metrics)
        self.context.barrier()
        return metrics


# ---------------------------------------------------------------------------------- entry points
#: The error for ``--resume`` with ``--force`` (``train`` and ``benchmark``).
RESUME_OR_FORCE = (
    "Expected one of --resume (continue what --out holds) or --force (delete it and start "
    "again), got both; pass only one"
)


def _is_run_config(path: Path) -> bool:
    """Whether ``path`` is a config.yaml written by :func:`train` (its ``run`` facts included)."""
    try:
        saved = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    if not isinstance(saved, dict) or not isinstance(saved.get("run"), dict):
        return False
    try:
        RunConfig.from_dict({k: v for k, v in saved.items() if k != "run"})
    except (TypeError, ValueError):
        return False
    return True


def check_replaceable(out: str | Path) -> None:
    """Refuse to let ``--force`` delete ``out`` unless it is recognisably a run directory.

    ``out`` qualifies when it is an empty folder (temporaries of :mod:`segforget.io` aside), or
    when its config.yaml was written by :func:`train` (it holds the ``run`` facts and valid
    configuration sections) and every other name in it is one of :data:`RUN_ENTRIES`. A user's
    folder that merely holds a file called config.yaml is therefore never deleted.

    Raises:
        ValueError: ``out`` is a file, or a folder that is not a run directory.
    """
    out = Path(out)
    if not out.is_dir():
        found = f"the file {str(out)!r}"
    else:
        names = sorted(p.name for p in out.iterdir() if not is_temporary(p))
        if not names:
            return
        stray = [name for name in names if name not in RUN_ENTRIES]
        if stray:
            found = f"{str(out)!r} holding other entries {stray[:5]}"
        elif not _is_run_config(out / CONFIG_FILE):
            found = f"{str(out)!r} without a {CONFIG_FILE} written by segforget train"
        else:
            return
    raise ValueError(
        f"Expected `--out` with --force to be a run directory ({CONFIG_FILE} written by "
        f"segforget train, and only run files), got {found}; refusing to delete it, choose "
        "another --out"
    )


def _move_aside(out: Path) -> Path | None:
    """Rename an existing run (``--force``) to a hidden sibling; return it (None: none there).

    The old run stays whole until the new one finishes (:func:`_discard`), and comes back if
    the new one fails or is interrupted (:func:`_put_back`). A process killed outright leaves
    it at ``.NAME.old-PID`` next to ``out``.
    """
    if not out.exists():
        return None
    aside = out.with_name(f".{out.name}.old-{os.getpid()}")
    if aside.exists():
        shutil.rmtree(aside)
    os.replace(out, aside)
    return aside


def _discard(aside: Path | None) -> None:
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _put_back(aside: Path, out: Path, console: Any) -> None:
    """Restore the run ``--force`` was replacing: the new, unfinished one is removed."""
    if out.exists():
        shutil.rmtree(out, ignore_errors=True)
    os.replace(aside, out)
    if console is None:
        from segforget.viz.console import log_console

        console = log_console(stderr=True)
    console.print(f"the new run did not finish; the previous run in {out} is kept")


def _prepare_out(out: Path, *, resume: bool, force: bool) -> None:
    if resume:
        if not (out / LAST_CHECKPOINT).is_file():
            raise FileNotFoundError(
                f"Expected `--out` to be a run directory with {LAST_CHECKPOINT} to resume, "
                f"got {str(out)!r}"
            )
        return
    if out.exists():
        if not force:
            raise FileExistsError(
                f"Expected `--out` not to exist, got {str(out)!r} (pass --force to replace it, "
                "or --resume to continue it)"
            )
        check_replaceable(out)


#: Settings a resumed run may change (``--epochs``, ``--device``) or that do not change results.
_RESUMABLE_CHANGES = (
    "train.epochs",
    "train.device",
    "train.threads",
    "train.checkpoint_async",
    "log.",
)

#: Keys of a checkpoint written by :meth:`Trainer.state_dict`.
_CHECKPOINT_KEYS = (
    "format", "epoch", "model", "optimizer", "scheduler", "trackers", "method", "rng", "history",
    "best_miou", "config",
)  # fmt: skip


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_resumable(
    checkpoint: dict[str, Any],
    config: RunConfig,
    *,
    path: Path,
    model: nn.Module,
    tracker_keys: set[str],
) -> None:
    """Refuse a checkpoint that this configuration cannot continue, before anything is written.

    Raises:
        ValueError: a foreign checkpoint, or one trained with another configuration.
    """
    missing = [key for key in _CHECKPOINT_KEYS if key not in checkpoint]
    if missing or checkpoint.get("format") != 1:
        found = (
            f"without {', '.join(missing)}" if missing else f"of format {checkpoint['format']!r}"
        )
        raise ValueError(
            f"Expected `{path}` to be a checkpoint written by segforget train (format 1), got one "
            f"{found}; start again with --force"
        )
    from segforget.data.spec import absolute_spec

    saved = _flatten(checkpoint["config"]) if isinstance(checkpoint["config"], dict) else {}
    if isinstance(saved.get("data.spec"), str):  # runs saved before specs were made absolute
        with contextlib.suppress(TypeError, ValueError):
            saved["data.spec"] = absolute_spec(saved["data.spec"])
    current = _flatten(config.to_dict())
    differ = [
        key
        for key in sorted(set(saved) | set(current))
        if not key.startswith(_RESUMABLE_CHANGES) and saved.get(key) != current.get(key)
    ]
    if differ:
        details = ", ".join(
            f"{key} (checkpoint {saved.get(key)!r}, config.yaml {current.get(key)!r})"
            for key in differ[:3]
        )
        raise ValueError(
            f"Expected config.yaml to match the configuration `{path}` was trained with, got "
            f"differences in {details}; restore config.yaml, or start a new run with --force"
        )
    done = checkpoint.get("epoch")
    if isinstance(done, int) and config.train.epochs < done:
        raise ValueError(
            f"Expected `--epochs` to be at least the {done} epochs `{path}` has trained, got "
            f"{config.train.epochs}; a run cannot be shortened (train a new one with --out)"
        )
    trackers = checkpoint["trackers"]
    if not isinstance(trackers, dict) or set(trackers) != tracker_keys:
        raise ValueError(
            f"Expected `{path}` to hold the trackers {sorted(tracker_keys)}, got "
            f"{sorted(trackers) if isinstance(trackers, dict) else trackers!r}; start again with "
            "--force"
        )
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"Expected `{path}` to hold the weights of model {config.model.name!r}, got others "
            f"({' '.join(str(exc).split())[:160]}); start again with --force"
        ) from None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    callbacks: Iterable[Callback] = (),
    command: Sequence[str] | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Train a model with forgetting tracking and write the run directory ``out``.

    Everything (config values, data spec, model name, method, device, output directory) is
    validated before anything is written. ``RUN/metrics.json`` is written last, so its
    presence marks a finished run; an interrupted run continues with ``resume=True``.

    Args:
        config: the run configuration (see :mod:`segforget.train.config`).
        out: the run directory to create (or to continue with ``resume``).
        resume: continue from ``out/checkpoints/last.pt`` (``config`` must be the saved one,
            see :func:`resume`).
        force: replace an existing run directory (only one :func:`check_replaceable` accepts);
            not together with ``resume``. The old run is moved aside while the new one trains
            and deleted when it finishes; if the new run fails or is interrupted, it is removed
            and the old run put back.
        callbacks: extra :class:`~segforget.train.callbacks.Callback` objects.
        command: the command line, saved in config.yaml.
        console: a rich Console for progress output (default: stderr).

    Returns:
        The metrics written to RUN/metrics.json.

    Raises:
        ValueError: invalid configuration, model name, method or device; ``resume`` and
            ``force`` together; ``force`` on a folder that is not a run directory.
        FileExistsError: ``out`` exists and neither ``force`` nor ``resume`` is given.
        FileNotFoundError: data not found, or nothing to resume in ``out``.
    """
    from segforget.data import load_data
    from segforget.data.spec import absolute_spec
    from segforget.models import build_model

    if resume and force:
        raise ValueError(RESUME_OR_FORCE)
    config.validate()
    # Saved with the data folder absolute, so analyze/select/report find it from anywhere.
    config = RunConfig.from_dict(config.to_dict())
    config.data.spec = absolute_spec(config.data.spec)
    out = Path(out)
    device = resolve_device(config.train.device)
    _prepare_out(out, resume=resume, force=force)
    data = load_data(
        config.data.spec, val_fraction=config.data.val_fraction, seed=config.train.seed
    )
    views = tuple(config.data.views or data.views)
    for view in views:
        if view not in data.views:
            raise ValueError(
                f"Expected `data.views` to hold views of {list(data.views)}, got {view!r}"
            )
    _class_weights(config, data.num_classes)
    method = build_method(config.method.name, dict(config.method.options))
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    _seed_everything(config.train.seed)
    model = build_model(
        config.model.name,
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        encoder_weights=config.model.encoder_weights,
        encoder_depth=config.model.encoder_depth,
        decoder_channels=config.model.decoder_channels,
    )
    method.setup(
        data=data,
        num_classes=data.num_classes,
        ignore_index=data.ignore_index,
        seed=config.train.seed,
    )
    model = method.wrap_model(model)
    checkpoint = load_checkpoint(out / LAST_CHECKPOINT) if resume else None
    if checkpoint is not None:
        tracker_keys = {
            f"{mode}/{split}/{view}"
            for mode in config.track.modes
            for split in (
                ("train", *data.test_splits)
                if mode == "epoch" and config.track.test
                else ("train",)
            )
            for view in views
        }
        _check_resumable(
            checkpoint, config, path=out / LAST_CHECKPOINT, model=model, tracker_keys=tracker_keys
        )

    # Validation done: from here on the run directory is written (by rank 0 only).
    context = setup_distributed(device)
    replaced: Path | None = None  # a run replaced by --force, kept aside until this one ends
    try:
        if context.enabled and device.type == "cuda":
            device = torch.device("cuda", context.local_rank)
        if context.is_main and not resume:
            replaced = _move_aside(out)
            out.mkdir(parents=True)
            saved = config.to_dict()
            saved["run"] = {
                "command": list(command) if command is not None else list(sys.argv),
                "seed": config.train.seed,
                "versions": _versions(),
                "world_size": context.world_size,
                "device": str(device),
                "data": {
                    "name": data.name,
                    "num_classes": data.num_classes,
                    "class_names": list(data.class_names),
                    "views": list(views),
                    "test_splits": list(data.test_splits),
                },
            }
            atomic_write_text(out / CONFIG_FILE, yaml.safe_dump(saved, sort_keys=False))
        context.barrier()
        trainer = Trainer(
            config,
            data=data,
            views=views,
            model=model,
            method=method,
            device=device,
            context=context,
            out=out,
            callbacks=callbacks,
            console=console,
        )
        if checkpoint is not None:
            trainer.load_state_dict(checkpoint)
        try:
            trainer.fit()
            metrics = trainer.finish()
        except BaseException:
            # Stopped (an error, Ctrl-C): the epoch's checkpoint still reaches the disk, so
            # the run can be resumed from it.
            trainer.wait_for_checkpoints(raise_errors=False)
            raise
        _discard(replaced)
        replaced = None
        return metrics
    except BaseException:
        if replaced is not None:
            _put_back(replaced, out, console)
        raise
    finally:
        context.close()


def resume(
    out: str | Path,
    *,
    epochs: int | None = None,
    device: str | None = None,
    callbacks: Iterable[Callback] = (),
    command: Sequence[str] | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Continue the run in ``out`` from its last checkpoint with its saved configuration.

    Args:
        out: the run directory.
        epochs: a new total number of epochs (to extend a finished run); None keeps it.
        device: another device for the rest of the run; None keeps the saved one.

    Raises:
        FileNotFoundError: ``out`` has no config.yaml or no checkpoint.
    """
    config = read_config(out)
    if epochs is not None:
        config.train.epochs = epochs
    if device is not None:
        config.train.device = device
    return train(config, out, resume=True, callbacks=callbacks, command=command, console=console)
