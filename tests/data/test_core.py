"""Splits, views, pixel spaces and section datasets against direct numpy slicing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from segforget.data import PixelSpace, VolumeData


def make_data(val_fraction: float = 0.25, seed: int = 0) -> VolumeData:
    rng = np.random.default_rng(0)
    volumes = {
        "train": (rng.normal(size=(6, 7, 5)).astype(np.float32), rng.integers(0, 6, (6, 7, 5))),
        "test1": (rng.normal(size=(3, 7, 5)).astype(np.float32), rng.integers(0, 6, (3, 7, 5))),
        "test2": (rng.normal(size=(9, 4, 5)).astype(np.float32), rng.integers(0, 6, (9, 4, 5))),
    }
    names = tuple(f"c{k}" for k in range(6))
    return VolumeData(volumes, name="toy", class_names=names, val_fraction=val_fraction, seed=seed)


def test_spaces_follow_the_view_convention():
    data = make_data()
    assert data.views == ("inline", "crossline")
    assert data.test_splits == ("test1", "test2")
    assert data.space("train", "inline") == PixelSpace("train", "inline", 6, (5, 7))
    assert data.space("val", "crossline") == PixelSpace("train", "crossline", 7, (5, 6))
    assert data.space("test2", "inline") == PixelSpace("test2", "inline", 9, (5, 4))
    assert data.space("test2", "inline").num_pixels == 9 * 5 * 4
    meta = data.space("test1", "crossline").meta()
    assert meta == {
        "split": "test1",
        "view": "crossline",
        "num_sections": 7,
        "section_shape": [5, 3],
        "num_pixels": 105,
    }


@pytest.mark.parametrize("view", ["inline", "crossline"])
def test_train_and_val_partition_the_training_sections(view):
    data = make_data(val_fraction=0.3)
    train, val = data.sections("train", view), data.sections("val", view)
    everything = data.sections("train+val", view)
    n = data.space("train", view).num_sections
    assert np.array_equal(everything, np.arange(n))
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.union1d(train, val), everything)
    assert val.size == round(0.3 * n)
    assert np.array_equal(val, make_data(val_fraction=0.3).sections("val", view))  # seeded
    other = [make_data(val_fraction=0.3, seed=s).sections("val", view) for s in range(1, 6)]
    assert any(not np.array_equal(val, o) for o in other)


def test_no_validation_split_when_fraction_is_zero():
    data = make_data(val_fraction=0.0)
    assert data.sections("val", "inline").size == 0
    assert data.sections("train", "inline").size == 6


@pytest.mark.parametrize("split", ["train", "val", "train+val", "test1", "test2"])
@pytest.mark.parametrize("view", ["inline", "crossline"])
def test_sections_and_items_match_numpy_slicing(split, view):
    data = make_data()
    volume = "train" if split in ("train", "val", "train+val") else split
    seismic, labels = data.volumes[volume]
    chosen = data.sections(split, view)
    images = data.seismic_sections(split, view)
    masks = data.label_sections(split, view)
    assert images.dtype == np.float32 and masks.dtype == np.int64
    assert not images.flags.writeable and not masks.flags.writeable
    train_seismic = data.volumes["train"][0].astype(np.float64)  # normalization source
    mean, std = train_seismic.mean(), train_seismic.std()
    dataset = data.dataset(split, view)
    assert len(dataset) == chosen.size
    for k, s in enumerate(chosen):
        ref_image = seismic[s].T if view == "inline" else seismic[:, s].T
        ref_label = labels[s].T if view == "inline" else labels[:, s].T
        np.testing.assert_array_equal(images[k], ref_image)
        np.testing.assert_array_equal(masks[k], ref_label)
        item = dataset[k]
        assert item["view"] == view and item["section"] == s
        assert item["image"].shape == (1, *ref_image.shape) and item["image"].dtype == torch.float32
        np.testing.assert_allclose(item["image"][0].numpy(), (ref_image - mean) / std, atol=1e-5)
        np.testing.assert_array_equal(item["label"].numpy(), ref_label)
        h, w = ref_label.shape
        expected = s * h * w + np.arange(h)[:, None] * w + np.arange(w)[None, :]
        np.testing.assert_array_equal(item["pixel_index"].numpy(), expected)


def test_unravel_inverts_the_pixel_index():
    space = PixelSpace("train", "inline", 4, (3, 5))
    for s in range(4):
        section, h, w = space.unravel(space.pixel_index(s))
        assert (section == s).all()
        np.testing.assert_array_equal(h, np.repeat(np.arange(3)[:, None], 5, 1))
        np.testing.assert_array_equal(w, np.repeat(np.arange(5)[None, :], 3, 0))
    with pytest.raises(ValueError, match=r"Expected `pixel_index` to be in \[0, 60\)"):
        space.unravel(np.array([60]))
    with pytest.raises(ValueError, match=r"Expected `section` to be in \[0, 4\)"):
        space.pixel_index(4)


def test_default_collate_batches_one_view():
    data = make_data()
    batch = next(iter(DataLoader(data.dataset("train+val", "crossline"), batch_size=3)))
    assert batch["image"].shape == (3, 1, 5, 6)
    assert batch["pixel_index"].dtype == torch.int64
    assert batch["view"] == ["crossline"] * 3
    assert batch["section"].tolist() == [0, 1, 2]


def test_patch_dataset_covers_every_pixel_once_or_more():
    data = make_data()
    patches = data.patch_dataset("train+val", "inline", patch_size=(4, 4), stride=3)
    space = data.space("train", "inline")
    seen = np.zeros(space.num_pixels, dtype=bool)
    _, labels = data.volumes["train"]
    flat = np.stack([labels[s].T for s in range(6)]).reshape(-1)
    for item in patches:
        index = item["pixel_index"].numpy()
        assert item["image"].shape == (1, 4, 4)
        valid = index >= 0
        np.testing.assert_array_equal(flat[index[valid]], item["label"].numpy()[valid])
        seen[index[valid]] = True
    assert seen.all()


def test_patch_larger_than_section_is_padded():
    data = make_data()
    item = data.patch_dataset("test2", "inline", patch_size=8)[0]
    assert item["image"].shape == (1, 8, 8)
    assert (item["pixel_index"][5:] == -1).all() and (item["label"][:, 4:] == 255).all()


def test_errors_name_the_valid_choices():
    data = make_data()
    with pytest.raises(ValueError, match=r"Expected `split` to be one of .*'test2'.*got 'test'"):
        data.sections("test", "inline")
    with pytest.raises(ValueError, match=r"Expected `view` to be one of .*got 'image'"):
        data.space("train", "image")
    with pytest.raises(ValueError, match=r"Expected `sections` to be in \[0, 6\)"):
        data.seismic_sections("train", "inline", [6])
    with pytest.raises(ValueError, match=r"Expected `val_fraction` to be a number in \[0, 1\)"):
        make_data(val_fraction=1.0)
    with pytest.raises(ValueError, match=r"Expected `patch_size` to be a positive int"):
        data.patch_dataset("train", "inline", patch_size=0)
    with pytest.raises(IndexError, match=r"Expected `index` to be in \[0, 3\)"):
        data.dataset("test1", "inline")[3]


def test_describe_reports_independent_counts():
    data = make_data()
    info = data.describe()
    labels = data.volumes["test2"][1]
    fractions = info["volumes"]["test2"]["class_fractions"]
    for k, name in enumerate(data.class_names):
        assert fractions[name] == pytest.approx(np.mean(labels == k))
    assert info["volumes"]["train"]["min"] == pytest.approx(float(data.volumes["train"][0].min()))
    assert info["spaces"]["train/inline"]["val_sections"] == data.sections("val", "inline").size
    np.testing.assert_allclose(
        data.class_fractions("test1", "inline"),
        np.bincount(data.volumes["test1"][1].ravel(), minlength=6) / data.volumes["test1"][1].size,
    )
