"""Every benchmark script starts: its imports resolve and its command line parses (`--help`).

The benchmarks themselves are too slow for the test suite (they run with `make bench`); this
keeps a renamed function or option from breaking one unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


def test_benchmark_scripts_are_found():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_benchmark_script_parses_its_command_line(script):
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_tracker_benchmark_runs_every_case_on_a_tiny_space():
    """A small end-to-end run: every tracker case and every naive row is timed and printed."""
    script = SCRIPTS[0].parent / "bench_tracker.py"
    args = ["--sections", "6", "--height", "12", "--width", "20", "--batch", "2", "--batches", "3"]
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for row in (
        "fast path (update_blocks)",
        "scatter path (rotated 5 deg)",
        "naive, sections in order",
        "naive, rotated (-1 dropped)",
    ):
        assert row in done.stdout, row


def test_naive_reference_drops_entries_without_a_source_pixel():
    """The rotated naive row must not count index -1 (numpy would update the last pixel)."""
    sys.path.insert(0, str(SCRIPTS[0].parent))
    import numpy as np
    from bench_tracker import NaiveTracker

    naive = NaiveTracker(4)
    index = np.array([0, -1, 2])  # numpy alone would read -1 as pixel 3
    for pred in (np.array([1, 1, 1]), np.array([2, 2, 2])):
        naive.update(pred, np.array([1, 1, 1]), index, drop_negative=True)
    # pixels 0 and 2: right, then wrong (one forgetting event, one switch); 1, 3: untouched
    assert naive.forgetting.tolist() == [1, 0, 1, 0]
    assert naive.switches.tolist() == [1, 0, 1, 0]
    assert naive.prev_pred.tolist() == [2, -1, 2, -1]


def test_scatter_floor_benchmark_runs_on_a_tiny_batch():
    import shutil

    script = SCRIPTS[0].parent / "bench_scatter_floor.py"
    args = ["--batch", "2", "--height", "12", "--width", "20", "--sections", "6", "--rounds", "1"]
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: covered by the skip test below")
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for row in ("C: read index, class, target only", "ForgettingTracker.update"):
        assert row in done.stdout, row


def test_scatter_floor_benchmark_skips_without_a_compiler(tmp_path):
    import os

    script = SCRIPTS[0].parent / "bench_scatter_floor.py"
    env = {**os.environ, "PATH": str(tmp_path)}  # no cc, gcc or clang on the path
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("skipped: no C compiler")


def test_al_compare_pairs_runs_by_seed(tmp_path):
    """Two al-sim configurations written as JSON (seeds split over files) pair by seed."""
    import json

    def write(name, seeds, curves):
        result = {
            "config": {"seeds": seeds},
            "curves": {
                s: {"labeled": [2, 4], "miou": [[0.5, v] for v in values]}
                for s, values in curves.items()
            },
        }
        (tmp_path / name).write_text(json.dumps(result))

    write("a01.json", [0, 1], {"switch": [0.6, 0.7], "entropy": [0.5, 0.8]})
    write("a2.json", [2], {"switch": [0.9], "entropy": [0.6]})
    write("b.json", [2, 0, 1], {"switch": [0.5, 0.65, 0.9]})
    script = SCRIPTS[0].parent / "bench_al_compare.py"

    def compare(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    stdout = compare(
        "--run", "a=a01.json,a2.json", "--run", "b=b.json",
        "--pairs", "switch@a-entropy@a,switch@b-switch@a",
    )  # fmt: skip
    lines = {line.split("  ")[0].strip(): line for line in stdout.splitlines()}
    # switch - entropy within a: seeds 0, 1, 2 -> +0.1, -0.1, +0.3: mean 0.1, 2 of 3 won
    assert "+0.100 ± 0.200, 2/3" in lines["switch@a - entropy@a"]
    # its 95 % interval: 0.1 -+ t(0.975, 2 dof) 4.302653 * 0.2 / sqrt 3 = 0.1 -+ 0.4968
    assert "[-0.397, +0.597]" in lines["switch@a - entropy@a"]
    # switch of b (seeds 0, 1, 2 = 0.65, 0.9, 0.5) - switch of a (0.6, 0.7, 0.9):
    # +0.05, +0.2, -0.4: mean -0.05, sample std sqrt(0.195 / 2) = 0.312, 2 of 3 won
    assert "-0.050 ± 0.312, 2/3" in lines["switch@b - switch@a"]
    assert "0.733 ± 0.125" in lines["switch@a"]  # mean, population std of 0.6, 0.7, 0.9
    # one seed: no t-test, the table says so instead of failing
    stdout = compare("--run", "one=a2.json")
    assert "+0.300 ± 0.000, 1/1, p n/a, n/a" in stdout  # switch 0.9 - entropy 0.6
    # a strategy missing for some seeds is left out, and the output says so
    write("c2.json", [2], {"switch": [0.9]})
    stdout = compare("--run", "c=a01.json,c2.json")
    assert "c: left out entropy (not run for every seed [0, 1, 2])" in stdout
    assert "switch@c" in stdout and "entropy@c" not in stdout
    # random with several draws per seed: the spread within a seed and between seeds
    result = {
        "config": {"seeds": [0, 1]},
        "curves": {
            "random": {
                "labeled": [2, 4],
                "miou": [[0.5, 0.6], [0.4, 0.3]],
                "miou_draws": [[[0.5, 0.5], [0.5, 0.7]], [[0.4, 0.2], [0.4, 0.4]]],
            }
        },
    }
    (tmp_path / "r.json").write_text(json.dumps(result))
    stdout = compare("--run", "r=r.json")
    lines = {line[:36].strip(): line for line in stdout.splitlines()}
    assert "random@r: the mean of 2 draws per seed" in stdout
    # within: std of (0.5, 0.7) and of (0.2, 0.4) = 0.1414 each
    assert lines["one draw, within a seed"].split()[-1] == "0.141"
    # between seeds: draw 0 (0.5, 0.2) -> 0.212; means (0.6, 0.3) -> 0.212
    assert lines["between seeds, one draw"].split()[-1] == "0.212"
    assert lines["between seeds, mean of the draws"].split()[-1] == "0.212"


def test_forgetting_epochs_counts_events_by_epoch(tmp_path):
    """Hand case: pixel A is correct, wrong, correct, wrong (events at epochs 2 and 4), pixel B
    wrong, correct, correct, wrong (event at epoch 4); only A is frequently forgotten (>= 2)."""
    import torch

    from segforget.dynamics import ForgettingTracker

    sequences = {"A": [1, 0, 1, 0], "B": [0, 1, 1, 0]}
    tracker = ForgettingTracker(2, 2, history=True)
    index = torch.tensor([[[0, 1]]])
    for t in range(4):
        right = torch.tensor([[[sequences["A"][t], sequences["B"][t]]]])
        tracker.update(1 - right, torch.zeros_like(right), index)  # class 0 is the label
    store = tmp_path / "runs" / "m" / "seed0" / "dynamics" / "epoch" / "train_inline"
    tracker.compute(meta={"view": "inline", "section_shape": [1, 2]}).save(store)
    script = SCRIPTS[0].parent / "bench_forgetting_epochs.py"
    args = ["--runs", tmp_path / "runs", "--methods", "m"]
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2].split() == ["m", "all", "1", "0", "2"]  # epochs 2, 3, 4
    assert lines[3].split() == ["frequent", "(1)", "1", "0", "1"]


def test_forgetting_epochs_boundary_table_reads_the_runs_labels(tmp_path):
    """Two pixels of a synthetic survey forgotten twice each: one where the label changes to
    the next row (a boundary pixel), one whose 7 x 7 neighbourhood holds a single class (at
    least 3 px from any boundary): the table puts half of the frequent pixels in each bin."""
    import numpy as np
    import torch

    from segforget.data import load_data
    from segforget.dynamics import ForgettingTracker

    spec = "synthetic:small:0"
    labels = np.array(load_data(spec).label_sections("train+val", "inline"))  # (N, H, W)
    changes = np.argwhere(labels[:, :-1, :] != labels[:, 1:, :])
    on_boundary = tuple(changes[len(changes) // 2])
    far = next(
        (n, h, w)
        for n, h, w in np.argwhere(labels[:, 3:-3, 3:-3] >= 0) + [0, 3, 3]
        if np.unique(labels[n, h - 3 : h + 4, w - 3 : w + 4]).size == 1
    )
    flat = np.ravel_multi_index(np.array([on_boundary, far]).T, labels.shape)
    tracker = ForgettingTracker(labels.size, 6, history=True)
    target = torch.from_numpy(labels.reshape(1, -1, labels.shape[-1]))
    index = torch.arange(labels.size).reshape(target.shape)
    for t in range(4):  # right, wrong, right, wrong: two forgetting events
        prediction = target.clone().reshape(-1)
        if t % 2:
            prediction[flat] = (prediction[flat] + 1) % 6
        tracker.update(prediction.reshape(target.shape), target, index)
    meta = {"view": "inline", "section_shape": list(labels.shape[1:]), "data_spec": spec}
    store = tmp_path / "runs" / "m" / "seed0" / "dynamics" / "epoch" / "train_inline"
    tracker.compute(meta=meta).save(store)
    script = SCRIPTS[0].parent / "bench_forgetting_epochs.py"
    args = ["--runs", tmp_path / "runs", "--methods", "m", "--boundary"]
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    counts = next(line for line in lines if line.startswith("m ") and "frequent pixels" in line)
    assert counts.split()[-4:] == ["1", "0", "0", "1"]
    shares = next(line for line in lines if "share of frequent (2)" in line)
    assert shares.split()[-4:] == ["50.0%", "0.0%", "0.0%", "50.0%"]


def test_label_issue_benchmark_pairs_every_score_with_cleanlab_by_survey():
    """Hand case: per-survey APs of two scores against the reference; the differences, wins,
    paired t-test (scipy) and its 95 % interval (t quantile) are computed here independently."""
    import importlib.util

    import numpy as np
    from scipy import stats

    path = SCRIPTS[0].parent / "bench_label_issues.py"
    spec = importlib.util.spec_from_file_location("bench_label_issues", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    reference = "cleanlab (out-of-sample, 2-fold)"
    summary = [
        {"score": "ours: a", "ap_per_seed": [0.5, 0.4, 0.9, 0.3]},
        {"score": reference, "ap_per_seed": [0.4, 0.5, 0.6, 0.2]},
        {"score": "ours: b", "ap_per_seed": [0.4, 0.5, 0.6, 0.2]},
    ]
    paired = bench.paired_against(summary, reference)
    assert [row["score"] for row in paired] == ["ours: a", "ours: b"]
    diff = np.array([0.1, -0.1, 0.3, 0.1])
    a = paired[0]
    assert a["mean"] == pytest.approx(diff.mean())
    assert a["std"] == pytest.approx(diff.std(ddof=1))
    assert a["wins"] == 3
    expected = stats.ttest_rel([0.5, 0.4, 0.9, 0.3], [0.4, 0.5, 0.6, 0.2])
    assert a["p"] == pytest.approx(expected.pvalue)
    half = stats.t.ppf(0.975, 3) * diff.std(ddof=1) / 2
    assert a["ci95"] == pytest.approx([diff.mean() - half, diff.mean() + half])
    b = paired[1]  # identical to the reference: no difference, no win
    assert b["mean"] == 0 and b["wins"] == 0


def test_store_reads_benchmark_runs_on_a_tiny_store(tmp_path):
    """Both read patterns run on a small store and read the same values (the script asserts
    it) before the ratio is printed."""
    sys.path.insert(0, str(SCRIPTS[0].parent))
    from bench_store_reads import build

    store = build(tmp_path, sections=4, height=5, width=6)
    script = SCRIPTS[0].parent / "bench_store_reads.py"
    args = ["--store", str(store), "--section-pixels", "30", "--chunk-pixels", "60"]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "120 pixels, 2 chunks of 60 pixels" in done.stdout
    assert "ratio verify_while_reading / verify_then_read:" in done.stdout


def test_body_geometry_hand_case():
    """Runs split by another class, runs at the top and the bottom edge, single-pixel runs."""
    sys.path.insert(0, str(SCRIPTS[0].parent))
    import numpy as np
    from bench_unit_thickness import bands, body_geometry

    trace = np.array([2, 2, 0, 2, 2, 2, 1, 2])[None, :, None]
    thickness, below = body_geometry(trace, 2)
    assert thickness[0, :, 0].tolist() == [2, 2, 0, 3, 3, 3, 0, 1]
    assert below[0, :, 0].tolist() == [0, 1, 0, 0, 1, 2, 0, 0]
    assert bands(thickness, below, 2)[0, :, 0].tolist() == [0, 0, -1, 2, 2, 2, -1, 0]
    six = np.full((1, 6, 1), 2)  # one body of 6 against a training maximum of 4
    assert bands(*body_geometry(six, 2), 4)[0, :, 0].tolist() == [2, 2, 2, 3, 4, 4]


def test_unit_thickness_table_on_fake_runs(tmp_path):
    """Predictions equal to the labels except zechstein inside bodies thicker than any in
    training, called scruff: accuracy 1 on the thin bodies' rows, 0 (scruff 1.000) on the
    thick ones, and each row's pixel count from the loop reference."""
    import numpy as np
    import yaml

    from segforget.analysis import body_thickness  # tested against loops in tests/analysis
    from segforget.data import load_data

    def runs_of(labels, cls):
        thickness, below = body_thickness(labels)
        return np.where(labels == cls, thickness, 0), np.where(labels == cls, below, 0)

    spec = "synthetic:small:0"
    data = load_data(spec)
    names = list(data.class_names)
    zech, scruff = names.index("zechstein"), names.index("scruff")
    train = np.asarray(data.label_sections("train+val", "inline"))
    limit = int(runs_of(train, zech)[0].max())
    want = np.zeros(5, np.int64)
    fixed = 12  # a --limit other than the training maximum: the bands move with it
    want_fixed = np.zeros(5, np.int64)
    for seed in (0, 1):
        folder = tmp_path / "runs" / "m" / f"seed{seed}"
        (folder / "predictions").mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump({"data": {"spec": spec}}))
        for split in data.test_splits:
            labels = np.asarray(data.label_sections(split, "inline"))
            thickness, below = runs_of(labels, zech)
            thick = thickness > limit
            prediction = np.where(thick, scruff, labels).astype(np.uint8)
            np.save(folder / "predictions" / f"{split}_inline.npy", prediction)
            inside = thickness > 0
            top = below < 3
            for counts, cut in ((want, limit), (want_fixed, fixed)):
                over = thickness > cut
                for b, sel in enumerate(
                    (
                        ~over & top,
                        ~over & ~top,
                        over & top,
                        over & ~top & (below < cut),
                        over & (below >= cut),
                    )
                ):
                    counts[b] += (inside & sel).sum()
    script = SCRIPTS[0].parent / "bench_unit_thickness.py"
    args = ["--runs", tmp_path / "runs", "--methods", "m", "--cls", "zechstein"]
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| body")]
    assert len(rows) == 5 and f"training: {limit} rows" in done.stdout
    assert want[2:].sum() > 0 and want[:2].sum() > 0
    for b, row in enumerate(rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{want[b] / 2:.0f}"
        assert cells[2] == ("1.000" if b < 2 else "0.000")
        if b >= 2:
            assert cells[3] == "scruff 1.000"
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args), "--limit", str(fixed)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| body")]
    assert rows[0].startswith(f"| body <= {fixed}, top 3 rows")  # not "as in training"
    assert rows[4].startswith(f"| body > {fixed}, {fixed}+ rows below its top")
    assert want_fixed.sum() == want.sum() and not np.array_equal(want_fixed, want)
    for b, row in enumerate(rows):
        assert row.strip("|").split("|")[1].strip() == f"{want_fixed[b] / 2:.0f}"


