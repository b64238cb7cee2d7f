"""ForgettingTracker against the independent reference, path equivalence and invariances."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from dynamics import reference as ref
from segforget.dynamics import MAX_OBSERVATIONS, ForgettingStats, ForgettingTracker, _tracker

INT_FIELDS, FLOAT_FIELDS = ref.INT_FIELDS, ref.FLOAT_FIELDS


@pytest.fixture(params=["windows", "gather"])
def scatter_route(request, monkeypatch):
    """Run a test through both CPU routes of the scatter path: dense windows (the default for
    compact index ranges) and gather/scatter (the GPU route, and the CPU one for spread
    entries), by turning windows off."""
    if request.param == "gather":
        monkeypatch.setattr(_tracker, "_WINDOW_SLACK", 0)
    return request.param


def random_updates(
    rng: np.random.Generator,
    *,
    num_pixels: int,
    num_classes: int,
    steps: int,
    shape=(3, 4, 5),
    logits: bool,
    ignore_rate: float = 0.15,
    negative_rate: float = 0.1,
):
    """Random updates with duplicates (more slots than pixels), ignore and negative indices."""
    updates = []
    for _ in range(steps):
        target = rng.integers(0, num_classes, size=shape)
        target[rng.random(shape) < ignore_rate] = ref.IGNORE
        pixel_index = rng.integers(0, num_pixels, size=shape)
        pixel_index[rng.random(shape) < negative_rate] = -rng.integers(1, 5)
        # Pixels 0..2 are always predicted wrong, so some pixels are never learned.
        hard = (pixel_index >= 0) & (pixel_index < 3)
        wrong = (np.clip(target, 0, num_classes - 1) + 1) % num_classes
        if logits:
            prediction = rng.normal(size=(shape[0], num_classes, *shape[1:])).astype(np.float32)
            # Bias toward the target so pixels get learned and forgotten, not only wrong.
            favoured = np.where(hard, wrong, np.clip(target, 0, num_classes - 1))
            onehot = np.eye(num_classes, dtype=np.float32)[favoured]
            prediction += np.where(hard, 10.0, 1.5)[:, None] * np.moveaxis(onehot, -1, 1)
        else:
            prediction = np.where(
                rng.random(shape) < 0.6,
                np.clip(target, 0, num_classes - 1),
                rng.integers(0, num_classes, size=shape),
            )
            prediction = np.where(hard, wrong, prediction)
        updates.append((prediction, target, pixel_index))
    return updates


def run_tracker(updates, num_pixels, num_classes, **options) -> ForgettingStats:
    tracker = ForgettingTracker(num_pixels, num_classes, **options)
    for prediction, target, pixel_index in updates:
        tracker.update(torch.as_tensor(prediction), torch.as_tensor(target), pixel_index)
    return tracker.compute()


def assert_matches_reference(stats: ForgettingStats, expected: dict, *, confidence: bool):
    for name in INT_FIELDS:
        np.testing.assert_array_equal(getattr(stats, name), expected[name], err_msg=name)
    if confidence:
        for name in FLOAT_FIELDS:
            np.testing.assert_allclose(
                getattr(stats, name), expected[name], rtol=1e-4, atol=1e-5, err_msg=name
            )
    else:
        assert stats.confidence is None and stats.variability is None and stats.aum is None


def assert_stats_identical(a: ForgettingStats, b: ForgettingStats):
    for name in (*INT_FIELDS, *FLOAT_FIELDS, "history"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("logits", "confidence", "history"),
    [(False, False, False), (True, False, True), (True, True, True), (False, False, True)],
)
def test_matches_reference(seed, logits, confidence, history, scatter_route):
    rng = np.random.default_rng(seed)
    num_pixels, num_classes = 40, 3
    updates = random_updates(
        rng, num_pixels=num_pixels, num_classes=num_classes, steps=25, logits=logits
    )
    stats = run_tracker(updates, num_pixels, num_classes, confidence=confidence, history=history)
    seqs = ref.sequences(updates, num_pixels)
    expected = ref.statistics(seqs)
    assert_matches_reference(stats, expected, confidence=confidence)
    # The random data must exercise every rule, or the comparison proves little.
    assert expected["forgetting_events"].sum() > 0 and expected["switch_events"].sum() > 0
    assert expected["never_learned"].any() and (expected["observations"] < 25).any()
    if history:
        length = int(expected["observations"].max())
        np.testing.assert_array_equal(
            stats.correctness_history(np.arange(num_pixels)), ref.history(seqs, length)
        )
    else:
        with pytest.raises(ValueError, match="Expected statistics recorded with history"):
            stats.correctness_history([0])


def test_duplicates_reduce_as_documented(scatter_route):
    """One call, pixel 0 seen twice: correct only if both are; class = max; prob = min."""
    tracker = ForgettingTracker(2, 3, confidence=True)
    logits = torch.tensor([[[[2.0]], [[0.0]], [[0.0]]], [[[1.0]], [[0.0]], [[0.5]]]])  # (2,3,1,1)
    target = torch.tensor([[[0]], [[0]]])
    index = torch.tensor([[[0]], [[0]]])
    tracker.update(logits, target, index)
    stats = tracker.compute()
    assert stats.observations.tolist() == [1, 0]
    assert stats.correct.tolist() == [1, 0]
    probs = torch.softmax(logits[:, :, 0, 0], dim=1)[:, 0]
    assert stats.confidence[0] == pytest.approx(float(probs.min()), rel=1e-6)
    assert stats.aum[0] == pytest.approx(0.5, rel=1e-6)
    assert np.isnan(stats.confidence[1])
    # A wrong duplicate makes the observation wrong; the larger predicted class is kept.
    logits = torch.tensor([[[[3.0]], [[0.0]], [[0.0]]], [[[0.0]], [[0.0]], [[1.0]]]])
    tracker.update(logits, target, index)
    stats = tracker.compute()
    assert stats.observations[0] == 2 and stats.correct[0] == 1
    assert stats.forgetting_events[0] == 1 and stats.switch_events[0] == 1
    assert stats.last_prediction[0] == 2


def test_hand_built_sequence():
    """a = 0 1 1 0 1 0 0, p = 1 0 0 2 0 1 1 for one pixel, classes input (target 0)."""
    tracker = ForgettingTracker(3, 3)
    predictions = [1, 0, 0, 2, 0, 1, 1]
    for p in predictions:
        tracker.update(
            torch.tensor([[[p, 255]]]), torch.tensor([[[0, 255]]]), torch.tensor([[[1, 2]]])
        )
    stats = tracker.compute()
    assert stats.observations.tolist() == [0, 7, 0]
    assert stats.correct[1] == 3
    assert stats.forgetting_events[1] == 2
    assert stats.learning_events[1] == 2
    assert stats.switch_events[1] == 4
    assert stats.first_learned.tolist() == [-1, 1, -1]
    assert stats.forgetting_score[1] == 2
    assert stats.unforgettable.tolist() == [False, False, False]
    assert stats.never_learned.tolist() == [False, False, False]
    assert stats.last_prediction.tolist() == [-1, 1, -1]


def test_never_learned_scores_observations():
    tracker = ForgettingTracker(2, 2)
    for _ in range(5):
        tracker.update(torch.tensor([[[1, 0]]]), torch.tensor([[[0, 0]]]), torch.tensor([[[0, 1]]]))
    stats = tracker.compute()
    assert stats.never_learned.tolist() == [True, False]
    assert stats.forgetting_score.tolist() == [5, 0]
    assert stats.unforgettable.tolist() == [False, True]


def _epochs(rng, num_pixels, num_classes, epochs, logits):
    """Per epoch, one observation of every pixel, as flat arrays (N,) in a random order."""
    out = []
    for _ in range(epochs):
        order = rng.permutation(num_pixels)
        target = rng.integers(0, num_classes, size=num_pixels)
        target[rng.random(num_pixels) < 0.1] = ref.IGNORE
        if logits:
            pred = rng.normal(size=(num_classes, num_pixels)).astype(np.float32)
        else:
            pred = rng.integers(0, num_classes, size=num_pixels)
        out.append((pred, target, order))
    return out


@pytest.mark.parametrize("logits", [False, True])
def test_invariant_to_how_observations_are_split(logits):
    rng = np.random.default_rng(5)
    num_pixels, num_classes = 60, 3
    epochs = _epochs(rng, num_pixels, num_classes, 8, logits)
    results = []
    for batch in (1, 7, 60):
        tracker = ForgettingTracker(num_pixels, num_classes, confidence=logits, history=True)
        for pred, target, order in epochs:
            for start in range(0, num_pixels, batch):
                part = order[start : start + batch]
                p = pred[:, part][None, :, None, :] if logits else pred[part][None, None]
                tracker.update(
                    torch.as_tensor(p),
                    torch.as_tensor(target[part])[None, None],
                    torch.as_tensor(part)[None, None],
                )
        results.append(tracker.compute())
    for other in results[1:]:
        assert_stats_identical(results[0], other)


@pytest.mark.parametrize(("confidence", "ignore_rate"), [(False, 0.1), (True, 0.1), (False, 0.0)])
def test_block_path_equals_scatter_path(confidence, ignore_rate, scatter_route):
    """update_blocks, update with contiguous pixel_index (detected) and the scatter path on
    the same observations in a shuffled layout give bit-identical statistics."""
    rng = np.random.default_rng(7)
    sections, height, width, num_classes = 6, 4, 5, 3
    block = height * width
    num_pixels = sections * block
    trackers = [
        ForgettingTracker(num_pixels, num_classes, confidence=confidence, history=True)
        for _ in range(4)
    ]
    for _step in range(12):
        chosen = rng.choice(sections, size=3, replace=False)
        logits = torch.as_tensor(
            rng.normal(size=(3, num_classes, height, width)), dtype=torch.float32
        )
        target = torch.as_tensor(rng.integers(0, num_classes, size=(3, height, width)))
        # Without ignored pixels the block path runs its all-observed kernel.
        target[torch.as_tensor(rng.random((3, height, width)) < ignore_rate)] = 255
        prediction = logits if confidence else logits.argmax(1)
        offsets = [int(s) * block for s in chosen]
        trackers[0].update_blocks(prediction, target, offsets)
        index = torch.as_tensor(offsets).view(3, 1, 1) + torch.arange(block).view(height, width)
        trackers[1].update(prediction, target, index)
        # Shuffling positions keeps the observations but makes the index non-contiguous.
        perm = torch.as_tensor(rng.permutation(3 * block))
        flat_pred = (
            logits.permute(1, 0, 2, 3).reshape(num_classes, -1)[:, perm][None, :, None]
            if confidence
            else prediction.reshape(-1)[perm].view(1, 1, -1)
        )
        # Horizontally flipped sections: detected as blocks as well.
        trackers[3].update(prediction.flip(-1), target.flip(-1), index.flip(-1))
        trackers[2].update(
            flat_pred,
            target.reshape(-1)[perm].view(1, 1, -1),
            index.reshape(-1)[perm].view(1, 1, -1),
        )
    stats = [t.compute() for t in trackers]
    assert stats[0].observations.sum() > 0
    for other in stats[1:]:
        assert_stats_identical(stats[0], other)


@pytest.mark.parametrize("extras", [False, True], ids=["core", "confidence+history"])
def test_launch_bound_routes_match_the_reference(extras, monkeypatch):
    """The GPU routes, run on CPU: a tracker marked launch bound (as every GPU tracker is)
    finds blocks in a host-side pixel_index without sending it to the device, applies several
    runs of blocks (plain or mirrored) with one gather/scatter over an index it builds, and a
    single run through state views; all equal the independent reference."""
    rng = np.random.default_rng(5)
    sections, height, width, classes = 8, 3, 4, 3
    block = height * width
    num_pixels = sections * block
    tracker = ForgettingTracker(
        num_pixels, classes, native=False, confidence=extras, history=extras
    )
    tracker._launch_bound = True
    calls = {"views": 0, "gather": 0}
    for name, key in (("_observe_views", "views"), ("_gather_scatter", "gather")):
        original = getattr(tracker, name)

        def spy(*args, _original=original, _key=key, **kwargs):
            calls[_key] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(tracker, name, spy)
    updates, expected_calls = [], []
    ramp = np.arange(block).reshape(height, width)
    for step in range(16):
        kind = step % 4
        if kind == 1:  # one run of consecutive blocks: the view path
            first = int(rng.integers(0, sections - 2))
            chosen = np.array([first, first + 1, first + 2])
        else:
            chosen = rng.choice(sections, size=3, replace=False)
            while (np.diff(chosen) == 1).any():  # no two blocks in one run
                chosen = rng.choice(sections, size=3, replace=False)
        logits = rng.normal(size=(3, classes, height, width)).astype(np.float32)
        logits[:, 0] += 1.0 * (step % 3 == 0)
        target = rng.integers(0, classes, size=(3, height, width))
        target[rng.random(target.shape) < 0.1] = 255
        index = chosen.reshape(3, 1, 1) * block + ramp
        if kind == 2:  # mirrored sections, found on the host
            logits, target, index = logits[..., ::-1], target[..., ::-1], index[..., ::-1]
        logits, target, index = (np.ascontiguousarray(a) for a in (logits, target, index))
        prediction = torch.from_numpy(logits) if extras else torch.from_numpy(logits.argmax(1))
        before = dict(calls)
        if kind in (0, 1):
            tracker.update_blocks(prediction, torch.from_numpy(target), chosen * block)
        else:
            tracker.update(prediction, torch.from_numpy(target), torch.from_numpy(index))
        expected_calls.append(
            (kind, calls["views"] - before["views"], calls["gather"] - before["gather"])
        )
        updates.append((logits if extras else logits.argmax(1), target, index))
    # Several runs: one gather/scatter; one run: the views.
    for kind, views, gathers in expected_calls:
        consecutive = kind == 1
        assert (views, gathers) == ((1, 0) if consecutive else (0, 1)), kind
    seqs = ref.sequences(updates, num_pixels)
    expected = ref.statistics(seqs)
    stats = tracker.compute()
    assert_matches_reference(stats, expected, confidence=extras)
    if extras:
        length = int(expected["observations"].max())
        np.testing.assert_array_equal(
            stats.correctness_history(np.arange(num_pixels)), ref.history(seqs, length)
        )
    assert expected["forgetting_events"].sum() > 0 and expected["switch_events"].sum() > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_summary_equals_shares_of_the_reference(seed, scatter_route):
    """summary() (reduced where the state lives) against shares computed with numpy from the
    independent reference's per-pixel statistics; unobserved pixels are left out."""
    rng = np.random.default_rng(seed)
    num_pixels, num_classes = 60, 3  # more pixels than the updates reach: some unobserved
    updates = random_updates(rng, num_pixels=40, num_classes=num_classes, steps=20, logits=False)
    tracker = ForgettingTracker(num_pixels, num_classes)
    assert tracker.summary() == {"observed_pixels": 0}
    for prediction, target, pixel_index in updates:
        tracker.update(torch.as_tensor(prediction), torch.as_tensor(target), pixel_index)
    expected = ref.statistics(ref.sequences(updates, num_pixels))
    observed = np.asarray(expected["observations"]) > 0
    assert 0 < observed.sum() < num_pixels
    forgetting = np.asarray(expected["forgetting_events"])[observed]
    assert tracker.summary() == {
        "observed_pixels": int(observed.sum()),
        "forgotten_fraction": float(np.mean(forgetting > 0)),
        "mean_forgetting_events": float(np.mean(forgetting)),
        "never_learned_fraction": float(np.mean(np.asarray(expected["never_learned"])[observed])),
        "correct_fraction": float(np.mean(np.asarray(expected["last_correct"])[observed])),
    }
    assert 0 < tracker.summary()["never_learned_fraction"] < 1


