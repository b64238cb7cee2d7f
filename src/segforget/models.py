"""Segmentation models by name, built on segmentation-models-pytorch (smp).

A model name is either a preset (``light``, ``tiny``) or ``ARCH-ENCODER`` with any smp
architecture and any smp encoder, for example ``unet-resnet18``, ``deeplabv3plus-resnet18``,
``fpn-resnet34`` or ``unet-tu-resnet10t`` (``tu-`` encoders come from timm). The text before the
first ``-`` is the architecture; the rest is the encoder.

Every model is wrapped in :class:`SegmentationNet`, which pads its input to the multiple the
encoder needs and crops the logits back, so sections of any size (F3 sections are 255 deep) go
in as they are and pixel identity stays aligned with the input.

Example:
    >>> model = build_model("tiny", in_channels=1, num_classes=6)
    >>> model(torch.zeros(2, 1, 50, 70)).shape
    torch.Size([2, 6, 50, 70])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [  # noqa: F822  (ARCHITECTURES is provided lazily by __getattr__)
    "ARCHITECTURES",
    "architectures",
    "MODEL_PRESETS",
    "DEFAULT_MODEL",
    "SegmentationNet",
    "build_model",
    "parse_model_name",
    "validate_model_name",
    "weight_average",
    "update_weight_average",
]


def architectures() -> dict[str, type[nn.Module]]:
    """Architecture registry: lower-case smp name -> smp model class (imports smp on first use)."""
    import segmentation_models_pytorch as smp

    return dict(smp.MODEL_ARCHITECTURES_MAPPING)


def __getattr__(name: str) -> Any:
    # ARCHITECTURES is computed on first access: importing smp takes seconds, and the CLI and
    # config code import this module without needing it.
    if name == "ARCHITECTURES":
        return architectures()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Light presets: they train in minutes on a laptop CPU (measured in README.md, "Speed").
#: ``light`` is the default; ``tiny`` is for tests and smoke runs.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "light": {
        "arch": "unet",
        "encoder": "tu-resnet10t",
        "encoder_depth": 4,
        "decoder_channels": (64, 32, 16, 16),
    },
    "tiny": {
        "arch": "unet",
        "encoder": "tu-resnet10t",
        "encoder_depth": 3,
        "decoder_channels": (16, 16, 8),
    },
}

DEFAULT_MODEL = "light"


def _encoder_names() -> list[str]:
    from segmentation_models_pytorch.encoders import get_encoder_names

    return sorted(get_encoder_names())


def parse_model_name(name: str) -> dict[str, Any]:
    """Resolve a model name to ``{"arch", "encoder", ...smp options}``.

    Raises:
        ValueError: if the name is not a preset and not ``ARCH-ENCODER`` with a known
            architecture and encoder.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Expected `model` to be a non-empty string, got {name!r}")
    key = name.lower()
    if key in MODEL_PRESETS:
        return dict(MODEL_PRESETS[key])
    arch, sep, encoder = key.partition("-")
    known = architectures()
    if not sep or arch not in known:
        raise ValueError(
            f"Expected `model` to be a preset ({', '.join(MODEL_PRESETS)}) or ARCH-ENCODER with "
            "ARCH "
            f"one of {', '.join(sorted(known))} (e.g. unet-resnet18), got {name!r}"
        )
    if encoder.startswith("tu-"):
        import timm

        if not timm.is_model(encoder[3:]):
            raise ValueError(
                f"Expected the encoder of `model` to be a timm model after 'tu-', got {encoder!r} "
                "(list them with timm.list_models())"
            )
    elif encoder not in _encoder_names():
        raise ValueError(
            f"Expected the encoder of `model` to be one of {', '.join(_encoder_names())} "
            f"or tu-<timm model>, got {encoder!r}"
        )
    return {"arch": arch, "encoder": encoder}


def validate_model_name(name: str) -> None:
    """Raise ValueError if ``name`` is not a valid model name (see :func:`parse_model_name`)."""
    parse_model_name(name)


