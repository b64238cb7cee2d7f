"""Feature-space style mixing inside the frequently forgotten regions (the conference reading).

:class:`FeatureStatsMixer` sits after an early encoder stage. In training it replaces the
per-channel mean and std of the features inside the selected regions (the input-resolution
mask, max-pooled down to the feature map) by a mix of the sample's own region statistics and
those of another sample of the batch, with optional random perturbation; outside the regions
and in evaluation mode it is the identity. It owns no parameters, so checkpoints of a wrapped
model load into an unwrapped one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FeatureStatsMixer", "insert_feature_mixer", "find_early_stage"]


class FeatureStatsMixer(nn.Module):
    """Mix channel statistics between samples inside masked regions (train mode only).

    Args:
        alpha: the mixing weight ``lam ~ Beta(alpha, alpha)`` per sample.
        perturb: std of a multiplicative Gaussian perturbation of the mixed mean and std
            (0: none).
        p: probability that a sample of the batch is mixed.
        eps: added to variances.

    Call :meth:`set_context` with the region mask (B, H, W) bool of the batch and a
    ``torch.Generator`` before the forward pass; ``forward(x)`` takes features (B, C, h, w).
    Without a context (or with a mask of another batch size) it is the identity.
    """

    def __init__(
        self, *, alpha: float = 0.3, perturb: float = 0.1, p: float = 1.0, eps: float = 1e-5
    ) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"Expected `alpha` to be > 0, got {alpha!r}")
        if perturb < 0:
            raise ValueError(f"Expected `perturb` to be >= 0, got {perturb!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Expected `p` to be a probability in [0, 1], got {p!r}")
        self.alpha, self.perturb, self.p, self.eps = float(alpha), float(perturb), float(p), eps
        self._mask: torch.Tensor | None = None
        self._generator: torch.Generator | None = None

    def set_context(self, mask: torch.Tensor | None, generator: torch.Generator | None) -> None:
        """Remember the batch's region mask (B, H, W) bool and the random generator."""
        self._mask = mask
        self._generator = generator

    def _uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=self._generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C, h, w); identity in eval mode or without a usable mask."""
        mask = self._mask
        if not self.training or mask is None or mask.shape[0] != x.shape[0] or x.shape[0] < 2:
            return x
        if not bool(mask.any()):
            return x
        batch, device = x.shape[0], x.device
        mask = mask.to(device)
        # max-pool keeps thin regions alive at the coarser resolution
        small = F.adaptive_max_pool2d(mask[:, None].float(), x.shape[-2:]).to(x.dtype)  # (B,1,h,w)
        apply = (self._uniform((batch,)) < self.p).to(device, x.dtype)
        small = small * apply[:, None, None, None]
        area = small.sum(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
        if not bool((area > 0).any()):
            return x
        denom = area.clamp_min(1.0)
        mean = (x * small).sum(dim=(2, 3), keepdim=True) / denom  # (B, C, 1, 1)
        var = ((x - mean) ** 2 * small).sum(dim=(2, 3), keepdim=True) / denom
        std = (var + self.eps).sqrt()
        # donors: statistics of another sample of the batch over its whole feature map
        full_mean = x.mean(dim=(2, 3), keepdim=True)
        full_std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + self.eps).sqrt()
        shift = 1 + int(self._uniform((1,)).item() * (batch - 1))
        perm = ((torch.arange(batch) + shift) % batch).to(device)
        lam = _beta_sample(self.alpha, batch, self._generator).to(device, x.dtype)
        lam = lam.view(batch, 1, 1, 1)
        new_mean = lam * mean + (1 - lam) * full_mean[perm].detach()
        new_std = lam * std + (1 - lam) * full_std[perm].detach()
        if self.perturb > 0:
            # drawn on the CPU generator, then moved: the same draws on every device
            noise = torch.randn((2, batch, x.shape[1], 1, 1), generator=self._generator)
            noise = noise.to(device, x.dtype)
            new_mean = new_mean + self.perturb * noise[0] * new_std
            new_std = new_std * (1 + self.perturb * noise[1]).clamp_min(0.1)
        styled = (x - mean) / std * new_std + new_mean
        return torch.where(small > 0, styled, x)


def _beta_sample(alpha: float, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """Beta(alpha, alpha) samples drawn through ``generator`` (ratio of two Gamma variates).

    torch's Gamma sampler takes no generator, so a Gamma(alpha) variate is drawn with the
    Marsaglia–Tsang method for alpha + 1 and the boost ``U ** (1 / alpha)``.
    """

    def gamma(shape: int) -> torch.Tensor:
        d = alpha + 1.0 - 1.0 / 3.0
        c = 1.0 / (9.0 * d) ** 0.5
        out = torch.empty(shape, dtype=torch.float64)
        filled = 0
        while filled < shape:
            z = torch.randn(shape, generator=generator, dtype=torch.float64)
            u = torch.rand(shape, generator=generator, dtype=torch.float64)
            v = (1 + c * z) ** 3
            log_v = torch.log(v.clamp_min(1e-300))
            ok = (v > 0) & (torch.log(u.clamp_min(1e-300)) < 0.5 * z * z + d - d * v + d * log_v)
            values = (d * v)[ok][: shape - filled]
            out[filled : filled + values.numel()] = values
            filled += values.numel()
        boost = torch.rand(shape, generator=generator, dtype=torch.float64) ** (1.0 / alpha)
        return out * boost

    a, b = gamma(n), gamma(n)
    return a / (a + b)


def find_early_stage(model: nn.Module) -> nn.Module:
    """The module after which the mixer goes: the first residual stage of the encoder.

    Searches the modules named ``encoder`` (at any depth, e.g. ``net.encoder`` of a
    :class:`segforget.models.SegmentationNet`, or ``encoder.model`` of smp's timm encoders) for
    ``layer1`` (ResNet family), then ``blocks.0`` / ``stages.0`` / ``features.1``, then takes
    the encoder's first child.

    Raises:
        TypeError: if ``model`` has no submodule named ``encoder``.
    """
    encoder = next(
        (module for name, module in model.named_modules() if name.split(".")[-1] == "encoder"),
        None,
    )
    if encoder is None:
        raise TypeError(
            "Expected `model` to be a segmentation_models_pytorch model with an `encoder`, "
            f"got {type(model).__name__}; pass `stage=` to insert_feature_mixer"
        )
    modules = dict(encoder.named_modules())
    for suffix in ("layer1", "blocks.0", "stages.0", "features.1"):
        for name, module in modules.items():
            if name == suffix or name.endswith("." + suffix):
                return module
    children = list(encoder.children())
    if not children:
        raise TypeError(f"Expected the encoder of `model` to have submodules, got {encoder!r}")
    return children[0]


def insert_feature_mixer(
    model: nn.Module, mixer: FeatureStatsMixer, *, stage: nn.Module | None = None
) -> nn.Module:
    """Run ``mixer`` on the output of ``stage`` (default :func:`find_early_stage`) of ``model``.

    Done with a forward hook, so the model's parameters and ``state_dict`` keys are unchanged
    and a checkpoint of the wrapped model loads into a plain one. The mixer follows the
    model's train/eval mode.

    Returns:
        ``model`` itself.
    """
    target = stage if stage is not None else find_early_stage(model)

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        mixer.train(model.training)
        return mixer(output)

    target.register_forward_hook(hook)
    return model
