"""Style operators: labels and far pixels untouched, statistics inside changed as specified."""

from __future__ import annotations

import numpy as np
import torch

from segforget.augment import (
    fourier_amplitude_mix,
    fourier_transfer,
    low_frequency_band,
    moment_match,
    region_moments,
    soft_mask,
)


def _section(seed: int = 0, channels: int = 1, height: int = 40, width: int = 60):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn((channels, height, width), generator=g)
    region = torch.zeros((height, width), dtype=torch.bool)
    region[10:20, 15:35] = True
    return image, region


def _reference_ramp(region: np.ndarray, radius: int) -> np.ndarray:
    """1 - d / (radius + 1) with d the chessboard distance to the region, 0 beyond radius."""
    ys, xs = np.nonzero(region)
    out = np.zeros(region.shape)
    for h in range(region.shape[0]):
        for w in range(region.shape[1]):
            d = np.max(np.stack([np.abs(ys - h), np.abs(xs - w)]), axis=0).min()
            out[h, w] = max(0.0, 1.0 - d / (radius + 1))
    return out


def test_soft_mask_is_a_chessboard_ramp():
    region = torch.zeros((12, 14), dtype=torch.bool)
    region[4:6, 3:5] = True
    region[9, 11] = True
    got = soft_mask(region, 3).numpy()
    np.testing.assert_allclose(got, _reference_ramp(region.numpy(), 3), atol=1e-6)
    batch = soft_mask(torch.stack([region, region]), 3)
    np.testing.assert_allclose(batch[1].numpy(), got)


def test_moment_match_sets_region_moments_and_leaves_the_rest():
    image, region = _section(channels=2)
    donor_mean, donor_std = torch.tensor([1.5, -0.5]), torch.tensor([3.0, 0.25])
    out = moment_match(image, region, donor_mean, donor_std, radius=3)
    mean, std = region_moments(out, region)
    torch.testing.assert_close(mean, donor_mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(std, donor_std, atol=1e-3, rtol=1e-3)
    far = soft_mask(region, 3) == 0
    assert torch.equal(out[:, far], image[:, far])
    ramp = (soft_mask(region, 3) > 0) & ~region
    assert not torch.equal(out[:, ramp], image[:, ramp])
    # reference for one ramp pixel: (1 - w) x + w * styled
    h, w = 9, 20  # one row above the region: weight 3/4
    m, s = region_moments(image, region)
    styled = (image[:, h, w] - m) / s * donor_std + donor_mean
    torch.testing.assert_close(out[:, h, w], 0.25 * image[:, h, w] + 0.75 * styled)


def test_moment_match_empty_region_is_identity():
    image, _ = _section()
    empty = torch.zeros(image.shape[1:], dtype=torch.bool)
    assert torch.equal(moment_match(image, empty, torch.zeros(1), torch.ones(1)), image)


def test_low_frequency_band_is_symmetric():
    band = low_frequency_band(10, 16, 0.2).numpy()
    flipped = np.roll(np.flip(band, (0, 1)), (1, 1), axis=(0, 1))  # index k -> -k
    np.testing.assert_array_equal(band, flipped)
    assert band[0, 0] and band.sum() == 5 * 7


def test_fourier_amplitude_mix_replaces_low_band_amplitude_and_keeps_phase():
    window, _ = _section(1, channels=1, height=24, width=30)
    donor, _ = _section(2, channels=1, height=24, width=30)
    donor = donor * 4 + 2
    out = fourier_amplitude_mix(window, donor, beta=0.1, mix=0.6)
    band = low_frequency_band(24, 30, 0.1)
    f_in, f_out = torch.fft.fft2(window.double()), torch.fft.fft2(out.double())
    f_donor = torch.fft.fft2(donor.double())
    want = torch.where(band, 0.4 * f_in.abs() + 0.6 * f_donor.abs(), f_in.abs())
    want[..., 0, 0] = (0.4 * f_in[..., 0, 0] + 0.6 * f_donor[..., 0, 0]).abs()
    torch.testing.assert_close(f_out.abs(), want, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(out.mean(), 0.4 * window.mean() + 0.6 * donor.mean())
    keep = f_in.abs() > 1e-3
    keep[..., 0, 0] = False
    phase_diff = torch.angle(f_out[keep] * f_in[keep].conj())
    assert phase_diff.abs().max() < 1e-3
    assert torch.equal(
        fourier_amplitude_mix(window, donor, beta=0.1, mix=0.0).round(decimals=4),
        window.round(decimals=4),
    )


def test_fourier_transfer_local_and_changes_inside():
    image, region = _section(3)
    donor, _ = _section(4, height=50, width=70)
    donor = donor * 3 + 1  # a different mean and amplitude
    out = fourier_transfer(image, region, donor, (25, 35), beta=0.1, mix=1.0, radius=3, margin=4)
    far = soft_mask(region, 3) == 0
    assert torch.equal(out[:, far], image[:, far])
    before_mean, before_std = region_moments(image, region)
    after_mean, after_std = region_moments(out, region)
    # the DC term becomes the donor window's: the region mean moves toward the donor's (~1)
    assert abs(float(after_mean) - 1.0) < abs(float(before_mean) - 1.0)
    assert not torch.allclose(after_std, before_std)


def test_fourier_transfer_reference_on_window():
    image, region = _section(5)
    donor, _ = _section(6)
    out = fourier_transfer(image, region, donor, (20, 30), beta=0.1, mix=1.0, radius=2, margin=3)
    top, bottom, left, right = 10 - 5, 20 + 5, 15 - 5, 35 + 5
    dt, dl = 20 - (bottom - top) // 2, 30 - (right - left) // 2
    window = image[:, top:bottom, left:right]
    donor_window = donor[:, dt : dt + bottom - top, dl : dl + right - left]
    mixed = fourier_amplitude_mix(window, donor_window, beta=0.1, mix=1.0)
    weight = torch.from_numpy(_reference_ramp(region.numpy(), 2)).float()[top:bottom, left:right]
    want = window + weight * (mixed - window)
    torch.testing.assert_close(out[:, top:bottom, left:right], want)


def test_style_check_figure_is_written(tmp_path):
    from segforget.augment import build_method
    from segforget.augment.figures import style_check

    image, region = _section(7)
    labels = torch.zeros((2, 40, 60), dtype=torch.int64)
    labels[:, 20:] = 1
    batch = {
        "image": torch.stack([image, image * 2]),
        "label": labels,
        "pixel_index": torch.arange(2 * 40 * 60).view(2, 40, 60),
        "view": ["image", "image"],
    }
    method = build_method("online", {"p": 1.0, "min_pixels": 4})
    method.inner.set_regions("image", torch.stack([region, region]).view(-1).numpy(), (40, 60))
    out = style_check(method, batch, out=tmp_path / "check.png", titles=["a", "b"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
