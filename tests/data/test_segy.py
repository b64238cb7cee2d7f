"""SEG-Y import: a cube written with segyio (IEEE float) comes back bit-exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import segyio

from segforget.data import read_f3
from segforget.data.segy import import_segy, parse_range, read_segy_cube


def cube(shape=(7, 9, 12), seed=0):
    rng = np.random.default_rng(seed)
    seismic = rng.normal(size=shape).astype(np.float32)
    seismic[0, 0, :3] = [np.float32(1e-38), np.float32(-0.0), np.float32(3.4e38)]
    labels = np.sort(rng.integers(0, 6, shape), axis=2).astype(np.uint8)
    return seismic, labels


@pytest.fixture
def segy_files(tmp_path):
    seismic, labels = cube()
    seismic_path, labels_path = tmp_path / "cube.sgy", tmp_path / "labels.npy"
    segyio.tools.from_array3D(str(seismic_path), seismic, format=5)  # IEEE float
    np.save(labels_path, labels)
    return seismic_path, labels_path, seismic, labels


def test_read_back_bit_exact(segy_files):
    seismic_path, _, seismic, _ = segy_files
    read = read_segy_cube(seismic_path)
    assert read.dtype == np.float32 and read.shape == seismic.shape
    assert read.tobytes() == seismic.tobytes()


def test_import_writes_f3_layout_with_cuts(segy_files, tmp_path):
    seismic_path, labels_path, seismic, labels = segy_files
    out = import_segy(
        seismic_path,
        labels=labels_path,
        out=tmp_path / "out",
        test1_inlines="0:2",
        test2_crosslines="6:",
    )
    data = read_f3(out)
    assert data.volumes["train"][0].tobytes() == seismic[2:, :6].tobytes()
    assert data.volumes["test1"][0].tobytes() == seismic[:2, :6].tobytes()
    assert data.volumes["test2"][0].tobytes() == seismic[:, 6:].tobytes()
    np.testing.assert_array_equal(data.volumes["train"][1], labels[2:, :6])
    np.testing.assert_array_equal(data.volumes["test2"][1], labels[:, 6:])
    meta = json.loads((out / "survey.json").read_text())
    assert meta["source"] == "segy" and meta["test1_inlines"] == [0, 2]


def test_import_without_cuts_is_all_train(segy_files, tmp_path):
    seismic_path, labels_path, seismic, _ = segy_files
    data = read_f3(import_segy(seismic_path, labels=labels_path, out=tmp_path / "o"))
    assert data.test_splits == () and data.volumes["train"][0].tobytes() == seismic.tobytes()


def test_labels_as_segy(segy_files, tmp_path):
    seismic_path, _, _, labels = segy_files
    labels_sgy = tmp_path / "labels.sgy"
    segyio.tools.from_array3D(str(labels_sgy), labels.astype(np.float32), format=5)
    data = read_f3(
        import_segy(seismic_path, labels=labels_sgy, out=tmp_path / "o", test1_inlines="5:")
    )
    np.testing.assert_array_equal(data.volumes["test1"][1], labels[5:])


def write_with_header_bytes(path, data, iline_byte, xline_byte):
    """Write a cube (IEEE float) whose line numbers live only at the given header bytes."""
    n_il, n_xl, n_samples = data.shape
    spec = segyio.spec()
    spec.iline, spec.xline = iline_byte, xline_byte
    spec.format, spec.sorting = 5, 2
    spec.samples = list(range(n_samples))
    spec.ilines, spec.xlines = list(range(1, n_il + 1)), list(range(1, n_xl + 1))
    with segyio.create(str(path), spec) as handle:
        for trace, (i, x) in enumerate(np.ndindex(n_il, n_xl)):
            handle.header[trace] = {
                iline_byte: i + 1,
                xline_byte: x + 1,
                segyio.TraceField.TRACE_SAMPLE_COUNT: n_samples,
            }
            handle.trace[trace] = data[i, x]
        handle.bin.update(tsort=2, hdt=4000)


def test_nonstandard_header_bytes(tmp_path):
    seismic, _ = cube()
    path = tmp_path / "odd.sgy"
    write_with_header_bytes(path, seismic, 9, 21)
    # Nothing at the default bytes 189/193: the error names the bytes to pass.
    with pytest.raises(
        ValueError,
        match=r"inline/crossline numbers in trace header bytes 189/193.*--iline BYTE --xline BYTE",
    ):
        read_segy_cube(path)
    assert read_segy_cube(path, iline=9, xline=21).tobytes() == seismic.tobytes()


def test_not_segy(tmp_path):
    path = tmp_path / "x.sgy"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(ValueError, match=r"x.sgy` to be"):
        read_segy_cube(path)
    with pytest.raises(FileNotFoundError, match=r"to be a SEG-Y file, got no such file"):
        read_segy_cube(tmp_path / "missing.sgy")
    with pytest.raises(ValueError, match=r"Expected `iline` to be a trace header byte in 1..237"):
        read_segy_cube(path, iline=0)


def test_import_errors_write_nothing(segy_files, tmp_path):
    seismic_path, labels_path, _, labels = segy_files
    bad = tmp_path / "bad.npy"
    np.save(bad, labels[:, :, :5])
    out = tmp_path / "o"
    with pytest.raises(
        ValueError, match=r"bad.npy` to have the seismic cube's shape \(7, 9, 12\), got \(7, 9, 5\)"
    ):
        import_segy(seismic_path, labels=bad, out=out)
    with pytest.raises(ValueError, match=r"Expected `test1_inlines` to touch the start or the end"):
        import_segy(seismic_path, labels=labels_path, out=out, test1_inlines="2:4")
    with pytest.raises(FileNotFoundError, match=r"to be a labels file"):
        import_segy(seismic_path, labels=tmp_path / "none.npy", out=out)
    assert not out.exists()
    out.mkdir()
    with pytest.raises(FileExistsError, match=r"not to exist; pass overwrite \(--force\)"):
        import_segy(seismic_path, labels=labels_path, out=out)


@pytest.mark.parametrize(
    "text,expected",
    [("0:3", (0, 3)), (":3", (0, 3)), ("7:10", (7, 10)), ("7:", (7, 10)), (None, None)],
)
def test_parse_range(text, expected):
    assert parse_range(text, 10, "r") == expected


@pytest.mark.parametrize("text", ["3", "a:b", "5:2", "0:11", "0:10", "3:5"])
def test_parse_range_errors(text):
    with pytest.raises(ValueError, match=r"Expected `r` to"):
        parse_range(text, 10, "r")
