"""Volume view: per-view pixel statistics summed back into voxels.

For a volume of shape (I inline, X crossline, D depth): the inline section i is volume[i].T, so
its pixel (h=d, w=x) is voxel (i, x, d); the crossline section x is volume[:, x].T, so its pixel
(h=d, w=i) is voxel (i, x, d).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["VolumeAccumulator", "views_to_volume"]


class VolumeAccumulator:
    """Sum of a per-pixel quantity of the inline and crossline views, per voxel.

    Args:
        shape: (I, X, D) volume shape.
        dtype: accumulator dtype (int32 keeps an F3 volume at ~290 MB).
    """

    def __init__(self, shape: Sequence[int], *, dtype: Any = np.int32) -> None:
        if len(shape) != 3:
            raise ValueError(f"Expected `shape` to be (inline, crossline, depth), got {shape}")
        self.shape = tuple(int(s) for s in shape)
        self.volume = np.zeros(self.shape, dtype=dtype)
        self.views: set[str] = set()

    def update(self, values: np.ndarray, *, view: str, sections: Sequence[int]) -> None:
        """Add (N, D, lateral) section values of ``view`` ("inline" or "crossline").

        Raises:
            ValueError: for another view or a section shape that does not fit the volume.
        """
        values = np.asarray(values)
        idx = np.asarray(sections, dtype=np.int64)
        i_n, x_n, d_n = self.shape
        if view == "inline":
            if values.shape[1:] != (d_n, x_n):
                raise ValueError(
                    f"Expected inline sections of shape {(d_n, x_n)}, got {values.shape[1:]}"
                )
            self.volume[idx] += values.transpose(0, 2, 1).astype(self.volume.dtype)
        elif view == "crossline":
            if values.shape[1:] != (d_n, i_n):
                raise ValueError(
                    f"Expected crossline sections of shape {(d_n, i_n)}, got {values.shape[1:]}"
                )
            self.volume[:, idx] += values.transpose(2, 0, 1).astype(self.volume.dtype)
        else:
            raise ValueError(f"Expected `view` to be 'inline' or 'crossline', got {view!r}")
        self.views.add(view)

    def result(self) -> dict[str, Any]:
        """Slices through the voxel with most summed value along each axis, and totals.

        Keys: ``shape``, ``views``, ``total``, ``inline``, ``crossline``, ``depth`` (the chosen
        slice indices: the slice with the largest sum along that axis).
        """
        v = self.volume
        return {
            "shape": list(self.shape),
            "views": sorted(self.views),
            "total": int(v.sum(dtype=np.int64)),
            "inline": int(np.argmax(v.sum(axis=(1, 2), dtype=np.int64))),
            "crossline": int(np.argmax(v.sum(axis=(0, 2), dtype=np.int64))),
            "depth": int(np.argmax(v.sum(axis=(0, 1), dtype=np.int64))),
        }


def views_to_volume(inline: np.ndarray, crossline: np.ndarray) -> np.ndarray:
    """Sum whole-view arrays into voxels.

    Args:
        inline: (I, D, X) values of all inline sections.
        crossline: (X, D, I) values of all crossline sections.

    Returns:
        (I, X, D) int64 voxel sums.
    """
    inline, crossline = np.asarray(inline), np.asarray(crossline)
    shape = (inline.shape[0], inline.shape[2], inline.shape[1])
    acc = VolumeAccumulator(shape, dtype=np.int64)
    acc.update(inline, view="inline", sections=range(shape[0]))
    acc.update(crossline, view="crossline", sections=range(shape[1]))
    return acc.volume
