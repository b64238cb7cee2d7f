"""Frequently forgotten regions: connected components of frequently forgotten pixels.

A region is an 8-connected component (:func:`scipy.ndimage.label`) of pixels with at least ``k``
forgetting events within one section. Regions are ranked by size, then by mean events. Each
region's ``on_boundary_share`` is the fraction of its pixels that are label-boundary pixels
(:func:`segforget.analysis.boundary.boundary_mask`): near 1 for a band along a boundary that
the predicted boundary jitters over, low for a region inside a unit that the model fails on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from segforget.analysis.boundary import boundary_mask

__all__ = ["find_regions", "RegionAccumulator", "REGION_FIELDS"]

#: Columns of the regions table (CSV and JSON), in order.
REGION_FIELDS: tuple[str, ...] = (
    "rank",
    "view",
    "section",
    "pixels",
    "mean_forgetting_events",
    "max_forgetting_events",
    "row_min",
    "row_max",
    "col_min",
    "col_max",
    "dominant_class",
    "dominant_class_share",
    "on_boundary_share",
)

_EIGHT = np.ones((3, 3), dtype=bool)


def find_regions(
    forgetting_events: np.ndarray,
    labels: np.ndarray,
    *,
    k: int,
    class_names: Sequence[str],
    min_size: int = 1,
    view: str = "",
    section: int = 0,
) -> list[dict[str, Any]]:
    """Connected regions of pixels with >= ``k`` forgetting events in one (H, W) section.

    Args:
        forgetting_events: (H, W) forgetting events.
        labels: (H, W) true classes (ignored labels count as no class).
        k: frequent threshold (>= 1).
        class_names: class names for ``dominant_class``.
        min_size: smallest region kept, in pixels.
        view, section: copied into each region.

    Returns:
        regions as dicts with the fields of :data:`REGION_FIELDS` (``rank`` 0 = unranked);
        bounding boxes are inclusive pixel rows (depth) and columns; ``on_boundary_share``:
        the fraction of the region's pixels that are label-boundary pixels.

    Raises:
        ValueError: if ``k`` < 1 or the arrays are not one (H, W) shape.
    """
    events = np.asarray(forgetting_events)
    labels = np.asarray(labels)
    if k < 1:
        raise ValueError(f"Expected `k` to be >= 1, got {k}")
    if events.ndim != 2 or events.shape != labels.shape:
        raise ValueError(
            f"Expected `forgetting_events` and `labels` of one (H, W) shape, got {events.shape} "
            f"and {labels.shape}"
        )
    component, count = ndimage.label(events >= k, structure=_EIGHT)
    if count == 0:
        return []
    ids = component.ravel()
    inside = ids > 0
    ids_in = ids[inside]
    ev_in = events.ravel()[inside].astype(np.int64)
    sizes = np.bincount(ids_in, minlength=count + 1)
    sums = np.bincount(ids_in, weights=ev_in, minlength=count + 1)
    maxes = np.zeros(count + 1, dtype=np.int64)
    np.maximum.at(maxes, ids_in, ev_in)
    c = len(class_names)
    lab_in = labels.ravel()[inside].astype(np.int64)
    valid = (lab_in >= 0) & (lab_in < c)
    class_counts = np.bincount(ids_in[valid] * c + lab_in[valid], minlength=(count + 1) * c)
    class_counts = class_counts.reshape(count + 1, c)
    on_edge = boundary_mask(labels, num_classes=c).ravel()[inside]
    edge_counts = np.bincount(ids_in[on_edge], minlength=count + 1)
    boxes = ndimage.find_objects(component)
    regions = []
    for r in range(1, count + 1):
        if sizes[r] < min_size:
            continue
        box = boxes[r - 1]
        dominant = int(np.argmax(class_counts[r])) if class_counts[r].sum() else -1
        regions.append(
            {
                "rank": 0,
                "view": view,
                "section": int(section),
                "pixels": int(sizes[r]),
                "mean_forgetting_events": float(sums[r] / sizes[r]),
                "max_forgetting_events": int(maxes[r]),
                "row_min": int(box[0].start),
                "row_max": int(box[0].stop - 1),
                "col_min": int(box[1].start),
                "col_max": int(box[1].stop - 1),
                "dominant_class": class_names[dominant] if dominant >= 0 else None,
                "dominant_class_share": (
                    float(class_counts[r, dominant] / sizes[r]) if dominant >= 0 else None
                ),
                "on_boundary_share": float(edge_counts[r] / sizes[r]),
            }
        )
    return regions


def _rank_key(region: dict[str, Any]) -> tuple:
    return (
        -region["pixels"],
        -region["mean_forgetting_events"],
        region["view"],
        region["section"],
        region["row_min"],
        region["col_min"],
    )


class RegionAccumulator:
    """Regions of many sections: counts of all, the ``max_regions`` largest kept and ranked.

    Args:
        k: frequent threshold.
        class_names: class names.
        min_size: smallest region counted and kept, in pixels.
        max_regions: how many of the top-ranked regions to keep.
    """

    def __init__(
        self, *, k: int, class_names: Sequence[str], min_size: int = 4, max_regions: int = 500
    ) -> None:
        self.k, self.class_names = int(k), list(class_names)
        self.min_size, self.max_regions = int(min_size), int(max_regions)
        self.kept: list[dict[str, Any]] = []
        self.count = 0
        self.pixels = 0
        self.per_view: dict[str, int] = {}

    def update(
        self,
        forgetting_events: np.ndarray,
        labels: np.ndarray,
        *,
        view: str,
        sections: Sequence[int],
    ) -> None:
        """Add (N, H, W) arrays of whole sections; ``sections`` are their section numbers."""
        new = []
        for i, s in enumerate(sections):
            new += find_regions(
                forgetting_events[i],
                labels[i],
                k=self.k,
                class_names=self.class_names,
                min_size=self.min_size,
                view=view,
                section=int(s),
            )
        self.count += len(new)
        self.pixels += sum(r["pixels"] for r in new)
        self.per_view[view] = self.per_view.get(view, 0) + len(new)
        self.kept = sorted(self.kept + new, key=_rank_key)[: self.max_regions]

    def result(self) -> dict[str, Any]:
        """``count``, ``pixels`` in regions, ``per_view`` counts, ``top`` ranked (rank 1 first)."""
        top = [dict(r, rank=i + 1) for i, r in enumerate(self.kept)]
        return {
            "k": self.k,
            "min_size": self.min_size,
            "connectivity": 8,
            "count": self.count,
            "pixels": self.pixels,
            "per_view": dict(self.per_view),
            "top": top,
        }
