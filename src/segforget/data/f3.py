"""The F3 benchmark layout on disk: reading with validation, and writing.

Layout (all arrays (inline, crossline, depth))::

    DIR/train/train_seismic.npy        float seismic
    DIR/train/train_labels.npy         integer labels 0..K-1 (255 = unlabelled)
    DIR/test_once/test1_seismic.npy    DIR/test_once/test1_labels.npy
    DIR/test_once/test2_seismic.npy    DIR/test_once/test2_labels.npy
    DIR/survey.json                    optional: class_names and how the data was made

Arrays are opened as read-only memory maps (``allow_pickle=False``) and never modified; the
F3 reference loader normalizes in place, this one does not.
"""

from __future__ import annotations

import json
import tokenize
from pathlib import Path
from typing import Any

import numpy as np

from segforget.classes import F3_CLASS_NAMES
from segforget.data.core import IGNORE_INDEX, VolumeData
from segforget.io import atomic_directory, atomic_write_json

__all__ = ["read_f3", "write_f3", "load_npy", "validate_volume", "F3_FILES"]

#: Relative paths of (seismic, labels) per volume name.
F3_FILES: dict[str, tuple[str, str]] = {
    "train": ("train/train_seismic.npy", "train/train_labels.npy"),
    "test1": ("test_once/test1_seismic.npy", "test_once/test1_labels.npy"),
    "test2": ("test_once/test2_seismic.npy", "test_once/test2_labels.npy"),
}

_CHUNK = 16


