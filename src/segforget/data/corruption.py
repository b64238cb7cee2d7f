"""Realistic label corruption of a facies volume, with the true error mask kept.

Used by the label-issue benchmark: corrupt the training labels the way interpreters get them
wrong, train with tracking, then ask how well each score finds the corrupted pixels.

Shape legend: a label volume is (I, X, Z) = (inline, crossline, depth); classes are integers,
``ignore_index`` pixels are never changed. Three kinds of error:

- **boundary shift**: a horizon between an upper class ``a`` and a lower class ``b`` was picked
  ``shift`` samples too deep over a lateral rectangle, so the top of ``b`` is labeled ``a``.
- **lens**: an ellipsoidal lens inside one unit was labeled as another class.
- **patch swap**: inside a box, two classes present there were swapped.

Example:
    >>> import numpy as np
    >>> labels = np.repeat(np.arange(3), 10)[None, None, :].repeat(8, 0).repeat(8, 1)
    >>> out = corrupt_labels(labels, num_classes=3, seed=0)
    >>> bool((out.labels != labels).sum() == out.error_mask.sum())
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

__all__ = [
    "CorruptedLabels",
    "corrupt_labels",
    "shift_boundary",
    "mislabel_lens",
    "swap_classes_in_patch",
]


@dataclass
class CorruptedLabels:
    """Corrupted labels, the mask of changed pixels and a log of what was done.

    Attributes:
        labels: (I, X, Z) corrupted labels (same dtype as the input).
        error_mask: (I, X, Z) bool, True where ``labels`` differs from the original.
        events: one dict per applied corruption (kind, region, classes, changed pixels).
    """

    labels: np.ndarray
    error_mask: np.ndarray
    events: list[dict] = field(default_factory=list)


def _check_volume(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(
            "Expected `labels` to be a volume of shape (inline, crossline, depth), "
            f"got shape {tuple(labels.shape)}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"Expected `labels` to have an integer dtype, got {labels.dtype}")
    return labels


def _lateral_box(
    shape: tuple[int, ...], rng: np.random.Generator, fraction: float
) -> tuple[slice, slice]:
    """A random rectangle covering about ``fraction`` of each lateral axis."""
    slices = []
    for size in shape[:2]:
        length = max(1, int(round(fraction * size)))
        start = int(rng.integers(0, size - length + 1))
        slices.append(slice(start, start + length))
    return slices[0], slices[1]


def shift_boundary(
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    shift: int,
    lateral_fraction: float,
    ignore_index: int = 255,
) -> dict | None:
    """Move one class boundary ``shift`` samples deeper inside a lateral rectangle, in place.

    The boundary is chosen among the (upper ``a``, lower ``b``) class pairs that meet in depth
    inside the rectangle. Pixels of ``b`` within ``shift`` samples below an ``a``/``b`` contact
    become ``a``.

    Returns:
        The event dict, or None when the rectangle holds no boundary.
    """
    box_i, box_x = _lateral_box(labels.shape, rng, lateral_fraction)
    region = labels[box_i, box_x, :]  # view (i, x, Z)
    upper, lower = region[..., :-1], region[..., 1:]
    contact = (upper != lower) & (upper != ignore_index) & (lower != ignore_index)
    if not contact.any():
        return None
    pairs = np.unique(np.stack([upper[contact], lower[contact]], axis=1), axis=0)
    a, b = (int(v) for v in pairs[int(rng.integers(len(pairs)))])
    changed = np.zeros(region.shape, dtype=bool)
    for step in range(1, shift + 1):
        # A pixel of b at depth z becomes a if the label `step` samples above it is a.
        changed[..., step:] |= (region[..., step:] == b) & (region[..., :-step] == a)
    region[changed] = a
    return {
        "kind": "boundary_shift",
        "classes": [a, b],
        "shift": shift,
        "inline": [box_i.start, box_i.stop],
        "crossline": [box_x.start, box_x.stop],
        "changed": int(changed.sum()),
    }


def mislabel_lens(
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    num_classes: int,
    radius_fraction: float,
    ignore_index: int = 255,
) -> dict | None:
    """Relabel an ellipsoidal lens inside one unit as another class, in place.

    The lens is centred on a random labeled voxel; its semi-axes are ``radius_fraction`` of
    each axis length (depth semi-axis a third of that: lenses are flat). Only voxels of the
    centre's class change, so the lens stays inside the unit.

    Returns:
        The event dict, or None when no labeled voxel exists.
    """
    labeled = np.flatnonzero(labels.ravel() != ignore_index)
    if labeled.size == 0 or num_classes < 2:
        return None
    centre = np.unravel_index(int(labeled[rng.integers(labeled.size)]), labels.shape)
    host = int(labels[centre])
    new = int(rng.choice([c for c in range(num_classes) if c != host]))
    radii = [max(1.0, radius_fraction * size) for size in labels.shape]
    radii[2] = max(1.0, radii[2] / 3.0)
    lo = [max(0, int(c - r)) for c, r in zip(centre, radii)]
    hi = [min(size, int(c + r) + 1) for c, r, size in zip(centre, radii, labels.shape)]
    grids = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0
    block = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    changed = inside & (block == host)
    block[changed] = new
    return {
        "kind": "lens",
        "classes": [host, new],
        "centre": [int(c) for c in centre],
        "radii": [float(r) for r in radii],
        "changed": int(changed.sum()),
    }


def swap_classes_in_patch(
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    lateral_fraction: float,
    depth_fraction: float,
    ignore_index: int = 255,
) -> dict | None:
    """Swap two classes present inside a random box, in place.

    Returns:
        The event dict, or None when the box holds fewer than two classes.
    """
    box_i, box_x = _lateral_box(labels.shape, rng, lateral_fraction)
    depth = labels.shape[2]
    length = max(1, int(round(depth_fraction * depth)))
    start = int(rng.integers(0, depth - length + 1))
    block = labels[box_i, box_x, start : start + length]
    present = [int(c) for c in np.unique(block) if c != ignore_index]
    if len(present) < 2:
        return None
    a, b = (int(c) for c in rng.choice(present, size=2, replace=False))
    is_a, is_b = block == a, block == b
    block[is_a], block[is_b] = b, a
    return {
        "kind": "patch_swap",
        "classes": [a, b],
        "inline": [box_i.start, box_i.stop],
        "crossline": [box_x.start, box_x.stop],
        "depth": [start, start + length],
        "changed": int(is_a.sum() + is_b.sum()),
    }


def corrupt_labels(
    labels: np.ndarray,
    *,
    num_classes: int,
    seed: int,
    boundary_shifts: int = 2,
    lenses: int = 2,
    patch_swaps: int = 1,
    shift: int = 4,
    lateral_fraction: float = 0.4,
    lens_radius_fraction: float = 0.12,
    patch_depth_fraction: float = 0.3,
    ignore_index: int = 255,
) -> CorruptedLabels:
    """Corrupt a label volume with boundary shifts, mislabeled lenses and class swaps.

    Args:
        labels: (I, X, Z) integer labels; not modified.
        num_classes: number of classes (a lens gets a class in ``[0, num_classes)``).
        seed: seed of every random choice (same seed, same corruption).
        boundary_shifts, lenses, patch_swaps: how many of each kind to apply, in that order.
        shift: depth samples a shifted boundary moves.
        lateral_fraction: share of each lateral axis a shifted/swapped region spans.
        lens_radius_fraction: lens semi-axis as a share of each lateral axis.
        patch_depth_fraction: share of the depth a swapped box spans.
        ignore_index: label value never touched.

    Returns:
        :class:`CorruptedLabels`; ``error_mask`` is exactly ``corrupted != labels`` (a later
        corruption that restores a pixel's original class leaves it correct).

    Raises:
        ValueError: for a non-3-D volume or negative counts/fractions out of range.
        TypeError: for non-integer labels.
    """
    original = _check_volume(labels)
    for name, value in (
        ("boundary_shifts", boundary_shifts),
        ("lenses", lenses),
        ("patch_swaps", patch_swaps),
    ):
        if value < 0:
            raise ValueError(f"Expected `{name}` to be >= 0, got {value}")
    if shift < 1:
        raise ValueError(f"Expected `shift` to be >= 1 depth sample, got {shift}")
    for name, value in (
        ("lateral_fraction", lateral_fraction),
        ("lens_radius_fraction", lens_radius_fraction),
        ("patch_depth_fraction", patch_depth_fraction),
    ):
        if not 0 < value <= 1:
            raise ValueError(f"Expected `{name}` to be in (0, 1], got {value}")
    rng = np.random.default_rng(seed)
    corrupted = original.copy()
    events: list[dict] = []
    operations = (
        (
            boundary_shifts,
            partial(shift_boundary, shift=shift, lateral_fraction=lateral_fraction),
        ),
        (
            lenses,
            partial(mislabel_lens, num_classes=num_classes, radius_fraction=lens_radius_fraction),
        ),
        (
            patch_swaps,
            partial(
                swap_classes_in_patch,
                lateral_fraction=lateral_fraction,
                depth_fraction=patch_depth_fraction,
            ),
        ),
    )
    for count, operation in operations:
        for _ in range(count):
            event = operation(corrupted, rng=rng, ignore_index=ignore_index)
            if event is not None:
                events.append(event)
    return CorruptedLabels(corrupted, corrupted != original, events)
