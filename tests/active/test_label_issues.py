"""Label-issue scores, aggregation, and AP/AUROC against brute-force references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from segforget.analysis.label_issues import (
    average_precision,
    flag_top_fraction,
    label_issue_components,
    label_issue_scores,
    open_scores,
    percentile_ranks,
    rank_pixels,
    roc_auc,
    section_issue_scores,
)


def brute_auc(y, s):
    pos = [v for v, t in zip(s, y) if t]
    neg = [v for v, t in zip(s, y) if not t]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return total / (len(pos) * len(neg))


def brute_ap(y, s):
    """AP by sweeping each distinct threshold from the top: sum (R_k - R_{k-1}) * P_k."""
    positives = sum(y)
    ap, previous_recall = 0.0, 0.0
    for threshold in sorted(set(s), reverse=True):
        flagged = [t for v, t in zip(s, y) if v >= threshold]
        recall = sum(flagged) / positives
        ap += (recall - previous_recall) * sum(flagged) / len(flagged)
        previous_recall = recall
    return ap


@pytest.mark.parametrize("seed", range(6))
def test_ap_and_auroc_match_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(60) < 0.3
    y[:2] = [True, False]
    s = rng.integers(0, 8, 60).astype(float) + y * rng.integers(0, 3, 60)  # many ties
    assert average_precision(y, s) == pytest.approx(brute_ap(y.tolist(), s.tolist()))
    assert roc_auc(y, s) == pytest.approx(brute_auc(y.tolist(), s.tolist()))


def test_ap_auroc_hand_cases_and_nan_dropped():
    y = np.array([1, 1, 0, 0])
    assert average_precision(y, [4, 3, 2, 1]) == 1.0 and roc_auc(y, [4, 3, 2, 1]) == 1.0
    assert roc_auc(y, [1, 2, 3, 4]) == 0.0
    assert roc_auc(y, [1, 1, 1, 1]) == 0.5 and average_precision(y, [1, 1, 1, 1]) == 0.5
    # AP of the ranking 1,0,1: (1/2)*1 + (1/2)*(2/3)
    assert average_precision([1, 0, 1, 1], [3, 2, 1, np.nan]) == pytest.approx(0.5 + 1 / 3)


def test_metric_errors():
    with pytest.raises(ValueError, match="both positives and negatives"):
        roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="same size"):
        average_precision([1, 0], [0.1])


def test_percentile_ranks_average_ties():
    r = percentile_ranks(np.array([3.0, 1.0, 3.0, np.nan, 2.0]))
    assert r[:3].tolist() == pytest.approx([3.5 / 4, 1 / 4, 3.5 / 4])
    assert math.isnan(r[3]) and r[4] == pytest.approx(2 / 4)


def _stats():
    # pixel: 0 learned early never forgotten, 1 never learned, 2 forgotten twice, 3 unobserved
    return {
        "observations": np.array([10, 10, 10, 0]),
        "correct": np.array([9, 0, 6, 0]),
        "forgetting_score": np.array([0, 10, 2, 0]),
        "confidence": np.array([0.9, 0.1, 0.6, 0.0]),
        "aum": np.array([3.0, -2.0, 0.5, 0.0]),
    }


def test_components_by_hand():
    c = label_issue_components(_stats())
    assert c["never_learned"][:3].tolist() == pytest.approx([0.1, 1.0, 0.4])
    assert c["forgetting"][:3].tolist() == pytest.approx([0.0, 1.0, 0.2])
    assert c["confidence"][:3].tolist() == pytest.approx([0.1, 0.9, 0.4])
    assert c["aum"][:3].tolist() == pytest.approx([-3.0, 2.0, -0.5])
    assert all(math.isnan(v[3]) for v in c.values())


def test_combined_is_mean_of_percentile_ranks_and_ranks_never_learned_first():
    stats = _stats()
    stats["forgetting_score"] = np.array([5, 0, 0, 0])  # must not enter the combined score
    s = label_issue_scores(stats)
    # never_learned, confidence and aum order pixels 0 < 2 < 1 -> ranks 1/3, 3/3, 2/3
    assert s[:3].tolist() == pytest.approx([1 / 3, 1.0, 2 / 3])
    mixed = _stats()
    mixed["aum"] = np.array([-5.0, 3.0, 0.5, 0.0])  # aum now orders 1 < 2 < 0
    expected = np.mean([[1 / 3, 1.0, 2 / 3], [1 / 3, 1.0, 2 / 3], [1.0, 1 / 3, 2 / 3]], axis=0)
    assert label_issue_scores(mixed)[:3].tolist() == pytest.approx(expected.tolist())
    assert rank_pixels(s).tolist() == [1, 2, 0]
    no_conf = {k: v for k, v in _stats().items() if k not in ("confidence", "aum")}
    assert set(label_issue_components(no_conf)) == {"never_learned", "forgetting"}
    assert label_issue_scores(no_conf)[1] == 1.0


def test_label_issue_score_errors():
    no_conf = {k: v for k, v in _stats().items() if k not in ("confidence", "aum")}
    with pytest.raises(ValueError, match="Expected `stats` with confidence tracking"):
        label_issue_scores(no_conf, method="aum")
    with pytest.raises(ValueError, match="Expected `method` to be one of never_learned"):
        label_issue_scores(_stats(), method="entropy")
    with pytest.raises(TypeError, match="Expected `stats` to have observations"):
        label_issue_scores({"observations": np.ones(3)})


def test_section_issue_scores_mean_and_top():
    rng = np.random.default_rng(0)
    n, hw = 3, 50
    scores = rng.random(n * hw)
    scores[:5] = np.nan
    mean = section_issue_scores(scores, num_sections=n, reduce="mean")
    top = section_issue_scores(scores, num_sections=n, reduce="top", top_fraction=0.1)
    for s in range(n):
        chunk = scores[s * hw : (s + 1) * hw]
        finite = sorted(chunk[np.isfinite(chunk)].tolist(), reverse=True)
        assert mean[s] == pytest.approx(sum(finite) / len(finite))
        k = math.ceil(0.1 * len(finite))
        assert top[s] == pytest.approx(sum(finite[:k]) / k)
    all_nan = section_issue_scores(np.full(4, np.nan), num_sections=2)
    assert np.isnan(all_nan).all()
    with pytest.raises(ValueError, match="Expected `reduce` to be 'mean' or 'top'"):
        section_issue_scores(scores, num_sections=n, reduce="max")
    with pytest.raises(ValueError, match=r"Expected `top_fraction` to be in \(0, 1\]"):
        section_issue_scores(scores, num_sections=n, top_fraction=0)
    with pytest.raises(ValueError, match="Expected `scores` to hold num_sections"):
        section_issue_scores(scores, num_sections=7)


def test_flag_top_fraction():
    s = np.array([0.1, 0.9, np.nan, 0.5, 0.7])
    assert flag_top_fraction(s, 0.5).tolist() == [False, True, False, False, True]
    assert flag_top_fraction(s, 0.0).sum() == 0
    with pytest.raises(ValueError, match=r"Expected `fraction` to be in \[0, 1\]"):
        flag_top_fraction(s, 1.5)


def brute_open(section: np.ndarray, radius: int) -> np.ndarray:
    """max over q within the (clipped) square of p of (min over the clipped square of q)."""
    h, w = section.shape

    def square(y, x):
        return slice(max(y - radius, 0), y + radius + 1), slice(max(x - radius, 0), x + radius + 1)

    eroded = np.array([[section[square(y, x)].min() for x in range(w)] for y in range(h)])
    return np.array([[eroded[square(y, x)].max() for x in range(w)] for y in range(h)])


@pytest.mark.parametrize("radius", [1, 2])
def test_open_scores_matches_brute_force(radius):
    rng = np.random.default_rng(radius)
    scores = rng.random((3, 7, 9))
    got = open_scores(scores.reshape(-1), (7, 9), radius=radius).reshape(3, 7, 9)
    for section, expected in zip(scores, got):
        np.testing.assert_array_equal(expected, brute_open(section, radius))


def test_open_scores_removes_thin_bands_and_keeps_areas():
    section = np.zeros((12, 12))
    section[2, :] = 1.0  # a one-pixel band: a hard class boundary
    section[6:10, 3:7] = 0.8  # a 4 x 4 area: a mislabeled lens
    section[0, 11] = np.nan  # unobserved
    opened = open_scores(section.reshape(-1), (12, 12)).reshape(12, 12)
    assert np.isnan(opened[0, 11]) and np.isfinite(np.delete(opened.ravel(), 11)).all()
    assert (opened[2] == 0).all()
    np.testing.assert_array_equal(opened[6:10, 3:7], 0.8)
    assert np.nansum(opened) == pytest.approx(0.8 * 16)
    raw = open_scores(section.reshape(-1), (12, 12), radius=0)
    np.testing.assert_array_equal(raw, section.ravel())
    with pytest.raises(ValueError, match="Expected `radius` to be an integer >= 0"):
        open_scores(section.reshape(-1), (12, 12), radius=-1)
    with pytest.raises(ValueError, match="Expected `scores` to hold N \\* 5 \\* 5 values"):
        open_scores(section.reshape(-1), (5, 5))