@pytest.mark.parametrize("extras", [False, True], ids=["core", "confidence+history"])
def test_compute_of_a_pixel_range_equals_that_range_of_compute(extras):
    rng = np.random.default_rng(4)
    updates = random_updates(rng, num_pixels=30, num_classes=3, steps=12, logits=True)
    tracker = ForgettingTracker(30, 3, confidence=extras, history=extras)
    for prediction, target, pixel_index in updates:
        tracker.update(torch.as_tensor(prediction), torch.as_tensor(target), pixel_index)
    whole = tracker.compute()
    for pixels in (slice(5, 17), slice(0, 30), slice(None, 4), slice(26, None), slice(9, 9)):
        part = tracker.compute(pixels=pixels)
        for name in (*INT_FIELDS, *(FLOAT_FIELDS if extras else ())):
            np.testing.assert_array_equal(
                getattr(part, name), getattr(whole, name)[pixels], err_msg=name
            )
        if extras and part.observations.size:
            picked = np.arange(30)[pixels]
            mine = part.correctness_history(np.arange(picked.size))
            full = whole.correctness_history(picked)  # padded with -1 to the longest sequence
            np.testing.assert_array_equal(mine, full[:, : mine.shape[1]])
            assert (full[:, mine.shape[1] :] == -1).all()
    for bad in (slice(0, 31), slice(-1, 5), slice(5, 2), slice(0, 10, 2), [1, 2]):
        with pytest.raises(ValueError, match="Expected `pixels`"):
            tracker.compute(pixels=bad)


