"""Bodies thicker than any in training: body_thickness against loops, the accumulator against
a direct count, and when the finding is stated."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import loop_body_thickness as _loop_thickness
from segforget.analysis import ThicknessAccumulator, body_thickness, thickness_findings


def test_body_thickness_hand_case_and_loops():
    trace = np.array([2, 2, 0, 2, 2, 2, 1, 2])[None, :, None]
    thickness, below = body_thickness(trace)
    assert thickness[0, :, 0].tolist() == [2, 2, 1, 3, 3, 3, 1, 1]
    assert below[0, :, 0].tolist() == [0, 1, 0, 0, 1, 2, 0, 0]
    labels = np.random.default_rng(1).integers(0, 3, size=(4, 19, 7))
    labels[1] = 255  # a whole section ignored: one body per trace
    got, want = body_thickness(labels), _loop_thickness(labels)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        body_thickness(labels[0])


def test_accumulator_matches_a_direct_count():
    rng = np.random.default_rng(2)
    names = ["a", "b", "c"]
    train = [np.where(rng.random((3, 12, 5)) < 0.7, 0, rng.integers(0, 3, (3, 12, 5)))]
    train.append(np.full((2, 12, 5), 1))  # class b: bodies of 12 rows
    test_labels = rng.integers(0, 3, size=(2, 16, 6))
    test_labels[0, :, 0] = 0  # a body of 16 rows of class a: thicker than training's
    test_labels[1, 3, 2] = 255
    prediction = np.where(rng.random(test_labels.shape) < 0.8, test_labels, 2) % 3
    acc = ThicknessAccumulator(names)
    for chunk in train:
        acc.update_train(chunk)
    acc.update_test(prediction[:1], test_labels[:1])
    acc.update_test(prediction[1:], test_labels[1:])
    got = acc.result()
    # direct: the thickest training body per class, then each test pixel's side
    limits = np.zeros(3, np.int64)
    for chunk in train:
        thick, _ = _loop_thickness(chunk)
        for k in range(3):
            if (chunk == k).any():
                limits[k] = max(limits[k], thick[chunk == k].max())
    thick, _ = _loop_thickness(test_labels)
    for k, name in enumerate(names):
        assert got[name]["train_max_thickness"] == limits[k]
        sel = test_labels == k
        beyond = sel & (thick > limits[k])
        within = sel & ~beyond
        for key, mask in (("within", within), ("beyond", beyond)):
            assert got[name][key]["pixels"] == mask.sum()
            if mask.any():
                want = (prediction[mask] == k).mean()
                assert got[name][key]["accuracy"] == pytest.approx(want)
            else:
                assert got[name][key]["accuracy"] is None
        assert got[name]["beyond_share"] == pytest.approx(beyond.sum() / sel.sum())
        wrong = np.bincount(prediction[beyond], minlength=3)
        wrong[k] = 0
        for other, share in got[name]["beyond_predicted_as"].items():
            assert share == pytest.approx(wrong[names.index(other)] / beyond.sum())
    assert got["a"]["beyond"]["pixels"] >= 16  # the tall body
    with pytest.raises(RuntimeError, match="update_train before"):
        acc.update_train(train[0])
    with pytest.raises(ValueError, match="labels' shape"):
        acc.update_test(prediction[:, :4], test_labels)


def _row(share, within, beyond, limit=10):
    total = 1000
    return {
        "train_max_thickness": limit,
        "within": {"pixels": int(total * (1 - share)), "accuracy": within},
        "beyond": {"pixels": int(total * share), "accuracy": beyond},
        "beyond_share": share,
        "beyond_predicted_as": {"scruff": 0.8},
    }


def test_findings_name_the_classes_missed_in_thicker_bodies():
    notes = thickness_findings({"zechstein": _row(0.27, 0.78, 0.21), "chalk": _row(0.5, 0.9, 0.85)})
    assert len(notes) == 1
    assert notes[0].startswith("On the test volumes, 27% of the zechstein pixels lie in bodies")
    assert "at most 10 rows" in notes[0] and "21% of them right against 78%" in notes[0]
    assert "scruff 80%" in notes[0]
    assert "Training sections with zechstein bodies that thick would show it" in notes[0]
    assert thickness_findings({"z": _row(0.04, 0.9, 0.1)}) == []  # too few pixels beyond
    assert thickness_findings({"z": _row(0.3, 0.9, 0.1, limit=0)}) == []  # not in training
    assert thickness_findings(None) == []


def test_feeding_in_chunks_equals_one_chunk():
    """The training maximum and the test counts do not depend on the chunk size (chunks of
    one section against one chunk of the whole volume), and a view without predictions is
    skipped."""
    from segforget.analysis.thickness import feed_test_predictions, feed_training_labels
    from segforget.data import load_data

    data = load_data("synthetic:small:0")
    rng = np.random.default_rng(0)
    saved = {}
    for split in data.test_splits:
        labels = data.label_sections(split, "inline")
        noise = rng.integers(0, 6, labels.shape)
        saved[split] = np.where(rng.random(labels.shape) < 0.2, noise, labels).astype(np.uint8)

    def predictions(split, view):
        return saved[split] if view == "inline" else None

    results = []
    for chunk in (1, 10**9):
        acc = ThicknessAccumulator(data.class_names)
        feed_training_labels(acc, data, chunk_pixels=chunk)
        assert feed_test_predictions(acc, data, predictions, chunk_pixels=chunk)
        results.append(acc.result())
    assert results[0] == results[1]
    whole = ThicknessAccumulator(data.class_names)
    whole.update_train(data.label_sections("train+val", "crossline"))
    for split in data.test_splits:
        whole.update_test(saved[split], data.label_sections(split, "inline"))
    assert results[0] == whole.result()
    assert not feed_test_predictions(whole, data, lambda split, view: None)
