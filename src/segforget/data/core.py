"""Data sets as pixel spaces: splits, views, sections and the datasets built on them.

Shape legend: N sections, C channels, H = depth (rows), W = lateral (columns).

A *volume* is a numpy array (inline, crossline, depth). Its sections along a view are images
(H, W):

- view ``"inline"``:    section ``i`` = ``volume[i, :, :].T`` -> (depth, n_crossline)
- view ``"crossline"``: section ``x`` = ``volume[:, x, :].T`` -> (depth, n_inline)

Splits: ``"train"``, ``"val"`` and ``"train+val"`` all live in the pixel space of the training
volume (section numbers 0..num_sections-1 of that volume along the view); ``"train"`` and
``"val"`` are disjoint seeded subsets of its sections, ``"train+val"`` is all of them. Each
test split (``"test1"``, ``"test2"`` for F3; ``"test"`` for image folders) is its own volume
and pixel space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from segforget.data.datasets import PatchDataset, SectionDataset

__all__ = ["PixelSpace", "SegmentationData", "VolumeData", "TRAIN_SPLITS", "IGNORE_INDEX"]

#: Label value that marks "no label"; never counted as a class.
IGNORE_INDEX = 255

#: Splits that index the training volume.
TRAIN_SPLITS: tuple[str, ...] = ("train", "val", "train+val")

#: Sections per chunk when statistics are computed over a volume (bounds temporary memory).
_CHUNK = 16


@dataclass(frozen=True)
class PixelSpace:
    """The flat pixel indices ``[0, num_pixels)`` of one (split, view).

    ``pixel_index = section * H * W + h * W + w``, with ``section`` the section number in the
    volume of the split along the view. Negative values mean "no source pixel".

    Attributes:
        split: ``"train"`` for the training volume (shared by train, val, train+val) or a test
            split name.
        view: ``"inline"``, ``"crossline"`` or ``"image"``.
        num_sections: number of sections of the volume along the view.
        section_shape: (H, W) of every section.
    """

    split: str
    view: str
    num_sections: int
    section_shape: tuple[int, int]

    @property
    def num_pixels(self) -> int:
        """Total number of pixels, ``num_sections * H * W``."""
        height, width = self.section_shape
        return int(self.num_sections) * int(height) * int(width)

    def meta(self) -> dict[str, Any]:
        """JSON-ready description (the tracker stores it with its statistics)."""
        return {
            "split": self.split,
            "view": self.view,
            "num_sections": int(self.num_sections),
            "section_shape": [int(self.section_shape[0]), int(self.section_shape[1])],
            "num_pixels": self.num_pixels,
        }

    def pixel_index(self, section: int) -> np.ndarray:
        """Return the (H, W) int64 pixel indices of one section."""
        if not 0 <= int(section) < self.num_sections:
            raise ValueError(f"Expected `section` to be in [0, {self.num_sections}), got {section}")
        height, width = self.section_shape
        start = int(section) * height * width
        return np.arange(start, start + height * width, dtype=np.int64).reshape(height, width)

    def unravel(self, pixel_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split flat indices into (section, h, w) arrays (same shape as the input).

        Raises:
            ValueError: if an index is negative or >= num_pixels.
        """
        index = np.asarray(pixel_index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.num_pixels):
            raise ValueError(
                f"Expected `pixel_index` to be in [0, {self.num_pixels}), got values in "
                f"[{index.min()}, {index.max()}]"
            )
        height, width = self.section_shape
        section, rest = np.divmod(index, height * width)
        h, w = np.divmod(rest, width)
        return section, h, w


def _seeded_split(num_sections: int, val_fraction: float, seed: int, salt: int) -> np.ndarray:
    """Return a sorted array of validation section numbers (disjoint from training ones)."""
    if num_sections < 2 or val_fraction <= 0.0:
        return np.zeros(0, dtype=np.int64)
    num_val = int(round(val_fraction * num_sections))
    # At least one section on each side so that neither split is silently empty.
    num_val = min(max(num_val, 1), num_sections - 1)
    rng = np.random.default_rng([int(seed), int(salt)])
    return np.sort(rng.permutation(num_sections)[:num_val]).astype(np.int64)


