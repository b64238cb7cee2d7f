"""Test-set dynamics: do pixels whose prediction switches often end up wrong?

Switch events need no labels, so they can flag likely errors on unlabeled data. We score each
test pixel by its switch events and measure, against the final prediction's errors, the AUROC
(probability that a random wrong pixel has more switches than a random correct one, ties 1/2).
Because switch counts are small integers, the AUROC is computed exactly from two histograms,
chunk by chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["auroc", "auroc_from_histograms", "SwitchErrorAccumulator"]


def auroc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """AUROC of an integer score from ``positive[s]`` / ``negative[s]`` = counts with score s.

    Returns ``None`` when one of the classes is empty.
    """
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    width = max(pos.size, neg.size)
    pos, neg = np.pad(pos, (0, width - pos.size)), np.pad(neg, (0, width - neg.size))
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    neg_below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))


def auroc(scores: np.ndarray, is_positive: np.ndarray) -> float | None:
    """AUROC of real ``scores`` for the binary ``is_positive`` (ties count 1/2).

    Computed with the rank-sum (Mann-Whitney U) statistic. ``None`` if a class is empty.

    Raises:
        ValueError: if the arrays differ in length.
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(is_positive).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(
            f"Expected `scores` and `is_positive` of one length, got {s.size} and {y.size}"
        )
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


class SwitchErrorAccumulator:
    """Histograms of switch events for wrong and correct final predictions, over chunks."""

    def __init__(self) -> None:
        self.wrong = np.zeros(1, dtype=np.int64)
        self.right = np.zeros(1, dtype=np.int64)

    def update(
        self,
        switch_events: np.ndarray,
        observations: np.ndarray,
        prediction: np.ndarray,
        labels: np.ndarray,
        *,
        num_classes: int,
    ) -> None:
        """Add a chunk: arrays of one shape; pixels with an ignored label or unobserved skip."""
        lab = np.asarray(labels).ravel()
        keep = (np.asarray(observations).ravel() > 0) & (lab >= 0) & (lab < num_classes)
        sw = np.asarray(switch_events).ravel()[keep].astype(np.int64)
        wrong = np.asarray(prediction).ravel()[keep].astype(np.int64) != lab[keep]
        width = max(self.wrong.size, int(sw.max()) + 1 if sw.size else 1)
        self.wrong = np.pad(self.wrong, (0, width - self.wrong.size))
        self.right = np.pad(self.right, (0, width - self.right.size))
        self.wrong += np.bincount(sw[wrong], minlength=width)
        self.right += np.bincount(sw[~wrong], minlength=width)

    def result(self) -> dict[str, Any]:
        """``auroc`` (switches predicting errors), error rates by switch count, pixel counts."""
        total = self.wrong + self.right
        return {
            "pixels": int(total.sum()),
            "error_rate": float(self.wrong.sum() / total.sum()) if total.sum() else None,
            "auroc_switches_predict_error": auroc_from_histograms(self.wrong, self.right),
            "error_rate_by_switches": [
                {
                    "switch_events": s,
                    "pixels": int(total[s]),
                    "error_rate": float(self.wrong[s] / total[s]),
                }
                for s in range(total.size)
                if total[s] > 0
            ],
        }
