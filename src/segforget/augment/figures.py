"""Visual check of the style operators: original sections next to their augmented versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from segforget.io import atomic_path

__all__ = ["plot_style_check", "style_check"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    return plt


def plot_style_check(
    images: np.ndarray,
    augmented: np.ndarray,
    regions: np.ndarray,
    *,
    out: str | Path,
    titles: list[str] | None = None,
) -> Path:
    """Save a figure: per section, original | augmented | difference, regions outlined.

    Args:
        images: (B, H, W) original sections (first channel).
        augmented: (B, H, W) the same sections after the method.
        regions: (B, H, W) bool, the selected regions (outlined in all panels).
        out: PNG path (written atomically).
        titles: optional per-section titles.

    Returns:
        The path written.
    """
    plt = _pyplot()
    images, augmented = np.asarray(images, float), np.asarray(augmented, float)
    regions = np.asarray(regions, bool)
    rows = images.shape[0]
    aspect = images.shape[2] / images.shape[1]
    fig, axes = plt.subplots(
        rows, 3, figsize=(3 * 3.2 * min(aspect, 2.0), 2.6 * rows + 0.4), squeeze=False
    )
    for r in range(rows):
        limit = float(np.percentile(np.abs(images[r]), 99)) or 1.0
        diff = augmented[r] - images[r]
        diff_limit = float(np.abs(diff).max()) or 1.0
        panels = (
            (images[r], "gray", limit, "original"),
            (augmented[r], "gray", limit, "augmented"),
            (diff, "RdBu_r", diff_limit, "augmented - original"),
        )
        for c, (data, cmap, lim, name) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(data, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
            if regions[r].any():
                ax.contour(regions[r], levels=[0.5], colors="yellow", linewidths=0.8)
            title = name if titles is None else f"{titles[r]}: {name}"
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(out)


def style_check(
    method: Any,
    batch: dict[str, Any],
    *,
    out: str | Path,
    seed: int = 0,
    titles: list[str] | None = None,
) -> Path:
    """Run ``method.transform_batch`` on ``batch`` and plot originals against the result.

    Args:
        method: a region method (``StyleInput`` or ``Online`` wrapping one) with regions set.
        batch: a training batch (``image`` (B, C, H, W), ``label``, ``pixel_index``, ``view``).
        out: PNG path.
        seed: seed of the torch.Generator passed to the method.
    """
    inner = getattr(method, "inner", method)
    generator = torch.Generator().manual_seed(seed)
    augmented = method.transform_batch(dict(batch), generator=generator)
    regions = inner.batch_regions(batch)
    return plot_style_check(
        batch["image"][:, 0].numpy(),
        augmented["image"][:, 0].numpy(),
        regions.numpy(),
        out=out,
        titles=titles,
    )
