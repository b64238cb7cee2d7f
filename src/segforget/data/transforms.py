"""Transforms of dataset items that move ``pixel_index`` exactly like the label.

Every transform is a callable ``transform(item, generator=None) -> item`` that returns a new
dict and never modifies the input tensors. ``item`` holds ``image`` (C, H, W) float,
``label`` (H, W) int64 and ``pixel_index`` (H, W) int64 (plus any other keys, passed through).

Randomness comes from a ``torch.Generator``: the one passed to the call, else the one given to
the constructor, else torch's global generator (which DataLoader workers seed). Inside a
DataLoader worker a constructor generator is replaced by one derived from it and the worker's
seed, so workers do not repeat each other's augmentations.

Geometry: label and pixel_index are moved by nearest neighbour, so for every output pixel with
``pixel_index >= 0`` the label is the source label of that pixel. Pixels with no source (padding,
corners uncovered by a rotation) get image 0, label ``ignore_index`` and pixel_index -1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "Transform",
    "Compose",
    "HorizontalFlip",
    "RandomCrop",
    "RandomRotation",
    "AdditiveNoise",
    "PadToMultiple",
    "pad_item",
]

Item = dict[str, Any]


class Transform:
    """Base class: holds the optional generator and the ignore index."""

    def __init__(self, *, generator: torch.Generator | None = None, ignore_index: int = 255):
        self.generator = generator
        self.ignore_index = int(ignore_index)

    def _generator(self, generator: torch.Generator | None) -> torch.Generator | None:
        if generator is not None or self.generator is None:
            return generator
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is None:
            return self.generator
        # In a DataLoader worker every worker holds a copy of the constructor's generator;
        # drawing from the copies would repeat the same augmentation in every worker. Derive
        # one generator per worker (and per epoch: info.seed changes) from both seeds instead.
        key = (info.id, info.seed)
        if getattr(self, "_worker_key", None) != key:
            seed = (self.generator.initial_seed() * 1_000_003 + info.seed) % (2**63)
            self._worker_generator = torch.Generator().manual_seed(seed)
            self._worker_key = key
        return self._worker_generator

    def _uniform(self, generator: torch.Generator | None) -> float:
        return float(torch.rand((), generator=self._generator(generator)))

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if "generator" not in k and k[0] != "_"}
        args = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order, all drawing from the same generator.

    Args:
        transforms: callables ``item -> item`` (``generator`` is passed to those that take it).
    """

    def __init__(
        self, transforms: Sequence[Callable[..., Item]], *, generator: torch.Generator | None = None
    ):
        super().__init__(generator=generator)
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Expected `transforms` to hold callables, got {t!r}")

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        generator = self._generator(generator)
        for t in self.transforms:
            item = t(item, generator) if isinstance(t, Transform) else t(item)
        return item


class HorizontalFlip(Transform):
    """Flip left-right (along W) with probability ``p``."""

    def __init__(
        self, p: float = 0.5, *, generator: torch.Generator | None = None, ignore_index: int = 255
    ):
        super().__init__(generator=generator, ignore_index=ignore_index)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Expected `p` to be in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        if self._uniform(generator) >= self.p:
            return dict(item)
        out = dict(item)
        out["image"] = item["image"].flip(-1)
        out["label"] = item["label"].flip(-1)
        out["pixel_index"] = item["pixel_index"].flip(-1)
        return out


def pad_item(item: Item, bottom: int, right: int, ignore_index: int = 255) -> Item:
    """Pad an item at the bottom and right: image 0, label ``ignore_index``, pixel_index -1."""
    out = dict(item)
    if bottom == 0 and right == 0:
        return out
    out["image"] = F.pad(item["image"], (0, right, 0, bottom), value=0.0)
    out["label"] = F.pad(item["label"], (0, right, 0, bottom), value=ignore_index)
    out["pixel_index"] = F.pad(item["pixel_index"], (0, right, 0, bottom), value=-1)
    return out


