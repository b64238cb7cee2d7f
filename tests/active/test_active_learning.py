"""Acquisition scores, ranking and Gaussian switch sampling on constructed arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segforget.analysis.active_learning import (
    LABEL_FREE_STRATEGIES,
    STRATEGIES,
    entropy_section_scores,
    fit_gaussian_mixture,
    gaussian_switch_sampling,
    margin_section_scores,
    patch_grid,
    pixel_to_patch_scores,
    pixel_to_section_scores,
    random_section_scores,
    rank_sections,
    select_sections,
    spaced_choice,
)


def test_pixel_to_section_scores_matches_loop():
    rng = np.random.default_rng(0)
    n, h, w = 5, 3, 4
    values = rng.integers(0, 7, n * h * w).astype(float)
    observed = rng.random(n * h * w) > 0.3
    observed[2 * h * w : 3 * h * w] = False  # section 2 never observed
    got = pixel_to_section_scores(values, num_sections=n, observed=observed)
    for s in range(n):
        chunk = slice(s * h * w, (s + 1) * h * w)
        picked = [v for v, o in zip(values[chunk], observed[chunk]) if o]
        if picked:
            assert got[s] == pytest.approx(sum(picked) / len(picked))
        else:
            assert math.isnan(got[s])


def test_pixel_to_section_scores_rejects_wrong_size():
    with pytest.raises(ValueError, match="Expected `values` to hold num_sections"):
        pixel_to_section_scores(np.zeros(10), num_sections=3)
    with pytest.raises(ValueError, match="Expected `observed` to have 12 entries"):
        pixel_to_section_scores(np.zeros(12), num_sections=3, observed=np.ones(5, bool))


def _probabilities(rng, n=4, c=3, h=2, w=3):
    logits = rng.normal(size=(n, c, h, w)) * 3
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def test_entropy_and_margin_match_per_pixel_reference():
    p = _probabilities(np.random.default_rng(1))
    n, c, h, w = p.shape
    for s in range(n):
        entropies, margins = [], []
        for i in range(h):
            for j in range(w):
                q = sorted(p[s, :, i, j].tolist(), reverse=True)
                entropies.append(-sum(x * math.log(x) for x in q))
                margins.append(q[0] - q[1])
        assert entropy_section_scores(p)[s] == pytest.approx(sum(entropies) / len(entropies))
        assert margin_section_scores(p)[s] == pytest.approx(1 - sum(margins) / len(margins))


def test_entropy_and_margin_rank_uncertain_section_first():
    sure = np.zeros((1, 3, 2, 2))
    sure[:, 0] = 1.0
    unsure = np.full((1, 3, 2, 2), 1 / 3)
    p = np.concatenate([sure, unsure])
    assert rank_sections(entropy_section_scores(p), 1).tolist() == [1]
    assert rank_sections(margin_section_scores(p), 1).tolist() == [1]
    assert entropy_section_scores(p)[1] == pytest.approx(math.log(3))
    assert margin_section_scores(p).tolist() == pytest.approx([0.0, 1.0])


def test_probability_shape_errors():
    with pytest.raises(ValueError, match=r"Expected `probabilities` to have shape \(N, C, H, W\)"):
        entropy_section_scores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="C >= 2"):
        margin_section_scores(np.ones((2, 1, 2, 2)))


def test_rank_sections_order_ties_nan_and_exclude():
    scores = np.array([0.5, 2.0, np.nan, 2.0, 1.0, 3.0])
    assert rank_sections(scores, 3).tolist() == [5, 1, 3]
    assert rank_sections(scores, 10).tolist() == [5, 1, 3, 4, 0]
    assert rank_sections(scores, 2, exclude=np.array([5, 1])).tolist() == [3, 4]
    with pytest.raises(ValueError, match="Expected `n` to be a positive number"):
        rank_sections(scores, 0)


def test_random_scores_reproducible_by_seed():
    a = random_section_scores(20, seed=3)
    assert np.array_equal(a, random_section_scores(20, seed=3))
    assert not np.array_equal(a, random_section_scores(20, seed=4))


def test_gmm_recovers_two_well_separated_components():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1.0, 0.3, 700), rng.normal(6.0, 0.5, 300)])
    gmm = fit_gaussian_mixture(rng.permutation(x))
    assert gmm.means == pytest.approx([1.0, 6.0], abs=0.1)
    assert np.sqrt(gmm.variances) == pytest.approx([0.3, 0.5], abs=0.06)
    assert gmm.weights == pytest.approx([0.7, 0.3], abs=0.03)
    # The log-likelihood is the mixture density summed over points.
    dens = sum(
        wk * np.exp(-((x - mk) ** 2) / (2 * vk)) / np.sqrt(2 * np.pi * vk)
        for wk, mk, vk in zip(gmm.weights, gmm.means, gmm.variances)
    )
    assert gmm.log_likelihood == pytest.approx(np.log(dens).sum(), rel=1e-9)
    resp = gmm.responsibilities(np.array([1.0, 6.0]))
    assert resp[0, 0] > 0.99 and resp[1, 1] > 0.99


def test_gmm_em_does_not_decrease_likelihood_and_handles_constant_data():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, 50), rng.normal(2, 1, 50)])
    lls = [fit_gaussian_mixture(x, max_iterations=k).log_likelihood for k in (1, 2, 5, 20, 200)]
    assert all(b >= a - 1e-9 for a, b in zip(lls, lls[1:]))
    flat = fit_gaussian_mixture(np.full(10, 3.0))
    assert np.all(np.isfinite(flat.means)) and np.all(flat.variances > 0)
    with pytest.raises(ValueError, match="at least 2 finite values"):
        fit_gaussian_mixture(np.array([1.0, np.nan]))


def _two_groups(seed=0):
    rng = np.random.default_rng(seed)
    low = rng.normal(1.0, 0.2, 40)
    high = rng.normal(5.0, 0.3, 12)
    scores = np.concatenate([low, high])
    perm = rng.permutation(scores.size)
    high_sections = set(np.flatnonzero(perm >= 40).tolist())
    return scores[perm], high_sections


def test_gauss_samples_only_from_high_component_and_is_reproducible():
    scores, high = _two_groups()
    a = gaussian_switch_sampling(scores, 5, seed=7)
    assert len(set(a.tolist())) == 5 and set(a.tolist()) <= high
    assert np.array_equal(a, gaussian_switch_sampling(scores, 5, seed=7))
    draws = {tuple(sorted(gaussian_switch_sampling(scores, 5, seed=s).tolist())) for s in range(8)}
    assert len(draws) > 1  # a sampler, not the top-5
    excluded = np.array(sorted(high))[:10]
    b = gaussian_switch_sampling(scores, 4, seed=1, exclude=excluded)
    # Only 2 high sections remain: both come first, then the best of the low component.
    assert set(b[:2].tolist()) == high - set(excluded.tolist())
    assert not set(b.tolist()) & set(excluded.tolist())
    low_order = [i for i in np.argsort(-scores, kind="stable") if i not in high]
    assert b[2:].tolist() == low_order[:2]


def test_gauss_with_few_candidates_or_constant_scores():
    assert gaussian_switch_sampling(np.array([1.0, 3.0, 2.0]), 5, seed=0).tolist() == [1, 2, 0]
    const = gaussian_switch_sampling(np.ones(10), 3, seed=0)
    assert len(set(const.tolist())) == 3


def test_select_sections_dispatch_and_error():
    scores, high = _two_groups(1)
    assert (
        select_sections(scores, 3, strategy="switch").tolist() == rank_sections(scores, 3).tolist()
    )
    assert np.array_equal(
        select_sections(scores, 3, strategy="gauss", seed=2),
        gaussian_switch_sampling(scores, 3, seed=2),
    )
    # every strategy is label-free except the oracle reference
    assert set(STRATEGIES) - set(LABEL_FREE_STRATEGIES) == {"forgetting"}
    assert set(LABEL_FREE_STRATEGIES) <= set(STRATEGIES) and len(set(STRATEGIES)) == 7
    assert select_sections(scores, 3, strategy="switch-entropy").tolist() == (
        rank_sections(scores, 3).tolist()
    )
    with pytest.raises(ValueError, match="Expected `strategy` to be one of switch, gauss"):
        select_sections(scores, 3, strategy="bald")


def _spaced_reference(order, n, positions, spacing, taken=(), groups=None, taken_groups=None):
    """Brute force: for each slot, the first candidate in priority order that is far enough from
    every section chosen so far and every taken one; when none is, the first one not yet chosen
    that is not itself taken."""
    groups = [0] * len(positions) if groups is None else list(groups)
    taken_groups = [0] * len(taken) if taken_groups is None else list(taken_groups)
    blocked = list(zip(taken_groups, taken))
    chosen = []
    for _ in range(n):
        free = [
            i
            for i in order
            if i not in chosen
            and (groups[i], positions[i]) not in set(zip(taken_groups, taken))
            and all(g != groups[i] or abs(t - positions[i]) >= spacing for g, t in blocked)
        ]
        if free:
            chosen.append(free[0])
            blocked.append((groups[free[0]], positions[free[0]]))
    rest = [
        i
        for i in order
        if i not in chosen and (groups[i], positions[i]) not in set(zip(taken_groups, taken))
    ]
    return chosen + rest[: n - len(chosen)]


def test_spaced_choice_by_hand():
    # Scores put sections 10, 11, 14, 30, 12 first: spacing 3 keeps 10, 14, 30.
    positions = np.array([10, 11, 14, 30, 12, 40])
    order = np.arange(6)
    assert spaced_choice(order, 3, positions=positions, spacing=3).tolist() == [0, 2, 3]
    # Section 31 already labeled: 30 is too close, the next far one is 40.
    got = spaced_choice(order, 3, positions=positions, spacing=3, taken=np.array([31]))
    assert got.tolist() == [0, 2, 5]
    # Too few far-apart sections: the skipped ones fill up, in priority order.
    assert spaced_choice(order, 5, positions=positions, spacing=20).tolist() == [0, 3, 1, 2, 4]
    # Spacing 0 or 1: the strategy's own order.
    for spacing in (0, 1):
        assert spaced_choice(order, 3, positions=positions, spacing=spacing).tolist() == [0, 1, 2]
    # Different groups (split, view) never block each other.
    groups = np.array([0, 1, 0, 0, 1, 0])
    got = spaced_choice(order, 3, positions=positions, spacing=3, groups=groups)
    assert got.tolist() == [0, 1, 2]
    # A taken section is never chosen, even to fill up.
    got = spaced_choice(order, 6, positions=positions, spacing=3, taken=np.array([10, 11]))
    assert 0 not in got.tolist() and 1 not in got.tolist() and got.tolist()[:2] == [2, 3]
    with pytest.raises(ValueError, match="Expected `spacing` to be an integer >= 0"):
        spaced_choice(order, 3, positions=positions, spacing=-1)


@pytest.mark.parametrize("seed", range(20))
def test_spaced_choice_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 25))
    positions = rng.integers(0, 40, size=k)
    groups = rng.integers(0, 2, size=k)
    order = rng.permutation(k)
    taken = rng.integers(0, 40, size=int(rng.integers(0, 4)))
    taken_groups = rng.integers(0, 2, size=taken.size)
    n, spacing = int(rng.integers(1, 8)), int(rng.integers(2, 6))
    got = spaced_choice(
        order,
        n,
        positions=positions,
        spacing=spacing,
        taken=taken,
        groups=groups,
        taken_groups=taken_groups,
    )
    expected = _spaced_reference(
        order.tolist(), n, positions.tolist(), spacing, taken.tolist(), groups, taken_groups
    )
    assert got.tolist() == expected


def test_select_sections_with_spacing_walks_each_strategy_order():
    scores, high = _two_groups(2)
    n = 4
    # Without spacing, unchanged (the al-sim figures in the README depend on it).
    assert np.array_equal(
        select_sections(scores, n, strategy="gauss", seed=3, spacing=1),
        gaussian_switch_sampling(scores, n, seed=3),
    )
    got = select_sections(scores, n, strategy="switch", spacing=5)
    ranked = rank_sections(scores, scores.size).tolist()
    assert got.tolist() == _spaced_reference(ranked, n, list(range(scores.size)), 5)
    gauss = select_sections(scores, n, strategy="gauss", seed=3, spacing=5)
    assert set(gauss.tolist()) <= high  # enough far-apart high sections: only those are drawn
    assert np.diff(np.sort(gauss)).min() >= 5
    assert np.array_equal(gauss, select_sections(scores, n, strategy="gauss", seed=3, spacing=5))
    # positions: section numbers of a pool that is not 0..N-1.
    pool = np.arange(scores.size) * 2 + 100
    got = select_sections(scores, n, strategy="switch", spacing=9, positions=pool)
    assert got.tolist() == _spaced_reference(ranked, n, pool.tolist(), 9)
    with pytest.raises(ValueError, match="Expected `positions` to have one section number"):
        select_sections(scores, n, strategy="switch", spacing=2, positions=pool[:3])
    with pytest.raises(ValueError, match="Expected `spacing` to be an integer >= 0"):
        select_sections(scores, n, strategy="switch", spacing=-2)


def test_patch_grid_covers_the_section_once():
    assert patch_grid(3, 5, (2, 3)) == [(0, 0, 2, 3), (0, 3, 2, 2), (2, 0, 1, 3), (2, 3, 1, 2)]
    assert patch_grid(4, 4, (9, 9)) == [(0, 0, 4, 4)]  # larger than the section: all of it
    for height, width, patch in [(7, 11, (3, 4)), (8, 8, (2, 8)), (5, 6, (1, 1))]:
        cover = np.zeros((height, width), int)
        for row, col, h, w in patch_grid(height, width, patch):
            cover[row : row + h, col : col + w] += 1
        assert (cover == 1).all()
    with pytest.raises(ValueError, match="Expected `patch` to be two sizes >= 1"):
        patch_grid(4, 4, (0, 2))


def test_pixel_to_patch_scores_matches_loops():
    rng = np.random.default_rng(3)
    n, h, w, patch = 3, 5, 7, (2, 3)
    values = rng.random(n * h * w)
    observed = rng.random(n * h * w) > 0.3
    observed[: h * w] = False  # section 0 never observed: NaN everywhere
    got, grid = pixel_to_patch_scores(
        values, num_sections=n, section_shape=(h, w), patch=patch, observed=observed
    )
    assert got.shape == (n, len(grid))
    cube, seen = values.reshape(n, h, w), observed.reshape(n, h, w)
    for section in range(n):
        for t, (row, col, ph, pw) in enumerate(grid):
            picked = [
                cube[section, r, c]
                for r in range(row, row + ph)
                for c in range(col, col + pw)
                if seen[section, r, c]
            ]
            if picked:
                assert got[section, t] == pytest.approx(sum(picked) / len(picked))
            else:
                assert math.isnan(got[section, t])
    # Without a mask, one window as large as the section is the section score.
    whole, _ = pixel_to_patch_scores(values, num_sections=n, section_shape=(h, w), patch=(h, w))
    assert whole[:, 0] == pytest.approx(pixel_to_section_scores(values, num_sections=n))
    with pytest.raises(ValueError, match="Expected `values` to hold num_sections"):
        pixel_to_patch_scores(values[:-1], num_sections=n, section_shape=(h, w), patch=patch)


def test_rank_mean_scores_by_hand():
    """Ranks 1..N (ties averaged) divided by N, averaged over the vectors."""
    from segforget.analysis.active_learning import rank_mean_scores

    got = rank_mean_scores([4.0, 1.0, 2.0, 3.0], [0.4, 0.1, 0.3, 0.2])
    # ranks (4, 1, 2, 3) and (4, 1, 3, 2): mean / 4
    assert got == pytest.approx([1.0, 0.25, 0.625, 0.625])
    # ties share the average rank: (1.5, 1.5, 3) / 3 and (1, 2, 3) / 3
    assert rank_mean_scores([1, 1, 2], [5, 6, 7]) == pytest.approx([2.5 / 6, 3.5 / 6, 1.0])
    # scale does not matter: entropy in nats and switch counts weigh the same
    assert rank_mean_scores([1, 2, 3], [10, 20, 30]) == pytest.approx(
        rank_mean_scores([0.1, 0.2, 0.3], [1000, 2000, 3000])
    )
    for bad in (([1, 2], [1, 2, 3]), ([1, float("nan")], [1, 2]), ([1, 2],)):
        with pytest.raises(ValueError):
            rank_mean_scores(*bad)


def test_paired_curves_adjust_the_acquisition_rounds_by_holm():
    """Round 0 (the shared initial set) is no test; rounds 1.. are one Holm family."""
    from scipy import stats

    from segforget.analysis.active_learning import paired_curves

    rng = np.random.default_rng(3)
    base = rng.uniform(0.4, 0.6, size=(5, 4))
    base[:, 0] = 0.3  # the initial labeled set: the same model for every strategy
    gains = np.array([0.0, 0.05, 0.02, 0.01])
    switch = base + gains + rng.normal(0, 0.01, size=base.shape) * (gains > 0)
    curves = {"random": {"miou": base.tolist()}, "switch": {"miou": switch.tolist()}}
    paired = paired_curves(curves)
    assert paired["random"] == {}
    got = paired["switch"]["random"]
    raw = [stats.ttest_rel(switch[:, r], base[:, r]).pvalue for r in (1, 2, 3)]
    assert got["p"][1:] == pytest.approx(raw)
    # Holm by hand over the three rounds: sorted p times 3, 2, 1, made non-decreasing
    order = np.argsort(raw)
    expected = np.empty(3)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[i]))
        expected[i] = running
    assert got["p_holm"][0] is None
    assert got["p_holm"][1:] == pytest.approx(expected.tolist())
    assert all(h >= p for h, p in zip(got["p_holm"][1:], raw))