def test_uint16_totals_are_exact_on_both_routes():
    """The event total of summary(): numpy on CPU, torch elsewhere; counts past 32,767 are
    negative int16 patterns and must still add as their uint16 values."""
    values = np.array([0, 1, 7, 32767, 32768, 40000, 65535] * 3, dtype=np.uint16)
    pattern = torch.from_numpy(values.view(np.int16).copy())
    expected = int(values.astype(np.int64).sum())
    assert _tracker._uint16_total(pattern) == expected
    assert _tracker._uint16_total_torch(pattern) == expected


def test_contiguous_and_flipped_sections_take_the_block_path(monkeypatch):
    def no_scatter(*args, **kwargs):
        raise AssertionError("scatter path used")

    tracker = ForgettingTracker(60, 3)
    monkeypatch.setattr(tracker, "_scatter", no_scatter)
    monkeypatch.setattr(tracker, "_scatter_native", no_scatter)
    target = torch.randint(0, 3, (2, 3, 5))
    index = torch.tensor([40, 0]).view(2, 1, 1) + torch.arange(15).view(3, 5)
    tracker.update(target, target, index)
    tracker.update(target.flip(-1), target.flip(-1), index.flip(-1))
    tracker.update_blocks(target, target, [15, 45])
    assert tracker.compute().observations.sum() == 2 * 30 + 30
    with pytest.raises(AssertionError, match="scatter path used"):
        tracker.update(target, target, index.transpose(-1, -2).reshape(index.shape))


