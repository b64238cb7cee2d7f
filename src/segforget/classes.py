"""Class names and reference figures of the F3 Netherlands facies benchmark."""

from __future__ import annotations

#: F3 facies classes, top to bottom, in label order 0..5.
F3_CLASS_NAMES: tuple[str, ...] = (
    "upper_ns",
    "middle_ns",
    "lower_ns",
    "rijnland_chalk",
    "scruff",
    "zechstein",
)

#: Fractions of the F3 training labels per class (percent / 100).
F3_CLASS_FRACTIONS: tuple[float, ...] = (0.285, 0.119, 0.484, 0.065, 0.032, 0.015)

#: Optional class weights used by the F3 section benchmark's cross-entropy.
F3_CLASS_WEIGHTS: tuple[float, ...] = (0.7151, 0.8811, 0.5156, 0.9346, 0.9683, 0.9852)

#: The rare classes the papers single out.
F3_RARE_CLASSES: tuple[str, ...] = ("scruff", "zechstein")

__all__ = ["F3_CLASS_NAMES", "F3_CLASS_FRACTIONS", "F3_CLASS_WEIGHTS", "F3_RARE_CLASSES"]
