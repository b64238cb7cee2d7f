"""When pixels are forgotten: timing categories from the correctness history.

Shape legend: P pixels, T the largest number of observations. A history row holds the
correctness bits a_0..a_{n-1} of one pixel (1 correct, 0 wrong) followed by -1 padding.

Categories of a pixel with at least one forgetting event (n observations, first learned at
observation f, last forgetting event at observation L = the first wrong observation after a
correct one, all 0-based):

- ``oscillating``: L >= ceil(2n/3), it is still being forgotten in the last third of training;
- ``late_learned``: otherwise, f >= ceil(n/3), first learned after the first third;
- ``early_learned_then_forgotten``: otherwise (learned in the first third, forgotten before the
  last third).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TIMING_CATEGORIES", "classify_timing", "TimingAccumulator"]

#: Category names by code; code 0 = no forgetting event.
TIMING_CATEGORIES: tuple[str, ...] = (
    "not_forgotten",
    "early_learned_then_forgotten",
    "late_learned",
    "oscillating",
)


def classify_timing(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Timing category of every pixel and the observation index of each forgetting event.

    Args:
        history: (P, T) int8, 1 correct, 0 wrong, -1 not observed (trailing padding).

    Returns:
        ``codes`` (P,) int8 indices into :data:`TIMING_CATEGORIES`, and ``event_counts`` (T,)
        int64: forgetting events whose wrong observation has index t.

    Raises:
        ValueError: if ``history`` is not 2-D.
    """
    h = np.asarray(history)
    if h.ndim != 2:
        raise ValueError(f"Expected `history` to be (P, T), got shape {h.shape}")
    p, t = h.shape
    if t < 2:
        return np.zeros(p, dtype=np.int8), np.zeros(t, dtype=np.int64)
    n = (h >= 0).sum(axis=1)
    forget = (h[:, :-1] == 1) & (h[:, 1:] == 0)  # (P, T-1), event at observation index t+1
    has = forget.any(axis=1)
    last = np.where(has, (t - 2) - np.argmax(forget[:, ::-1], axis=1) + 1, -1)
    correct = h == 1
    first = np.where(correct.any(axis=1), np.argmax(correct, axis=1), -1)
    late_start = -(-2 * n // 3)  # ceil(2n/3)
    learn_late = -(-n // 3)  # ceil(n/3)
    codes = np.zeros(p, dtype=np.int8)
    osc = has & (last >= late_start)
    late = has & ~osc & (first >= learn_late)
    codes[has] = 1
    codes[late] = 2
    codes[osc] = 3
    event_counts = np.concatenate([[0], forget.sum(axis=0)]).astype(np.int64)
    return codes, event_counts


class TimingAccumulator:
    """Timing categories and first-learned histogram, accumulated over chunks."""

    def __init__(self) -> None:
        self.category_pixels = np.zeros(len(TIMING_CATEGORIES), dtype=np.int64)
        self.event_times = np.zeros(0, dtype=np.int64)
        self.first_learned = np.zeros(1, dtype=np.int64)
        self.never = 0
        self.has_history = False

    def update_first_learned(self, first_learned: np.ndarray, observations: np.ndarray) -> None:
        """Add first-learned observation indices (any shape; -1 never learned)."""
        keep = np.asarray(observations).ravel() > 0
        fl = np.asarray(first_learned).ravel()[keep].astype(np.int64)
        self.never += int((fl < 0).sum())
        fl = fl[fl >= 0]
        width = max(self.first_learned.size, int(fl.max()) + 1 if fl.size else 0)
        self.first_learned = np.pad(self.first_learned, (0, width - self.first_learned.size))
        self.first_learned += np.bincount(fl, minlength=width)

    def update_history(self, history: np.ndarray) -> np.ndarray:
        """Add the (P, T) history of some pixels; returns their category codes."""
        self.has_history = True
        codes, times = classify_timing(history)
        self.category_pixels += np.bincount(codes, minlength=len(TIMING_CATEGORIES))
        width = max(self.event_times.size, times.size)
        self.event_times = np.pad(self.event_times, (0, width - self.event_times.size))
        self.event_times[: times.size] += times
        return codes

    def result(self) -> dict[str, Any]:
        """Plain data: ``first_learned_histogram`` (pixels first correct at observation t),
        ``never_learned_pixels``; with history, ``categories`` {name: pixels} of the forgotten
        pixels, their shares, and ``forgetting_events_by_observation``."""
        out: dict[str, Any] = {
            "first_learned_histogram": self.first_learned.tolist(),
            "never_learned_pixels": self.never,
            "history_available": self.has_history,
        }
        if self.has_history:
            forgotten = int(self.category_pixels[1:].sum())
            out["categories"] = {
                name: int(self.category_pixels[i])
                for i, name in enumerate(TIMING_CATEGORIES)
                if i > 0
            }
            out["category_shares"] = {
                name: (int(self.category_pixels[i]) / forgotten if forgotten else None)
                for i, name in enumerate(TIMING_CATEGORIES)
                if i > 0
            }
            out["forgetting_events_by_observation"] = self.event_times.tolist()
            out["rule"] = (
                "oscillating: last forgetting event in the final third of the observations; "
                "late_learned: first learned after the first third; otherwise "
                "early_learned_then_forgotten"
            )
        return out
