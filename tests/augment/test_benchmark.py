"""The benchmark: entries, aggregation against numpy, tables, and the CLI's user errors."""

from __future__ import annotations

import json
import re
import shlex

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy import stats

from helpers import assert_user_error, loop_body_thickness, run_cli
from segforget.augment.benchmark import (
    benchmark_markdown,
    forgetting_counts,
    resolve_entries,
    run_benchmark,
)
from segforget.augment.figures import benchmark_panels
from segforget.compare import holm

CLASSES = ["upper_ns", "middle_ns", "lower_ns", "rijnland_chalk", "scruff", "zechstein"]


def _fake_scores(seed: int, bonus: float, classes: list[str] = CLASSES) -> dict:
    acc = {c: 0.5 + 0.05 * i + bonus + 0.01 * seed for i, c in enumerate(classes)}
    return {
        "miou": 0.6 + bonus + 0.02 * seed,
        "mean_class_accuracy": 0.7 + bonus,
        "fwiou": 0.8 - 0.01 * seed,
        "pixel_accuracy": 0.9,
        "class_accuracy": acc,
        "class_iou": {c: v - 0.1 for c, v in acc.items()},
    }


def _fake_events(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 10 * len(name))
    events = rng.integers(0, 5, size=200)
    observations = np.where(np.arange(200) < 150, 6, 0)
    return events, observations


@pytest.fixture
def fake_train(monkeypatch):
    """Replace training by writing a finished run with known numbers."""
    import segforget.train as train_module
    from segforget.dynamics import ForgettingTracker

    calls = []

    def train(config, out, *, force=False, command=None, **_):
        calls.append((config.method.name, dict(config.method.options), config.train.seed))
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
        bonus = {"baseline": 0.0, "rotate": 0.01}.get(config.method.name, 0.05)
        classes = CLASSES
        if config.data.spec.startswith("images:"):  # image folders name classes class_K
            classes = [f"class_{k}" for k in range(4)]
        metrics = {"test": _fake_scores(config.train.seed, bonus, classes)}
        (out / "metrics.json").write_text(json.dumps(metrics))
        events, observations = _fake_events(config.method.name, config.train.seed)
        tracker = ForgettingTracker(200, 6)
        stats = tracker.compute(meta={"section_shape": [10, 20], "view": "inline"})
        stats.forgetting_events[:] = events
        stats.observations[:] = observations
        stats.save(out / "dynamics" / "epoch" / "train_inline")
        return metrics

    monkeypatch.setattr(train_module, "train", train)
    return calls


