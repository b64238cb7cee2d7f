"""Forgetting near class boundaries: distance curve, 2-pixel enrichment, class pairs.

Shape legend: N sections, H depth (rows), W lateral (columns), C classes.

Definitions (used by the tests and the summary):

- A *boundary pixel* has at least one 4-neighbour (up, down, left, right) with a different valid
  class; both sides of a label change are boundary pixels. Changes to or from an ignored label
  (outside 0..C-1) are not boundaries.
- The *distance to the boundary* is the Euclidean distance (in pixels, within the section) to
  the nearest boundary pixel, computed with :func:`scipy.ndimage.distance_transform_edt`; boundary
  pixels have distance 0. Sections without a boundary give ``inf``.
- ``enrichment_2px`` = (share of all forgetting events that lie at distance <= 2) / (share of
  observed pixels that lie at distance <= 2). 1 means no concentration at boundaries.
- ``frequent`` (when a threshold ``k`` is given): the *frequently forgotten* pixels (at least
  ``k`` forgetting events) by distance 0, 1, 2 and >= 3 px (rounded, as in the curve), and the
  share of them on the boundary itself and within 1 px.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "boundary_mask",
    "boundary_distance",
    "BoundaryAccumulator",
    "boundary_analysis",
    "NEAR_BOUNDARY_PX",
]

#: Pixels at most this far from a label boundary count as "near" it.
NEAR_BOUNDARY_PX = 2.0


def _valid(labels: np.ndarray, num_classes: int | None) -> np.ndarray:
    if num_classes is None:
        return labels >= 0
    return (labels >= 0) & (labels < num_classes)


# (own, neighbour) slices of (N, H, W) arrays for the 4 neighbour directions.
_UP, _DOWN = (slice(None), slice(None, -1), slice(None)), (slice(None), slice(1, None), slice(None))
_LEFT, _RIGHT = (
    (slice(None), slice(None), slice(None, -1)),
    (slice(None), slice(None), slice(1, None)),
)
_NEIGHBOURS = ((_UP, _DOWN), (_DOWN, _UP), (_LEFT, _RIGHT), (_RIGHT, _LEFT))


def boundary_mask(labels: np.ndarray, *, num_classes: int | None = None) -> np.ndarray:
    """Boundary pixels of label sections.

    Args:
        labels: (N, H, W) or (H, W) integer labels.
        num_classes: labels outside 0..num_classes-1 are ignored (no boundary with them);
            ``None`` ignores only negative labels.

    Returns:
        bool array of the shape of ``labels``.

    Raises:
        ValueError: if ``labels`` is not 2-D or 3-D.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"Expected `labels` to be (N, H, W) or (H, W), got shape {labels.shape}")
    squeeze = labels.ndim == 2
    lab = labels[None] if squeeze else labels
    valid = _valid(lab, num_classes)
    mask = np.zeros(lab.shape, dtype=bool)
    for own, other in _NEIGHBOURS:
        mask[own] |= valid[own] & valid[other] & (lab[own] != lab[other])
    return mask[0] if squeeze else mask


def boundary_distance(labels: np.ndarray, *, num_classes: int | None = None) -> np.ndarray:
    """Euclidean distance (pixels) of every pixel to the nearest boundary pixel of its section.

    Args:
        labels: (N, H, W) or (H, W) integer labels.
        num_classes: see :func:`boundary_mask`.

    Returns:
        float32 array of the shape of ``labels``; 0 on boundary pixels, ``inf`` in sections
        without any boundary.
    """
    mask = boundary_mask(labels, num_classes=num_classes)
    squeeze = mask.ndim == 2
    out = _distance_from_mask(mask[None] if squeeze else mask)
    return out[0] if squeeze else out


def _distance_from_mask(mask: np.ndarray) -> np.ndarray:
    """(N, H, W) float32 Euclidean distance to the nearest True pixel of each section's
    ``mask`` (0 on it; ``inf`` in sections without one)."""
    out = np.full(mask.shape, np.inf, dtype=np.float32)
    for i in range(mask.shape[0]):
        if mask[i].any():
            out[i] = ndimage.distance_transform_edt(~mask[i])
    return out


