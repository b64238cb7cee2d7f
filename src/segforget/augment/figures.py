"""Visual check of the style operators and the warp: sections next to their augmented versions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segforget.io import atomic_path

__all__ = ["benchmark_panels", "plot_benchmark", "plot_style_check", "style_check"]


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
    labels: tuple[np.ndarray, np.ndarray] | None = None,
    ignore_index: int = 255,
) -> Path:
    """Save a figure: per section, original | augmented | difference, regions outlined.

    Args:
        images: (B, H, W) original sections (first channel).
        augmented: (B, H, W) the same sections after the method.
        regions: (B, H, W) bool, the selected regions (outlined in all panels).
        out: PNG path (written atomically).
        titles: optional per-section titles.
        labels: optional ((B, H, W), (B, H, W)) labels before and after, for methods that
            move them (a warp, a rotation): two more panels per section, ``ignore_index``
            left blank.

    Returns:
        The path written.
    """
    plt = _pyplot()
    images, augmented = np.asarray(images, float), np.asarray(augmented, float)
    regions = np.asarray(regions, bool)
    rows = images.shape[0]
    columns = 3 if labels is None else 5
    aspect = images.shape[2] / images.shape[1]
    fig, axes = plt.subplots(
        rows, columns, figsize=(columns * 3.2 * min(aspect, 2.0), 2.6 * rows + 0.4), squeeze=False
    )
    classes = 1
    if labels is not None:
        before, after = (np.asarray(x) for x in labels)
        known = np.concatenate([before[before != ignore_index], after[after != ignore_index]])
        classes = int(known.max()) + 1 if known.size else 1
    for r in range(rows):
        limit = float(np.percentile(np.abs(images[r]), 99)) or 1.0
        diff = augmented[r] - images[r]
        diff_limit = float(np.abs(diff).max()) or 1.0
        panels = [
            (images[r], "gray", (-limit, limit), "original"),
            (augmented[r], "gray", (-limit, limit), "augmented"),
            (diff, "RdBu_r", (-diff_limit, diff_limit), "augmented - original"),
        ]
        if labels is not None:
            for name, lab in (("labels", before[r]), ("labels augmented", after[r])):
                shown = np.ma.masked_equal(np.asarray(lab, float), ignore_index)
                panels.append((shown, "tab10", (-0.5, max(classes, 10) - 0.5), name))
        for c, (data, cmap, (low, high), name) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(data, cmap=cmap, vmin=low, vmax=high, aspect="auto", interpolation="nearest")
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

    When the method moved labels (option ``warp`` or ``rotate``), the labels before and after
    are drawn too.

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
    moved = not torch.equal(augmented["label"], batch["label"])
    return plot_style_check(
        batch["image"][:, 0].numpy(),
        augmented["image"][:, 0].numpy(),
        regions.numpy(),
        out=out,
        titles=titles,
        labels=(batch["label"].numpy(), augmented["label"].numpy()) if moved else None,
        ignore_index=int(getattr(inner, "ignore_index", 255)),
    )


def benchmark_panels(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The numbers :func:`plot_benchmark` draws, one dict per panel.

    Panels: test mIoU, the test accuracy of each rare class, frequently forgotten training
    pixels. Each has ``title``, ``entries`` (the benchmark's entries in order), ``seeds``
    (per entry, the per-seed values, None where a run lacks the number), ``mean`` and ``std``
    (per entry, the summary's mean and sample std over seeds, None when no seed has it).

    Args:
        report: a benchmark report (``benchmark.json``) with ``runs``, ``summary``, ``settings``.
    """
    from segforget.classes import F3_RARE_CLASSES

    settings = report["settings"]
    rare = list(settings.get("rare_classes") or F3_RARE_CLASSES)
    entries = list(report["summary"])
    metrics: list[tuple[str, Any]] = [("test mIoU", lambda r: r["miou"])]
    metrics += [(f"{c} accuracy", lambda r, c=c: r["class_accuracy"].get(c)) for c in rare]
    metrics.append(
        (
            f"frequently forgotten px (>= {settings['threshold']} events)",
            lambda r: r["frequently_forgotten"],
        )
    )
    keys = ["miou", *rare, "frequently_forgotten"]
    panels = []
    for (title, value), key in zip(metrics, keys, strict=True):
        summaries = []
        for entry in entries:
            summary = report["summary"][entry]
            summaries.append(summary["class_accuracy"].get(key) if key in rare else summary[key])
        panels.append(
            {
                "title": title,
                "entries": entries,
                "seeds": [[value(r) for r in report["runs"][entry]] for entry in entries],
                "mean": [None if s is None else s["mean"] for s in summaries],
                "std": [None if s is None else s["std"] for s in summaries],
            }
        )
    return panels


def plot_benchmark(report: Mapping[str, Any], out: str | Path) -> Path:
    """Save the benchmark at a glance: per panel, each entry's mean ± std and its seeds.

    Squares are the mean over seeds with the sample std as error bar, dots the single seeds;
    the dashed line is ``baseline``'s mean, the dotted one ``rotate``'s (when run).

    Args:
        report: a benchmark report (``benchmark.json``).
        out: PNG path (written atomically).

    Returns:
        The path written.
    """
    plt = _pyplot()
    panels = benchmark_panels(report)
    entries = panels[0]["entries"]
    width = max(3.2, 0.55 * len(entries) + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.8), squeeze=False)
    x = np.arange(len(entries))
    for ax, panel in zip(axes[0], panels, strict=True):
        mean = np.array([np.nan if m is None else m for m in panel["mean"]], dtype=float)
        std = np.array([0.0 if s is None else s for s in panel["std"]], dtype=float)
        # markers, not bars: the accuracy axes do not start at 0
        ax.errorbar(x, mean, yerr=std, fmt="s", color="#3182bd", ms=6, capsize=4, zorder=2)
        for i, values in enumerate(panel["seeds"]):
            shown = [v for v in values if v is not None]
            offsets = np.linspace(-0.18, 0.18, len(shown)) if len(shown) > 1 else [0.0]
            ax.scatter(i + np.asarray(offsets), shown, s=9, color="#08306b", zorder=3)
        for reference, style in (("baseline", "--"), ("rotate", ":")):
            if reference in entries and not np.isnan(mean[entries.index(reference)]):
                ax.axhline(mean[entries.index(reference)], color="gray", ls=style, lw=1, zorder=1)
        finite = np.concatenate(
            [[v for v in values if v is not None] for values in panel["seeds"]] + [mean]
        )
        finite = finite[np.isfinite(finite)]
        if finite.size and "forgotten" not in panel["title"]:
            low, high = float(finite.min()), float(finite.max())
            pad = max(0.02, 0.15 * (high - low))
            ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))
        elif finite.size:
            ax.set_ylim(0.0, 1.1 * float(finite.max()) or 1.0)
        ax.set_xticks(x)
        ax.set_xticklabels(entries, rotation=35, ha="right", fontsize=8)
        ax.set_title(panel["title"], fontsize=9)
        ax.grid(axis="y", alpha=0.3, zorder=0)
    settings = report["settings"]
    fig.suptitle(
        f"{settings['data']}, model {settings['model']}, {settings['epochs']} epochs: "
        f"mean ± std over {settings['seeds']} seeds (dots: seeds; dashed: baseline, "
        "dotted: rotate)",
        fontsize=9,
    )
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return Path(out)