def load_npy(path: str | Path, *, mmap: bool = True) -> np.ndarray:
    """Open a ``.npy`` file read-only (memory-mapped by default), without pickles.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a readable ``.npy`` array (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected `{path}` to be a .npy file, got no such file")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY":
        raise ValueError(
            f"Expected `{path}` to be a .npy array (starting with \\x93NUMPY), got a file of "
            "another format; re-export it with numpy.save"
        )
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    # numpy parses the header with ast.literal_eval and, for old versions, tokenize: a damaged
    # header can raise SyntaxError, tokenize.TokenError or RecursionError too.
    except (
        ValueError,
        OSError,
        EOFError,
        TypeError,
        SyntaxError,
        OverflowError,
        RecursionError,
        tokenize.TokenError,
    ) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(
            f"Expected `{path}` to be a readable .npy array, got a corrupt or foreign file "
            f"({reason}); re-export it with numpy.save"
        ) from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"Expected `{path}` to hold one array, got {type(array).__name__}")
    if not mmap:
        array.setflags(write=False)
    return array


def validate_volume(
    seismic: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    seismic_name: str = "seismic",
    labels_name: str = "labels",
) -> None:
    """Check one (seismic, labels) pair; raise a one-line ValueError naming the file and fix.

    Checks: 3 dimensions, same non-empty shape, real numeric seismic without NaN/inf, integer
    labels (or integral floats) in ``0..num_classes-1`` or 255. Reads in chunks of inlines.
    """
    for array, name in ((seismic, seismic_name), (labels, labels_name)):
        if array.ndim != 3:
            raise ValueError(
                f"Expected `{name}` to be 3-D (inline, crossline, depth), got shape {array.shape}"
            )
        if array.size == 0:
            raise ValueError(f"Expected `{name}` to be non-empty, got shape {array.shape}")
    if seismic.shape != labels.shape:
        raise ValueError(
            f"Expected `{labels_name}` to have the shape of `{seismic_name}` {seismic.shape}, "
            f"got {labels.shape}"
        )
    if seismic.dtype.kind not in "fiu":
        raise ValueError(
            f"Expected `{seismic_name}` to hold real numbers (float32), got dtype {seismic.dtype}"
        )
    if labels.dtype.kind not in "fiu":
        raise ValueError(
            f"Expected `{labels_name}` to hold integer class labels, got dtype {labels.dtype}"
        )
    bad_values = 0
    for start in range(0, seismic.shape[0], _CHUNK):
        block = np.asarray(seismic[start : start + _CHUNK])
        if block.dtype.kind == "f":
            bad_values += int(block.size - np.count_nonzero(np.isfinite(block)))
    if bad_values:
        raise ValueError(
            f"Expected `{seismic_name}` to be finite, got {bad_values} NaN/inf values; "
            "replace them (e.g. numpy.nan_to_num) before loading"
        )
    allowed = np.zeros(256, dtype=bool)
    allowed[:num_classes] = True
    allowed[IGNORE_INDEX] = True
    for start in range(0, labels.shape[0], _CHUNK):
        block = np.asarray(labels[start : start + _CHUNK])
        if block.dtype.kind == "f":
            if not np.all(np.isfinite(block)) or np.any(block != np.round(block)):
                raise ValueError(
                    f"Expected `{labels_name}` to hold integer class labels, got non-integral "
                    "float values; store labels as uint8"
                )
        low, high = block.min(), block.max()
        if low < 0 or high > 255:
            bad = np.unique(block[(block < 0) | (block > 255)])
        else:
            present = np.bincount(block.astype(np.uint8).ravel(), minlength=256) > 0
            bad = np.flatnonzero(present & ~allowed)
        if bad.size:
            raise ValueError(
                f"Expected `{labels_name}` to hold labels 0..{num_classes - 1} (255 = unlabelled), "
                f"got {bad[:5].tolist()}; fix the labels or the class_names in survey.json"
            )


def _read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / "survey.json"
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"Expected `{path}` to be JSON, got {' '.join(str(exc).split())}; fix or delete it"
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(f"Expected `{path}` to hold a JSON object, got {type(meta).__name__}")
    names = meta.get("class_names")
    if names is not None and (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise ValueError(
            f"Expected `class_names` in `{path}` to be a list of distinct non-empty names, got "
            f"{names!r}; fix or delete it"
        )
    return meta


def read_f3(
    directory: str | Path,
    *,
    name: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    validate: bool = True,
) -> VolumeData:
    """Open a directory in the F3 layout as :class:`~segforget.data.core.VolumeData`.

    The test volumes are optional (present ones become the test splits, ``test1`` before
    ``test2``); a test volume needs both its files. Class names come from ``survey.json``
    when it has ``class_names``, else F3's six names.

    Raises:
        FileNotFoundError: if the directory or the train files are missing.
        ValueError: for a corrupt file, a shape/dtype/range problem or NaN/inf values.
    """
    directory = Path(directory)
    if not directory.is_dir():
        found = "a file" if directory.exists() else "no such directory"
        raise FileNotFoundError(
            f"Expected `{directory}` to be a directory in the F3 layout "
            f"(train/train_seismic.npy, ...), got {found}; create one with "
            "`segforget synth --out DIR` or `segforget import-segy`"
        )
    meta = _read_metadata(directory)
    class_names = tuple(meta.get("class_names") or F3_CLASS_NAMES)
    volumes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for volume, (seismic_rel, labels_rel) in F3_FILES.items():
        seismic_path, labels_path = directory / seismic_rel, directory / labels_rel
        present = seismic_path.exists(), labels_path.exists()
        if volume != "train" and not any(present):
            continue
        for path, exists in zip((seismic_path, labels_path), present, strict=True):
            if not exists:
                raise FileNotFoundError(
                    f"Expected `{path}` to exist (F3 layout: train/train_seismic.npy, "
                    "train/train_labels.npy, test_once/test1_seismic.npy, ...), got no such file"
                )
        seismic, labels = load_npy(seismic_path), load_npy(labels_path)
        if validate:
            validate_volume(
                seismic,
                labels,
                num_classes=len(class_names),
                seismic_name=str(seismic_path),
                labels_name=str(labels_path),
            )
        volumes[volume] = (seismic, labels)
    depth = volumes["train"][0].shape[2]
    for volume, (seismic, _) in volumes.items():
        if seismic.shape[2] != depth:
            raise ValueError(
                f"Expected `{directory / F3_FILES[volume][0]}` to have {depth} depth samples like "
                f"the train volume, got {seismic.shape[2]}"
            )
    return VolumeData(
        volumes,
        name=name or f"f3:{directory}",
        class_names=class_names,
        val_fraction=val_fraction,
        seed=seed,
        attrs=meta,
    )


def write_f3(
    directory: str | Path,
    volumes: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write volumes in the F3 layout, as one atomic directory (all files or none).

    Args:
        directory: target directory.
        volumes: ``{"train": (seismic, labels), "test1": ..., "test2": ...}``.
        metadata: written to ``survey.json`` when given.
        overwrite: replace an existing directory.

    Raises:
        ValueError: for a volume name outside train/test1/test2 or a missing train volume.
        FileExistsError: if ``directory`` exists and ``overwrite`` is False.
    """
    unknown = sorted(set(volumes) - set(F3_FILES))
    if unknown or "train" not in volumes:
        raise ValueError(
            "Expected `volumes` to hold 'train' and optionally 'test1', 'test2', "
            f"got {sorted(volumes)}"
        )
    target = Path(directory)
    with atomic_directory(target, overwrite=overwrite) as tmp:
        for volume, (seismic, labels) in volumes.items():
            for rel, array in zip(F3_FILES[volume], (seismic, labels), strict=True):
                path = tmp / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, np.asarray(array), allow_pickle=False)
        if metadata is not None:
            atomic_write_json(tmp / "survey.json", metadata)
    return target
