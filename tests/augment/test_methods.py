"""Training methods: option checking, pixel identity through the batch hooks, online refresh."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segforget.augment import (
    METHOD_NAMES,
    Focus,
    Online,
    Oversample,
    RegionChain,
    StyleFeature,
    StyleInput,
    TrainingMethod,
    batch_regions,
    build_method,
    rotate_batch,
)
from segforget.augment.style import soft_mask

N, H, W = 6, 24, 32


def _space(seed: int = 0):
    """A tiny labelled 'survey': N sections of H x W, 3 layered classes, noisy images."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros((N, H, W), dtype=torch.int64)
    labels[:, 8:16] = 1
    labels[:, 16:] = 2
    images = torch.randn((N, 1, H, W), generator=g) + labels[:, None].float()
    return images, labels


def _batch(sections=(1, 3, 4)):
    images, labels = _space()
    idx = torch.as_tensor(sections)
    pixel_index = idx[:, None, None] * H * W + torch.arange(H * W).view(H, W)
    return {
        "image": images[idx].clone(),
        "label": labels[idx].clone(),
        "pixel_index": pixel_index,
        "view": ["inline"] * len(sections),
        "section": idx,
    }


def _region():
    region = np.zeros((N, H, W), dtype=bool)
    region[1, 6:12, 4:14] = True  # crosses the 0/1 boundary
    region[3, 18:22, 10:30] = True
    return region.reshape(-1)


def test_build_method_names_and_errors(tmp_path):
    assert type(build_method("baseline", {})) is TrainingMethod
    assert build_method("rotate", {"degrees": 5}).degrees == 5.0
    for name in ("oversample", "style-input", "style-feature", "focus", "paste", "anchor"):
        assert build_method("online", {"inner": name}).inner.name == name
    assert set(METHOD_NAMES) == {
        "baseline",
        "rotate",
        "warp",
        "oversample",
        "style-input",
        "style-feature",
        "focus",
        "paste",
        "anchor",
        "online",
    }
    with pytest.raises(ValueError, match="`name` to be one of"):
        build_method("mixup", {})
    with pytest.raises(ValueError, match="unknown \\['bogus'\\]"):
        build_method("rotate", {"bogus": 1})
    with pytest.raises(ValueError, match="option `regions`"):
        build_method("style-input", {})
    with pytest.raises(FileNotFoundError, match="existing run directory"):
        build_method("oversample", {"regions": tmp_path / "missing"})
    with pytest.raises(ValueError, match="option `inner`"):
        build_method("online", {"inner": "rotate"})
    with pytest.raises(ValueError, match="no option `regions`"):
        build_method("online", {"regions": str(tmp_path)})
    with pytest.raises(TypeError, match="option `p` to be float"):
        build_method("rotate", {"p": "half"})
    with pytest.raises(ValueError, match="option `p` to be a probability"):
        build_method("online", {"p": 1.5})
    with pytest.raises(ValueError, match="option `operators`"):
        build_method("online", {"operators": ["cartoon"]})
    with pytest.raises(ValueError, match="option `mode`"):
        build_method("online", {"mode": "batch"})
    with pytest.raises(ValueError, match="`warmup` and `every`"):
        build_method("online", {"warmup": 0})
    with pytest.raises(ValueError, match="option `beta`"):
        build_method("online", {"beta": 0.7})
    with pytest.raises(ValueError, match="option `mix`"):
        build_method("online", {"mix": [0.9, 0.1]})
    with pytest.raises(ValueError, match="`degrees` to be >= 0"):
        build_method("rotate", {"degrees": -1})
    with pytest.raises(ValueError, match="`floor` to be > 0"):
        build_method("online", {"inner": "oversample", "floor": 0})
    with pytest.raises(ValueError, match="`gain` to be > -1"):
        build_method("online", {"inner": "focus", "gain": -1})


def test_focus_weights_the_regions_through_pixel_index():
    method = build_method("online", {"inner": "focus", "gain": 2.0, "rotate": 15.0})
    assert isinstance(method.inner, Focus)
    batch = _batch()
    assert method.loss_weights(batch) is None  # no regions yet: plain loss
    method.inner.set_regions("inline", _region(), (H, W))
    rotated = method.transform_batch(batch, generator=torch.Generator().manual_seed(1))
    weights = method.loss_weights(rotated)
    index = rotated["pixel_index"]
    inside = (index >= 0) & torch.from_numpy(_region())[index.clamp_min(0)]
    inside &= rotated["label"] != 255
    assert weights.shape == index.shape and weights.dtype == torch.float32
    assert inside.any() and (weights[inside] == 3.0).all() and (weights[~inside] == 1.0).all()
    assert type(build_method("baseline")).loss_weights(None, batch) is None


