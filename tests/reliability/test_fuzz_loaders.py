"""Loaders fed random or mutated bytes raise only the documented error types.

Documented: ValueError (corrupt or foreign content), TypeError, FileNotFoundError. Anything else
(RuntimeError, KeyError, struct.error, a crash) would reach the user as a traceback.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_builders import tiny_volume, write_f3_dir, write_image_folder, write_segy

DOCUMENTED = (ValueError, TypeError, FileNotFoundError)
#: Examples per loader: 25 fixed ones by default; SEGFORGET_FUZZ_EXAMPLES=2000 pytest ... hunts
#: longer with fresh random examples.
_HUNT = os.environ.get("SEGFORGET_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_HUNT or 25),
    deadline=None,
    derandomize=_HUNT is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """Random bytes, or ``original`` truncated and/or with some bytes overwritten."""
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "truncated+flipped"]))
    if kind == "random":
        return draw(st.binary(max_size=4096))
    data = bytearray(original)
    if "truncated" in kind:
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if "flipped" in kind and data:
        for _ in range(draw(st.integers(1, 16))):
            # Bias towards the header, where the parsers make their decisions.
            limit = min(len(data), 4000) if draw(st.booleans()) else len(data)
            position = draw(st.integers(0, limit - 1))
            data[position] = draw(st.integers(0, 255))
    return bytes(data)


def _expect_documented(load, *args, **kwargs) -> None:
    try:
        load(*args, **kwargs)
    except DOCUMENTED:
        pass


@pytest.fixture(scope="module")
def originals(tmp_path_factory, finished_run):
    root = tmp_path_factory.mktemp("fuzz-originals")
    seismic, labels = tiny_volume()
    np.save(root / "labels.npy", labels)
    write_segy(root / "cube.sgy", seismic)
    write_image_folder(root / "imgs", count=3)
    store = next((finished_run / "dynamics" / "epoch").iterdir())
    return {
        "npy": (root / "labels.npy").read_bytes(),
        "segy": (root / "cube.sgy").read_bytes(),
        "png": (root / "imgs" / "masks" / "img0.png").read_bytes(),
        "store": store,
    }


@FUZZ
@given(data=st.data())
def test_npy_loader(originals, data):
    from segforget.data.f3 import load_npy

    content = data.draw(mutated(originals["npy"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        path.write_bytes(content)
        for mmap in (True, False):
            _expect_documented(load_npy, path, mmap=mmap)


@FUZZ
@given(data=st.data())
def test_f3_layout_reader(originals, data):
    from segforget.data.f3 import read_f3

    content = data.draw(mutated(originals["npy"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = write_f3_dir(Path(tmp) / "survey", test=False)
        (root / "train" / "train_labels.npy").write_bytes(content)
        _expect_documented(read_f3, root)


@FUZZ
@given(data=st.data())
def test_segy_import(originals, data):
    from segforget.data.segy import import_segy, read_segy_cube

    content = data.draw(mutated(originals["segy"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cube.sgy"
        path.write_bytes(content)
        _expect_documented(read_segy_cube, path)
        np.save(Path(tmp) / "labels.npy", tiny_volume()[1])
        _expect_documented(
            lambda: import_segy(path, labels=Path(tmp) / "labels.npy", out=Path(tmp) / "out")
        )


@FUZZ
@given(data=st.data(), which=st.sampled_from(["images", "masks"]))
def test_image_folder_loader(originals, data, which):
    from segforget.data.images import read_images

    content = data.draw(mutated(originals["png"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = write_image_folder(Path(tmp) / "imgs", count=3)
        (root / which / "img1.png").write_bytes(content)
        _expect_documented(read_images, root)


@FUZZ
@given(
    data=st.data(),
    member=st.sampled_from(["zarr.json", "forgetting_events/zarr.json", "forgetting_events/c/0"]),
)
def test_store_loader(originals, data, member):
    from segforget.dynamics import ForgettingStats

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        shutil.copytree(originals["store"], store)
        content = data.draw(mutated((store / member).read_bytes()))
        (store / member).write_bytes(content)
        _expect_documented(ForgettingStats.load, store)
        _expect_documented(ForgettingStats.info, store)
        _expect_documented(lambda: ForgettingStats.load(store, pixels=slice(0, 10)))


def test_npy_header_with_a_null_byte(tmp_path):
    # Found by the fuzz test: numpy parses the header with ast.literal_eval -> SyntaxError.
    from segforget.data.f3 import load_npy

    np.save(tmp_path / "x.npy", tiny_volume()[1])
    data = bytearray((tmp_path / "x.npy").read_bytes())
    data[10] = 0  # the "{" that opens the header dict
    (tmp_path / "x.npy").write_bytes(bytes(data))
    for mmap in (True, False):
        with pytest.raises(ValueError, match="readable .npy array"):
            load_npy(tmp_path / "x.npy", mmap=mmap)


def test_png_with_a_broken_chunk(tmp_path):
    # Found by the fuzz test: Pillow reports some broken PNG chunks as SyntaxError.
    from segforget.data.images import read_images

    root = write_image_folder(tmp_path / "imgs", count=3)
    data = (root / "masks" / "img0.png").read_bytes()
    data = data.replace(b"\x19\xa1\x0c", b"\x19\x02\x0c").replace(b"IEND", b"\x00END")
    (root / "images" / "img1.png").write_bytes(data)
    with pytest.raises(ValueError, match=r"img1.png` to be a readable image"):
        read_images(root)
