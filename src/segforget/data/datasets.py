"""Torch datasets over sections and patches; every item carries its pixel identity.

Item keys (C channels, H depth rows, W lateral columns):

- ``image``:       float32 tensor (C, H, W), normalized with the training volume's mean/std
- ``label``:       int64 tensor (H, W), classes 0..K-1 or the ignore index 255
- ``pixel_index``: int64 tensor (H, W), flat index into the split's pixel space (-1 = none)
- ``view``:        str, the view of the section
- ``section``:     int, section number in the split's pixel space

Items of one view have one shape, so the default collate of a DataLoader batches them; keep
one view per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from segforget.data.core import PixelSpace, SegmentationData

__all__ = ["SectionDataset", "PatchDataset"]


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or int(v) < 1 for v in pair):
        raise ValueError(f"Expected `{name}` to be a positive int or (int, int), got {value!r}")
    return int(pair[0]), int(pair[1])


class SectionDataset(Dataset):
    """Whole sections of one split and view.

    Args:
        data: the data set.
        split: a split name of ``data``.
        view: a view name of ``data``.
        sections: int64 section numbers (in the split's pixel space) the items stand for.
        transform: optional ``item -> item`` callable applied to each item.

    Attributes:
        space: the :class:`~segforget.data.core.PixelSpace` the pixel indices point into.
        sections: the section number of every item, ``dataset[k]["section"] == sections[k]``.
    """

    def __init__(
        self,
        data: SegmentationData,
        split: str,
        view: str,
        sections: np.ndarray,
        *,
        transform: Any = None,
    ) -> None:
        self.data = data
        self.split = split
        self.view = view
        self.volume = data.check_split(split)
        self.space: PixelSpace = data.space(split, view)
        self.sections = np.asarray(sections, dtype=np.int64)
        self.transform = transform
        self.mean, self.std = data.normalization

    def __len__(self) -> int:
        return int(self.sections.size)

    def _item(self, section: int, rows: slice, cols: slice) -> dict[str, Any]:
        images, labels = self.data._read(self.volume, self.view, np.array([section]))
        image = (images[0, :, rows, cols].astype(np.float32) - self.mean) / self.std
        height, width = self.space.section_shape
        pixel_index = np.arange(height * width, dtype=np.int64).reshape(height, width)
        pixel_index += section * height * width
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "label": torch.from_numpy(np.ascontiguousarray(labels[0, rows, cols], dtype=np.int64)),
            "pixel_index": torch.from_numpy(np.ascontiguousarray(pixel_index[rows, cols])),
            "view": self.view,
            "section": int(section),
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"Expected `index` to be in [0, {len(self)}), got {index}")
        item = self._item(int(self.sections[index]), slice(None), slice(None))
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return (
            f"SectionDataset(split={self.split!r}, view={self.view!r}, len={len(self)}, "
            f"section_shape={self.space.section_shape})"
        )


class PatchDataset(SectionDataset):
    """Windows of ``patch_size`` cut from the sections of one split and view.

    Windows start every ``stride`` pixels (default: ``patch_size``, no overlap); the last
    window of a row/column is moved back to end at the section border, so every pixel is
    covered. Sections smaller than a patch give one window that covers the whole section and is
    padded (image 0, label ignore, pixel_index -1).

    Args:
        data: the data set.
        split: a split name.
        view: a view name.
        patch_size: (height, width) of a window, or one int for both.
        stride: step between windows, or one int for both (default: patch_size).
        transform: optional ``item -> item`` callable.
    """

    def __init__(
        self,
        data: SegmentationData,
        split: str,
        view: str,
        *,
        patch_size: int | tuple[int, int] = 64,
        stride: int | tuple[int, int] | None = None,
        transform: Any = None,
    ) -> None:
        super().__init__(data, split, view, data.sections(split, view), transform=transform)
        self.patch_size = _pair(patch_size, "patch_size")
        self.stride = self.patch_size if stride is None else _pair(stride, "stride")
        height, width = self.space.section_shape
        tops = self._starts(height, self.patch_size[0], self.stride[0])
        lefts = self._starts(width, self.patch_size[1], self.stride[1])
        grid = [(t, left) for t in tops for left in lefts]
        self.windows = np.array(
            [(s, t, left) for s in self.sections for (t, left) in grid], dtype=np.int64
        ).reshape(-1, 3)

    @staticmethod
    def _starts(length: int, size: int, stride: int) -> list[int]:
        if length <= size:
            return [0]
        starts = list(range(0, length - size + 1, stride))
        if starts[-1] != length - size:
            starts.append(length - size)
        return starts

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"Expected `index` to be in [0, {len(self)}), got {index}")
        section, top, left = (int(v) for v in self.windows[index])
        rows = slice(top, top + self.patch_size[0])
        cols = slice(left, left + self.patch_size[1])
        item = self._item(section, rows, cols)
        item = _pad_to(item, self.patch_size, self.data.ignore_index)
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return (
            f"PatchDataset(split={self.split!r}, view={self.view!r}, len={len(self)}, "
            f"patch_size={self.patch_size}, stride={self.stride})"
        )


def _pad_to(item: dict[str, Any], size: tuple[int, int], ignore_index: int) -> dict[str, Any]:
    height, width = item["label"].shape
    if height >= size[0] and width >= size[1]:
        return item
    from segforget.data.transforms import pad_item

    return pad_item(item, max(size[0] - height, 0), max(size[1] - width, 0), ignore_index)
