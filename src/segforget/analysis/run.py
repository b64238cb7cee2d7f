"""Analyze a run directory: every analysis, section-chunk by section-chunk, into RUN/analysis.

Reads the layout that ``segforget train`` writes (``config.yaml``, ``metrics.json``,
``dynamics/<mode>/<split>_<view>/`` ForgettingStats stores, ``predictions/<split>_<view>.npy``)
and the data the run was trained on (its data spec). Statistics are loaded one chunk of whole
sections at a time (``ForgettingStats.load(path, pixels=slice)``), so an F3-sized store is
analysed with bounded memory: the largest resident arrays are one chunk (``chunk_pixels``) and,
for inline + crossline data, one int32 voxel volume (~290 MB for F3).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segforget.analysis.boundary import BoundaryAccumulator
from segforget.analysis.data_map import DataMapAccumulator
from segforget.analysis.margin import MarginSampler
from segforget.analysis.overview import OverviewAccumulator
from segforget.analysis.regions import REGION_FIELDS, RegionAccumulator
from segforget.analysis.test_dynamics import SwitchErrorAccumulator
from segforget.analysis.thickness import (
    ThicknessAccumulator,
    feed_test_predictions,
    thickness_findings,
)
from segforget.analysis.timing import TimingAccumulator
from segforget.analysis.volume import VolumeAccumulator
from segforget.io import atomic_directory, atomic_write_json, to_jsonable

__all__ = ["RunReader", "StoreRef", "analyze_run", "ANALYSIS_DIR"]

#: Sub-directory of the run that :func:`analyze_run` writes (replaced as a whole).
ANALYSIS_DIR = "analysis"
_TRAIN_SPACE = "train"
#: The arrays the second pass (regions) and the section images need: all they re-read.
_EVENT_ARRAYS = ("forgetting_events", "observations")


@dataclass(frozen=True)
class StoreRef:
    """One ForgettingStats store of a run: ``dynamics/<mode>/<split>_<view>``."""

    mode: str
    split: str
    view: str
    path: Path
    num_pixels: int
    meta: dict[str, Any] = field(hash=False, compare=False)


class RunReader:
    """Read-only access to a run directory, validated on construction.

    Args:
        run_dir: the directory ``segforget train`` wrote.

    Raises:
        FileNotFoundError: if ``run_dir`` does not exist.
        ValueError: if it is not a run directory, holds no statistics, or a store is damaged.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        from segforget.dynamics import ForgettingStats
        from segforget.train import load_run

        path = Path(run_dir)
        if not path.exists():
            raise FileNotFoundError(
                f"Expected `run_dir` to be an existing run directory, got {path} (no such "
                "directory); pass the directory that `segforget train` wrote"
            )
        if not path.is_dir() or not (path / "config.yaml").is_file():
            raise ValueError(
                f"Expected `run_dir` to be a run directory written by `segforget train` (with "
                f"config.yaml and dynamics/), got {path}"
            )
        self.path = path
        self.run = load_run(path)  # ValueError for a damaged config.yaml or metrics.json
        self.config, self.metrics = self.run.config, self.run.metrics
        self.stores: list[StoreRef] = []
        for mode, split, view in self.run.available_stats():
            store = path / "dynamics" / mode / f"{split}_{view}"
            info = ForgettingStats.info(store)  # raises ValueError for a damaged store
            self.stores.append(
                StoreRef(mode, split, view, store, int(info["num_pixels"]), dict(info["meta"]))
            )
        if not self.stores:
            raise ValueError(
                "Expected `run_dir` to hold tracker statistics in "
                f"dynamics/<mode>/<split>_<view>/, got none in {path}; train with tracking on "
                "(--track epoch)"
            )
        if not self.data_spec:
            raise ValueError(
                "Expected `run_dir` config.yaml to name the data (data.spec), got none in "
                f"{self.path}"
            )
        self._data = None
        self._verified: set[Path] = set()
        self._checksums: dict[Path, Any] = {}  # StoreChecksums of stores read front to back

    @property
    def data_spec(self) -> str:
        """The data spec the run trained on (``f3:DIR``, ``synthetic:PRESET[:SEED]``, ...)."""
        return self.run.data_spec or str(self.stores[0].meta.get("data_spec") or "")

    def data(self) -> Any:
        """The run's data set (segforget.data), loaded once."""
        if self._data is None:
            self._data = self.run.load_data()
        return self._data

    @property
    def modes(self) -> list[str]:
        """Recording modes present, ``epoch`` first."""
        found = {s.mode for s in self.stores}
        return sorted(found, key=lambda m: (m != "epoch", m))

    def find(self, *, mode: str | None = None, split: str | None = None) -> list[StoreRef]:
        """Stores matching ``mode`` and ``split`` (None matches all)."""
        return [
            s
            for s in self.stores
            if (mode is None or s.mode == mode) and (split is None or s.split == split)
        ]

    def load(self, ref: StoreRef, start: int, stop: int, section_pixels: int) -> Any:
        """ForgettingStats of sections ``start:stop`` (section_pixels = H * W) of a store.

        A store's checksums are checked once: while it is read front to back (the ranges of
        the first pass, fed to :class:`~segforget.dynamics.StoreChecksums`, so it is read
        once, and a damaged store raises ValueError when the last range is loaded), or, when
        a range is first asked for out of order, by :meth:`ForgettingStats.verify` first.
        """
        from segforget.dynamics import ForgettingStats, StoreChecksums

        pixels = slice(start * section_pixels, stop * section_pixels)
        if ref.path in self._verified:
            return ForgettingStats.load(ref.path, pixels=pixels)
        checksums = self._checksums.setdefault(ref.path, StoreChecksums(ref.path))
        if pixels.start != checksums.position:  # out of order: check the whole store first
            ForgettingStats.verify(ref.path)
            self._verified.add(ref.path)
            return ForgettingStats.load(ref.path, pixels=pixels)
        stats = ForgettingStats.load(ref.path, pixels=pixels)
        checksums.feed(stats)
        if checksums.complete:
            checksums.check()
            self._verified.add(ref.path)
        return stats

    def read(
        self, ref: StoreRef, start: int, stop: int, section_pixels: int, names: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """Only the arrays ``names`` of sections ``start:stop`` of a store (checksums as in
        :meth:`load`: a store not yet checked is verified first)."""
        from segforget.dynamics import ForgettingStats

        if ref.path not in self._verified:
            ForgettingStats.verify(ref.path)
            self._verified.add(ref.path)
        pixels = slice(start * section_pixels, stop * section_pixels)
        return ForgettingStats.read(ref.path, names, pixels=pixels)

    def predictions(self, split: str, view: str) -> np.ndarray | None:
        """Final predicted classes (N, H, W) uint8 of a split and view (memory-mapped), if saved."""
        if (split, view) not in self.run.available_predictions():
            return None
        try:
            return self.run.predictions(split, view)
        except ValueError as error:
            raise ValueError(
                f"Expected `run_dir` predictions to be readable .npy files, got "
                f"{split}_{view}.npy in {self.path}: {error}"
            ) from None


# --------------------------------------------------------------------------- helpers
@dataclass
class _Space:
    ref: StoreRef
    data_split: str  # split name to read labels with
    num_sections: int
    shape: tuple[int, int]

    @property
    def section_pixels(self) -> int:
        return self.shape[0] * self.shape[1]


def _space(run: RunReader, ref: StoreRef) -> _Space:
    data = run.data()
    data_split = "train+val" if ref.split == _TRAIN_SPACE else ref.split
    space = data.space(data_split, ref.view)
    if space.num_pixels != ref.num_pixels:
        raise ValueError(
            f"Expected the store {ref.path} to cover the data's pixel space of "
            f"{space.num_pixels} pixels ({ref.split}, {ref.view}), got {ref.num_pixels}; was the "
            "run trained on other data?"
        )
    return _Space(ref, data_split, int(space.num_sections), tuple(space.section_shape))


def _chunks(space: _Space, chunk_pixels: int) -> Iterator[tuple[int, int]]:
    step = max(1, chunk_pixels // space.section_pixels)
    for start in range(0, space.num_sections, step):
        yield start, min(space.num_sections, start + step)


def _section(arr: np.ndarray | None, n: int, shape: tuple[int, int]) -> np.ndarray | None:
    return None if arr is None else np.asarray(arr).reshape((n,) + shape)


class _Progress:
    """A rich progress bar over chunks, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
            )
            self.bar.__enter__()
        return self

    def task(self, description: str, total: int) -> Any:
        return self.bar.add_task(description, total=total) if self.bar else None

    def advance(self, task: Any) -> None:
        if self.bar is not None:
            self.bar.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _frequent_boundary_findings(frequent: dict[str, Any] | None) -> list[str]:
    """Where the frequently forgotten pixels lie relative to the label boundary."""
    if not frequent or not frequent["pixels"]:
        return []
    on, within = frequent["on_boundary_share"], frequent["within_1px_share"]
    pixels = frequent["pixels_by_distance"]
    boundary_share = pixels[0] / sum(pixels) if sum(pixels) else 0.0
    lead = (
        f"Of the {frequent['pixels']} frequently forgotten pixels (>= {frequent['k']} events), "
        f"{on:.0%} are label-boundary pixels (which make up {boundary_share:.1%} of all pixels) "
        f"and {within:.0%} lie within 1 px of a boundary"
    )
    if on >= 0.5:
        return [
            f"{lead}: most of the frequent forgetting is the predicted boundary moving by a "
            f"pixel between observations ({frequent['by_distance'][3]} of these pixels lie 3 px "
            "or more from any boundary)."
        ]
    return [f"{lead}; most lie away from the boundary, inside the labelled regions."]


def _findings(summary: dict[str, Any], class_names: list[str]) -> list[str]:
    """Plain-language statements of what the numbers show (or do not show)."""
    notes = []
    ema = summary.get("weight_average")
    if ema and summary.get("mode") == "epoch":
        notes.append(
            f"The tracked model is a weight average (train.ema = {ema:g}): its forgetting "
            "events describe the average, which changes less from epoch to epoch than the "
            "trained weights; compare forgetting counts only with runs tracked the same way."
        )
    e = summary["boundary"]["enrichment_2px"]
    if e is not None:
        share = summary["boundary"]["near_pixel_share"]
        if e > 1.2:
            notes.append(
                f"Forgetting is concentrated at class boundaries: pixels within 2 px of a label "
                f"boundary ({share:.1%} of pixels) carry {e:.2f}x their share of forgetting events."
            )
        else:
            notes.append(
                f"Forgetting is not concentrated at class boundaries here (enrichment within "
                f"2 px = {e:.2f}): forgetting is spread over the interiors of the labelled "
                "regions rather than their edges."
            )
    notes.extend(_frequent_boundary_findings(summary["boundary"].get("frequent")))
    per_class = summary["per_class"]
    largest = summary["overview"].get("largest_class")
    from segforget.classes import F3_RARE_CLASSES, RARE_SHARE

    rare = [n for n in F3_RARE_CLASSES if n in per_class] or [
        n
        for n in class_names
        if per_class[n]["pixels"]
        and per_class[n]["share_of_pixels"] is not None
        and per_class[n]["share_of_pixels"] < RARE_SHARE
    ]
    ratios = {n: per_class[n].get("events_per_pixel_vs_largest_class") for n in rare}
    ratios = {n: r for n, r in ratios.items() if r is not None and n != largest}
    if largest and ratios:

        def describe(n: str, r: float) -> str:
            never = per_class[n]["never_learned"] or 0.0
            # Never-learned pixels have no forgetting event, yet Toneva ranks them most forgotten.
            extra = f" ({never:.0%} of its pixels never learned)" if never >= 0.2 else ""
            return f"{n} {r:.2f}x{extra}"

        text = ", ".join(describe(n, r) for n, r in ratios.items())
        if all(r > 1 for r in ratios.values()):
            notes.append(
                f"Rare classes forget more per pixel than the largest class ({largest}): {text}."
            )
        else:
            notes.append(
                f"Rare classes do not all forget more per pixel than the largest class "
                f"({largest}): {text}."
            )
    m = summary["margin"]
    rho = m.get("spearman_events_vs_aum")
    if rho is not None:
        lead = (
            "Pixels near the decision boundary forget more"
            if rho <= -0.2
            else "The margin explains little of the forgetting here"
        )
        notes.append(
            f"{lead}: Spearman correlation between forgetting events and mean margin "
            f"(true-class logit minus the largest other) = {rho:.2f}."
        )
    notes.extend(thickness_findings(summary.get("thickness")))
    for name, td in (summary.get("test_dynamics") or {}).items():
        a = td.get("auroc_switches_predict_error")
        if a is not None:
            notes.append(
                f"On {name}, switch events predict final errors with AUROC {a:.2f} "
                "(0.5 = chance), without labels."
            )
    return notes


# --------------------------------------------------------------------------- analyze_run
def analyze_run(
    run_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    k: int | None = None,
    chunk_pixels: int = 4_000_000,
    top_sections: int = 3,
    browser_sections: int = 30,
    max_samples: int = 1_000_000,
    seed: int = 0,
    min_region_size: int = 4,
    figures: bool = True,
) -> dict[str, Any]:
    """Run every analysis on a run directory and write ``RUN/analysis``.

    Writes (replacing a previous ``RUN/analysis`` as a whole, only on success):
    ``summary.json`` (keys ``overview``, ``per_class``, ``boundary``, ``margin``, ``timing``,
    ``regions``, ``data_map``, ``test_dynamics``, ``thickness``, ``volume``, ``k``,
    ``findings``, ``figures``, ``sections``), ``regions.csv`` / ``regions.json`` (top
    frequently forgotten regions), PNG figures, ``correctness.gif`` when the history was
    recorded, and ``sections/`` (small per-section PNGs for the report's browser).

    Args:
        run_dir: a run directory written by ``segforget train``.
        progress: show rich progress bars.
        k: frequent-forgetting threshold (None: chosen from the distribution, see
            :func:`segforget.analysis.choose_frequent_threshold`).
        chunk_pixels: pixels per chunk of sections read at once (memory bound).
        top_sections: sections with the most forgetting drawn as forgetting-map figures, per view.
        browser_sections: sections with the most forgetting offered by the report's browser,
            per view.
        max_samples: pixel sample size of the margin correlations.
        seed: seed of that sample.
        min_region_size: smallest frequently forgotten region counted, in pixels.
        figures: write the figures and the browser's section images (False: numbers only).

    Returns:
        the summary dict (as written to summary.json).

    Raises:
        FileNotFoundError: if ``run_dir`` does not exist.
        ValueError: if it is not a run directory, has no training statistics, or is damaged.
    """
    if k is not None and (not isinstance(k, int) or k < 1):
        raise ValueError(f"Expected `k` to be an integer >= 1 or None, got {k!r}")
    if chunk_pixels < 1:
        raise ValueError(f"Expected `chunk_pixels` to be >= 1, got {chunk_pixels}")
    run = RunReader(run_dir)
    mode = next((m for m in run.modes if run.find(mode=m, split=_TRAIN_SPACE)), None)
    if mode is None:
        raise ValueError(
            f"Expected `run_dir` to hold statistics of the training split "
            f"(dynamics/<mode>/train_<view>), got only {[s.path.name for s in run.stores]}"
        )
    data = run.data()
    class_names = list(data.class_names)
    c = len(class_names)
    order = {view: i for i, view in enumerate(data.views)}  # inline before crossline
    train_refs = sorted(
        run.find(mode=mode, split=_TRAIN_SPACE), key=lambda r: order.get(r.view, 99)
    )
    spaces = [_space(run, ref) for ref in train_refs]
    test_refs = [ref for ref in run.find(mode=mode) if ref.split != _TRAIN_SPACE]
    test_spaces = [_space(run, ref) for ref in test_refs]

    overview = OverviewAccumulator(class_names, k=k)
    boundary = BoundaryAccumulator(class_names)
    sampler = MarginSampler(
        sum(s.ref.num_pixels for s in spaces), max_samples=max_samples, seed=seed
    )
    dmap = DataMapAccumulator()
    timing = TimingAccumulator()
    thickness = ThicknessAccumulator(class_names)
    views = {s.ref.view: s for s in spaces}
    volume = None
    if "inline" in views and "crossline" in views:
        il = views["inline"]
        volume = VolumeAccumulator((il.num_sections, il.shape[1], il.shape[0]))
    section_events = {s.ref.view: np.zeros(s.num_sections, dtype=np.int64) for s in spaces}
    has_confidence = has_history = False
    n_chunks = sum(len(list(_chunks(s, chunk_pixels))) for s in spaces)

    with _Progress(progress) as bar:
        task = bar.task("analysis: pass 1/2", n_chunks)
        for space in spaces:
            for start, stop in _chunks(space, chunk_pixels):
                n, shape = stop - start, space.shape
                st = run.load(space.ref, start, stop, space.section_pixels)
                labels = data.label_sections(
                    space.data_split, space.ref.view, np.arange(start, stop)
                )
                thickness.update_train(labels)
                ev = _section(st.forgetting_events, n, shape)
                obs = _section(st.observations, n, shape)
                valid = (labels >= 0) & (labels < c)
                overview.update(ev, obs, labels, never_learned=_section(st.never_learned, n, shape))
                boundary.update(ev, obs, labels)
                sampler.update(ev, obs, aum=st.aum, confidence=st.confidence, valid=valid)
                if st.confidence is not None and st.variability is not None:
                    has_confidence = True
                    dmap.update(ev, obs, st.confidence, st.variability, valid=valid)
                timing.update_first_learned(
                    st.first_learned[valid.ravel()], st.observations[valid.ravel()]
                )
                if st.history is not None:
                    has_history = True
                    pick = np.flatnonzero((st.forgetting_events > 0) & valid.ravel())
                    if pick.size:
                        timing.update_history(st.correctness_history(pick))
                counted = np.where(valid & (obs > 0), ev, 0)
                section_events[space.ref.view][start:stop] = counted.sum(axis=(1, 2))
                if volume is not None:
                    volume.update(counted, view=space.ref.view, sections=range(start, stop))
                bar.advance(task)
        k_value = overview.threshold()
        regions = RegionAccumulator(k=k_value, class_names=class_names, min_size=min_region_size)
        task = bar.task("analysis: pass 2/2", n_chunks)
        for space in spaces:
            for start, stop in _chunks(space, chunk_pixels):
                n = stop - start
                st = run.read(space.ref, start, stop, space.section_pixels, _EVENT_ARRAYS)
                labels = data.label_sections(
                    space.data_split, space.ref.view, np.arange(start, stop)
                )
                ev = _section(st["forgetting_events"], n, space.shape)
                ev = np.where(_section(st["observations"], n, space.shape) > 0, ev, 0)
                regions.update(ev, labels, view=space.ref.view, sections=range(start, stop))
                bar.advance(task)
        test_dynamics: dict[str, Any] = {}
        for space in test_spaces:
            pred_all = run.predictions(space.ref.split, space.ref.view)
            if pred_all is None:
                continue
            acc = SwitchErrorAccumulator()
            for start, stop in _chunks(space, chunk_pixels):
                n = stop - start
                st = run.load(space.ref, start, stop, space.section_pixels)
                labels = data.label_sections(
                    space.data_split, space.ref.view, np.arange(start, stop)
                )
                acc.update(
                    _section(st.switch_events, n, space.shape),
                    _section(st.observations, n, space.shape),
                    np.asarray(pred_all[start:stop]),
                    labels,
                    num_classes=c,
                )
            test_dynamics[f"{space.ref.split}_{space.ref.view}"] = acc.result()
        tested = feed_test_predictions(thickness, data, run.predictions, chunk_pixels=chunk_pixels)

    ov = overview.result()
    train_config = run.config.get("train") if isinstance(run.config, dict) else None
    ema = float((train_config or {}).get("ema") or 0.0)
    summary: dict[str, Any] = {
        "run": str(run.path),
        "data": run.data_spec,
        "mode": mode,
        "weight_average": ema if ema > 0 else None,
        "views": [s.ref.view for s in spaces],
        "class_names": class_names,
        "k": k_value,
        "overview": {key: v for key, v in ov.items() if key != "per_class"},
        "per_class": ov["per_class"],
        "boundary": boundary.result(frequent_k=k_value),
        "margin": sampler.result(),
        "timing": timing.result(),
        "regions": None,
        "data_map": dmap.result() if has_confidence else {"available": False},
        "test_dynamics": test_dynamics or None,
        "thickness": thickness.result() if tested else None,
        "volume": volume.result() if volume is not None else None,
        "metrics": {
            split: run.metrics.get(split)
            for split in ("test", "val")
            if isinstance(run.metrics.get(split), dict)
        },
    }
    reg = regions.result()
    summary["regions"] = {key: v for key, v in reg.items() if key != "top"}
    summary["regions"]["top"] = reg["top"][:20]
    summary["findings"] = _findings(summary, class_names)

    target = run.path / ANALYSIS_DIR
    with atomic_directory(target, overwrite=True) as tmp:
        summary["figures"], summary["sections"] = [], []
        if figures:
            summary["figures"] = _write_figures(
                tmp,
                run=run,
                summary=summary,
                spaces=spaces,
                section_events=section_events,
                volume=volume,
                has_history=has_history,
                top_sections=top_sections,
            )
            summary["sections"] = _write_browser_sections(
                tmp,
                run=run,
                spaces=spaces,
                section_events=section_events,
                class_names=class_names,
                count=browser_sections,
            )
        atomic_write_json(tmp / "regions.json", reg["top"])
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(REGION_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(reg["top"])
        (tmp / "regions.csv").write_text(buf.getvalue())
        atomic_write_json(tmp / "summary.json", summary)
    return json.loads(json.dumps(to_jsonable(summary)))


def _section_arrays(run: RunReader, space: _Space, section: int) -> dict[str, Any]:
    """The images' arrays of one section: seismic, labels, final prediction, and forgetting
    events (0 where unobserved); of the statistics only the two arrays that needs are read."""
    data = run.data()
    st = run.read(space.ref, section, section + 1, space.section_pixels, _EVENT_ARRAYS)
    labels = data.label_sections(space.data_split, space.ref.view, [section])[0]
    seismic = data.seismic_sections(space.data_split, space.ref.view, [section])[0]
    if seismic.ndim == 3:  # multi-channel images: show the mean
        seismic = seismic.mean(axis=0)
    pred_all = run.predictions(space.ref.split, space.ref.view)
    obs = st["observations"].reshape(space.shape)
    events = np.where(obs > 0, st["forgetting_events"].reshape(space.shape), 0)
    return {
        "labels": labels,
        "seismic": seismic,
        "prediction": None if pred_all is None else np.asarray(pred_all[section]),
        "events": events,
    }


def _axis_labels(view: str) -> dict[str, str]:
    lateral = {"inline": "crossline", "crossline": "inline"}.get(view)
    if lateral is None:
        return {"xlabel": "column", "ylabel": "row"}
    return {"xlabel": f"{lateral} (trace)", "ylabel": "depth (sample)"}


def _top(section_events: np.ndarray, count: int) -> list[int]:
    order = np.argsort(-section_events, kind="stable")
    return [int(s) for s in order[:count]]


def _write_figures(
    tmp: Path,
    *,
    run: RunReader,
    summary: dict[str, Any],
    spaces: list[_Space],
    section_events: dict[str, np.ndarray],
    volume: VolumeAccumulator | None,
    has_history: bool,
    top_sections: int,
) -> list[dict[str, str]]:
    from segforget.viz import figures as F

    names = summary["class_names"]
    out: list[dict[str, str]] = []

    def add(file: str, title: str, caption: str) -> None:
        out.append({"file": file, "title": title, "caption": caption})

    F.plot_histograms(
        tmp / "histograms.png", {**summary["overview"], "per_class": summary["per_class"]}
    )
    add(
        "histograms.png",
        "Forgetting events per pixel",
        "Most pixels are never forgotten; look at the red tail (frequently forgotten, k >= "
        f"{summary['k']}) and which classes have the highest bars.",
    )
    F.plot_boundary_curve(tmp / "boundary_distance.png", summary["boundary"])
    add(
        "boundary_distance.png",
        "Forgetting vs distance to class boundaries",
        "If forgetting concentrates at boundaries, the curve peaks at distance 0-2 px and falls "
        "off with distance.",
    )
    if summary["margin"].get("available"):
        F.plot_margin_curve(tmp / "margin.png", summary["margin"])
        add(
            "margin.png",
            "Decision-boundary proximity",
            "Pixels with small or negative margin (near the decision boundary) should forget "
            "most: the curve falls from left to right.",
        )
    if summary["data_map"].get("pixels"):
        F.plot_data_map(tmp / "data_map.png", summary["data_map"])
        add(
            "data_map.png",
            "Data map (confidence vs variability)",
            "Bright bins on the right panel are the forgetting pixels: they sit at high "
            "variability (ambiguous) and low confidence (hard).",
        )
    F.plot_timing(tmp / "timing.png", summary["timing"])
    add(
        "timing.png",
        "When pixels are learned and forgotten",
        "Early epochs learn most pixels; forgetting late in training (oscillating) marks "
        "regions the model never settles on.",
    )
    if volume is not None and summary["volume"]:
        v = summary["volume"]
        F.plot_volume_slices(
            tmp / "volume.png",
            volume.volume,
            inline=v["inline"],
            crossline=v["crossline"],
            depth=v["depth"],
        )
        add(
            "volume.png",
            "Forgetting in the volume (inline + crossline views summed per voxel)",
            "Bright sheets follow the horizons between units; compare with the label boundaries "
            "of the same slices.",
        )
    gif_done = False
    for space in spaces:
        for rank, section in enumerate(_top(section_events[space.ref.view], top_sections)):
            a = _section_arrays(run, space, section)
            file = f"forgetting_{space.ref.view}_{rank + 1}.png"
            F.plot_forgetting_section(
                tmp / file,
                seismic=a["seismic"],
                labels=a["labels"],
                prediction=a["prediction"],
                forgetting_events=a["events"],
                class_names=names,
                title=f"{space.ref.view} section {section}",
                **_axis_labels(space.ref.view),
            )
            add(
                file,
                f"Forgetting map: {space.ref.view} section {section} (rank {rank + 1} by "
                "forgetting)",
                "Look for colour along the cyan label boundaries and compare it with where the "
                "final prediction (right) is wrong.",
            )
            if has_history and not gif_done:
                st = run.load(space.ref, section, section + 1, space.section_pixels)
                if st.history is None:
                    continue
                hist = st.correctness_history(np.arange(space.section_pixels))
                F.write_correctness_gif(
                    tmp / "correctness.gif", hist, space.shape, title=f"{space.ref.view} {section}"
                )
                add(
                    "correctness.gif",
                    f"Correctness over epochs: {space.ref.view} {section}",
                    "Watch the red (wrong) pixels shrink to the boundaries and flicker there: "
                    "each red flash after green is a forgetting event.",
                )
                gif_done = True
    return out


def _write_browser_sections(
    tmp: Path,
    *,
    run: RunReader,
    spaces: list[_Space],
    section_events: dict[str, np.ndarray],
    class_names: list[str],
    count: int,
) -> list[dict[str, Any]]:
    from segforget.viz.figures import section_images

    folder = tmp / "sections"
    folder.mkdir()
    index = []
    for space in spaces:
        chosen = _top(section_events[space.ref.view], count)
        arrays = [_section_arrays(run, space, s) for s in chosen]
        vmax = max(
            [
                float(np.percentile(a["events"][a["events"] > 0], 99))
                for a in arrays
                if (a["events"] > 0).any()
            ]
            or [1.0]
        )
        for section, a in zip(chosen, arrays):
            images = section_images(
                seismic=a["seismic"],
                labels=a["labels"],
                prediction=a["prediction"],
                forgetting_events=a["events"],
                num_classes=len(class_names),
                vmax=vmax,
            )
            files = {}
            for kind, png in images.items():
                name = f"{space.ref.view}_{section}_{kind}.png"
                (folder / name).write_bytes(png)
                files[kind] = f"sections/{name}"
            index.append(
                {
                    "view": space.ref.view,
                    "section": section,
                    "forgetting_events": int(section_events[space.ref.view][section]),
                    "files": files,
                }
            )
    return index
