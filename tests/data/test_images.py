"""Image folders: pairing, seeded test split, resizing to one size, class count."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segforget.data import load_data


def write_folder(root, sizes, *, rgb=False, max_label=2, seed=0):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    arrays = {}
    for k, (h, w) in enumerate(sizes):
        pixels = rng.integers(0, 256, (h, w, 3) if rgb else (h, w)).astype(np.uint8)
        mask = rng.integers(0, max_label + 1, (h, w)).astype(np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"img{k:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"img{k:02d}.png")
        arrays[f"img{k:02d}"] = (pixels, mask)
    return arrays


def test_folder_split_and_pixel_identity(tmp_path):
    arrays = write_folder(tmp_path / "d", [(12, 16)] * 10)
    data = load_data(f"images:{tmp_path / 'd'}", val_fraction=0.25)
    assert data.views == ("image",) and data.test_splits == ("test",)
    assert data.num_classes == 3 and data.in_channels == 1
    assert data.space("train", "image").num_sections == 8
    assert data.space("test", "image").num_sections == 2
    assert data.sections("val", "image").size == 2
    masks = data.label_sections("train+val", "image")
    images = data.seismic_sections("train+val", "image")
    # every training mask is one of the written ones, with its own image
    written = {m.tobytes(): p for p, m in arrays.values()}
    for image, mask in zip(images, masks, strict=True):
        np.testing.assert_array_equal(written[mask.astype(np.uint8).tobytes()], image)
    item = data.dataset("test", "image")[1]
    assert item["image"].shape == (1, 12, 16) and item["view"] == "image"
    assert item["pixel_index"][0, 0] == 12 * 16
    same = load_data(f"images:{tmp_path / 'd'}")
    np.testing.assert_array_equal(
        same.label_sections("test", "image"), data.label_sections("test", "image")
    )


def test_images_brought_to_the_most_common_size(tmp_path):
    write_folder(tmp_path / "d", [(10, 14)] * 6 + [(20, 28), (5, 7)], rgb=True)
    data = load_data(f"images:{tmp_path / 'd'}")
    assert data.in_channels == 3
    for split in ("train+val", "test"):
        assert data.seismic_sections(split, "image").shape[1:] == (3, 10, 14)
        assert data.label_sections(split, "image").shape[1:] == (10, 14)


def test_explicit_train_test_folders_and_num_classes(tmp_path):
    write_folder(tmp_path / "d" / "train", [(8, 8)] * 3)
    write_folder(tmp_path / "d" / "test", [(8, 8)] * 2, seed=1)
    data = load_data(f"images:{tmp_path / 'd'}", num_classes=5)
    assert data.num_classes == 5 and data.space("test", "image").num_sections == 2
    info = data.describe()
    masks = data.label_sections("test", "image")
    assert info["volumes"]["test"]["class_fractions"]["class_1"] == pytest.approx(
        np.mean(masks == 1)
    )


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"to be a folder with images/ and masks/"):
        load_data(f"images:{tmp_path / 'none'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"images` to be a folder"):
        load_data(f"images:{tmp_path / 'empty'}")
    arrays_dir = tmp_path / "d"
    write_folder(arrays_dir, [(8, 8)] * 3, max_label=4)
    with pytest.raises(ValueError, match=r"to hold labels 0..2 \(255 = unlabelled\), got 4"):
        load_data(f"images:{arrays_dir}", num_classes=3)
    (arrays_dir / "masks" / "img01.png").unlink()
    with pytest.raises(
        ValueError, match=r"Expected a mask .* for every image, got none for \['img01'\]"
    ):
        load_data(f"images:{arrays_dir}")
    (arrays_dir / "masks" / "img01.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"img01.png` to be a readable image"):
        load_data(f"images:{arrays_dir}")
    rgb_masks = tmp_path / "rgbmask"
    write_folder(rgb_masks, [(8, 8)] * 2)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb_masks / "masks" / "img00.png")
    with pytest.raises(ValueError, match=r"img00.png` to be a single-channel mask"):
        load_data(f"images:{rgb_masks}")
