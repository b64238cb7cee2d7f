"""Small tensor operations shared by the tracker, the metrics and the training loop."""

from __future__ import annotations

import torch

__all__ = ["class_argmax"]


def class_argmax(logits: torch.Tensor, *, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Predicted class per pixel: (B, C, ...) scores -> (B, ...) index of the largest, exactly
    ``logits.argmax(1)`` (the first of tied maxima; a NaN counts as the largest, the first NaN
    wins), as ``dtype``.

    On CPU torch's argmax over the class dimension is a strided reduction: 29 ms for a batch of
    8 x 6 x 280 x 160 floats on a 2-core machine, more than the tracker's whole update. Here the
    class maximum (a vectorized reduction) is taken first, then the first class reaching it,
    as the maximum of descending weights over the classes that reach it: 1.3 ms for the same
    batch. On other devices, and for integer scores or more than 255 classes, ``argmax``
    itself runs.

    Example:
        >>> class_argmax(torch.tensor([[[1.0], [3.0], [3.0]]]))
        tensor([[1]])
    """
    classes = logits.shape[1] if logits.dim() >= 2 else 0
    if logits.device.type != "cpu" or not logits.is_floating_point() or not 1 <= classes <= 255:
        return logits.argmax(1).to(dtype)
    top = logits.amax(1, keepdim=True)
    reached = logits == top
    if bool(top.isnan().any()):  # amax propagates NaN: then the NaNs are the maxima
        reached |= logits.isnan()
    shape = (1, classes) + (1,) * (logits.dim() - 2)
    weights = torch.arange(classes, 0, -1, dtype=torch.uint8).view(shape)
    first = torch.mul(reached, weights).amax(1)  # classes - index of the first maximum
    return torch.sub(classes, first).to(dtype)
