"""Dataset cartography per pixel: confidence vs variability, coloured by forgetting.

``confidence`` = mean probability of the true class over the observations, ``variability`` = its
population standard deviation (at most 0.5 for values in [0, 1]). Regions of the map (thresholds
documented in the result): *ambiguous* (variability >= 0.2), else *easy* (confidence >= 0.5)
or *hard* (confidence < 0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DataMapAccumulator", "data_map", "AMBIGUOUS_VARIABILITY"]

#: Variability at or above which a pixel is "ambiguous" on the data map.
AMBIGUOUS_VARIABILITY = 0.2
_REGIONS = ("easy", "ambiguous", "hard")


class DataMapAccumulator:
    """2-D histogram (confidence x variability) of pixel counts and forgetting events.

    Args:
        bins: number of bins along each axis; confidence spans [0, 1], variability [0, 0.5].
    """

    def __init__(self, *, bins: int = 40) -> None:
        self.bins = int(bins)
        self.counts = np.zeros((self.bins, self.bins), dtype=np.int64)  # (confidence, variability)
        self.events = np.zeros((self.bins, self.bins), dtype=np.int64)
        self.region_pixels = dict.fromkeys(_REGIONS, 0)
        self.region_events = dict.fromkeys(_REGIONS, 0)

    def update(
        self,
        forgetting_events: np.ndarray,
        observations: np.ndarray,
        confidence: np.ndarray,
        variability: np.ndarray,
        *,
        valid: np.ndarray | None = None,
    ) -> None:
        """Add a chunk of pixels (any one shape)."""
        keep = np.asarray(observations).ravel() > 0
        if valid is not None:
            keep &= np.asarray(valid).ravel()
        conf = np.asarray(confidence).ravel()[keep].astype(np.float64)
        var = np.asarray(variability).ravel()[keep].astype(np.float64)
        ev = np.asarray(forgetting_events).ravel()[keep]
        ci = np.clip((conf * self.bins).astype(np.int64), 0, self.bins - 1)
        vi = np.clip((var / 0.5 * self.bins).astype(np.int64), 0, self.bins - 1)
        # one code per pixel: region (easy 0, ambiguous 1, hard 2) x histogram bin
        ambiguous = var >= AMBIGUOUS_VARIABILITY
        region = np.where(ambiguous, 1, np.where(conf >= 0.5, 0, 2))
        size = self.bins * self.bins
        code = (region * size + ci * self.bins + vi).astype(np.intp)
        shape = (len(_REGIONS), self.bins, self.bins)
        counts = np.bincount(code, minlength=3 * size).reshape(shape)
        events = np.bincount(code, weights=ev, minlength=3 * size).astype(np.int64).reshape(shape)
        self.counts += counts.sum(axis=0)
        self.events += events.sum(axis=0)
        for k, name in enumerate(_REGIONS):
            self.region_pixels[name] += int(counts[k].sum())
            self.region_events[name] += int(events[k].sum())

    def result(self) -> dict[str, Any]:
        """Plain data: histogram ``counts`` and ``mean_events`` (confidence rows, variability
        columns; ``None`` for empty bins) and per region ``pixel_share`` and
        ``mean_forgetting_events``."""
        total = int(self.counts.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self.counts > 0, self.events / np.maximum(self.counts, 1), np.nan)
        regions = {}
        for name in _REGIONS:
            n = self.region_pixels[name]
            regions[name] = {
                "pixel_share": n / total if total else None,
                "mean_forgetting_events": self.region_events[name] / n if n else None,
            }
        return {
            "pixels": total,
            "confidence_edges": np.linspace(0, 1, self.bins + 1).tolist(),
            "variability_edges": np.linspace(0, 0.5, self.bins + 1).tolist(),
            "counts": self.counts.tolist(),
            "mean_events": [[None if np.isnan(v) else float(v) for v in row] for row in mean],
            "regions": regions,
            "region_rule": (
                f"ambiguous: variability >= {AMBIGUOUS_VARIABILITY}; otherwise easy: confidence "
                ">= 0.5, hard: confidence < 0.5"
            ),
        }


def data_map(
    forgetting_events: np.ndarray,
    observations: np.ndarray,
    confidence: np.ndarray,
    variability: np.ndarray,
    *,
    bins: int = 40,
) -> dict[str, Any]:
    """Data map of whole arrays; see :class:`DataMapAccumulator`."""
    acc = DataMapAccumulator(bins=bins)
    acc.update(forgetting_events, observations, confidence, variability)
    return acc.result()
