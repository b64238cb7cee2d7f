"""Selecting the frequently forgotten regions of the training data.

Shape legend: P pixels of one pixel space (one split and view), N sections, H depth, W lateral,
P = N * H * W with ``pixel_index = section * H * W + h * W + w``.

A pixel is a *candidate* when it has at least ``k`` forgetting events, or (optionally) when it
was observed but never learned. Candidates are cleaned per section (morphological opening, then
connected components smaller than ``min_area`` dropped); a per-section ``budget`` (fraction of
the section) keeps the components with the largest total forgetting score first; the kept
regions are finally dilated by ``dilate`` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["RegionOptions", "select_regions", "select_regions_from_stats"]


@dataclass(frozen=True)
class RegionOptions:
    """How frequently forgotten regions are chosen.

    Attributes:
        k: a pixel with at least ``k`` forgetting events is a candidate (``k >= 1``).
        include_never_learned: observed pixels that were never correct are candidates too.
        opening: radius of the square morphological opening (0: none); removes specks and
            lines thinner than ``2 * opening + 1``.
        min_area: connected components (8-connectivity) smaller than this many pixels are dropped.
        budget: at most this fraction of each section is selected (1.0: no limit).
        dilate: grow the kept regions by this many pixels (square), after the budget, so the
            style operators see a neighbourhood of thin boundary bands (0: none).

    The default ``opening=0`` keeps thin bands: in well-trained models the frequently forgotten
    pixels line class boundaries a pixel or two wide, which an opening would erase.
    """

    k: int = 2
    include_never_learned: bool = True
    opening: int = 0
    min_area: int = 8
    budget: float = 0.25
    dilate: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.k, (int, np.integer)) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"Expected `k` to be an integer >= 1, got {self.k!r}")
        if not isinstance(self.opening, (int, np.integer)) or self.opening < 0:
            raise ValueError(f"Expected `opening` to be an integer >= 0, got {self.opening!r}")
        if not isinstance(self.min_area, (int, np.integer)) or self.min_area < 0:
            raise ValueError(f"Expected `min_area` to be an integer >= 0, got {self.min_area!r}")
        if not isinstance(self.dilate, (int, np.integer)) or self.dilate < 0:
            raise ValueError(f"Expected `dilate` to be an integer >= 0, got {self.dilate!r}")
        if not (0.0 < float(self.budget) <= 1.0):
            raise ValueError(f"Expected `budget` to be a fraction in (0, 1], got {self.budget!r}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> RegionOptions:
        """Pick the region keys out of a method's option dict (others are ignored)."""
        names = ("k", "include_never_learned", "opening", "min_area", "budget", "dilate")
        return cls(**{name: options[name] for name in names if name in options})


def _square(radius: int) -> np.ndarray:
    # a square keeps rectangular blocks (layers, boxes) whole, where a disk rounds corners off
    return np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)


def _clean_section(candidate: np.ndarray, score: np.ndarray, options: RegionOptions) -> np.ndarray:
    """Opening, minimum area and budget on one (H, W) section."""
    mask = candidate
    if options.opening > 0 and mask.any():
        mask = ndimage.binary_opening(mask, structure=_square(options.opening))
    if not mask.any():
        return mask
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    weights = np.bincount(labels.ravel(), weights=score.ravel(), minlength=count + 1)
    keep = areas >= max(options.min_area, 1)
    keep[0] = False
    limit = int(np.floor(options.budget * mask.size))
    if keep[1:].sum() and areas[keep].sum() > limit:
        # Largest total forgetting first; ties broken by the component label (top-left first).
        order = [c for c in np.lexsort((np.arange(count + 1), -weights)) if keep[c]]
        keep[:] = False
        used = 0
        for component in order:
            if used + areas[component] <= limit:
                keep[component] = True
                used += int(areas[component])
    kept = keep[labels]
    if options.dilate > 0 and kept.any():
        kept = ndimage.binary_dilation(kept, structure=_square(options.dilate))
    return kept


def select_regions(
    forgetting_events: np.ndarray,
    never_learned: np.ndarray | None,
    section_shape: tuple[int, int],
    *,
    options: RegionOptions | None = None,
) -> np.ndarray:
    """Select frequently forgotten regions of one pixel space.

    Args:
        forgetting_events: (P,) integer forgetting events per pixel.
        never_learned: (P,) bool, observed but never correct (None: no such pixels).
        section_shape: (H, W) of the sections; P must be a multiple of H * W.
        options: selection options (defaults of :class:`RegionOptions` when None).

    Returns:
        (P,) bool mask of the selected pixels.

    Raises:
        ValueError: if the arrays and ``section_shape`` do not agree.
    """
    options = options or RegionOptions()
    events = np.asarray(forgetting_events)
    if events.ndim != 1:
        raise ValueError(f"Expected `forgetting_events` to be 1-D (P,), got shape {events.shape}")
    height, width = (int(s) for s in section_shape)
    if height <= 0 or width <= 0 or events.size % (height * width):
        raise ValueError(
            f"Expected `section_shape` (H, W) with H * W dividing the {events.size} pixels, "
            f"got {tuple(section_shape)}"
        )
    candidate = events >= options.k
    score = events.astype(np.float64)
    if never_learned is not None and options.include_never_learned:
        never = np.asarray(never_learned, dtype=bool)
        if never.shape != events.shape:
            raise ValueError(
                f"Expected `never_learned` to have shape {events.shape}, got {never.shape}"
            )
        candidate = candidate | never
        # Never-learned pixels rank first, as in Toneva's forgetting score.
        score = np.where(never, max(float(events.max(initial=0)), 1.0) + 1.0, score)
    sections = events.size // (height * width)
    candidate = candidate.reshape(sections, height, width)
    score = score.reshape(sections, height, width)
    out = np.zeros_like(candidate)
    for s in np.flatnonzero(candidate.reshape(sections, -1).any(axis=1)):
        out[s] = _clean_section(candidate[s], score[s], options)
    return out.reshape(-1)


def select_regions_from_stats(stats: Any, *, options: RegionOptions | None = None) -> np.ndarray:
    """Select regions from a :class:`~segforget.dynamics.ForgettingStats` (meta has section_shape).

    Raises:
        ValueError: if ``stats.meta`` lacks ``section_shape``.
    """
    meta = getattr(stats, "meta", None) or {}
    if "section_shape" not in meta:
        raise ValueError(
            "Expected `stats.meta` to hold 'section_shape' [H, W] (written by segforget train), "
            f"got keys {sorted(meta)}"
        )
    return select_regions(
        np.asarray(stats.forgetting_events),
        np.asarray(stats.never_learned),
        tuple(meta["section_shape"]),
        options=options,
    )
