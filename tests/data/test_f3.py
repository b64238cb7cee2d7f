"""The F3 layout: round trip, validation errors (one per message), no in-place changes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from segforget.data import load_data, read_f3, write_f3
from segforget.data.f3 import F3_FILES, load_npy


def volumes(seed: int = 0, shape=(4, 6, 8)):
    rng = np.random.default_rng(seed)
    make = lambda s: (rng.normal(size=s).astype(np.float32), rng.integers(0, 6, s).astype(np.uint8))  # noqa: E731
    return {
        "train": make(shape),
        "test1": make((2, shape[1], shape[2])),
        "test2": make((6, 3, shape[2])),
    }


@pytest.fixture
def f3_dir(tmp_path):
    return write_f3(tmp_path / "f3", volumes())


def digest(directory):
    return {
        rel: hashlib.sha256((directory / rel).read_bytes()).hexdigest()
        for pair in F3_FILES.values()
        for rel in pair
    }


def test_round_trip_and_files_untouched(f3_dir):
    before = digest(f3_dir)
    data = load_data(f"f3:{f3_dir}")
    assert data.name == f"f3:{f3_dir}"
    source = volumes()
    for name, (seismic, labels) in source.items():
        np.testing.assert_array_equal(data.volumes[name][0], seismic)
        np.testing.assert_array_equal(data.volumes[name][1], labels)
        assert not data.volumes[name][0].flags.writeable  # read-only memory map
    dataset = data.dataset("train", "inline")
    for k in range(len(dataset)):
        dataset[k]["image"].mul_(0.0)  # an in-place edit of an item must not reach the file
    data.describe()
    assert digest(f3_dir) == before
    np.testing.assert_array_equal(np.load(f3_dir / F3_FILES["train"][0]), source["train"][0])


def test_test_volumes_are_optional(tmp_path):
    only_train = {"train": volumes()["train"]}
    data = read_f3(write_f3(tmp_path / "d", only_train))
    assert data.test_splits == ()


def test_float_labels_with_integral_values_are_accepted(tmp_path):
    vols = volumes()
    vols["train"] = (vols["train"][0], vols["train"][1].astype(np.float64))
    data = read_f3(write_f3(tmp_path / "d", vols))
    assert data.label_sections("train+val", "inline").dtype == np.int64


def test_survey_json_class_names(tmp_path):
    vols = volumes()
    directory = write_f3(tmp_path / "d", vols, metadata={"class_names": list("abcdefg")})
    assert read_f3(directory).class_names == tuple("abcdefg")


def _write_with(tmp_path, volume, which, array):
    vols = volumes()
    pair = list(vols[volume])
    pair[which] = array
    vols[volume] = tuple(pair)
    return write_f3(tmp_path / "bad", vols)


def test_shape_mismatch(tmp_path):
    directory = _write_with(tmp_path, "train", 1, np.zeros((4, 6, 7), np.uint8))
    with pytest.raises(
        ValueError, match=r"train_labels.npy` to have the shape of .*\(4, 6, 8\), got \(4, 6, 7\)"
    ):
        read_f3(directory)


def test_labels_out_of_range(tmp_path):
    labels = np.zeros((4, 6, 8), np.int64)
    labels[0, 0, 0] = 7
    directory = _write_with(tmp_path, "train", 1, labels)
    with pytest.raises(ValueError, match=r"to hold labels 0..5 \(255 = unlabelled\), got \[7\]"):
        read_f3(directory)
    labels[0, 0, 0] = -1
    directory = _write_with(tmp_path / "neg", "train", 1, labels)
    with pytest.raises(ValueError, match=r"to hold labels 0..5 .*got \[-1\]"):
        read_f3(directory)


def test_unlabelled_255_is_allowed(tmp_path):
    labels = np.zeros((4, 6, 8), np.uint8)
    labels[1] = 255
    data = read_f3(_write_with(tmp_path, "train", 1, labels))
    assert (data.label_sections("train+val", "inline", [1]) == 255).all()


def test_nan_and_inf(tmp_path):
    seismic = np.zeros((2, 6, 8), np.float32)
    seismic[0, 0, 0], seismic[1, 1, 1] = np.nan, np.inf
    directory = _write_with(tmp_path, "test1", 0, seismic)
    with pytest.raises(ValueError, match=r"test1_seismic.npy` to be finite, got 2 NaN/inf values"):
        read_f3(directory)


def test_empty(tmp_path):
    directory = _write_with(tmp_path, "test2", 0, np.zeros((0, 3, 8), np.float32))
    with pytest.raises(
        ValueError, match=r"test2_seismic.npy` to be non-empty, got shape \(0, 3, 8\)"
    ):
        read_f3(directory)


def test_wrong_dtype(tmp_path):
    directory = _write_with(tmp_path, "train", 0, np.zeros((4, 6, 8), np.complex64))
    with pytest.raises(
        ValueError, match=r"train_seismic.npy` to hold real numbers .*got dtype complex64"
    ):
        read_f3(directory)
    directory = _write_with(tmp_path / "b", "train", 1, np.zeros((4, 6, 8), bool))
    with pytest.raises(
        ValueError, match=r"train_labels.npy` to hold integer class labels, got dtype bool"
    ):
        read_f3(directory)
    directory = _write_with(tmp_path / "c", "train", 1, np.full((4, 6, 8), 0.5))
    with pytest.raises(ValueError, match=r"to hold integer class labels, got non-integral float"):
        read_f3(directory)


def test_wrong_dimensions(tmp_path):
    directory = _write_with(tmp_path, "train", 0, np.zeros((4, 48), np.float32))
    with pytest.raises(
        ValueError, match=r"to be 3-D \(inline, crossline, depth\), got shape \(4, 48\)"
    ):
        read_f3(directory)


def test_depth_mismatch_between_volumes(tmp_path):
    vols = volumes()
    vols["test2"] = (np.zeros((6, 3, 5), np.float32), np.zeros((6, 3, 5), np.uint8))
    directory = write_f3(tmp_path / "d", vols)
    with pytest.raises(
        ValueError, match=r"test2_seismic.npy` to have 8 depth samples like the train volume, got 5"
    ):
        read_f3(directory)


def test_corrupt_npy(f3_dir):
    path = f3_dir / F3_FILES["train"][0]
    path.write_bytes(b"\x93NUMPY garbage that is not a header")
    with pytest.raises(
        ValueError, match=r"train_seismic.npy` to be a readable .npy array, got a corrupt"
    ):
        read_f3(f3_dir)
    path.write_bytes(path.read_bytes()[:5])
    with pytest.raises(ValueError, match=r"re-export it with numpy.save"):
        load_npy(path)


def test_truncated_npy(f3_dir):
    path = f3_dir / F3_FILES["train"][1]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"train_labels.npy` to be a readable .npy array"):
        read_f3(f3_dir)


def test_pickled_object_array_is_refused(f3_dir):
    path = f3_dir / F3_FILES["train"][0]
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"readable .npy array.*(Python objects|[Pp]ickle)"):
        read_f3(f3_dir)


def test_missing_directory_and_files(tmp_path, f3_dir):
    with pytest.raises(
        FileNotFoundError, match=r"to be a directory in the F3 layout .*segforget synth"
    ):
        read_f3(tmp_path / "nowhere")
    (f3_dir / F3_FILES["test1"][1]).unlink()
    with pytest.raises(FileNotFoundError, match=r"test1_labels.npy` to exist"):
        read_f3(f3_dir)


def test_bad_survey_json(f3_dir):
    (f3_dir / "survey.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"survey.json` to be JSON"):
        read_f3(f3_dir)


def test_write_refuses_existing_and_unknown_volume(tmp_path, f3_dir):
    with pytest.raises(FileExistsError, match=r"not to exist; pass overwrite"):
        write_f3(f3_dir, volumes())
    with pytest.raises(ValueError, match=r"Expected `volumes` to hold 'train'"):
        write_f3(tmp_path / "x", {"test3": volumes()["train"]})
    assert not (tmp_path / "x").exists()
