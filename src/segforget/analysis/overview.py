"""Overview of forgetting: how many pixels are unforgettable, never learned, frequently forgotten.

Shape legend: N sections, H depth (rows), W lateral (columns); arrays of one chunk of sections.
Every analysis in this package is a small accumulator (``update`` on a chunk of sections,
``result`` returns plain data) plus a function that runs it on whole arrays, so a run as large as
F3 is analysed section-chunk by section-chunk with bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "OverviewAccumulator",
    "forgetting_overview",
    "choose_frequent_threshold",
    "FREQUENT_TAIL_SHARE",
]

#: Default rule for the "frequently forgotten" threshold: the tail share of forgotten pixels.
FREQUENT_TAIL_SHARE = 0.10


def choose_frequent_threshold(
    histogram: Sequence[int], *, tail_share: float = FREQUENT_TAIL_SHARE
) -> int:
    """Pick the frequent-forgetting threshold ``k`` from the histogram of forgetting events.

    ``k`` is the smallest integer >= 2 such that at most ``tail_share`` of the pixels forgotten at
    least once have ``k`` or more forgetting events (so "frequently forgotten" is the upper tail
    of the forgotten pixels, never a single slip). With no forgotten pixel, ``k = 2``.

    Args:
        histogram: ``histogram[e]`` = number of pixels with ``e`` forgetting events.
        tail_share: largest share of forgotten pixels allowed at or above ``k``, in (0, 1].

    Raises:
        ValueError: if ``tail_share`` is outside (0, 1].
    """
    if not 0 < tail_share <= 1:
        raise ValueError(f"Expected `tail_share` to be in (0, 1], got {tail_share}")
    hist = np.asarray(histogram, dtype=np.int64)
    forgotten = int(hist[1:].sum())
    if forgotten == 0:
        return 2
    # at_least[e] = pixels with >= e events, for e = 0..len-1
    at_least = np.cumsum(hist[::-1])[::-1]
    for k in range(2, len(hist)):
        if at_least[k] <= tail_share * forgotten:
            return k
    return len(hist)


class OverviewAccumulator:
    """Counts per class and per number of forgetting events, accumulated over chunks.

    Args:
        class_names: names of the classes 0..C-1 (labels outside that range are not counted).
        k: frequent-forgetting threshold; ``None`` chooses it with
            :func:`choose_frequent_threshold` when :meth:`result` is called.
    """

    def __init__(self, class_names: Sequence[str], *, k: int | None = None) -> None:
        if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"Expected `k` to be an integer >= 1 or None, got {k!r}")
        self.class_names = list(class_names)
        self.k = k
        self.num_classes = len(self.class_names)
        # (C, E): pixels of class c with e forgetting events (grown as larger e appear)
        self.class_hist = np.zeros((self.num_classes, 1), dtype=np.int64)
        self.never_learned = np.zeros(self.num_classes, dtype=np.int64)
        self.unforgettable = np.zeros(self.num_classes, dtype=np.int64)

    def update(
        self,
        forgetting_events: np.ndarray,
        observations: np.ndarray,
        labels: np.ndarray,
        *,
        never_learned: np.ndarray | None = None,
    ) -> None:
        """Add one chunk. All arrays have one shape, e.g. (N, H, W).

        Args:
            forgetting_events: forgetting events per pixel.
            observations: observations per pixel; pixels with 0 observations are not counted.
            labels: true class per pixel; labels outside 0..C-1 (ignore) are not counted.
            never_learned: observed but never correct; derived from nothing else, so pass it
                from the statistics (``None`` counts none).
        """
        events = np.asarray(forgetting_events).ravel().astype(np.int64)
        observed = np.asarray(observations).ravel() > 0
        lab = np.asarray(labels).ravel()
        keep = observed & (lab >= 0) & (lab < self.num_classes)
        events, lab = events[keep], lab[keep].astype(np.int64)
        if events.size == 0:
            return
        width = int(events.max()) + 1
        if width > self.class_hist.shape[1]:
            grown = np.zeros((self.num_classes, width), dtype=np.int64)
            grown[:, : self.class_hist.shape[1]] = self.class_hist
            self.class_hist = grown
        width = self.class_hist.shape[1]
        self.class_hist += np.bincount(
            lab * width + events, minlength=self.num_classes * width
        ).reshape(self.num_classes, width)
        if never_learned is not None:
            nl = np.asarray(never_learned).ravel()[keep].astype(bool)
            self.never_learned += np.bincount(lab[nl], minlength=self.num_classes)
            learned_zero = (~nl) & (events == 0)
        else:
            learned_zero = events == 0
        self.unforgettable += np.bincount(lab[learned_zero], minlength=self.num_classes)

    def threshold(self) -> int:
        """The frequent threshold ``k`` (given, or chosen from the accumulated histogram)."""
        if self.k is not None:
            return int(self.k)
        return choose_frequent_threshold(self.class_hist.sum(axis=0))

    def result(self) -> dict[str, Any]:
        """Return the overview as plain data.

        Keys: ``observed_pixels``, ``k``, ``k_rule``, fractions ``unforgettable``,
        ``never_learned``, ``forgotten_at_least_once``, ``frequently_forgotten``,
        ``mean_forgetting_events``, ``histogram`` (list: pixels with e events), and
        ``per_class`` {name: same fractions + ``pixels``, ``share_of_pixels``,
        ``share_of_events``, ``events_per_pixel_vs_largest_class``, ``histogram``}.
        """
        k = self.threshold()
        total_hist = self.class_hist.sum(axis=0)
        events_axis = np.arange(self.class_hist.shape[1])

        def block(hist: np.ndarray, never: int, unforget: int) -> dict[str, Any]:
            n = int(hist.sum())
            if n == 0:
                return {
                    "pixels": 0,
                    "unforgettable": None,
                    "never_learned": None,
                    "forgotten_at_least_once": None,
                    "frequently_forgotten": None,
                    "mean_forgetting_events": None,
                }
            return {
                "pixels": n,
                "unforgettable": unforget / n,
                "never_learned": never / n,
                "forgotten_at_least_once": float(hist[1:].sum()) / n,
                "frequently_forgotten": float(hist[k:].sum()) / n,
                "mean_forgetting_events": float((hist * events_axis).sum()) / n,
            }

        overall = block(total_hist, int(self.never_learned.sum()), int(self.unforgettable.sum()))
        total_events = float((total_hist * events_axis).sum())
        per_class: dict[str, Any] = {}
        for c, name in enumerate(self.class_names):
            entry = block(
                self.class_hist[c], int(self.never_learned[c]), int(self.unforgettable[c])
            )
            n = entry["pixels"]
            entry["share_of_pixels"] = n / overall["pixels"] if overall["pixels"] else None
            events_c = float((self.class_hist[c] * events_axis).sum())
            entry["share_of_events"] = events_c / total_events if total_events else None
            entry["histogram"] = self.class_hist[c].tolist()
            per_class[name] = entry
        # The papers compare rare classes with the largest one: ratio of events per pixel.
        sizes = [per_class[n]["pixels"] for n in self.class_names]
        if sizes and max(sizes) > 0:
            largest = self.class_names[int(np.argmax(sizes))]
            ref = per_class[largest]["mean_forgetting_events"]
            for name in self.class_names:
                mean = per_class[name]["mean_forgetting_events"]
                per_class[name]["events_per_pixel_vs_largest_class"] = (
                    mean / ref if (mean is not None and ref) else None
                )
        else:
            largest = None
        return {
            "observed_pixels": overall["pixels"],
            "k": k,
            "k_rule": (
                "given"
                if self.k is not None
                else f"smallest k >= 2 with at most {FREQUENT_TAIL_SHARE:.0%} of the forgotten "
                "pixels at k or more forgetting events"
            ),
            **{key: value for key, value in overall.items() if key != "pixels"},
            "histogram": total_hist.tolist(),
            "largest_class": largest,
            "per_class": per_class,
        }


def forgetting_overview(
    forgetting_events: np.ndarray,
    observations: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: Sequence[str],
    never_learned: np.ndarray | None = None,
    k: int | None = None,
) -> dict[str, Any]:
    """Overview of forgetting over whole arrays; see :class:`OverviewAccumulator.result`.

    Example:
        >>> import numpy as np
        >>> ev = np.array([[0, 1, 3]]); obs = np.ones_like(ev); lab = np.array([[0, 0, 1]])
        >>> forgetting_overview(ev, obs, lab, class_names=["a", "b"], k=2)["frequently_forgotten"]
        0.3333333333333333
    """
    acc = OverviewAccumulator(class_names, k=k)
    acc.update(forgetting_events, observations, labels, never_learned=never_learned)
    return acc.result()
