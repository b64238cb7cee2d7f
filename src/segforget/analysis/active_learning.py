"""Which sections to label next: acquisition scores from learning dynamics and from the model.

Shape legend: P pixels of one pixel space (``P = N * H * W``), N sections of height H and width
W, C classes. A pixel space orders pixels section by section
(``pixel_index = section * H * W + h * W + w``), so per-pixel arrays reshape to ``(N, H * W)``.

Strategies (a higher score means "label this section first"):

- ``switch``      mean number of prediction switches per observed pixel (needs no labels; the
  forgetful active learning of Benkert et al.).
- ``gauss``       Gaussian switch sampling: a two-component Gaussian mixture is fitted to the
  per-section switch scores and sections are drawn at random from the high component.
- ``forgetting``  mean forgetting score per observed pixel (needs labels of the pool: an oracle
  upper reference, not a deployable strategy).
- ``entropy``     mean predictive entropy of the final model.
- ``margin``      one minus the mean probability margin (top-1 minus top-2) of the final model.
- ``random``      uniform random scores (seeded).

Example:
    >>> import numpy as np
    >>> switches = np.array([0, 0, 2, 2, 5, 5, 1, 1])      # 4 sections of 1 x 2 pixels
    >>> scores = pixel_to_section_scores(switches, num_sections=4)
    >>> rank_sections(scores, 2).tolist()
    [2, 1]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from segforget.compare import holm, paired_differences
from segforget.ops import class_argmax

__all__ = [
    "STRATEGIES",
    "LABEL_FREE_STRATEGIES",
    "GaussianMixture1D",
    "fit_gaussian_mixture",
    "pixel_to_section_scores",
    "entropy_section_scores",
    "margin_section_scores",
    "random_section_scores",
    "rank_mean_scores",
    "rank_sections",
    "gaussian_switch_sampling",
    "select_sections",
    "spaced_choice",
    "section_uncertainty",
    "pixel_uncertainty",
    "patch_grid",
    "pixel_to_patch_scores",
    "pool_spaces",
    "load_final_model",
    "select_from_run",
    "plot_selection",
    "simulate_active_learning",
    "paired_curves",
    "paired_differences",
    "RoundTraining",
    "default_track_warmup",
    "pool_pass_steps",
    "plot_learning_curves",
    "write_selection",
]

Strategy = Literal["switch", "gauss", "switch-entropy", "forgetting", "entropy", "margin", "random"]

#: Valid strategy names, in the order the CLI lists them.
STRATEGIES: tuple[str, ...] = (
    "switch",
    "gauss",
    "switch-entropy",
    "forgetting",
    "entropy",
    "margin",
    "random",
)

#: Strategies that need no labels of the pool.
LABEL_FREE_STRATEGIES: tuple[str, ...] = (
    "switch",
    "gauss",
    "switch-entropy",
    "entropy",
    "margin",
    "random",
)


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Expected `strategy` to be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )


def pixel_to_section_scores(
    values: np.ndarray,
    *,
    num_sections: int,
    observed: np.ndarray | None = None,
) -> np.ndarray:
    """Average a per-pixel value over the observed pixels of each section.

    Args:
        values: (P,) per-pixel values, ``P = num_sections * H * W``.
        num_sections: N, the number of sections of the pixel space.
        observed: (P,) bool, pixels that count (default: all). Sections without an observed
            pixel score NaN.

    Returns:
        (N,) float64 section scores.

    Raises:
        ValueError: if the lengths do not match ``num_sections``.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if num_sections <= 0 or values.size % num_sections:
        raise ValueError(
            f"Expected `values` to hold num_sections * H * W pixels (num_sections={num_sections}),"
            f" got {values.size} values"
        )
    per_section = values.reshape(num_sections, -1)  # (N, H*W)
    if observed is None:
        mask = np.ones_like(per_section, dtype=bool)
    else:
        observed = np.asarray(observed, dtype=bool).ravel()
        if observed.size != values.size:
            raise ValueError(
                f"Expected `observed` to have {values.size} entries like `values`, "
                f"got {observed.size}"
            )
        mask = observed.reshape(num_sections, -1)
    counts = mask.sum(axis=1)
    sums = np.where(mask, per_section, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def patch_grid(height: int, width: int, patch: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Non-overlapping windows covering an (H, W) section, row by row.

    Windows at the bottom and right edges are clipped to the section (smaller than ``patch``);
    a patch larger than the section is the whole section.

    Args:
        height, width: section shape (H, W).
        patch: (patch height, patch width), both >= 1.

    Returns:
        ``(row, col, height, width)`` of every window.

    Example:
        >>> patch_grid(3, 5, (2, 3))
        [(0, 0, 2, 3), (0, 3, 2, 2), (2, 0, 1, 3), (2, 3, 1, 2)]
    """
    ph, pw = (int(v) for v in patch)
    if ph < 1 or pw < 1:
        raise ValueError(f"Expected `patch` to be two sizes >= 1, got {tuple(patch)}")
    return [
        (row, col, min(ph, height - row), min(pw, width - col))
        for row in range(0, height, ph)
        for col in range(0, width, pw)
    ]


def pixel_to_patch_scores(
    values: np.ndarray,
    *,
    num_sections: int,
    section_shape: tuple[int, int],
    patch: tuple[int, int],
    observed: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Average a per-pixel value over the observed pixels of every window of every section.

    Args:
        values: (P,) per-pixel values, ``P = num_sections * H * W``.
        num_sections: N.
        section_shape: (H, W).
        patch: window size (see :func:`patch_grid`).
        observed: (P,) bool, pixels that count (default: all). Windows without an observed
            pixel score NaN.

    Returns:
        ((N, T) float64 scores, the T windows of :func:`patch_grid`).
    """
    height, width = (int(v) for v in section_shape)
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size != num_sections * height * width:
        raise ValueError(
            f"Expected `values` to hold num_sections * H * W = {num_sections} * {height} * "
            f"{width} pixels, got {values.size}"
        )
    mask = (
        np.ones(values.size, dtype=bool)
        if observed is None
        else np.asarray(observed, dtype=bool).ravel()
    )
    if mask.size != values.size:
        raise ValueError(
            f"Expected `observed` to have {values.size} entries like `values`, got {mask.size}"
        )
    grid = patch_grid(height, width, patch)
    cube = np.where(mask, values, 0.0).reshape(num_sections, height, width)
    seen = mask.reshape(num_sections, height, width)
    scores = np.empty((num_sections, len(grid)))
    for t, (row, col, h, w) in enumerate(grid):
        window = np.s_[:, row : row + h, col : col + w]
        counts = seen[window].sum(axis=(1, 2))
        sums = cube[window].sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            scores[:, t] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return scores, grid


def _check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 4:
        raise ValueError(
            "Expected `probabilities` to have shape (N, C, H, W), "
            f"got shape {tuple(probabilities.shape)}"
        )
    return probabilities


def entropy_section_scores(probabilities: np.ndarray) -> np.ndarray:
    """Mean predictive entropy (natural log) of each section.

    Args:
        probabilities: (N, C, H, W) class probabilities of the final model (sum to 1 over C).

    Returns:
        (N,) float64.
    """
    p = _check_probabilities(probabilities)
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)  # (N, H, W)
    return entropy.reshape(len(p), -1).mean(axis=1)


def margin_section_scores(probabilities: np.ndarray) -> np.ndarray:
    """One minus the mean probability margin (top-1 minus top-2) of each section.

    Args:
        probabilities: (N, C, H, W) class probabilities, C >= 2.

    Returns:
        (N,) float64; 1 means "the model cannot decide anywhere", 0 "fully sure everywhere".
    """
    p = _check_probabilities(probabilities)
    if p.shape[1] < 2:
        raise ValueError(f"Expected `probabilities` to have C >= 2 classes, got C={p.shape[1]}")
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]  # (N, 2, H, W): 2nd largest, largest
    margin = top2[:, 1] - top2[:, 0]
    return 1.0 - margin.reshape(len(p), -1).mean(axis=1)