def test_update_blocks_with_overlapping_blocks_reduces_duplicates(scatter_route):
    rng = np.random.default_rng(3)
    updates = []
    tracker = ForgettingTracker(12, 2)
    for _ in range(6):
        pred = rng.integers(0, 2, size=(2, 2, 4))
        target = rng.integers(0, 2, size=(2, 2, 4))
        offsets = [2, 4]  # blocks [2, 10) and [4, 12) overlap
        tracker.update_blocks(torch.as_tensor(pred), torch.as_tensor(target), offsets)
        index = np.array(offsets).reshape(2, 1, 1) + np.arange(8).reshape(2, 4)
        updates.append((pred, target, index))
    expected = ref.statistics(ref.sequences(updates, 12))
    assert_matches_reference(tracker.compute(), expected, confidence=False)


def test_state_dict_round_trip_and_resume(tmp_path, scatter_route):
    rng = np.random.default_rng(11)
    updates = random_updates(rng, num_pixels=30, num_classes=3, steps=20, logits=True)
    options = dict(confidence=True, history=True)
    whole = run_tracker(updates, 30, 3, **options)
    first = ForgettingTracker(30, 3, **options)
    for prediction, target, index in updates[:9]:
        first.update(torch.as_tensor(prediction), torch.as_tensor(target), index)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed = ForgettingTracker(30, 3, **options)
    resumed.load_state_dict(state)
    for prediction, target, index in updates[9:]:
        resumed.update(torch.as_tensor(prediction), torch.as_tensor(target), index)
    assert_stats_identical(whole, resumed.compute())


