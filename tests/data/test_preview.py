"""The preview PNG and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segforget.data import VolumeData, generate_survey, write_preview
from segforget.data.synthetic import _build


@pytest.fixture(scope="module")
def data():
    survey = generate_survey(
        "small",
        seed=0,
        train_inlines=8,
        train_crosslines=16,
        samples=32,
        test1_inlines=2,
        test2_crosslines=3,
    )
    return VolumeData(survey.volumes, name="tiny", class_names=tuple("abcdef"))


def test_preview_is_a_png_with_sections_and_labels(data, tmp_path):
    path = write_preview(data, tmp_path / "p.png", inline=3, crossline=5)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 600
    grey = (image[..., 0] == image[..., 1]) & (image[..., 1] == image[..., 2])
    assert grey.mean() > 0.5  # seismic panels are grey, labels coloured
    assert not list(tmp_path.glob(".*tmp*"))


def test_preview_errors(data, tmp_path):
    with pytest.raises(ValueError, match=r"Expected `inline` to be in \[0, 8\), got 8"):
        write_preview(data, tmp_path / "p.png", inline=8)
    with pytest.raises(ValueError, match=r"Expected `split` to be one of"):
        write_preview(data, tmp_path / "p.png", split="test3")
    assert not (tmp_path / "p.png").exists()


def test_contrast_knob_scales_the_steps_between_units():
    from segforget.data.synthetic import _Geology

    full = _build("small", 0, {"contrast": 1.0}).values.reshape(6, -1).astype(np.float64)
    half = _build("small", 0, {"contrast": 0.5}).values.reshape(6, -1).astype(np.float64)
    # Same layering, unit means halved: every step between units is halved.
    expected = np.repeat(0.5 * _Geology.MEAN[:, None], 4096, axis=1)
    np.testing.assert_allclose(full - half, expected, atol=1e-6)