def test_run_benchmark_aggregates_with_numpy(tmp_path, fake_train):
    out = tmp_path / "bench"
    report = run_benchmark(out, seeds=3, methods=["rotate", "style-input"], threshold=2, epochs=1)
    # baseline is trained first in every seed: style-input reads its regions
    assert [c[0] for c in fake_train[:3]] == ["baseline", "rotate", "style-input"]
    assert fake_train[2][1]["regions"] == str(out / "runs" / "baseline" / "seed0")
    miou = [0.6 + 0.05 + 0.02 * s for s in range(3)]
    got = report["summary"]["style-input"]["miou"]
    assert got["mean"] == pytest.approx(np.mean(miou))
    assert got["std"] == pytest.approx(np.std(miou, ddof=1))
    counts = []
    for s in range(3):
        events, observations = _fake_events("style-input", s)
        counts.append(((events >= 2) & (observations > 0)).sum())
    ff = report["summary"]["style-input"]["frequently_forgotten"]
    assert ff["mean"] == pytest.approx(np.mean(counts))
    frac = report["summary"]["style-input"]["frequently_forgotten_fraction"]["mean"]
    assert frac == pytest.approx(np.mean(counts) / 150)
    delta = report["comparisons"]["style-input"]["rotate"]["miou"]
    assert delta["delta"] == pytest.approx(0.04) and delta["beyond_spread"] is False
    assert report["best"] == "style-input"
    # paired by seed: mIoU and scruff differ by exactly 0.04 in every seed
    paired = report["comparisons"]["style-input"]["rotate"]["paired"]
    assert paired["miou"]["mean"] == pytest.approx(0.04) and paired["miou"]["wins"] == 3
    assert paired["miou"]["std"] == pytest.approx(0.0, abs=1e-12)
    assert paired["scruff"]["mean"] == pytest.approx(0.04) and paired["scruff"]["seeds"] == 3
    ref_counts = []
    for s in range(3):
        events, observations = _fake_events("rotate", s)
        ref_counts.append(((events >= 2) & (observations > 0)).sum())
    diff = np.subtract(counts, ref_counts)
    forgotten = paired["frequently_forgotten"]
    assert forgotten["mean"] == pytest.approx(diff.mean())
    assert forgotten["std"] == pytest.approx(diff.std(ddof=1))
    assert forgotten["wins"] == int((diff < 0).sum())
    assert forgotten["p"] == pytest.approx(stats.ttest_rel(counts, ref_counts).pvalue)
    saved = json.loads((out / "benchmark.json").read_text())
    assert saved["summary"]["rotate"]["miou"]["mean"] == pytest.approx(np.mean(miou) - 0.04)
    md = (out / "benchmark.md").read_text()
    assert "**scruff acc.**" in md and "| style-input |" in md
    assert "| style-input | rotate | +0.040 ± 0.000, 3/3, **p < 0.001** (Holm < 0.001) |" in md
    # Holm over the row's metrics: mIoU, the two rare classes, the forgotten pixels
    names = ["miou", "scruff", "zechstein", "frequently_forgotten"]
    assert [paired[n]["p_holm"] for n in names] == holm([paired[n]["p"] for n in names])
    assert paired["frequently_forgotten"]["p_holm"] >= paired["frequently_forgotten"]["p"]
    # the figure's numbers: the per-seed values and their mean and sample std
    panels = benchmark_panels(saved)
    assert [p["title"] for p in panels] == [
        "test mIoU",
        "scruff accuracy",
        "zechstein accuracy",
        "frequently forgotten px (>= 2 events)",
    ]
    assert panels[0]["entries"] == ["baseline", "rotate", "style-input"]
    assert panels[0]["seeds"][2] == pytest.approx(miou)
    assert panels[3]["seeds"][2] == counts
    assert panels[3]["mean"][2] == pytest.approx(np.mean(counts))
    scruff = [0.5 + 0.05 * 4 + 0.05 + 0.01 * s for s in range(3)]  # _fake_scores
    assert panels[1]["seeds"][2] == pytest.approx(scruff)
    assert panels[1]["std"][2] == pytest.approx(np.std(scruff, ddof=1))
    with Image.open(out / "benchmark.png") as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 200
    assert "![mean ± std and the single seeds of each method](benchmark.png)" in md
    # resume reuses every finished run
    fake_train.clear()
    run_benchmark(out, seeds=3, methods=["rotate", "style-input"], epochs=1, resume=True)
    assert fake_train == []


def test_entry_training_settings_reach_that_entry_only(tmp_path, fake_train, monkeypatch):
    import segforget.train as train_module

    seen = {}
    fake = train_module.train

    def spy(config, out, **kwargs):
        seen[(config.method.name, config.train.seed, config.train.ema)] = dict(
            config.method.options
        )
        return fake(config, out, **kwargs)

    monkeypatch.setattr(train_module, "train", spy)
    options = {"rot-ema": {"method": "rotate", "degrees": 5.0, "train": {"ema": 0.9}}}
    report = run_benchmark(
        tmp_path / "b", seeds=1, methods=["rotate", "rot-ema"], options=options, epochs=1
    )
    # the method gets its own options only; the training setting changes that entry's config
    assert seen == {("rotate", 0, 0.0): {}, ("rotate", 0, 0.9): {"degrees": 5.0}}
    assert report["settings"]["entries"]["rot-ema"]["options"]["train"] == {"ema": 0.9}