def random_section_scores(num_sections: int, *, seed: int | Sequence[int]) -> np.ndarray:
    """Uniform random scores in [0, 1), reproducible by ``seed`` (an int or a sequence of ints,
    as :func:`numpy.random.default_rng` takes it)."""
    return np.random.default_rng(seed).random(num_sections)


def rank_mean_scores(*scores: np.ndarray) -> np.ndarray:
    """Combine score vectors of the same units by the mean of their rank fractions.

    Each vector is ranked (1 = lowest, ties share their average rank) and divided by its
    length, so every score counts equally whatever its scale; ``switch-entropy`` combines the
    switch and entropy scores of a pool this way.

    Args:
        *scores: two or more (N,) finite score vectors of the same N units (higher = label
            first).

    Returns:
        (N,) float64 in (0, 1]: the mean rank fraction of every unit.

    Raises:
        ValueError: fewer than two vectors, different lengths, or non-finite scores.
    """
    from scipy.stats import rankdata

    arrays = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores]
    if len(arrays) < 2 or len({a.size for a in arrays}) != 1:
        raise ValueError(
            f"Expected two or more score vectors of one length, got lengths "
            f"{[a.size for a in arrays]}"
        )
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("Expected finite scores to rank, got NaN or inf")
    if arrays[0].size == 0:
        return np.zeros(0)
    return np.mean([rankdata(a) / a.size for a in arrays], axis=0)


