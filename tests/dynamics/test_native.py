"""The fused C kernel: bit-identical to the torch path and the reference; built atomically,
cached, and optional (clear fallback and errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamics import reference as ref
from segforget.dynamics import ForgettingTracker, _native

HAS_COMPILER = _native._compiler() is not None


def _updates(rng, *, layout: str, ignore_index: int, steps: int = 10):
    """(prediction, target, pixel_index or offsets) of 8 sections of 3 x 5 pixels."""
    sections, height, width, classes = 8, 3, 5, 4
    block = height * width
    out = []
    for _ in range(steps):
        chosen = rng.choice(sections, size=3, replace=False)
        target = rng.integers(0, classes, size=(3, height, width))
        if layout != "all-observed":
            target[rng.random(target.shape) < 0.2] = ignore_index
        pred = np.where(rng.random(target.shape) < 0.6, np.clip(target, 0, classes - 1), 1)
        index = chosen.reshape(3, 1, 1) * block + np.arange(block).reshape(height, width)
        if layout == "flipped":
            pred, target, index = pred[..., ::-1], target[..., ::-1], index[..., ::-1]
        elif layout == "crops":  # windows route: upside down, with duplicates and padding
            index = index[:, ::-1].copy()
            index[2] = index[1]
            index[:, 0, 0] = -1
            index[0] = -1 if rng.random() < 0.2 else index[0]  # a sample of padding only
        elif layout == "vflip":  # upside down: every row a run, the row-run route
            index = index[:, ::-1]
            pred, target = pred[:, ::-1], target[:, ::-1]
        elif layout == "crop-rows":  # 2 x 3 crops, some mirrored: runs of 3 pixels
            top, left = rng.integers(0, 2), rng.integers(0, 3)
            index = index[:, top : top + 2, left : left + 3]
            pred, target = pred[:, :2, :3], target[:, :2, :3]
            if rng.random() < 0.5:
                index = index[..., ::-1]
        elif layout == "spread":  # entries all over the pixel space: gather/scatter route
            index = rng.integers(-1, sections * block, size=index.shape)
        pred, target, index = (np.ascontiguousarray(a) for a in (pred, target, index))
        out.append((pred, target, index, [int(s) * block for s in chosen]))
    return out, sections * block, classes


def _run(updates, num_pixels, classes, *, dtype, ignore_index, layout, native):
    tracker = ForgettingTracker(num_pixels, classes, ignore_index=ignore_index, native=native)
    for pred, target, index, offsets in updates:
        pred_t = torch.as_tensor(pred).to(dtype)
        target_t = torch.as_tensor(target).to(dtype)
        if layout == "blocks":
            tracker.update_blocks(pred_t, target_t, offsets)
        else:
            tracker.update(pred_t, target_t, torch.as_tensor(index))
    return tracker


CASES = [
    (torch.int64, 255),
    (torch.int64, 0),
    (torch.int64, -100),
    (torch.int64, 300),
    (torch.uint8, 255),
    (torch.uint8, 0),
    (torch.int32, 255),
    (torch.int32, -100),
]


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
@pytest.mark.parametrize(
    "layout",
    ["blocks", "contiguous", "flipped", "vflip", "crop-rows", "crops", "spread", "all-observed"],
)
@pytest.mark.parametrize(("dtype", "ignore_index"), CASES)
def test_native_equals_torch_path_and_reference(layout, dtype, ignore_index):
    rng = np.random.default_rng(abs(ignore_index) + len(layout))
    updates, num_pixels, classes = _updates(rng, layout=layout, ignore_index=ignore_index)
    options = dict(dtype=dtype, ignore_index=ignore_index, layout=layout)
    native = _run(updates, num_pixels, classes, native=True, **options)
    torch_path = _run(updates, num_pixels, classes, native=False, **options)
    assert native.native and not torch_path.native
    ours, theirs = native.state_dict(), torch_path.state_dict()
    for name, value in theirs.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(ours[name], value), name
        else:
            assert ours[name] == value, name
    expected = ref.statistics(
        ref.sequences([u[:3] for u in updates], num_pixels, ignore_index=ignore_index)
    )
    stats = native.compute()
    for name in ref.INT_FIELDS:
        np.testing.assert_array_equal(getattr(stats, name), expected[name], err_msg=name)
    assert expected["forgetting_events"].sum() > 0 and expected["switch_events"].sum() > 0


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
@pytest.mark.parametrize(("num_pixels", "expected"), [(100, True), (100_000, False)])
def test_native_scatter_takes_windows_only_when_compact(num_pixels, expected, monkeypatch):
    """Entries within a few windows' worth of pixels take the fused windows; entries spread
    over a large pixel space fall back to the gather/scatter route (same statistics)."""
    rng = np.random.default_rng(5)
    tracker = ForgettingTracker(num_pixels, 3, native=True)
    reference = ForgettingTracker(num_pixels, 3, native=False)
    taken = _record_results(monkeypatch, tracker, "_scatter_native")
    for _ in range(3):
        index = torch.as_tensor(rng.integers(-1, num_pixels, size=(2, 4, 5)))
        target = torch.as_tensor(rng.integers(0, 3, size=(2, 4, 5)))
        pred = torch.as_tensor(rng.integers(0, 3, size=(2, 4, 5)))
        for t in (tracker, reference):
            t.update(pred, target, index)
    assert taken == [expected] * 3
    ours, theirs = tracker.state_dict(), reference.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in theirs.items() if torch.is_tensor(v))


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
def test_native_scatter_scratch_is_two_bytes_per_pixel_of_the_largest_window():
    """Window by window: the scratch holds one window (code and class bytes), not the batch."""
    height, width, sections = 12, 30, 10
    tracker = ForgettingTracker(sections * height * width, 4, native=True)
    reference = ForgettingTracker(sections * height * width, 4, native=False)
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    # shear: row r shifted by r // 4 columns (clipped), like a small rotation
    source = rows * width + (cols + rows // 4).clamp(max=width - 1)
    chosen = torch.tensor([7, 2, 5, 0])  # sample 2 (section 5) is the widest
    index = source.expand(4, -1, -1) + (chosen * height * width).view(-1, 1, 1)
    index[2, :2] = -1  # section 5 starts later: its window is shorter than the others
    rng = np.random.default_rng(3)
    pred = torch.as_tensor(rng.integers(0, 4, size=(4, height, width)))
    target = torch.as_tensor(rng.integers(0, 4, size=(4, height, width)))
    for t in (tracker, reference):
        t.update(pred, target, index)
    valid = index[index >= 0].view(-1)
    longest = max(int(i[i >= 0].max() - i[i >= 0].min() + 1) for i in index)
    assert tracker._workspace.nbytes == 2 * longest < 2 * valid.numel()
    ours, theirs = tracker.state_dict(), reference.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in theirs.items() if torch.is_tensor(v))


def test_native_index_beyond_pixel_space_raises_and_changes_nothing():
    tracker = ForgettingTracker(20, 3)
    before = tracker.state_dict()
    index = torch.arange(8).view(2, 2, 2).flip(1)
    index[1, 0, 0] = 25
    with pytest.raises(ValueError, match=r"Expected `pixel_index` values < num_pixels \(20\)"):
        zeros = torch.zeros(2, 2, 2, dtype=torch.long)
        tracker.update(zeros, zeros, index)
    after = tracker.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if torch.is_tensor(v))


def _record_results(monkeypatch, tracker, method: str) -> list:
    """Wrap ``tracker.<method>`` so each call's result is appended to the returned list."""
    taken: list = []
    original = getattr(tracker, method)

    def spy(*args):
        taken.append(original(*args))
        return taken[-1]

    monkeypatch.setattr(tracker, method, spy)
    return taken


