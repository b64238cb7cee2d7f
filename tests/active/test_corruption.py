"""Label corruption: true mask, seeding, and each kind's geometry."""

from __future__ import annotations

import numpy as np
import pytest

from segforget.data.corruption import (
    corrupt_labels,
    mislabel_lens,
    shift_boundary,
    swap_classes_in_patch,
)


def layered(i=12, x=14, z=40, classes=4):
    """Flat layers of equal thickness, class 0 on top."""
    column = np.repeat(np.arange(classes), z // classes)
    return np.broadcast_to(column, (i, x, z)).astype(np.int64).copy()


def test_mask_is_exact_difference_and_seeded():
    labels = layered()
    labels[0, 0, :3] = 255
    pristine = labels.copy()
    out = corrupt_labels(labels, num_classes=4, seed=3)
    assert np.array_equal(out.error_mask, out.labels != labels)
    assert out.error_mask.any() and out.error_mask.mean() < 0.5
    assert (out.labels[0, 0, :3] == 255).all()
    again = corrupt_labels(labels, num_classes=4, seed=3)
    assert np.array_equal(out.labels, again.labels) and out.events == again.events
    other = corrupt_labels(labels, num_classes=4, seed=4)
    assert not np.array_equal(out.labels, other.labels)
    assert {e["kind"] for e in out.events} == {"boundary_shift", "lens", "patch_swap"}
    assert np.array_equal(labels, pristine)  # input untouched


def test_boundary_shift_moves_one_contact_down_inside_box():
    labels = layered()
    before = labels.copy()
    event = shift_boundary(labels, rng=np.random.default_rng(0), shift=3, lateral_fraction=0.5)
    a, b = event["classes"]
    assert b == a + 1  # layered volume: contacts are (c, c+1)
    changed = labels != before
    i0, i1 = event["inline"]
    x0, x1 = event["crossline"]
    inside = np.zeros_like(changed)
    inside[i0:i1, x0:x1] = True
    assert not (changed & ~inside).any()
    top_of_b = (b) * 10  # layer thickness 10
    expected = np.zeros_like(changed)
    expected[i0:i1, x0:x1, top_of_b : top_of_b + 3] = True
    assert np.array_equal(changed, expected)
    assert (labels[changed] == a).all() and event["changed"] == expected.sum()


def test_lens_stays_inside_host_unit():
    labels = layered(20, 20, 40)
    before = labels.copy()
    event = mislabel_lens(labels, rng=np.random.default_rng(1), num_classes=4, radius_fraction=0.3)
    host, new = event["classes"]
    changed = labels != before
    assert host != new and changed.sum() == event["changed"] > 0
    assert (before[changed] == host).all() and (labels[changed] == new).all()
    ci, cx, cz = event["centre"]
    assert changed[ci, cx, cz]


def test_patch_swap_exchanges_two_classes():
    labels = layered()
    before = labels.copy()
    event = swap_classes_in_patch(
        labels, rng=np.random.default_rng(2), lateral_fraction=0.5, depth_fraction=0.5
    )
    a, b = event["classes"]
    changed = labels != before
    assert set(np.unique(before[changed]).tolist()) == {a, b}
    assert np.array_equal(labels[changed & (before == a)], np.full((before[changed] == a).sum(), b))
    assert event["changed"] == changed.sum()


def test_single_class_volume_yields_no_shift_or_swap():
    labels = np.zeros((4, 4, 8), dtype=np.int64)
    rng = np.random.default_rng(0)
    assert shift_boundary(labels, rng=rng, shift=2, lateral_fraction=1.0) is None
    kwargs = {"lateral_fraction": 1.0, "depth_fraction": 1.0}
    assert swap_classes_in_patch(labels, rng=rng, **kwargs) is None


def test_corruption_errors():
    with pytest.raises(ValueError, match=r"Expected `labels` to be a volume of shape"):
        corrupt_labels(np.zeros((3, 3), np.int64), num_classes=2, seed=0)
    with pytest.raises(TypeError, match="Expected `labels` to have an integer dtype"):
        corrupt_labels(np.zeros((3, 3, 3)), num_classes=2, seed=0)
    with pytest.raises(ValueError, match="Expected `lenses` to be >= 0"):
        corrupt_labels(layered(), num_classes=4, seed=0, lenses=-1)
    with pytest.raises(ValueError, match="Expected `shift` to be >= 1"):
        corrupt_labels(layered(), num_classes=4, seed=0, shift=0)
    with pytest.raises(ValueError, match=r"Expected `lateral_fraction` to be in \(0, 1\]"):
        corrupt_labels(layered(), num_classes=4, seed=0, lateral_fraction=2)
