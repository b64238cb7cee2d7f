"""Style operators that change how a region looks, never what it is (labels stay unchanged).

Shape legend: C channels, H depth, W lateral. All operators work on one section ``(C, H, W)``
and a boolean region ``(H, W)``; the change is blended in with a soft mask whose support is the
region dilated by ``radius`` pixels, so every pixel farther than ``radius`` from the region keeps
its exact value.

- :func:`moment_match`: AdaIN-like; the per-channel mean and std of the region's pixels become
  those of a donor (same class, elsewhere in the survey).
- :func:`fourier_amplitude_mix`: the low-frequency Fourier amplitude of a window around the
  region is mixed with a donor window's, the phase (the geometry of the reflectors) is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "soft_mask",
    "region_moments",
    "moment_match",
    "low_frequency_band",
    "fourier_amplitude_mix",
    "fourier_transfer",
    "region_window",
]


def soft_mask(region: torch.Tensor, radius: int) -> torch.Tensor:
    """A weight that is 1 on the region and falls linearly to 0 at ``radius`` pixels from it.

    Args:
        region: (H, W) or (B, H, W) bool.
        radius: width of the ramp in pixels (0: the hard region).

    Returns:
        float32 of the same shape, in [0, 1], exactly 0 beyond ``radius`` (chessboard distance).
    """
    squeeze = region.dim() == 2
    mask = region.float()[None] if squeeze else region.float()
    mask = mask[:, None]  # (B, 1, H, W)
    total = mask.clone()
    dilated = mask
    for _ in range(radius):
        dilated = F.max_pool2d(dilated, kernel_size=3, stride=1, padding=1)
        total = total + dilated
    weight = (total / (radius + 1))[:, 0]
    return weight[0] if squeeze else weight


def region_moments(
    image: torch.Tensor, region: torch.Tensor, *, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the pixels of ``region``.

    Args:
        image: (C, H, W) float.
        region: (H, W) bool with at least one True.

    Returns:
        mean (C,), std (C,) (std of the population, plus ``eps`` under the square root).
    """
    pixels = image[:, region]  # (C, n)
    mean = pixels.mean(dim=1)
    std = (pixels.var(dim=1, unbiased=False) + eps).sqrt()
    return mean, std


def moment_match(
    image: torch.Tensor,
    region: torch.Tensor,
    donor_mean: torch.Tensor,
    donor_std: torch.Tensor,
    *,
    radius: int = 4,
    eps: float = 1e-5,
) -> torch.Tensor:
    """AdaIN-like transfer: give the region the donor's per-channel mean and std.

    The normalisation uses the region's own moments; the normalised values are blended in with
    :func:`soft_mask` so the result is 1:1 on the region and the original beyond ``radius``.

    Args:
        image: (C, H, W) float.
        region: (H, W) bool.
        donor_mean, donor_std: (C,) target moments.
        radius: width of the soft blend outside the region.

    Returns:
        (C, H, W) new tensor; on the region its moments equal the donor's (up to ``eps``).
    """
    if not bool(region.any()):
        return image.clone()
    mean, std = region_moments(image, region, eps=eps)
    styled = (image - mean[:, None, None]) / std[:, None, None] * donor_std[:, None, None]
    styled = styled + donor_mean[:, None, None]
    weight = soft_mask(region, radius)[None]  # (1, H, W)
    return torch.where(weight > 0, image + weight * (styled - image), image)


def low_frequency_band(height: int, width: int, beta: float) -> torch.Tensor:
    """(H, W) bool: frequencies with |f_h| <= beta and |f_w| <= beta (cycles per pixel).

    The band is symmetric under f -> -f, so mixing amplitudes inside it keeps the inverse
    transform of a real window real.
    """
    fh = torch.fft.fftfreq(height).abs()
    fw = torch.fft.fftfreq(width).abs()
    return (fh[:, None] <= beta) & (fw[None, :] <= beta)


