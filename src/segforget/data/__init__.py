"""Data sets as pixel spaces: synthetic F3-like surveys, F3 and SEG-Y loaders, image folders.

Shape legend: N sections, C channels, H = depth rows, W = lateral columns.

    >>> from segforget.data import load_data, PadToMultiple          # doctest: +SKIP
    >>> data = load_data("synthetic:small")                          # doctest: +SKIP
    >>> train = data.dataset("train", "inline", transform=PadToMultiple(32))  # doctest: +SKIP
    >>> item = train[0]   # image (1, H, W), label (H, W), pixel_index (H, W), view, section

See :mod:`segforget.data.core` for the split/view/pixel-space conventions.
"""

from segforget.data.core import IGNORE_INDEX, PixelSpace, SegmentationData, VolumeData
from segforget.data.corruption import CorruptedLabels, corrupt_labels
from segforget.data.datasets import PatchDataset, SectionDataset
from segforget.data.f3 import read_f3, write_f3
from segforget.data.images import ImageData, read_images
from segforget.data.preview import write_preview
from segforget.data.segy import import_segy, read_segy_cube
from segforget.data.spec import cache_dir, load_data
from segforget.data.synthetic import PRESETS, Survey, generate_survey, survey_labels, write_survey
from segforget.data.transforms import (
    AdditiveNoise,
    Compose,
    HorizontalFlip,
    PadToMultiple,
    RandomCrop,
    RandomRotation,
)

__all__ = [
    "CorruptedLabels",
    "corrupt_labels",
    "IGNORE_INDEX",
    "PixelSpace",
    "SegmentationData",
    "VolumeData",
    "SectionDataset",
    "PatchDataset",
    "load_data",
    "cache_dir",
    "read_f3",
    "write_f3",
    "ImageData",
    "read_images",
    "import_segy",
    "read_segy_cube",
    "write_preview",
    "PRESETS",
    "Survey",
    "generate_survey",
    "survey_labels",
    "write_survey",
    "Compose",
    "HorizontalFlip",
    "RandomCrop",
    "RandomRotation",
    "AdditiveNoise",
    "PadToMultiple",
]
