"""ForgettingStats: derived fields, zarr store round trip, partial loads, damaged stores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dynamics import reference as ref
from segforget.dynamics import STORE_FORMAT_VERSION, ForgettingStats, ForgettingTracker, _stats

FIELDS = (*ref.INT_FIELDS, *ref.FLOAT_FIELDS, "history")


def make_stats(*, num_pixels=50, confidence=True, history=True, steps=20, seed=0):
    rng = np.random.default_rng(seed)
    tracker = ForgettingTracker(num_pixels, 3, confidence=confidence, history=history)
    for _ in range(steps):
        logits = torch.as_tensor(rng.normal(size=(2, 3, 1, num_pixels)), dtype=torch.float32)
        target = torch.as_tensor(rng.integers(0, 3, size=(2, 1, num_pixels)))
        target[0, 0, : num_pixels // 5] = 255
        index = torch.as_tensor(rng.integers(0, num_pixels, size=(2, 1, num_pixels)))
        tracker.update(logits if confidence else logits.argmax(1), target, index)
    return tracker.compute(meta={"section_shape": (1, num_pixels), "view": "inline"})


def assert_same(a: ForgettingStats, b: ForgettingStats):
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize(("confidence", "history"), [(True, True), (False, False)])
def test_round_trip_is_bit_exact(tmp_path, confidence, history):
    stats = make_stats(confidence=confidence, history=history)
    stats.save(tmp_path / "store")
    loaded = ForgettingStats.load(tmp_path / "store")
    assert_same(stats, loaded)
    assert loaded.meta == {"section_shape": [1, 50], "view": "inline"}
    if history:
        np.testing.assert_array_equal(
            loaded.correctness_history(np.arange(50)), stats.correctness_history(np.arange(50))
        )


def test_store_is_chunked_compressed_without_pickles(tmp_path, monkeypatch):
    monkeypatch.setattr(_stats, "_CHUNK", 16)
    stats = make_stats(num_pixels=50)
    stats.save(tmp_path / "store")
    meta = json.loads((tmp_path / "store" / "observations" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [16]
    assert meta["codecs"][-1]["name"] == "zstd"
    assert meta["data_type"] == "int32"
    assert len(list((tmp_path / "store" / "observations" / "c").iterdir())) == 4
    for file in (tmp_path / "store").rglob("*"):
        if file.is_file():
            # Pickle streams start with the PROTO opcode 0x80; zarr chunks here are zstd frames.
            assert not file.read_bytes().startswith(b"\x80"), file
    info = ForgettingStats.info(tmp_path / "store")
    assert info["format_version"] == STORE_FORMAT_VERSION and info["num_pixels"] == 50
    assert "observations" in info["arrays"] and "history" in info["arrays"]


def test_partial_load_matches_slice(tmp_path, monkeypatch):
    monkeypatch.setattr(_stats, "_CHUNK", 16)
    stats = make_stats(num_pixels=50)
    stats.save(tmp_path / "store")
    part = ForgettingStats.load(tmp_path / "store", pixels=slice(10, 37))
    assert part.pixel_offset == 10 and part.num_pixels == 27
    for name in FIELDS:
        value = getattr(stats, name)
        expected = value[..., 10:37]
        np.testing.assert_array_equal(getattr(part, name), expected, err_msg=name)
    np.testing.assert_array_equal(
        part.correctness_history([0, 5])[:, : stats.max_observations],
        stats.correctness_history([10, 15])[:, : part.max_observations],
    )
    with pytest.raises(ValueError, match=r"Expected `pixels` to be a slice\(start, stop\)"):
        ForgettingStats.load(tmp_path / "store", pixels=slice(0, 10, 2))


def test_save_refuses_existing_and_overwrites_on_request(tmp_path):
    stats = make_stats(confidence=False, history=False)
    stats.save(tmp_path / "store")
    with pytest.raises(FileExistsError, match="pass overwrite"):
        stats.save(tmp_path / "store")
    other = make_stats(confidence=False, history=False, seed=3)
    other.save(tmp_path / "store", overwrite=True)
    assert_same(ForgettingStats.load(tmp_path / "store"), other)


def test_save_is_atomic(tmp_path, monkeypatch):
    stats = make_stats(confidence=False, history=False)

    def boom(_array):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_stats, "_crc32", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        stats.save(tmp_path / "store")
    assert list(tmp_path.iterdir()) == []


def test_meta_must_be_jsonable(tmp_path):
    stats = make_stats(confidence=False, history=False)
    stats.meta = {"bad": object()}
    with pytest.raises(TypeError, match="Expected `meta` to be JSON-able"):
        stats.save(tmp_path / "store")
    assert not (tmp_path / "store").exists()


def _set_attr(store: Path, key: str, value):
    meta_file = store / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"][key] = value
    meta_file.write_text(json.dumps(meta))


@pytest.fixture
def store(tmp_path):
    make_stats(num_pixels=50).save(tmp_path / "store")
    return tmp_path / "store"


@pytest.mark.parametrize("version", [STORE_FORMAT_VERSION + 1, "1", None])
def test_newer_or_unknown_version_is_refused(store, version):
    _set_attr(store, "format_version", version)
    with pytest.raises(ValueError, match="Expected a ForgettingStats store of format version 1"):
        ForgettingStats.load(store)


def test_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected `path` to be a ForgettingStats store"):
        ForgettingStats.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="Expected `path` to be a ForgettingStats store"):
        ForgettingStats.load(tmp_path / "empty")


def test_other_zarr_group_is_refused(store):
    _set_attr(store, "format", "something.else")
    with pytest.raises(ValueError, match="got format 'something.else'"):
        ForgettingStats.load(store)


def test_missing_chunk_is_damage(store):
    chunk = next((store / "correct" / "c").iterdir())
    chunk.unlink()
    with pytest.raises(ValueError, match="got a damaged one.*missing chunks"):
        ForgettingStats.load(store)


def test_corrupt_chunk_is_damage(store):
    chunk = next((store / "forgetting_events" / "c").iterdir())
    chunk.write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match="got a damaged one"):
        ForgettingStats.load(store)


def test_checksum_catches_silent_change(store):
    arrays = ForgettingStats.load(store)
    shutil.rmtree(store / "switch_events")
    import zarr

    group = zarr.open_group(store, mode="a")
    changed = arrays.switch_events.copy()
    changed[0] += 1
    group.create_array("switch_events", data=changed, config={"write_empty_chunks": True})
    with pytest.raises(ValueError, match="checksum mismatch in 'switch_events'"):
        ForgettingStats.load(store)


@pytest.mark.parametrize("block", [7, 50, 1 << 22])
def test_verify_streams_the_same_checksums(tmp_path, block):
    """verify() reads in blocks and finds every array (2-D history too) intact, and the
    silently changed value that a range load cannot see."""
    make_stats(num_pixels=50, confidence=True, history=True).save(tmp_path / "s")
    ForgettingStats.verify(tmp_path / "s", block=block)
    for name in ("switch_events", "history"):
        arrays = ForgettingStats.load(tmp_path / "s")
        store = tmp_path / f"changed_{name}"
        shutil.copytree(tmp_path / "s", store)
        shutil.rmtree(store / name)
        import zarr

        changed = getattr(arrays, name).copy()
        changed[..., 0] += 1
        group = zarr.open_group(store, mode="a")
        group.create_array(name, data=changed, config={"write_empty_chunks": True})
        ForgettingStats.load(store, pixels=slice(0, 10))  # a range does not check checksums
        with pytest.raises(ValueError, match=f"checksum mismatch in '{name}'"):
            ForgettingStats.verify(store, block=block)


def test_verify_reports_damaged_chunks(store):
    chunk = next((store / "forgetting_events" / "c").iterdir())
    chunk.write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match="got a damaged one"):
        ForgettingStats.verify(store)


def test_missing_array_is_damage(store):
    shutil.rmtree(store / "last_correct")
    with pytest.raises(ValueError, match="got a damaged one"):
        ForgettingStats.load(store)


def test_truncated_metadata_is_damage(store):
    (store / "zarr.json").write_text("{")
    with pytest.raises(ValueError, match="Expected `path` to be a ForgettingStats store"):
        ForgettingStats.load(store)


def test_derived_fields_follow_definitions():
    stats = ForgettingStats(
        observations=np.array([0, 3, 3, 4], dtype=np.int32),
        correct=np.array([0, 0, 3, 2], dtype=np.int32),
        forgetting_events=np.array([0, 0, 0, 1], dtype=np.int32),
        switch_events=np.zeros(4, dtype=np.int32),
        first_learned=np.array([-1, -1, 0, 1], dtype=np.int32),
        last_correct=np.array([False, False, True, True]),
        last_prediction=np.array([-1, 1, 0, 0], dtype=np.int16),
    )
    assert stats.never_learned.tolist() == [False, True, False, False]
    assert stats.unforgettable.tolist() == [False, False, True, False]
    assert stats.forgetting_score.tolist() == [0, 3, 0, 1]
    assert stats.learning_events.tolist() == [0, 0, 1, 2]


@pytest.mark.parametrize(("first", "second"), [(0, 0), (5, 0), (0, 9), (1000, 777), (3, 1 << 24)])
def test_crc32_concat_equals_crc_of_the_concatenation(first, second):
    import zlib

    rng = np.random.default_rng(first + second)
    a = rng.integers(0, 256, first, dtype=np.uint8).tobytes()
    b = rng.integers(0, 256, second, dtype=np.uint8).tobytes()
    combined = _stats.crc32_concat(zlib.crc32(a), zlib.crc32(b), len(b))
    assert combined == zlib.crc32(a + b)


def _changed_copy(source: Path, target: Path, name: str) -> Path:
    """A copy of a store with one value of array `name` changed (checksums left as saved)."""
    import zarr

    arrays = ForgettingStats.load(source)
    shutil.copytree(source, target)
    shutil.rmtree(target / name)
    changed = getattr(arrays, name).copy()
    changed[..., -1] += 1  # the last pixel: found only when the last range is fed
    group = zarr.open_group(target, mode="a")
    group.create_array(name, data=changed, config={"write_empty_chunks": True})
    return target


@pytest.mark.parametrize("step", [7, 13, 50])
def test_store_checksums_verify_a_store_read_in_ranges(tmp_path, step):
    """Fed consecutive ranges, StoreChecksums accepts an intact store (2-D history too) and
    finds the silently changed value that verify() finds."""
    make_stats(num_pixels=50, confidence=True, history=True).save(tmp_path / "s")

    def read_all(store):
        sums = _stats.StoreChecksums(store)
        for start in range(0, 50, step):
            assert not sums.complete
            assert sums.feed(ForgettingStats.load(store, pixels=slice(start, start + step)))
        assert sums.complete and sums.position == 50
        return sums

    read_all(tmp_path / "s").check()
    for name in ("switch_events", "history", "aum"):
        store = _changed_copy(tmp_path / "s", tmp_path / f"changed_{name}", name)
        sums = read_all(store)
        with pytest.raises(ValueError, match=f"checksum mismatch in '{name}'"):
            sums.check()


def test_store_checksums_take_only_consecutive_ranges(tmp_path):
    make_stats(num_pixels=50).save(tmp_path / "s")
    sums = _stats.StoreChecksums(tmp_path / "s")
    assert not sums.feed(ForgettingStats.load(tmp_path / "s", pixels=slice(10, 20)))
    assert sums.position == 0
    assert sums.feed(ForgettingStats.load(tmp_path / "s", pixels=slice(0, 30)))
    assert not sums.feed(ForgettingStats.load(tmp_path / "s", pixels=slice(0, 30)))  # again
    with pytest.raises(RuntimeError, match="covering all 50 pixels"):
        sums.check()
    assert sums.feed(ForgettingStats.load(tmp_path / "s", pixels=slice(30, 50)))
    sums.check()


def test_read_returns_only_the_named_arrays_of_a_range(tmp_path):
    stats = make_stats(num_pixels=50)
    stats.save(tmp_path / "s")
    part = ForgettingStats.read(tmp_path / "s", ("observations", "history"), pixels=slice(5, 25))
    assert sorted(part) == ["history", "observations"]
    np.testing.assert_array_equal(part["observations"], stats.observations[5:25])
    np.testing.assert_array_equal(part["history"], stats.history[:, 5:25])
    with pytest.raises(ValueError, match=r"got \['nope'\]"):
        ForgettingStats.read(tmp_path / "s", ("nope",))


def test_store_checksums_of_a_store_with_an_empty_history(tmp_path):
    """A (0, N) history (nothing observed yet) has the checksum of no bytes."""
    n = 10
    stats = ForgettingStats(
        observations=np.zeros(n, np.int32),
        correct=np.zeros(n, np.int32),
        forgetting_events=np.zeros(n, np.int32),
        switch_events=np.zeros(n, np.int32),
        first_learned=np.full(n, -1, np.int32),
        last_correct=np.zeros(n, bool),
        last_prediction=np.full(n, -1, np.int16),
        history=np.zeros((0, n), np.uint8),
    )
    stats.save(tmp_path / "s")
    sums = _stats.StoreChecksums(tmp_path / "s")
    for start in range(0, n, 4):
        assert sums.feed(ForgettingStats.load(tmp_path / "s", pixels=slice(start, start + 4)))
    sums.check()
