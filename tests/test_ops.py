"""class_argmax equals torch.argmax over the class dimension, ties and NaN included."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segforget.ops import class_argmax


@pytest.mark.parametrize("classes", [1, 2, 6, 255, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_equals_argmax_on_random_scores_with_ties_and_specials(classes, dtype):
    gen = torch.Generator().manual_seed(classes)
    # Few distinct values: many ties; plus infinities and NaNs.
    logits = torch.randint(-2, 3, (3, classes, 5, 7), generator=gen).to(dtype)
    logits[0, :, 0, 0] = float("nan")
    logits[0, classes // 2, 1, 1] = float("nan")
    logits[1, :, 2, 2] = float("-inf")
    logits[1, -1, 3, 3] = float("inf")
    logits[2, :, 4, 4] = 0.0  # all tied
    expected = logits.argmax(1)
    actual = class_argmax(logits)
    assert actual.dtype == torch.int64
    assert torch.equal(actual, expected)
    assert torch.equal(class_argmax(logits, dtype=torch.uint8), expected.to(torch.uint8))


def test_other_layouts_and_inputs():
    logits = torch.randn(4, 7, 6, 5).permute(0, 1, 3, 2)  # not contiguous
    assert torch.equal(class_argmax(logits), logits.argmax(1))
    flat = torch.randn(3, 4, 10)  # (B, C, N)
    assert torch.equal(class_argmax(flat), flat.argmax(1))
    integers = torch.randint(0, 5, (2, 3, 4, 4))  # integer scores: torch's argmax
    assert torch.equal(class_argmax(integers), integers.argmax(1))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.lists(st.sampled_from([-1.0, 0.0, 0.5, 2.0, float("inf"), float("nan")]), min_size=1),
)
def test_property_equals_argmax(classes, values):
    pixels = -(-len(values) // classes)
    padded = (values * (classes * pixels // len(values) + 1))[: classes * pixels]
    logits = torch.tensor(padded).view(1, classes, pixels)
    assert torch.equal(class_argmax(logits), logits.argmax(1))
