"""Tiny inputs, valid and broken, built inside the tests; and a snapshot of a directory tree."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

#: Flags that keep a training run quiet and single-threaded (deterministic, fast in tests).
QUIET = ["--set", "log.progress=false", "--set", "log.tensorboard=false"]
QUIET += ["--set", "train.threads=1"]


def write_tiny_survey(directory: Path) -> Path:
    """A 6 x 10 x 24 training volume with two small test volumes in the F3 layout."""
    from segforget.data import generate_survey, write_survey

    survey = generate_survey(
        "small",
        seed=0,
        train_inlines=6,
        train_crosslines=10,
        samples=24,
        test1_inlines=3,
        test2_crosslines=4,
    )
    return write_survey(directory, survey)


#: Shape of the tiny volumes (inline, crossline, depth) and their number of classes.
SHAPE = (4, 6, 16)
NUM_CLASSES = 6


def tiny_volume(shape: tuple[int, int, int] = SHAPE, *, seed: int = 0):
    """A seeded (seismic float32, labels uint8) pair: labels are layers 0..5 down the depth."""
    rng = np.random.default_rng(seed)
    seismic = rng.standard_normal(shape).astype(np.float32)
    layer = (np.arange(shape[2]) * NUM_CLASSES // max(shape[2], 1)).astype(np.uint8)
    labels = np.broadcast_to(layer, shape).copy()
    return seismic, labels


def write_f3_dir(
    root: Path,
    *,
    seismic: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    test: bool = True,
) -> Path:
    """The F3 layout written with plain ``np.save`` (so invalid arrays can be written too)."""
    good_seismic, good_labels = tiny_volume()
    seismic = good_seismic if seismic is None else seismic
    labels = good_labels if labels is None else labels
    (root / "train").mkdir(parents=True)
    np.save(root / "train" / "train_seismic.npy", seismic)
    np.save(root / "train" / "train_labels.npy", labels)
    if test:
        (root / "test_once").mkdir()
        test_seismic, test_labels = tiny_volume((2, 6, 16), seed=1)
        np.save(root / "test_once" / "test1_seismic.npy", test_seismic)
        np.save(root / "test_once" / "test1_labels.npy", test_labels)
    return root


def write_segy(path: Path, cube: np.ndarray) -> Path:
    """A post-stack SEG-Y (IEEE floats) of ``cube`` (inline, crossline, depth), via segyio."""
    import segyio

    segyio.tools.from_array(str(path), np.ascontiguousarray(cube, dtype=np.float32), format=5)
    return path


def write_image_folder(root: Path, *, count: int = 4, missing_mask: str | None = None) -> Path:
    """``root/images/*.png`` and ``root/masks/*.png`` (8 x 8 grey), optionally one mask left out."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for k in range(count):
        stem = f"img{k}"
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(
            root / "images" / f"{stem}.png"
        )
        if stem != missing_mask:
            mask = np.zeros((8, 8), dtype=np.uint8)
            mask[4:] = 1
            Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    return root


def truncate(path: Path, *, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its bytes (a transfer that stopped half way)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def stores(run_dir: Path) -> list[Path]:
    """Every dynamics store of a run directory."""
    return sorted(p.parent for p in (run_dir / "dynamics").glob("*/*/zarr.json"))


def set_store_version(store: Path, version: int) -> None:
    """Rewrite a store's ``format_version`` attribute (a store from a future release)."""
    meta_path = store / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["format_version"] = version
    meta_path.write_text(json.dumps(meta))


def damage_store(store: Path, how: str) -> None:
    """Damage a store: ``missing-chunk`` deletes a chunk, ``corrupt-chunk`` scrambles one."""
    chunk = store / "forgetting_events" / "c" / "0"
    if how == "missing-chunk":
        chunk.unlink()
    elif how == "corrupt-chunk":
        data = bytearray(chunk.read_bytes())
        for k in range(8, len(data)):
            data[k] ^= 0x5A
        chunk.write_bytes(bytes(data))
    elif how == "missing-array":
        shutil.rmtree(store / "forgetting_events")
    else:
        raise ValueError(how)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (hidden ones too): type, size, mtime and content hash.

    Directory mtimes are included, so a file created and removed again is noticed too.
    """
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        stat = base.stat()
        found[str(base.relative_to(root))] = ("dir", stat.st_mtime_ns)
        for name in filenames:
            path = base / name
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            found[str(path.relative_to(root))] = ("file", stat.st_size, stat.st_mtime_ns, digest)
        dirnames.sort()
    return found


def diff_snapshots(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Human-readable differences between two snapshots (empty when nothing changed)."""
    lines = [f"created {k}" for k in sorted(set(after) - set(before))]
    lines += [f"removed {k}" for k in sorted(set(before) - set(after))]
    lines += [f"changed {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return lines
