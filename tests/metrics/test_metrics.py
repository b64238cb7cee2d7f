"""The benchmark metrics against an independent per-pixel reference written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import run_gloo
from segforget.metrics import ConfusionMatrix, compute_scores

IGNORE = 255


def reference_scores(prediction: np.ndarray, target: np.ndarray, num_classes: int) -> dict:
    """Loop over pixels, count per class, then apply the textbook formulas."""
    tp = [0] * num_classes
    true_count = [0] * num_classes
    pred_count = [0] * num_classes
    total = correct = 0
    for p, t in zip(prediction.ravel().tolist(), target.ravel().tolist(), strict=True):
        if t == IGNORE:
            continue
        total += 1
        true_count[t] += 1
        pred_count[p] += 1
        if p == t:
            tp[t] += 1
            correct += 1
    acc = [tp[c] / true_count[c] if true_count[c] else None for c in range(num_classes)]
    union = [true_count[c] + pred_count[c] - tp[c] for c in range(num_classes)]
    iou = [tp[c] / union[c] if union[c] else None for c in range(num_classes)]
    defined_acc = [a for a in acc if a is not None]
    defined_iou = [v for v in iou if v is not None]
    fwiou = sum(true_count[c] / total * (iou[c] or 0.0) for c in range(num_classes))
    return {
        "pixel_accuracy": correct / total,
        "class_accuracy": acc,
        "mean_class_accuracy": sum(defined_acc) / len(defined_acc),
        "class_iou": iou,
        "miou": sum(defined_iou) / len(defined_iou),
        "fwiou": fwiou,
    }


def random_case(seed: int, num_classes: int = 6, shape=(4, 17, 23)):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, size=shape)
    # Correlated predictions so per-class values are non-trivial.
    prediction = np.where(rng.random(shape) < 0.6, target, rng.integers(0, num_classes, size=shape))
    target[rng.random(shape) < 0.15] = IGNORE
    return prediction, target


def assert_matches_reference(scores: dict, ref: dict, num_classes: int) -> None:
    for key in ("pixel_accuracy", "mean_class_accuracy", "miou", "fwiou"):
        assert scores[key] == pytest.approx(ref[key], abs=1e-12), key
    for key in ("class_accuracy", "class_iou"):
        got = [scores[key][str(c)] for c in range(num_classes)]
        for g, r in zip(got, ref[key], strict=True):
            assert (g is None and r is None) or g == pytest.approx(r, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_shot_matches_reference(seed):
    prediction, target = random_case(seed)
    scores = compute_scores(prediction, target, 6)
    assert_matches_reference(scores, reference_scores(prediction, target, 6), 6)


def test_batch_accumulated_equals_one_shot_and_reference():
    prediction, target = random_case(7, shape=(9, 11, 13))
    cm = ConfusionMatrix(6)
    for start in range(0, 9, 2):
        cm.update(
            torch.from_numpy(prediction[start : start + 2]),
            torch.from_numpy(target[start : start + 2]),
        )
    accumulated = cm.scores()
    assert accumulated == compute_scores(prediction, target, 6)
    assert_matches_reference(accumulated, reference_scores(prediction, target, 6), 6)


def test_logits_give_the_same_scores_as_their_argmax():
    rng = np.random.default_rng(3)
    logits = torch.from_numpy(rng.normal(size=(2, 4, 5, 6)).astype(np.float32))
    target = torch.from_numpy(rng.integers(0, 4, size=(2, 5, 6)))
    assert compute_scores(logits, target, 4) == compute_scores(logits.argmax(1), target, 4)


def test_hand_computed_case_with_class_names():
    target = np.array([[0, 0, 1, 1], [2, 2, 2, IGNORE]])
    prediction = np.array([[0, 1, 1, 1], [2, 2, 0, 1]])
    scores = compute_scores(prediction, target, 3, class_names=["a", "b", "c"])
    # matrix rows=true: a:[1,1,0] b:[0,2,0] c:[1,0,2]
    assert scores["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert scores["pixel_accuracy"] == pytest.approx(5 / 7)
    assert scores["class_accuracy"] == pytest.approx({"a": 0.5, "b": 1.0, "c": 2 / 3})
    assert scores["class_iou"] == pytest.approx({"a": 1 / 3, "b": 2 / 3, "c": 2 / 3})
    assert scores["miou"] == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    assert scores["fwiou"] == pytest.approx(2 / 7 * 1 / 3 + 2 / 7 * 2 / 3 + 3 / 7 * 2 / 3)


def test_absent_class_is_excluded_from_means_not_nan():
    target = np.array([0, 0, 1, 1])
    prediction = np.array([0, 1, 1, 1])
    scores = compute_scores(prediction, target, 3)
    assert scores["class_iou"]["2"] is None and scores["class_accuracy"]["2"] is None
    assert scores["miou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert scores["mean_class_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert not any(
        isinstance(v, float) and math.isnan(v)
        for v in scores.values()
        if not isinstance(v, (dict, list))
    )


def test_predicted_but_absent_from_target_has_zero_iou_and_no_accuracy():
    scores = compute_scores(np.array([2, 1]), np.array([1, 1]), 3)
    assert scores["class_iou"]["2"] == 0.0
    assert scores["class_accuracy"]["2"] is None
    assert scores["miou"] == pytest.approx((0.5 + 0.0) / 2)


def test_all_ignored_gives_none():
    scores = compute_scores(np.array([1, 1]), np.array([IGNORE, IGNORE]), 2)
    assert scores["pixel_accuracy"] is None and scores["miou"] is None


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: compute_scores(np.zeros(3, int), np.zeros(3, int), 0), ValueError, "num_classes"),
        (lambda: compute_scores(np.zeros(3, int), np.zeros(4, int), 2), ValueError, "same shape"),
        (lambda: compute_scores(np.zeros(3, int), np.array([0, 5, 1]), 2), ValueError, "target"),
        (
            lambda: compute_scores(np.zeros((1, 3, 2)), np.zeros((1, 2), int), 2),
            ValueError,
            "num_classes",
        ),
        (lambda: compute_scores(np.zeros(2, int), np.zeros(2), 2), TypeError, "target"),
        (lambda: compute_scores([0, 1], np.zeros(2, int), 2), TypeError, "prediction"),
        (
            lambda: compute_scores(np.zeros(2, int), np.zeros(2, int), 2, class_names=["a"]),
            ValueError,
            "class_names",
        ),
    ],
)
def test_wrong_arguments_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _distributed_worker(rank: int, world: int) -> list:
    prediction, target = random_case(11, shape=(6, 8, 9))
    cm = ConfusionMatrix(6)
    cm.update(torch.from_numpy(prediction[rank::world]), torch.from_numpy(target[rank::world]))
    cm.sync()
    return cm.matrix.tolist()


def test_distributed_merge_equals_single_process():
    results = run_gloo(_distributed_worker, 2)
    prediction, target = random_case(11, shape=(6, 8, 9))
    expected = compute_scores(prediction, target, 6)["confusion_matrix"]
    assert results == [expected, expected]