def test_best_entry_is_a_forgetting_aware_one(tmp_path, fake_train):
    """`best` (the method the demo runs) skips entries of the methods blind to forgetting,
    whatever the entry is called: `wide` (a warp variant) ties with `online` on every number."""
    options = {"wide": {"method": "warp", "pixels": 12.0}}
    report = run_benchmark(
        tmp_path / "b", seeds=1, methods=["wide", "online"], options=options, epochs=1
    )
    wide, online = (report["summary"][e]["miou"]["mean"] for e in ("wide", "online"))
    assert wide == pytest.approx(online)
    assert report["best"] == "online"
    assert fake_train[0][:2] == ("warp", {"pixels": 12.0})


@pytest.mark.parametrize("train", [{"epochs": 3}, {"seed": 1}, {"nonsense": 1}, [("ema", 0.9)]])
def test_entry_training_settings_cannot_change_the_budget(train):
    with pytest.raises(ValueError, match="option `train` of entry 'x'"):
        resolve_entries(["x"], {"x": {"method": "baseline", "train": train}})


def test_entry_training_settings_are_validated_before_any_run(tmp_path, fake_train):
    options = {"x": {"method": "baseline", "train": {"ema": 1.5}}}
    with pytest.raises(ValueError, match=r"train\.ema"):
        run_benchmark(tmp_path / "b", seeds=1, methods=["x"], options=options, epochs=1)
    assert fake_train == []


def test_forgetting_counts_reference():
    events = np.array([0, 1, 2, 3, 5, 2])
    observations = np.array([4, 4, 4, 0, 4, 4])
    assert forgetting_counts(events, observations, 2) == (3, 5)


def test_resolve_entries_variants_and_errors():
    entries = resolve_entries(
        ["baseline", "strong"], {"strong": {"method": "style-input", "p": 0.9}}
    )
    assert entries["strong"] == ("style-input", {"p": 0.9})
    with pytest.raises(ValueError, match="entries from"):
        resolve_entries(["mixup"])
    with pytest.raises(ValueError, match="without duplicates"):
        resolve_entries(["rotate", "rotate"])
    with pytest.raises(ValueError, match="keys to be entries"):
        resolve_entries(["rotate"], {"online": {}})
    with pytest.raises(ValueError, match="no `regions` option"):
        resolve_entries(["oversample"], {"oversample": {"regions": "x"}})
    with pytest.raises(ValueError, match="at least one method"):
        resolve_entries([])


def test_markdown_handles_missing_classes():
    stat = {"mean": None, "std": None, "n": 0}
    summary = {
        key: {"mean": 0.5, "std": 0.1, "n": 2}
        for key in (
            "miou",
            "mean_class_accuracy",
            "fwiou",
            "pixel_accuracy",
            "frequently_forgotten",
            "frequently_forgotten_fraction",
            "never_learned",
            "wall_s",
        )
    }
    summary["class_accuracy"] = {"a": stat}
    summary["class_iou"] = {"a": stat}
    report = {
        "settings": {
            "command": "c",
            "data": "d",
            "model": "m",
            "epochs": 1,
            "batch_size": 1,
            "seeds": 2,
            "machine": "x",
            "date": "today",
            "threshold": 2,
        },
        "summary": {"baseline": summary},
    }
    text = benchmark_markdown(report)
    assert "0.500 ± 0.100" in text and "n/a" in text


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--methods", "baseline,mixup"], ["--methods", "mixup"]),
        (["--options", "{bad"], ["--options", "json"]),
        (["--options", '{"rotate": 3}'], ["--options"]),
        (["--preset", "huge"], ["--preset", "small"]),
        (["--seeds", "0"], ["--seeds", ">= 1"]),
        (["--methods", "rotate", "--options", '{"rotate": {"bogus": 1}}'], ["bogus"]),
    ],
)
def test_cli_user_errors_write_nothing(tmp_path, args, fragments):
    out = tmp_path / "bench"
    result = run_cli(["benchmark", "--out", out, *args])
    assert_user_error(result, *fragments)
    assert not out.exists()