def fourier_amplitude_mix(
    window: torch.Tensor, donor: torch.Tensor, *, beta: float = 0.05, mix: float = 1.0
) -> torch.Tensor:
    """Mix the low-frequency amplitude spectrum of ``window`` with ``donor``'s, keep the phase.

    Args:
        window, donor: (C, h, w) float of the same shape.
        beta: half-width of the low-frequency band in cycles per pixel (0 < beta < 0.5).
        mix: weight of the donor's amplitude inside the band (0: unchanged, 1: replaced).

    Returns:
        (C, h, w): amplitude ``(1 - mix) * |F(window)| + mix * |F(donor)|`` inside the band,
        ``|F(window)|`` outside it, phase of ``window`` everywhere except the zero frequency,
        which is mixed as a complex value (the window mean becomes
        ``(1 - mix) * mean(window) + mix * mean(donor)``; keeping the DC "phase" would only
        keep the sign of the mean and could flip the donor's).
    """
    spectrum = torch.fft.fft2(window.double())
    donor_spectrum = torch.fft.fft2(donor.double())
    donor_amplitude = donor_spectrum.abs()
    amplitude, phase = spectrum.abs(), spectrum.angle()
    band = low_frequency_band(window.shape[-2], window.shape[-1], beta)
    mixed = torch.where(band, (1.0 - mix) * amplitude + mix * donor_amplitude, amplitude)
    mixed_spectrum = torch.polar(mixed, phase)
    dc = (1.0 - mix) * spectrum[..., 0, 0] + mix * donor_spectrum[..., 0, 0]
    mixed_spectrum[..., 0, 0] = dc
    out = torch.fft.ifft2(mixed_spectrum).real
    return out.to(window.dtype)


def region_window(region: torch.Tensor, margin: int) -> tuple[int, int, int, int]:
    """Bounding box ``(top, bottom, left, right)`` (end exclusive) of the region plus ``margin``."""
    rows = torch.nonzero(region.any(dim=1)).flatten()
    cols = torch.nonzero(region.any(dim=0)).flatten()
    height, width = region.shape
    top = max(int(rows[0]) - margin, 0)
    bottom = min(int(rows[-1]) + 1 + margin, height)
    left = max(int(cols[0]) - margin, 0)
    right = min(int(cols[-1]) + 1 + margin, width)
    return top, bottom, left, right


def fourier_transfer(
    image: torch.Tensor,
    region: torch.Tensor,
    donor_image: torch.Tensor,
    donor_center: tuple[int, int],
    *,
    beta: float = 0.05,
    mix: float = 1.0,
    radius: int = 4,
    margin: int = 8,
) -> torch.Tensor:
    """Fourier amplitude mixing of a window around ``region``, blended in with a soft mask.

    The window is the region's bounding box grown by ``radius + margin`` (clipped to the
    section); the donor window has the same size, centred on ``donor_center`` of
    ``donor_image`` (shifted to lie inside it).

    Args:
        image: (C, H, W) float.
        region: (H, W) bool.
        donor_image: (C, H', W') float with H' >= window height and W' >= window width.
        donor_center: (h, w) in ``donor_image``.

    Returns:
        (C, H, W) new tensor, equal to ``image`` beyond ``radius`` pixels from the region.
    """
    out = image.clone()
    if not bool(region.any()):
        return out
    top, bottom, left, right = region_window(region, radius + margin)
    height, width = bottom - top, right - left
    # A donor smaller than the window cannot give one; use the window itself (no change).
    if donor_image.shape[-2] < height or donor_image.shape[-1] < width:
        return out
    dtop = min(max(donor_center[0] - height // 2, 0), donor_image.shape[-2] - height)
    dleft = min(max(donor_center[1] - width // 2, 0), donor_image.shape[-1] - width)
    donor = donor_image[:, dtop : dtop + height, dleft : dleft + width]
    window = image[:, top:bottom, left:right]
    mixed = fourier_amplitude_mix(window, donor, beta=beta, mix=mix)
    weight = soft_mask(region, radius)[None, top:bottom, left:right]
    out[:, top:bottom, left:right] = torch.where(
        weight > 0, window + weight * (mixed - window), window
    )
    return out
