"""Transforms move pixel_index exactly like the label (hypothesis property tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segforget.data.transforms import (
    AdditiveNoise,
    Compose,
    HorizontalFlip,
    PadToMultiple,
    RandomCrop,
    RandomRotation,
)

IGNORE = 255


def make_item(height: int, width: int, section: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    label = torch.from_numpy(rng.integers(0, 6, (height, width)))
    base = section * height * width
    pixel_index = torch.arange(base, base + height * width, dtype=torch.int64).view(height, width)
    image = torch.from_numpy(rng.normal(size=(1, height, width)).astype(np.float32))
    return {
        "image": image,
        "label": label,
        "pixel_index": pixel_index,
        "view": "inline",
        "section": section,
    }


def check_pixel_identity(source: dict, out: dict) -> None:
    """Gathering the source label by pixel_index reproduces the transformed label."""
    height, width = source["label"].shape
    base = source["section"] * height * width
    index = out["pixel_index"]
    valid = index >= 0
    flat = source["label"].reshape(-1)
    np.testing.assert_array_equal(flat[(index[valid] - base)].numpy(), out["label"][valid].numpy())
    assert (out["label"][~valid] == IGNORE).all()
    assert (out["image"][:, ~valid] == 0).all()
    assert out["image"].shape[1:] == out["label"].shape == index.shape
    assert index.dtype == torch.int64 and out["label"].dtype == torch.int64


TRANSFORMS = {
    "flip": lambda: HorizontalFlip(0.5),
    "crop": lambda: RandomCrop((5, 7)),
    "rotate": lambda: RandomRotation(15.0),
    "rotate_big": lambda: RandomRotation(180.0),
    "noise": lambda: AdditiveNoise(0.3),
    "pad": lambda: PadToMultiple(8),
    "compose": lambda: Compose(
        [
            HorizontalFlip(),
            RandomRotation(10.0),
            RandomCrop(6),
            AdditiveNoise(0.1),
            PadToMultiple(4),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 20),
    width=st.integers(1, 20),
    section=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_pixel_index_moves_like_the_label(name, height, width, section, seed):
    source = make_item(height, width, section, seed)
    before = {k: v.clone() for k, v in source.items() if isinstance(v, torch.Tensor)}
    out = TRANSFORMS[name]()(source, torch.Generator().manual_seed(seed))
    check_pixel_identity(source, out)
    for key, value in before.items():  # never in place
        assert torch.equal(source[key], value)
    assert out["view"] == "inline" and out["section"] == section


@settings(max_examples=30, deadline=None)
@given(height=st.integers(1, 70), width=st.integers(1, 70), multiple=st.integers(1, 32))
def test_pad_to_multiple_pads_bottom_right(height, width, multiple):
    source = make_item(height, width, 1, 0)
    out = PadToMultiple(multiple)(source)
    new_h, new_w = out["label"].shape
    assert new_h % multiple == 0 and new_w % multiple == 0
    assert height <= new_h < height + multiple and width <= new_w < width + multiple
    assert torch.equal(out["label"][:height, :width], source["label"])
    assert torch.equal(out["pixel_index"][:height, :width], source["pixel_index"])
    assert (out["pixel_index"][height:] == -1).all() and (out["pixel_index"][:, width:] == -1).all()
    assert (out["label"][height:] == IGNORE).all()


def test_rotation_by_quarter_turn_is_exact_on_a_square():
    from segforget.data.transforms import rotate_item

    source = make_item(9, 9, 0, 3)
    out = rotate_item(source, 90.0)
    # Counter-clockwise by 90 degrees (rows grow downwards) equals torch.rot90 with k=1.
    assert torch.equal(out["label"], torch.rot90(source["label"], 1, (0, 1)))
    assert torch.equal(out["pixel_index"], torch.rot90(source["pixel_index"], 1, (0, 1)))
    torch.testing.assert_close(out["image"], torch.rot90(source["image"], 1, (1, 2)))


def test_rotation_creates_ignored_corners():
    source = make_item(20, 30, 2, 1)
    out = RandomRotation(30.0)(source, torch.Generator().manual_seed(0))
    assert (out["pixel_index"] == -1).any()
    assert ((out["pixel_index"] == -1) == (out["label"] == IGNORE)).all()


def test_flip_always_and_never():
    source = make_item(4, 6, 0, 0)
    flipped = HorizontalFlip(1.0)(source)
    assert torch.equal(flipped["pixel_index"], source["pixel_index"].flip(-1))
    assert torch.equal(flipped["image"], source["image"].flip(-1))
    kept = HorizontalFlip(0.0)(source)
    assert torch.equal(kept["pixel_index"], source["pixel_index"])


def test_generator_makes_transforms_repeatable():
    source = make_item(16, 16, 0, 0)
    chain = Compose([HorizontalFlip(), RandomRotation(20.0), RandomCrop(8), AdditiveNoise(0.5)])
    first = chain(source, torch.Generator().manual_seed(7))
    second = chain(source, torch.Generator().manual_seed(7))
    for key in ("image", "label", "pixel_index"):
        assert torch.equal(first[key], second[key])
    own = Compose([RandomCrop(8)], generator=torch.Generator().manual_seed(3))
    again = Compose([RandomCrop(8)], generator=torch.Generator().manual_seed(3))
    assert torch.equal(own(source)["pixel_index"], again(source)["pixel_index"])


def test_additive_noise_has_the_requested_std():
    source = make_item(200, 200, 0, 0)
    out = AdditiveNoise(0.5)(source, torch.Generator().manual_seed(0))
    diff = (out["image"] - source["image"]).numpy()
    assert diff.std() == pytest.approx(0.5, rel=0.02)
    assert torch.equal(out["label"], source["label"])


def test_crop_larger_than_item_pads_first():
    source = make_item(3, 4, 0, 0)
    out = RandomCrop((5, 6))(source, torch.Generator().manual_seed(0))
    assert out["label"].shape == (5, 6)
    check_pixel_identity(source, out)
    assert (out["pixel_index"] >= 0).sum() == 12


def test_transform_errors():
    with pytest.raises(ValueError, match=r"Expected `multiple` to be an int >= 1, got 0"):
        PadToMultiple(0)
    with pytest.raises(ValueError, match=r"Expected `size` to be a positive int"):
        RandomCrop(0)
    with pytest.raises(ValueError, match=r"Expected `max_degrees` to be a finite number >= 0"):
        RandomRotation(-1.0)
    with pytest.raises(ValueError, match=r"Expected `std` to be a finite number >= 0"):
        AdditiveNoise(float("nan"))
    with pytest.raises(ValueError, match=r"Expected `p` to be in \[0, 1\]"):
        HorizontalFlip(2.0)
    with pytest.raises(TypeError, match=r"Expected `transforms` to hold callables"):
        Compose([3])


def test_dataset_items_through_transforms_keep_identity(tmp_path):
    from segforget.data import VolumeData, generate_survey

    survey = generate_survey(
        "small",
        seed=0,
        train_inlines=6,
        train_crosslines=20,
        samples=24,
        test1_inlines=2,
        test2_crosslines=3,
    )
    data = VolumeData(survey.volumes, name="tiny", class_names=tuple("abcdef"))
    dataset = data.dataset(
        "train+val", "crossline", transform=Compose([RandomRotation(20.0), PadToMultiple(32)])
    )
    labels = data.label_sections("train+val", "crossline").reshape(-1)
    for k in range(len(dataset)):
        item = dataset[k]
        valid = item["pixel_index"] >= 0
        np.testing.assert_array_equal(
            labels[item["pixel_index"][valid].numpy()], item["label"][valid].numpy()
        )
        assert item["image"].shape == (1, 32, 32)


def test_dataloader_workers_do_not_repeat_augmentations():
    from torch.utils.data import DataLoader, Dataset

    class Same(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return RandomCrop(4, generator=own)(make_item(16, 16, 0, 0))

    own = torch.Generator().manual_seed(0)
    loader = DataLoader(Same(), batch_size=1, num_workers=2)
    first = [b["pixel_index"][0, 0, 0].item() for b in loader]
    # Items 0 and 1 come from different workers, each on its first draw.
    assert first[0] != first[1] or first[2] != first[3]