def test_load_state_dict_rejects_other_configuration():
    state = ForgettingTracker(10, 3).state_dict()
    with pytest.raises(ValueError, match="Expected `state` of a tracker with"):
        ForgettingTracker(11, 3).load_state_dict(state)
    with pytest.raises(ValueError, match="Expected `state` of tracker state version"):
        ForgettingTracker(10, 3).load_state_dict({**state, "version": 99})
    with pytest.raises(TypeError, match="Expected `state` to be a dict"):
        ForgettingTracker(10, 3).load_state_dict([1])
    broken = dict(state)
    del broken["correct"]
    with pytest.raises(ValueError, match="Expected `state` to hold tensor 'correct'"):
        ForgettingTracker(10, 3).load_state_dict(broken)
    broken = {**state, "correct": torch.zeros(10, dtype=torch.int32)}
    with pytest.raises(ValueError, match=r"Expected `state\['correct'\]` of shape"):
        ForgettingTracker(10, 3).load_state_dict(broken)


def _tracker_near_limit(count: int) -> ForgettingTracker:
    tracker = ForgettingTracker(3, 2)
    state = tracker.state_dict()
    # Pixel 0 has `count` observations, all correct (uint16 patterns in int16).
    pattern = torch.tensor([count], dtype=torch.int32).to(torch.int16)
    state["observations"][0] = pattern[0]
    state["correct"][0] = pattern[0]
    state["flags"][0] = 7  # last correct, observed, learned
    state["max_observations"] = count
    tracker.load_state_dict(state)
    return tracker


