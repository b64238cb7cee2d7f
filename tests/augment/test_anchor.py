"""``anchor``: consistency with a running average of the model inside the forgotten regions.

The loss term is checked against a hand-written numpy KL divergence and the teacher against a
plain EMA of the weights (resuming a run with it: tests/train/test_resume.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from segforget.augment import Anchor, RegionChain, build_method

N, H, W, K = 4, 6, 8, 3


def _batch(sections=(1, 3)):
    g = torch.Generator().manual_seed(0)
    idx = torch.as_tensor(sections)
    label = torch.randint(0, K, (len(sections), H, W), generator=g)
    label[0, 0, :3] = 255  # unlabeled pixels do not count
    return {
        "image": torch.randn(len(sections), 1, H, W, generator=g),
        "label": label,
        "pixel_index": idx[:, None, None] * H * W + torch.arange(H * W).view(H, W),
        "view": ["inline"] * len(sections),
        "section": idx,
    }


def _region():
    region = np.zeros((N, H, W), dtype=bool)
    region[1, 1:4, 2:6] = True
    region[3, 4:6, :] = True
    region[2] = True  # not in the batch
    return region.reshape(-1)


def _anchor(**options) -> Anchor:
    method = build_method("online", {"inner": "anchor", **options})
    anchor = method.inner
    assert isinstance(anchor, Anchor)
    anchor.set_regions("inline", _region(), (H, W))
    return anchor


def _softmax_np(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_extra_loss_is_the_region_kl_to_the_teacher_per_labeled_pixel():
    anchor = _anchor(weight=2.0)
    torch.manual_seed(0)
    model = nn.Conv2d(1, K, 1)
    assert anchor.wrap_model(model) is model
    with torch.no_grad():  # the teacher differs from the model (per class: softmax moves)
        anchor.teacher.weight.add_(torch.tensor([0.5, -0.3, 0.1]).view(K, 1, 1, 1))
    batch = _batch()
    logits = model(batch["image"])
    got = anchor.extra_loss(batch, batch["image"], logits)

    teacher = _softmax_np(anchor.teacher(batch["image"]).detach().numpy().astype(np.float64))
    student = _softmax_np(logits.detach().numpy().astype(np.float64))
    kl = (teacher * (np.log(teacher) - np.log(student))).sum(axis=1)  # (B, H, W)
    region = _region().reshape(N, H, W)[[1, 3]] & (batch["label"].numpy() != 255)
    labeled = (batch["label"].numpy() != 255).sum()
    expected = 2.0 * kl[region].sum() / labeled
    assert got is not None and got.requires_grad
    assert float(got.detach()) == pytest.approx(expected, rel=1e-5)
    assert expected > 0


def test_extra_loss_is_none_without_region_pixels_or_teacher():
    anchor = _anchor()
    batch = _batch(sections=(0,))  # section 0 has no selected pixel
    model = nn.Conv2d(1, K, 1)
    assert anchor.extra_loss(batch, batch["image"], model(batch["image"])) is None  # no teacher
    anchor.wrap_model(model)
    assert anchor.extra_loss(batch, batch["image"], model(batch["image"])) is None


def test_teacher_is_an_ema_of_the_model_and_checkpointed():
    anchor = _anchor(decay=0.75)
    model = nn.Sequential(nn.Conv2d(1, K, 1), nn.BatchNorm2d(K))
    anchor.wrap_model(model)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {k: v.double() for k, v in start.items() if v.is_floating_point()}
    for step in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * (step + 1))
        model.train()(torch.randn(2, 1, H, W))  # moves BatchNorm's running statistics
        anchor.after_step(model)
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                expected[key] = 0.75 * expected[key] + 0.25 * value.double()
    for key, value in anchor.teacher.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value.double(), expected[key], rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(value, model.state_dict()[key])  # counters copied
    # checkpoint: tensors only, restored into a fresh method
    state = anchor.state_dict()
    assert all(torch.is_tensor(v) or isinstance(v, (int, list)) for v in state.values())
    other = _anchor(decay=0.75)
    other.wrap_model(nn.Sequential(nn.Conv2d(1, K, 1), nn.BatchNorm2d(K)))
    other.load_state_dict(state)
    for key, value in anchor.teacher.state_dict().items():
        assert torch.equal(other.teacher.state_dict()[key], value)


def test_teacher_runs_the_models_hooks_in_eval_mode():
    """A hook copied with the model that follows the trained model's mode (like the feature
    mixer) must see eval mode while the teacher runs, and the model stays in train mode."""
    anchor = _anchor()
    model = nn.Conv2d(1, K, 1)
    seen = []
    model.register_forward_hook(lambda module, inputs, out: seen.append(model.training))
    anchor.wrap_model(model)
    model.train()
    batch = _batch()
    anchor.extra_loss(batch, batch["image"], model(batch["image"]))
    assert seen == [True, False] and model.training


def test_chain_adds_terms_and_keeps_the_teacher_in_its_state():
    method = build_method("online", {"inner": "focus+anchor", "gain": 1.0, "weight": 1.0})
    chain = method.inner
    assert isinstance(chain, RegionChain)
    chain.set_regions("inline", _region(), (H, W))
    model = nn.Conv2d(1, K, 1)
    method.wrap_model(model)
    batch = _batch()
    logits = model(batch["image"])
    anchor = chain.members[1]
    with torch.no_grad():
        anchor.teacher.bias.add_(torch.tensor([1.0, -1.0, 0.0]))
    term = float(anchor.extra_loss(batch, batch["image"], logits).detach())
    assert term > 0
    assert float(method.extra_loss(batch, batch["image"], logits).detach()) == pytest.approx(term)
    assert any(k.startswith("anchor.teacher.") for k in method.state_dict()["inner"])


@pytest.mark.parametrize(
    ("options", "match"), [({"weight": -1.0}, "weight"), ({"decay": 1.0}, "decay")]
)
def test_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        build_method("online", {"inner": "anchor", **options})


def test_teacher_follows_the_model_to_its_device_and_dtype():
    """The model is wrapped before the training loop moves it (to a GPU, or another dtype
    here): the teacher must follow, or its forward pass fails."""
    anchor = _anchor()
    model = nn.Conv2d(1, K, 1)
    anchor.wrap_model(model)
    model.double()
    batch = _batch()
    image = batch["image"].double()
    term = anchor.extra_loss(batch, image, model(image))
    assert term is not None and anchor.teacher.weight.dtype == torch.float64
    anchor.after_step(model)