class SegmentationData:
    """Base of every data set: splits, views, pixel spaces and datasets.

    Subclasses implement :meth:`_volume_sections` (number of sections and (H, W) of a volume
    along a view) and :meth:`_read` (raw images and labels of some sections).

    Attributes:
        name: the data specification that produced it (e.g. ``"synthetic:small:0"``).
        num_classes: number of classes K; labels are 0..K-1 or :data:`IGNORE_INDEX`.
        class_names: K names in label order.
        in_channels: C, channels of an item's image.
        ignore_index: 255.
        views: the views, e.g. ``("inline", "crossline")``.
        test_splits: the test splits, e.g. ``("test1", "test2")``.
        val_fraction: fraction of the training sections (per view) held out as ``"val"``.
        seed: seed of the train/val split.
    """

    ignore_index: int = IGNORE_INDEX

    def __init__(
        self,
        *,
        name: str,
        class_names: tuple[str, ...],
        in_channels: int,
        views: tuple[str, ...],
        test_splits: tuple[str, ...],
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        if not isinstance(val_fraction, (int, float)) or not 0.0 <= float(val_fraction) < 1.0:
            raise ValueError(
                f"Expected `val_fraction` to be a number in [0, 1), got {val_fraction!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Expected `seed` to be an int, got {type(seed).__name__}")
        self.name = name
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.in_channels = int(in_channels)
        self.views = tuple(views)
        self.test_splits = tuple(test_splits)
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self._normalization: tuple[float, float] | None = None

    # ----------------------------------------------------------------- subclass hooks
    def _volume_sections(self, volume: str, view: str) -> tuple[int, tuple[int, int]]:
        raise NotImplementedError

    def _read(self, volume: str, view: str, sections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return raw images (N, C, H, W) float32 and labels (N, H, W) (any integer dtype)."""
        raise NotImplementedError

    def _train_statistics(self) -> tuple[float, float]:
        raise NotImplementedError

    # ----------------------------------------------------------------- splits and spaces
    @property
    def splits(self) -> tuple[str, ...]:
        """All split names accepted by :meth:`sections` and :meth:`dataset`."""
        return TRAIN_SPLITS + self.test_splits

    def check_split(self, split: str) -> str:
        """Return the volume name of ``split`` (``"train"`` for train/val/train+val).

        Raises:
            ValueError: for an unknown split (the message lists the valid ones).
        """
        if split in TRAIN_SPLITS:
            return "train"
        if split in self.test_splits:
            return split
        raise ValueError(f"Expected `split` to be one of {list(self.splits)}, got {split!r}")

    def check_view(self, view: str) -> str:
        """Return ``view`` if this data set has it.

        Raises:
            ValueError: for an unknown view (the message lists the valid ones).
        """
        if view not in self.views:
            raise ValueError(f"Expected `view` to be one of {list(self.views)}, got {view!r}")
        return view

    def space(self, split: str, view: str) -> PixelSpace:
        """Pixel space of a (split, view); train, val and train+val share the training one."""
        volume = self.check_split(split)
        self.check_view(view)
        num_sections, shape = self._volume_sections(volume, view)
        return PixelSpace(volume, view, int(num_sections), (int(shape[0]), int(shape[1])))

    def sections(self, split: str, view: str) -> np.ndarray:
        """Sorted int64 section numbers of ``split`` in its pixel space along ``view``.

        ``"train"`` and ``"val"`` are disjoint seeded subsets of the training volume's sections
        (chosen independently per view, ``round(val_fraction * n)`` sections, at least one each
        when ``val_fraction > 0``); ``"train+val"`` and every test split hold all sections.
        """
        space = self.space(split, view)
        everything = np.arange(space.num_sections, dtype=np.int64)
        if split not in ("train", "val"):
            return everything
        val = _seeded_split(
            space.num_sections, self.val_fraction, self.seed, self.views.index(view)
        )
        if split == "val":
            return val
        return np.setdiff1d(everything, val, assume_unique=True)

    # ----------------------------------------------------------------- arrays
    def _checked_sections(self, split: str, view: str, sections: Any) -> tuple[str, np.ndarray]:
        volume = self.check_split(split)
        if sections is None:
            return volume, self.sections(split, view)
        space = self.space(split, view)
        chosen = np.asarray(sections, dtype=np.int64).reshape(-1)
        if chosen.size and (chosen.min() < 0 or chosen.max() >= space.num_sections):
            raise ValueError(
                f"Expected `sections` to be in [0, {space.num_sections}), got values in "
                f"[{chosen.min()}, {chosen.max()}]"
            )
        return volume, chosen

    def seismic_sections(self, split: str, view: str, sections: Any = None) -> np.ndarray:
        """Raw (not normalized) images of a split's sections, a new read-only array.

        Args:
            split: a split name; ``"train"``, ``"val"`` and ``"train+val"`` read the training
                volume (use ``"train+val"`` for every training section).
            view: a view name.
            sections: section numbers to read (default: :meth:`sections` of the split).

        Returns:
            (N, H, W) float32 when ``in_channels == 1``, else (N, C, H, W); row k is section
            ``sections[k]``.
        """
        volume, chosen = self._checked_sections(split, view, sections)
        images, _ = self._read(volume, self.check_view(view), chosen)
        images = images[:, 0] if self.in_channels == 1 else images
        images = np.ascontiguousarray(images, dtype=np.float32)
        images.setflags(write=False)
        return images

    def label_sections(self, split: str, view: str, sections: Any = None) -> np.ndarray:
        """Labels of a split's sections: (N, H, W) int64, a new read-only array.

        Same section selection as :meth:`seismic_sections`.
        """
        volume, chosen = self._checked_sections(split, view, sections)
        _, labels = self._read(volume, self.check_view(view), chosen)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        labels.setflags(write=False)
        return labels

    @property
    def normalization(self) -> tuple[float, float]:
        """(mean, std) of the training volume's raw values; datasets subtract/divide by them."""
        if self._normalization is None:
            mean, std = self._train_statistics()
            self._normalization = (float(mean), float(std) if std > 0 else 1.0)
        return self._normalization

    def dataset(
        self, split: str, view: str, *, transform: Any = None, sections: Any = None
    ) -> SectionDataset:
        """A torch Dataset of the split's sections along ``view``, normalized with the train stats.

        Args:
            split: a split name (see :attr:`splits`).
            view: a view name (see :attr:`views`).
            transform: optional callable ``item -> item`` (see :mod:`segforget.data.transforms`).
            sections: section numbers (default: :meth:`sections` of the split).

        Returns:
            A :class:`~segforget.data.datasets.SectionDataset` whose items are dicts with
            ``image`` float32 (C, H, W), ``label`` int64 (H, W), ``pixel_index`` int64 (H, W),
            ``view`` str and ``section`` int.
        """
        from segforget.data.datasets import SectionDataset

        _, chosen = self._checked_sections(split, view, sections)
        return SectionDataset(self, split, view, chosen, transform=transform)

    def patch_dataset(
        self,
        split: str,
        view: str,
        *,
        patch_size: int | tuple[int, int] = 64,
        stride: int | tuple[int, int] | None = None,
        transform: Any = None,
    ) -> PatchDataset:
        """A torch Dataset of (patch_size) windows cut from the split's sections.

        Items have the same keys as :meth:`dataset`; ``pixel_index`` stays in the split's
        section pixel space, so patch observations land on the section pixels.
        """
        from segforget.data.datasets import PatchDataset

        return PatchDataset(
            self, split, view, patch_size=patch_size, stride=stride, transform=transform
        )

    # ----------------------------------------------------------------- description
    def class_fractions(self, split: str = "train+val", view: str | None = None) -> np.ndarray:
        """Fraction of labelled pixels per class (K,) float64 over a split's sections."""
        view = self.views[0] if view is None else view
        counts = np.zeros(self.num_classes, dtype=np.int64)
        chosen = self.sections(split, view)
        for start in range(0, chosen.size, _CHUNK):
            _, labels = self._read(self.check_split(split), view, chosen[start : start + _CHUNK])
            values = labels[labels != self.ignore_index].astype(np.int64)
            counts += np.bincount(values.reshape(-1), minlength=self.num_classes)[
                : self.num_classes
            ]
        total = counts.sum()
        return counts / total if total else np.zeros(self.num_classes)

    def describe(self) -> dict[str, Any]:
        """Shapes, section counts, class fractions and value range (what ``data info`` prints)."""
        mean, std = self.normalization
        info: dict[str, Any] = {
            "name": self.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "in_channels": self.in_channels,
            "views": list(self.views),
            "test_splits": list(self.test_splits),
            "train_mean": mean,
            "train_std": std,
            "spaces": {},
        }
        for split in ("train", *self.test_splits):
            for view in self.views:
                space = self.space(split, view)
                entry = space.meta()
                if split == "train":
                    entry["train_sections"] = int(self.sections("train", view).size)
                    entry["val_sections"] = int(self.sections("val", view).size)
                info["spaces"][f"{split}/{view}"] = entry
        return info

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, num_classes={self.num_classes}, "
            f"views={self.views}, test_splits={self.test_splits})"
        )


class VolumeData(SegmentationData):
    """Seismic volumes (inline, crossline, depth) with labels: views inline and crossline.

    Args:
        volumes: ``{"train": (seismic, labels), "test1": (...), ...}``; every array is
            (inline, crossline, depth); seismic float32, labels integer. The arrays are kept as
            given (often read-only memory maps) and never modified.
        name: the data specification.
        class_names: names of the classes in label order.
        val_fraction: fraction of training sections per view held out as ``"val"``.
        seed: seed of the train/val split.
    """

    def __init__(
        self,
        volumes: dict[str, tuple[np.ndarray, np.ndarray]],
        *,
        name: str,
        class_names: tuple[str, ...],
        val_fraction: float = 0.1,
        seed: int = 0,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        if "train" not in volumes:
            raise ValueError(f"Expected `volumes` to hold 'train', got {sorted(volumes)}")
        super().__init__(
            name=name,
            class_names=class_names,
            in_channels=1,
            views=("inline", "crossline"),
            test_splits=tuple(k for k in volumes if k != "train"),
            val_fraction=val_fraction,
            seed=seed,
        )
        self.volumes = dict(volumes)
        #: Extra facts about the source (e.g. the generator's parameters).
        self.attrs = dict(attrs or {})

    def volume(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (seismic, labels) of a volume (``"train"`` or a test split), read-only."""
        if name not in self.volumes:
            raise ValueError(f"Expected `name` to be one of {list(self.volumes)}, got {name!r}")
        return self.volumes[name]

    def _volume_sections(self, volume: str, view: str) -> tuple[int, tuple[int, int]]:
        n_il, n_xl, depth = self.volumes[volume][0].shape
        if view == "inline":
            return n_il, (depth, n_xl)
        return n_xl, (depth, n_il)

    def _read(self, volume: str, view: str, sections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seismic, labels = self.volumes[volume]
        index = np.asarray(sections, dtype=np.int64)
        if view == "inline":
            images = np.asarray(seismic[index]).transpose(0, 2, 1)  # (N, depth, n_xl)
            masks = np.asarray(labels[index]).transpose(0, 2, 1)
        else:
            images = np.asarray(seismic[:, index]).transpose(1, 2, 0)  # (N, depth, n_il)
            masks = np.asarray(labels[:, index]).transpose(1, 2, 0)
        return images[:, None].astype(np.float32, copy=False), masks

    def _train_statistics(self) -> tuple[float, float]:
        seismic = self.volumes["train"][0]
        total = total_sq = 0.0
        for start in range(0, seismic.shape[0], _CHUNK):
            block = np.asarray(seismic[start : start + _CHUNK], dtype=np.float64)
            total += float(block.sum())
            total_sq += float(np.square(block).sum())
        count = seismic.size
        mean = total / count
        return mean, float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))

    def value_range(self, name: str = "train") -> tuple[float, float]:
        """(min, max) of a volume's seismic values."""
        seismic = self.volume(name)[0]
        low, high = np.inf, -np.inf
        for start in range(0, seismic.shape[0], _CHUNK):
            block = np.asarray(seismic[start : start + _CHUNK])
            low, high = min(low, float(block.min())), max(high, float(block.max()))
        return low, high

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["volumes"] = {}
        for name, (seismic, labels) in self.volumes.items():
            low, high = self.value_range(name)
            counts = np.zeros(self.num_classes, dtype=np.int64)
            for start in range(0, labels.shape[0], _CHUNK):
                block = np.asarray(labels[start : start + _CHUNK]).reshape(-1)
                block = block[block != self.ignore_index].astype(np.int64)
                counts += np.bincount(block, minlength=self.num_classes)[: self.num_classes]
            total = max(int(counts.sum()), 1)
            info["volumes"][name] = {
                "shape": list(seismic.shape),
                "seismic_dtype": str(seismic.dtype),
                "label_dtype": str(labels.dtype),
                "min": low,
                "max": high,
                "class_fractions": {
                    n: float(c) / total for n, c in zip(self.class_names, counts, strict=True)
                },
            }
        return info
