"""Benchmark of the training methods: same data, model and budget, several seeds.

For every seed, ``baseline`` is trained first; the methods that read their regions from a
previous run (``oversample``, ``style-input``, ``style-feature``) use that seed's baseline run,
``online`` uses its own live tracker. Every run tracks in ``epoch`` mode (a clean eval-mode pass
over the training sections after each epoch), so the forgetting counts are comparable across
methods; a training pixel is *frequently forgotten* when it has at least ``threshold``
forgetting events (one threshold for all methods).

Layout of ``OUT``::

    OUT/runs/<entry>/seed<S>/     one run directory per entry and seed (segforget train layout)
    OUT/benchmark.json            settings, per-run results, mean and std per entry
    OUT/benchmark.md              the tables
    OUT/benchmark.png             each entry's mean ± std and single seeds (mIoU, rare classes,
                                  frequently forgotten pixels)
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from segforget.augment.methods import METHOD_NAMES, REFERENCE_METHOD_NAMES, REGION_METHOD_NAMES
from segforget.classes import F3_RARE_CLASSES, rare_classes
from segforget.compare import format_p, holm, paired_differences
from segforget.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from segforget.analysis.thickness import ThicknessAccumulator
    from segforget.train import RunConfig

__all__ = [
    "DEFAULT_METHODS",
    "resolve_entries",
    "forgetting_counts",
    "summarize_runs",
    "benchmark_markdown",
    "run_benchmark",
]

DEFAULT_METHODS: tuple[str, ...] = METHOD_NAMES
#: Methods whose regions come from a previous (baseline) run of the same seed.
_OFFLINE = REGION_METHOD_NAMES
#: Keys of a comparison that are not class names.
_COMPARISON_KEYS = ("miou", "frequently_forgotten", "forgotten_change", "paired")


def _paired_metrics(rare: Sequence[str]) -> list[tuple[str, bool]]:
    """(metric, lower is better) compared seed by seed: mIoU, each rare class, the count."""
    return [("miou", False), *((c, False) for c in rare), ("frequently_forgotten", True)]


def resolve_entries(
    methods: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Map benchmark entries to (method name, options).

    An entry is a method name, or a label whose options hold ``"method": NAME`` (a variant,
    e.g. ``{"style-input-strong": {"method": "style-input", "p": 0.9}}``). An entry's options
    may also hold ``"train": {KEY: VALUE}``: training settings of that entry only (keys of
    ``train`` in the run configuration other than the shared budget, e.g. ``{"ema": 0.99}``);
    they stay in the returned options under ``"train"``.

    Raises:
        ValueError: empty or duplicate entries, unknown names, or options for no entry.
    """
    options = {k: dict(v) for k, v in (options or {}).items()}
    if not methods:
        raise ValueError("Expected `--methods` to name at least one method, got none")
    if len(set(methods)) != len(methods):
        raise ValueError(f"Expected `--methods` without duplicates, got {list(methods)}")
    stray = sorted(set(options) - set(methods))
    if stray:
        raise ValueError(f"Expected `--options` keys to be entries of --methods, got {stray}")
    entries: dict[str, tuple[str, dict[str, Any]]] = {}
    for entry in methods:
        opts = options.get(entry, {})
        name = opts.pop("method", entry)
        if name not in METHOD_NAMES:
            raise ValueError(
                f"Expected `--methods` entries from {list(METHOD_NAMES)} (or a label with "
                f'"method" in --options), got {entry!r}'
            )
        if "regions" in opts:
            raise ValueError(
                f"Expected no `regions` option for entry {entry!r} (the benchmark uses the same "
                "seed's baseline run), got one"
            )
        _check_train_overrides(entry, opts.get("train", {}))
        entries[entry] = (name, opts)
    return entries


#: Training settings every entry shares (the budget); an entry's "train" options cannot change them.
_SHARED_TRAIN = ("epochs", "batch_size", "seed", "device", "threads")


def _check_train_overrides(entry: str, train: Any) -> None:
    from segforget.train import OptimConfig

    allowed = sorted(k for k in OptimConfig.__dataclass_fields__ if k not in _SHARED_TRAIN)
    if not isinstance(train, Mapping) or any(k not in allowed for k in train):
        raise ValueError(
            f"Expected option `train` of entry {entry!r} to map training settings from "
            f"{allowed} to values, got {train!r}"
        )


