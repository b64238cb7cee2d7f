"""The feature-statistics module: identity in eval mode, mixing only inside regions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segforget.augment import FeatureStatsMixer, find_early_stage, insert_feature_mixer


def _features(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((4, 3, 8, 10), generator=g) * 2 + 1
    mask = torch.zeros((4, 32, 40), dtype=torch.bool)
    mask[0, 0:8, 0:8] = True
    mask[2, 16:32, 20:40] = True
    return x, mask


def test_identity_in_eval_and_without_context():
    x, mask = _features()
    mixer = FeatureStatsMixer()
    assert torch.equal(mixer(x), x)  # training, but no context
    mixer.set_context(mask, torch.Generator().manual_seed(1))
    mixer.eval()
    assert torch.equal(mixer(x), x)
    mixer.train()
    mixer.set_context(mask[:3], torch.Generator().manual_seed(1))  # other batch size
    assert torch.equal(mixer(x), x)


def test_changes_only_masked_features_and_is_reproducible():
    x, mask = _features()
    mixer = FeatureStatsMixer(alpha=0.3, perturb=0.1).train()
    mixer.set_context(mask, torch.Generator().manual_seed(7))
    out = mixer(x)
    mixer.set_context(mask, torch.Generator().manual_seed(7))
    assert torch.equal(mixer(x), out)
    small = torch.nn.functional.adaptive_max_pool2d(mask[:, None].float(), (8, 10))[:, 0] > 0
    assert small[0, 0:2, 0:2].all() and small[0].sum() == 4
    inside = small[:, None].expand_as(x)
    assert torch.equal(out[~inside], x[~inside])
    assert not torch.allclose(out[inside], x[inside])


def test_statistics_are_a_mix_without_perturbation():
    x, mask = _features(3)
    mask[:] = False
    mask[1] = True  # sample 1 fully selected
    mixer = FeatureStatsMixer(alpha=0.5, perturb=0.0).train()
    mixer.set_context(mask, torch.Generator().manual_seed(0))
    out = mixer(x)
    # new mean of sample 1 lies between its own mean and the other samples' means (per channel)
    own = x[1].mean(dim=(1, 2))
    others = x[[0, 2, 3]].mean(dim=(2, 3))
    new = out[1].mean(dim=(1, 2))
    low = torch.minimum(own, others.min(dim=0).values) - 1e-4
    high = torch.maximum(own, others.max(dim=0).values) + 1e-4
    assert ((new >= low) & (new <= high)).all()
    assert torch.equal(out[[0, 2, 3]], x[[0, 2, 3]])


def test_option_errors():
    with pytest.raises(ValueError, match="`alpha` to be > 0"):
        FeatureStatsMixer(alpha=0)
    with pytest.raises(ValueError, match="`perturb` to be >= 0"):
        FeatureStatsMixer(perturb=-1)
    with pytest.raises(ValueError, match="`p` to be a probability"):
        FeatureStatsMixer(p=2)


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential()
        self.encoder.add_module("stem", nn.Conv2d(1, 3, 3, padding=1))
        self.encoder.add_module("layer1", nn.Conv2d(3, 3, 3, padding=1))
        self.head = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.head(self.encoder(x))


def test_insert_into_model_eval_identity_and_state_dict_unchanged():
    torch.manual_seed(0)
    model = _Toy()
    reference = _Toy()
    reference.load_state_dict(model.state_dict())
    mixer = FeatureStatsMixer(perturb=0.2)
    assert find_early_stage(model) is model.encoder.layer1
    wrapped = insert_feature_mixer(model, mixer)
    assert list(wrapped.state_dict()) == list(reference.state_dict())
    x = torch.randn(3, 1, 16, 16)
    mask = torch.ones((3, 16, 16), dtype=torch.bool)
    mixer.set_context(mask, torch.Generator().manual_seed(0))
    wrapped.eval()
    with torch.no_grad():
        assert torch.equal(wrapped(x), reference(x))
    wrapped.train()
    assert not torch.allclose(wrapped(x), reference(x))
    with pytest.raises(TypeError, match="with an `encoder`"):
        find_early_stage(nn.Linear(2, 2))


def test_finds_stage_of_segforget_model():
    from segforget.models import build_model

    model = build_model("tiny", in_channels=1, num_classes=3)
    assert find_early_stage(model) is model.net.encoder.model.layer1
