"""Region selection on constructed forgetting maps."""

from __future__ import annotations

import numpy as np
import pytest

from segforget.augment import RegionOptions, select_regions, select_regions_from_stats


def _maps(sections: int = 2, height: int = 20, width: int = 30):
    events = np.zeros((sections, height, width), dtype=np.int64)
    never = np.zeros((sections, height, width), dtype=bool)
    return events, never


def test_threshold_opening_and_min_area():
    events, never = _maps()
    events[0, 2:8, 2:10] = 3  # 48-pixel block, selected
    events[0, 15, 20] = 5  # isolated speck: removed by the opening
    events[0, 12:14, 2:4] = 2  # 2x2 block: survives opening r=0 only, removed by min_area
    events[1, 5:10, 5:10] = 1  # below k
    never[1, 10:16, 20:26] = True  # never learned: selected
    opts = RegionOptions(dilate=0, k=2, opening=1, min_area=10, budget=1.0)
    got = select_regions(events.ravel(), never.ravel(), (20, 30), options=opts).reshape(2, 20, 30)
    want = np.zeros_like(got)
    want[0, 2:8, 2:10] = True
    want[1, 10:16, 20:26] = True
    np.testing.assert_array_equal(got, want)


def test_never_learned_can_be_excluded_and_k_counts():
    events, never = _maps(1)
    events[0, 0:6, 0:6] = 2
    never[0, 10:16, 10:16] = True
    opts = RegionOptions(
        dilate=0, k=2, opening=0, min_area=1, budget=1.0, include_never_learned=False
    )
    got = select_regions(events.ravel(), never.ravel(), (20, 30), options=opts)
    assert got.sum() == 36
    opts3 = RegionOptions(dilate=0, k=3, opening=0, min_area=1, budget=1.0)
    got3 = select_regions(events.ravel(), never.ravel(), (20, 30), options=opts3)
    assert got3.sum() == 36 and got3.reshape(20, 30)[12, 12]


def test_budget_keeps_most_forgotten_components_per_section():
    events, never = _maps(1, 10, 10)
    events[0, 0:5, 0:4] = 2  # 20 px, score 40
    events[0, 6:10, 6:10] = 5  # 16 px, score 80
    events[0, 0:3, 7:10] = 9  # 9 px, score 81
    opts = RegionOptions(dilate=0, k=2, opening=0, min_area=1, budget=0.30)  # 30 px allowed
    got = select_regions(events.ravel(), None, (10, 10), options=opts).reshape(10, 10)
    assert got.sum() == 25
    assert got[0:3, 7:10].all() and got[6:10, 6:10].all() and not got[0:5, 0:4].any()


def test_sections_are_independent():
    events, never = _maps(3, 10, 10)
    events[1, 2:8, 2:8] = 4
    got = select_regions(
        events.ravel(), never.ravel(), (10, 10), options=RegionOptions(budget=1.0, dilate=0)
    ).reshape(3, 10, 10)
    assert not got[0].any() and not got[2].any() and got[1].sum() == 36


class _Stats:
    def __init__(self, events, never, meta):
        self.forgetting_events, self.never_learned, self.meta = events, never, meta


def test_from_stats_uses_meta_shape_and_reports_missing():
    events, never = _maps(1, 10, 10)
    events[0, 1:6, 1:6] = 3
    stats = _Stats(events.ravel(), never.ravel(), {"section_shape": [10, 10]})
    assert select_regions_from_stats(stats, options=RegionOptions(budget=1.0, dilate=0)).sum() == 25
    with pytest.raises(ValueError, match="section_shape"):
        select_regions_from_stats(_Stats(events.ravel(), never.ravel(), {}))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "`k` to be an integer >= 1"),
        ({"opening": -1}, "`opening` to be an integer >= 0"),
        ({"min_area": -2}, "`min_area` to be an integer >= 0"),
        ({"budget": 0.0}, "`budget` to be a fraction"),
    ],
)
def test_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegionOptions(**kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match="section_shape"):
        select_regions(np.zeros(10, dtype=int), None, (3, 3))
    with pytest.raises(ValueError, match="1-D"):
        select_regions(np.zeros((3, 3), dtype=int), None, (3, 3))
    with pytest.raises(ValueError, match="`never_learned` to have shape"):
        select_regions(np.zeros(9, dtype=int), np.zeros(8, dtype=bool), (3, 3))


def test_dilate_grows_kept_regions_by_a_square():
    events, never = _maps(1, 10, 10)
    events[0, 4, 3:7] = 2  # a thin band, kept (no opening by default)
    got = select_regions(
        events.ravel(), never.ravel(), (10, 10), options=RegionOptions(min_area=4, dilate=1)
    ).reshape(10, 10)
    want = np.zeros((10, 10), dtype=bool)
    want[3:6, 2:8] = True
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="`dilate` to be an integer >= 0"):
        RegionOptions(dilate=-1)