def test_focus_with_a_negative_gain_damps_the_regions():
    """gain in (-1, 0): the regions' pixels count less in the loss, the rest as before."""
    method = build_method("online", {"inner": "focus", "gain": -0.75})
    method.inner.set_regions("inline", _region(), (H, W))
    batch = _batch()
    weights = method.loss_weights(batch)
    index = batch["pixel_index"]
    inside = (index >= 0) & torch.from_numpy(_region())[index.clamp_min(0)]
    assert inside.any() and (~inside).any()
    assert (weights[inside] == 0.25).all() and (weights[~inside] == 1.0).all()


def test_rotate_keeps_pixel_identity():
    batch = _batch()
    batch["image"] = batch["label"][:, None].float() * 10
    out = rotate_batch(batch, degrees=20, p=1.0, generator=torch.Generator().manual_seed(0))
    _, labels = _space()
    valid = out["pixel_index"] >= 0
    assert (~valid).any() and valid.float().mean() > 0.5
    assert torch.equal(out["label"][valid], labels.view(-1)[out["pixel_index"][valid]])
    assert (out["label"][~valid] == 255).all()
    # image was rotated with the same geometry: bilinear values agree away from edges
    interior = valid & (out["image"][:, 0] % 10 == 0)
    assert interior.float().mean() > 0.3
    assert torch.equal(out["image"][:, 0][interior] / 10, out["label"][interior].float())
    same = rotate_batch(batch, degrees=20, p=0.0, generator=torch.Generator().manual_seed(0))
    assert same is batch


def test_batch_regions_follow_pixel_index():
    region = torch.from_numpy(_region())
    batch = _batch()
    rotated = rotate_batch(batch, degrees=15, p=1.0, generator=torch.Generator().manual_seed(1))
    got = batch_regions(region, rotated["pixel_index"], rotated["label"], 255)
    index = rotated["pixel_index"]
    want = (index >= 0) & region[index.clamp_min(0)] & (rotated["label"] != 255)
    assert torch.equal(got, want) and got.any()
    assert not batch_regions(None, index, rotated["label"], 255).any()


def test_rotate_per_sample_probability_uses_the_same_draws():
    batch = _batch()
    every = rotate_batch(batch, degrees=20, p=1.0, generator=torch.Generator().manual_seed(3))
    some = rotate_batch(
        batch,
        degrees=20,
        p=torch.tensor([1.0, 0.0, 1.0]),
        generator=torch.Generator().manual_seed(3),
    )
    for b, rotated in ((0, True), (1, False), (2, True)):
        want = every if rotated else batch
        for key in ("image", "label", "pixel_index"):
            assert torch.equal(some[key][b], want[key][b])
    assert not torch.equal(every["label"][1], batch["label"][1])


@pytest.mark.parametrize("scope", ["all", "regions"])
def test_rotate_scope_regions_rotates_only_samples_holding_regions(scope):
    method = build_method(
        "online", {"inner": "focus", "rotate": 20.0, "rotate_p": 1.0, "rotate_scope": scope}
    ).inner
    method.setup(data=None, num_classes=3, ignore_index=255, seed=0)
    method.set_regions("inline", _region(), (H, W))
    batch = _batch()  # sections 1, 3 hold regions, 4 does not
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(0))
    changed = [not torch.equal(out["image"][b], batch["image"][b]) for b in range(3)]
    assert changed == ([True, True, True] if scope == "all" else [True, True, False])
    with pytest.raises(ValueError, match="rotate_scope"):
        build_method("online", {"inner": "focus", "rotate": 5.0, "rotate_scope": "some"})


def _style_input(**options):
    method = build_method("online", {"inner": "style-input", "p": 1.0, **options}).inner
    method.setup(data=None, num_classes=3, ignore_index=255, seed=0)
    method.set_regions("inline", _region(), (H, W))
    return method