def rank_sections(scores: np.ndarray, n: int, *, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` highest-scoring sections, best first.

    Ties go to the lower index; NaN scores and ``exclude``-d sections are never chosen.

    Args:
        scores: (N,) section scores.
        n: how many to choose (fewer are returned when fewer are eligible).
        exclude: indices (e.g. sections already labeled) not to choose.

    Returns:
        (min(n, eligible),) int64 indices into ``scores``.

    Raises:
        ValueError: if ``n`` is not positive.
    """
    if n <= 0:
        raise ValueError(f"Expected `n` to be a positive number of sections, got {n}")
    scores = np.asarray(scores, dtype=np.float64)
    eligible = _eligible(scores, exclude)
    candidates = np.flatnonzero(eligible)
    # lexsort: last key is primary -> descending score, then ascending index.
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:n]].astype(np.int64)


def _eligible(scores: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    eligible = np.isfinite(scores)
    if exclude is not None and len(exclude):
        eligible[np.asarray(exclude, dtype=np.int64)] = False
    return eligible


@dataclass(frozen=True)
class GaussianMixture1D:
    """A fitted two-component 1-D Gaussian mixture; component 1 has the larger mean."""

    weights: np.ndarray  # (2,)
    means: np.ndarray  # (2,)
    variances: np.ndarray  # (2,)
    log_likelihood: float
    iterations: int

    def responsibilities(self, x: np.ndarray) -> np.ndarray:
        """Posterior probability of each component: (len(x), 2)."""
        return _responsibilities(np.asarray(x, dtype=np.float64), self)[0]


def _log_gauss(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x[:, None] - mean) ** 2 / var)  # (n, 2)


def _responsibilities(x: np.ndarray, gmm: GaussianMixture1D) -> tuple[np.ndarray, float]:
    log_joint = _log_gauss(x, gmm.means, gmm.variances) + np.log(gmm.weights)
    top = log_joint.max(axis=1, keepdims=True)
    log_norm = top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True))
    return np.exp(log_joint - log_norm), float(log_norm.sum())


def fit_gaussian_mixture(
    x: np.ndarray, *, max_iterations: int = 200, tolerance: float = 1e-8
) -> GaussianMixture1D:
    """Fit a two-component Gaussian mixture to 1-D data with expectation maximization.

    Deterministic: the means start at the 25th and 75th percentiles, the variances at the data
    variance. A variance floor (1e-6 of the data variance, at least 1e-12) keeps a component
    from collapsing onto a single value.

    Args:
        x: (n,) finite values, n >= 2.

    Returns:
        The fitted mixture, components ordered by mean (index 1 = high component).

    Raises:
        ValueError: if fewer than 2 finite values are given.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError(
            f"Expected `x` to hold at least 2 finite values to fit a mixture, got {x.size}"
        )
    data_var = float(x.var())
    floor = max(1e-6 * data_var, 1e-12)
    gmm = GaussianMixture1D(
        weights=np.array([0.5, 0.5]),
        means=np.percentile(x, [25.0, 75.0]),
        variances=np.full(2, max(data_var, floor)),
        log_likelihood=-np.inf,
        iterations=0,
    )
    previous = -np.inf
    for iteration in range(1, max_iterations + 1):
        resp, log_likelihood = _responsibilities(x, gmm)  # E step
        mass = resp.sum(axis=0) + 1e-300  # M step
        means = (resp * x[:, None]).sum(axis=0) / mass
        variances = np.maximum((resp * (x[:, None] - means) ** 2).sum(axis=0) / mass, floor)
        gmm = GaussianMixture1D(mass / x.size, means, variances, log_likelihood, iteration)
        if abs(log_likelihood - previous) <= tolerance * max(1.0, abs(log_likelihood)):
            break
        previous = log_likelihood
    order = np.argsort(gmm.means, kind="stable")
    _, log_likelihood = _responsibilities(x, gmm)
    return GaussianMixture1D(
        gmm.weights[order], gmm.means[order], gmm.variances[order], log_likelihood, gmm.iterations
    )


def gaussian_switch_sampling(
    scores: np.ndarray,
    n: int,
    *,
    seed: int,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``n`` sections at random from the high component of a 2-Gaussian mixture.

    The mixture is fitted to the eligible (finite, not excluded) section scores. Sections whose
    posterior for the high-mean component exceeds 0.5 form the candidate set and ``n`` of them
    are drawn uniformly without replacement; if there are fewer than ``n`` candidates, all are
    taken and the rest are filled by posterior of the high component, highest first. Sampling
    rather than taking the top scores spreads the labels over the whole group of unstable
    sections instead of a few extreme ones.

    Args:
        scores: (N,) per-section switch scores.
        n: number of sections to draw.
        seed: seed of the draw (same seed, same sections).
        exclude: indices not to draw (already labeled).

    Returns:
        (min(n, eligible),) int64 section indices, in the order drawn.
    """
    if n <= 0:
        raise ValueError(f"Expected `n` to be a positive number of sections, got {n}")
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.flatnonzero(_eligible(scores, exclude))
    if candidates.size <= n:
        return rank_sections(scores, n, exclude=exclude)
    high = _high_posterior(scores[candidates])
    rng = np.random.default_rng(seed)
    members = np.flatnonzero(high > 0.5)
    if members.size >= n:
        return candidates[rng.choice(members, size=n, replace=False)].astype(np.int64)
    rest = np.setdiff1d(np.arange(candidates.size), members)
    rest = rest[np.lexsort((rest, -high[rest]))]
    chosen = np.concatenate([rng.permutation(members), rest[: n - members.size]])
    return candidates[chosen].astype(np.int64)


def _high_posterior(values: np.ndarray) -> np.ndarray:
    """(K,) posterior of the high component of a 2-Gaussian mixture fitted to ``values``."""
    if np.ptp(values) == 0:
        return np.ones(values.size)  # one cluster: every candidate is equally "high"
    return fit_gaussian_mixture(values).responsibilities(values)[:, 1]


def _gauss_order(scores: np.ndarray, candidates: np.ndarray, *, seed: int) -> np.ndarray:
    """Every candidate in Gaussian-switch-sampling order: the high component's members in a
    seeded random order, then the others by posterior of the high component, highest first."""
    high = _high_posterior(scores[candidates])
    members = np.flatnonzero(high > 0.5)
    rest = np.setdiff1d(np.arange(candidates.size), members)
    rest = rest[np.lexsort((rest, -high[rest]))]
    members = np.random.default_rng(seed).permutation(members)
    return candidates[np.concatenate([members, rest])].astype(np.int64)


def spaced_choice(
    order: np.ndarray,
    n: int,
    *,
    positions: np.ndarray,
    spacing: int,
    taken: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    taken_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Take ``n`` candidates in priority order, keeping chosen sections ``spacing`` apart.

    Neighbouring sections of a survey look almost alike, so the top scores of any strategy
    tend to come in runs of adjacent sections (e.g. inlines 10, 11 and 14), and labeling all of
    them buys little more than labeling one. Walking down the strategy's ``order``, a candidate
    is skipped while it lies fewer than ``spacing`` sections from one already chosen or
    ``taken`` (already labeled) in the same group (split and view); when fewer than ``n``
    candidates are far enough apart, the skipped ones fill the rest, in priority order.
    ``spacing`` 0 or 1 keeps the strategy's own choice.

    Args:
        order: (K,) candidate indices (into ``positions``), best first.
        n: number to choose.
        positions: (N,) section number of every index.
        spacing: minimum distance in section numbers (>= 0).
        taken: (T,) section numbers already labeled (kept away from, never chosen).
        groups: (N,) group of every index (default: all one group); sections of different
            groups are never close.
        taken_groups: (T,) group of every ``taken`` section (default: all group 0).

    Returns:
        (at most n,) int64 indices from ``order``, in the order chosen.
    """
    if isinstance(spacing, bool) or not isinstance(spacing, (int, np.integer)) or spacing < 0:
        raise ValueError(f"Expected `spacing` to be an integer >= 0, got {spacing!r}")
    order = np.asarray(order, dtype=np.int64)
    if spacing <= 1:
        return order[:n]
    positions = np.asarray(positions, dtype=np.int64)
    groups = np.zeros(positions.size, np.int64) if groups is None else np.asarray(groups)
    taken = np.zeros(0, np.int64) if taken is None else np.asarray(taken, dtype=np.int64)
    taken_groups = (
        np.zeros(taken.size, np.int64) if taken_groups is None else np.asarray(taken_groups)
    )
    near = [(int(g), int(t)) for g, t in zip(taken_groups, taken)]
    labeled = set(near)
    chosen: list[int] = []
    skipped: list[int] = []
    for index in order.tolist():
        if len(chosen) == n:
            break
        group, position = int(groups[index]), int(positions[index])
        if (group, position) in labeled:
            continue
        if any(g == group and abs(t - position) < spacing for g, t in near):
            skipped.append(index)
            continue
        chosen.append(index)
        near.append((group, position))
    chosen.extend(skipped[: n - len(chosen)])
    return np.asarray(chosen, dtype=np.int64)


def select_sections(
    scores: np.ndarray,
    n: int,
    *,
    strategy: Strategy,
    seed: int = 0,
    exclude: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    spacing: int = 0,
    taken: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    taken_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Choose ``n`` sections from precomputed section scores with a strategy's rule.

    ``gauss`` draws from the high mixture component (see :func:`gaussian_switch_sampling`);
    every other strategy takes the top scores (see :func:`rank_sections`); for ``random`` pass
    :func:`random_section_scores`. With ``spacing`` > 1 the strategy's order is walked with
    :func:`spaced_choice` (chosen sections at least ``spacing`` section numbers apart, and from
    the ``taken`` ones).

    Args:
        scores: (N,) section scores of the strategy (higher = label first).
        n: number of sections.
        strategy: one of :data:`STRATEGIES`.
        seed: seed of ``gauss``'s draw.
        exclude: indices not to choose.
        positions: (N,) section number of every score (default: the index itself).
        spacing: minimum distance between chosen sections in section numbers (0: no rule).
        taken: section numbers already labeled, kept ``spacing`` away from.
        groups: (N,) group (split and view) of every score; see :func:`spaced_choice`.
        taken_groups: group of every ``taken`` section.

    Returns:
        (min(n, eligible),) int64 section indices.
    """
    _check_strategy(strategy)
    if isinstance(spacing, bool) or not isinstance(spacing, (int, np.integer)) or spacing < 0:
        raise ValueError(f"Expected `spacing` to be an integer >= 0, got {spacing!r}")
    if spacing <= 1:
        if strategy == "gauss":
            return gaussian_switch_sampling(scores, n, seed=seed, exclude=exclude)
        return rank_sections(scores, n, exclude=exclude)
    if n <= 0:
        raise ValueError(f"Expected `n` to be a positive number of sections, got {n}")
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.flatnonzero(_eligible(scores, exclude))
    if strategy == "gauss" and candidates.size > n:
        order = _gauss_order(scores, candidates, seed=seed)
    else:
        order = candidates[np.lexsort((candidates, -scores[candidates]))].astype(np.int64)
    positions = np.arange(scores.size) if positions is None else np.asarray(positions)
    if positions.shape != scores.shape:
        raise ValueError(
            f"Expected `positions` to have one section number per score ({scores.size}), "
            f"got shape {positions.shape}"
        )
    return spaced_choice(
        order,
        n,
        positions=positions,
        spacing=spacing,
        taken=taken,
        groups=groups,
        taken_groups=taken_groups,
    )


# --------------------------------------------------------------------------- model uncertainty


def section_uncertainty(
    model: Any,
    dataset: Any,
    *,
    batch_size: int = 4,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Entropy and margin section scores of a model's softmax over every item of a dataset:
    the section means of :func:`pixel_uncertainty` (same arguments).

    Returns:
        ``{"entropy": (N,), "margin": (N,)}`` float64, as :func:`entropy_section_scores` and
        :func:`margin_section_scores` would give on the full probability array, in dataset order.
    """
    maps = pixel_uncertainty(model, dataset, batch_size=batch_size, device=device)
    return {name: value.reshape(len(value), -1).mean(axis=1) for name, value in maps.items()}


def pixel_uncertainty(
    model: Any,
    dataset: Any,
    *,
    batch_size: int = 4,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Per-pixel entropy and one-minus-margin of a model's softmax over a dataset's items.

    Args:
        model: a module mapping (B, C_in, H, W) images to (B, C, H, W) logits.
        dataset: items with ``image`` (C_in, H, W) tensors, all of one size (one view).
        batch_size: items per forward pass.
        device: torch device of the forward passes.

    Returns:
        ``{"entropy": (N, H, W), "margin": (N, H, W)}`` float64 in dataset order (margin:
        1 - (top-1 - top-2) probability).
    """
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    entropy, margin = [], []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            logits = model(batch["image"].to(device)).double()  # (B, C, H, W)
            log_p = torch.log_softmax(logits, dim=1)
            p = log_p.exp()
            entropy.append((-(p * log_p).sum(dim=1)).cpu())
            top2 = p.topk(2, dim=1).values  # (B, 2, H, W)
            margin.append((1.0 - (top2[:, 0] - top2[:, 1])).cpu())
    if not entropy:
        return {"entropy": np.zeros((0, 0, 0)), "margin": np.zeros((0, 0, 0))}
    return {"entropy": torch.cat(entropy).numpy(), "margin": torch.cat(margin).numpy()}


# --------------------------------------------------------------------------- runs


def _as_run(run: Any) -> Any:
    if isinstance(run, (str, os.PathLike)):
        from segforget.train import load_run

        return load_run(run)
    return run


def _run_data(run: Any) -> Any:
    """The run's data set, with the run's validation split and seed when the Run knows them."""
    if hasattr(run, "load_data"):
        return run.load_data()
    from segforget.data import load_data

    return load_data(run.data_spec)


def pool_spaces(
    run: Any, pool: str, *, mode: str = "epoch", view: str | None = None
) -> list[tuple[str, str]]:
    """The tracked (split, view) pixel spaces of a pool in a run.

    Args:
        run: a :class:`segforget.train.Run` or a run directory.
        pool: ``"test"`` (every tracked test split) or the name of one tracked split
            (``"test1"``, ``"train"``, ...).
        mode: recording mode whose statistics are read.
        view: keep only this view (default: all tracked views).

    Raises:
        ValueError: if the run has no statistics of ``mode`` or ``view``, or tracked no split of
            the pool (train with ``track.test=true``).
    """
    run = _as_run(run)
    available = run.available_stats()
    modes = sorted({m for m, _, _ in available})
    if mode not in modes:
        raise ValueError(
            f"Expected `mode` to be a recording mode of the run ({', '.join(modes) or 'none'}), "
            f"got {mode!r}"
        )
    tracked = [(s, v) for m, s, v in available if m == mode]
    views = sorted({v for _, v in tracked})
    if view is not None and view not in views:
        raise ValueError(
            f"Expected `view` to be a view tracked in {mode} mode ({', '.join(views)}), "
            f"got {view!r}"
        )
    if pool == "test":
        chosen = [(s, v) for s, v in tracked if s != "train"]
    else:
        chosen = [(s, v) for s, v in tracked if s == pool]
    if view is not None:
        chosen = [(s, v) for s, v in chosen if v == view]
    if not chosen:
        names = sorted({s for s, _ in tracked})
        raise ValueError(
            f"Expected `pool` to be 'test' or a split tracked in {mode} mode "
            f"({', '.join(names) or 'none tracked'}){f' with view {view!r}' if view else ''}, "
            f"got {pool!r}; train with --set track.test=true to track the test sections"
        )
    return sorted(chosen)


def load_final_model(run: Any, *, checkpoint: str = "best", device: str = "cpu") -> Any:
    """Rebuild a run's model from ``config.yaml`` and load its checkpoint weights.

    Args:
        run: a Run or run directory.
        checkpoint: ``"best"`` (falls back to ``"last"`` when absent) or ``"last"``.
        device: torch device.

    Raises:
        FileNotFoundError: the run has no checkpoint.
    """
    from pathlib import Path

    from segforget.models import build_model
    from segforget.train.checkpoint import load_checkpoint

    run = _as_run(run)
    folder = Path(run.path) / "checkpoints"
    path = folder / f"{checkpoint}.pt"
    if not path.is_file():
        path = folder / "last.pt"
    state = load_checkpoint(path, map_location=device)
    model_config = dict(run.config.get("model", {}))
    data = _run_data(run)
    model = build_model(
        model_config.get("name", "light"),
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        encoder_depth=model_config.get("encoder_depth"),
        decoder_channels=model_config.get("decoder_channels"),
    )
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def select_from_run(
    run: Any,
    *,
    strategy: Strategy,
    n: int,
    pool: str = "test",
    seed: int = 0,
    mode: str = "epoch",
    view: str | None = None,
    device: str = "cpu",
    spacing: int = 0,
    patch: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Rank the sections (or windows of them) of a run's pool with a strategy; choose ``n``.

    Label-dynamics strategies (``switch``, ``gauss``, ``forgetting``) read the run's tracked
    statistics of the pool; ``entropy`` and ``margin`` run the final model over the pool's
    sections; ``switch-entropy`` ranks by the mean rank of the switch and entropy scores
    (:func:`rank_mean_scores`); ``random`` draws seeded scores. Scores of all (split, view)
    spaces of the pool are ranked together.

    Args:
        run: a Run or run directory.
        strategy: one of :data:`STRATEGIES`.
        n: number of sections to choose (>= 1).
        pool: ``"test"`` or one tracked split name.
        seed: seed of ``gauss`` and ``random``.
        mode: recording mode of the statistics.
        view: restrict the pool to one view.
        device: torch device for ``entropy``/``margin``.
        spacing: chosen sections of one (split, view) at least ``spacing`` section numbers
            apart where the pool allows (see :func:`spaced_choice`; 0: no rule). With
            ``patch``, it keeps apart the same window of nearby sections.
        patch: (height, width): rank non-overlapping windows of the sections
            (:func:`patch_grid`) by the mean score of their pixels, instead of whole sections.

    Returns:
        ``n`` rows (fewer when the pool is smaller) in choice order:
        ``{"rank", "split", "view", "section", "score"}``, with ``patch`` also the window's
        ``"row"``, ``"col"``, ``"height"``, ``"width"``.
    """
    _check_strategy(strategy)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"Expected `n` to be a positive number of sections, got {n!r}")
    patch = _check_patch(patch)
    run = _as_run(run)
    spaces = pool_spaces(run, pool, mode=mode, view=view)
    model = data = None
    if strategy in ("entropy", "margin", "switch-entropy"):
        model = load_final_model(run, device=device)
        data = _run_data(run)
    common = {"mode": mode, "patch": patch, "model": model, "data": data, "device": device}
    if strategy == "switch-entropy":
        keys, groups, switch = _pool_scores(run, "switch", spaces, **common)
        entropy_keys, _, entropy = _pool_scores(run, "entropy", spaces, **common)
        by_key = dict(zip(entropy_keys, entropy.tolist()))
        kept = [i for i, key in enumerate(keys) if key in by_key]
        keys, groups = [keys[i] for i in kept], groups[kept]
        scores = rank_mean_scores(switch[kept], np.asarray([by_key[k] for k in keys]))
    else:
        keys, groups, scores = _pool_scores(run, strategy, spaces, **common)
    if strategy == "random":
        scores = random_section_scores(scores.size, seed=seed)
    chosen = select_sections(
        scores,
        int(n),
        strategy=strategy,
        seed=seed,
        positions=np.asarray([key[2] for key in keys], dtype=np.int64),
        groups=groups,
        spacing=spacing,
    )
    out = []
    for rank, i in enumerate(chosen):
        split, space_view, section, window = keys[i]
        row = {"rank": rank + 1, "split": split, "view": space_view, "section": section}
        if window is not None:
            row.update(zip(("row", "col", "height", "width"), window))
        row["score"] = float(scores[i])
        out.append(row)
    return out


_PoolKey = tuple[str, str, int, "tuple[int, int, int, int] | None"]


def _pool_scores(
    run: Any,
    strategy: str,
    spaces: list[tuple[str, str]],
    *,
    mode: str,
    patch: tuple[int, int] | None,
    model: Any,
    data: Any,
    device: str,
) -> tuple[list[_PoolKey], np.ndarray, np.ndarray]:
    """One strategy's scores of every unit of the pool with a finite score: the units'
    (split, view, section, window) keys, (U,) spacing group (one per space and window) and
    (U,) scores."""
    keys: list[_PoolKey] = []
    groups: list[int] = []
    parts: list[np.ndarray] = []
    for split, space_view in spaces:
        sections, scores, windows = _space_scores(
            run,
            strategy,
            split,
            space_view,
            mode=mode,
            patch=patch,
            model=model,
            data=data,
            device=device,
        )  # (S,), (S, T), T windows
        finite = np.isfinite(scores)
        for t, window in enumerate(windows):
            rows = np.flatnonzero(finite[:, t])
            keys.extend((split, space_view, int(sections[i]), window) for i in rows)
            groups.extend([len(parts)] * rows.size)
            parts.append(scores[rows, t])
    scores = np.concatenate(parts) if parts else np.zeros(0)
    return keys, np.asarray(groups, dtype=np.int64), scores


def _check_patch(patch: Any) -> tuple[int, int] | None:
    if patch is None:
        return None
    try:
        ph, pw = (int(v) for v in patch)
    except (TypeError, ValueError):
        ph = pw = 0
    if ph < 1 or pw < 1 or any(isinstance(v, bool) for v in patch):
        raise ValueError(f"Expected `patch` to be (height, width) sizes >= 1, got {patch!r}")
    return ph, pw


def _space_scores(
    run: Any,
    strategy: str,
    split: str,
    view: str,
    *,
    mode: str,
    patch: tuple[int, int] | None,
    model: Any,
    data: Any,
    device: str,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int] | None]]:
    """Scores of one pool space: (S,) section numbers, (S, T) scores of T windows (NaN where
    nothing was observed), the windows (``[None]`` without ``patch``: whole sections)."""
    if strategy in ("entropy", "margin"):
        dataset = data.dataset(split, view)
        sections = np.asarray(dataset.sections)
        if patch is None:
            scores = section_uncertainty(model, dataset, device=device)[strategy]
            return sections, np.asarray(scores)[:, None], [None]
        maps = pixel_uncertainty(model, dataset, device=device)[strategy]  # (S, H, W)
        scores, windows = pixel_to_patch_scores(
            maps.ravel(), num_sections=len(maps), section_shape=maps.shape[1:], patch=patch
        )
        return sections, scores, list(windows)
    stats = run.stats(mode, split, view)
    num_sections = int(stats.meta["num_sections"])
    observed = np.asarray(stats.observations) > 0
    value = stats.forgetting_score if strategy == "forgetting" else stats.switch_events
    if patch is None:
        scores = pixel_to_section_scores(value, num_sections=num_sections, observed=observed)
        return np.arange(num_sections), scores[:, None], [None]
    scores, windows = pixel_to_patch_scores(
        value,
        num_sections=num_sections,
        section_shape=tuple(stats.meta["section_shape"]),
        patch=patch,
        observed=observed,
    )
    return np.arange(num_sections), scores, list(windows)


def plot_selection(
    images: list[np.ndarray],
    path: str | os.PathLike[str],
    *,
    maps: list[np.ndarray | None] | None = None,
    titles: list[str] | None = None,
    map_label: str = "switch events",
    boxes: list[tuple[int, int, int, int] | None] | None = None,
) -> None:
    """Save a figure of chosen sections: the image, and below it a per-pixel map if given.

    Args:
        images: one (H, W) image per chosen section (sizes may differ between views).
        path: PNG file to write (atomically).
        maps: one (H, W) per-pixel map (e.g. switch events) or None per section.
        titles: one title per section.
        map_label: colour-bar label of the maps.
        boxes: one chosen window ``(row, col, height, width)`` or None per section, outlined
            on the image and the map.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from segforget.io import atomic_path

    def outline(ax, box):
        if box is not None:
            row, col, height, width = box
            corner = (col - 0.5, row - 0.5)
            ax.add_patch(Rectangle(corner, width, height, fill=False, edgecolor="cyan", lw=1.5))

    n = len(images)
    if n == 0:
        raise ValueError("Expected at least one chosen section to plot, got 0")
    has_maps = maps is not None and any(m is not None for m in maps)
    columns = min(n, 4)
    blocks = -(-n // columns)
    rows = blocks * (2 if has_maps else 1)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k in range(n):
        block, column = divmod(k, columns)
        top = axes[block * (2 if has_maps else 1), column]
        top.imshow(images[k], cmap="gray", aspect="auto")
        top.set_title(titles[k] if titles else f"#{k + 1}", fontsize=9)
        outline(top, boxes[k] if boxes else None)
        if has_maps and maps[k] is not None:
            bottom = axes[block * 2 + 1, column]
            shown = bottom.imshow(maps[k], cmap="magma", aspect="auto", interpolation="nearest")
            fig.colorbar(shown, ax=bottom, fraction=0.046, label=map_label)
            outline(bottom, boxes[k] if boxes else None)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------- simulation

#: Strategies whose scores need the pool to be tracked during training.
_TRACKED = ("switch", "gauss", "switch-entropy", "forgetting")


@dataclass(frozen=True)
class RoundTraining:
    """How each al-sim round trains its fresh model (the same for every strategy and round).

    Attributes:
        model_name: model name (see :mod:`segforget.models`).
        epochs: epochs per round (= pool observations for the tracked strategies, less the
            warm-up).
        steps_per_epoch: optimizer steps per epoch (batches drawn with replacement).
        batch_size: sections per step.
        lr: Adam learning rate (decayed to 0 along a cosine over the round).
        track_warmup: epochs before the pool is first observed.
        pool_passes: pool observations per tracked epoch, evenly spaced over its steps (1:
            after the epoch's last step).
        device: torch device.
    """

    model_name: str = "tiny"
    epochs: int = 6
    steps_per_epoch: int = 10
    batch_size: int = 4
    lr: float = 3e-3
    track_warmup: int = 0
    pool_passes: int = 1
    device: str = "cpu"


def _train_on_sections(
    data: Any,
    view: str,
    labeled: np.ndarray,
    pool: np.ndarray,
    *,
    track: bool,
    seed: int,
    settings: RoundTraining,
    label_masks: dict[int, np.ndarray] | None = None,
) -> tuple[Any, Any]:
    """Train a fresh model on the labeled sections; track the pool ``settings.pool_passes``
    times in every epoch past ``settings.track_warmup`` if asked.

    With ``label_masks`` (section number -> (H, W) bool, the labeled windows), only those
    pixels of a section keep their label; the rest are ignored by the loss.

    Each epoch is ``steps_per_epoch`` batches drawn with replacement from the labeled sections,
    so that every round trains the same number of steps whatever the labeled-set size (small
    labeled sets would otherwise get almost no updates); the learning rate decays to 0 along a
    cosine over all steps.

    Returns:
        (model, ForgettingStats of the pool's pixel space or None).
    """
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from segforget.data.transforms import HorizontalFlip
    from segforget.dynamics import ForgettingTracker
    from segforget.models import build_model

    epochs, steps_per_epoch, device = settings.epochs, settings.steps_per_epoch, settings.device
    batch_size = settings.batch_size
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_model(
        settings.model_name, in_channels=data.in_channels, num_classes=data.num_classes
    )
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    # Cosine decay to 0 over the round: every point is a settled model, not a snapshot of Adam
    # still moving at full learning rate (which made curves drop as sections were added).
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    # Own generators for flips and order: the pool passes must not shift the training randomness,
    # so that strategies differ only by the sections they chose.
    flip = HorizontalFlip(generator=torch.Generator().manual_seed(seed + 1))
    transform = flip
    if label_masks is not None:
        transform = _MaskThenFlip(label_masks, flip, data.ignore_index)
    train_set = data.dataset("train", view, sections=labeled, transform=transform)
    sampler = RandomSampler(
        train_set, replacement=True, num_samples=steps_per_epoch * batch_size, generator=generator
    )
    loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=data.ignore_index)
    tracker = None
    if track:
        space = data.space("train", view)
        tracker = ForgettingTracker(space.num_pixels, data.num_classes, device=device)
        pool_loader = DataLoader(data.dataset("train", view, sections=pool), batch_size=8)
    observe_after = pool_pass_steps(steps_per_epoch, settings.pool_passes)
    for epoch in range(epochs):
        model.train()
        for step, batch in enumerate(loader, start=1):
            optimizer.zero_grad()
            logits = model(batch["image"].to(device))
            loss = loss_fn(logits, batch["label"].to(device))
            loss.backward()
            optimizer.step()
            schedule.step()
            if tracker is not None and epoch >= settings.track_warmup and step in observe_after:
                model.eval()
                with torch.no_grad():
                    for pool_batch in pool_loader:
                        logits = model(pool_batch["image"].to(device))
                        tracker.update(
                            class_argmax(logits),
                            pool_batch["label"].to(device),
                            pool_batch["pixel_index"],
                        )
                model.train()
    model.eval()
    stats = tracker.compute() if tracker is not None else None
    return model, stats


class _MaskThenFlip:
    """Transform: labels outside a section's labeled windows become ``ignore_index``, then the
    flip (so the mask follows the section, not the flipped item)."""

    def __init__(self, masks: dict[int, np.ndarray], flip: Any, ignore_index: int) -> None:
        import torch

        self.masks = {int(k): torch.as_tensor(v, dtype=torch.bool) for k, v in masks.items()}
        self.flip, self.ignore_index = flip, ignore_index

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        out["label"] = item["label"].masked_fill(
            ~self.masks[int(item["section"])], self.ignore_index
        )
        return self.flip(out)


def _test_miou(data: Any, view: str, model: Any, *, device: str) -> float:
    import torch
    from torch.utils.data import DataLoader

    from segforget.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(data.num_classes, ignore_index=data.ignore_index)
    with torch.no_grad():
        for split in data.test_splits:
            for batch in DataLoader(data.dataset(split, view), batch_size=8):
                matrix.update(class_argmax(model(batch["image"].to(device))).cpu(), batch["label"])
    return float(matrix.scores(list(data.class_names))["miou"])


@dataclass(frozen=True)
class _ChainSetup:
    """What every acquisition chain of one al-sim run shares (see :func:`_simulate_chain`)."""

    data: Any
    view: str
    units: _SectionUnits | _WindowUnits
    rounds: int
    budget: int
    settings: RoundTraining
    spacing: int
    track_round0: bool  # round 0 records pool statistics when any strategy of the run needs them
    on_round: Any  # optional callback (strategy, seed, round, labeled, miou)


def _simulate_chain(
    setup: _ChainSetup,
    strategy: str,
    start: np.ndarray,
    *,
    seed: int,
    draw: int,
    cache: dict[tuple[int, bytes], tuple[Any, Any, float]],
) -> list[float]:
    """One strategy's acquisition chain of one seed from the ``start`` units: train, test,
    acquire, ``setup.rounds`` times; returns the test mIoU after each training ((rounds + 1,)).

    Training depends only on (seed, round, labeled set), so chains that chose the same units
    (always so in round 0) share one trained model through ``cache``."""
    data, view, units, settings = setup.data, setup.view, setup.units, setup.settings
    rounds = setup.rounds
    labeled = start.copy()
    curve: list[float] = []
    for round_index in range(rounds + 1):
        pool = np.setdiff1d(units.all, labeled)
        last = round_index == rounds
        key = (round_index, labeled.tobytes())
        needs_stats = strategy in _TRACKED and not last
        if key not in cache or (needs_stats and cache[key][1] is None):
            sections, tracked, masks = units.training(labeled, pool)
            trained, stats = _train_on_sections(
                data,
                view,
                sections,
                tracked,
                track=(needs_stats or (round_index == 0 and setup.track_round0)) and not last,
                seed=seed * 1000 + round_index,
                settings=settings,
                label_masks=masks,
            )
            miou = _test_miou(data, view, trained, device=settings.device)
            cache[key] = (trained, stats, miou)
        trained, stats, miou = cache[key]
        curve.append(miou)
        if setup.on_round is not None:
            setup.on_round(strategy, seed, round_index, int(labeled.size), miou)
        if not last:
            chosen = _acquire(
                units,
                strategy,
                data,
                view,
                pool,
                setup.budget,
                model=trained,
                stats=stats,
                seed=seed * 1000 + round_index,
                draw=draw,
                device=settings.device,
                spacing=setup.spacing,
                labeled=labeled,
            )
            labeled = np.sort(np.concatenate([labeled, chosen]))
    return curve


def _acquire(
    units: _SectionUnits | _WindowUnits,
    strategy: str,
    data: Any,
    view: str,
    pool: np.ndarray,
    budget: int,
    *,
    model: Any,
    stats: Any,
    seed: int,
    device: str,
    spacing: int = 0,
    labeled: np.ndarray | None = None,
    draw: int = 0,
) -> np.ndarray:
    """Choose ``budget`` units (sections or windows) from ``pool`` with ``strategy``, ``spacing``
    apart from each other and from the ``labeled`` units (see :func:`spaced_choice`); ``draw``
    picks an independent stream of ``random``'s scores (0: the stream of ``seed`` itself)."""

    def tracked(value: np.ndarray) -> np.ndarray:
        observed = np.asarray(stats.observations) > 0
        return units.pixel_scores(value, observed, data.space("train", view).num_sections, pool)

    if strategy == "random":
        scores = random_section_scores(pool.size, seed=seed if draw == 0 else [seed, draw])
    elif strategy in ("entropy", "margin"):
        scores = units.uncertainty_scores(strategy, data, view, pool, model=model, device=device)
    elif strategy == "switch-entropy":
        entropy = units.uncertainty_scores("entropy", data, view, pool, model=model, device=device)
        scores = rank_mean_scores(tracked(stats.switch_events), entropy)
    else:
        forgetting = strategy == "forgetting"
        scores = tracked(stats.forgetting_score if forgetting else stats.switch_events)
    positions, groups = units.place(pool)
    taken, taken_groups = units.place(np.zeros(0, np.int64) if labeled is None else labeled)
    chosen = select_sections(
        scores,
        budget,
        strategy=strategy,
        seed=seed,
        positions=positions,
        groups=groups,
        spacing=spacing,
        taken=taken,
        taken_groups=taken_groups,
    )
    return pool[chosen]


class _SectionUnits:
    """al-sim labels whole sections: a unit is a section number."""

    name = "sections"

    def __init__(self, train_sections: np.ndarray) -> None:
        self.all = train_sections
        self.count = int(train_sections.size)

    def start(self, rng: np.random.Generator, initial: int) -> np.ndarray:
        return np.sort(rng.choice(self.all, size=initial, replace=False))

    def training(
        self, labeled: np.ndarray, pool: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, None]:
        """(sections to train on, sections to track, label masks)."""
        return labeled, pool, None

    def place(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(section number, spacing group) of every unit: all sections share one group."""
        return units, np.zeros(units.size, np.int64)

    def uncertainty_scores(
        self, strategy: str, data: Any, view: str, pool: np.ndarray, *, model: Any, device: str
    ) -> np.ndarray:
        """(len(pool),) entropy or margin section scores of the round's model."""
        dataset = data.dataset("train", view, sections=pool)
        return section_uncertainty(model, dataset, device=device)[strategy]

    def pixel_scores(
        self, values: np.ndarray, observed: np.ndarray, num_sections: int, pool: np.ndarray
    ) -> np.ndarray:
        """(len(pool),) means of a per-pixel statistic of the train space over observed pixels."""
        return pixel_to_section_scores(values, num_sections=num_sections, observed=observed)[pool]


class _WindowUnits:
    """al-sim labels windows of sections: unit ``u`` is window ``u % T`` of training section
    ``u // T`` (T windows per section, :func:`patch_grid`)."""

    name = "windows"

    def __init__(
        self, train_sections: np.ndarray, section_shape: tuple[int, int], patch: tuple[int, int]
    ) -> None:
        self.sections = train_sections
        self.shape = (int(section_shape[0]), int(section_shape[1]))
        self.patch = patch
        self.windows = patch_grid(*self.shape, patch)
        self.per_section = len(self.windows)
        self.count = int(train_sections.size) * self.per_section
        self.all = np.arange(self.count, dtype=np.int64)

    def start(self, rng: np.random.Generator, initial: int) -> np.ndarray:
        return np.sort(rng.choice(self.count, size=initial, replace=False))

    def training(
        self, labeled: np.ndarray, pool: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """(sections to train on, sections to track, labeled-window mask per section)."""
        masks: dict[int, np.ndarray] = {}
        for unit in labeled.tolist():
            section = int(self.sections[unit // self.per_section])
            row, col, h, w = self.windows[unit % self.per_section]
            mask = masks.setdefault(section, np.zeros(self.shape, dtype=bool))
            mask[row : row + h, col : col + w] = True
        tracked = np.unique(self.sections[pool // self.per_section])
        return np.asarray(sorted(masks), dtype=np.int64), tracked, masks

    def place(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(section number, spacing group) of every unit: one group per window position, so
        spacing keeps the same window of nearby sections apart."""
        return self.sections[units // self.per_section], units % self.per_section

    def uncertainty_scores(
        self, strategy: str, data: Any, view: str, pool: np.ndarray, *, model: Any, device: str
    ) -> np.ndarray:
        """(len(pool),) window means of the round's per-pixel entropy or margin."""
        dataset = data.dataset("train", view, sections=self.sections)
        values = pixel_uncertainty(model, dataset, device=device)[strategy]  # (S, H, W)
        return self._window_means(values.ravel(), None, self.sections.size).ravel()[pool]

    def pixel_scores(
        self, values: np.ndarray, observed: np.ndarray, num_sections: int, pool: np.ndarray
    ) -> np.ndarray:
        """(len(pool),) window means of a per-pixel statistic of the train space."""
        per_window = self._window_means(values, observed, num_sections)  # (space sections, T)
        return per_window[self.sections].ravel()[pool]

    def _window_means(
        self, values: np.ndarray, observed: np.ndarray | None, num_sections: int
    ) -> np.ndarray:
        per_window, _ = pixel_to_patch_scores(
            values,
            num_sections=num_sections,
            section_shape=self.shape,
            patch=self.patch,
            observed=observed,
        )
        return per_window


def pool_pass_steps(steps_per_epoch: int, passes: int) -> frozenset[int]:
    """The steps of an epoch (1-based) after which the pool is observed: ``passes`` evenly
    spaced ones, the last after the epoch's last step (``passes`` = 1: only that one).

    Example: 20 steps, 4 passes -> after steps 5, 10, 15 and 20.
    """
    if not 1 <= passes <= steps_per_epoch:
        raise ValueError(
            f"Expected `pool_passes` to be an integer in [1, steps per epoch] = "
            f"[1, {steps_per_epoch}], got {passes!r}"
        )
    return frozenset(round(j * steps_per_epoch / passes) for j in range(1, passes + 1))


def default_track_warmup(epochs: int) -> int:
    """Pool observations skipped at the start of an al-sim round: the first third of the
    epochs, keeping at least two observations (``epochs >= 2``)."""
    return max(0, min(epochs // 3, epochs - 2))


def simulate_active_learning(
    data: Any,
    *,
    strategies: list[str],
    rounds: int,
    budget: int,
    seeds: list[int],
    initial: int = 2,
    view: str | None = None,
    model: str = "tiny",
    epochs: int = 6,
    steps_per_epoch: int = 10,
    batch_size: int = 4,
    lr: float = 3e-3,
    track_warmup: int | None = None,
    pool_passes: int = 1,
    spacing: int = 0,
    patch: tuple[int, int] | None = None,
    random_draws: int = 1,
    device: str = "cpu",
    on_round: Any = None,
) -> dict[str, Any]:
    """Simulate pool-based active learning on a data set's training sections.

    For every seed, every strategy starts from the same ``initial`` random labeled sections of
    the ``train`` split; each round trains a fresh model (same initialization for every
    strategy) on the labeled sections, records the test mIoU over all test splits, then adds
    ``budget`` sections of the unlabeled pool chosen by the strategy. Tracked strategies
    observe the pool after every epoch past the first ``track_warmup`` (clean eval pass) with a
    :class:`ForgettingTracker`; ``forgetting`` reads the pool's hidden labels (an oracle
    reference). While the model is still close to its random start its predictions flip
    almost everywhere, so switches counted from the first epochs rank sections by noise; the
    warm-up leaves them out.

    Args:
        data: a :class:`segforget.data.SegmentationData` or a data spec string.
        strategies: names from :data:`STRATEGIES`.
        rounds: acquisition rounds (>= 1); the curve has ``rounds + 1`` points.
        budget: sections added per round (>= 1).
        seeds: one simulation per seed (initial set, model init, sampling).
        initial: sections labeled at the start (>= 1).
        view: the view whose sections are labeled (default: the data's first view).
        model: model name (see :mod:`segforget.models`).
        epochs: epochs per round (= pool observations for the tracked strategies).
        steps_per_epoch: optimizer steps per epoch.
        batch_size: sections per step.
        lr: Adam learning rate.
        track_warmup: epochs before the first pool observation (default ``epochs // 3``);
            at least two observations must remain (``track_warmup <= epochs - 2``; 0 when
            ``epochs`` is 1).
        pool_passes: pool observations per tracked epoch, evenly spaced over its steps
            (:func:`pool_pass_steps`; 1: after every epoch). More passes give the switch
            counts a finer resolution; training and test mIoU of a labeled set do not change.
        spacing: every strategy chooses sections at least ``spacing`` section numbers apart
            from each other and from the labeled ones, where the pool allows
            (:func:`spaced_choice`; 0: the strategy's own top choice).
        patch: (height, width): label windows of the sections (:func:`patch_grid`) instead of
            whole sections; ``initial`` and ``budget`` then count windows, a window scores
            the mean of its pixels, and a partly labeled section trains with its other pixels
            ignored. With ``spacing``, the same window of nearby sections is kept apart.
        random_draws: independent random acquisition chains per seed for ``random``; its
            curve of a seed is their mean, a steadier estimate of what random labeling gives
            (draw 0 is the single draw of ``random_draws=1``; every draw starts from the seed's
            initial sections and trains with the seed's initializations).
        device: torch device.
        on_round: optional callback ``(strategy, seed, round, labeled, miou)``; for ``random``
            with several draws it is called once per draw.

    Returns:
        ``{"config": {...}, "curves": {strategy: {"labeled": [L0..LR], "miou_mean": [...],
        "miou_std": [...], "miou": [[per seed]...]}}}``; std is the population std over seeds.
        ``random``'s entry also holds ``"draws"`` and ``"miou_draws"`` (seeds, draws, R + 1).

    Raises:
        ValueError: unknown strategy or view, non-positive counts, or a pool too small for the
            rounds.
    """
    if isinstance(data, str):
        from segforget.data import load_data

        data = load_data(data)
    if not strategies:
        raise ValueError(f"Expected `strategies` to name at least one of {', '.join(STRATEGIES)}")
    for strategy in strategies:
        _check_strategy(strategy)
    for name, value in (
        ("rounds", rounds),
        ("budget", budget),
        ("initial", initial),
        ("epochs", epochs),
        ("steps_per_epoch", steps_per_epoch),
        ("batch_size", batch_size),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"Expected `{name}` to be an integer >= 1, got {value!r}")
    if not seeds:
        raise ValueError("Expected `seeds` to hold at least one seed, got none")
    track_warmup = default_track_warmup(epochs) if track_warmup is None else track_warmup
    if (
        isinstance(track_warmup, bool)
        or not isinstance(track_warmup, (int, np.integer))
        or not 0 <= track_warmup <= max(epochs - 2, 0)
    ):
        raise ValueError(
            f"Expected `track_warmup` to be an integer in [0, epochs - 2] = "
            f"[0, {max(epochs - 2, 0)}] (switches need two pool observations), got {track_warmup!r}"
        )
    if isinstance(spacing, bool) or not isinstance(spacing, (int, np.integer)) or spacing < 0:
        raise ValueError(f"Expected `spacing` to be an integer >= 0, got {spacing!r}")
    if isinstance(pool_passes, bool) or not isinstance(pool_passes, (int, np.integer)):
        raise ValueError(f"Expected `pool_passes` to be an integer >= 1, got {pool_passes!r}")
    pool_pass_steps(steps_per_epoch, int(pool_passes))  # validates the range
    if (
        isinstance(random_draws, bool)
        or not isinstance(random_draws, (int, np.integer))
        or random_draws < 1
    ):
        raise ValueError(f"Expected `random_draws` to be an integer >= 1, got {random_draws!r}")
    view = data.views[0] if view is None else data.check_view(view)
    train_sections = np.asarray(data.sections("train", view), dtype=np.int64)
    patch = _check_patch(patch)
    units: _SectionUnits | _WindowUnits
    if patch is None:
        units = _SectionUnits(train_sections)
    else:
        shape = tuple(data.space("train", view).section_shape)
        if patch[0] > shape[0] or patch[1] > shape[1]:
            raise ValueError(
                f"Expected `patch` to fit in the sections of view {view!r} ({shape[0]} x "
                f"{shape[1]}), got {patch[0]} x {patch[1]}"
            )
        units = _WindowUnits(train_sections, shape, patch)
    needed = initial + rounds * budget
    if needed > units.count:
        raise ValueError(
            f"Expected initial + rounds * budget <= {units.count} training {units.name} "
            f"of view {view!r}, got {initial} + {rounds} * {budget} = {needed}; "
            "lower --rounds or --budget"
        )
    settings = RoundTraining(
        model_name=model,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        lr=lr,
        track_warmup=int(track_warmup),
        pool_passes=int(pool_passes),
        device=device,
    )
    per_seed: dict[str, list[list[float]]] = {s: [] for s in strategies}
    random_per_draw: list[list[list[float]]] = []  # (seeds, draws, rounds + 1)
    labeled_counts = [initial + r * budget for r in range(rounds + 1)]
    setup = _ChainSetup(
        data,
        view,
        units,
        rounds,
        budget,
        settings,
        spacing=int(spacing),
        track_round0=any(s in _TRACKED for s in strategies),
        on_round=on_round,
    )
    for seed in seeds:
        start = units.start(np.random.default_rng([int(seed), 7]), initial)
        # Training depends only on (seed, round, labeled set): strategies that chose the same
        # sections (always so in round 0) share one trained model instead of retraining it.
        cache: dict[tuple[int, bytes], tuple[Any, Any, float]] = {}
        for strategy in strategies:
            draws = int(random_draws) if strategy == "random" else 1
            chains = [
                _simulate_chain(setup, strategy, start, seed=int(seed), draw=draw, cache=cache)
                for draw in range(draws)
            ]
            per_seed[strategy].append(np.mean(chains, axis=0).tolist())
            if strategy == "random":
                random_per_draw.append(chains)
    curves = {}
    for strategy, runs in per_seed.items():
        values = np.asarray(runs, dtype=np.float64)  # (seeds, rounds + 1)
        curves[strategy] = {
            "labeled": labeled_counts,
            "miou_mean": values.mean(axis=0).tolist(),
            "miou_std": values.std(axis=0).tolist(),
            "miou": values.tolist(),
        }
    if "random" in curves:
        curves["random"]["draws"] = int(random_draws)
        curves["random"]["miou_draws"] = random_per_draw
    paired = paired_curves(curves)
    config = {
        "data": data.name,
        "view": view,
        "strategies": list(strategies),
        "rounds": rounds,
        "budget": budget,
        "initial": initial,
        "seeds": [int(s) for s in seeds],
        "model": model,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "lr": lr,
        "track_warmup": int(track_warmup),
        "pool_passes": int(pool_passes),
        "spacing": int(spacing),
        "patch": None if patch is None else list(patch),
        "random_draws": int(random_draws),
        "pool_sections": int(train_sections.size),
    }
    return {"config": config, "curves": curves, "paired": paired}


def paired_curves(curves: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each strategy's per-seed mIoU differences against ``random`` and ``entropy``.

    Args:
        curves: per strategy, ``miou`` as (seeds, rounds + 1) nested lists, round 0 being the
            initial labeled set (the same for every strategy of a seed).

    Returns:
        ``{strategy: {reference: paired}}`` with ``paired`` from
        :func:`segforget.compare.paired_differences` plus ``p_holm``: the p-values of the
        acquisition rounds adjusted by Holm's method over those rounds (a claim such as "beats
        random at every budget" draws on all of them); None for round 0, which is no test.
    """
    out: dict[str, dict[str, Any]] = {}
    for strategy in curves:
        out[strategy] = {}
        for reference in ("random", "entropy"):
            if reference not in curves or reference == strategy:
                continue
            paired = paired_differences(curves[strategy]["miou"], curves[reference]["miou"])
            paired["p_holm"] = [None, *holm(paired["p"][1:])]
            out[strategy][reference] = paired
    return out


def plot_learning_curves(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Save test mIoU vs labeled sections (or windows), mean line and +-std band per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segforget.io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, curve in result["curves"].items():
        x = np.asarray(curve["labeled"])
        mean, std = np.asarray(curve["miou_mean"]), np.asarray(curve["miou_std"])
        ax.plot(x, mean, marker="o", label=strategy)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    config = result["config"]
    patch = config.get("patch")
    unit = "sections" if not patch else f"{patch[0]} x {patch[1]} windows"
    ax.set_xlabel(f"labeled {config['view']} {unit}")
    ax.set_ylabel("test mIoU")
    ax.set_title(f"{config['data']}: mean ± std over {len(config['seeds'])} seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_selection(
    run: Any,
    rows: list[dict[str, Any]],
    *,
    csv_path: str | os.PathLike[str],
    figure_path: str | os.PathLike[str] | None = None,
    mode: str = "epoch",
    max_figure: int = 8,
) -> None:
    """Write chosen sections as CSV (rank, split, view, section[, row, col, height, width],
    score) and an optional figure.

    The figure shows the first ``max_figure`` chosen sections' seismic images and, when the run
    tracked them, their per-pixel switch events; chosen windows (patch rows) are outlined.
    Both files are rendered to temporaries first: a failure leaves neither new file.

    Raises:
        NotADirectoryError, IsADirectoryError: a path is a folder or lies under a file.
    """
    import contextlib

    from segforget.io import atomic_path, check_output_file

    for path in (csv_path, figure_path):
        if path is not None:
            check_output_file(path, overwrite=True)
    run = _as_run(run)
    columns = ["rank", "split", "view", "section"]
    if rows and "row" in rows[0]:
        columns += ["row", "col", "height", "width"]
    csv_bytes = _csv_text(rows, [*columns, "score"]).encode("utf-8")
    if figure_path is None or not rows:
        with atomic_path(csv_path) as csv_tmp:
            csv_tmp.write_bytes(csv_bytes)
        return
    data = _run_data(run)
    tracked = {(s, v) for m, s, v in run.available_stats() if m == mode}
    images, maps, titles, boxes = [], [], [], []
    for row in rows[:max_figure]:
        split, view, section = row["split"], row["view"], int(row["section"])
        image = data.seismic_sections(split, view, sections=[section])[0]
        images.append(image if image.ndim == 2 else image[0])
        switch_map = None
        if (split, view) in tracked:
            stats = run.stats(mode, split, view)
            height, width = (int(v) for v in stats.meta["section_shape"])
            start = section * height * width
            switch_map = np.asarray(stats.switch_events[start : start + height * width]).reshape(
                height, width
            )
        maps.append(switch_map)
        box = None
        if "row" in row:
            box = (int(row["row"]), int(row["col"]), int(row["height"]), int(row["width"]))
        boxes.append(box)
        where = "" if box is None else f" @{box[0]},{box[1]}"
        titles.append(f"#{row['rank']} {split} {view} {section}{where}: {row['score']:.3g}")
    # Exits in reverse order: the figure is moved in first, the CSV (the result) last.
    with contextlib.ExitStack() as stack:
        csv_tmp = stack.enter_context(atomic_path(csv_path))
        csv_tmp.write_bytes(csv_bytes)
        figure_tmp = stack.enter_context(atomic_path(figure_path))
        plot_selection(images, figure_tmp, maps=maps, titles=titles, boxes=boxes)