def test_analysis_benchmark_builds_f3_shaped_test_volumes_and_predictions(tmp_path):
    """F3's test shapes from F3's train shape; the predictions are the labels of each view with
    about a tenth of the pixels one class off."""
    sys.path.insert(0, str(SCRIPTS[0].parent))
    import numpy as np
    from bench_analysis import build, test_shapes

    assert test_shapes((401, 701, 255)) == {"test1": (200, 701, 255), "test2": (601, 200, 255)}
    run, _ = build(tmp_path, (8, 14, 12), epochs=2)
    data = tmp_path / "data" / "test_once"
    for name, shape in test_shapes((8, 14, 12)).items():
        labels = np.load(data / f"{name}_labels.npy")
        assert labels.shape == shape
        inline = np.load(run / "predictions" / f"{name}_inline.npy")
        crossline = np.load(run / "predictions" / f"{name}_crossline.npy")
        np.testing.assert_array_equal(inline.transpose(0, 2, 1), crossline.transpose(2, 0, 1))
        wrong = inline.transpose(0, 2, 1) != labels
        assert 0.03 < wrong.mean() < 0.2
        np.testing.assert_array_equal(inline.transpose(0, 2, 1)[wrong], (labels[wrong] + 1) % 6)


def test_oracle_split_joins_test1_to_the_training_block(tmp_path):
    """A keeps the train volume, B is test1 followed by train along the inlines; both keep only
    test2 for testing; the script writes both folders readable as F3 data."""
    sys.path.insert(0, str(SCRIPTS[0].parent))
    import numpy as np
    from oracle_split import oracle_volumes

    from segforget.data import load_data

    def volume(inlines, value, crosslines=3):
        shape = (inlines, crosslines, 4)
        return np.full(shape, value, np.float32), np.full(shape, value, np.uint8)

    volumes = {"train": volume(5, 1), "test1": volume(2, 2), "test2": volume(7, 3, 2)}
    folders = oracle_volumes(volumes)
    assert sorted(folders["A"]) == sorted(folders["B"]) == ["test2", "train"]
    assert folders["A"]["train"] is volumes["train"]
    labels = folders["B"]["train"][1]
    assert labels.shape == (7, 3, 4) and labels[:, 0, 0].tolist() == [2, 2, 1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="share the train volume's crosslines"):
        oracle_volumes({**volumes, "test1": volume(2, 2, crosslines=4)})
    with pytest.raises(ValueError, match="missing \\['test1'\\]"):
        oracle_volumes({"train": volumes["train"], "test2": volumes["test2"]})
    script = SCRIPTS[0].parent / "oracle_split.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "oracle")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    source = load_data("synthetic:small:0")
    a, b = (load_data(f"f3:{tmp_path / 'oracle' / name}") for name in ("A", "B"))
    assert a.test_splits == b.test_splits == ("test2",)
    np.testing.assert_array_equal(a.volume("train")[1], source.volume("train")[1])
    joined = np.concatenate([source.volume("test1")[1], source.volume("train")[1]])
    np.testing.assert_array_equal(b.volume("train")[1], joined)
    np.testing.assert_array_equal(b.volume("test2")[0], source.volume("test2")[0])


