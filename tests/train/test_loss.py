"""The training loss: torch's cross-entropy without pixel weights, a hand-checked weighted mean
with them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from segforget.train.loop import segmentation_loss


@pytest.mark.parametrize("class_weights", [None, torch.tensor([1.0, 3.0, 0.5])])
def test_unit_pixel_weights_equal_torch_mean(class_weights):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    label = torch.randint(0, 3, (2, 4, 5), generator=g)
    label[0, 0] = 255
    expected = F.cross_entropy(logits, label, weight=class_weights, ignore_index=255)
    plain = segmentation_loss(logits, label, class_weights=class_weights, ignore_index=255)
    ones = segmentation_loss(
        logits,
        label,
        class_weights=class_weights,
        ignore_index=255,
        pixel_weights=torch.ones(2, 4, 5),
    )
    assert torch.allclose(plain, expected) and torch.allclose(ones, expected)


def test_weighted_mean_by_hand():
    # Two labeled pixels and one ignored; logits 0 everywhere -> each loss is log(2).
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, 0, 0, 1] = math.log(3.0)  # pixel 1: p(class 0) = 3/4
    label = torch.tensor([[[0, 0, 255]]])
    weights = torch.tensor([[[1.0, 3.0, 9.0]]])
    got = segmentation_loss(
        logits, label, class_weights=None, ignore_index=255, pixel_weights=weights
    )
    expected = (1.0 * math.log(2.0) + 3.0 * -math.log(0.75)) / (1.0 + 3.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    with_class = segmentation_loss(
        logits,
        label,
        class_weights=torch.tensor([2.0, 1.0]),
        ignore_index=255,
        pixel_weights=weights,
    )
    assert with_class.item() == pytest.approx(expected, rel=1e-6)  # one class: weights cancel


def test_nothing_labeled_gives_zero_with_a_graph():
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    label = torch.full((1, 2, 2), 255)
    for weights in (None, torch.ones(1, 2, 2)):
        loss = segmentation_loss(
            logits, label, class_weights=None, ignore_index=255, pixel_weights=weights
        )
        loss.backward()
        assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
