"""``load_data(spec)``: one string names a data set.

Specs:

- ``"synthetic:PRESET[:SEED]"``: an F3-like synthetic survey (presets small, medium, f3; seed
  default 0). Generated once and cached in the F3 layout under :func:`segforget.io.cache_dir`
  in ``synthetic/PRESET-seedSEED-vVERSION``; later loads read the cache.
- ``"f3:DIR"``: a directory in the F3 benchmark layout (what ``segforget synth`` and
  ``segforget import-segy`` write).
- ``"images:DIR"``: a folder of images and masks (see :mod:`segforget.data.images`).
"""

from __future__ import annotations

from pathlib import Path

from segforget.data.core import SegmentationData
from segforget.io import cache_dir

__all__ = ["load_data", "cache_dir", "synthetic_cache_path", "parse_spec", "absolute_spec"]

_FORMS = "'synthetic:PRESET[:SEED]', 'f3:DIR' or 'images:DIR'"


def synthetic_cache_path(preset: str, seed: int) -> Path:
    """Cache directory of a synthetic survey (the generator version is part of the name)."""
    from segforget.data.synthetic import GENERATOR_VERSION

    return cache_dir() / "synthetic" / f"{preset}-seed{seed}-v{GENERATOR_VERSION}"


def absolute_spec(spec: str) -> str:
    """``spec`` with the folder of an ``f3:`` or ``images:`` spec made absolute (``~``
    expanded), so a run's saved spec names the same data from any working directory; other
    specs are returned unchanged.

    Raises:
        TypeError, ValueError: as :func:`parse_spec`.
    """
    kind, argument, _ = parse_spec(spec)
    if kind == "synthetic":
        return spec
    return f"{kind}:{Path(argument).expanduser().absolute()}"


def parse_spec(spec: str) -> tuple[str, str, int | None]:
    """Split a spec into (kind, argument, seed); seed only for synthetic specs.

    Raises:
        TypeError: if ``spec`` is not a string.
        ValueError: for an unknown kind, a missing argument, or an invalid preset/seed.
    """
    if not isinstance(spec, str):
        raise TypeError(f"Expected `spec` to be a str like {_FORMS}, got {type(spec).__name__}")
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in ("synthetic", "f3", "images") or not rest:
        raise ValueError(f"Expected `spec` to be {_FORMS}, got {spec!r}")
    if kind != "synthetic":
        return kind, rest, None
    from segforget.data.synthetic import PRESETS

    preset, _, seed_text = rest.partition(":")
    if preset not in PRESETS:
        raise ValueError(
            f"Expected the preset in `spec` to be one of {sorted(PRESETS)}, got {preset!r}"
        )
    if not seed_text:
        return kind, preset, 0
    if not seed_text.isdigit():
        raise ValueError(
            f"Expected the seed in `spec` to be an int >= 0 (synthetic:{preset}:SEED), "
            f"got {seed_text!r}"
        )
    return kind, preset, int(seed_text)


def _synthetic(preset: str, seed: int, *, val_fraction: float, split_seed: int):
    from segforget.data.f3 import read_f3
    from segforget.data.synthetic import write_survey

    path = synthetic_cache_path(preset, seed)
    name = f"synthetic:{preset}:{seed}"
    if not (path / "survey.json").is_file():
        # survey.json is written last inside an atomic directory: its presence means complete.
        # Concurrent writers produce identical bytes, so the last rename wins harmlessly.
        write_survey(path, preset=preset, seed=seed, overwrite=True)
    # Our own cache: trust it (it was validated when generated) and skip the full scan.
    return read_f3(path, name=name, val_fraction=val_fraction, seed=split_seed, validate=False)


def load_data(
    spec: str, *, val_fraction: float = 0.1, seed: int = 0, num_classes: int | None = None
) -> SegmentationData:
    """Load a data set from a spec string.

    Args:
        spec: ``"synthetic:PRESET[:SEED]"``, ``"f3:DIR"`` or ``"images:DIR"``.
        val_fraction: fraction of training sections (per view) held out as the ``"val"`` split.
        seed: seed of the train/val split (and of the image folders' test split).
        num_classes: image folders only: number of classes (default: largest mask value + 1).

    Returns:
        A :class:`~segforget.data.core.SegmentationData` (``VolumeData`` for seismic specs).

    Raises:
        ValueError: for a malformed spec or invalid data (the message names the file and fix).
        FileNotFoundError: for a missing directory or file.

    Example:
        >>> data = load_data("synthetic:small")             # doctest: +SKIP
        >>> data.dataset("train", "inline")[0]["image"].shape  # doctest: +SKIP
        torch.Size([1, 96, 128])
    """
    kind, argument, synthetic_seed = parse_spec(spec)
    if kind == "synthetic":
        return _synthetic(
            argument, int(synthetic_seed or 0), val_fraction=val_fraction, split_seed=seed
        )
    if kind == "f3":
        from segforget.data.f3 import read_f3

        return read_f3(Path(argument).expanduser(), name=spec, val_fraction=val_fraction, seed=seed)
    from segforget.data.images import read_images

    return read_images(
        Path(argument).expanduser(),
        name=spec,
        val_fraction=val_fraction,
        seed=seed,
        num_classes=num_classes,
    )
