"""Which labels are wrong: per-pixel label-issue scores from the training dynamics.

Shape legend: P pixels of one pixel space (``P = N * H * W``), N sections of height H and width
W. A higher score means "this pixel's given label is more likely wrong". Pixels never observed
(ignored label, outside every crop) score NaN and are never ranked.

Scores (from :class:`segforget.dynamics.ForgettingStats` arrays):

- ``never_learned`` fraction of observations in which the given label was *not* predicted;
  1.0 for never-learned pixels. A mislabeled pixel is usually predicted as its true class, so
  the network only "learns" the wrong label late, by memorization, or never.
- ``forgetting``    forgetting score divided by the number of observations (never-learned pixels
  score 1, Toneva's convention that they rank first).
- ``confidence``    one minus the mean probability of the given label over training
  (dataset cartography); needs a tracker with ``confidence=True``.
- ``aum``           minus the area under the margin (mean of given-label logit minus the largest
  other logit); needs ``confidence=True``.
- ``combined``      the mean of the percentile ranks of ``never_learned``, ``confidence`` and
  ``aum`` (those available). ``forgetting`` is left out on purpose: it measures instability,
  which is highest at hard class boundaries, while a wrong label shows as *stable*
  disagreement (on the label-corruption benchmark its AUROC is below 0.5).

Scores of a run are then *opened* per section (:func:`open_scores`, a grey-level morphological
opening with a small square, on by default): interpreters' label errors are areas (a horizon
picked too deep along a stretch, a lens, a box), while correctly labeled but hard pixels line
class boundaries in bands a pixel or two wide. The opening keeps a pixel's score only as high as
the lowest score of some square around it, which removes thin bands and specks and keeps areas.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1]); s = np.array([0.1, 0.4, 0.35, 0.8])
    >>> round(roc_auc(y, s), 3), round(average_precision(y, s), 3)
    (0.75, 0.833)
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np

from segforget.analysis.test_dynamics import auroc

__all__ = [
    "ISSUE_METHODS",
    "label_issue_scores",
    "label_issue_components",
    "percentile_ranks",
    "open_scores",
    "section_issue_scores",
    "rank_pixels",
    "flag_top_fraction",
    "average_precision",
    "roc_auc",
    "label_issues_from_run",
    "display_issues",
    "write_label_issues",
]

IssueMethod = Literal["never_learned", "forgetting", "confidence", "aum", "combined"]

#: Valid label-issue score names.
ISSUE_METHODS: tuple[str, ...] = ("never_learned", "forgetting", "confidence", "aum", "combined")

#: Components the ``combined`` score averages (percentile ranks).
_COMBINED: tuple[str, ...] = ("never_learned", "confidence", "aum")


def _field(stats: Any, name: str) -> np.ndarray | None:
    value = stats.get(name) if isinstance(stats, dict) else getattr(stats, name, None)
    return None if value is None else np.asarray(value)


def label_issue_components(stats: Any) -> dict[str, np.ndarray]:
    """Every label-issue score the statistics allow, as (P,) float64 arrays (NaN = unobserved).

    Args:
        stats: a ForgettingStats (or a dict with the same field names): ``observations``,
            ``correct``, ``forgetting_score``, and optionally ``confidence`` and ``aum``.

    Returns:
        ``{"never_learned", "forgetting"[, "confidence", "aum"]}`` -> (P,) scores.
    """
    observations = _field(stats, "observations")
    correct = _field(stats, "correct")
    forgetting = _field(stats, "forgetting_score")
    if observations is None or correct is None or forgetting is None:
        raise TypeError(
            "Expected `stats` to have observations, correct and forgetting_score arrays "
            "(a ForgettingStats), got an object without them"
        )
    observations = observations.astype(np.float64)
    seen = observations > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        components = {
            "never_learned": np.where(seen, 1.0 - correct / observations, np.nan),
            "forgetting": np.where(seen, forgetting / observations, np.nan),
        }
    confidence = _field(stats, "confidence")
    if confidence is not None:
        components["confidence"] = np.where(seen, 1.0 - confidence.astype(np.float64), np.nan)
    aum = _field(stats, "aum")
    if aum is not None:
        components["aum"] = np.where(seen, -aum.astype(np.float64), np.nan)
    return components


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Average-tie ranks of the finite values scaled to (0, 1]; NaN stays NaN.

    Args:
        values: (P,) values.

    Returns:
        (P,) float64: ``rank / count`` with ties given their mean rank.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    v = values[finite]
    if v.size == 0:
        return out
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    # Ties share the mean of the 1-based ranks they occupy.
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], v.size]
    mean_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(v.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    out[finite] = ranks / v.size
    return out


def label_issue_scores(stats: Any, *, method: IssueMethod = "combined") -> np.ndarray:
    """Per-pixel label-issue scores (higher = label more likely wrong).

    Args:
        stats: a ForgettingStats (or dict of its arrays) of the training pixel space.
        method: one of :data:`ISSUE_METHODS`; ``combined`` averages the percentile ranks of
            the available components among never_learned, confidence and aum.

    Returns:
        (P,) float64, NaN where the pixel was never observed.

    Raises:
        ValueError: for an unknown method, or ``confidence``/``aum`` without confidence
            tracking.
    """
    if method not in ISSUE_METHODS:
        raise ValueError(
            f"Expected `method` to be one of {', '.join(ISSUE_METHODS)}, got {method!r}"
        )
    components = label_issue_components(stats)
    if method == "combined":
        ranks = np.stack(
            [percentile_ranks(c) for name, c in components.items() if name in _COMBINED]
        )
        with np.errstate(invalid="ignore"):
            return ranks.mean(axis=0)
    if method not in components:
        raise ValueError(
            f"Expected `stats` with confidence tracking for method {method!r}, got statistics "
            "without confidence/aum; train with tracking confidence on, or use never_learned, "
            "forgetting or combined"
        )
    return components[method]


def open_scores(
    scores: np.ndarray, section_shape: tuple[int, int], *, radius: int = 1
) -> np.ndarray:
    """Grey-level opening of per-pixel scores, section by section.

    ``out[p] = max over q near p of (min over s near q of scores[s])``, where "near" is the
    (2 * radius + 1)-square around a pixel, clipped to the section. A pixel keeps a high score
    only when a whole square around it scores high: thin bands (hard class boundaries) and specks
    drop to their neighbours' level, areas (mislabeled lenses, boxes, shifted bands) stay.
    Unobserved pixels (NaN) stay NaN and count as the lowest observed score of their section.

    Args:
        scores: (P,) per-pixel scores, ``P = N * H * W``.
        section_shape: (H, W).
        radius: half-size of the square; 0 returns a copy.

    Returns:
        (P,) float64.
    """
    from scipy import ndimage

    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"Expected `radius` to be an integer >= 0, got {radius!r}")
    height, width = (int(v) for v in section_shape)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if height < 1 or width < 1 or scores.size % (height * width):
        raise ValueError(
            f"Expected `scores` to hold N * {height} * {width} values (section_shape), got "
            f"{scores.size}"
        )
    if radius == 0:
        return scores.copy()
    sections = scores.reshape(-1, height, width)
    observed = np.isfinite(sections)
    lowest = np.where(observed, sections, np.inf).min(axis=(1, 2))  # +inf: nothing observed
    filled = np.where(observed, sections, np.where(np.isfinite(lowest), lowest, 0.0)[:, None, None])
    size = (1, 2 * radius + 1, 2 * radius + 1)
    # Outside the section counts as +inf for the minimum and -inf for the maximum: clipped squares.
    eroded = ndimage.grey_erosion(filled, size=size, mode="constant", cval=np.inf)
    opened = ndimage.grey_dilation(eroded, size=size, mode="constant", cval=-np.inf)
    return np.where(observed, opened, np.nan).reshape(-1)


def section_issue_scores(
    scores: np.ndarray,
    *,
    num_sections: int,
    reduce: Literal["mean", "top"] = "top",
    top_fraction: float = 0.02,
) -> np.ndarray:
    """Aggregate per-pixel issue scores into one score per section.

    ``top`` (default) averages the highest ``top_fraction`` of each section's observed pixel
    scores, so a small mislabeled lens is not diluted by a large clean section; ``mean``
    averages all observed pixels.

    Args:
        scores: (P,) per-pixel scores (NaN = unobserved), ``P = num_sections * H * W``.
        num_sections: N.
        reduce: ``"top"`` or ``"mean"``.
        top_fraction: fraction in (0, 1] of pixels ``top`` averages (at least one pixel).

    Returns:
        (N,) float64, NaN for sections without an observed pixel.
    """
    if reduce not in ("mean", "top"):
        raise ValueError(f"Expected `reduce` to be 'mean' or 'top', got {reduce!r}")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"Expected `top_fraction` to be in (0, 1], got {top_fraction}")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if num_sections <= 0 or scores.size % num_sections:
        raise ValueError(
            f"Expected `scores` to hold num_sections * H * W pixels (num_sections={num_sections}),"
            f" got {scores.size} values"
        )
    per_section = scores.reshape(num_sections, -1)  # (N, H*W)
    counts = np.isfinite(per_section).sum(axis=1)
    # NaN sorts last in np.sort, so descending order puts finite values first.
    ordered = -np.sort(-np.where(np.isfinite(per_section), per_section, -np.inf), axis=1)
    if reduce == "mean":
        keep = counts
    else:
        keep = np.maximum(np.ceil(top_fraction * counts).astype(np.int64), 1)
    columns = np.arange(per_section.shape[1])[None, :]
    mask = columns < keep[:, None]
    sums = np.where(mask, ordered, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(keep, 1), np.nan)


def rank_pixels(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Pixel indices by descending score (ties: lower index first), NaN excluded.

    Args:
        scores: (P,) per-pixel scores.
        k: keep the first ``k`` (default: all observed).

    Returns:
        (min(k, observed),) int64 pixel indices.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    finite = np.flatnonzero(np.isfinite(scores))
    order = finite[np.lexsort((finite, -scores[finite]))]
    return order if k is None else order[: max(int(k), 0)]


def flag_top_fraction(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``fraction`` highest-scoring observed pixels (the suspected issues).

    Args:
        scores: (P,) per-pixel scores (NaN = unobserved, never flagged).
        fraction: in [0, 1], share of observed pixels to flag (rounded up).

    Returns:
        (P,) bool.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"Expected `fraction` to be in [0, 1], got {fraction}")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    observed = int(np.isfinite(scores).sum())
    mask = np.zeros(scores.shape, dtype=bool)
    mask[rank_pixels(scores, int(np.ceil(fraction * observed)))] = True
    return mask


def _binary_inputs(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(
            f"Expected `y_true` and `scores` to have the same size, got {y.size} and {s.size}"
        )
    keep = np.isfinite(s)
    y, s = y[keep].astype(bool), s[keep]
    if y.all() or not y.any():
        raise ValueError(
            "Expected `y_true` to contain both positives and negatives among scored pixels, "
            f"got {int(y.sum())} positives of {y.size}"
        )
    return y, s


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of ranking positives (true label errors) first.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds taken from high to
    low (tied scores enter together), the definition scikit-learn uses. NaN scores are dropped.

    Args:
        y_true: (P,) bool or 0/1, True where the label is wrong.
        scores: (P,) scores, higher = more likely wrong.

    Returns:
        AP in [0, 1]; a random ranking scores about the positive rate.
    """
    y, s = _binary_inputs(y_true, scores)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_threshold = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    true_positives = np.cumsum(y)[last_of_threshold]
    predicted = last_of_threshold + 1
    precision = true_positives / predicted
    recall = true_positives / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative).

    Ties count one half (the Mann-Whitney statistic). NaN scores are dropped.

    Args:
        y_true: (P,) bool or 0/1, True where the label is wrong.
        scores: (P,) scores.

    Returns:
        AUROC in [0, 1]; 0.5 is chance.
    """
    y, s = _binary_inputs(y_true, scores)
    return float(auroc(s, y))


# --------------------------------------------------------------------------- runs


def label_issues_from_run(
    run: Any,
    *,
    method: IssueMethod = "combined",
    mode: str = "epoch",
    view: str | None = None,
    fraction: float = 0.02,
    top_pixels: int = 1000,
    reduce: Literal["mean", "top"] = "top",
    opening: int = 1,
) -> dict[str, Any]:
    """Rank a run's training pixels and sections by how likely their label is wrong.

    Args:
        run: a :class:`segforget.train.Run` or a run directory.
        method: one of :data:`ISSUE_METHODS`.
        mode: recording mode whose training statistics are read.
        view: one view (default: every tracked view of the training space).
        fraction: share of observed pixels flagged as suspected label issues.
        top_pixels: how many of the highest-scoring pixels to list.
        reduce: section aggregation (see :func:`section_issue_scores`).
        opening: radius of the per-section opening of the scores (:func:`open_scores`;
            0: raw scores).

    Returns:
        ``{"pixels": [...], "sections": [...], "scores": {view: (P,)}, "flagged": {view: (P,)},
        "spaces": {view: (num_sections, H, W)}}``; pixel rows hold
        ``rank, split, view, section, h, w, score``; section rows hold
        ``rank, split, view, section, score, flagged, observed``. Ranks are global over views.

    Raises:
        ValueError: if the run tracked no training statistics in ``mode``.
    """
    if isinstance(run, (str, os.PathLike)):
        from segforget.train import load_run

        run = load_run(run)
    views = sorted(v for m, s, v in run.available_stats() if m == mode and s == "train")
    if view is not None:
        views = [v for v in views if v == view]
    if not views:
        raise ValueError(
            f"Expected the run to hold training statistics in {mode} mode"
            f"{f' for view {view!r}' if view else ''}, got none; "
            "train with tracking on (--set track.mode=epoch)"
        )
    pixel_rows: list[dict[str, Any]] = []
    section_rows: list[dict[str, Any]] = []
    out_scores: dict[str, np.ndarray] = {}
    out_flagged: dict[str, np.ndarray] = {}
    spaces: dict[str, tuple[int, int, int]] = {}
    for space_view in views:
        stats = run.stats(mode, "train", space_view)
        num_sections = int(stats.meta["num_sections"])
        height, width = (int(v) for v in stats.meta["section_shape"])
        scores = open_scores(
            label_issue_scores(stats, method=method), (height, width), radius=opening
        )
        flagged = flag_top_fraction(scores, fraction)
        out_scores[space_view], out_flagged[space_view] = scores, flagged
        spaces[space_view] = (num_sections, height, width)
        for pixel in rank_pixels(scores, top_pixels):
            section, rest = divmod(int(pixel), height * width)
            h, w = divmod(rest, width)
            pixel_rows.append(
                {
                    "split": "train",
                    "view": space_view,
                    "section": section,
                    "h": h,
                    "w": w,
                    "score": float(scores[pixel]),
                }
            )
        per_section = section_issue_scores(scores, num_sections=num_sections, reduce=reduce)
        flagged_count = flagged.reshape(num_sections, -1).sum(axis=1)
        observed = np.isfinite(scores).reshape(num_sections, -1).sum(axis=1)
        for section in np.flatnonzero(np.isfinite(per_section)):
            section_rows.append(
                {
                    "split": "train",
                    "view": space_view,
                    "section": int(section),
                    "score": float(per_section[section]),
                    "flagged": int(flagged_count[section]),
                    "observed": int(observed[section]),
                }
            )
    pixel_rows.sort(key=lambda r: (-r["score"], r["view"], r["section"], r["h"], r["w"]))
    section_rows.sort(key=lambda r: (-r["score"], r["view"], r["section"]))
    pixel_rows = pixel_rows[:top_pixels]
    for rows in (pixel_rows, section_rows):
        for rank, row in enumerate(rows, start=1):
            row["rank"] = rank
    return {
        "pixels": pixel_rows,
        "sections": section_rows,
        "scores": out_scores,
        "flagged": out_flagged,
        "spaces": spaces,
    }


def display_issues(
    images: np.ndarray,
    given: np.ndarray,
    predicted: np.ndarray,
    suspected: np.ndarray,
    path: str | os.PathLike[str],
    *,
    titles: list[str] | None = None,
    num_classes: int | None = None,
) -> None:
    """Save a cleanlab-style figure: image, given label, prediction, suspected pixels in red.

    Args:
        images: (N, H, W) section images.
        given: (N, H, W) given labels (ignore values shown as is).
        predicted: (N, H, W) predicted classes.
        suspected: (N, H, W) bool, pixels whose label is suspected wrong.
        path: PNG file to write (atomically).
        titles: one row title per section.
        num_classes: K for a fixed colour scale of the label panels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segforget.io import atomic_path

    n = len(images)
    if n == 0:
        raise ValueError("Expected at least one section to display, got 0")
    vmax = (num_classes - 1) if num_classes else int(max(given.max(), predicted.max()))
    aspect = images.shape[2] / images.shape[1]
    fig, axes = plt.subplots(
        n, 4, figsize=(4 * 2.6 * max(aspect, 0.6), 2.6 * n + 0.4), squeeze=False
    )
    for row in range(n):
        ax = axes[row]
        ax[0].imshow(images[row], cmap="gray", aspect="auto")
        ax[1].imshow(
            np.ma.masked_greater(given[row], vmax),
            cmap="tab10",
            vmin=0,
            vmax=9,
            aspect="auto",
            interpolation="nearest",
        )
        ax[2].imshow(
            predicted[row], cmap="tab10", vmin=0, vmax=9, aspect="auto", interpolation="nearest"
        )
        ax[3].imshow(images[row], cmap="gray", aspect="auto")
        overlay = np.zeros((*suspected[row].shape, 4))
        overlay[suspected[row]] = (1.0, 0.0, 0.0, 0.85)
        ax[3].imshow(overlay, aspect="auto", interpolation="nearest")
        for a, name in zip(ax, ("image", "given label", "prediction", "suspected (red)")):
            a.set_xticks([])
            a.set_yticks([])
            if row == 0:
                a.set_title(name)
        if titles:
            ax[0].set_ylabel(titles[row], fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def write_label_issues(
    run: Any,
    result: dict[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    num_display: int = 4,
    overwrite: bool = False,
    before_replace: Any = None,
) -> None:
    """Write ``pixels.csv``, ``sections.csv``, ``summary.json`` and ``issues.png`` to a folder.

    Args:
        run: the Run (or directory) that :func:`label_issues_from_run` read.
        result: what :func:`label_issues_from_run` returned.
        out_dir: output folder, replaced as a whole (atomically).
        num_display: how many of the top sections the figure shows.
        overwrite: replace an existing folder.
        before_replace: optional check run just before the folder is replaced (see
            :func:`segforget.io.atomic_directory`).

    Raises:
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    import csv
    import io
    from pathlib import Path

    from segforget.io import atomic_directory, atomic_write_json, atomic_write_text

    if isinstance(run, (str, os.PathLike)):
        from segforget.train import load_run

        run = load_run(run)

    def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    with atomic_directory(out_dir, overwrite=overwrite, before_replace=before_replace) as tmp:
        tmp = Path(tmp)
        atomic_write_text(
            tmp / "pixels.csv",
            csv_text(result["pixels"], ["rank", "split", "view", "section", "h", "w", "score"]),
        )
        atomic_write_text(
            tmp / "sections.csv",
            csv_text(
                result["sections"],
                ["rank", "split", "view", "section", "score", "flagged", "observed"],
            ),
        )
        flagged_total = int(sum(f.sum() for f in result["flagged"].values()))
        observed_total = int(sum(np.isfinite(s).sum() for s in result["scores"].values()))
        atomic_write_json(
            tmp / "summary.json",
            {
                "flagged_pixels": flagged_total,
                "observed_pixels": observed_total,
                "top_sections": result["sections"][:10],
            },
        )
        shown = result["sections"][:num_display]
        if shown:
            from segforget.analysis.active_learning import _run_data

            data = _run_data(run)
            images, given, predicted, suspected, titles = [], [], [], [], []
            for row in shown:
                view, section = row["view"], int(row["section"])
                _, height, width = result["spaces"][view]
                image = data.seismic_sections("train+val", view, sections=[section])[0]
                images.append(image if image.ndim == 2 else image[0])
                given.append(data.label_sections("train+val", view, sections=[section])[0])
                predicted.append(np.asarray(run.predictions("train", view)[section]))
                start = section * height * width
                flagged = result["flagged"][view][start : start + height * width]
                suspected.append(flagged.reshape(height, width))
                titles.append(f"#{row['rank']} {view} {section}: {row['score']:.3g}")
            same_size = len({im.shape for im in images}) == 1
            if not same_size:  # one figure needs one size: keep the first view's sections
                keep = [i for i, im in enumerate(images) if im.shape == images[0].shape]
                images, given, predicted, suspected, titles = (
                    [seq[i] for i in keep] for seq in (images, given, predicted, suspected, titles)
                )
            display_issues(
                np.stack(images),
                np.stack(given),
                np.stack(predicted),
                np.stack(suspected),
                tmp / "issues.png",
                titles=titles,
                num_classes=data.num_classes,
            )
