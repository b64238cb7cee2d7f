"""Matplotlib figures (Agg backend, PNG) of the analysis, and small section images (Pillow).

Every function takes plain arrays or the plain data that :mod:`segforget.analysis` returns and
writes one file atomically; nothing here computes a statistic that the summary does not hold.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segforget.io import atomic_path
from segforget.viz.numbers import format_percent

__all__ = [
    "class_colors",
    "plot_forgetting_section",
    "plot_histograms",
    "plot_boundary_curve",
    "plot_margin_curve",
    "plot_data_map",
    "plot_timing",
    "plot_volume_slices",
    "write_correctness_gif",
    "section_images",
]

# Distinct colours, in class order (F3: upper_ns ... zechstein), readable on white.
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#edc948",
    "#76b7b2",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def class_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 RGB colours of the classes (cycled beyond 10)."""
    rgb = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in _PALETTE]
    return np.array([rgb[i % len(rgb)] for i in range(num_classes)], dtype=np.uint8)


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("matplotlib is needed for figures: pip install matplotlib") from error
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


def _seismic_limits(seismic: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(seismic, [2, 98])
    bound = max(abs(float(lo)), abs(float(hi)), 1e-6)
    return -bound, bound


def _label_rgb(labels: np.ndarray, num_classes: int) -> np.ndarray:
    colors = class_colors(num_classes)
    rgb = np.full(labels.shape + (3,), 255, dtype=np.uint8)  # ignored labels white
    valid = (labels >= 0) & (labels < num_classes)
    rgb[valid] = colors[labels[valid]]
    return rgb


def _one_sided_edge(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels whose lower or right neighbour has another valid class: a 1-px boundary line."""
    valid = (labels >= 0) & (labels < num_classes)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1] |= valid[:-1] & valid[1:] & (labels[:-1] != labels[1:])
    edge[:, :-1] |= valid[:, :-1] & valid[:, 1:] & (labels[:, :-1] != labels[:, 1:])
    return edge


def plot_forgetting_section(
    path: str | os.PathLike[str],
    *,
    seismic: np.ndarray,
    labels: np.ndarray,
    prediction: np.ndarray | None,
    forgetting_events: np.ndarray,
    class_names: Sequence[str],
    title: str,
    xlabel: str = "column",
    ylabel: str = "row",
) -> Path:
    """Forgetting map of one (H, W) section: seismic in grey with forgetting events overlaid
    (colour bar), the labels and the final prediction beside it, label boundaries drawn (cyan on
    the seismic, black on the prediction)."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    c = len(class_names)
    h, w = labels.shape
    wide = w > 1.4 * h
    panels = 3 if prediction is not None else 2
    if wide:
        fig, axes = plt.subplots(
            panels, 1, figsize=(10, 2 + panels * 10 * h / w * 0.95), constrained_layout=True
        )
    else:
        fig, axes = plt.subplots(
            1, panels, figsize=(4.2 * panels + 1, 4.4), constrained_layout=True
        )
    edge = np.ma.masked_where(~_one_sided_edge(labels, c), np.ones(labels.shape))
    lo, hi = _seismic_limits(seismic)
    ax = axes[0]
    ax.imshow(seismic, cmap="gray", vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
    ev = np.ma.masked_where(forgetting_events <= 0, forgetting_events)
    positive = forgetting_events[forgetting_events > 0]
    vmax = max(1, int(np.ceil(np.percentile(positive, 99)))) if positive.size else 1
    # One colour per event count (the colour bar reads as integers); plasma without its darkest
    # third, so that even one event stands out on grey seismic.
    cmap = ListedColormap(plt.get_cmap("plasma")(np.linspace(0.4, 1.0, vmax)))
    im = ax.imshow(
        ev, cmap=cmap, vmin=0.5, vmax=vmax + 0.5, aspect="auto", interpolation="nearest", alpha=0.85
    )
    ax.imshow(edge, cmap=ListedColormap(["#00e5ff"]), aspect="auto", interpolation="nearest")
    cbar = fig.colorbar(
        im, ax=ax, fraction=0.04, pad=0.01, ticks=np.arange(1, vmax + 1, max(1, vmax // 8))
    )
    cbar.set_label(
        "forgetting events" + (" (top: >=)" if positive.size and positive.max() > vmax else "")
    )
    ax.set_title("forgetting events over seismic")
    ax = axes[1]
    ax.imshow(_label_rgb(labels, c), aspect="auto", interpolation="nearest")
    ax.set_title("labels")
    handles = [
        Patch(color=class_colors(c)[i] / 255, label=name) for i, name in enumerate(class_names)
    ]
    if prediction is not None:
        ax = axes[2]
        ax.imshow(
            _label_rgb(prediction.astype(np.int64), c), aspect="auto", interpolation="nearest"
        )
        ax.imshow(
            edge, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest", alpha=0.6
        )
        wrong = (
            float(np.mean(prediction[labels < c] != labels[labels < c]))
            if (labels < c).any()
            else 0
        )
        ax.set_title(f"final prediction ({wrong:.1%} wrong)")
    fig.suptitle(f"{title} (lines: label boundaries)")
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(c, 6), fontsize=8, frameon=False
    )
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    return _save(fig, path)


def plot_histograms(path: str | os.PathLike[str], overview: dict[str, Any]) -> Path:
    """Histogram of forgetting events (log scale, threshold k marked) and per-class rates."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    hist = np.asarray(overview["histogram"], dtype=float)
    k = overview["k"]
    colors = ["#4e79a7" if e < k else "#e15759" for e in range(len(hist))]
    a.bar(np.arange(len(hist)), np.maximum(hist, 0.5), color=colors, width=0.9)
    a.set_yscale("log")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_xlabel("forgetting events per pixel")
    a.set_ylabel("pixels (log)")
    a.set_title(f"forgetting events per pixel (red: frequently forgotten, k >= {k})")
    names = list(overview["per_class"])
    means = [overview["per_class"][n]["mean_forgetting_events"] or 0 for n in names]
    freq = [overview["per_class"][n]["frequently_forgotten"] or 0 for n in names]
    x = np.arange(len(names))
    colors = class_colors(len(names)) / 255
    b.bar(x, means, color=colors)
    for i, (m, f) in enumerate(zip(means, freq)):
        b.text(i, m, f"{format_percent(f)}\nfrequent", ha="center", va="bottom", fontsize=7)
    b.set_xticks(x, names, rotation=20)
    b.set_ylabel("mean forgetting events per pixel")
    b.set_title("per class (label above: share frequently forgotten)")
    b.set_ylim(0, max(means + [1e-3]) * 1.3)
    return _save(fig, path)


def plot_boundary_curve(path: str | os.PathLike[str], boundary: dict[str, Any]) -> Path:
    """Mean forgetting events and forgotten fraction against distance to the label boundary."""
    plt = _pyplot()
    curve = [b for b in boundary["curve"] if b["pixels"] > 0]
    d = [b["distance"] for b in curve]
    fig, ax = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    ax.plot(
        d,
        [b["mean_forgetting_events"] for b in curve],
        "o-",
        color="#e15759",
        label="mean forgetting events",
    )
    ax.axvspan(-0.5, 2.5, color="#edc948", alpha=0.25, label="within 2 px")
    ax2 = ax.twinx()
    ax2.plot(
        d,
        [b["forgotten_fraction"] for b in curve],
        "s--",
        color="#4e79a7",
        ms=3,
        label="share forgotten at least once",
    )
    ax.set_xlabel("distance to nearest label boundary (px; last point: farther / none)")
    ax.set_ylabel("mean forgetting events", color="#e15759")
    ax2.set_ylabel("share forgotten", color="#4e79a7")
    e = boundary.get("enrichment_2px")
    ax.set_title(
        f"forgetting vs distance to class boundary (enrichment within 2 px: {e:.2f}x)"
        if e is not None
        else "forgetting vs distance to class boundary"
    )
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="upper right")
    return _save(fig, path)


def plot_margin_curve(path: str | os.PathLike[str], margin: dict[str, Any]) -> Path:
    """Mean forgetting events in quantile bins of the mean margin (AUM) and of the confidence."""
    plt = _pyplot()
    keys = [k for k in ("aum", "confidence") if f"curve_{k}" in margin]
    fig, axes = plt.subplots(
        1, len(keys), figsize=(5.5 * len(keys), 3.8), constrained_layout=True, squeeze=False
    )
    labels = {
        "aum": "mean margin (true logit - largest other)",
        "confidence": "confidence (mean true-class probability)",
    }
    for ax, key in zip(axes[0], keys):
        curve = margin[f"curve_{key}"]
        mid = [(b["low"] + b["high"]) / 2 for b in curve]
        ax.plot(mid, [b["mean_forgetting_events"] for b in curve], "o-", color="#e15759")
        if key == "aum":
            ax.axvline(0, color="grey", lw=0.8, ls=":")
        rho = margin.get(f"spearman_events_vs_{key}")
        ax.set_title(f"Spearman rho = {rho:.2f}" if rho is not None else "Spearman undefined")
        ax.set_xlabel(labels[key] + " (equal-count bins)")
        ax.set_ylabel("mean forgetting events")
    fig.suptitle(f"decision-boundary proximity ({margin['sample_pixels']:,} sampled pixels)")
    return _save(fig, path)


def plot_data_map(path: str | os.PathLike[str], data_map: dict[str, Any]) -> Path:
    """Confidence vs variability: pixel density and mean forgetting events per bin."""
    plt = _pyplot()
    counts = np.asarray(data_map["counts"], dtype=float)
    mean = np.array([[np.nan if v is None else v for v in row] for row in data_map["mean_events"]])
    ce, ve = data_map["confidence_edges"], data_map["variability_edges"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    im = a.pcolormesh(
        ve, ce, np.ma.masked_where(counts == 0, np.log10(np.maximum(counts, 1))), cmap="viridis"
    )
    fig.colorbar(im, ax=a, label="log10 pixels")
    a.set_title("pixel density")
    im = b.pcolormesh(ve, ce, np.ma.masked_invalid(mean), cmap="plasma")
    fig.colorbar(im, ax=b, label="mean forgetting events")
    b.set_title("coloured by forgetting (ambiguous region: variability >= 0.2)")
    for ax in (a, b):
        ax.set_xlabel("variability (std of true-class probability)")
        ax.set_ylabel("confidence (mean true-class probability)")
        ax.axvline(0.2, color="white", lw=0.8, ls="--")
        ax.axhline(0.5, color="white", lw=0.8, ls="--")
    return _save(fig, path)


def plot_timing(path: str | os.PathLike[str], timing: dict[str, Any]) -> Path:
    """When pixels are first learned and when forgetting events happen; timing categories."""
    plt = _pyplot()
    has = timing.get("history_available", False)
    fig, axes = plt.subplots(
        1,
        3 if has else 1,
        figsize=(14 if has else 5.5, 3.6),
        constrained_layout=True,
        squeeze=False,
    )
    a = axes[0][0]
    fl = timing["first_learned_histogram"]
    a.bar(np.arange(len(fl)), fl, color="#59a14f")
    a.set_xlabel("observation (epoch) of first correct prediction")
    a.set_ylabel("pixels")
    a.set_title(f"first learned ({timing['never_learned_pixels']:,} never learned)")
    if has:
        ev = timing["forgetting_events_by_observation"]
        axes[0][1].bar(np.arange(len(ev)), ev, color="#e15759")
        axes[0][1].set_xlabel("observation (epoch) of the forgetting event")
        axes[0][1].set_ylabel("forgetting events")
        axes[0][1].set_title("when forgetting happens")
        cats = timing["categories"]
        names = [n.replace("_", " ") for n in cats]
        axes[0][2].barh(names, list(cats.values()), color=["#4e79a7", "#f28e2b", "#e15759"])
        axes[0][2].set_xlabel("forgotten pixels")
        axes[0][2].set_title("forgotten pixels by timing")
    return _save(fig, path)


def plot_volume_slices(
    path: str | os.PathLike[str],
    volume: np.ndarray,
    *,
    inline: int,
    crossline: int,
    depth: int,
) -> Path:
    """Inline, crossline and depth slices of the voxel forgetting volume (I, X, D)."""
    plt = _pyplot()
    vmax = max(1.0, float(np.percentile(volume, 99.5)))
    fig, axes = plt.subplots(
        1,
        3,
        figsize=(15, 4),
        constrained_layout=True,
        gridspec_kw={"width_ratios": [volume.shape[1], volume.shape[0], volume.shape[1]]},
    )
    panels = (
        (volume[inline].T, f"inline {inline}", "crossline", "depth"),
        (volume[:, crossline].T, f"crossline {crossline}", "inline", "depth"),
        (volume[:, :, depth], f"depth slice {depth}", "crossline", "inline"),
    )
    for ax, (img, title, xl, yl) in zip(axes, panels):
        im = ax.imshow(img, cmap="magma", vmin=0, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_title(title + " (most forgetting)")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    fig.colorbar(im, ax=axes, label="forgetting events, inline + crossline views", shrink=0.9)
    return _save(fig, path)


def write_correctness_gif(
    path: str | os.PathLike[str],
    history: np.ndarray,
    shape: tuple[int, int],
    *,
    title: str = "",
    max_width: int = 480,
) -> Path:
    """Animated GIF of one section's correctness per observation (epoch).

    Args:
        history: (H*W, T) int8 correctness (1 correct, 0 wrong, -1 not observed).
        shape: (H, W) of the section.
        title: drawn on every frame with the epoch number.

    Colours: green correct, red wrong, grey not observed.
    """
    from PIL import Image, ImageDraw

    h, w = shape
    t = history.shape[1]
    lut = np.array([[200, 200, 200], [214, 39, 40], [89, 161, 79]], dtype=np.uint8)
    scale = min(8.0, max_width / w)  # small sections are enlarged (nearest) to stay legible
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    frames = []
    for i in range(t):
        frame = lut[history[:, i].astype(np.int64) + 1].reshape(h, w, 3)
        img = Image.fromarray(frame).resize(size, Image.NEAREST)
        canvas = Image.new("RGB", (size[0], size[1] + 18), (255, 255, 255))
        canvas.paste(img, (0, 18))
        ImageDraw.Draw(canvas).text(
            (4, 3), f"{title} epoch {i + 1}/{t}  green correct, red wrong", fill=(0, 0, 0)
        )
        frames.append(canvas.convert("P", palette=Image.ADAPTIVE, colors=16))
    with atomic_path(path) as tmp:
        frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=400, loop=0
        )
    return Path(path)


def _png(pixels: np.ndarray, max_width: int) -> bytes:
    """PNG bytes of (H, W) grey or (H, W, 3) RGB uint8 pixels, at most ``max_width`` wide
    (nearest-neighbour resize). zlib level 3: about ten times faster to encode than PIL's
    ``optimize``, for slightly larger files."""
    from PIL import Image

    img = Image.fromarray(pixels)
    if img.width > max_width:
        img = img.resize(
            (max_width, max(1, round(img.height * max_width / img.width))), Image.NEAREST
        )
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def section_images(
    *,
    seismic: np.ndarray,
    labels: np.ndarray,
    prediction: np.ndarray | None,
    forgetting_events: np.ndarray,
    num_classes: int,
    vmax: float,
    max_width: int = 520,
) -> dict[str, bytes]:
    """PNG bytes of one (H, W) section for the report's browser: ``seismic`` (grey),
    ``labels``, ``prediction`` (class colours) and ``forgetting`` (events over grey seismic,
    colour scale 0..``vmax`` shared by all sections)."""
    import matplotlib

    lo, hi = _seismic_limits(seismic)
    grey = (np.clip((seismic - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    grey_rgb = np.repeat(grey[..., None], 3, axis=-1)
    out = {
        "seismic": _png(grey, max_width),
        "labels": _png(_label_rgb(labels, num_classes), max_width),
    }
    if prediction is not None:
        out["prediction"] = _png(_label_rgb(prediction.astype(np.int64), num_classes), max_width)
    cmap = matplotlib.colormaps["plasma"]
    ev = np.clip(forgetting_events / max(vmax, 1), 0, 1)
    colored = (cmap(ev)[..., :3] * 255).astype(np.uint8)
    dim = (grey_rgb * 0.6).astype(np.uint8)
    out["forgetting"] = _png(np.where((forgetting_events > 0)[..., None], colored, dim), max_width)
    return out
