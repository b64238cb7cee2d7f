"""The training methods selectable with ``segforget train --method NAME``.

Shape legend: B batch, C channels, H depth, W lateral, P pixels of a view's training pixel
space, N sections.

- ``baseline``       no change.
- ``rotate``         random rotation of the batch (image bilinear, label and pixel_index nearest).
- ``warp``           random vertical bumps: layers under a random pixel lifted or pressed down.
- ``oversample``     sections sampled in proportion to their frequently forgotten area.
- ``style-input``    style transfer into the frequently forgotten regions (input space).
- ``style-feature``  channel-statistics mixing inside those regions after an early encoder stage.
- ``focus``          the loss of those regions weighted up (``gain``), so they are fitted, not
                     flipped back and forth.
- ``paste``          those regions of another sample pasted in at the same place (new context).
- ``online``         one of the region methods, its regions refreshed from the live tracker.

Region methods other than ``online`` read their regions from a previous run
(option ``regions``: the run directory, or one dynamics store).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segforget.augment.base import TrainingMethod
from segforget.augment.feature import FeatureStatsMixer, insert_feature_mixer
from segforget.augment.geometry import WARP_MODES, region_centres, rotate_batch, warp_batch
from segforget.augment.regions import RegionOptions, select_regions, select_regions_from_stats
from segforget.augment.style import fourier_transfer, moment_match, region_moments
from segforget.models import update_weight_average, weight_average

__all__ = [
    "METHOD_NAMES",
    "REGION_METHOD_NAMES",
    "REFERENCE_METHOD_NAMES",
    "RegionMethod",
    "WarpSpec",
    "Rotate",
    "Warp",
    "Oversample",
    "StyleInput",
    "StyleFeature",
    "Focus",
    "Paste",
    "Anchor",
    "Online",
    "RegionChain",
    "build_method",
    "rotate_batch",
    "warp_batch",
    "batch_regions",
]

METHOD_NAMES: tuple[str, ...] = (
    "baseline",
    "rotate",
    "warp",
    "oversample",
    "style-input",
    "style-feature",
    "focus",
    "paste",
    "anchor",
    "online",
)

_REGION_KEYS = ("k", "include_never_learned", "opening", "min_area", "budget", "dilate")
_GEOMETRY_KEYS = (
    *("rotate", "rotate_p", "rotate_scope"),
    *("warp", "warp_p", "warp_width", "warp_scope", "warp_mode", "warp_class", "warps"),
)
_COMMON_KEYS = ("regions", "mode", *_GEOMETRY_KEYS, *_REGION_KEYS)


def _option(options: Mapping[str, Any], key: str, default: Any, kind: type | tuple) -> Any:
    value = options.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TypeError(f"Expected option `{key}` to be {name}, got {value!r}")
    return value


def _check_probability(key: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected option `{key}` to be a probability in [0, 1], got {value!r}")
    return value


def batch_regions(
    region: torch.Tensor | None, pixel_index: torch.Tensor, label: torch.Tensor, ignore_index: int
) -> torch.Tensor:
    """Map a pixel-space region mask onto a batch through ``pixel_index``.

    Args:
        region: (P,) bool over the view's pixel space, or None (nothing selected).
        pixel_index: (B, H, W) int64, negative where there is no source pixel.
        label: (B, H, W) int64.

    Returns:
        (B, H, W) bool: selected source pixel, valid index, label not ignored.
    """
    if region is None:
        return torch.zeros(pixel_index.shape, dtype=torch.bool)
    valid = (pixel_index >= 0) & (pixel_index < region.numel()) & (label != ignore_index)
    looked_up = region[pixel_index.clamp(0, region.numel() - 1)]
    return looked_up & valid


class _Geometric(TrainingMethod):
    """A batch change blind to forgetting; keeps the data's ignore index for the pixels it
    pulls from outside the section."""

    ignore_index = 255

    def setup(self, *, data: Any, num_classes: int, ignore_index: int, seed: int) -> None:
        self.ignore_index = ignore_index


class Rotate(_Geometric):
    """Random rotation of each training sample (the baseline of the paper's table).

    Options: ``degrees`` (10.0), ``p`` (probability per sample, 0.5).
    """

    name = "rotate"
    option_keys = ("degrees", "p")

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.degrees = _option(options, "degrees", 10.0, float)
        self.p = _check_probability("p", _option(options, "p", 0.5, float))
        if self.degrees < 0:
            raise ValueError(f"Expected option `degrees` to be >= 0, got {self.degrees!r}")

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        return rotate_batch(
            batch,
            degrees=self.degrees,
            p=self.p,
            generator=generator,
            ignore_index=self.ignore_index,
        )


def _check_warp(pixels: float, width: float, mode: str, keys: tuple[str, str, str]) -> None:
    """``keys``: the option names of the shift, the width and the mode."""
    pixels_key, width_key, mode_key = keys
    if mode not in WARP_MODES:
        raise ValueError(
            f"Expected option `{mode_key}` to be one of {list(WARP_MODES)}, got {mode!r}"
        )
    if pixels < 0:
        raise ValueError(f"Expected option `{pixels_key}` to be >= 0 (pixels), got {pixels!r}")
    if not width > 0:
        raise ValueError(
            f"Expected option `{width_key}` to be > 0 (a share of the section width), got {width!r}"
        )


class Warp(_Geometric):
    """Random vertical bumps: the layers under a random pixel lifted or pressed down.

    Seismic units change depth across a survey (a salt dome rises higher in one place than in
    another); this shows the model the same layers at other depths. See
    :func:`segforget.augment.geometry.warp_batch`. Options: ``pixels`` (8.0, the largest
    shift), ``width`` (0.15, the bump's lateral spread as a share of the section width),
    ``p`` (probability per sample, 0.5), ``mode`` (``"shift"``: the layers under the centre
    move rigidly; ``"stretch"``: they are stretched or squeezed against the unmoved bottom
    row, so a unit at the base becomes thicker or thinner; ``"insert"``: the centre's unit
    becomes thicker or thinner with its own rows, following it across the section, its
    texture not stretched; see :func:`segforget.augment.geometry.insert_displacement`;
    ``"grow"``: the unit made thicker by the whole positive shift, negative draws left;
    ``"thin"``: the unit made thinner by the whole positive shift (at most all its rows but
    one), negative draws left; see :func:`segforget.augment.geometry.thin_displacement`).
    """

    name = "warp"
    option_keys = ("pixels", "width", "p", "mode")

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.pixels = _option(options, "pixels", 8.0, float)
        self.width = _option(options, "width", 0.15, float)
        self.p = _check_probability("p", _option(options, "p", 0.5, float))
        self.mode = _option(options, "mode", "shift", str)
        _check_warp(self.pixels, self.width, self.mode, ("pixels", "width", "mode"))

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        return warp_batch(
            batch,
            pixels=self.pixels,
            width=self.width,
            p=self.p,
            generator=generator,
            mode=self.mode,
            ignore_index=self.ignore_index,
        )


#: Option names of one warp, flat (``warp_mode``) and as an entry of option ``warps``.
_WARP_FIELDS = ("pixels", "p", "width", "mode", "scope", "class")
_FLAT_WARP_KEYS = ("warp", "warp_p", "warp_width", "warp_mode", "warp_scope", "warp_class")


@dataclass(frozen=True)
class WarpSpec:
    """One vertical bump a region method applies to its batches (see :class:`RegionMethod`).

    Attributes:
        pixels: the largest shift (> 0 to warp at all).
        p: probability per sample.
        width: the bump's lateral spread, a share of the section width.
        mode: one of :data:`segforget.augment.geometry.WARP_MODES`.
        scope: ``"regions"`` (centres on selected pixels) or ``"all"`` (any pixel).
        class_name: centres only on pixels of this class, or None (any class).
    """

    pixels: float
    p: float = 0.5
    width: float = 0.15
    mode: str = "shift"
    scope: str = "regions"
    class_name: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], keys: tuple[str, ...]) -> WarpSpec:
        """Read and check one warp from ``options`` under ``keys`` (the names of
        :data:`_WARP_FIELDS` in that mapping, e.g. ``warp_mode`` or ``warps[1].mode``)."""
        named = dict(zip(_WARP_FIELDS, keys))
        spec = cls(
            pixels=_option(options, named["pixels"], 0.0, float),
            p=_check_probability(named["p"], _option(options, named["p"], 0.5, float)),
            width=_option(options, named["width"], 0.15, float),
            mode=_option(options, named["mode"], "shift", str),
            scope=_option(options, named["scope"], "regions", str),
            class_name=_option(options, named["class"], None, (str, type(None))),
        )
        _check_warp(
            spec.pixels, spec.width, spec.mode, (named["pixels"], named["width"], named["mode"])
        )
        if spec.scope not in ("all", "regions"):
            raise ValueError(
                f"Expected option `{named['scope']}` to be 'all' or 'regions', got {spec.scope!r}"
            )
        return spec


def _warp_specs(options: Mapping[str, Any]) -> list[tuple[WarpSpec, str]]:
    """The warps of a region method: the flat ``warp*`` options first, then each entry of
    ``warps`` (a list of mappings with keys from :data:`_WARP_FIELDS`); those with no shift
    are dropped. Each comes with the name of its class option (for error messages)."""
    specs = [(WarpSpec.from_options(options, _FLAT_WARP_KEYS), "warp_class")]
    extra = options.get("warps", [])
    if not isinstance(extra, (list, tuple)) or not all(isinstance(e, Mapping) for e in extra):
        raise TypeError(
            "Expected option `warps` to be a list of mappings (keys "
            f"{', '.join(_WARP_FIELDS)}), got {extra!r}"
        )
    for position, entry in enumerate(extra):
        unknown = sorted(set(entry) - set(_WARP_FIELDS))
        if unknown:
            raise ValueError(
                f"Expected the keys of option `warps[{position}]` from {list(_WARP_FIELDS)}, "
                f"got unknown {unknown}"
            )
        keys = tuple(f"warps[{position}].{field}" for field in _WARP_FIELDS)
        prefixed = {f"warps[{position}].{k}": v for k, v in entry.items()}
        specs.append((WarpSpec.from_options(prefixed, keys), keys[-1]))
    return [(spec, key) for spec, key in specs if spec.pixels > 0]


class RegionMethod(TrainingMethod):
    """Base of the methods driven by frequently forgotten regions.

    Options shared by all region methods:
        regions: a previous run directory (its ``dynamics/<mode>/train_<view>`` stores are read)
            or one dynamics store; required unless the method is wrapped by ``online``.
        mode: tracker mode to read, ``"epoch"`` (default) or ``"presentation"``.
        k, include_never_learned, opening, min_area, budget, dilate: see
            :class:`RegionOptions`.
        rotate: also rotate samples by up to this many degrees after the method's change
            (0: no rotation, the default); rotate_p: probability of that rotation (0.5);
            rotate_scope: ``"all"`` samples (default) or only the samples that hold selected
            pixels (``"regions"``: the variety goes where the forgetting is).
        warp: also bend the layers by a vertical bump of up to this many pixels, before the
            rotation (0: none, the default; see :class:`Warp`); warp_p: its probability (0.5);
            warp_width: the bump's lateral spread (0.15 of the section width); warp_scope:
            ``"regions"`` (default): only the samples that hold selected pixels, the bump
            centred on one of them; ``"all"``: every sample, centred on a random pixel;
            warp_mode: ``"shift"`` (default), ``"stretch"``, ``"insert"``, ``"grow"`` or
            ``"thin"`` (see :class:`Warp`); warp_class: a class name, the bump's centres only
            on pixels of that class (selected ones with scope ``"regions"``; a sample without
            one is not warped; default: none, any class).
        warps: more warps, applied in order after the flat one: a list of mappings with keys
            ``pixels``, ``p``, ``width``, ``mode``, ``scope`` and ``class`` (the flat options'
            meanings and defaults; see :class:`WarpSpec`), e.g. ``[{"pixels": 10.0, "mode":
            "insert", "class": "rijnland_chalk", "scope": "all"}]``.
    """

    option_keys: tuple[str, ...] = _COMMON_KEYS

    def __init__(self, options: Mapping[str, Any], *, online: bool = False) -> None:
        self.region_options = RegionOptions.from_options(dict(options))
        self.mode = _option(options, "mode", "epoch", str)
        if self.mode not in ("epoch", "presentation"):
            raise ValueError(
                f"Expected option `mode` to be 'epoch' or 'presentation', got {self.mode!r}"
            )
        source = options.get("regions")
        if source is None and not online:
            raise ValueError(
                f"Expected option `regions` (a previous run directory) for method '{self.name}', "
                "got none; train a baseline run first, or use method 'online'"
            )
        self.source = None if source is None else Path(source)
        if self.source is not None and not self.source.exists():
            raise FileNotFoundError(
                f"Expected option `regions` to be an existing run directory or dynamics store, "
                f"got {str(self.source)!r}"
            )
        self.rotate_degrees = _option(options, "rotate", 0.0, float)
        self.rotate_p = _check_probability("rotate_p", _option(options, "rotate_p", 0.5, float))
        self.rotate_scope = _option(options, "rotate_scope", "all", str)
        if self.rotate_scope not in ("all", "regions"):
            raise ValueError(
                "Expected option `rotate_scope` to be 'all' or 'regions', "
                f"got {self.rotate_scope!r}"
            )
        first = WarpSpec.from_options(options, _FLAT_WARP_KEYS)
        self.warp_pixels, self.warp_p, self.warp_width = first.pixels, first.p, first.width
        self.warp_mode, self.warp_scope, self.warp_class = first.mode, first.scope, first.class_name
        found = _warp_specs(options)
        #: Every warp, applied in order (the flat ``warp*`` options first, then ``warps``).
        self.warps: list[WarpSpec] = [spec for spec, _ in found]
        self._warp_class_keys = [key for _, key in found]
        #: Each warp's class index (None: any class), resolved by :meth:`setup`.
        self.warp_class_indices: list[int | None] = [None] * len(self.warps)
        self.regions: dict[str, torch.Tensor] = {}
        self.section_shapes: dict[str, tuple[int, int]] = {}
        self.space_shapes: dict[str, tuple[int, int]] = {}
        self.ignore_index = 255
        self.num_classes = 0

    # -- regions -------------------------------------------------------------------------
    def set_regions(self, view: str, region: np.ndarray, section_shape: tuple[int, int]) -> None:
        """Use ``region`` ((P,) bool over the training pixel space of ``view``)."""
        self.regions[view] = torch.as_tensor(np.asarray(region, dtype=bool))
        self.section_shapes[view] = (int(section_shape[0]), int(section_shape[1]))
        self.regions_changed(view)

    def regions_changed(self, view: str) -> None:
        """Hook for subclasses that derive state (weights) from the regions."""

    def region_fraction(self) -> dict[str, float]:
        """Fraction of each view's training pixels that is selected."""
        return {v: int(r.sum()) / r.numel() if r.numel() else 0.0 for v, r in self.regions.items()}

    def epoch_summary(self) -> dict[str, Any]:
        """``region_fraction`` by view (the selected share of the training pixels)."""
        return {"region_fraction": self.region_fraction()}

    def _load_regions(self, views: tuple[str, ...]) -> None:
        from segforget.dynamics import ForgettingStats

        source = self.source
        assert source is not None  # guarded by the caller
        if (source / "dynamics").is_dir():
            # a run may have trained on some views only (data.views): use the stores it has
            stores = [source / "dynamics" / self.mode / f"train_{view}" for view in views]
            found = [store for store in stores if store.exists()]
            if not found:
                raise FileNotFoundError(
                    f"Expected a dynamics store {source / 'dynamics' / self.mode}/train_<view> in "
                    f"the `regions` run (train it with {self.mode} tracking), got none"
                )
            for store in found:
                view = store.name[len("train_") :]
                stats = ForgettingStats.load(store)
                self.set_regions(
                    view,
                    select_regions_from_stats(stats, options=self.region_options),
                    tuple(stats.meta["section_shape"]),
                )
        else:
            stats = ForgettingStats.load(source)
            view = str(stats.meta.get("view", views[0] if views else "image"))
            self.set_regions(
                view,
                select_regions_from_stats(stats, options=self.region_options),
                tuple(stats.meta["section_shape"]),
            )

    def setup(self, *, data: Any, num_classes: int, ignore_index: int, seed: int) -> None:
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        names = list(getattr(data, "class_names", ()) or ())
        for position, spec in enumerate(self.warps):
            if spec.class_name is None:
                continue
            if spec.class_name not in names:
                key = self._warp_class_keys[position]
                raise ValueError(
                    f"Expected option `{key}` to name a class of the data "
                    f"({', '.join(names)}), got {spec.class_name!r}"
                )
            self.warp_class_indices[position] = names.index(spec.class_name)
        if data is not None and hasattr(data, "space"):
            # the live tracker's stats carry no meta; online refreshes need the section shape
            for view in data.views:
                self.space_shapes[view] = tuple(data.space("train", view).section_shape)
        if self.source is not None:
            views = tuple(getattr(data, "views", ()) or ())
            self._load_regions(views)

    def batch_regions(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """(B, H, W) bool: the selected pixels of this batch (through ``pixel_index``)."""
        view = batch.get("view")
        view = view[0] if isinstance(view, (list, tuple)) else view
        return batch_regions(
            self.regions.get(view), batch["pixel_index"], batch["label"], self.ignore_index
        )

    def _vary_geometry(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        """The geometric variety of options ``warp`` and ``rotate``, in that order (each
        takes no random draws when it is off, so runs without it are unchanged)."""
        batch = self._maybe_warp(batch, generator)
        if self.rotate_degrees <= 0:
            return batch
        p: float | torch.Tensor = self.rotate_p
        if self.rotate_scope == "regions":
            holds = self.batch_regions(batch).flatten(1).any(dim=1)  # (B,)
            p = holds.to(torch.float32) * self.rotate_p
        return rotate_batch(
            batch,
            degrees=self.rotate_degrees,
            p=p,
            generator=generator,
            ignore_index=self.ignore_index,
        )

    def _maybe_warp(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        """Each of :attr:`warps` in order (none: the batch as it is, no draws taken)."""
        for spec, cls in zip(self.warps, self.warp_class_indices):
            batch = self._warp_once(batch, generator, spec, cls)
        return batch

    def _warp_once(
        self,
        batch: dict[str, Any],
        generator: torch.Generator,
        spec: WarpSpec,
        class_index: int | None,
    ) -> dict[str, Any]:
        p: float | torch.Tensor = spec.p
        centres = None
        if spec.scope == "regions" or class_index is not None:
            if spec.scope == "regions":
                allowed = self.batch_regions(batch)
            else:
                allowed = torch.ones_like(batch["label"], dtype=torch.bool)
            if class_index is not None:
                allowed = allowed & (batch["label"] == class_index)
            centres = region_centres(allowed, generator)  # (B, 2)
            p = (centres[:, 0] >= 0).to(torch.float32) * spec.p
        return warp_batch(
            batch,
            pixels=spec.pixels,
            width=spec.width,
            p=p,
            generator=generator,
            centres=centres,
            mode=spec.mode,
            ignore_index=self.ignore_index,
        )

    # -- checkpoint ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for view, region in self.regions.items():
            state[f"regions.{view}"] = torch.from_numpy(np.packbits(region.numpy()))
            state[f"size.{view}"] = int(region.numel())
            state[f"shape.{view}"] = list(self.section_shapes[view])
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, packed in state.items():
            if not key.startswith("regions."):
                continue
            view = key[len("regions.") :]
            size = int(state[f"size.{view}"])
            bits = np.unpackbits(np.asarray(packed, dtype=np.uint8))[:size].astype(bool)
            self.set_regions(view, bits, tuple(state[f"shape.{view}"]))


class Oversample(RegionMethod):
    """Sample sections in proportion to their frequently forgotten area.

    Extra option: ``floor`` (0.1): every section keeps this fraction of the mean weight, so
    sections without forgotten pixels are still seen.
    """

    name = "oversample"
    option_keys = (*_COMMON_KEYS, "floor")

    def __init__(self, options: Mapping[str, Any], *, online: bool = False) -> None:
        super().__init__(options, online=online)
        self.floor = _option(options, "floor", 0.1, float)
        if self.floor <= 0:
            raise ValueError(f"Expected option `floor` to be > 0, got {self.floor!r}")

    def section_area(self, view: str) -> np.ndarray | None:
        """(N,) selected pixels per section of ``view`` (None before regions exist)."""
        region = self.regions.get(view)
        if region is None:
            return None
        height, width = self.section_shapes[view]
        return region.view(-1, height * width).sum(dim=1).numpy()

    def sampler_weights(self, view: str, sections: np.ndarray) -> np.ndarray | None:
        area = self.section_area(view)
        if area is None:
            return None
        area = area[np.asarray(sections, dtype=np.int64)].astype(np.float64)
        mean = area.mean() if area.size and area.mean() > 0 else 1.0
        return area / mean + self.floor

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        return self._vary_geometry(batch, generator)


class StyleInput(RegionMethod):
    """Style transfer into the frequently forgotten regions, in input space, labels unchanged.

    Extra options:
        p (0.5): probability that a sample with selected pixels is restyled.
        operators (["moment", "fourier"]): one is drawn per (sample, class) region.
        radius (4): soft-mask ramp in pixels; margin (8): Fourier window margin beyond it.
        beta (0.05): Fourier low-frequency band half-width (cycles per pixel).
        mix ([0.5, 1.0]): range of the donor's amplitude weight for the Fourier operator.
        donor_sections (32): sections of each view kept as donors (same class elsewhere).
        donor_window (24): half-size of the window around a donor pixel for the moments.
        min_pixels (16): (sample, class) regions smaller than this are left alone.
    """

    name = "style-input"
    option_keys = (
        *_COMMON_KEYS,
        "p",
        "operators",
        "radius",
        "margin",
        "beta",
        "mix",
        "donor_sections",
        "donor_window",
        "min_pixels",
    )
    OPERATORS = ("moment", "fourier")

    def __init__(self, options: Mapping[str, Any], *, online: bool = False) -> None:
        super().__init__(options, online=online)
        self.p = _check_probability("p", _option(options, "p", 0.5, float))
        operators = options.get("operators", list(self.OPERATORS))
        if isinstance(operators, str):
            operators = [operators]
        if not operators or any(op not in self.OPERATORS for op in operators):
            raise ValueError(
                f"Expected option `operators` to be a list from {list(self.OPERATORS)}, "
                f"got {operators!r}"
            )
        self.operators = tuple(operators)
        self.radius = _option(options, "radius", 4, int)
        self.margin = _option(options, "margin", 8, int)
        self.beta = _option(options, "beta", 0.05, float)
        if not 0.0 < self.beta < 0.5:
            raise ValueError(f"Expected option `beta` to be in (0, 0.5), got {self.beta!r}")
        mix = options.get("mix", [0.5, 1.0])
        if not (isinstance(mix, (list, tuple)) and len(mix) == 2 and 0 <= mix[0] <= mix[1] <= 1):
            raise ValueError(f"Expected option `mix` to be [low, high] in [0, 1], got {mix!r}")
        self.mix = (float(mix[0]), float(mix[1]))
        self.donor_sections = _option(options, "donor_sections", 32, int)
        self.donor_window = _option(options, "donor_window", 24, int)
        self.min_pixels = _option(options, "min_pixels", 16, int)
        # view -> (images (M, C, H, W), labels (M, H, W), {class: (n, 3) positions m, h, w})
        self.donors: dict[str, tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]] = {}

    # -- donors --------------------------------------------------------------------------
    def set_donors(self, view: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Use these sections (normalised like the training batches) as the donor pool."""
        positions: dict[int, torch.Tensor] = {}
        for cls in torch.unique(labels).tolist():
            if cls == self.ignore_index:
                continue
            found = torch.nonzero(labels == cls)  # (n, 3)
            if found.shape[0] > 50_000:
                # evenly thinned: deterministic and enough variety for donors
                found = found[:: found.shape[0] // 50_000 + 1]
            positions[int(cls)] = found
        self.donors[view] = (images, labels, positions)

    def setup(self, *, data: Any, num_classes: int, ignore_index: int, seed: int) -> None:
        super().setup(data=data, num_classes=num_classes, ignore_index=ignore_index, seed=seed)
        if data is None or not hasattr(data, "dataset"):
            return
        rng = np.random.default_rng(seed)
        for view in data.views:
            dataset = data.dataset("train", view)
            count = min(len(dataset), self.donor_sections)
            chosen = np.sort(rng.choice(len(dataset), size=count, replace=False))
            items = [dataset[int(i)] for i in chosen]
            images = torch.stack([torch.as_tensor(item["image"]) for item in items])
            labels = torch.stack([torch.as_tensor(item["label"]) for item in items])
            self.set_donors(view, images, labels)

    def _donor(
        self,
        view: str | None,
        cls: int,
        batch_images: torch.Tensor,
        batch_labels: torch.Tensor,
        exclude: int,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]] | None:
        """A donor section and pixel of class ``cls``: from the pool, else another sample."""
        if view in self.donors and cls in self.donors[view][2]:
            images, labels, positions = self.donors[view]
            pos = positions[cls]
        else:
            images, labels = batch_images, batch_labels
            pos = torch.nonzero(labels == cls)
            pos = pos[pos[:, 0] != exclude]
            if pos.shape[0] == 0:
                return None
        pick = pos[int(torch.randint(pos.shape[0], (1,), generator=generator))]
        m, h, w = (int(v) for v in pick)
        return images[m], labels[m], (h, w)

    def _donor_moments(
        self, image: torch.Tensor, labels: torch.Tensor, center: tuple[int, int], cls: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.donor_window
        top, left = max(center[0] - half, 0), max(center[1] - half, 0)
        window = image[:, top : center[0] + half + 1, left : center[1] + half + 1]
        region = labels[top : center[0] + half + 1, left : center[1] + half + 1] == cls
        return region_moments(window, region)

    # -- the hook ------------------------------------------------------------------------
    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        regions = self.batch_regions(batch)  # (B, H, W)
        view = batch.get("view")
        view = view[0] if isinstance(view, (list, tuple)) else view
        draws = torch.rand(regions.shape[0], generator=generator)
        chosen = [b for b in range(regions.shape[0]) if draws[b] < self.p and regions[b].any()]
        if chosen:
            images, labels = batch["image"], batch["label"]
            styled = images.clone()
            for b in chosen:
                for cls in torch.unique(labels[b][regions[b]]).tolist():
                    region = regions[b] & (labels[b] == cls)
                    if int(region.sum()) < self.min_pixels:
                        continue
                    donor = self._donor(view, int(cls), images, labels, b, generator)
                    if donor is None:
                        continue
                    donor_image, donor_labels, center = donor
                    op = self.operators[
                        int(torch.randint(len(self.operators), (1,), generator=generator))
                    ]
                    if op == "moment":
                        mean, std = self._donor_moments(donor_image, donor_labels, center, cls)
                        styled[b] = moment_match(styled[b], region, mean, std, radius=self.radius)
                    else:
                        low, high = self.mix
                        mix = low + (high - low) * float(torch.rand(1, generator=generator))
                        styled[b] = fourier_transfer(
                            styled[b],
                            region,
                            donor_image,
                            center,
                            beta=self.beta,
                            mix=mix,
                            radius=self.radius,
                            margin=self.margin,
                        )
            batch = dict(batch)
            batch["image"] = styled
        return self._vary_geometry(batch, generator)


class StyleFeature(RegionMethod):
    """Channel-statistics mixing inside the regions after an early encoder stage (train only).

    Extra options: ``alpha`` (0.3, Beta mixing), ``perturb`` (0.1), ``p`` (1.0) — see
    :class:`~segforget.augment.feature.FeatureStatsMixer`.
    """

    name = "style-feature"
    option_keys = (*_COMMON_KEYS, "alpha", "perturb", "p")

    def __init__(self, options: Mapping[str, Any], *, online: bool = False) -> None:
        super().__init__(options, online=online)
        self.mixer = FeatureStatsMixer(
            alpha=_option(options, "alpha", 0.3, float),
            perturb=_option(options, "perturb", 0.1, float),
            p=_check_probability("p", _option(options, "p", 1.0, float)),
        )

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return insert_feature_mixer(model, self.mixer)

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        batch = self._vary_geometry(batch, generator)
        # regions after rotation, so the mask matches what the model sees
        self.mixer.set_context(self.batch_regions(batch), generator)
        return batch


class Focus(RegionMethod):
    """Weight the training loss up inside the frequently forgotten regions.

    A forgotten pixel is one the model keeps flipping between right and wrong; a larger share
    of the gradient there makes the model settle it. Extra option: ``gain`` (1.0): the loss
    weight of a selected pixel is ``1 + gain`` (other pixels 1), applied after rotation, so the
    weights follow each pixel through ``pixel_index``.
    """

    name = "focus"
    option_keys = (*_COMMON_KEYS, "gain")

    def __init__(self, options: Mapping[str, Any], *, online: bool = False) -> None:
        super().__init__(options, online=online)
        self.gain = _option(options, "gain", 1.0, float)
        if not self.gain > -1.0:
            raise ValueError(
                f"Expected option `gain` to be > -1 (a pixel's loss weight 1 + gain stays "
                f"positive), got {self.gain!r}"
            )

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        return self._vary_geometry(batch, generator)

    def loss_weights(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if not self.regions:
            return None
        return 1.0 + self.gain * self.batch_regions(batch).to(torch.float32)


class Paste(RegionMethod):
    """Paste frequently forgotten regions of other samples of the batch, at the same place.

    Sections of one view share their depth axis, so a region of section A pasted into section
    B at the same (depth, lateral) position keeps the layer order: the hard pixels are seen in
    new surroundings. Image, label and ``pixel_index`` are pasted together, so observations
    stay on their source pixels. Extra option: ``p`` (0.5): probability that a sample receives
    the regions of another (random) sample of the batch.
    """

    name = "paste"
    option_keys = (*_COMMON_KEYS, "p")

    def __init__(self, options: Mapping[str, Any], *, online: bool = False) -> None:
        super().__init__(options, online=online)
        self.p = _check_probability("p", _option(options, "p", 0.5, float))

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        regions = self.batch_regions(batch)  # (B, H, W)
        size = regions.shape[0]
        draws = torch.rand(size, generator=generator)
        donors = torch.randint(max(size - 1, 1), (size,), generator=generator)
        out = None
        for b in range(size):
            if size < 2 or draws[b] >= self.p:
                continue
            donor = int(donors[b]) + (int(donors[b]) >= b)  # any other sample
            mask = regions[donor]
            if not bool(mask.any()):
                continue
            if out is None:
                out = dict(batch)
                for key in ("image", "label", "pixel_index"):
                    out[key] = batch[key].clone()
            out["image"][b][:, mask] = batch["image"][donor][:, mask]
            out["label"][b][mask] = batch["label"][donor][mask]
            out["pixel_index"][b][mask] = batch["pixel_index"][donor][mask]
        return self._vary_geometry(out if out is not None else batch, generator)


class Anchor(RegionMethod):
    """Hold the frequently forgotten regions to a running average of the model.

    The model keeps flipping these pixels from epoch to epoch; an exponential moving average of
    its weights (the *teacher*, moved towards the model by ``1 - decay`` after every optimizer
    step) changes far less. Inside the regions the training loss gets a consistency term: the
    KL divergence from the teacher's class probabilities to the model's, summed over the
    region's pixels and divided by the batch's labeled pixels (the scale of the mean
    cross-entropy), times ``weight``. The model is trained and evaluated as usual; only its
    updates in the regions are pulled towards the average. Extra options: ``weight`` (1.0),
    ``decay`` (0.9: about the last 10 steps).
    """

    name = "anchor"
    option_keys = (*_COMMON_KEYS, "weight", "decay")

    def __init__(self, options: Mapping[str, Any], *, online: bool = False) -> None:
        super().__init__(options, online=online)
        self.weight = _option(options, "weight", 1.0, float)
        self.decay = _option(options, "decay", 0.9, float)
        if self.weight < 0:
            raise ValueError(f"Expected option `weight` to be >= 0, got {self.weight!r}")
        if not 0 <= self.decay < 1:
            raise ValueError(f"Expected option `decay` to be in [0, 1), got {self.decay!r}")
        self.teacher: nn.Module | None = None
        self._student: nn.Module | None = None

    def wrap_model(self, model: nn.Module) -> nn.Module:
        self._student = model
        self.teacher = weight_average(model)
        return model

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        return self._vary_geometry(batch, generator)

    def extra_loss(
        self, batch: dict[str, Any], image: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor | None:
        if not self.regions or self.teacher is None or self.weight == 0:
            return None
        region = self.batch_regions(batch).to(logits.device)
        if not bool(region.any()):
            return None
        labeled = (batch["label"] != self.ignore_index).sum().clamp(min=1).to(logits.device)
        with torch.no_grad():
            teacher_log = F.log_softmax(self._teacher_logits(image).float(), dim=1)
        student_log = F.log_softmax(logits.float(), dim=1)
        divergence = (teacher_log.exp() * (teacher_log - student_log)).sum(dim=1)  # (B, H, W)
        return self.weight * divergence[region].sum() / labeled

    def _follow_model(self, model: nn.Module | None) -> None:
        """Keep the teacher on the device and dtype of the trained model (the model is wrapped
        before the training loop moves it to its device)."""
        reference = next(model.parameters(), None) if model is not None else None
        mine = next(self.teacher.parameters(), None) if self.teacher is not None else None
        if reference is None or mine is None:
            return
        if mine.device != reference.device or mine.dtype != reference.dtype:
            self.teacher.to(device=reference.device, dtype=reference.dtype)  # type: ignore[union-attr]

    def _teacher_logits(self, image: torch.Tensor) -> torch.Tensor:
        self._follow_model(self._student)
        # Hooks copied with the model (the feature mixer) follow the trained model's mode.
        student = self._student
        was_training = student is not None and student.training
        if student is not None:
            student.eval()
        try:
            return self.teacher(image)  # type: ignore[misc]
        finally:
            if was_training:
                student.train()  # type: ignore[union-attr]

    def after_step(self, model: nn.Module) -> None:
        if self.teacher is None:
            return
        self._follow_model(model)
        update_weight_average(self.teacher, model, self.decay)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.teacher is not None:
            for key, value in self.teacher.state_dict().items():
                state[f"anchor.teacher.{key}"] = value.detach().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        prefix = "anchor.teacher."
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if weights and self.teacher is not None:
            self.teacher.load_state_dict(weights)


class Online(TrainingMethod):
    """A region method whose regions come from the live tracker of the same run.

    Options: ``inner`` (``"style-input"``; or ``"oversample"``, ``"style-feature"``, ``"focus"``),
    ``warmup`` (2: first refresh after this many epochs), ``every`` (1: refresh period in
    epochs), ``mode`` (tracker mode preferred, ``"epoch"``; the other is used when absent),
    plus the inner method's options (``regions`` is not allowed).
    """

    name = "online"
    #: epochs before the first refresh of the regions, unless option ``warmup`` says otherwise
    default_warmup = 2

    def __init__(self, options: Mapping[str, Any]) -> None:
        inner_name = _option(options, "inner", "style-input", str)
        names = inner_name.split("+")
        if any(n not in _REGION_METHODS for n in names) or len(set(names)) != len(names):
            raise ValueError(
                f"Expected option `inner` to be one of {sorted(_REGION_METHODS)} or several "
                f"joined by '+' (e.g. 'oversample+focus'), got {inner_name!r}"
            )
        if options.get("regions") is not None:
            raise ValueError(
                "Expected no option `regions` for method 'online' (it uses the live tracker), "
                f"got {options['regions']!r}; use the inner method's name for a previous run"
            )
        self.warmup = _option(options, "warmup", self.default_warmup, int)
        self.every = _option(options, "every", 1, int)
        if self.warmup < 1 or self.every < 1:
            raise ValueError(
                f"Expected options `warmup` and `every` to be >= 1, got {self.warmup}, {self.every}"
            )
        inner_options = {k: v for k, v in options.items() if k not in ("inner", "warmup", "every")}
        self.inner: RegionMethod = _build_region_method(names, inner_options, online=True)
        self.refreshes = 0

    @property
    def option_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("inner", "warmup", "every", *self.inner.option_keys)

    def setup(self, *, data: Any, num_classes: int, ignore_index: int, seed: int) -> None:
        self.inner.setup(data=data, num_classes=num_classes, ignore_index=ignore_index, seed=seed)

    def sampler_weights(self, view: str, sections: np.ndarray) -> np.ndarray | None:
        return self.inner.sampler_weights(view, sections)

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        return self.inner.transform_batch(batch, generator=generator)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return self.inner.wrap_model(model)

    def loss_weights(self, batch: dict[str, Any]) -> torch.Tensor | None:
        return self.inner.loss_weights(batch)

    def extra_loss(
        self, batch: dict[str, Any], image: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor | None:
        return self.inner.extra_loss(batch, image, logits)

    def after_step(self, model: nn.Module) -> None:
        self.inner.after_step(model)

    def on_epoch_end(self, epoch: int, trackers: Mapping[str, Any]) -> None:
        """Refresh the regions from ``trackers`` (keys ``"<mode>/train/<view>"``).

        ``epoch`` is 0-based: after ``warmup`` completed epochs (epoch + 1 >= warmup) and then
        every ``every`` epochs.
        """
        done = epoch + 1
        if done < self.warmup or (done - self.warmup) % self.every:
            return
        by_view: dict[str, tuple[str, Any]] = {}
        for key, tracker in trackers.items():
            match = re.fullmatch(r"(epoch|presentation)/train[/_](.+)", str(key))
            if match is None:
                continue
            mode, view = match.groups()
            if view not in by_view or mode == self.inner.mode:
                by_view[view] = (mode, tracker)
        for view, (_mode, tracker) in by_view.items():
            stats = tracker.compute()
            shape = (getattr(stats, "meta", None) or {}).get("section_shape")
            shape = (
                shape or self.inner.space_shapes.get(view) or self.inner.section_shapes.get(view)
            )
            if shape is None:
                raise ValueError(
                    f"Expected the section shape of view {view!r} (from setup(data=...)), got "
                    "none; call setup with the data set before training"
                )
            region = select_regions(
                np.asarray(stats.forgetting_events),
                np.asarray(stats.never_learned),
                tuple(shape),
                options=self.inner.region_options,
            )
            self.inner.set_regions(view, region, tuple(shape))
        self.refreshes += 1

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(), "refreshes": self.refreshes}

    def epoch_summary(self) -> dict[str, Any]:
        return {**self.inner.epoch_summary(), "refreshes": self.refreshes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state.get("inner", {}))
        self.refreshes = int(state.get("refreshes", 0))


class RegionChain(RegionMethod):
    """Several region methods on the same regions, e.g. ``oversample+focus``: sampling
    weights and loss weights multiply, batch changes and model wrappers apply in order. Each
    member gets the options it knows; ``rotate`` and ``warp`` are applied once, by the
    last member."""

    def __init__(self, members: list[RegionMethod]) -> None:
        if len(members) < 2:
            raise ValueError(f"Expected at least two region methods, got {len(members)}")
        self.members = members
        self.name = "+".join(m.name for m in members)
        first = members[0]
        self.region_options, self.mode, self.source = first.region_options, first.mode, None
        self.option_keys = tuple(dict.fromkeys(k for m in members for k in m.option_keys))

    @property
    def regions(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return self.members[0].regions

    @property
    def section_shapes(self) -> dict[str, tuple[int, int]]:  # type: ignore[override]
        return self.members[0].section_shapes

    @property
    def space_shapes(self) -> dict[str, tuple[int, int]]:  # type: ignore[override]
        return self.members[0].space_shapes

    @property
    def ignore_index(self) -> int:  # type: ignore[override]
        return self.members[0].ignore_index

    def batch_regions(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.members[0].batch_regions(batch)

    def region_fraction(self) -> dict[str, float]:
        return self.members[0].region_fraction()

    def set_regions(self, view: str, region: np.ndarray, section_shape: tuple[int, int]) -> None:
        for member in self.members:
            member.set_regions(view, region, section_shape)

    def setup(self, *, data: Any, num_classes: int, ignore_index: int, seed: int) -> None:
        for member in self.members:
            member.setup(data=data, num_classes=num_classes, ignore_index=ignore_index, seed=seed)

    def sampler_weights(self, view: str, sections: np.ndarray) -> np.ndarray | None:
        found = [m.sampler_weights(view, sections) for m in self.members]
        found = [w for w in found if w is not None]
        return None if not found else np.prod(np.stack(found), axis=0)

    def transform_batch(
        self, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, Any]:
        for member in self.members:
            batch = member.transform_batch(batch, generator=generator)
        return batch

    def loss_weights(self, batch: dict[str, Any]) -> torch.Tensor | None:
        found = [m.loss_weights(batch) for m in self.members]
        found = [w for w in found if w is not None]
        return None if not found else torch.stack(found).prod(dim=0)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        for member in self.members:
            model = member.wrap_model(model)
        return model

    def extra_loss(
        self, batch: dict[str, Any], image: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor | None:
        found = [m.extra_loss(batch, image, logits) for m in self.members]
        found = [term for term in found if term is not None]
        return None if not found else torch.stack(found).sum()

    def after_step(self, model: nn.Module) -> None:
        for member in self.members:
            member.after_step(model)

    def state_dict(self) -> dict[str, Any]:
        # The members share their regions; each adds its own keys (e.g. anchor's teacher).
        state: dict[str, Any] = {}
        for member in self.members:
            state.update(member.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for member in self.members:
            member.load_state_dict(state)


def _build_region_method(
    names: list[str], options: Mapping[str, Any], *, online: bool
) -> RegionMethod:
    """One region method, or a :class:`RegionChain` of several (options split by member)."""
    if len(names) == 1:
        return _REGION_METHODS[names[0]](options, online=online)
    members = []
    for position, name in enumerate(names):
        keys = _REGION_METHODS[name].option_keys
        own = {k: v for k, v in options.items() if k in keys}
        if position < len(names) - 1:
            own.pop("rotate", None)  # rotate and warp once, at the end
            own.pop("warp", None)
            own.pop("warps", None)
        members.append(_REGION_METHODS[name](own, online=online))
    return RegionChain(members)


_REGION_METHODS: dict[str, type[RegionMethod]] = {
    "oversample": Oversample,
    "style-input": StyleInput,
    "style-feature": StyleFeature,
    "focus": Focus,
    "paste": Paste,
    "anchor": Anchor,
}


#: The methods that read their regions from a previous run (option ``regions``).
REGION_METHOD_NAMES: tuple[str, ...] = tuple(_REGION_METHODS)
#: The methods that do not look at forgetting at all: the references a forgetting-aware method
#: is measured against.
REFERENCE_METHOD_NAMES: tuple[str, ...] = ("baseline", "rotate", "warp")


def build_method(name: str, options: Mapping[str, Any] | None = None) -> TrainingMethod:
    """Build the training method ``name`` with its ``options``.

    Args:
        name: one of :data:`METHOD_NAMES`.
        options: the method's options (see each class); unknown keys are an error.

    Returns:
        A :class:`TrainingMethod` ready for ``setup``.

    Raises:
        ValueError: unknown name or option, or an invalid option value.
        TypeError: an option of the wrong type.
        FileNotFoundError: option ``regions`` names no existing path.

    Example:
        >>> method = build_method("rotate", {"degrees": 5})
        >>> method.name
        'rotate'
    """
    options = dict(options or {})
    if name not in METHOD_NAMES:
        raise ValueError(f"Expected `name` to be one of {list(METHOD_NAMES)}, got {name!r}")
    allowed: tuple[str, ...]
    if name == "baseline":
        allowed = ()
    elif name == "rotate":
        allowed = Rotate.option_keys
    elif name == "warp":
        allowed = Warp.option_keys
    elif name == "online":
        inner = options.get("inner", "style-input")
        parts = [p for p in (inner.split("+") if isinstance(inner, str) else []) if p]
        known = [_REGION_METHODS[p] for p in parts if p in _REGION_METHODS]
        inner_keys = tuple(k for method in known for k in method.option_keys)
        allowed = ("inner", "warmup", "every", *inner_keys)
    else:
        allowed = _REGION_METHODS[name].option_keys
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"Expected options of method '{name}' from {sorted(allowed)}, got unknown {unknown}"
        )
    if name == "baseline":
        return TrainingMethod()
    if name == "rotate":
        return Rotate(options)
    if name == "warp":
        return Warp(options)
    if name == "online":
        return Online(options)
    return _REGION_METHODS[name](options)