def test_cli_refuses_existing_out(tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    assert_user_error(run_cli(["benchmark", "--out", out]), "--out", "--resume")


def test_cli_runs_with_fake_training(tmp_path, fake_train):
    out = tmp_path / "bench"
    result = run_cli(
        ["benchmark", "--out", out, "--seeds", "2", "--methods", "baseline,online", "--epochs", "1"]
    )
    assert result.code == 0, result.stderr
    assert "best forgetting-aware method by mean test mIoU: online" in result.stdout
    assert (out / "benchmark.md").is_file()


def test_cli_progress_lines_are_not_wrapped_in_a_log(tmp_path, fake_train):
    name = "an-entry-with-a-long-name-so-that-the-line-passes-eighty-columns"
    result = run_cli(
        [
            "benchmark",
            "--out",
            tmp_path / "bench",
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--methods",
            f"baseline,{name}",
            "--options",
            json.dumps({name: {"method": "rotate"}}),
        ]
    )
    assert result.code == 0, result.stderr
    done = [line for line in result.stderr.splitlines() if ": done, test mIoU" in line]
    assert len(done) == 2, result.stderr
    assert any(len(line) > 80 for line in done)
    for line in done:
        assert re.fullmatch(r"\[\d/2\] \S+ seed 0: done, test mIoU [0-9.]+, .* \(\d+ s\)", line)


def test_markdown_records_the_command_so_that_it_runs_again(tmp_path, fake_train):
    """JSON options with spaces and a line break survive: the shell reads back the same call."""
    options = '{"r5": {"method": "rotate",\n  "degrees": 5.0}}'
    args = ["benchmark", "--out", str(tmp_path / "b"), "--seeds", "1", "--epochs", "1"]
    args += ["--methods", "baseline,r5", "--options", options]
    assert run_cli(args).code == 0
    text = (tmp_path / "b" / "benchmark.md").read_text()
    block = re.search(r"Command:\n\n```bash\n(.*?)\n```\n", text, flags=re.DOTALL)
    assert block is not None, text
    assert shlex.split(block.group(1)) == ["segforget", *args]
    report = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    assert shlex.split(report["settings"]["command"]) == ["segforget", *args]


def test_progress_lines_give_each_runs_result_and_the_time_left(tmp_path, fake_train):
    lines: list[str] = []
    out = tmp_path / "bench"
    methods = ["baseline", "rotate"]
    report = run_benchmark(out, seeds=2, methods=methods, epochs=1, progress=lines.append)
    plan = [("baseline", 0), ("rotate", 0), ("baseline", 1), ("rotate", 1)]
    finished = [line for line in lines if ": done, " in line]
    assert len(finished) == len(plan)
    for number, ((entry, seed), line) in enumerate(zip(plan, finished), start=1):
        result = report["runs"][entry][seed]
        assert line.startswith(f"[{number}/4] {entry} seed {seed}: done, ")
        assert f"test mIoU {result['miou']:.3f}, " in line
        assert f"{result['frequently_forgotten']:,} frequently forgotten px" in line
    left = [line for line in lines if "left (" in line]
    assert [re.search(r"\((\d) runs? to train", line).group(1) for line in left] == ["3", "2", "1"]
    lines.clear()
    run_benchmark(out, seeds=2, methods=methods, epochs=1, resume=True, progress=lines.append)
    assert len(lines) == 4 and all(": reused, test mIoU " in line for line in lines)


def test_time_left_is_the_mean_wall_time_times_the_runs_left():
    from segforget.augment.benchmark import _time_left_line

    assert _time_left_line([30.0, 40.0], 2) == "    about 70 s left (2 runs to train at 35 s each)"
    assert _time_left_line([30.0, 40.0], 3) == "    about 2 min left (3 runs to train at 35 s each)"
    assert (
        _time_left_line([60.0, 60.0], 10) == "    about 10 min left (10 runs to train at 60 s each)"
    )
    assert _time_left_line([20.0], 1) == "    about 20 s left (1 run to train at 20 s each)"


def _image_folder(root, seed=0):
    """12 images of 4 classes with shares of about 70, 23, 4 and 3 percent."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(12):
        mask = rng.choice(4, size=(16, 16), p=[0.7, 0.23, 0.04, 0.03]).astype(np.uint8)
        image = rng.integers(0, 256, (16, 16)).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"img{k:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"img{k:02d}.png")


def test_rare_classes_of_any_data_set_are_its_two_smallest(tmp_path, fake_train):
    from segforget.data import load_data

    _image_folder(tmp_path / "imgs")
    spec = f"images:{tmp_path / 'imgs'}"
    labels = load_data(spec).label_sections("train+val", "image")
    counts = np.bincount(labels[labels != 255].ravel(), minlength=4)
    shares = counts / counts.sum()
    expected = [f"class_{k}" for k in range(4) if shares[k] < 0.05]
    assert expected == ["class_2", "class_3"]  # the shares written above, under 5 %
    report = run_benchmark(
        tmp_path / "b", data=spec, seeds=2, methods=["baseline", "rotate"], epochs=1
    )
    assert report["settings"]["rare_classes"] == expected
    md = (tmp_path / "b" / "benchmark.md").read_text()
    assert "| **class_2 acc.** | **class_3 acc.** |" in md and "scruff" not in md
    report = run_benchmark(
        tmp_path / "c", data=spec, seeds=2, methods=["rotate", "online"], epochs=1
    )
    paired = report["comparisons"]["online"]["rotate"]["paired"]
    for name in expected:  # the fake runs differ by 0.05 - 0.01 in every class
        assert paired[name]["mean"] == pytest.approx(0.04) and paired[name]["seeds"] == 2
        assert report["comparisons"]["online"]["rotate"][name]["delta"] == pytest.approx(0.04)
    assert "Δ class_2 acc. | Δ class_3 acc. |" in (tmp_path / "c" / "benchmark.md").read_text()


def test_rare_classes_chosen_with_the_option(tmp_path, fake_train):
    report = run_benchmark(
        tmp_path / "b", seeds=1, methods=["baseline"], epochs=1, rare=["zechstein", "middle_ns"]
    )
    assert report["settings"]["rare_classes"] == ["middle_ns", "zechstein"]  # label order
    text = (tmp_path / "b" / "benchmark.md").read_text()
    assert "| **middle_ns acc.** | **zechstein acc.** |" in text


@pytest.mark.parametrize("rare", ["sand", "scruff,scruff", ","])
def test_cli_rejects_rare_classes_the_data_lacks(tmp_path, rare):
    out = tmp_path / "b"
    result = run_cli(["benchmark", "--out", out, "--methods", "baseline", "--rare", rare])
    assert_user_error(result, "--rare", "upper_ns")
    assert not out.exists()


def test_rare_classes_rule():
    from segforget.classes import F3_CLASS_NAMES, rare_classes

    assert rare_classes(F3_CLASS_NAMES) == ["scruff", "zechstein"]
    names = ["sky", "road", "car", "sign"]
    assert rare_classes(names, [0.5, 0.41, 0.04, 0.05]) == ["car"]  # under 5 %
    assert rare_classes(names, [0.9, 0.04, 0.01, 0.05]) == ["road", "car"]  # label order
    assert rare_classes(names, [0.91, 0.02, 0.03, 0.04]) == ["road", "car"]  # the 2 smallest
    assert rare_classes(names, [0.3, 0.3, 0.0, 0.4]) == ["sky"]  # none under: the smallest
    assert rare_classes(names, [0.97, 0.0, 0.03, 0.0]) == ["car"]  # absent classes: not rare
    assert rare_classes(["bg", "fg"], [0.6, 0.4]) == ["fg"]
    with pytest.raises(ValueError, match="one training-pixel fraction per class"):
        rare_classes(names)


def test_first_seed_replicates_on_fresh_seeds(tmp_path, fake_train):
    """--first-seed 3 --seeds 2 trains seeds 3 and 4 only; the tables hold those seeds, and a
    later --first-seed 0 --seeds 5 --resume trains only the seeds not there yet."""
    out = tmp_path / "bench"
    methods = ["baseline", "rotate"]
    report = run_benchmark(out, seeds=2, first_seed=3, methods=methods, epochs=1)
    assert [(c[0], c[2]) for c in fake_train] == [
        ("baseline", 3),
        ("rotate", 3),
        ("baseline", 4),
        ("rotate", 4),
    ]
    assert [r["seed"] for r in report["runs"]["rotate"]] == [3, 4]
    miou = [0.6 + 0.01 + 0.02 * s for s in (3, 4)]
    assert report["summary"]["rotate"]["miou"]["mean"] == pytest.approx(np.mean(miou))
    assert report["settings"]["first_seed"] == 3 and report["settings"]["seeds"] == 2
    assert "seeds 2 (3-4)" in (out / "benchmark.md").read_text()
    assert sorted(p.name for p in (out / "runs" / "rotate").iterdir()) == ["seed3", "seed4"]
    fake_train.clear()
    report = run_benchmark(out, seeds=5, methods=methods, epochs=1, resume=True)
    assert sorted({c[2] for c in fake_train}) == [0, 1, 2]
    assert [r["seed"] for r in report["runs"]["rotate"]] == [0, 1, 2, 3, 4]
    assert "seeds 5 (0-4)" in (out / "benchmark.md").read_text()


def test_cli_first_seed(tmp_path, fake_train):
    out = tmp_path / "bench"
    args = ["benchmark", "--out", out, "--seeds", "1", "--first-seed", "7", "--epochs", "1"]
    result = run_cli([*args, "--methods", "baseline"])
    assert result.code == 0, result.stderr
    assert [c[2] for c in fake_train] == [7]
    assert_user_error(
        run_cli([*args[:-2], "--first-seed", "-1", "--out", tmp_path / "b2"]),
        "--first-seed",
        ">= 0",
    )
    assert not (tmp_path / "b2").exists()


def test_where_the_rare_classes_go_is_the_mean_confusion_row(tmp_path, fake_train, monkeypatch):
    """predicted_as: each true class's row of the test confusion matrix over its sum, averaged
    over seeds; the md names each rare class's two most frequent wrong classes."""
    import segforget.train as train_module

    fake = train_module.train
    matrices = {}

    def train_with_confusion(config, out, **kwargs):
        metrics = fake(config, out, **kwargs)
        rng = np.random.default_rng(config.train.seed + 7 * len(config.method.name))
        matrix = rng.integers(0, 50, size=(6, 6)) + np.eye(6, dtype=int) * 200
        matrices[(config.method.name, config.train.seed)] = matrix
        metrics["test"]["confusion_matrix"] = matrix.tolist()
        (out / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(train_module, "train", train_with_confusion)
    out = tmp_path / "bench"
    report = run_benchmark(out, seeds=3, methods=["baseline", "rotate"], epochs=1)
    for entry in ("baseline", "rotate"):
        rows = np.stack([matrices[(entry, s)] for s in range(3)]).astype(float)
        expected = (rows / rows.sum(axis=2, keepdims=True)).mean(axis=0)  # (true, predicted)
        got = report["summary"][entry]["predicted_as"]
        for i, true in enumerate(CLASSES):
            for j, other in enumerate(CLASSES):
                assert got[true][other] == pytest.approx(expected[i, j])
    # the md cell of rotate's zechstein: its two largest off-diagonal shares, from numpy
    zech = CLASSES.index("zechstein")
    row = expected[zech]  # rotate's, the last entry of the loop
    order = [j for j in np.argsort(-row, kind="stable") if j != zech][:2]
    text = ", ".join(f"{row[j] * 100:.1f} % as {CLASSES[j]}" for j in order)
    md = (out / "benchmark.md").read_text()
    assert "Where the rare classes' test pixels go" in md
    assert "| rotate | " in md and text in md


def test_markdown_has_no_confusion_table_without_matrices(tmp_path, fake_train):
    report = run_benchmark(tmp_path / "b", seeds=1, methods=["baseline"], epochs=1)
    assert report["summary"]["baseline"]["predicted_as"] == {}
    assert "Where the rare classes" not in (tmp_path / "b" / "benchmark.md").read_text()


def test_rare_classes_beyond_the_thickest_training_body(tmp_path, fake_train, monkeypatch):
    """Fake predictions: the labels, except zechstein in test bodies thicker than any on a
    training trace (called scruff by `style-input`) and, in seed s, the within pixels whose
    section + column is divisible by s + 2 (called upper_ns). Accuracies, shares and the
    training maximum against a loop reference (the training maximum from the other view)."""
    import segforget.train as train_module
    from segforget.data import load_data

    data = load_data("synthetic:small:0")
    zech, scruff = CLASSES.index("zechstein"), CLASSES.index("scruff")
    crossline = data.label_sections("train+val", "crossline")
    train_max = loop_body_thickness(crossline)[0][crossline == zech].max()
    tests = {}
    for split in data.test_splits:
        for view in data.views:
            labels = data.label_sections(split, view)
            tests[(split, view)] = (labels, loop_body_thickness(labels)[0] > train_max)
    wrapped = train_module.train

    def train(config, out, **kwargs):
        metrics = wrapped(config, out, **kwargs)
        (out / "predictions").mkdir()
        for (split, view), (labels, beyond) in tests.items():
            predicted = labels.copy()
            inside = labels == zech
            if config.method.name == "style-input":
                predicted[inside & beyond] = scruff
            n, _, width = labels.shape
            grid = np.arange(n)[:, None, None] + np.arange(width)[None, None, :]
            hit = inside & ~beyond & (grid % (config.train.seed + 2) == 0)
            predicted[hit] = 0
            np.save(out / "predictions" / f"{split}_{view}.npy", predicted.astype(np.uint8))
        return metrics

    monkeypatch.setattr(train_module, "train", train)
    report = run_benchmark(tmp_path / "b", seeds=2, methods=["style-input"], epochs=1)
    inside = np.concatenate([(lab == zech).ravel() for lab, _ in tests.values()])
    beyond = np.concatenate([b.ravel() for _, b in tests.values()])[inside]
    share = beyond.mean()
    assert 0.05 < share < 0.95  # the synthetic test domes rise above the training one
    for entry, beyond_acc in (("baseline", 1.0), ("style-input", 0.0)):
        within = []
        for seed, run in enumerate(report["runs"][entry]):
            row = run["beyond_training"]["zechstein"]
            hits = []
            for labels, thick in tests.values():
                n, _, width = labels.shape
                grid = np.arange(n)[:, None, None] + np.arange(width)[None, None, :]
                hits.append(((grid % (seed + 2) == 0) & (labels == zech) & ~thick).sum())
            expected = 1 - sum(hits) / (~beyond).sum()
            within.append(expected)
            assert row["within"] == pytest.approx(expected)
            assert row["beyond"] == pytest.approx(beyond_acc)
            assert row["beyond_share"] == pytest.approx(share)
            assert row["train_max_thickness"] == train_max
        summary = report["summary"][entry]["beyond_training"]["zechstein"]
        assert summary["within"]["mean"] == pytest.approx(np.mean(within))
        assert summary["within"]["std"] == pytest.approx(np.std(within, ddof=1))
    md = (tmp_path / "b" / "benchmark.md").read_text()
    head = f"zechstein: **beyond** ({share * 100:.0f} %)"
    assert head in md and f"within (<= {train_max} rows" in md
    assert "| style-input | " in md.split(head)[1] and "**0.000 ± 0.000**" in md


def _under_chalk(labels, chalk, scruff):
    """Loop reference: per pixel, whether it is one of scruff's top 3 rows under chalk, and
    that chalk's thickness on its trace (0 elsewhere)."""
    thickness, below = loop_body_thickness(labels)
    top = np.zeros(labels.shape, bool)
    above = np.zeros(labels.shape, np.int64)
    for s, y, x in zip(*np.nonzero((labels == scruff) & (below < 3))):
        row = y - below[s, y, x] - 1
        if row >= 0 and labels[s, row, x] == chalk:
            top[s, y, x] = True
            above[s, y, x] = thickness[s, row, x]
    return top, above


def test_rare_classes_under_a_thin_unit(tmp_path, fake_train, monkeypatch):
    """Fake predictions: the labels, except that `style-input` calls scruff's top 3 rows
    chalk under chalk thinner than training's 10th percentile, and every method calls the
    scruff top rows under thicker chalk on every (seed + 2)-th column chalk. The threshold
    (from the training crosslines), shares and accuracies against a loop reference."""
    import segforget.train as train_module
    from segforget.data import load_data

    data = load_data("synthetic:small:0")
    chalk, scruff = CLASSES.index("rijnland_chalk"), CLASSES.index("scruff")
    crossline = data.label_sections("train+val", "crossline")
    thick, _ = loop_body_thickness(crossline)
    contact = (crossline[:, :-1] == chalk) & (crossline[:, 1:] == scruff)
    values = np.sort(thick[:, :-1][contact])
    threshold = next(t for t in range(200) if (values <= t).sum() >= 0.1 * values.size)
    tests = {}
    for split in data.test_splits:
        for view in data.views:
            labels = data.label_sections(split, view)
            top, above = _under_chalk(labels, chalk, scruff)
            tests[(split, view)] = (labels, top & (above < threshold), top & (above >= threshold))
    wrapped = train_module.train

    def train(config, out, **kwargs):
        metrics = wrapped(config, out, **kwargs)
        (out / "predictions").mkdir()
        for (split, view), (labels, thin, usual) in tests.items():
            predicted = labels.copy()
            if config.method.name == "style-input":
                predicted[thin] = chalk
            width = labels.shape[2]
            column = np.arange(width)[None, None, :] % (config.train.seed + 2) == 0
            predicted[usual & column] = chalk
            np.save(out / "predictions" / f"{split}_{view}.npy", predicted.astype(np.uint8))
        return metrics

    monkeypatch.setattr(train_module, "train", train)
    report = run_benchmark(tmp_path / "b", seeds=2, methods=["style-input"], epochs=1)
    n_thin = sum(t.sum() for _, t, _ in tests.values())
    n_usual = sum(u.sum() for _, _, u in tests.values())
    share = n_thin / (n_thin + n_usual)
    assert 0.05 < share < 0.95  # the synthetic test chalk is thinner than training's
    for entry, thin_acc in (("baseline", 1.0), ("style-input", 0.0)):
        usual_accs = []
        for seed, run in enumerate(report["runs"][entry]):
            row = run["beyond_training"]["scruff"]["under_thin"]
            assert row["above"] == "rijnland_chalk" and row["thin_below"] == threshold
            assert row["thin_share"] == pytest.approx(share)
            assert row["thin"] == pytest.approx(thin_acc)
            hit = sum(
                (u & (np.arange(u.shape[2])[None, None, :] % (seed + 2) == 0)).sum()
                for _, _, u in tests.values()
            )
            usual_accs.append(1 - hit / n_usual)
            assert row["usual"] == pytest.approx(usual_accs[-1])
        summary = report["summary"][entry]["beyond_training"]["scruff"]["under_thin"]
        assert summary["usual"]["mean"] == pytest.approx(np.mean(usual_accs))
        assert summary["usual"]["std"] == pytest.approx(np.std(usual_accs, ddof=1))
    md = (tmp_path / "b" / "benchmark.md").read_text()
    head = f"scruff under **thin** rijnland_chalk ({share * 100:.0f} %)"
    assert head in md and f"scruff under rijnland_chalk >= {threshold} rows" in md
    assert "| style-input | " in md.split(head)[1] and "**0.000 ± 0.000**" in md.split(head)[1]