@pytest.mark.parametrize("path", ["blocks", "scatter"])
def test_counts_exact_to_limit_then_raise(path, scatter_route):
    tracker = _tracker_near_limit(MAX_OBSERVATIONS - 1)

    def observe(pixels):
        target = torch.zeros(1, 1, len(pixels), dtype=torch.int64)
        if path == "blocks":
            tracker.update_blocks(target, target, [pixels[0]])
        else:
            tracker.update(target, target, torch.tensor(pixels[::-1]).view(1, 1, -1))

    observe([0, 1])
    stats = tracker.compute()
    assert stats.observations.tolist() == [MAX_OBSERVATIONS, 1, 0]
    assert stats.correct.tolist() == [MAX_OBSERVATIONS, 1, 0]
    observe([1, 2])  # pixel 0 untouched: still fine
    with pytest.raises(ValueError, match="Expected at most 65535 observations per pixel"):
        observe([0, 1])
    # The failed update changed nothing.
    assert tracker.compute().observations.tolist() == [MAX_OBSERVATIONS, 2, 1]


def test_nbytes_is_compact():
    num_pixels = 1000
    core = ForgettingTracker(num_pixels, 6)
    assert core.nbytes == 12 * (num_pixels + 2)  # two trash slots
    conf = ForgettingTracker(num_pixels, 6, confidence=True)
    assert conf.nbytes == core.nbytes + 12 * (num_pixels + 2)
    hist = ForgettingTracker(num_pixels, 6, history=True)
    for _ in range(65):
        hist.update_blocks(
            torch.zeros(1, 1, num_pixels, dtype=torch.int64),
            torch.zeros(1, 1, num_pixels, dtype=torch.int64),
            [0],
        )
    # 65 observations need 9 byte planes; history grows by chunks of 64 observations.
    assert hist.nbytes == core.nbytes + 16 * (num_pixels + 2)


def test_reset_clears_everything():
    tracker = ForgettingTracker(4, 2, history=True)
    tracker.update(torch.tensor([[[1, 0]]]), torch.tensor([[[1, 1]]]), torch.tensor([[[0, 3]]]))
    tracker.reset()
    stats = tracker.compute()
    assert stats.observations.sum() == 0 and stats.history.shape == (0, 4)
    assert stats.last_prediction.tolist() == [-1] * 4


def test_index_beyond_pixel_space_raises():
    tracker = ForgettingTracker(4, 2)
    with pytest.raises(ValueError, match="Expected `pixel_index` values < num_pixels"):
        tracker.update(torch.tensor([[[1, 0]]]), torch.tensor([[[1, 1]]]), torch.tensor([[[0, 4]]]))
    with pytest.raises(ValueError, match="Expected every block"):
        tracker.update_blocks(torch.tensor([[[1, 0]]]), torch.tensor([[[1, 1]]]), [3])


def _ints(*shape: int) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.long)