def test_native_option_errors():
    with pytest.raises(TypeError, match="Expected `native` to be a bool or None"):
        ForgettingTracker(4, 2, native="yes")
    with pytest.raises(ValueError, match="Expected `native=True` only for a CPU tracker"):
        ForgettingTracker(4, 2, confidence=True, native=True)
    with pytest.raises(ValueError, match="Expected `native=True` only for a CPU tracker"):
        ForgettingTracker(4, 2, history=True, native=True)
    # Confidence and history use the torch path by default (the kernel covers the core state).
    assert not ForgettingTracker(4, 2, confidence=True).native
    assert ForgettingTracker(4, 2).native is _native.available()


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


PROBE = """
import warnings
warnings.simplefilter("error")  # a failed build must not warn when the kernel is disabled
from segforget.dynamics import ForgettingTracker
tracker = ForgettingTracker(4, 2)
print(tracker.native)
try:
    ForgettingTracker(4, 2, native=True)
except RuntimeError as error:
    print(error)
"""


def test_fallback_when_disabled(tmp_path):
    done = _python(PROBE, {"SEGFORGET_NATIVE": "0", "SEGFORGET_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "False"
    assert "unavailable: disabled by SEGFORGET_NATIVE=0" in lines[1]
    assert not any(tmp_path.iterdir())  # nothing built


def test_fallback_without_compiler(tmp_path):
    """No compiler on PATH: the torch path, and native=True says why."""
    env = {"PATH": str(tmp_path / "empty"), "CC": "", "SEGFORGET_CACHE": str(tmp_path / "c")}
    done = _python(PROBE, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "False",
        "The fused tracker kernel is unavailable: no C compiler found (set CC); pass "
        "native=None or False to use the torch path",
    ]


def test_failed_build_warns_once_and_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(_native, "_tried", False)
    monkeypatch.setattr(_native, "_library", None)
    monkeypatch.setattr(_native, "_reason", None)
    monkeypatch.setattr(_native, "_FLAGS", ("--no-such-flag-for-segforget",))
    monkeypatch.setenv("SEGFORGET_CACHE", str(tmp_path))
    if not HAS_COMPILER:
        assert _native.load() is None
        return
    with pytest.warns(UserWarning, match="could not build the fused kernel"):
        assert _native.load() is None
    assert _native.load() is None  # tried once per process
    tracker = ForgettingTracker(4, 2)
    assert not tracker.native
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.c"))


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
def test_built_once_atomically_into_the_cache(tmp_path):
    code = "from segforget.dynamics import ForgettingTracker; print(ForgettingTracker(4, 2).native)"
    first = _python(code, {"SEGFORGET_CACHE": str(tmp_path)})
    assert first.stdout.strip() == "True", first.stderr
    built = list(tmp_path.iterdir())
    assert len(built) == 1 and built[0].name.startswith("observe-") and built[0].suffix == ".so"
    stamp = built[0].stat().st_mtime_ns
    second = _python(code, {"SEGFORGET_CACHE": str(tmp_path)})
    assert second.stdout.strip() == "True", second.stderr
    assert [p.name for p in tmp_path.iterdir()] == [built[0].name]
    assert built[0].stat().st_mtime_ns == stamp  # loaded from the cache, not rebuilt
    # A kernel of another source version is removed when a new one is built.
    stale = tmp_path / "observe-0000000000000000.so"
    stale.write_bytes(b"old")
    built[0].unlink()
    third = _python(code, {"SEGFORGET_CACHE": str(tmp_path)})
    assert third.stdout.strip() == "True", third.stderr
    assert [p.name for p in tmp_path.iterdir()] == [built[0].name]


def test_source_is_packaged():
    source = Path(_native.__file__).with_name("_observe.c")
    assert source.is_file()
    assert "segforget_observe_targets" in source.read_text()


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
def test_unwritable_cache_falls_back_to_the_temporary_directory(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    code = "from segforget.dynamics import ForgettingTracker; print(ForgettingTracker(4, 2).native)"
    done = _python(code, {"SEGFORGET_CACHE": str(blocker / "sub"), "TMPDIR": str(temporary)})
    assert done.stdout.strip() == "True", done.stderr
    built = list(temporary.glob("segforget-*/observe-*.so"))
    assert len(built) == 1


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
@pytest.mark.parametrize(
    ("layout", "expected"), [("vflip", True), ("crop-rows", True), ("crops", False)]
)
def test_row_runs_route_only_without_overlap(layout, expected, monkeypatch):
    """Rows that are runs of the pixel space take the row route; overlapping runs (a section
    twice in a batch) and padded rows fall back to the windows (same statistics either way,
    see the equivalence test)."""
    rng = np.random.default_rng(9)
    updates, num_pixels, classes = _updates(rng, layout=layout, ignore_index=255, steps=4)
    tracker = ForgettingTracker(num_pixels, classes, native=True)
    taken = _record_results(monkeypatch, tracker, "_rows_native")
    for pred, target, index, _ in updates:
        tracker.update(torch.as_tensor(pred), torch.as_tensor(target), torch.as_tensor(index))
    assert taken == [expected] * 4


LAYOUTS = ("block", "hflip", "vflip", "crop", "shuffle", "repeat")


@st.composite
def _layout_updates(draw):
    """Steps of 2 samples of 3 x 4 pixels from 4 sections, each step in a drawn layout, with
    ignored targets and padding: every route of the native and the torch path."""
    sections, height, width = 4, 3, 4
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        layout = draw(st.sampled_from(LAYOUTS))
        chosen = draw(st.permutations(range(sections)))[:2]
        ramp = np.arange(height * width).reshape(height, width)
        index = np.stack([s * height * width + ramp for s in chosen])
        if layout == "hflip":
            index = index[..., ::-1]
        elif layout == "vflip":
            index = index[:, ::-1]
        elif layout == "crop":
            index = index[:, 1:, 1:3]
        elif layout == "shuffle":
            order = draw(st.permutations(range(index.size)))
            index = index.reshape(-1)[list(order)].reshape(index.shape)
        elif layout == "repeat":
            index = np.stack([index[0], index[0]])
        index = np.ascontiguousarray(index)
        shape = index.shape
        flat = draw(st.lists(st.integers(0, 2), min_size=index.size, max_size=index.size))
        target = np.array(flat).reshape(shape)
        flat = draw(st.lists(st.integers(0, 2), min_size=index.size, max_size=index.size))
        pred = np.array(flat).reshape(shape)
        masks = draw(
            st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=index.size, max_size=index.size)
        )
        masks = np.array(masks).reshape(shape)
        target = np.where(masks == 1, 255, target)
        index = np.where(masks == 2, -1, index)
        steps.append((pred, target, index))
    return steps


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
@settings(max_examples=120, deadline=None)
@given(_layout_updates(), st.sampled_from([torch.int64, torch.uint8]))
def test_native_equals_torch_on_any_layout(steps, dtype):
    trackers = [ForgettingTracker(48, 3, native=native) for native in (True, False)]
    for pred, target, index in steps:
        for tracker in trackers:
            tracker.update(
                torch.as_tensor(pred).to(dtype),
                torch.as_tensor(target).to(dtype),
                torch.as_tensor(index),
            )
    ours, theirs = (t.state_dict() for t in trackers)
    for name, value in theirs.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(ours[name], value), name
    expected = ref.statistics(ref.sequences(steps, 48))
    stats = trackers[0].compute()
    for name in ref.INT_FIELDS:
        np.testing.assert_array_equal(getattr(stats, name), expected[name], err_msg=name)


def _wide_updates(rng, layout: str, width: int, steps: int = 4):
    """Samples of 3 rows x ``width`` pixels (wider than, or several rows adding up to more
    than, the kernel's chunk of 1024 pixels) from 5 sections, in a layout of a given route."""
    sections, height, classes = 5, 3, 4
    block = height * width
    ramp = np.arange(block).reshape(height, width)
    out = []
    for _ in range(steps):
        chosen = rng.choice(sections, size=2, replace=False)
        index = chosen.reshape(2, 1, 1) * block + ramp
        target = rng.integers(0, classes, size=index.shape)
        target[rng.random(target.shape) < 0.1] = 255
        pred = np.where(rng.random(target.shape) < 0.6, np.minimum(target, classes - 1), 1)
        if layout == "vflip":  # runs that follow each other in the state: staged together
            index = index[:, ::-1]
        elif layout == "hflip-vflip":  # mirrored runs, also adjacent
            index = index[:, ::-1, ::-1]
        elif layout == "crop":  # runs with gaps between them
            index = index[:, :, 1 : width - 2]
            pred, target = pred[..., 1 : width - 2], target[..., 1 : width - 2]
        elif layout == "shear":  # rows shifted by one pixel per row: windows, duplicates
            index = index + np.arange(height).reshape(1, height, 1)
            index = np.minimum(index, chosen.reshape(2, 1, 1) * block + block - 1)
        out.append(tuple(np.ascontiguousarray(a) for a in (pred, target, index)))
    return out, sections * block, classes


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
@pytest.mark.parametrize("width", [700, 1500])
@pytest.mark.parametrize("layout", ["vflip", "hflip-vflip", "crop", "shear"])
def test_native_equals_reference_on_wide_sections(layout, width):
    """Runs longer than one chunk, and chunks that end inside a run, give the same state as
    the torch path and the reference."""
    rng = np.random.default_rng(width + len(layout))
    steps, num_pixels, classes = _wide_updates(rng, layout, width)
    trackers = [ForgettingTracker(num_pixels, classes, native=n) for n in (True, False)]
    for pred, target, index in steps:
        for tracker in trackers:
            tracker.update(*(torch.as_tensor(a) for a in (pred, target, index)))
    ours, theirs = (t.state_dict() for t in trackers)
    for name, value in theirs.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(ours[name], value), name
    expected = ref.statistics(ref.sequences(steps, num_pixels))
    stats = trackers[0].compute()
    for name in ref.INT_FIELDS:
        np.testing.assert_array_equal(getattr(stats, name), expected[name], err_msg=name)
    assert expected["forgetting_events"].sum() > 0


@pytest.mark.skipif(not HAS_COMPILER, reason="covered by test_fallback_without_compiler")
def test_block_check_of_the_kernel_matches_numpy():
    """The fused kernel's block check finds the same offsets as the numpy check, also for
    indices that pass the three-pixel probe and differ further in (swapped pixels)."""
    from segforget.dynamics._kernel import Workspace
    from segforget.dynamics._tracker import _block_offsets

    height, width, block = 3, 5, 15
    ramp = np.arange(block).reshape(height, width)
    cases = {}
    for flipped in (False, True):
        base = ramp[:, ::-1] if flipped else ramp
        whole = np.stack([2 * block + base, 0 * block + base])
        cases[("whole", flipped)] = whole
        swapped = whole.copy()
        swapped[1, 1, [1, 2]] = swapped[1, 1, [2, 1]]  # inside, not a probed pixel
        cases[("swapped", flipped)] = swapped
        last = whole.copy()
        last[0, 2, [1, 2]] = last[0, 2, [2, 1]]  # in the last row, not a probed pixel
        cases[("last row", flipped)] = last
        cases[("overlap", flipped)] = np.stack([base + 3, base + 10])
        cases[("negative", flipped)] = np.stack([base - 1, base + block])
        cases[("flat", flipped)] = whole.reshape(2, 1, block)
    found = {}
    for (name, flipped), index in cases.items():
        index = torch.as_tensor(np.ascontiguousarray(index))
        results = [
            _block_offsets(
                index, 4 * block, Workspace(torch.device("cpu")), flipped=flipped, native=native
            )
            for native in (True, False)
        ]
        assert results[0] == results[1], (name, flipped)
        found[(name, flipped)] = results[0]
    for flipped in (False, True):
        assert found[("whole", flipped)] == [2 * block, 0]
        for name in ("swapped", "last row", "overlap", "negative"):
            assert found[(name, flipped)] is None, (name, flipped)
    assert found[("flat", False)] == [2 * block, 0]