@pytest.mark.parametrize("operator", ["moment", "fourier"])
def test_style_input_changes_only_blended_regions(operator):
    method = _style_input(operators=[operator], radius=2, min_pixels=4)
    images, labels = _space(5)
    method.set_donors("inline", images * 3 + 2, labels)
    batch = _batch()
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out["label"], batch["label"])
    assert torch.equal(out["pixel_index"], batch["pixel_index"])
    regions = method.batch_regions(batch)
    far = soft_mask(regions, 2) == 0
    assert torch.equal(out["image"][:, 0][far], batch["image"][:, 0][far])
    assert not torch.allclose(out["image"][:, 0][regions], batch["image"][:, 0][regions])
    assert torch.equal(out["image"][2], batch["image"][2])  # sample without regions
    again = method.transform_batch(_batch(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(again["image"], out["image"])


def test_style_input_moment_uses_same_class_donor():
    method = _style_input(operators=["moment"], radius=0, min_pixels=4, donor_window=100)
    images, labels = _space(5)
    donor_images = torch.zeros_like(images)
    for cls, (mean, std) in enumerate([(5.0, 0.5), (-4.0, 2.0), (9.0, 1.0)]):
        g = torch.Generator().manual_seed(cls)
        noise = torch.randn(images.shape, generator=g)
        noise = (noise - noise.mean()) / noise.std(unbiased=False)
        donor_images = torch.where(labels[:, None] == cls, mean + std * noise, donor_images)
    method.set_donors("inline", donor_images, labels)
    batch = _batch()
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(0))
    region = method.batch_regions(batch)[0] & (batch["label"][0] == 1)
    values = out["image"][0, 0][region]
    assert abs(float(values.mean()) + 4.0) < 0.3 and abs(float(values.std()) - 2.0) < 0.3


def test_style_input_without_donor_pool_uses_other_samples():
    method = _style_input(operators=["moment", "fourier"], min_pixels=4)
    batch = _batch()
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out["label"], batch["label"])
    assert not torch.equal(out["image"], batch["image"])


def test_oversample_weights_are_proportional_to_forgotten_area():
    method = build_method("online", {"inner": "oversample", "floor": 0.5}).inner
    assert isinstance(method, Oversample)
    assert method.sampler_weights("inline", np.arange(N)) is None
    method.set_regions("inline", _region(), (H, W))
    sections = np.array([0, 1, 3, 5])
    area = np.array([0, 60, 80, 0], dtype=float)
    np.testing.assert_allclose(method.sampler_weights("inline", sections), area / area.mean() + 0.5)


