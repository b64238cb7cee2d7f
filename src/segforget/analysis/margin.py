"""Decision-boundary proximity: do pixels with small margins forget more?

The tracker's ``aum`` is the mean margin (true-class logit minus the largest other logit) over
the observations and ``confidence`` the mean probability of the true class. A pixel close to the
decision boundary has a small margin and should forget often: the Spearman correlation between
forgetting events and margin is expected to be negative.

Correlations over a full F3 store (~10^8 pixels) are computed on a seeded uniform sample of at
most ``max_samples`` observed pixels; the sample size is reported with the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

__all__ = ["spearman", "binned_curve", "MarginSampler", "margin_analysis"]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation of two 1-D arrays (average ranks for ties).

    Returns ``None`` when it is undefined (fewer than 2 values or a constant input).

    Raises:
        ValueError: if the arrays differ in length.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"Expected `x` and `y` of one length, got {x.size} and {y.size}")
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    return float(_scipy_stats.spearmanr(x, y).statistic)


def binned_curve(values: np.ndarray, events: np.ndarray, *, bins: int = 20) -> list[dict[str, Any]]:
    """Mean forgetting events in quantile bins of ``values`` (equal-count bins).

    Args:
        values: (P,) margin or confidence per pixel.
        events: (P,) forgetting events per pixel.
        bins: number of quantile bins (fewer when values repeat).

    Returns:
        list of {``low``, ``high``, ``pixels``, ``mean_forgetting_events``, ``forgotten_fraction``},
        bins in increasing order of ``values``; ``high`` is inclusive for the last bin only.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    events = np.asarray(events, dtype=np.float64).ravel()
    if values.size == 0:
        return []
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)
    out = []
    for b in range(edges.size - 1):
        sel = index == b
        n = int(sel.sum())
        if n == 0:
            continue
        out.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "pixels": n,
                "mean_forgetting_events": float(events[sel].mean()),
                "forgotten_fraction": float((events[sel] > 0).mean()),
            }
        )
    return out


class MarginSampler:
    """Seeded uniform sample of (events, margin, confidence) over chunks of pixels.

    Each pixel is kept with probability ``min(1, max_samples / total_pixels)``; one random number
    is drawn per pixel in order, so the sample does not depend on the chunk size.

    Args:
        total_pixels: number of pixels that will be passed over all chunks.
        max_samples: expected sample size ceiling.
        seed: seed of the sample.
    """

    def __init__(self, total_pixels: int, *, max_samples: int = 1_000_000, seed: int = 0) -> None:
        if max_samples < 1:
            raise ValueError(f"Expected `max_samples` to be >= 1, got {max_samples}")
        self.rate = min(1.0, max_samples / max(int(total_pixels), 1))
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.parts: dict[str, list[np.ndarray]] = {"events": [], "aum": [], "confidence": []}

    def update(
        self,
        forgetting_events: np.ndarray,
        observations: np.ndarray,
        *,
        aum: np.ndarray | None,
        confidence: np.ndarray | None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Add a chunk (any one shape): observed pixels (and ``valid`` ones) may be sampled."""
        events = np.asarray(forgetting_events).ravel()
        keep = np.asarray(observations).ravel() > 0
        if valid is not None:
            keep &= np.asarray(valid).ravel()
        if self.rate < 1.0:
            keep &= self.rng.random(events.size) < self.rate
        self.parts["events"].append(events[keep].astype(np.int32))
        for name, arr in (("aum", aum), ("confidence", confidence)):
            if arr is not None:
                self.parts[name].append(np.asarray(arr).ravel()[keep].astype(np.float32))

    def result(self, *, bins: int = 20) -> dict[str, Any]:
        """Spearman correlations and binned curves; ``available`` False without margin data."""
        events = np.concatenate(self.parts["events"]) if self.parts["events"] else np.zeros(0)
        out: dict[str, Any] = {
            "available": bool(self.parts["aum"] or self.parts["confidence"]),
            "sample_pixels": int(events.size),
            "sample_rate": self.rate,
            "seed": self.seed,
        }
        for name in ("aum", "confidence"):
            if not self.parts[name]:
                continue
            values = np.concatenate(self.parts[name])
            finite = np.isfinite(values)
            out[f"spearman_events_vs_{name}"] = spearman(events[finite], values[finite])
            out[f"curve_{name}"] = binned_curve(values[finite], events[finite], bins=bins)
        return out


def margin_analysis(
    forgetting_events: np.ndarray,
    observations: np.ndarray,
    *,
    aum: np.ndarray | None,
    confidence: np.ndarray | None,
    bins: int = 20,
) -> dict[str, Any]:
    """Spearman(forgetting events, margin / confidence) and binned curves over all pixels."""
    sampler = MarginSampler(np.asarray(forgetting_events).size, max_samples=np.iinfo(np.int64).max)
    sampler.update(forgetting_events, observations, aum=aum, confidence=confidence)
    return sampler.result(bins=bins)
