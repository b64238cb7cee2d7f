"""Model factory: names, presets, padding wrapper, errors that list the valid choices."""

from __future__ import annotations

import pytest
import torch

from segforget.models import MODEL_PRESETS, build_model, parse_model_name


@pytest.mark.parametrize(
    "name", ["tiny", "unet-resnet18", "fpn-resnet18", "deeplabv3plus-resnet18"]
)
def test_any_input_size_gives_logits_of_that_size(name):
    model = build_model(name, in_channels=1, num_classes=6).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 1, 37, 53))
    assert logits.shape == (2, 6, 37, 53)


def test_padding_does_not_change_a_divisible_input():
    model = build_model("tiny", in_channels=2, num_classes=3).eval()
    image = torch.randn(1, 2, 32, 64)
    with torch.no_grad():
        assert torch.equal(model(image), model.net(image))


def test_name_parsing():
    assert parse_model_name("unet-resnet18") == {"arch": "unet", "encoder": "resnet18"}
    assert parse_model_name("unet-tu-resnet10t") == {"arch": "unet", "encoder": "tu-resnet10t"}
    assert parse_model_name("light") == MODEL_PRESETS["light"]


def test_unknown_architecture_lists_choices():
    with pytest.raises(
        ValueError, match=r"ARCH one of deeplabv3, deeplabv3plus.*unet.*got 'foo-resnet18'"
    ):
        build_model("foo-resnet18", in_channels=1, num_classes=6)


def test_unknown_encoder_lists_choices():
    with pytest.raises(
        ValueError, match=r"encoder of `model` to be one of .*resnet18.*got 'nonet'"
    ):
        build_model("unet-nonet", in_channels=1, num_classes=6)


def test_unknown_timm_encoder():
    with pytest.raises(ValueError, match="a timm model after 'tu-'"):
        build_model("unet-tu-nonet", in_channels=1, num_classes=6)


def test_bad_channels_and_classes():
    with pytest.raises(ValueError, match="Expected `in_channels` to be a positive integer"):
        build_model("tiny", in_channels=0, num_classes=6)
    with pytest.raises(ValueError, match="Expected `num_classes` to be an integer >= 2"):
        build_model("tiny", in_channels=1, num_classes=1)


def test_decoder_channels_must_match_depth():
    with pytest.raises(ValueError, match="one width per encoder stage"):
        build_model(
            "unet-resnet18", in_channels=1, num_classes=6, encoder_depth=3, decoder_channels=[8, 8]
        )


def test_unavailable_pretrained_weights_name_the_offline_setting(monkeypatch):
    """A failed download of pretrained encoder weights is a user error with the fix."""
    import segmentation_models_pytorch as smp

    from segforget.models import build_model

    def offline(*args, **kwargs):
        if kwargs.get("encoder_weights") is not None:
            raise OSError("Network is unreachable")
        return create(*args, **kwargs)

    create = smp.create_model
    monkeypatch.setattr(smp, "create_model", offline)
    with pytest.raises(ValueError, match="Network is unreachable.*encoder_weights=null"):
        build_model("tiny", in_channels=1, num_classes=6, encoder_weights="imagenet")
    assert build_model("tiny", in_channels=1, num_classes=6) is not None
