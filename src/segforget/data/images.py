"""Folders of images and masks as a data set with one view, ``"image"``.

Layouts (masks are single-channel PNGs of class indices, 255 = unlabelled, same stem as the
image):

- ``DIR/images/*`` and ``DIR/masks/*``: a seeded random 20 % of the pairs becomes the
  ``"test"`` split, the rest the training pool (itself split into ``"train"``/``"val"``);
- ``DIR/train/{images,masks}`` and ``DIR/test/{images,masks}``: the split is given.

All images are brought to one size on load, the most common (H, W) of the training pool
(ties: the first in name order): images bilinearly, masks by nearest neighbour. Pixel indices
refer to that resized grid. Images are grey (C = 1) unless any is colour (then all are RGB).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from segforget.data.core import IGNORE_INDEX, SegmentationData

__all__ = ["ImageData", "read_images", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

#: PIL modes read as one grey channel; any other mode (RGB, palette, ...) makes all images RGB.
_GREY_MODES = ("L", "LA", "I", "I;16", "F", "1")

#: Fraction of pairs held out as "test" when the folder has no train/test subfolders.
TEST_FRACTION = 0.2


def _pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"Expected `{folder}` to be a folder (layout: DIR/images/*, DIR/masks/*.png with "
                "the same stems), got no such folder"
            )
    images = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    missing = sorted(set(images) - set(masks))
    if missing:
        raise ValueError(
            f"Expected a mask in `{masks_dir}` for every image, got none for {missing[:3]}; "
            "masks need the image's file stem"
        )
    if not images:
        raise ValueError(
            f"Expected images in `{images_dir}` ({', '.join(IMAGE_SUFFIXES)}), got none"
        )
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    # Pillow reports some broken chunks as SyntaxError, oversized headers as DecompressionBombError.
    except (
        OSError,
        UnidentifiedImageError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
    ) as exc:
        raise ValueError(
            f"Expected `{path}` to be a readable image, got {' '.join(str(exc).split())[:200]}"
        ) from None
    return image


def _load(pairs: list[tuple[Path, Path]], size: tuple[int, int], rgb: bool):
    from PIL import Image

    height, width = size
    images = np.empty((len(pairs), 3 if rgb else 1, height, width), dtype=np.float32)
    masks = np.empty((len(pairs), height, width), dtype=np.uint8)
    for k, (image_path, mask_path) in enumerate(pairs):
        image = _open(image_path).convert("RGB" if rgb else "L")
        mask = _open(mask_path)
        if mask.mode not in ("L", "P", "I", "I;16", "1"):
            raise ValueError(
                f"Expected `{mask_path}` to be a single-channel mask of class indices, got mode "
                f"{mask.mode}; save masks as 8-bit grey or palette PNGs"
            )
        if image.size != mask.size:
            raise ValueError(
                f"Expected `{mask_path}` to have the size of its image {image.size}, "
                f"got {mask.size}"
            )
        if image.size != (width, height):
            image = image.resize((width, height), Image.BILINEAR)
            mask = mask.resize((width, height), Image.NEAREST)
        array = np.asarray(image, dtype=np.float32)
        images[k] = array.transpose(2, 0, 1) if rgb else array[None]
        values = np.asarray(mask)
        if values.min() < 0 or values.max() > 255:
            raise ValueError(f"Expected `{mask_path}` to hold labels 0..255, got {values.max()}")
        masks[k] = values.astype(np.uint8)
    images.setflags(write=False)
    masks.setflags(write=False)
    return images, masks


class ImageData(SegmentationData):
    """Images and masks in memory: view ``"image"``, test split ``"test"``.

    Args:
        train: (images (N, C, H, W) float32, masks (N, H, W) uint8) of the training pool.
        test: the same for the test split.
        name: the data specification.
        class_names: names in label order.
        val_fraction: fraction of training images held out as ``"val"``.
        seed: seed of the train/val split.
    """

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray],
        *,
        name: str,
        class_names: tuple[str, ...],
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(
            name=name,
            class_names=class_names,
            in_channels=train[0].shape[1],
            views=("image",),
            test_splits=("test",),
            val_fraction=val_fraction,
            seed=seed,
        )
        self.arrays = {"train": train, "test": test}

    def _volume_sections(self, volume: str, view: str) -> tuple[int, tuple[int, int]]:
        images = self.arrays[volume][0]
        return images.shape[0], (images.shape[2], images.shape[3])

    def _read(self, volume: str, view: str, sections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images, masks = self.arrays[volume]
        return images[sections], masks[sections]

    def _train_statistics(self) -> tuple[float, float]:
        images = self.arrays["train"][0].astype(np.float64)
        return float(images.mean()), float(images.std())

    def describe(self) -> dict:
        info = super().describe()
        info["volumes"] = {}
        for name, (images, masks) in self.arrays.items():
            values = masks[masks != IGNORE_INDEX].astype(np.int64)
            counts = np.bincount(values, minlength=self.num_classes)[: self.num_classes]
            total = max(int(counts.sum()), 1)
            info["volumes"][name] = {
                "shape": list(images.shape),
                "min": float(images.min()),
                "max": float(images.max()),
                "class_fractions": {
                    n: float(c) / total for n, c in zip(self.class_names, counts, strict=True)
                },
            }
        return info


def read_images(
    directory: str | Path,
    *,
    name: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    num_classes: int | None = None,
) -> ImageData:
    """Open a folder of images and masks (see the module docstring for layouts and resizing).

    Args:
        directory: the folder.
        name: data set name (default ``images:DIR``).
        val_fraction: fraction of training images held out as ``"val"``.
        seed: seed of the test split (single-folder layout) and of the train/val split.
        num_classes: number of classes (default: largest mask value other than 255, plus one).

    Raises:
        FileNotFoundError: if the folder or its images/masks subfolders are missing.
        ValueError: for unreadable images, missing masks, size mismatches or labels out of range.
    """
    directory = Path(directory)
    if not directory.is_dir():
        found = "a file" if directory.exists() else "no such folder"
        raise FileNotFoundError(
            f"Expected `{directory}` to be a folder with images/ and masks/, got {found}"
        )
    if (directory / "train").is_dir() and (directory / "test").is_dir():
        train_pairs = _pairs(directory / "train" / "images", directory / "train" / "masks")
        test_pairs = _pairs(directory / "test" / "images", directory / "test" / "masks")
    else:
        pairs = _pairs(directory / "images", directory / "masks")
        if len(pairs) < 2:
            raise ValueError(
                f"Expected at least 2 image/mask pairs in `{directory}` (train and test), "
                f"got {len(pairs)}"
            )
        order = np.random.default_rng([int(seed), 7]).permutation(len(pairs))
        num_test = min(max(int(round(TEST_FRACTION * len(pairs))), 1), len(pairs) - 1)
        test_pairs = [pairs[k] for k in sorted(order[:num_test])]
        train_pairs = [pairs[k] for k in sorted(order[num_test:])]
    sizes = []
    rgb = False
    for k, (image_path, _) in enumerate(train_pairs + test_pairs):
        image = _open(image_path)
        rgb = rgb or image.mode not in _GREY_MODES
        if k < len(train_pairs):
            sizes.append((image.size[1], image.size[0]))
    size = Counter(sizes).most_common(1)[0][0]
    train = _load(train_pairs, size, rgb)
    test = _load(test_pairs, size, rgb)
    labelled = [m[m != IGNORE_INDEX] for m in (train[1], test[1])]
    largest = max((int(v.max()) for v in labelled if v.size), default=0)
    if num_classes is None:
        num_classes = largest + 1
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or not 1 <= num_classes <= 255
    ):
        raise ValueError(f"Expected `num_classes` to be an int in 1..255, got {num_classes!r}")
    if largest >= num_classes:
        raise ValueError(
            f"Expected masks in `{directory}` to hold labels 0..{num_classes - 1} (255 = "
            f"unlabelled), got {largest}; raise num_classes or fix the masks"
        )
    return ImageData(
        train,
        test,
        name=name or f"images:{directory}",
        class_names=tuple(f"class_{k}" for k in range(num_classes)),
        val_fraction=val_fraction,
        seed=seed,
    )
