"""Each analysis on a hand-built case whose answer is known, plus reference implementations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from segforget.analysis import (
    BoundaryAccumulator,
    DataMapAccumulator,
    MarginSampler,
    OverviewAccumulator,
    RegionAccumulator,
    SwitchErrorAccumulator,
    TimingAccumulator,
    auroc,
    auroc_from_histograms,
    binned_curve,
    boundary_analysis,
    boundary_distance,
    boundary_mask,
    choose_frequent_threshold,
    classify_timing,
    data_map,
    find_regions,
    forgetting_overview,
    margin_analysis,
    spearman,
    views_to_volume,
)

NAMES = ["a", "b", "c"]


# ------------------------------------------------------------------ overview
def test_overview_hand_built():
    events = np.array([[[0, 0, 1, 2, 5, 0]]])
    obs = np.array([[[4, 4, 4, 4, 4, 0]]])  # last pixel unobserved
    labels = np.array([[[0, 0, 1, 1, 2, 255]]])
    never = np.array([[[False, True, False, False, False, False]]])
    out = forgetting_overview(events, obs, labels, class_names=NAMES, never_learned=never, k=2)
    assert out["observed_pixels"] == 5
    assert out["unforgettable"] == pytest.approx(1 / 5)  # pixel 0 only (pixel 1 never learned)
    assert out["never_learned"] == pytest.approx(1 / 5)
    assert out["forgotten_at_least_once"] == pytest.approx(3 / 5)
    assert out["frequently_forgotten"] == pytest.approx(2 / 5)
    assert out["mean_forgetting_events"] == pytest.approx(8 / 5)
    assert out["histogram"] == [2, 1, 1, 0, 0, 1]
    pc = out["per_class"]
    assert pc["b"]["pixels"] == 2 and pc["b"]["mean_forgetting_events"] == pytest.approx(1.5)
    assert pc["c"]["frequently_forgotten"] == 1.0
    assert pc["a"]["share_of_events"] == 0.0 and pc["c"]["share_of_events"] == pytest.approx(5 / 8)
    # largest class: a and b tie at 2 pixels, argmax takes a, whose mean is 0 -> ratio undefined
    assert out["largest_class"] == "a"
    assert pc["c"]["events_per_pixel_vs_largest_class"] is None


def test_overview_chunked_equals_whole():
    rng = np.random.default_rng(1)
    ev = rng.poisson(1.0, (6, 5, 7))
    obs = rng.integers(0, 3, ev.shape)
    lab = rng.integers(0, 3, ev.shape)
    whole = forgetting_overview(ev, obs, lab, class_names=NAMES)
    acc = OverviewAccumulator(NAMES)
    for s in range(0, 6, 2):
        acc.update(ev[s : s + 2], obs[s : s + 2], lab[s : s + 2])
    assert acc.result() == whole


def test_choose_frequent_threshold():
    # forgotten pixels: 50 with 1, 30 with 2, 15 with 3, 5 with 4 -> >=3: 20%, >=4: 5% -> k=4
    assert choose_frequent_threshold([100, 50, 30, 15, 5]) == 4
    assert choose_frequent_threshold([10]) == 2
    assert choose_frequent_threshold([0, 100, 1]) == 2  # 1% at >= 2
    with pytest.raises(ValueError, match="Expected `tail_share`"):
        choose_frequent_threshold([1, 2], tail_share=0)
    with pytest.raises(ValueError, match="Expected `k`"):
        OverviewAccumulator(NAMES, k=0)


# ------------------------------------------------------------------ boundary
def test_boundary_mask_and_distance_hand_built():
    lab = np.zeros((6, 5), dtype=np.int64)
    lab[3:] = 1  # boundary between rows 2 and 3
    mask = boundary_mask(lab)
    assert mask[2].all() and mask[3].all() and mask.sum() == 10
    dist = boundary_distance(lab)
    np.testing.assert_array_equal(dist[:, 0], [2, 1, 0, 0, 1, 2])
    # ignored labels are no boundary; a section without boundary has inf distance
    lab2 = np.zeros((1, 3, 3), dtype=np.int64)
    lab2[0, 0, 0] = 255
    assert not boundary_mask(lab2, num_classes=3).any()
    assert np.isinf(boundary_distance(lab2, num_classes=3)).all()
    with pytest.raises(ValueError, match="Expected `labels`"):
        boundary_mask(np.zeros(4))


def _reference_boundary(events, obs, labels, c):
    """Independent loops: neighbour scan + brute-force nearest boundary pixel."""
    n, h, w = labels.shape
    near_px = near_ev = tot_px = tot_ev = 0
    for s in range(n):
        pts = []
        for i, j in itertools.product(range(h), range(w)):
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                a, b = i + di, j + dj
                if (
                    0 <= a < h
                    and 0 <= b < w
                    and labels[s, i, j] < c
                    and labels[s, a, b] < c
                    and labels[s, i, j] != labels[s, a, b]
                ):
                    pts.append((i, j))
                    break
        for i, j in itertools.product(range(h), range(w)):
            if obs[s, i, j] == 0 or labels[s, i, j] >= c:
                continue
            d = min((np.hypot(i - a, j - b) for a, b in pts), default=np.inf)
            tot_px += 1
            tot_ev += events[s, i, j]
            if d <= 2:
                near_px += 1
                near_ev += events[s, i, j]
    return (near_ev / tot_ev) / (near_px / tot_px)


def test_boundary_enrichment_matches_reference_and_is_chunk_invariant():
    rng = np.random.default_rng(0)
    labels = np.zeros((4, 12, 10), dtype=np.int64)
    labels[:, 6:] = 1
    labels[:, 9:, 5:] = 2
    labels[1, 0, 0] = 255
    dist = boundary_distance(labels, num_classes=3)
    events = rng.poisson(np.where(dist <= 1, 3.0, 0.3))
    obs = np.where(rng.random(labels.shape) < 0.9, 5, 0)
    out = boundary_analysis(events, obs, labels, class_names=NAMES)
    assert out["enrichment_2px"] == pytest.approx(_reference_boundary(events, obs, labels, 3))
    assert out["enrichment_2px"] > 1.2  # most pixels of these small sections are near one
    acc = BoundaryAccumulator(NAMES)
    acc.update(events[:1], obs[:1], labels[:1])
    acc.update(events[1:], obs[1:], labels[1:])
    assert acc.result() == out
    # curve: pixel counts sum to observed valid pixels
    assert sum(b["pixels"] for b in out["curve"]) == int(((obs > 0) & (labels < 3)).sum())


def test_boundary_enrichment_uniform_is_one_and_pairs():
    labels = np.zeros((1, 10, 4), dtype=np.int64)
    labels[0, 5:] = 2
    events = np.ones_like(labels)
    events[0, 4, 0] = 3  # a boundary pixel of class a next to c
    out = boundary_analysis(np.ones_like(labels), np.ones_like(labels), labels, class_names=NAMES)
    assert out["enrichment_2px"] == pytest.approx(1.0)
    out = boundary_analysis(events, np.ones_like(labels), labels, class_names=NAMES)
    (pair,) = out["class_pairs"]
    assert pair["classes"] == ["a", "c"]
    assert pair["boundary_pixels"] == 8 and pair["forgetting_events"] == 10
    # rows 2..7 are within 2 px: 24 of 40 pixels, 26 of 42 events
    assert out["enrichment_2px"] == pytest.approx((26 / 42) / (24 / 40))


def _reference_frequent(events, obs, labels, c, k):
    """Independent loops: brute-force distance of every pixel to the nearest boundary pixel,
    rounded and binned 0, 1, 2, >= 3; frequently forgotten = at least k events."""
    n, h, w = labels.shape
    frequent, pixels = [0, 0, 0, 0], [0, 0, 0, 0]
    for s in range(n):
        pts = [
            (i, j)
            for i, j in itertools.product(range(h), range(w))
            if labels[s, i, j] < c
            and any(
                0 <= i + di < h
                and 0 <= j + dj < w
                and labels[s, i + di, j + dj] < c
                and labels[s, i + di, j + dj] != labels[s, i, j]
                for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
            )
        ]
        for i, j in itertools.product(range(h), range(w)):
            if obs[s, i, j] == 0 or labels[s, i, j] >= c:
                continue
            d = min((np.hypot(i - a, j - b) for a, b in pts), default=np.inf)
            b = 3 if not np.isfinite(d) else min(int(np.rint(d)), 3)
            pixels[b] += 1
            frequent[b] += int(events[s, i, j] >= k)
    return frequent, pixels


def test_boundary_frequent_pixels_match_reference_and_are_chunk_invariant():
    rng = np.random.default_rng(1)
    labels = np.zeros((4, 12, 10), dtype=np.int64)
    labels[:, 5:] = 1
    labels[:, 9:, 4:] = 2
    labels[2] = 0  # a section without any boundary: all its pixels are >= 3 px
    labels[1, 0, 0] = 255
    dist = boundary_distance(labels, num_classes=3)
    events = rng.poisson(np.where(dist <= 1, 2.5, 0.4))
    events[3, 0, 0] = 40  # a large count in the last chunk grows the histogram
    obs = np.where(rng.random(labels.shape) < 0.9, 5, 0)
    for k in (1, 2, 3, 41):
        expected, pixels = _reference_frequent(events, obs, labels, 3, k)
        out = boundary_analysis(events, obs, labels, class_names=NAMES, frequent_k=k)["frequent"]
        assert out["by_distance"] == expected, k
        assert out["pixels_by_distance"] == pixels
        assert out["pixels"] == sum(expected)
        if sum(expected):
            assert out["on_boundary_share"] == pytest.approx(expected[0] / sum(expected))
            assert out["within_1px_share"] == pytest.approx(sum(expected[:2]) / sum(expected))
        else:
            assert out["on_boundary_share"] is None and out["within_1px_share"] is None
        assert out["boundary_rate"] == pytest.approx(expected[0] / pixels[0])
        acc = BoundaryAccumulator(NAMES)
        for chunk in (slice(0, 1), slice(1, 3), slice(3, 4)):
            acc.update(events[chunk], obs[chunk], labels[chunk])
        assert acc.result(frequent_k=k)["frequent"] == out
    assert boundary_analysis(events, obs, labels, class_names=NAMES)["frequent"] is None
    with pytest.raises(ValueError, match="Expected `k` to be >= 1"):
        BoundaryAccumulator(NAMES).frequent(0)


def test_boundary_frequent_pixels_hand_built():
    """Row 0 0 0 0 1 1 1 255: pixels 3 and 4 are boundary pixels, 2 and 5 lie 1 px away, 1 and
    6 2 px, 0 3 px; the ignored pixel 7 is no boundary and not counted; pixel 6 unobserved.
    Frequently forgotten (>= 2 events): pixels 0, 3 and 5."""
    labels = np.array([[[0, 0, 0, 0, 1, 1, 1, 255]]])
    events = np.array([[[2, 0, 1, 2, 1, 3, 4, 5]]])
    obs = np.array([[[4, 4, 4, 4, 4, 4, 0, 4]]])
    out = boundary_analysis(events, obs, labels, class_names=NAMES, frequent_k=2)["frequent"]
    assert out["by_distance"] == [1, 1, 0, 1]
    assert out["pixels_by_distance"] == [2, 2, 1, 1]
    assert out["on_boundary_share"] == pytest.approx(1 / 3)
    assert out["within_1px_share"] == pytest.approx(2 / 3)
    assert out["boundary_rate"] == pytest.approx(1 / 2)


# ------------------------------------------------------------------ margin
def _ranks(x):
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):  # average ties
        ranks[x == v] = ranks[x == v].mean()
    return ranks


def test_spearman_matches_rank_pearson_reference():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, 200).astype(float)
    y = -x + rng.normal(0, 1, 200)
    ref = np.corrcoef(_ranks(x), _ranks(y))[0, 1]
    assert spearman(x, y) == pytest.approx(ref)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError, match="Expected `x` and `y`"):
        spearman([1, 2], [1, 2, 3])


def test_margin_analysis_and_sampler_chunk_invariance():
    rng = np.random.default_rng(4)
    aum = rng.normal(0, 2, (3, 8, 8))
    events = np.clip(np.round(2 - aum + rng.normal(0, 0.5, aum.shape)), 0, None).astype(int)
    obs = np.ones_like(events)
    out = margin_analysis(events, obs, aum=aum, confidence=None)
    assert out["available"] and out["sample_pixels"] == events.size
    assert out["spearman_events_vs_aum"] < -0.8
    curve = out["curve_aum"]
    assert curve[0]["mean_forgetting_events"] > curve[-1]["mean_forgetting_events"]
    assert sum(b["pixels"] for b in curve) == events.size
    s1 = MarginSampler(events.size, max_samples=50, seed=7)
    s1.update(events, obs, aum=aum, confidence=None)
    s2 = MarginSampler(events.size, max_samples=50, seed=7)
    for i in range(3):
        s2.update(events[i], obs[i], aum=aum[i], confidence=None)
    assert s1.result() == s2.result()
    assert 20 < s1.result()["sample_pixels"] < 90


def test_binned_curve_hand_built():
    curve = binned_curve(np.array([0.0, 1, 2, 3]), np.array([4, 2, 0, 0]), bins=2)
    assert [b["pixels"] for b in curve] == [2, 2]
    assert [b["mean_forgetting_events"] for b in curve] == [3.0, 0.0]


# ------------------------------------------------------------------ timing
def test_classify_timing_hand_built():
    history = np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 1, 1],  # never forgotten
            [1, 0, 1, 1, 1, 1, 1, 1, 1],  # early learned, forgotten at 1 -> early
            [0, 0, 0, 0, 1, 0, 1, 1, 1],  # learned at 4 (>= 3), forgotten at 5 (< 6) -> late
            [1, 1, 1, 1, 1, 1, 1, 0, 1],  # forgotten at 7 >= 6 -> oscillating
            [0, 1, 0, 1, -1, -1, -1, -1, -1],  # n=4: forgotten at 2 >= ceil(8/3)=3? no -> early
        ],
        dtype=np.int8,
    )
    codes, times = classify_timing(history)
    np.testing.assert_array_equal(codes, [0, 1, 2, 3, 1])
    np.testing.assert_array_equal(times, [0, 1, 1, 0, 0, 1, 0, 1, 0])
    acc = TimingAccumulator()
    acc.update_history(history)
    acc.update_first_learned(np.array([0, 0, 4, 0, 1, -1]), np.array([9, 9, 9, 9, 4, 3]))
    out = acc.result()
    assert out["categories"] == {
        "early_learned_then_forgotten": 2,
        "late_learned": 1,
        "oscillating": 1,
    }
    assert out["first_learned_histogram"] == [3, 1, 0, 0, 1]
    assert out["never_learned_pixels"] == 1
    with pytest.raises(ValueError, match="Expected `history`"):
        classify_timing(np.zeros(3))


# ------------------------------------------------------------------ regions
def test_find_regions_hand_built():
    events = np.zeros((8, 8), dtype=int)
    events[1:3, 1:4] = 3  # 6 px, mean 3
    events[5, 5] = 4
    events[6, 6] = 2  # diagonal neighbour of (5, 5): 8-connected, 2 px mean 3
    events[7, 0] = 1  # below k
    labels = np.zeros((8, 8), dtype=int)
    labels[2, 1:4] = 1  # region 1: 3 px of class a, 3 of class b -> tie -> a
    labels[5:, 5:] = 2
    regions = find_regions(events, labels, k=2, class_names=NAMES, view="inline", section=4)
    assert len(regions) == 2
    big = max(regions, key=lambda r: r["pixels"])
    assert big["pixels"] == 6 and big["mean_forgetting_events"] == 3
    assert (big["row_min"], big["row_max"], big["col_min"], big["col_max"]) == (1, 2, 1, 3)
    assert big["dominant_class"] == "a" and big["dominant_class_share"] == 0.5
    # every pixel of region 1 touches the a/b label change; of the small one only (5, 5)
    # (its upper neighbour is class a), (6, 6) lies inside class c
    assert big["on_boundary_share"] == 1.0
    small = min(regions, key=lambda r: r["pixels"])
    assert small["on_boundary_share"] == 0.5
    assert small["pixels"] == 2 and small["dominant_class"] == "c"
    assert small["max_forgetting_events"] == 4 and small["section"] == 4
    assert find_regions(events, labels, k=2, class_names=NAMES, min_size=3)[0]["pixels"] == 6
    with pytest.raises(ValueError, match="Expected `k`"):
        find_regions(events, labels, k=0, class_names=NAMES)


def test_region_boundary_share_matches_a_neighbour_scan():
    """Random labels (3 classes and an ignored patch): each region's share of boundary pixels
    against an explicit scan of the 4 neighbours of its pixels."""
    rng = np.random.default_rng(11)
    labels = np.repeat(rng.integers(0, 3, (6, 1)), 2, axis=0) * np.ones((1, 14), dtype=int)
    labels[4:7, 9:12] = 255
    events = rng.poisson(1.5, labels.shape)
    regions = find_regions(events, labels, k=2, class_names=NAMES)
    assert regions
    comp, _ = ndimage.label(events >= 2, structure=np.ones((3, 3)))
    h, w = labels.shape

    def on_edge(i, j):
        own = labels[i, j]
        return own < 3 and any(
            0 <= i + di < h and 0 <= j + dj < w and labels[i + di, j + dj] not in (own, 255)
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
        )

    expected = []
    for v in range(1, comp.max() + 1):
        pixels = np.argwhere(comp == v)
        box = (*pixels.min(axis=0), *pixels.max(axis=0))  # row_min, col_min, row_max, col_max
        share = np.mean([on_edge(a, b) for a, b in pixels])
        expected.append((len(pixels), int(box[0]), int(box[2]), int(box[1]), int(box[3]), share))
    fields = ("pixels", "row_min", "row_max", "col_min", "col_max", "on_boundary_share")
    got = [tuple(r[f] for f in fields) for r in regions]
    assert len(got) == len(expected)
    for mine, ref in zip(sorted(got), sorted(expected)):
        assert mine[:5] == ref[:5] and mine[5] == pytest.approx(ref[5])
    assert any(0 < row[-1] < 1 for row in got)  # the case has partly-boundary regions


def test_region_accumulator_ranks_against_scipy_reference():
    rng = np.random.default_rng(5)
    events = rng.poisson(0.8, (5, 16, 16))
    labels = np.zeros_like(events)
    acc = RegionAccumulator(k=2, class_names=NAMES, min_size=1, max_regions=7)
    acc.update(events[:2], labels[:2], view="inline", sections=[0, 1])
    acc.update(events[2:], labels[2:], view="inline", sections=[2, 3, 4])
    out = acc.result()
    ref_sizes = []
    for s in range(5):
        comp, n = ndimage.label(events[s] >= 2, structure=np.ones((3, 3)))
        ref_sizes += list(np.bincount(comp.ravel())[1:])
    assert out["count"] == len(ref_sizes)
    assert out["pixels"] == int((events >= 2).sum())
    assert [r["pixels"] for r in out["top"]] == sorted(ref_sizes, reverse=True)[:7]
    assert [r["rank"] for r in out["top"]] == list(range(1, 8))


# ------------------------------------------------------------------ volume
def test_views_to_volume_maps_pixels_to_voxels():
    i_n, x_n, d_n = 3, 4, 5
    inline = np.zeros((i_n, d_n, x_n), dtype=int)
    crossline = np.zeros((x_n, d_n, i_n), dtype=int)
    inline[2, 4, 1] = 7  # inline i=2, depth 4, crossline 1 -> voxel (2, 1, 4)
    crossline[1, 4, 2] = 5  # crossline x=1, depth 4, inline 2 -> same voxel
    crossline[3, 0, 0] = 1  # voxel (0, 3, 0)
    vol = views_to_volume(inline, crossline)
    assert vol.shape == (i_n, x_n, d_n)
    assert vol[2, 1, 4] == 12 and vol[0, 3, 0] == 1 and vol.sum() == 13
    # round trip: a volume split into sections exactly as segforget.data does
    rng = np.random.default_rng(0)
    v = rng.integers(0, 5, (i_n, x_n, d_n))
    inl = np.stack([v[i].T for i in range(i_n)])
    xl = np.stack([v[:, x].T for x in range(x_n)])
    np.testing.assert_array_equal(views_to_volume(inl, xl), 2 * v)
    with pytest.raises(ValueError, match="Expected `view`"):
        from segforget.analysis import VolumeAccumulator

        VolumeAccumulator((1, 1, 1)).update(np.zeros((1, 1, 1)), view="image", sections=[0])


# ------------------------------------------------------------------ data map
def test_data_map_hand_built():
    conf = np.array([0.9, 0.95, 0.3, 0.5, 0.1])
    var = np.array([0.05, 0.3, 0.25, 0.1, 0.0])
    ev = np.array([0, 4, 2, 1, 3])
    out = data_map(ev, np.ones(5), conf, var, bins=10)
    assert out["pixels"] == 5
    r = out["regions"]
    assert r["easy"]["pixel_share"] == pytest.approx(2 / 5)  # 0.9/0.05, 0.5/0.1
    assert r["easy"]["mean_forgetting_events"] == pytest.approx(0.5)
    assert r["ambiguous"]["mean_forgetting_events"] == pytest.approx(3.0)
    assert r["hard"]["pixel_share"] == pytest.approx(1 / 5)
    assert out["counts"][9][1] == 1 and out["mean_events"][9][1] == 0.0  # conf .9->bin9, var .05->1
    acc = DataMapAccumulator(bins=10)
    acc.update(ev[:2], np.ones(2), conf[:2], var[:2])
    acc.update(ev[2:], np.ones(3), conf[2:], var[2:])
    assert acc.result() == out


def test_data_map_matches_a_per_pixel_loop():
    rng = np.random.default_rng(4)
    n, bins = 400, 8
    conf = rng.random(n)
    var = 0.5 * rng.random(n)
    var[:20] = 0.2  # on the ambiguity threshold
    conf[20:40] = 0.5  # on the easy / hard threshold
    ev = rng.poisson(1.0, n)
    obs = np.where(rng.random(n) < 0.9, 3, 0)
    valid = rng.random(n) < 0.9
    counts, events = np.zeros((bins, bins), int), np.zeros((bins, bins), int)
    pixels = {"easy": 0, "ambiguous": 0, "hard": 0}
    region_events = dict.fromkeys(pixels, 0)
    for i in range(n):
        if obs[i] == 0 or not valid[i]:
            continue
        c, v = conf[i], var[i]
        row, col = min(int(c * bins), bins - 1), min(int(v / 0.5 * bins), bins - 1)
        counts[row, col] += 1
        events[row, col] += ev[i]
        name = "ambiguous" if v >= 0.2 else ("easy" if c >= 0.5 else "hard")
        pixels[name] += 1
        region_events[name] += ev[i]
    acc = DataMapAccumulator(bins=bins)
    acc.update(ev, obs, conf, var, valid=valid)
    np.testing.assert_array_equal(acc.counts, counts)
    np.testing.assert_array_equal(acc.events, events)
    assert acc.region_pixels == pixels and acc.region_events == region_events


# ------------------------------------------------------------------ test dynamics
def _pairwise_auroc(scores, positive):
    pos, neg = scores[positive], scores[~positive]
    total = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return total / (len(pos) * len(neg))


def test_auroc_matches_pairwise_reference():
    rng = np.random.default_rng(6)
    scores = rng.integers(0, 5, 80)
    positive = rng.random(80) < 0.3 + 0.1 * scores
    ref = _pairwise_auroc(scores, positive)
    assert auroc(scores, positive) == pytest.approx(ref)
    pos_h = np.bincount(scores[positive], minlength=5)
    neg_h = np.bincount(scores[~positive], minlength=5)
    assert auroc_from_histograms(pos_h, neg_h) == pytest.approx(ref)
    assert auroc([1, 2], [True, True]) is None
    with pytest.raises(ValueError, match="Expected `scores`"):
        auroc([1, 2], [True])


def test_switch_error_accumulator():
    switches = np.array([[0, 0, 1, 3, 2, 5]])
    pred = np.array([[0, 0, 1, 1, 0, 2]])
    labels = np.array([[0, 0, 1, 0, 1, 255]])
    obs = np.ones_like(pred)
    acc = SwitchErrorAccumulator()
    acc.update(switches, obs, pred, labels, num_classes=3)
    out = acc.result()
    assert out["pixels"] == 5 and out["error_rate"] == pytest.approx(2 / 5)
    wrong = np.array([False, False, False, True, True])
    assert out["auroc_switches_predict_error"] == pytest.approx(
        _pairwise_auroc(switches[0, :5], wrong)
    )
    assert out["auroc_switches_predict_error"] == 1.0


def _reference_pairs(events, obs, labels, c):
    """Independent loops: for each observed valid pixel, each distinct other valid class
    among its 4 neighbours adds the pixel (and its events) to that class pair."""
    pixels, forgotten, total = (np.zeros((c, c), dtype=np.int64) for _ in range(3))
    n, h, w = labels.shape
    for s, i, j in itertools.product(range(n), range(h), range(w)):
        own = labels[s, i, j]
        if obs[s, i, j] == 0 or own >= c:
            continue
        others = {
            int(labels[s, i + di, j + dj])
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if 0 <= i + di < h and 0 <= j + dj < w and labels[s, i + di, j + dj] < c
        } - {int(own)}
        for k in others:
            a, b = min(own, k), max(own, k)
            pixels[a, b] += 1
            forgotten[a, b] += int(events[s, i, j] > 0)
            total[a, b] += int(events[s, i, j])
    return pixels, forgotten, total


@pytest.mark.parametrize("c", [5, 70])
def test_boundary_class_pairs_match_reference_and_are_chunk_invariant(c):
    """Random labels with ignored pixels: pixels touching two other classes count once for
    each, a class met twice counts once, ignored neighbours make no pair (up to 63 classes
    and beyond: two ways of counting each class once)."""
    rng = np.random.default_rng(3)
    classes = np.array([0, 1, 2, 3, 4] if c == 5 else [0, 1, 40, 64, 69])
    labels = rng.choice(classes, size=(3, 9, 8))
    labels[rng.random(labels.shape) < 0.1] = 255
    events = rng.poisson(0.8, labels.shape)
    obs = np.where(rng.random(labels.shape) < 0.85, 4, 0)
    names = [f"c{k}" for k in range(c)]
    whole = BoundaryAccumulator(names)
    whole.update(events, obs, labels)
    pixels, forgotten, total = _reference_pairs(events, obs, labels, c)
    np.testing.assert_array_equal(whole.pair_pixels, pixels)
    np.testing.assert_array_equal(whole.pair_forgotten, forgotten)
    np.testing.assert_array_equal(whole.pair_events, total)
    chunked = BoundaryAccumulator(names)
    for s in range(3):
        chunked.update(events[s : s + 1], obs[s : s + 1], labels[s : s + 1])
    assert chunked.result(frequent_k=2) == whole.result(frequent_k=2)
    pairs = whole.result()["class_pairs"]
    assert sum(p["boundary_pixels"] for p in pairs) == int(pixels.sum())
    # the distance curve against its definition: pixels, events and forgotten per bin
    curve = whole.result()["curve"]
    dist = boundary_distance(labels, num_classes=c)
    seen = (obs > 0) & (labels < c)
    bins = np.minimum(np.where(np.isfinite(dist), np.rint(dist), 32), 32).astype(int)[seen]
    for d in range(33):
        at = bins == d
        assert curve[d]["pixels"] == int(at.sum())
        if at.any():
            assert curve[d]["mean_forgetting_events"] == pytest.approx(events[seen][at].mean())
            assert curve[d]["forgotten_fraction"] == pytest.approx((events[seen][at] > 0).mean())
