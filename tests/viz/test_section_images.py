"""The report browser's section images decode to the pixels they are built from."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from segforget.viz.figures import class_colors, section_images


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def test_section_images_hold_the_expected_pixels():
    rng = np.random.default_rng(0)
    h, w = 12, 30
    seismic = rng.standard_normal((h, w))
    labels = np.repeat(np.arange(h)[:, None] // 4, w, axis=1)  # classes 0, 1, 2 in bands
    labels[0, 0] = 255  # ignored: white
    prediction = labels.copy()
    prediction[5, :] = 2
    events = np.zeros((h, w), dtype=np.int64)
    events[4, 3] = 2
    images = section_images(
        seismic=seismic,
        labels=labels,
        prediction=prediction,
        forgetting_events=events,
        num_classes=3,
        vmax=2.0,
        max_width=w,
    )
    assert sorted(images) == ["forgetting", "labels", "prediction", "seismic"]
    bound = max(abs(np.percentile(seismic, 2)), abs(np.percentile(seismic, 98)))
    grey = (np.clip((seismic + bound) / (2 * bound), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(_decode(images["seismic"]), grey)
    colors = class_colors(3)
    expected = colors[np.where(labels == 255, 0, labels)]
    expected[0, 0] = 255
    np.testing.assert_array_equal(_decode(images["labels"]), expected)
    np.testing.assert_array_equal(_decode(images["prediction"])[5], colors[np.full(w, 2)])
    forgetting = _decode(images["forgetting"])
    dim = (np.repeat(grey[..., None], 3, axis=-1) * 0.6).astype(np.uint8)
    untouched = events == 0
    np.testing.assert_array_equal(forgetting[untouched], dim[untouched])
    assert not np.array_equal(forgetting[4, 3], dim[4, 3])  # the event is coloured


def test_wide_sections_are_shrunk_to_the_maximum_width():
    seismic = np.random.default_rng(1).standard_normal((10, 100))
    labels = np.zeros((10, 100), dtype=np.int64)
    images = section_images(
        seismic=seismic,
        labels=labels,
        prediction=None,
        forgetting_events=np.zeros((10, 100)),
        num_classes=2,
        vmax=1.0,
        max_width=50,
    )
    assert "prediction" not in images
    assert _decode(images["seismic"]).shape == (5, 50)
    assert _decode(images["labels"]).shape == (5, 50, 3)