class RandomCrop(Transform):
    """Cut a random (height, width) window; smaller items are padded first (bottom/right).

    Args:
        size: (height, width) of the window, or one int for a square.
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        *,
        generator: torch.Generator | None = None,
        ignore_index: int = 255,
    ):
        super().__init__(generator=generator, ignore_index=ignore_index)
        pair = (size, size) if isinstance(size, int) else tuple(size)
        if len(pair) != 2 or any(isinstance(v, bool) or int(v) < 1 for v in pair):
            raise ValueError(f"Expected `size` to be a positive int or (int, int), got {size!r}")
        self.size = (int(pair[0]), int(pair[1]))

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        height, width = item["label"].shape
        out = pad_item(
            item, max(self.size[0] - height, 0), max(self.size[1] - width, 0), self.ignore_index
        )
        height, width = out["label"].shape
        gen = self._generator(generator)
        top = int(torch.randint(0, height - self.size[0] + 1, (), generator=gen))
        left = int(torch.randint(0, width - self.size[1] + 1, (), generator=gen))
        rows, cols = slice(top, top + self.size[0]), slice(left, left + self.size[1])
        out["image"] = out["image"][:, rows, cols].clone()
        out["label"] = out["label"][rows, cols].clone()
        out["pixel_index"] = out["pixel_index"][rows, cols].clone()
        return out


class RandomRotation(Transform):
    """Rotate about the centre by an angle drawn uniformly from [-max_degrees, max_degrees].

    The output keeps the input's shape. The image is resampled bilinearly; label and
    pixel_index by nearest neighbour on the same geometry. Output pixels whose source falls
    outside the input get image 0, label ``ignore_index`` and pixel_index -1.

    Args:
        max_degrees: largest absolute angle, in degrees (>= 0).
        p: probability of rotating at all.
    """

    def __init__(
        self,
        max_degrees: float,
        *,
        p: float = 1.0,
        generator: torch.Generator | None = None,
        ignore_index: int = 255,
    ):
        super().__init__(generator=generator, ignore_index=ignore_index)
        if not math.isfinite(float(max_degrees)) or float(max_degrees) < 0:
            raise ValueError(
                f"Expected `max_degrees` to be a finite number >= 0, got {max_degrees!r}"
            )
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Expected `p` to be in [0, 1], got {p!r}")
        self.max_degrees = float(max_degrees)
        self.p = float(p)

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        gen = self._generator(generator)
        apply = float(torch.rand((), generator=gen)) < self.p
        angle = (2.0 * float(torch.rand((), generator=gen)) - 1.0) * self.max_degrees
        if not apply or angle == 0.0:
            return dict(item)
        return rotate_item(item, angle, self.ignore_index)


def rotate_item(item: Item, degrees: float, ignore_index: int = 255) -> Item:
    """Rotate an item by ``degrees`` (counter-clockwise) about its centre; see RandomRotation."""
    label = item["label"]
    height, width = label.shape
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    ys = torch.arange(height, dtype=torch.float64).view(-1, 1) - cy
    xs = torch.arange(width, dtype=torch.float64).view(1, -1) - cx
    # Inverse mapping: the source of each output pixel (rows grow downwards).
    src_x = cos * xs - sin * ys + cx
    src_y = sin * xs + cos * ys + cy
    near_x = torch.round(src_x).long()
    near_y = torch.round(src_y).long()
    valid = (near_x >= 0) & (near_x < width) & (near_y >= 0) & (near_y < height)
    flat = (near_y.clamp(0, height - 1) * width + near_x.clamp(0, width - 1)).view(-1)

    out = dict(item)
    out["label"] = torch.where(
        valid, label.reshape(-1)[flat].view(height, width), torch.full_like(label, ignore_index)
    )
    pixel_index = item["pixel_index"]
    out["pixel_index"] = torch.where(
        valid,
        pixel_index.reshape(-1)[flat].view(height, width),
        torch.full_like(pixel_index, -1),
    )
    image = item["image"]
    # grid_sample wants coordinates in [-1, 1] (align_corners=True: -1 and 1 are pixel centres).
    grid_x = src_x / max(width - 1, 1) * 2.0 - 1.0
    grid_y = src_y / max(height - 1, 1) * 2.0 - 1.0
    grid = torch.stack((grid_x, grid_y), dim=-1).to(torch.float32)[None]  # (1, H, W, 2)
    rotated = F.grid_sample(
        image[None].to(torch.float32),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )[0]
    out["image"] = torch.where(valid, rotated, torch.zeros_like(rotated)).to(image.dtype)
    return out


class AdditiveNoise(Transform):
    """Add Gaussian noise of standard deviation ``std`` to the image (labels unchanged).

    Pixels without a source (``pixel_index < 0``) are left unchanged.

    Args:
        std: noise standard deviation in normalized image units (>= 0).
        p: probability of adding noise.
    """

    def __init__(
        self,
        std: float,
        *,
        p: float = 1.0,
        generator: torch.Generator | None = None,
        ignore_index: int = 255,
    ):
        super().__init__(generator=generator, ignore_index=ignore_index)
        if not math.isfinite(float(std)) or float(std) < 0:
            raise ValueError(f"Expected `std` to be a finite number >= 0, got {std!r}")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Expected `p` to be in [0, 1], got {p!r}")
        self.std = float(std)
        self.p = float(p)

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        gen = self._generator(generator)
        out = dict(item)
        if float(torch.rand((), generator=gen)) >= self.p or self.std == 0.0:
            return out
        image = item["image"]
        noise = (self.std * torch.randn(image.shape, generator=gen, dtype=torch.float32)).to(
            image.dtype
        )
        if "pixel_index" in item:  # pixels with no source (padding, corners) stay 0
            noise = noise * (item["pixel_index"] >= 0).to(image.dtype)
        out["image"] = image + noise
        return out


class PadToMultiple(Transform):
    """Pad at the bottom and right so that H and W are multiples of ``multiple``.

    Encoders with 5 downsampling stages need multiples of 32. Padding: image 0 (the training
    mean after normalization), label ``ignore_index``, pixel_index -1. Crop predictions back
    with ``prediction[..., :H, :W]``.

    Args:
        multiple: the required divisor of H and W (>= 1).
    """

    def __init__(
        self,
        multiple: int = 32,
        *,
        generator: torch.Generator | None = None,
        ignore_index: int = 255,
    ):
        super().__init__(generator=generator, ignore_index=ignore_index)
        if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
            raise ValueError(f"Expected `multiple` to be an int >= 1, got {multiple!r}")
        self.multiple = multiple

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        height, width = item["label"].shape
        bottom = -height % self.multiple
        right = -width % self.multiple
        return pad_item(item, bottom, right, self.ignore_index)
