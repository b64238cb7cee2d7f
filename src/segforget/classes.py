"""Class names and reference figures of the F3 Netherlands facies benchmark."""

from __future__ import annotations

from collections.abc import Sequence

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


#: A class under this share of the labelled training pixels counts as rare (as in the analysis).
RARE_SHARE = 0.05


def rare_classes(
    class_names: Sequence[str], fractions: Sequence[float] | None = None, *, count: int = 2
) -> list[str]:
    """The classes a benchmark singles out as rare, in label order.

    The F3 rare classes when the data set has them all; otherwise the classes under
    :data:`RARE_SHARE` of the labelled training pixels (``fractions``, (K,) in label order),
    at most the ``count`` smallest, and the smallest class when none is under it (so there is
    always one to compare). Classes without training pixels are left out.

    Raises:
        ValueError: if ``fractions`` is needed and missing, or its length is not K.
    """
    names = list(class_names)
    if all(n in names for n in F3_RARE_CLASSES):
        return list(F3_RARE_CLASSES)
    if fractions is None or len(fractions) != len(names):
        raise ValueError(
            f"Expected one training-pixel fraction per class ({len(names)}), got "
            f"{None if fractions is None else len(fractions)}"
        )
    present = sorted((i for i in range(len(names)) if fractions[i] > 0), key=lambda i: fractions[i])
    rare = [i for i in present if fractions[i] < RARE_SHARE][:count] or present[:1]
    return [names[i] for i in sorted(rare)]


__all__ = [
    "F3_CLASS_NAMES",
    "F3_CLASS_FRACTIONS",
    "F3_CLASS_WEIGHTS",
    "F3_RARE_CLASSES",
    "RARE_SHARE",
    "rare_classes",
]