def _made_bodies():
    sys.path.insert(0, str(SCRIPTS[0].parent))
    import bench_made_bodies

    return bench_made_bodies


def test_made_body_centre_and_interior_masks_hand_case():
    import numpy as np
    import torch

    bench = _made_bodies()
    labels = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]])
    # columns holding 1: 0..3, the middle one is 2; its run is rows 1-3, middle row 2
    assert bench.centre_of(labels, 1) == (2, 2)
    assert bench.centre_of(labels, 5) is None
    trace = np.array([1] * 12 + [0] * 3 + [1] * 10)[None, :, None]  # bodies of 12 and 10
    thin, shallow, deep = bench.interior_masks(trace, 1, 10).values()
    assert thin[0, :, 0].tolist() == [False] * 15 + [True] * 10
    assert shallow[0, :, 0].tolist() == [True] * 10 + [False] * 15
    assert deep[0, :, 0].tolist() == [False] * 10 + [True] * 2 + [False] * 13


def test_made_bodies_passes_what_follows_the_separator_to_the_benchmark():
    bench = _made_bodies()
    args = bench.parse_args(["train", "--cls", "scruff", "--", "--seeds", "6", "--cls"])
    assert (args.command, args.cls) == ("train", "scruff")
    assert args.rest == ["--seeds", "6", "--cls"]
    with pytest.raises(SystemExit):
        bench.parse_args(["measure", "--data", "synthetic:small:0"])  # no --runs


