"""Convert a SEG-Y cube (and its labels) to the F3 layout, via segyio.

The cube's geometry (inline and crossline numbers) is read from the trace headers at byte
positions ``iline`` and ``xline`` (SEG-Y rev 1 default: 189 and 193). Values are kept exactly
(IEEE float cubes round-trip bit for bit; IBM floats are converted by segyio).

Test cuts are ranges of 0-based positions along the cube's axes, F3-style: ``test1`` = the
inlines of ``test1_inlines`` over the crosslines outside ``test2``; ``test2`` = every inline over
the crosslines of ``test2_crosslines``; ``train`` = the rest. Each range must touch the start
or the end of its axis so that train stays one contiguous block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segforget.classes import F3_CLASS_NAMES
from segforget.data.f3 import F3_FILES, load_npy, validate_volume, write_f3
from segforget.io import check_output_directory

__all__ = ["read_segy_cube", "import_segy", "parse_range"]

#: Files import_segy writes to its output folder: overwrite replaces only such a folder.
_OUTPUT_FILES = (*(name for pair in F3_FILES.values() for name in pair), "survey.json")

_HINT = (
    "pass the header byte positions with --iline BYTE --xline BYTE (common: 189/193, 9/21, 5/17)"
)


def read_segy_cube(path: str | Path, *, iline: int = 189, xline: int = 193) -> np.ndarray:
    """Read a post-stack SEG-Y cube as (inline, crossline, depth) float32.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is not SEG-Y or its geometry cannot be inferred from the trace
            header bytes ``iline``/``xline`` (the message says which bytes to pass).
    """
    import segyio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected `{path}` to be a SEG-Y file, got no such file")
    for name, value in (("iline", iline), ("xline", xline)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 237:
            raise ValueError(
                f"Expected `{name}` to be a trace header byte in 1..237, got {value!r}"
            )
    try:
        with segyio.open(str(path), "r", iline=iline, xline=xline) as handle:
            cube = segyio.tools.cube(handle)
    except (RuntimeError, ValueError, KeyError, IndexError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "file size" in reason or "unable to count traces" in reason:
            raise ValueError(
                f"Expected `{path}` to be a complete SEG-Y file, got a truncated or foreign file "
                f"({reason}); copy or export it again"
            ) from None
        raise ValueError(
            f"Expected `{path}` to be a SEG-Y cube with inline/crossline numbers in trace header "
            f"bytes {iline}/{xline}, got no regular geometry ({reason}); {_HINT}"
        ) from None
    except OSError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(
            f"Expected `{path}` to be a readable SEG-Y file, got {reason}; check the file"
        ) from None
    if cube.ndim == 4:
        raise ValueError(f"Expected `{path}` to be post-stack (one offset), got {cube.shape[2]}")
    return np.ascontiguousarray(cube, dtype=np.float32)


def parse_range(text: str | None, length: int, name: str) -> tuple[int, int] | None:
    """Parse ``"A:B"`` (0-based, end exclusive; either side may be empty) into a checked range.

    Raises:
        ValueError: if malformed, empty, out of [0, length], or not touching an end of the axis.
    """
    if text is None or text == "":
        return None
    start_text, sep, stop_text = str(text).partition(":")
    try:
        start = int(start_text) if start_text else 0
        stop = int(stop_text) if stop_text else length
    except ValueError:
        start, stop, sep = 0, 0, ""
    if not sep or not 0 <= start < stop <= length:
        raise ValueError(
            f"Expected `{name}` to be A:B with 0 <= A < B <= {length} (0-based, end exclusive), "
            f"got {text!r}"
        )
    if start != 0 and stop != length:
        raise ValueError(
            f"Expected `{name}` to touch the start or the end of the axis (0:B or A:{length}) so "
            f"that train stays contiguous, got {text!r}"
        )
    if stop - start == length:
        raise ValueError(
            f"Expected `{name}` to leave some of the {length} positions for train, got {text!r}"
        )
    return start, stop


def _check_integral(labels: np.ndarray, path: Path) -> None:
    """Raise unless float labels are finite whole numbers (uint8 would truncate 2.5, NaN -> 0)."""
    if labels.dtype.kind != "f":
        return
    if not np.all(np.isfinite(labels)):
        raise ValueError(
            f"Expected `{path}` to hold integer class labels, got NaN or infinite values; "
            "store whole class numbers 0..254 (255 = unlabelled)"
        )
    if np.any(labels != np.round(labels)):
        raise ValueError(
            f"Expected `{path}` to hold integer class labels, got non-integral values; "
            "store whole class numbers 0..254 (255 = unlabelled)"
        )


def _read_labels(path: Path, *, iline: int, xline: int) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        labels = np.asarray(load_npy(path, mmap=False))
        if labels.dtype.kind not in "biuf":
            raise ValueError(
                f"Expected `{path}` to hold integer class labels, got dtype {labels.dtype}; "
                "store labels as uint8"
            )
    else:
        labels = read_segy_cube(path, iline=iline, xline=xline)
    _check_integral(labels, path)
    return labels


def import_segy(
    seismic: str | Path,
    *,
    labels: str | Path,
    out: str | Path,
    iline: int = 189,
    xline: int = 193,
    test1_inlines: str | None = None,
    test2_crosslines: str | None = None,
    class_names: tuple[str, ...] | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a SEG-Y cube and its labels (``.npy`` or SEG-Y) to the F3 layout in ``out``.

    Args:
        seismic: SEG-Y file of the seismic cube.
        labels: labels cube, ``.npy`` (inline, crossline, depth) or SEG-Y with the same geometry.
        out: output directory (written atomically).
        iline: trace header byte of the inline number.
        xline: trace header byte of the crossline number.
        test1_inlines: ``"A:B"`` inline positions for test1 (default: no test1).
        test2_crosslines: ``"A:B"`` crossline positions for test2 (default: no test2).
        class_names: names of the classes (default: F3's six when labels fit 0..5, else
            ``class_0..``).
        overwrite: replace an existing ``out`` written by an earlier import (the F3 layout
            and survey.json, nothing else).

    Returns:
        The output directory.

    Raises:
        FileNotFoundError, FileExistsError, ValueError: for missing inputs, an existing output
            or invalid cubes/ranges; nothing is written then.
        NotADirectoryError: ``out`` or a parent of it is a file.
    """
    seismic_path, labels_path, target = Path(seismic), Path(labels), Path(out)
    check_output_directory(
        target,
        overwrite=overwrite,
        command="import-segy",
        marker="survey.json",
        names=_OUTPUT_FILES,
        force="overwrite (--force)",
        marker_fields={"source": "segy"},
    )
    if not labels_path.is_file():
        raise FileNotFoundError(
            f"Expected `{labels_path}` to be a labels file (.npy or SEG-Y), got no such file"
        )
    cube = read_segy_cube(seismic_path, iline=iline, xline=xline)
    label_cube = _read_labels(labels_path, iline=iline, xline=xline)
    if label_cube.shape != cube.shape:
        raise ValueError(
            f"Expected `{labels_path}` to have the seismic cube's shape {cube.shape}, got "
            f"{label_cube.shape}; if the cube's shape is wrong, {_HINT}"
        )
    if label_cube.size and (label_cube.min() < 0 or label_cube.max() > 255):
        raise ValueError(
            f"Expected `{labels_path}` to hold labels in 0..254 (255 = unlabelled), got values in "
            f"[{label_cube.min()}, {label_cube.max()}]"
        )
    label_cube = label_cube.astype(np.uint8)
    if class_names is None:
        present = label_cube[label_cube != 255]
        count = int(present.max()) + 1 if present.size else 1
        class_names = F3_CLASS_NAMES if count <= 6 else tuple(f"class_{k}" for k in range(count))
    validate_volume(
        cube,
        label_cube,
        num_classes=len(class_names),
        seismic_name=str(seismic_path),
        labels_name=str(labels_path),
    )
    n_il, n_xl, _ = cube.shape
    t1 = parse_range(test1_inlines, n_il, "test1_inlines")
    t2 = parse_range(test2_crosslines, n_xl, "test2_crosslines")
    keep_xl = np.ones(n_xl, dtype=bool)
    if t2 is not None:
        keep_xl[t2[0] : t2[1]] = False
    keep_il = np.ones(n_il, dtype=bool)
    if t1 is not None:
        keep_il[t1[0] : t1[1]] = False
    volumes: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "train": (cube[keep_il][:, keep_xl], label_cube[keep_il][:, keep_xl])
    }
    if t1 is not None:
        volumes["test1"] = (cube[~keep_il][:, keep_xl], label_cube[~keep_il][:, keep_xl])
    if t2 is not None:
        volumes["test2"] = (cube[:, ~keep_xl], label_cube[:, ~keep_xl])
    metadata: dict[str, Any] = {
        "source": "segy",
        "seismic": str(seismic_path),
        "labels": str(labels_path),
        "iline_byte": iline,
        "xline_byte": xline,
        "test1_inlines": list(t1) if t1 else None,
        "test2_crosslines": list(t2) if t2 else None,
        "class_names": list(class_names),
        "shapes": {k: list(v[0].shape) for k, v in volumes.items()},
    }
    return write_f3(target, volumes, metadata=metadata, overwrite=overwrite)
