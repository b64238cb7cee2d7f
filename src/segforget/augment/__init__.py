"""Forgetting-aware training: give the frequently forgotten regions more variety.

- :func:`build_method` builds the method ``segforget train --method NAME`` uses.
- :func:`select_regions` picks frequently forgotten regions from per-pixel forgetting events.
- :func:`moment_match`, :func:`fourier_transfer`: input-space style operators.
- :class:`FeatureStatsMixer`: feature-space statistics mixing after an early encoder stage.
"""

from segforget.augment.base import TrainingMethod
from segforget.augment.feature import FeatureStatsMixer, find_early_stage, insert_feature_mixer
from segforget.augment.geometry import region_centres, rotate_batch, warp_batch
from segforget.augment.methods import (
    METHOD_NAMES,
    Anchor,
    Focus,
    Online,
    Oversample,
    RegionChain,
    RegionMethod,
    Rotate,
    StyleFeature,
    StyleInput,
    Warp,
    batch_regions,
    build_method,
)
from segforget.augment.regions import RegionOptions, select_regions, select_regions_from_stats
from segforget.augment.style import (
    fourier_amplitude_mix,
    fourier_transfer,
    low_frequency_band,
    moment_match,
    region_moments,
    soft_mask,
)

__all__ = [
    "TrainingMethod",
    "METHOD_NAMES",
    "build_method",
    "RegionMethod",
    "RegionChain",
    "Rotate",
    "Warp",
    "Oversample",
    "StyleInput",
    "StyleFeature",
    "Focus",
    "Anchor",
    "Online",
    "rotate_batch",
    "warp_batch",
    "region_centres",
    "batch_regions",
    "RegionOptions",
    "select_regions",
    "select_regions_from_stats",
    "soft_mask",
    "region_moments",
    "moment_match",
    "low_frequency_band",
    "fourier_amplitude_mix",
    "fourier_transfer",
    "FeatureStatsMixer",
    "insert_feature_mixer",
    "find_early_stage",
]
