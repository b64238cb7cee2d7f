"""Bodies thicker than any in training: body_thickness against loops, the accumulator against
a direct count, and when the finding is stated."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import loop_body_thickness as _loop_thickness
from segforget.analysis import ThicknessAccumulator, body_thickness, thickness_findings


def test_body_thickness_hand_case_and_loops():
    trace = np.array([2, 2, 0, 2, 2, 2, 1, 2])[None, :, None]
    thickness, below = body_thickness(trace)
    assert thickness[0, :, 0].tolist() == [2, 2, 1, 3, 3, 3, 1, 1]
    assert below[0, :, 0].tolist() == [0, 1, 0, 0, 1, 2, 0, 0]
    labels = np.random.default_rng(1).integers(0, 3, size=(4, 19, 7))
    labels[1] = 255  # a whole section ignored: one body per trace
    got, want = body_thickness(labels), _loop_thickness(labels)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        body_thickness(labels[0])


def test_accumulator_matches_a_direct_count():
    rng = np.random.default_rng(2)
    names = ["a", "b", "c"]
    train = [np.where(rng.random((3, 12, 5)) < 0.7, 0, rng.integers(0, 3, (3, 12, 5)))]
    train.append(np.full((2, 12, 5), 1))  # class b: bodies of 12 rows
    test_labels = rng.integers(0, 3, size=(2, 16, 6))
    test_labels[0, :, 0] = 0  # a body of 16 rows of class a: thicker than training's
    test_labels[1, 3, 2] = 255
    prediction = np.where(rng.random(test_labels.shape) < 0.8, test_labels, 2) % 3
    acc = ThicknessAccumulator(names)
    for chunk in train:
        acc.update_train(chunk)
    acc.update_test(prediction[:1], test_labels[:1])
    acc.update_test(prediction[1:], test_labels[1:])
    got = acc.result()
    # direct: the thickest training body per class, then each test pixel's side
    limits = np.zeros(3, np.int64)
    for chunk in train:
        thick, _ = _loop_thickness(chunk)
        for k in range(3):
            if (chunk == k).any():
                limits[k] = max(limits[k], thick[chunk == k].max())
    thick, _ = _loop_thickness(test_labels)
    for k, name in enumerate(names):
        assert got[name]["train_max_thickness"] == limits[k]
        sel = test_labels == k
        beyond = sel & (thick > limits[k])
        within = sel & ~beyond
        for key, mask in (("within", within), ("beyond", beyond)):
            assert got[name][key]["pixels"] == mask.sum()
            if mask.any():
                want = (prediction[mask] == k).mean()
                assert got[name][key]["accuracy"] == pytest.approx(want)
            else:
                assert got[name][key]["accuracy"] is None
        assert got[name]["beyond_share"] == pytest.approx(beyond.sum() / sel.sum())
        wrong = np.bincount(prediction[beyond], minlength=3)
        wrong[k] = 0
        for other, share in got[name]["beyond_predicted_as"].items():
            assert share == pytest.approx(wrong[names.index(other)] / beyond.sum())
    assert got["a"]["beyond"]["pixels"] >= 16  # the tall body
    with pytest.raises(RuntimeError, match="update_train before"):
        acc.update_train(train[0])
    with pytest.raises(ValueError, match="labels' shape"):
        acc.update_test(prediction[:, :4], test_labels)


def _row(share, within, beyond, limit=10):
    total = 1000
    return {
        "train_max_thickness": limit,
        "within": {"pixels": int(total * (1 - share)), "accuracy": within},
        "beyond": {"pixels": int(total * share), "accuracy": beyond},
        "beyond_share": share,
        "beyond_predicted_as": {"scruff": 0.8},
    }


def test_findings_name_the_classes_missed_in_thicker_bodies():
    notes = thickness_findings({"zechstein": _row(0.27, 0.78, 0.21), "chalk": _row(0.5, 0.9, 0.85)})
    assert len(notes) == 1
    assert notes[0].startswith("On the test volumes, 27% of the zechstein pixels lie in bodies")
    assert "at most 10 rows" in notes[0] and "21% of them right against 78%" in notes[0]
    assert "scruff 80%" in notes[0]
    assert "Training sections with zechstein bodies that thick would show it" in notes[0]
    assert thickness_findings({"z": _row(0.04, 0.9, 0.1)}) == []  # too few pixels beyond
    assert thickness_findings({"z": _row(0.3, 0.9, 0.1, limit=0)}) == []  # not in training
    assert thickness_findings(None) == []


def test_feeding_in_chunks_equals_one_chunk():
    """The training maximum and the test counts do not depend on the chunk size (chunks of
    one section against one chunk of the whole volume), and a view without predictions is
    skipped."""
    from segforget.analysis.thickness import feed_test_predictions, feed_training_labels
    from segforget.data import load_data

    data = load_data("synthetic:small:0")
    rng = np.random.default_rng(0)
    saved = {}
    for split in data.test_splits:
        labels = data.label_sections(split, "inline")
        noise = rng.integers(0, 6, labels.shape)
        saved[split] = np.where(rng.random(labels.shape) < 0.2, noise, labels).astype(np.uint8)

    def predictions(split, view):
        return saved[split] if view == "inline" else None

    results = []
    for chunk in (1, 10**9):
        acc = ThicknessAccumulator(data.class_names)
        feed_training_labels(acc, data, chunk_pixels=chunk)
        assert feed_test_predictions(acc, data, predictions, chunk_pixels=chunk)
        results.append(acc.result())
    assert results[0] == results[1]
    whole = ThicknessAccumulator(data.class_names)
    whole.update_train(data.label_sections("train+val", "crossline"))
    for split in data.test_splits:
        whole.update_test(saved[split], data.label_sections(split, "inline"))
    assert results[0] == whole.result()
    assert not feed_test_predictions(whole, data, lambda split, view: None)


def _loop_contacts(labels):
    """Per trace, in plain loops: every body (class, start row, length) under another body,
    as (class above, class below, thickness above, start row, length)."""
    out = []
    n, h, w = labels.shape
    for s in range(n):
        for x in range(w):
            runs, start = [], 0
            for y in range(1, h + 1):
                if y == h or labels[s, y, x] != labels[s, start, x]:
                    runs.append((int(labels[s, start, x]), start, y - start))
                    start = y
            for (a, _, la), (b, sb, lb) in zip(runs, runs[1:]):
                out.append((s, x, a, b, la, sb, lb))
    return out


def _layered(rng, n, h, w, classes=4, ignore=0.1):
    """Sections of random bodies down every trace (random classes and lengths, some ignored)."""
    labels = np.zeros((n, h, w), np.int64)
    for s in range(n):
        for x in range(w):
            y = 0
            while y < h:
                length = int(rng.integers(1, 9))
                value = 255 if rng.random() < ignore else int(rng.integers(0, classes))
                labels[s, y : y + length, x] = value
                y += length
    return labels


def test_under_thin_matches_a_loop_over_the_traces():
    """Random layered sections: each class's top-3-row accuracy under thin / usual bodies of
    the class above it, the threshold (training's 10th percentile) and medians, against plain
    loops over the traces."""
    from segforget.analysis.thickness import THIN_QUANTILE, TOP_ROWS

    rng = np.random.default_rng(5)
    names = ["a", "b", "c", "d"]
    train = _layered(rng, 3, 30, 9)
    test = _layered(rng, 2, 30, 11)
    prediction = np.where(rng.random(test.shape) < 0.6, test, rng.integers(0, 4, test.shape)) % 4
    acc = ThicknessAccumulator(names)
    acc.update_train(train[:2])
    acc.update_train(train[2:])
    acc.update_test(prediction, test)
    got = acc.result()
    valid = set(range(4))
    train_contacts = [c for c in _loop_contacts(train) if {c[2], c[3]} <= valid]
    test_contacts = [c for c in _loop_contacts(test) if {c[2], c[3]} <= valid]
    checked = 0
    for k, name in enumerate(names):
        row = got[name]["under_thin"]
        pixels = {a: 0 for a in range(4)}
        for _s, _x, a, b, _la, _sb, lb in test_contacts:
            if b == k and any(t[2] == a and t[3] == k for t in train_contacts):
                pixels[a] += min(lb, TOP_ROWS)
        if max(pixels.values()) == 0:
            assert row is None
            continue
        a = max(pixels, key=lambda j: (pixels[j], -j))
        assert row["above"] == names[a]
        thick_train = sorted(t[4] for t in train_contacts if t[2] == a and t[3] == k)
        # the smallest thickness t with at least a tenth of the contacts no thicker than t
        want_t = next(
            t
            for t in range(100)
            if sum(v <= t for v in thick_train) >= THIN_QUANTILE * len(thick_train)
        )
        assert row["thin_below"] == want_t
        assert row["train_median"] == next(
            t for t in range(100) if sum(v <= t for v in thick_train) >= len(thick_train) / 2
        )
        for key, thin in (("thin", True), ("usual", False)):
            n = right = called = 0
            for s, x, aa, b, la, sb, lb in test_contacts:
                if aa != a or b != k or (la < want_t) != thin:
                    continue
                for y in range(sb, sb + min(lb, TOP_ROWS)):
                    n += 1
                    right += prediction[s, y, x] == k
                    called += prediction[s, y, x] == a
            assert row[key]["pixels"] == n
            if n:
                assert row[key]["accuracy"] == pytest.approx(right / n)
                assert row[key]["as_above"] == pytest.approx(called / n)
                checked += 1
        assert row["thin_share"] == pytest.approx(row["thin"]["pixels"] / pixels[a])
    assert checked >= 5


def test_under_thin_hand_case():
    """Class 0 over class 1 on every trace: training thicknesses 2..11 (threshold: 2, the
    10th percentile; median 6); test: 1 row of class 0 on two traces (thin), 6 rows on two;
    the model calls the top 3 rows of class 1 class 0 under the thin ones, 1 of them under
    one thick one."""
    train = np.ones((1, 20, 10), np.int64)
    for x, t in enumerate(range(2, 12)):
        train[0, :t, x] = 0
    test = np.ones((1, 20, 4), np.int64)
    test[0, :1, :2] = 0
    test[0, :6, 2:] = 0
    prediction = test.copy()
    prediction[0, 1:4, :2] = 0
    prediction[0, 6, 2] = 0
    acc = ThicknessAccumulator(["top", "under"])
    acc.update_train(train)
    acc.update_test(prediction, test)
    row = acc.result()["under"]["under_thin"]
    assert row["above"] == "top" and row["thin_below"] == 2 and row["train_median"] == 6
    assert row["test_median"] == 1  # two contacts of 1 row, two of 6: the lower middle
    assert row["thin"] == {"pixels": 6, "accuracy": 0.0, "as_above": 1.0}
    assert row["usual"]["pixels"] == 6 and row["usual"]["accuracy"] == pytest.approx(5 / 6)
    assert row["thin_share"] == 0.5
    assert acc.result()["top"]["under_thin"] is None  # nothing lies over class 0
    notes = thickness_findings(acc.result())
    assert len(notes) == 1 and notes[0].startswith(
        "On the test volumes, 50% of the top 3 rows of under lie under top thinner than 2 rows"
    )
    assert "0% of them right against 83% under thicker top, calling 100% of them top" in notes[0]