class SegmentationNet(nn.Module):
    """An smp model that accepts any input size: pads to the encoder's stride, crops the logits.

    Args:
        net: the smp model.
        divisor: the input side lengths must be multiples of this for ``net``.
        name: the model name it was built from (kept for checkpoints and reports).

    Shapes:
        input (B, C, H, W) float -> logits (B, K, H, W), K = number of classes.
    """

    def __init__(self, net: nn.Module, *, divisor: int, name: str) -> None:
        super().__init__()
        self.net = net
        self.divisor = int(divisor)
        self.name = name

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_h = (-height) % self.divisor
        pad_w = (-width) % self.divisor
        if pad_h or pad_w:
            # Replicate, not zeros: a zero band would look like a strong reflector to the net.
            image = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        logits = self.net(image)
        return logits[..., :height, :width]


def build_model(
    name: str = DEFAULT_MODEL,
    *,
    in_channels: int,
    num_classes: int,
    encoder_weights: str | None = None,
    encoder_depth: int | None = None,
    decoder_channels: Sequence[int] | None = None,
) -> SegmentationNet:
    """Build a segmentation model by name.

    Args:
        name: a preset (``light``, ``tiny``) or ``ARCH-ENCODER`` (e.g. ``unet-resnet18``).
        in_channels: input channels of the images (1 for seismic).
        num_classes: number of output classes K.
        encoder_weights: pretrained encoder weights (e.g. ``"imagenet"``); None (default) never
            downloads anything.
        encoder_depth: number of encoder stages (3..5); None keeps the preset's or smp's default.
        decoder_channels: decoder widths (U-Net family, one per encoder stage); None keeps the
            default.

    Returns:
        A :class:`SegmentationNet` mapping (B, in_channels, H, W) to logits (B, K, H, W).

    Raises:
        ValueError: unknown name, non-positive channel counts, or options smp rejects.
    """
    options = parse_model_name(name)
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"Expected `in_channels` to be a positive integer, got {in_channels!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"Expected `num_classes` to be an integer >= 2, got {num_classes!r}")
    arch = options.pop("arch")
    encoder = options.pop("encoder")
    if encoder_depth is not None:
        if not isinstance(encoder_depth, int) or not 1 <= encoder_depth <= 5:
            raise ValueError(f"Expected `encoder_depth` to be in 1..5, got {encoder_depth!r}")
        options["encoder_depth"] = encoder_depth
    if decoder_channels is not None:
        options["decoder_channels"] = tuple(int(c) for c in decoder_channels)
    if "decoder_channels" in options and "encoder_depth" in options:
        if len(options["decoder_channels"]) != options["encoder_depth"]:
            raise ValueError(
                "Expected `decoder_channels` to have one width per encoder stage "
                f"(encoder_depth={options['encoder_depth']}), "
                f"got {list(options['decoder_channels'])}"
            )
    import segmentation_models_pytorch as smp

    try:
        net = smp.create_model(
            arch,
            encoder_name=encoder,
            encoder_weights=encoder_weights,
            in_channels=in_channels,
            classes=num_classes,
            **options,
        )
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise ValueError(
            f"Expected smp to accept model {name!r} with {options}, got: {exc}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a failed download of pretrained weights
        if encoder_weights is None:
            raise
        raise ValueError(
            f"Expected the pretrained encoder weights {encoder_weights!r} to be available, got "
            f"{' '.join(str(exc).split())[:200]}; without network set "
            "model.encoder_weights=null (train from scratch)"
        ) from None
    divisor = int(getattr(net.encoder, "output_stride", 32))
    return SegmentationNet(net, divisor=divisor, name=name)


def weight_average(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` in eval mode, the start of a weight average (see
    :func:`update_weight_average`)."""
    import copy

    average = copy.deepcopy(model).eval()
    average.requires_grad_(False)
    return average


@torch.no_grad()
def update_weight_average(average: nn.Module, model: nn.Module, decay: float) -> None:
    """One step of an exponential moving average: every floating-point parameter and buffer
    of ``average`` becomes ``decay * average + (1 - decay) * model``; integer buffers (such as
    BatchNorm's ``num_batches_tracked``) are copied. The two must have the same state keys."""
    pairs = zip(average.state_dict().values(), model.state_dict().values())
    for mean, current in pairs:
        if mean.dtype.is_floating_point:
            mean.lerp_(current.to(mean.dtype), 1.0 - decay)
        else:
            mean.copy_(current)