def _floats(*shape: int) -> torch.Tensor:
    return torch.zeros(shape)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        (
            (_floats(2, 3), _ints(2, 3), _ints(2, 3)),
            ValueError,
            r"`target` to have shape \(B, H, W\)",
        ),
        ((_ints(1, 2, 3), _floats(1, 2, 3), _ints(1, 2, 3)), TypeError, "`target` to hold integer"),
        (
            (_floats(1, 4, 2, 3), _ints(1, 2, 3), _ints(1, 2, 3)),
            ValueError,
            "`prediction` to have 3 channels",
        ),
        (
            (_ints(1, 3, 2, 3), _ints(1, 2, 3), _ints(1, 2, 3)),
            TypeError,
            "`prediction` of shape .B, C, H, W. to hold float logits",
        ),
        (
            (_floats(1, 2, 3), _ints(1, 2, 3), _ints(1, 2, 3)),
            TypeError,
            "`prediction` of shape .B, H, W. to hold integer classes",
        ),
        ((_ints(2, 3), _ints(1, 2, 3), _ints(1, 2, 3)), ValueError, "`prediction` to have shape"),
        (
            (_ints(1, 2, 2), _ints(1, 2, 3), _ints(1, 2, 3)),
            ValueError,
            "`prediction` and `target` to share",
        ),
        (
            (_ints(1, 2, 3), _ints(1, 2, 3), _ints(1, 2, 2)),
            ValueError,
            "`pixel_index` to have the shape of `target`",
        ),
        ((_ints(1, 2, 3), _ints(1, 2, 3), _floats(1, 2, 3)), TypeError, "`pixel_index` to hold"),
        (([0], _ints(1, 2, 3), _ints(1, 2, 3)), TypeError, "`prediction` to be a torch.Tensor"),
    ],
)
def test_update_input_errors(inputs, error, match):
    with pytest.raises(error, match=f"Expected {match}"):
        ForgettingTracker(12, 3).update(*inputs)


def test_update_blocks_offsets_must_match_the_batch():
    with pytest.raises(ValueError, match="Expected `offsets` to hold 1 values"):
        ForgettingTracker(12, 3).update_blocks(_ints(1, 2, 3), _ints(1, 2, 3), [0, 6])


def test_confidence_requires_logits():
    tracker = ForgettingTracker(6, 3, confidence=True)
    with pytest.raises(ValueError, match="Expected `prediction` to be logits"):
        classes = torch.zeros(1, 2, 3, dtype=torch.long)
        tracker.update(classes, classes, classes)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, 3), ValueError, "Expected `num_pixels` to be >= 1"),
        ((2.5, 3), TypeError, "Expected `num_pixels` to be an int"),
        ((5, 300), ValueError, r"Expected `num_classes` to be in 1..256"),
        ((5, "3"), TypeError, "Expected `num_classes` to be an int"),
    ],
)
def test_constructor_errors(args, error, match):
    with pytest.raises(error, match=match):
        ForgettingTracker(*args)


def test_numpy_inputs_accepted():
    tracker = ForgettingTracker(4, 2)
    tracker.update(np.array([[[1, 0]]]), np.array([[[1, 1]]]), np.array([[[0, 3]]]))
    assert tracker.compute().correct.tolist() == [1, 0, 0, 0]


def test_repeated_contiguous_section_in_one_batch_reduces_duplicates(scatter_route):
    """Whole sections detected as blocks, but the same one twice: the scatter path reduces."""
    rng = np.random.default_rng(4)
    updates = []
    tracker = ForgettingTracker(12, 3)
    for _ in range(8):
        pred = rng.integers(0, 3, size=(3, 2, 3))
        target = rng.integers(0, 3, size=(3, 2, 3))
        index = np.array([6, 0, 6]).reshape(3, 1, 1) + np.arange(6).reshape(2, 3)
        tracker.update(torch.as_tensor(pred), torch.as_tensor(target), torch.as_tensor(index))
        updates.append((pred, target, index))
    expected = ref.statistics(ref.sequences(updates, 12))
    assert_matches_reference(tracker.compute(), expected, confidence=False)


@pytest.mark.parametrize("ignore_index", [-1, 0, 300])
def test_other_ignore_index(ignore_index, scatter_route):
    rng = np.random.default_rng(8)
    num_pixels, num_classes = 20, 3
    updates = []
    tracker = ForgettingTracker(num_pixels, num_classes, ignore_index=ignore_index)
    for _ in range(10):
        target = rng.integers(0, num_classes, size=(2, 2, 5))
        target[rng.random(target.shape) < 0.2] = ignore_index
        pred = rng.integers(0, num_classes, size=(2, 2, 5))
        index = rng.integers(-1, num_pixels, size=(2, 2, 5))
        tracker.update(torch.as_tensor(pred), torch.as_tensor(target), torch.as_tensor(index))
        updates.append((pred, target, index))
    expected = ref.statistics(ref.sequences(updates, num_pixels, ignore_index=ignore_index))
    assert_matches_reference(tracker.compute(), expected, confidence=False)


