"""A preview figure of a seismic data set: an inline and a crossline section beside their labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segforget.data.core import SegmentationData
from segforget.io import atomic_path

__all__ = ["write_preview", "FACIES_COLORS"]

#: One colour per F3 class (upper_ns .. zechstein), chosen to be told apart on a section.
FACIES_COLORS: tuple[str, ...] = (
    "#f2d16b",  # upper_ns: sand yellow
    "#9ccf7a",  # middle_ns: green
    "#5aa0c8",  # lower_ns: blue
    "#e8e8e0",  # rijnland_chalk: chalk white
    "#c8703c",  # scruff: brown
    "#b05fc0",  # zechstein: salt purple
)


def _import_pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("the preview needs matplotlib: pip install matplotlib") from exc
    return plt


def _telling_section(data: SegmentationData, split: str, view: str) -> int:
    """The section with most classes present, then most pixels of the two rarest classes."""
    chosen = data.sections(split, view)
    volume = data.check_split(split)
    counts = np.zeros((chosen.size, data.num_classes), dtype=np.int64)
    for start in range(0, chosen.size, 16):
        _, labels = data._read(volume, view, chosen[start : start + 16])
        for k, label in enumerate(labels):
            values = label[label != data.ignore_index].astype(np.int64).reshape(-1)
            counts[start + k] = np.bincount(values, minlength=data.num_classes)[: data.num_classes]
    rare = np.argsort(counts.sum(axis=0))[:2]
    score = (counts > 0).sum(axis=1) * (counts.sum() + 1) + counts[:, rare].sum(axis=1)
    return int(chosen[int(np.argmax(score))])


def write_preview(
    data: SegmentationData,
    path: str | Path,
    *,
    split: str = "train+val",
    inline: int | None = None,
    crossline: int | None = None,
    dpi: int = 110,
) -> Path:
    """Write a PNG: an inline and a crossline section (grey, depth down) with labels beside them.

    Args:
        data: a seismic data set (views inline and crossline).
        path: the PNG to write (atomically).
        split: the split whose volume is shown (default: the whole training volume).
        inline: section number of the inline (default: the one showing most classes, then
            most pixels of the two rarest classes).
        crossline: section number of the crossline (default: chosen the same way).
        dpi: resolution of the PNG.

    Raises:
        ValueError: if the data set has no inline/crossline views or a section is out of range.
    """
    if tuple(data.views) != ("inline", "crossline"):
        raise ValueError(f"Expected `data` to have views ('inline', 'crossline'), got {data.views}")
    plt = _import_pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    rows = []
    for view, chosen in (("inline", inline), ("crossline", crossline)):
        space = data.space(split, view)
        number = _telling_section(data, split, view) if chosen is None else int(chosen)
        if not 0 <= number < space.num_sections:
            raise ValueError(f"Expected `{view}` to be in [0, {space.num_sections}), got {number}")
        image = data.seismic_sections(split, view, [number])[0]
        label = data.label_sections(split, view, [number])[0]
        rows.append((view, number, image, label))

    colors = list(FACIES_COLORS[: data.num_classes])
    colors += ["#777777"] * (data.num_classes - len(colors))
    cmap = ListedColormap(colors).with_extremes(bad="#000000")
    norm = BoundaryNorm(np.arange(data.num_classes + 1) - 0.5, data.num_classes)
    widths = [max(row[2].shape[1], 1) for row in rows]
    height = rows[0][2].shape[0]
    fig_w = 13.0
    fig_h = max(4.0, fig_w * height / (2.0 * max(widths)) * 2 + 1.6)
    fig, axes = plt.subplots(2, 2, figsize=(fig_w, fig_h), squeeze=False)
    for (view, number, image, label), (ax_s, ax_l) in zip(rows, axes, strict=True):
        clip = float(np.percentile(np.abs(image), 99)) or 1.0
        ax_s.imshow(image, cmap="gray", vmin=-clip, vmax=clip, aspect="auto", interpolation="none")
        ax_s.set_title(f"{view} {number}: seismic", fontsize=10)
        masked = np.ma.masked_equal(label, data.ignore_index)
        ax_l.imshow(masked, cmap=cmap, norm=norm, aspect="auto", interpolation="none")
        ax_l.set_title(f"{view} {number}: facies labels", fontsize=10)
        other = "crossline" if view == "inline" else "inline"
        for ax in (ax_s, ax_l):
            ax.set_xlabel(f"{other} (trace)")
            ax.set_ylabel("depth sample")
    handles = [Patch(color=c, label=n) for c, n in zip(colors, data.class_names, strict=False)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(f"{data.name}  ({split} volume)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return target