def test_wrapped_salt_layers_repeat_the_first_period():
    """The salt's layer coordinate: unchanged above ``period`` rows below the salt top, and
    from there equal to its value ``period`` (or twice ``period``) rows higher; other units
    unchanged."""
    import numpy as np

    from segforget.data.synthetic import _Geology, survey_config

    bench = _made_bodies()
    geology = _Geology(survey_config("small"), 0)
    il = np.arange(3)
    width = geology.blocks.shape[1]
    h = np.zeros((5, 3, width), np.float32)
    h[4] = 2.5  # the salt top, off the sample grid
    zs = np.broadcast_to(np.arange(30, dtype=np.float32), (3, width, 30)).copy()
    args = (il, {}, h, zs, slice(0, 30), np.ones(6))
    original = geology._layering(5, *args)
    wrapped = bench.wrapped_layering(10.0)(geology, 5, *args)
    below = zs - 2.5
    inside = (below >= 0) & (below < 10)
    np.testing.assert_allclose(wrapped[inside], original[inside], rtol=1e-6)
    step = 10 / geology.layer_samples[5]  # ten rows deeper: the coordinate ten rows up, again
    deep = below >= 10
    periods = np.floor(below / 10)[deep]  # 1 or 2 here
    assert set(periods.tolist()) == {1.0, 2.0}
    np.testing.assert_allclose(wrapped[deep], original[deep] - step * periods, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        bench.wrapped_layering(10.0)(geology, 4, *args), geology._layering(4, *args)
    )