def test_style_feature_sets_mixer_context_and_eval_identity():
    method = build_method("online", {"inner": "style-feature", "perturb": 0.0}).inner
    assert isinstance(method, StyleFeature)
    method.set_regions("inline", _region(), (H, W))
    batch = _batch()
    method.transform_batch(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(method.mixer._mask, method.batch_regions(batch))


class _FakeStats:
    def __init__(self, events, meta):
        self.forgetting_events = events
        self.never_learned = np.zeros_like(events, dtype=bool)
        self.meta = meta


class _FakeTracker:
    def __init__(self, events, meta):
        self.events, self.meta = events, meta

    def compute(self, meta=None):
        return _FakeStats(self.events, self.meta)


def test_online_refreshes_after_warmup_and_round_trips():
    exact = {"budget": 1.0, "dilate": 0}
    method = build_method("online", {"inner": "oversample", "warmup": 2, **exact})
    assert isinstance(method, Online)
    events = np.zeros(N * H * W, dtype=np.int64)
    events[_region()] = 3
    trackers = {
        "epoch/train/inline": _FakeTracker(events, {"section_shape": [H, W]}),
        "presentation/train/inline": _FakeTracker(events * 0, {"section_shape": [H, W]}),
        "epoch/test1/inline": _FakeTracker(events * 0, {"section_shape": [H, W]}),
    }
    method.on_epoch_end(0, trackers)
    assert method.refreshes == 0 and method.sampler_weights("inline", np.arange(N)) is None
    assert method.epoch_summary() == {"region_fraction": {}, "refreshes": 0}
    method.on_epoch_end(1, trackers)
    assert method.refreshes == 1
    fraction = _region().sum() / _region().size
    assert method.epoch_summary() == {"region_fraction": {"inline": fraction}, "refreshes": 1}
    np.testing.assert_array_equal(method.inner.regions["inline"].numpy(), _region())
    clone = build_method("online", {"inner": "oversample"})
    clone.load_state_dict(method.state_dict())
    assert torch.equal(clone.inner.regions["inline"], method.inner.regions["inline"])
    assert clone.refreshes == 1


def test_region_methods_read_a_previous_run(tmp_path):
    from segforget.dynamics import ForgettingTracker

    tracker = ForgettingTracker(N * H * W, 3)
    _, labels = _space()
    pixel_index = torch.arange(N * H * W).view(N, H, W)
    region = torch.from_numpy(_region()).view(N, H, W)
    for step in range(4):
        wrong = (labels + 1) % 3
        prediction = torch.where(region & torch.tensor(step % 2 == 1), wrong, labels)
        tracker.update(prediction, labels, pixel_index)
    stats = tracker.compute(meta={"section_shape": [H, W], "view": "inline"})
    stats.save(tmp_path / "run" / "dynamics" / "epoch" / "train_inline")

    class _Data:
        views = ("inline",)

    exact = {"budget": 1.0, "dilate": 0}
    method = build_method("oversample", {"regions": str(tmp_path / "run"), **exact})
    method.setup(data=_Data(), num_classes=3, ignore_index=255, seed=0)
    np.testing.assert_array_equal(method.regions["inline"].numpy(), _region())
    store = str(tmp_path / "run/dynamics/epoch/train_inline")
    single = build_method("style-input", {"regions": store, **exact})
    assert isinstance(single, StyleInput)
    single.setup(data=None, num_classes=3, ignore_index=255, seed=0)
    np.testing.assert_array_equal(single.regions["inline"].numpy(), _region())
    missing = build_method("oversample", {"regions": str(tmp_path / "run"), "mode": "presentation"})
    with pytest.raises(FileNotFoundError, match="dynamics store"):
        missing.setup(data=_Data(), num_classes=3, ignore_index=255, seed=0)


def test_region_chain_combines_members_on_shared_regions():
    method = build_method(
        "online",
        {"inner": "oversample+focus", "gain": 2.0, "floor": 0.5, "rotate": 15.0, "warmup": 1},
    )
    chain = method.inner
    assert isinstance(chain, RegionChain) and chain.name == "oversample+focus"
    oversample, focus = chain.members
    assert isinstance(oversample, Oversample) and isinstance(focus, Focus)
    assert oversample.rotate_degrees == 0.0 and focus.rotate_degrees == 15.0  # rotated once
    events = np.zeros(N * H * W, dtype=np.int64)
    events[_region()] = 3
    method.on_epoch_end(0, {"epoch/train/inline": _FakeTracker(events, {"section_shape": [H, W]})})
    for member in chain.members:
        assert member.regions["inline"].any()
        assert torch.equal(member.regions["inline"], oversample.regions["inline"])
    sections = np.arange(N)
    np.testing.assert_array_equal(
        method.sampler_weights("inline", sections), oversample.sampler_weights("inline", sections)
    )
    batch = method.transform_batch(_batch(), generator=torch.Generator().manual_seed(2))
    assert torch.equal(method.loss_weights(batch), focus.loss_weights(batch))
    assert torch.equal(chain.batch_regions(batch), focus.batch_regions(batch))
    assert chain.region_fraction() == focus.region_fraction()
    assert (method.loss_weights(batch) == 3.0).any()
    clone = build_method("online", {"inner": "oversample+focus"})
    clone.load_state_dict(method.state_dict())
    for member in clone.inner.members:
        assert torch.equal(member.regions["inline"], oversample.regions["inline"])
    with pytest.raises(ValueError, match="joined by '\\+'"):
        build_method("online", {"inner": "focus+focus"})
    with pytest.raises(ValueError, match="joined by '\\+'"):
        build_method("online", {"inner": "focus+rotate"})
    with pytest.raises(ValueError, match="unknown \\['degrees'\\]"):
        build_method("online", {"inner": "oversample+focus", "degrees": 3})


def test_paste_moves_donor_regions_with_their_identity():
    method = build_method("online", {"inner": "paste", "p": 1.0})
    batch = _batch()
    assert method.transform_batch(batch, generator=torch.Generator().manual_seed(0)) is batch
    method.inner.set_regions("inline", _region(), (H, W))
    regions = method.inner.batch_regions(batch)  # sections 1 and 3 have regions, 4 none
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(0))
    images, labels = _space()
    changed = out["pixel_index"] != batch["pixel_index"]
    assert changed.any()
    # every pixel still shows its source pixel: image, label and index move together
    source = out["pixel_index"]
    sections, rest = source // (H * W), source % (H * W)
    assert torch.equal(out["label"], labels.view(N, -1)[sections, rest])
    assert torch.equal(out["image"][:, 0], images[:, 0].reshape(N, -1)[sections, rest])
    # pasted pixels are donor region pixels at the same place; the rest is untouched
    pasted_from_region = torch.zeros_like(changed)
    for b in range(3):
        for donor in range(3):
            if donor != b:
                pasted_from_region[b] |= regions[donor] & changed[b]
    assert torch.equal(pasted_from_region, changed)
    assert torch.equal(
        out["image"][~changed[:, None].expand_as(out["image"])],
        batch["image"][~changed[:, None].expand_as(batch["image"])],
    )
    never = build_method("online", {"inner": "paste", "p": 0.0})
    never.inner.set_regions("inline", _region(), (H, W))
    assert never.transform_batch(batch, generator=torch.Generator().manual_seed(0)) is batch