def _method_options(opts: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's options without its training settings (``train``)."""
    return {k: v for k, v in opts.items() if k != "train"}


#: Wall time of a finished run, written into its run directory by the benchmark.
_TIMING_FILE = "benchmark_wall_s.json"

#: Settings a reused run may differ in: where and how it ran, not what it learned. The method
#: option ``regions`` is not compared either: it always names this benchmark's baseline run of
#: the seed (checked itself), however ``--out`` was spelled.
_REUSABLE_CHANGES = ("train.device", "train.threads", "train.checkpoint_async", "log.")


def _check_reusable(run_dir: Path, config: RunConfig) -> None:
    """Refuse to reuse the finished run ``run_dir`` unless it was trained with ``config``.

    Raises:
        ValueError: the run's config.yaml is missing or unreadable, or differs from ``config``
            in a setting that changes results (budget, model, data, views, method, tracking).
    """
    from segforget.train import read_config

    fix = "re-run without --resume into a new --out, or with --force to train every run again"
    try:
        saved = read_config(run_dir).to_dict()
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise ValueError(
            f"Expected the finished run {str(run_dir)!r} to hold a readable config.yaml to "
            f"reuse it, got {' '.join(str(exc).split())[:160]}; {fix}"
        ) from None
    current = config.to_dict()
    for values in (saved, current):
        values["method"]["options"].pop("regions", None)
    differ = [
        (f"{section}.{key}", saved[section].get(key), value)
        for section, entries in current.items()
        for key, value in entries.items()
        if not f"{section}.{key}".startswith(_REUSABLE_CHANGES) and saved[section].get(key) != value
    ]
    if differ:
        details = ", ".join(f"{key} (run {old!r}, now {new!r})" for key, old, new in differ[:4])
        raise ValueError(
            f"Expected the finished run {str(run_dir)!r} to have been trained with this "
            f"benchmark's settings to reuse it, got differences in {details}; {fix}"
        )


def forgetting_counts(
    forgetting_events: np.ndarray, observations: np.ndarray, threshold: int
) -> tuple[int, int]:
    """(frequently forgotten pixels, observed pixels): events >= threshold among observed."""
    observed = np.asarray(observations) > 0
    frequent = observed & (np.asarray(forgetting_events) >= threshold)
    return int(frequent.sum()), int(observed.sum())


def _thickness_reference(data_set: Any) -> ThicknessAccumulator:
    """The thickest body of every class on a training trace, to copy for each run."""
    from segforget.analysis.thickness import ThicknessAccumulator, feed_training_labels

    reference = ThicknessAccumulator(data_set.class_names)
    feed_training_labels(reference, data_set)
    return reference


def _beyond_training(
    run: Any, data_set: Any, reference: ThicknessAccumulator, rare: Sequence[str]
) -> dict[str, Any] | None:
    """Per rare class, the run's test accuracy in bodies thicker than any of the class on a
    training trace (``beyond``) and in the others (``within``), with ``beyond_share`` (of
    the class's test pixels) and ``train_max_thickness``; None without test predictions."""
    from segforget.analysis.thickness import feed_test_predictions

    saved = set(run.available_predictions())
    thickness = copy.deepcopy(reference)

    def predictions(split: str, view: str) -> np.ndarray | None:
        return run.predictions(split, view) if (split, view) in saved else None

    if not feed_test_predictions(thickness, data_set, predictions):
        return None
    result = thickness.result()
    return {
        name: {
            "train_max_thickness": result[name]["train_max_thickness"],
            "within": result[name]["within"]["accuracy"],
            "beyond": result[name]["beyond"]["accuracy"],
            "beyond_share": result[name]["beyond_share"],
            "under_thin": _under_thin(result[name]["under_thin"]),
        }
        for name in rare
        if name in result
    }


def _under_thin(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The top rows of a class under a thin body of the class above (see
    :meth:`~segforget.analysis.thickness.ThicknessAccumulator.result`): the class ``above``,
    ``thin_below`` (rows), ``thin_share`` and the accuracies ``thin`` and ``usual``."""
    if row is None:
        return None
    return {
        "above": row["above"],
        "thin_below": row["thin_below"],
        "thin_share": row["thin_share"],
        "thin": row["thin"]["accuracy"],
        "usual": row["usual"]["accuracy"],
    }


def _run_result(
    run_dir: Path,
    threshold: int,
    wall_s: float,
    thickness: tuple[Any, ThicknessAccumulator, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The numbers of one finished run; ``thickness``: (data set, training reference, rare
    classes) to add ``beyond_training`` (see :func:`_beyond_training`)."""
    from segforget.train import load_run

    run = load_run(run_dir)
    test = run.metrics["test"]
    frequent = observed = never = 0
    for mode, split, view in run.available_stats():
        if mode != "epoch" or split != "train":
            continue
        stats = run.stats(mode, split, view)
        f, o = forgetting_counts(stats.forgetting_events, stats.observations, threshold)
        frequent, observed = frequent + f, observed + o
        never += int(np.asarray(stats.never_learned).sum())
    return {
        "miou": test["miou"],
        "mean_class_accuracy": test["mean_class_accuracy"],
        "fwiou": test["fwiou"],
        "pixel_accuracy": test["pixel_accuracy"],
        "class_accuracy": dict(test["class_accuracy"]),
        "class_iou": dict(test["class_iou"]),
        "predicted_as": _predicted_as(test.get("confusion_matrix"), list(test["class_accuracy"])),
        "frequently_forgotten": frequent,
        "frequently_forgotten_fraction": frequent / observed if observed else None,
        "never_learned": never,
        "observed_pixels": observed,
        "wall_s": wall_s,
        "beyond_training": None if thickness is None else _beyond_training(run, *thickness),
    }


def _predicted_as(
    confusion: Sequence[Sequence[float]] | None, classes: Sequence[str]
) -> dict[str, dict[str, float]] | None:
    """Per true class, the share of its test pixels predicted as each class (a row of the
    confusion matrix, rows = true class, divided by its sum); None without a matrix."""
    if confusion is None:
        return None
    matrix = np.asarray(confusion, dtype=np.float64)
    if matrix.shape != (len(classes), len(classes)):
        return None
    shares = {}
    for i, name in enumerate(classes):
        total = matrix[i].sum()
        if total > 0:
            shares[name] = {other: float(matrix[i, j] / total) for j, other in enumerate(classes)}
    return shares


def _mean_predicted_as(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per true class and predicted class, the mean share over the runs that have it."""
    found: dict[str, dict[str, list[float]]] = {}
    for result in results:
        for true, row in (result.get("predicted_as") or {}).items():
            for other, share in row.items():
                found.setdefault(true, {}).setdefault(other, []).append(share)
    return {
        true: {other: float(np.mean(values)) for other, values in row.items()}
        for true, row in found.items()
    }


def _finished_line(prefix: str, result: Mapping[str, Any], reused: bool) -> str:
    """``[3/12] g2k9 seed 0: test mIoU 0.771, 6,922 frequently forgotten px (31 s)``."""
    what = "reused" if reused else "done"
    return (
        f"{prefix}: {what}, test mIoU {result['miou']:.3f}, "
        f"{result['frequently_forgotten']:,} frequently forgotten px ({result['wall_s']:.0f} s)"
    )


def _time_left_line(walls: Sequence[float], left: int) -> str:
    """The time the ``left`` runs still to train take at the mean wall time of ``walls``."""
    seconds = left * sum(walls) / len(walls)
    span = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    runs = "run" if left == 1 else "runs"
    return f"    about {span} left ({left} {runs} to train at {sum(walls) / len(walls):.0f} s each)"


def _mean_std(values: Sequence[float | None]) -> dict[str, float | None]:
    present = [float(v) for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(present) / len(present)
    # sample std (n - 1); 0 for a single seed
    std = (
        math.sqrt(sum((v - mean) ** 2 for v in present) / (len(present) - 1))
        if len(present) > 1
        else 0.0
    )
    return {"mean": mean, "std": std, "n": len(present)}


def summarize_runs(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and sample std over seeds of every number of :func:`_run_result` dicts."""
    keys = (
        "miou",
        "mean_class_accuracy",
        "fwiou",
        "pixel_accuracy",
        "frequently_forgotten",
        "frequently_forgotten_fraction",
        "never_learned",
        "wall_s",
    )
    summary: dict[str, Any] = {key: _mean_std([r[key] for r in results]) for key in keys}
    classes = list(results[0]["class_accuracy"]) if results else []
    summary["class_accuracy"] = {
        c: _mean_std([r["class_accuracy"].get(c) for r in results]) for c in classes
    }
    summary["class_iou"] = {c: _mean_std([r["class_iou"].get(c) for r in results]) for c in classes}
    summary["predicted_as"] = _mean_predicted_as(results)
    summary["beyond_training"] = _mean_beyond_training(results)
    return summary


def _mean_beyond_training(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per class of the runs' ``beyond_training``: mean and std over seeds of ``within`` and
    ``beyond``, and the (data-given) ``beyond_share`` and ``train_max_thickness``."""
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        for name, row in (result.get("beyond_training") or {}).items():
            rows.setdefault(name, []).append(row)
    return {
        name: {
            "within": _mean_std([r["within"] for r in found]),
            "beyond": _mean_std([r["beyond"] for r in found]),
            "beyond_share": found[0]["beyond_share"],
            "train_max_thickness": found[0]["train_max_thickness"],
            "under_thin": _mean_under_thin([r.get("under_thin") for r in found]),
        }
        for name, found in rows.items()
    }


def _mean_under_thin(rows: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """Mean and std over seeds of ``thin`` and ``usual`` (the data-given rest from the first
    run); None when a run has none (the same data gives every run the same pairs)."""
    if not rows or any(row is None for row in rows):
        return None
    first = rows[0]
    assert first is not None
    return {
        "above": first["above"],
        "thin_below": first["thin_below"],
        "thin_share": first["thin_share"],
        "thin": _mean_std([r["thin"] for r in rows if r]),
        "usual": _mean_std([r["usual"] for r in rows if r]),
    }


def _fmt(stat: Mapping[str, Any], digits: int = 3, scale: float = 1.0) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def _beyond_spread(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """a's mean exceeds b's by more than the two seed-to-seed stds together."""
    if a["mean"] is None or b["mean"] is None:
        return False
    return a["mean"] - b["mean"] > a["std"] + b["std"]


def _paired_cell(d: Mapping[str, Any] | None, digits: int) -> str:
    if d is None:
        return "n/a"
    p = d["p"]
    p_text = format_p(p)
    if p is not None and p < 0.05:
        p_text = f"**{p_text}**"
    text = f"{d['mean']:+.{digits}f} ± {d['std']:.{digits}f}, {d['wins']}/{d['seeds']}, {p_text}"
    if d.get("p_holm") is not None:
        text += f" (Holm {format_p(d['p_holm'])[2:]})"
    return text


def _predicted_as_lines(summary: Mapping[str, Any], rare: Sequence[str]) -> list[str]:
    """A table of where each rare class's test pixels go: its two most frequent wrong
    classes per method, with their mean shares over seeds (none without confusion matrices)."""
    entries = [e for e in summary if summary[e].get("predicted_as")]
    if not entries:
        return []

    def cell(row: Mapping[str, float] | None, name: str) -> str:
        wrong = sorted(
            ((share, other) for other, share in (row or {}).items() if other != name),
            key=lambda item: (-item[0], item[1]),
        )[:2]
        if not wrong:
            return "n/a"
        return ", ".join(f"{share * 100:.1f} % as {other}" for share, other in wrong)

    lines = [
        "",
        "Where the rare classes' test pixels go when they are wrong (the two most frequent "
        "wrong classes; share of the class's test pixels, mean over seeds):",
        "",
        "| method |" + "".join(f" **{c}** |" for c in rare),
        "|---|" + "---|" * len(rare),
    ]
    for entry in entries:
        shares = summary[entry]["predicted_as"]
        lines.append(f"| {entry} |" + "".join(f" {cell(shares.get(c), c)} |" for c in rare))
    return lines


def _split_table(
    summary: Mapping[str, Any],
    rare: Sequence[str],
    *,
    row_of: Callable[[Mapping[str, Any], str], Mapping[str, Any] | None],
    share_key: str,
    head: Callable[[str, Mapping[str, Any]], str],
    intro: str,
    keys: tuple[str, str],
) -> list[str]:
    """A per-method table of each rare class's accuracy on two sides of a split (``keys``:
    the plain side's and the bold side's means in the row :func:`row_of` gives for an entry
    and a class); only the classes with at least
    :data:`segforget.analysis.thickness.BEYOND_SHARE` (``share_key`` of the row) on the bold
    side in some entry; ``head`` writes a class's two column heads."""
    from segforget.analysis.thickness import BEYOND_SHARE

    shown: dict[str, Mapping[str, Any]] = {}
    for name in rare:
        for entry in summary:
            row = row_of(summary[entry], name)
            if row and row[share_key] is not None and row[share_key] >= BEYOND_SHARE:
                shown[name] = row
                break
    if not shown:
        return []
    heads = "".join(head(name, row) for name, row in shown.items())
    lines = ["", intro, "", f"| method |{heads}", "|---|" + "---|---|" * len(shown)]
    missing = {"mean": None}
    for entry in summary:
        cells = ""
        for name in shown:
            row = row_of(summary[entry], name) or {}
            cells += f" {_fmt(row.get(keys[0], missing))} | **{_fmt(row.get(keys[1], missing))}** |"
        lines.append(f"| {entry} |{cells}")
    return lines


def _beyond_training_lines(summary: Mapping[str, Any], rare: Sequence[str]) -> list[str]:
    """A table of each rare class's test accuracy in bodies thicker than any on a training
    trace and in the others, per method; only classes with at least
    :data:`segforget.analysis.thickness.BEYOND_SHARE` of their test pixels there."""

    def row_of(entry: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
        return (entry.get("beyond_training") or {}).get(name)

    def head(name: str, row: Mapping[str, Any]) -> str:
        return (
            f" {name}: within (<= {row['train_max_thickness']} rows, "
            f"{(1 - row['beyond_share']) * 100:.0f} %) | {name}: **beyond** "
            f"({row['beyond_share'] * 100:.0f} %) |"
        )

    intro = (
        "Rare classes in test bodies thicker than any of the class on a training trace (a "
        "geometry the training data does not show; a body is an unbroken vertical run of the "
        "class on one trace): test accuracy there (*beyond*) and in the other bodies "
        "(*within*, no thicker than the thickest training body), mean ± std over seeds; the "
        "share of the class's test pixels in brackets:"
    )
    return _split_table(
        summary,
        rare,
        row_of=row_of,
        share_key="beyond_share",
        head=head,
        intro=intro,
        keys=("within", "beyond"),
    )


def _under_thin_lines(summary: Mapping[str, Any], rare: Sequence[str]) -> list[str]:
    """A table of each rare class's top-row test accuracy under a thin body of the class
    above it and under the others, per method; only classes with at least
    :data:`segforget.analysis.thickness.BEYOND_SHARE` of their top rows under thin ones."""
    from segforget.analysis.thickness import THIN_QUANTILE, TOP_ROWS

    def row_of(entry: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
        return ((entry.get("beyond_training") or {}).get(name) or {}).get("under_thin")

    def head(name: str, row: Mapping[str, Any]) -> str:
        return (
            f" {name} under {row['above']} >= {row['thin_below']} rows "
            f"({(1 - row['thin_share']) * 100:.0f} %) | {name} under **thin** {row['above']} "
            f"({row['thin_share'] * 100:.0f} %) |"
        )

    intro = (
        f"Rare classes under a thin unit: test accuracy of the top {TOP_ROWS} rows of each "
        "class's bodies under a body of the class above it thinner than "
        f"{1 - THIN_QUANTILE:.0%} of those on the training traces (**thin**; the model tends "
        "to put the boundary as deep as training's thicker units would) and under the "
        "others, mean ± std over seeds; the share of those top rows in brackets:"
    )
    return _split_table(
        summary,
        rare,
        row_of=row_of,
        share_key="thin_share",
        head=head,
        intro=intro,
        keys=("usual", "thin"),
    )


def _seed_range(settings: Mapping[str, Any]) -> str:
    """``12 (0-11)``: how many seeds a benchmark ran, and which."""
    first = int(settings.get("first_seed", 0))
    count = int(settings["seeds"])
    return f"{count} ({first})" if count == 1 else f"{count} ({first}-{first + count - 1})"


def benchmark_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown tables of a benchmark report (see :func:`run_benchmark`)."""
    settings = report["settings"]
    summary = report["summary"]
    entries = list(summary)
    classes = list(summary[entries[0]]["class_accuracy"]) if entries else []
    rare = list(settings.get("rare_classes") or F3_RARE_CLASSES)
    rare_heads = "".join(f" **{c} acc.** |" for c in rare)
    rare_deltas = "".join(f" Δ {c} acc. |" for c in rare)
    command = settings.get("command") or ""
    # a fenced block: the command (shell-quoted by the CLI) may span lines (JSON options)
    lines = ["# Training-method benchmark", ""]
    if command:
        lines += ["Command:", "", "```bash", command, "```", ""]
    lines += [
        f"Data: `{settings['data']}`, model `{settings['model']}`, {settings['epochs']} epochs, "
        f"batch size {settings['batch_size']}, views {settings.get('views') or 'all'}, "
        f"seeds {_seed_range(settings)}  ",
        f"Machine: {settings['machine']}; date {settings['date']}  ",
        f"Frequently forgotten: a training pixel with >= {settings['threshold']} forgetting "
        "events (epoch-mode tracker, trained views summed); mean ± sample std over seeds. "
        f"Rare classes (bold): {', '.join(rare)}.",
        "",
        f"| method | test mIoU | mean class acc. | FWIoU |{rare_heads} "
        "freq. forgotten px | freq. forgotten % | wall time / run (s) |",
        "|---|---|---|---|" + "---|" * len(rare) + "---|---|---|",
    ]
    for entry in entries:
        s = summary[entry]
        rare_cells = "".join(
            f" **{_fmt(s['class_accuracy'].get(c, {'mean': None}))}** |" for c in rare
        )
        lines.append(
            f"| {entry} | {_fmt(s['miou'])} | {_fmt(s['mean_class_accuracy'])} | "
            f"{_fmt(s['fwiou'])} |{rare_cells} "
            f"{_fmt(s['frequently_forgotten'], 0)} | "
            f"{_fmt(s['frequently_forgotten_fraction'], 2, 100.0)} | {_fmt(s['wall_s'], 0)} |"
        )
    lines += ["", "Per-class test accuracy:", ""]
    header = " | ".join(f"**{c}**" if c in rare else c for c in classes)
    lines += [f"| method | {header} |", "|---|" + "---|" * len(classes)]
    for entry in entries:
        cells = " | ".join(_fmt(summary[entry]["class_accuracy"][c]) for c in classes)
        lines.append(f"| {entry} | {cells} |")
    lines += _predicted_as_lines(summary, rare)
    lines += _beyond_training_lines(summary, rare)
    lines += _under_thin_lines(summary, rare)
    comparisons = report.get("comparisons") or {}
    if comparisons:
        lines += ["", "Against the references (difference of means; * = beyond the spread):", ""]
        lines += [
            f"| method | vs | Δ mIoU |{rare_deltas} freq. forgotten change |",
            "|---|---|---|" + "---|" * len(rare) + "---|",
        ]
        for entry, refs in comparisons.items():
            for ref, c in refs.items():

                def cell(d: Mapping[str, Any]) -> str:
                    if d["delta"] is None:
                        return "n/a"
                    return f"{d['delta']:+.3f}{'*' if d['beyond_spread'] else ''}"

                change = c["forgotten_change"]
                change_text = "n/a" if change is None else f"{change * 100:+.1f}%"
                rare_text = "".join(f" {cell(c[name])} |" for name in rare)
                lines.append(f"| {entry} | {ref} | {cell(c['miou'])} |{rare_text} {change_text} |")
    paired_rows = [
        (entry, ref, c["paired"])
        for entry, refs in comparisons.items()
        for ref, c in refs.items()
        if c.get("paired")
    ]
    if paired_rows:
        lines += [
            "",
            "Paired by seed (runs of one seed share the initialization and the batch order): "
            "mean ± sample std of the per-seed difference, seeds where the method is better "
            "(fewer forgotten pixels is better), paired t-test p (bold: p < 0.05), and in "
            "brackets p adjusted by Holm's method over the metrics of the row (a row's "
            "verdict holds at 5 % family-wise where that is below 0.05):",
            "",
            f"| method | vs | Δ mIoU |{rare_deltas} Δ freq. forgotten px |",
            "|---|---|---|" + "---|" * len(rare) + "---|",
        ]
        for entry, ref, paired in paired_rows:
            cells = [
                _paired_cell(paired.get(name), 0 if lower else 3)
                for name, lower in _paired_metrics(rare)
            ]
            lines.append(f"| {entry} | {ref} | " + " | ".join(cells) + " |")
    if report.get("best"):
        lines += ["", f"Best forgetting-aware method by mean test mIoU: **{report['best']}**."]
    lines += ["", "![mean ± std and the single seeds of each method](benchmark.png)"]
    lines.append("")
    return "\n".join(lines)


def _metric(result: Mapping[str, Any], name: str) -> float | None:
    if name in ("miou", "frequently_forgotten"):
        return result[name]
    return result["class_accuracy"].get(name)  # a rare class's accuracy


def paired_comparison(
    runs: Sequence[Mapping[str, Any]],
    reference: Sequence[Mapping[str, Any]],
    rare: Sequence[str] = F3_RARE_CLASSES,
) -> dict[str, Any]:
    """Seed-by-seed differences of an entry's runs against a reference entry's.

    Args:
        runs, reference: per-seed results (``seed`` plus the numbers of one run each).
        rare: the rare classes whose test accuracy is compared.

    Returns:
        Per metric (``miou``, each rare class's accuracy by its name, ``frequently_forgotten``
        pixels): :func:`segforget.compare.paired_differences` over the seeds both have, with
        plain numbers (``wins``: seeds where the entry is better; fewer forgotten pixels is
        better), or None when no seed has both values.
    """
    by_seed = {r["seed"]: r for r in reference}
    out: dict[str, Any] = {}
    for name, lower in _paired_metrics(rare):
        pairs = [
            (_metric(r, name), _metric(by_seed[r["seed"]], name))
            for r in runs
            if r["seed"] in by_seed
        ]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            out[name] = None
            continue
        diff = paired_differences(
            [[a] for a, _ in pairs], [[b] for _, b in pairs], lower_is_better=lower
        )
        out[name] = {k: v[0] if isinstance(v, list) else v for k, v in diff.items()}
    # Holm over the metrics of this one comparison: the family a verdict on it draws from
    tested = [name for name, value in out.items() if value is not None]
    for name, p_holm in zip(tested, holm([out[name]["p"] for name in tested]), strict=True):
        out[name]["p_holm"] = p_holm
    return out


def _comparisons(
    summary: Mapping[str, Any],
    results: Mapping[str, Sequence[Mapping[str, Any]]],
    rare: Sequence[str],
) -> dict:
    refs = [e for e in ("baseline", "rotate") if e in summary]
    out: dict[str, Any] = {}
    for entry in summary:
        if entry in ("baseline", "rotate"):
            continue
        out[entry] = {}
        for ref in refs:
            a, b = summary[entry], summary[ref]

            def delta(x: Mapping[str, Any], y: Mapping[str, Any]) -> dict[str, Any]:
                if x["mean"] is None or y["mean"] is None:
                    return {"delta": None, "beyond_spread": False}
                return {"delta": x["mean"] - y["mean"], "beyond_spread": _beyond_spread(x, y)}

            fa, fb = a["frequently_forgotten"]["mean"], b["frequently_forgotten"]["mean"]
            missing = {"mean": None}
            out[entry][ref] = {
                "miou": delta(a["miou"], b["miou"]),
                **{
                    c: delta(
                        a["class_accuracy"].get(c, missing), b["class_accuracy"].get(c, missing)
                    )
                    for c in rare
                },
                "forgotten_change": (fa - fb) / fb if fb else None,
                "paired": paired_comparison(results[entry], results[ref], rare),
            }
    return out


def _resolve_rare(rare: Sequence[str] | None, data_set: Any) -> list[str]:
    """The rare classes the tables show: ``rare`` checked against the data, or the default."""
    names = list(data_set.class_names)
    if rare is None:
        if all(c in names for c in F3_RARE_CLASSES):
            return list(F3_RARE_CLASSES)
        return rare_classes(names, list(data_set.class_fractions("train+val")))
    rare = list(rare)
    unknown = [c for c in rare if c not in names]
    if not rare or unknown or len(set(rare)) != len(rare):
        raise ValueError(
            f"Expected `--rare` to name distinct classes of the data set ({', '.join(names)}), "
            f"got {','.join(rare)!r}"
        )
    reserved = [c for c in rare if c in _COMPARISON_KEYS]
    if reserved:
        raise ValueError(
            f"Expected `--rare` classes other than {', '.join(_COMPARISON_KEYS)} (keys of "
            f"benchmark.json), got {reserved[0]!r}"
        )
    return [c for c in names if c in rare]  # label order


def run_benchmark(
    out: str | Path,
    *,
    preset: str = "small",
    data: str | None = None,
    seeds: int = 3,
    first_seed: int = 0,
    methods: Sequence[str] = DEFAULT_METHODS,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    epochs: int = 12,
    model: str = "light",
    batch_size: int = 8,
    views: Sequence[str] | None = None,
    threshold: int = 2,
    rare: Sequence[str] | None = None,
    device: str = "auto",
    threads: int | None = None,
    resume: bool = False,
    force: bool = False,
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every entry of ``methods`` for every seed; write OUT/benchmark.{json,md,png}.

    Args:
        out: output directory (must not exist unless ``resume`` or ``force``).
        preset: synthetic survey preset (``small``, ``medium``, ``f3``); the survey is the
            same for all seeds (``synthetic:PRESET:0``), the seeds change initialisation,
            data order, augmentation and validation split.
        data: a data spec instead of ``preset`` (e.g. ``f3:DIR``).
        seeds: number of seeds (``first_seed`` .. ``first_seed + seeds - 1``).
        first_seed: the first seed; a later first seed replicates a benchmark on fresh seeds
            (e.g. ``seeds=12, first_seed=12`` after seeds 0-11), in the same ``out`` or another.
        methods: entries (method names or labels defined in ``options``).
        options: per-entry method options (see :func:`resolve_entries`).
        epochs, model, batch_size, device, threads: training settings shared by all runs.
        views: views to train on (None: all views of the data).
        threshold: forgetting events that make a pixel frequently forgotten.
        rare: the classes whose test accuracy the tables single out (None: scruff and
            zechstein when the data has them, else the (at most two smallest) classes under
            5 % of the labelled training pixels; :func:`segforget.classes.rare_classes`).
        resume: keep finished runs found in ``out`` (a run is finished when it has metrics.json);
            each must have been trained with the configuration it would be trained with now.
        force: delete ``out`` first (only a benchmark directory); not together with ``resume``.
        progress: called with a line of text before each run trains, after each run (its
            test mIoU, frequently forgotten pixels and wall time) and, while runs remain to
            train, with the time they will take at the mean wall time so far.

    Returns:
        The report written to OUT/benchmark.json.

    Raises:
        ValueError: invalid entries or settings (all checked before the first run starts);
            ``resume`` and ``force`` together; a finished run to reuse that was trained with
            other settings; ``force`` on a folder that is not a benchmark directory.
        FileExistsError: ``out`` exists without ``resume`` or ``force``.
    """
    import shutil

    from segforget.data.spec import absolute_spec
    from segforget.models import validate_model_name
    from segforget.train import RunConfig
    from segforget.train.loop import RESUME_OR_FORCE

    if resume and force:
        raise ValueError(RESUME_OR_FORCE)
    entries = resolve_entries(methods, options)
    checks = (
        ("seeds", seeds, 1),
        ("first-seed", first_seed, 0),
        ("epochs", epochs, 1),
        ("threshold", threshold, 1),
    )
    for key, value, low in checks:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"Expected `--{key}` to be an integer >= {low}, got {value!r}")
    spec = data if data is not None else f"synthetic:{preset}:0"
    if data is None:
        from segforget.data.synthetic import PRESETS

        if preset not in PRESETS:
            raise ValueError(f"Expected `--preset` to be one of {sorted(PRESETS)}, got {preset!r}")
    validate_model_name(model)
    out = Path(out)
    if out.exists() and not (resume or force):
        raise FileExistsError(
            f"Expected `--out` not to exist, got {str(out)!r} (pass --resume to reuse its "
            "finished runs, or --force to replace it)"
        )

    def config_for(name: str, opts: dict[str, Any], seed: int) -> RunConfig:
        config = RunConfig()
        config.data.spec = absolute_spec(spec)
        config.data.views = None if views is None else list(views)
        config.model.name = model
        config.train.epochs = epochs
        config.train.batch_size = batch_size
        config.train.seed = seed
        config.train.device = device
        config.train.threads = threads
        config.track.mode = "epoch"
        config.log.progress = False
        config.log.tensorboard = False
        config.method.name = name
        config.method.options = _method_options(opts)
        for key, value in opts.get("train", {}).items():
            setattr(config.train, key, value)
        config.validate()
        return config

    # Validate every configuration and method option before the first (long) run.
    from segforget.augment.methods import build_method

    for name, opts in entries.values():
        config_for(name, opts, 0)
        if name in _OFFLINE:
            # the regions run does not exist yet: check the options as the online inner method
            build_method("online", {"inner": name, **_method_options(opts)})
        else:
            build_method(name, _method_options(opts))

    # Open the data once, so a missing or invalid data set fails before any run starts.
    from segforget.data import load_data

    data_set = load_data(spec)
    found_views = data_set.views
    rare = _resolve_rare(rare, data_set)
    thickness = (data_set, _thickness_reference(data_set), rare)
    for view in views or ():
        if view not in found_views:
            raise ValueError(
                f"Expected `--views` to hold views of {list(found_views)}, got {view!r}"
            )
    from segforget.train.loop import resolve_device

    resolve_device(device)

    needs_reference = any(name in _OFFLINE for name, _ in entries.values())
    order = list(entries)
    if needs_reference and "baseline" not in entries:
        order = ["baseline", *order]
    # Every run's configuration, and whether a finished run in `out` is reused, is settled
    # before the first run starts (or `out` is deleted).
    plan: list[tuple[int, str, Path, RunConfig, bool]] = []
    for seed in range(first_seed, first_seed + seeds):
        for entry in order:
            name, opts = entries.get(entry, ("baseline", {}))
            opts = dict(opts)
            if name in _OFFLINE:
                opts["regions"] = str(out / "runs" / "baseline" / f"seed{seed}")
            run_dir = out / "runs" / entry / f"seed{seed}"
            config = config_for(name, opts, seed)
            reuse = (
                resume
                and (run_dir / "metrics.json").is_file()
                and (run_dir / _TIMING_FILE).is_file()
            )
            if reuse:
                _check_reusable(run_dir, config)
            plan.append((seed, entry, run_dir, config, reuse))

    if force and out.exists():
        if not out.is_dir() or (
            any(out.iterdir())
            and not ((out / "runs").is_dir() or (out / "benchmark.json").is_file())
        ):
            raise ValueError(
                f"Expected `--out` with --force to be a benchmark directory (holding runs/ or "
                f"benchmark.json), got {str(out)!r}; refusing to delete it"
            )
        shutil.rmtree(out)

    results: dict[str, list[dict[str, Any]]] = {entry: [] for entry in order}
    from segforget.train import train

    to_train = sum(1 for *_, reuse in plan if not reuse)
    trained_walls: list[float] = []
    for done, (seed, entry, run_dir, config, reuse) in enumerate(plan, start=1):
        timing = run_dir / _TIMING_FILE
        if reuse:
            wall = float(json.loads(timing.read_text())["wall_s"])
        else:
            if progress:
                progress(f"[{done}/{len(plan)}] {entry} seed {seed}: training")
            started = time.perf_counter()
            train(config, run_dir, force=True, command=[command])
            wall = time.perf_counter() - started
            atomic_write_json(timing, {"wall_s": wall})
            trained_walls.append(wall)
        result = _run_result(run_dir, threshold, wall, thickness)
        result["seed"] = seed
        results[entry].append(result)
        if progress:
            left = to_train - len(trained_walls)
            progress(_finished_line(f"[{done}/{len(plan)}] {entry} seed {seed}", result, reuse))
            if not reuse and left:
                progress(_time_left_line(trained_walls, left))

    summary = {entry: summarize_runs(results[entry]) for entry in order}
    comparisons = _comparisons(summary, results, rare)
    # the best forgetting-aware entry: not one of the methods blind to forgetting
    aware = [e for e in order if entries.get(e, ("baseline", {}))[0] not in REFERENCE_METHOD_NAMES]
    best = max(aware, key=lambda e: summary[e]["miou"]["mean"] or -1.0, default=None)
    import torch

    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available() and device != "cpu":
        machine += f", {torch.cuda.get_device_name(0)}"
    report = {
        "settings": {
            "command": command,
            "data": spec,
            "model": model,
            "epochs": epochs,
            "batch_size": batch_size,
            "views": None if views is None else list(views),
            "seeds": seeds,
            "first_seed": first_seed,
            "threshold": threshold,
            "rare_classes": list(rare),
            "entries": {e: {"method": n, "options": o} for e, (n, o) in entries.items()},
            "machine": machine,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "runs": results,
        "summary": summary,
        "comparisons": comparisons,
        "best": best,
    }
    from segforget.augment.figures import plot_benchmark

    atomic_write_json(out / "benchmark.json", report)
    plot_benchmark(report, out / "benchmark.png")
    atomic_write_text(out / "benchmark.md", benchmark_markdown(report))
    return report
