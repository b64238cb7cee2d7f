"""Hypothesis property tests of the tracker's statistics on arbitrary small update sequences."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamics import reference as ref
from segforget.dynamics import ForgettingTracker

NUM_PIXELS, NUM_CLASSES = 5, 3

occurrence = st.tuples(
    st.integers(-2, NUM_PIXELS - 1),  # pixel_index (negative = no pixel)
    st.integers(0, NUM_CLASSES - 1),  # predicted class
    st.sampled_from([0, 1, 2, 255]),  # target (255 = ignore)
)
updates_strategy = st.lists(st.lists(occurrence, min_size=1, max_size=8), min_size=1, max_size=15)


def as_arrays(update):
    data = np.array(update, dtype=np.int64).T  # (3, L)
    return data[1][None, None], data[2][None, None], data[0][None, None]


@settings(max_examples=150, deadline=None)
@given(updates_strategy)
def test_properties_and_reference(updates):
    tracker = ForgettingTracker(NUM_PIXELS, NUM_CLASSES, history=True)
    arrays = [as_arrays(u) for u in updates]
    for prediction, target, index in arrays:
        tracker.update(torch.as_tensor(prediction), torch.as_tensor(target), torch.as_tensor(index))
    stats = tracker.compute()
    np.testing.assert_array_equal(
        stats.learning_events - stats.forgetting_events, stats.last_correct.astype(np.int32)
    )
    assert (stats.forgetting_events <= stats.observations // 2).all()
    assert (stats.first_learned < stats.observations).all()
    assert (stats.first_learned >= -1).all()
    assert (stats.switch_events <= np.maximum(stats.observations - 1, 0)).all()
    assert (stats.correct <= stats.observations).all()
    expected = ref.statistics(ref.sequences(arrays, NUM_PIXELS))
    for name in (
        "observations",
        "correct",
        "forgetting_events",
        "switch_events",
        "first_learned",
        "forgetting_score",
        "last_prediction",
    ):
        np.testing.assert_array_equal(getattr(stats, name), expected[name], err_msg=name)
    history = stats.correctness_history(np.arange(NUM_PIXELS))
    np.testing.assert_array_equal((history == 1).sum(axis=1), stats.correct)
    np.testing.assert_array_equal((history >= 0).sum(axis=1), stats.observations)