class BoundaryAccumulator:
    """Forgetting by distance to the label boundary, accumulated over chunks of sections.

    Args:
        class_names: names of classes 0..C-1.
        max_distance: distances are rounded to integers; the last bin collects distances
            >= ``max_distance`` (and sections without boundaries).
    """

    def __init__(self, class_names: Sequence[str], *, max_distance: int = 32) -> None:
        if max_distance < 3:
            raise ValueError(f"Expected `max_distance` to be >= 3, got {max_distance}")
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.max_distance = int(max_distance)
        bins = self.max_distance + 1
        self.pixels = np.zeros(bins, dtype=np.int64)
        self.events = np.zeros(bins, dtype=np.int64)
        self.forgotten = np.zeros(bins, dtype=np.int64)
        # pixels per (distance bin, forgetting events), grown as larger counts arrive
        self.event_hist = np.zeros((bins, 1), dtype=np.int64)
        self.near_pixels = 0
        self.near_events = 0
        c = self.num_classes
        # class pair (a, b), a < b: boundary pixels, forgotten boundary pixels, their events
        self.pair_pixels = np.zeros((c, c), dtype=np.int64)
        self.pair_forgotten = np.zeros((c, c), dtype=np.int64)
        self.pair_events = np.zeros((c, c), dtype=np.int64)

    def update(
        self, forgetting_events: np.ndarray, observations: np.ndarray, labels: np.ndarray
    ) -> None:
        """Add a chunk of whole sections; arrays (N, H, W)."""
        events = np.asarray(forgetting_events)
        labels = np.asarray(labels)
        if labels.ndim != 3 or events.shape != labels.shape:
            raise ValueError(
                "Expected `forgetting_events` and `labels` to be (N, H, W) of one shape, got "
                f"{events.shape} and {labels.shape}"
            )
        c = self.num_classes
        valid = _valid(labels, c)
        observed = (np.asarray(observations) > 0) & valid
        mask = boundary_mask(labels, num_classes=c)
        dist = _distance_from_mask(mask)
        # rounded distance, capped (inf: a section without boundary, in the last bin)
        bins = np.rint(np.minimum(dist, self.max_distance)).astype(np.int64)
        b, e = bins[observed], events[observed].astype(np.int64)
        hist = self._add_event_hist(b, e)
        # pixels, events and forgotten pixels per distance bin, from the (bin, events) counts
        self.pixels += hist.sum(axis=1)
        self.events += hist @ np.arange(hist.shape[1], dtype=np.int64)
        self.forgotten += hist[:, 1:].sum(axis=1)
        near = dist[observed] <= NEAR_BOUNDARY_PX
        self.near_pixels += int(near.sum())
        self.near_events += int(e[near].sum())
        self._add_pairs(labels, valid, mask & observed, events)

    def _add_pairs(
        self, labels: np.ndarray, valid: np.ndarray, selected: np.ndarray, events: np.ndarray
    ) -> None:
        """Class pairs: for each selected (observed boundary) pixel, every distinct other valid
        class among its 4 neighbours; arrays (N, H, W)."""
        c = self.num_classes
        where = np.flatnonzero(selected)
        if where.size == 0:
            return
        n, h, w = labels.shape
        # labels with a border of -1 (no neighbour), flat: neighbours at fixed offsets
        padded = np.full((n, h + 2, w + 2), -1, dtype=np.int32)
        padded[:, 1:-1, 1:-1] = np.where(valid, labels, -1)
        flat = padded.reshape(-1)
        sec, row, col = np.unravel_index(where, labels.shape)
        centre = (sec * (h + 2) + row + 1) * (w + 2) + col + 1
        own = flat[centre].astype(np.int64)
        if c <= 63:
            # one bit per other class met: a class met on two sides counts once
            met = np.zeros(where.size, dtype=np.uint64)
            for offset in (-(w + 2), w + 2, -1, 1):
                other = flat[centre + offset].astype(np.int64)
                differs = (other >= 0) & (other != own)
                met[differs] |= np.left_shift(np.uint64(1), other[differs].astype(np.uint64))
            which = [np.flatnonzero((met >> np.uint64(k)) & np.uint64(1)) for k in range(c)]
            other = np.concatenate(
                [np.full(p.size, k, dtype=np.int64) for k, p in enumerate(which)]
            )
            which = np.concatenate(which)
        else:
            codes = []
            for offset in (-(w + 2), w + 2, -1, 1):
                other = flat[centre + offset].astype(np.int64)
                differs = (other >= 0) & (other != own)
                codes.append(np.flatnonzero(differs) * c + other[differs])
            which, other = np.divmod(np.unique(np.concatenate(codes)), c)  # distinct pairs
        own = own[which]
        ev = np.asarray(events).reshape(-1)[where[which]].astype(np.int64)
        pair = np.minimum(own, other) * c + np.maximum(own, other)
        size = c * c
        self.pair_pixels += np.bincount(pair, minlength=size).reshape(c, c)
        self.pair_forgotten += np.bincount(pair[ev > 0], minlength=size).reshape(c, c)
        self.pair_events += (
            np.bincount(pair, weights=ev, minlength=size).astype(np.int64).reshape(c, c)
        )

    def _add_event_hist(self, bins: np.ndarray, events: np.ndarray) -> np.ndarray:
        """Count pixels per (distance bin, events); ``bins`` and ``events`` (M,) int64.

        Returns:
            (bins, E) int64: this call's counts (E: the width of ``event_hist`` now).
        """
        width = self.event_hist.shape[1]
        if events.size:
            width = max(int(events.max()) + 1, width)
        if width > self.event_hist.shape[1]:
            grown = np.zeros((self.event_hist.shape[0], width), dtype=np.int64)
            grown[:, : self.event_hist.shape[1]] = self.event_hist
            self.event_hist = grown
        size = self.event_hist.size
        counts = np.bincount(bins * width + events, minlength=size).reshape(self.event_hist.shape)
        self.event_hist += counts
        return counts

    def frequent(self, k: int) -> dict[str, Any]:
        """The frequently forgotten pixels (>= ``k`` events) by distance to the boundary.

        Returns:
            ``k``; ``pixels`` (all of them); ``by_distance``: [0 px, 1 px, 2 px, >= 3 px]
            pixel counts; ``pixels_by_distance``: the observed pixels in the same bins;
            ``on_boundary_share`` and ``within_1px_share`` of the frequently forgotten pixels
            (None without any); ``boundary_rate``: the fraction of boundary pixels that are
            frequently forgotten.
        """
        if k < 1:
            raise ValueError(f"Expected `k` to be >= 1, got {k}")
        per_bin = self.event_hist[:, k:].sum(axis=1)  # zeros when no pixel has k events

        def four(values: np.ndarray) -> list[int]:
            return [int(values[0]), int(values[1]), int(values[2]), int(values[3:].sum())]

        by_distance, pixels = four(per_bin), four(self.pixels)
        total = sum(by_distance)
        return {
            "k": int(k),
            "pixels": total,
            "by_distance": by_distance,
            "pixels_by_distance": pixels,
            "on_boundary_share": by_distance[0] / total if total else None,
            "within_1px_share": (by_distance[0] + by_distance[1]) / total if total else None,
            "boundary_rate": by_distance[0] / pixels[0] if pixels[0] else None,
        }

    def result(self, *, frequent_k: int | None = None) -> dict[str, Any]:
        """Plain data: ``enrichment_2px``, near-boundary shares, the distance curve, class pairs.

        ``curve`` lists per integer distance d (last = d >= max_distance or no boundary):
        ``pixels``, ``mean_forgetting_events``, ``forgotten_fraction``. ``class_pairs`` lists
        the boundary class pairs sorted by forgetting events, with ``boundary_pixels``,
        ``forgotten_pixels``, ``forgetting_events``, ``events_per_pixel``. ``frequent`` is
        :meth:`frequent` of ``frequent_k`` (None when no threshold is given).
        """
        total_pixels = int(self.pixels.sum())
        total_events = int(self.events.sum())
        pixel_share = self.near_pixels / total_pixels if total_pixels else None
        event_share = self.near_events / total_events if total_events else None
        enrichment = (
            event_share / pixel_share if (event_share is not None and pixel_share) else None
        )
        curve = []
        for d in range(self.max_distance + 1):
            n = int(self.pixels[d])
            curve.append(
                {
                    "distance": d,
                    "open_ended": d == self.max_distance,
                    "pixels": n,
                    "mean_forgetting_events": float(self.events[d]) / n if n else None,
                    "forgotten_fraction": float(self.forgotten[d]) / n if n else None,
                }
            )
        pairs = []
        for a in range(self.num_classes):
            for b in range(a + 1, self.num_classes):
                n = int(self.pair_pixels[a, b])
                if n == 0:
                    continue
                pairs.append(
                    {
                        "classes": [self.class_names[a], self.class_names[b]],
                        "boundary_pixels": n,
                        "forgotten_pixels": int(self.pair_forgotten[a, b]),
                        "forgetting_events": int(self.pair_events[a, b]),
                        "events_per_pixel": float(self.pair_events[a, b]) / n,
                    }
                )
        pairs.sort(key=lambda p: (-p["forgetting_events"], p["classes"]))
        return {
            "enrichment_2px": enrichment,
            "near_distance_px": NEAR_BOUNDARY_PX,
            "near_pixel_share": pixel_share,
            "near_event_share": event_share,
            "definition": (
                "enrichment_2px = (share of forgetting events at distance <= 2 px from a label "
                "boundary) / (share of observed pixels at distance <= 2 px)"
            ),
            "curve": curve,
            "class_pairs": pairs,
            "frequent": self.frequent(frequent_k) if frequent_k is not None else None,
        }


def boundary_analysis(
    forgetting_events: np.ndarray,
    observations: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: Sequence[str],
    max_distance: int = 32,
    frequent_k: int | None = None,
) -> dict[str, Any]:
    """Forgetting near label boundaries of whole (N, H, W) arrays.

    See :class:`BoundaryAccumulator` for the result (``frequent_k``: the threshold of its
    ``frequent`` block).
    """
    acc = BoundaryAccumulator(class_names, max_distance=max_distance)
    acc.update(forgetting_events, observations, labels)
    return acc.result(frequent_k=frequent_k)
