"""Comparing two methods over the same seeds: per-seed (paired) differences.

Runs that share a seed share the model's initialization, the batch order and (in ``al-sim``)
the initial labeled sections, so the difference of two methods within a seed removes the
seed-to-seed variation they have in common. Both ``segforget benchmark`` and ``segforget
al-sim`` report these differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["paired_differences", "holm", "format_p", "format_ci"]


def _paired_t_p_values(diff: np.ndarray) -> list[float | None]:
    """Two-sided p-value of the paired t-test per column of ``diff`` (seeds, points).

    None with fewer than two seeds; where all differences are equal (std 0) the test is
    degenerate: p = 1 when they are all 0, else 0.
    """
    from scipy import stats

    seeds = diff.shape[0]
    if seeds < 2:
        return [None] * diff.shape[1]
    mean, std = diff.mean(axis=0), diff.std(axis=0, ddof=1)
    out: list[float | None] = []
    for m, s in zip(mean, std):
        if s == 0:
            out.append(1.0 if m == 0 else 0.0)
        else:
            t = m / (s / np.sqrt(seeds))
            out.append(float(2 * stats.t.sf(abs(t), df=seeds - 1)))
    return out


def _paired_t_intervals(diff: np.ndarray, level: float) -> list[list[float] | None]:
    """``level`` confidence interval ``[low, high]`` of the mean difference per column of
    ``diff`` (seeds, points), from the t distribution; None with fewer than two seeds."""
    from scipy import stats

    seeds = diff.shape[0]
    if seeds < 2:
        return [None] * diff.shape[1]
    mean = diff.mean(axis=0)
    half = stats.t.ppf(0.5 + level / 2, df=seeds - 1) * diff.std(axis=0, ddof=1) / np.sqrt(seeds)
    return [[float(m - h), float(m + h)] for m, h in zip(mean, half)]


def paired_differences(
    values: Any, reference: Any, *, lower_is_better: bool = False
) -> dict[str, Any]:
    """Per-seed differences ``values - reference`` of two methods run on the same seeds.

    Args:
        values: (seeds, points) a method's results (e.g. test mIoU per point of a learning
            curve; one point: shape (seeds, 1)).
        reference: (seeds, points) the results of the method it is compared with.
        lower_is_better: count a seed as won when the difference is negative (e.g. forgotten
            pixels) instead of positive.

    Returns:
        Per point: ``mean`` and ``std`` (sample std, 0 for one seed) of the differences,
        ``wins`` (seeds where ``values`` is strictly better), ``p`` (two-sided paired t-test
        p-value, None for one seed), ``ci95`` (the 95 % confidence interval ``[low, high]`` of
        the mean difference, t distribution; None for one seed); and ``seeds``.
    """
    a, b = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(
            f"Expected two (seeds, points) arrays of the same shape, got {a.shape} and "
            f"{b.shape} (for one value per seed pass shape (seeds, 1))"
        )
    diff = a - b
    std = diff.std(axis=0, ddof=1) if diff.shape[0] > 1 else np.zeros(diff.shape[1])
    better = diff < 0 if lower_is_better else diff > 0
    return {
        "mean": diff.mean(axis=0).tolist(),
        "std": std.tolist(),
        "wins": better.sum(axis=0).astype(int).tolist(),
        "p": _paired_t_p_values(diff),
        "ci95": _paired_t_intervals(diff, 0.95),
        "seeds": int(diff.shape[0]),
    }


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values of a family of tests, in the order given.

    The i-th smallest of the m p-values is multiplied by m - i (i from 0), the products are
    made non-decreasing in that order and capped at 1. A family-wise error rate of alpha is
    kept by rejecting where the adjusted value is below alpha. None entries (no test) are
    left out of the family and stay None.
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (len(present) - rank) * float(p)))
        adjusted[i] = running
    return adjusted


def format_p(p: float | None) -> str:
    """A p-value as the tables print it: ``p 0.034``, ``p < 0.001``, or ``p n/a`` (one seed)."""
    if p is None:
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p {p:.3f}"


def format_ci(interval: list[float] | None) -> str:
    """A 95 % interval as the tables print it: ``[-0.012, +0.034]``, or ``n/a`` (one seed)."""
    if interval is None:
        return "n/a"
    low, high = interval
    return f"[{low:+.3f}, {high:+.3f}]"