def _crop_updates(rng, *, steps: int, spread: bool):
    """Crops (with flips, padding -1, ignored targets, duplicates) of 10 sections of 10 x 10
    pixels: compact index ranges with gaps between them; ``spread`` adds a sample whose few
    entries span the whole pixel space."""
    updates = []
    for _ in range(steps):
        sections = rng.choice(10, size=3, replace=False)
        sections[2] = sections[1] if rng.random() < 0.5 else sections[2]  # duplicates
        index = np.empty((3, 4, 6), dtype=np.int64)
        for b, section in enumerate(sections):
            top, left = rng.integers(0, 7), rng.integers(0, 5)
            rows = (top + np.arange(4))[:, None] * 10 + left + np.arange(6)
            index[b] = section * 100 + (rows[:, ::-1] if rng.random() < 0.5 else rows)
        index[rng.random(index.shape) < 0.1] = -1
        if spread:
            index[2] = rng.integers(0, 1000, size=(4, 6))
        target = rng.integers(0, 3, size=index.shape)
        target[rng.random(index.shape) < 0.1] = ref.IGNORE
        pred = np.where(rng.random(index.shape) < 0.6, np.clip(target, 0, 2), 1)
        updates.append((pred, target, index))
    return updates


@pytest.mark.parametrize("spread", [False, True])
def test_scatter_path_routes_by_index_spread(spread, monkeypatch):
    """Compact index ranges take the dense windows, spread ones gather/scatter; both match the
    reference."""
    used = []
    tracker = ForgettingTracker(1000, 3, history=True)
    for route in ("_apply_windows", "_gather_scatter"):
        original = getattr(tracker, route)

        def spy(*args, _original=original, _route=route, **kwargs):
            used.append(_route)
            return _original(*args, **kwargs)

        monkeypatch.setattr(tracker, route, spy)
    updates = _crop_updates(np.random.default_rng(12), steps=15, spread=spread)
    for pred, target, index in updates:
        tracker.update(torch.as_tensor(pred), torch.as_tensor(target), torch.as_tensor(index))
    assert set(used) == {"_gather_scatter" if spread else "_apply_windows"}
    seqs = ref.sequences(updates, 1000)
    expected = ref.statistics(seqs)
    stats = tracker.compute()
    assert_matches_reference(stats, expected, confidence=False)
    assert expected["forgetting_events"].sum() > 0
    np.testing.assert_array_equal(
        stats.correctness_history(np.arange(1000)),
        ref.history(seqs, int(expected["observations"].max())),
    )


@pytest.mark.parametrize("flip", [None, -1, -2])
def test_uint8_inputs_are_read_not_written(flip, scatter_route):
    """One-byte classes and targets are used in place (no copy): same statistics as int64
    inputs, and the caller's tensors are left unchanged."""
    rng = np.random.default_rng(13)
    trackers = [ForgettingTracker(6 * 12, 3, history=True) for _ in range(2)]
    for _ in range(6):
        pred = torch.as_tensor(rng.integers(0, 3, size=(3, 3, 4)))
        target = torch.as_tensor(rng.integers(0, 3, size=(3, 3, 4)))
        target[0, 0, 0] = 255
        index = torch.as_tensor(rng.choice(6, 3, replace=False)).view(3, 1, 1) * 12
        index = index + torch.arange(12).view(3, 4)
        if flip is not None:
            pred, target, index = pred.flip(flip), target.flip(flip), index.flip(flip)
        small = [pred.to(torch.uint8), target.to(torch.uint8)]
        copies = [t.clone() for t in small]
        trackers[0].update(pred, target, index)
        trackers[1].update(*small, index)
        for t, copy in zip(small, copies):
            assert torch.equal(t, copy)
    assert_stats_identical(trackers[0].compute(), trackers[1].compute())
