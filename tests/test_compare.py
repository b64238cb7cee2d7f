"""Paired (per-seed) differences of two methods: by hand and against scipy's paired t-test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from segforget.compare import format_ci, format_p, holm, paired_differences


def test_paired_t_test_by_hand_and_against_scipy():
    reference = [[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]
    values = [[2.0, 5.0], [4.0, 5.0], [6.0, 5.0]]
    got = paired_differences(values, reference)
    # differences 1, 2, 3: mean 2, sample std 1, t = 2 / (1 / sqrt 3) = 3.4641 with 2 degrees
    # of freedom; two-sided p = 1 - 3.4641 / sqrt(2 + 3.4641^2) = 1 - sqrt(12 / 14) = 0.0742
    assert got["mean"] == pytest.approx([2.0, 0.0]) and got["std"] == pytest.approx([1.0, 0.0])
    assert got["p"][0] == pytest.approx(1 - np.sqrt(12 / 14))
    assert got["p"][1] == 1.0  # all differences 0: nothing to test
    assert got["wins"] == [3, 0] and got["seeds"] == 3
    # 95 % interval: 2 -+ t(0.975, 2 dof) * 1 / sqrt 3, t = 4.302653 from a t table
    half = 4.302653 / np.sqrt(3)
    assert got["ci95"][0] == pytest.approx([2 - half, 2 + half], abs=1e-6)
    assert got["ci95"][1] == [0.0, 0.0]
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    want = stats.ttest_rel(a, b, axis=0).pvalue
    assert paired_differences(a, b)["p"] == pytest.approx(list(want))


def test_lower_is_better_counts_seeds_with_smaller_values():
    got = paired_differences([[10], [20], [5]], [[12], [19], [5]], lower_is_better=True)
    assert got["mean"] == pytest.approx([-1 / 3]) and got["wins"] == [1]
    constant = paired_differences([[1.0], [2.0]], [[2.0], [3.0]], lower_is_better=True)
    assert constant["wins"] == [2] and constant["p"] == [0.0]  # always 1 lower: degenerate
    single = paired_differences([[1.0]], [[0.0]])
    assert single["std"] == [0.0] and single["p"] == [None] and single["ci95"] == [None]
    with pytest.raises(ValueError, match="same shape"):
        paired_differences([[1.0]], [[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"one value per seed pass shape \(seeds, 1\)"):
        paired_differences([1.0, 2.0], [1.0, 3.0])


def test_format_p():
    assert [format_p(p) for p in (None, 0.0004, 0.001, 0.0344)] == [
        "p n/a",
        "p < 0.001",
        "p 0.001",
        "p 0.034",
    ]


def test_interval_covers_the_mean_as_often_as_it_says():
    # 2000 experiments of 8 seeds, true mean difference 0.3: about 95 % of the intervals hold it.
    rng = np.random.default_rng(1)
    diffs = rng.normal(0.3, 1.0, size=(2000, 8))
    covered = 0
    for row in diffs:
        low, high = paired_differences(row[:, None], np.zeros((8, 1)))["ci95"][0]
        covered += low <= 0.3 <= high
    assert 0.935 <= covered / 2000 <= 0.965


def test_format_ci():
    assert format_ci(None) == "n/a"
    assert format_ci([-0.0124, 0.0338]) == "[-0.012, +0.034]"


def test_holm_by_hand():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> 0.06
    got = holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.4]) == pytest.approx([0.8, None, 0.8])  # None: not in the family
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == [] and holm([None]) == [None]


def test_holm_against_its_step_down_definition():
    """Reject H_(1..k) while p_(j) <= alpha / (m - j); adjusted p < alpha iff rejected."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.uniform(0, 0.2, size=int(rng.integers(1, 7)))
        adjusted = np.asarray(holm(list(p)))
        for alpha in (0.01, 0.05, 0.1):
            rejected = np.zeros(p.size, dtype=bool)
            for j, i in enumerate(np.argsort(p, kind="stable")):
                if p[i] > alpha / (p.size - j):
                    break
                rejected[i] = True
            np.testing.assert_array_equal(adjusted <= alpha, rejected)
