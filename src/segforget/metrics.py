"""The F3 facies benchmark's metrics, computed from a confusion matrix.

Shapes: B samples, C classes, H x W pixels.

The confusion matrix ``M`` has rows = true class and columns = predicted class; pixels whose target
equals ``ignore_index`` are left out. From it:

- ``pixel_accuracy``      = trace(M) / sum(M)
- ``class_accuracy[c]``   = M[c, c] / sum(M[c, :])                 (recall of class c)
- ``mean_class_accuracy`` = mean of the defined class accuracies
- ``class_iou[c]``        = M[c, c] / (sum(M[c, :]) + sum(M[:, c]) - M[c, c])
- ``miou``                = mean of the defined class IoUs
- ``fwiou``               = sum_c (sum(M[c, :]) / sum(M)) * class_iou[c]

Rule for absent classes: a per-class value whose denominator is zero is undefined and reported as
``None`` (class accuracy of a class with no target pixels; IoU of a class absent from both
prediction and target). Means are taken over the defined values only, so an absent class never
turns a mean into NaN. A class that is predicted but has no target pixels has IoU 0 (it is
defined and counts in ``miou``), and no class accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from segforget.ops import class_argmax

__all__ = ["ConfusionMatrix", "compute_scores", "scores_from_confusion"]

ArrayLike = torch.Tensor | np.ndarray


def _as_tensor(value: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(
        f"Expected `{name}` to be a torch.Tensor or numpy array, got {type(value).__name__}"
    )


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"Expected `num_classes` to be a positive integer, got {num_classes!r}")


def _class_labels(
    prediction: torch.Tensor, target: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring prediction to class labels of target's shape; validate shapes and dtypes."""
    if target.is_floating_point() or target.is_complex():
        raise TypeError(f"Expected `target` to hold integer class labels, got dtype {target.dtype}")
    if prediction.is_complex():
        raise TypeError(f"Expected `prediction` to be real, got dtype {prediction.dtype}")
    if prediction.dim() == target.dim() + 1:
        if prediction.shape[1] != num_classes:
            raise ValueError(
                f"Expected `prediction` logits to have num_classes={num_classes} channels in "
                f"dim 1, got shape {tuple(prediction.shape)}"
            )
        prediction = class_argmax(prediction)
    elif prediction.is_floating_point():
        raise TypeError(
            "Expected `prediction` to be integer classes of target's shape or float logits with "
            f"a class dimension, got float of shape {tuple(prediction.shape)}"
        )
    if prediction.shape != target.shape:
        raise ValueError(
            f"Expected `prediction` and `target` to have the same shape, got "
            f"{tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    return prediction, target


class ConfusionMatrix:
    """Accumulate a confusion matrix over batches on any device, merge it across processes.

    Args:
        num_classes: number of classes C.
        ignore_index: target value that is not counted.
        device: where the (C, C) int64 matrix lives.

    Example:
        >>> cm = ConfusionMatrix(3)
        >>> cm.update(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 1]]))
        >>> cm.scores()["pixel_accuracy"]
        0.6666666666666666
    """

    def __init__(
        self, num_classes: int, *, ignore_index: int = 255, device: str | torch.device = "cpu"
    ) -> None:
        _check_num_classes(num_classes)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        """Set all counts to zero."""
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, prediction: ArrayLike, target: ArrayLike) -> None:
        """Count one batch.

        Args:
            prediction: (B, C, H, W) logits/probabilities or (B, H, W) integer classes.
            target: (B, H, W) integer classes in [0, C) or ``ignore_index``.

        Raises:
            ValueError: on shape mismatch or a target value outside [0, C) that is not ignored,
                or a predicted class outside [0, C).
            TypeError: on non-tensor input or non-integer targets.
        """
        prediction = _as_tensor(prediction, "prediction").to(self.matrix.device)
        target = _as_tensor(target, "target").to(self.matrix.device)
        prediction, target = _class_labels(prediction, target, self.num_classes)
        valid = target != self.ignore_index
        target = target[valid].long()
        prediction = prediction[valid].long()
        if target.numel() == 0:
            return
        # One reduction for both range checks keeps it to a single host sync per batch.
        bad = torch.stack(
            [
                ((target < 0) | (target >= self.num_classes)).any(),
                ((prediction < 0) | (prediction >= self.num_classes)).any(),
            ]
        ).tolist()
        if bad[0]:
            found = torch.unique(target[(target < 0) | (target >= self.num_classes)])[:5].tolist()
            raise ValueError(
                f"Expected `target` values in [0, {self.num_classes}) or ignore_index="
                f"{self.ignore_index}, got {found}; check num_classes and ignore_index"
            )
        if bad[1]:
            raise ValueError(f"Expected `prediction` classes in [0, {self.num_classes})")
        flat = target * self.num_classes + prediction
        counts = torch.bincount(flat, minlength=self.num_classes**2)
        self.matrix += counts.view(self.num_classes, self.num_classes)

    def sync(self) -> None:
        """Sum the matrix over all ``torch.distributed`` ranks (a no-op without a process group)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)

    def scores(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """The benchmark metrics of everything counted so far (see module docstring)."""
        return scores_from_confusion(self.matrix.cpu().numpy(), class_names=class_names)


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> list[float | None]:
    return [float(n / d) if d > 0 else None for n, d in zip(numerator, denominator, strict=True)]


def _mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def scores_from_confusion(
    matrix: np.ndarray, *, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Compute the benchmark metrics from a (C, C) confusion matrix (rows = true class).

    Returns:
        dict with ``pixel_accuracy``, ``class_accuracy`` {name: value or None},
        ``mean_class_accuracy``, ``class_iou`` {name: value or None}, ``miou``, ``fwiou`` and
        ``confusion_matrix`` (list of lists). Values are None when nothing was counted.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"Expected `matrix` to be square (C, C), got shape {matrix.shape}")
    num_classes = matrix.shape[0]
    names = _resolve_names(class_names, num_classes)
    total = matrix.sum()
    true_per_class = matrix.sum(axis=1)
    predicted_per_class = matrix.sum(axis=0)
    hits = np.diag(matrix)
    accuracy = _safe_ratio(hits, true_per_class)
    iou = _safe_ratio(hits, true_per_class + predicted_per_class - hits)
    if total > 0:
        frequency = true_per_class / total
        fwiou = float(sum(f * (v or 0.0) for f, v in zip(frequency, iou, strict=True)))
        pixel_accuracy = float(hits.sum() / total)
    else:
        fwiou = pixel_accuracy = None
    return {
        "pixel_accuracy": pixel_accuracy,
        "class_accuracy": dict(zip(names, accuracy, strict=True)),
        "mean_class_accuracy": _mean_defined(accuracy),
        "class_iou": dict(zip(names, iou, strict=True)),
        "miou": _mean_defined(iou),
        "fwiou": fwiou,
        "confusion_matrix": matrix.tolist(),
    }


def _resolve_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(
            f"Expected `class_names` to have num_classes={num_classes} entries, got {len(names)}"
        )
    return names


def compute_scores(
    prediction: ArrayLike,
    target: ArrayLike,
    num_classes: int,
    *,
    ignore_index: int = 255,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One-shot benchmark metrics of a prediction against a target.

    Args:
        prediction: (B, C, H, W) logits or (B, H, W) / (H, W) integer classes.
        target: integer classes of the prediction's spatial shape; ``ignore_index`` is skipped.
        num_classes: number of classes C.
        ignore_index: target value that is not counted.
        class_names: optional names for the per-class dicts (default "0", "1", ...).

    Returns:
        See :func:`scores_from_confusion`.

    Raises:
        ValueError: wrong ``num_classes``, shape mismatch, labels outside [0, C) not ignored.
    """
    _check_num_classes(num_classes)
    if class_names is not None:
        _resolve_names(class_names, num_classes)
    prediction_t = _as_tensor(prediction, "prediction")
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index, device=prediction_t.device)
    cm.update(prediction_t, target)
    return cm.scores(class_names=class_names)
