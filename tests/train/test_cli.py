"""`segforget train` end to end on a tiny survey, and the bad-input contract of the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from helpers import assert_user_error, run_cli
from segforget.data import load_data
from segforget.metrics import compute_scores
from segforget.train import load_run

QUIET = [
    "--set",
    "log.progress=false",
    "--set",
    "log.tensorboard=false",
    "--set",
    "train.threads=1",
]
SCORE_KEYS = {
    "pixel_accuracy",
    "class_accuracy",
    "mean_class_accuracy",
    "class_iou",
    "miou",
    "fwiou",
}


def _train_tiny(data, out, *options):
    """``segforget train`` of the tiny model on ``data`` into ``out``, quiet, with ``options``."""
    return run_cli(["train", "--data", data, "--out", out, "--model", "tiny", *options, *QUIET])


@pytest.fixture(scope="module")
def both_run(tiny_survey, tmp_path_factory):
    """One CLI run in tracking mode `both` with test tracking: 2 epochs, tiny model."""
    out = tmp_path_factory.mktemp("runs") / "both"
    result = _train_tiny(
        tiny_survey, out, "--epochs", 2, "--batch-size", 4, "--lr", 0.01, "--track", "both",
        "--set", "track.test=true",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    return out


def test_run_directory_contents(both_run):
    expected = [
        "config.yaml",
        "metrics.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        *(
            f"dynamics/epoch/{s}_{v}"
            for s in ("train", "test1", "test2")
            for v in ("inline", "crossline")
        ),
        "dynamics/presentation/train_inline",
        "dynamics/presentation/train_crossline",
        *(
            f"predictions/{s}_{v}.npy"
            for s in ("train", "test1", "test2")
            for v in ("inline", "crossline")
        ),
    ]
    for name in expected:
        assert (both_run / name).exists(), name
    assert not (both_run / "dynamics" / "presentation" / "test1_inline").exists()
    saved = yaml.safe_load((both_run / "config.yaml").read_text())
    assert saved["track"]["mode"] == "both" and saved["train"]["epochs"] == 2
    command = saved["run"]["command"]  # the arguments of this call, not the test runner's
    options = ["--epochs", "2", "--batch-size", "4", "--lr", "0.01", "--track", "both"]
    options += ["--set", "track.test=true", *map(str, QUIET)]
    data = command[3]
    assert command == ["segforget", "train", "--data", data, "--out", str(both_run)] + [
        "--model",
        "tiny",
        *options,
    ]
    assert "torch" in saved["run"]["versions"]
    checkpoint = torch.load(both_run / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and "model" in checkpoint and "rng" in checkpoint


def test_metrics_keys_and_values_match_the_saved_predictions(both_run, tiny_survey):
    metrics = json.loads((both_run / "metrics.json").read_text())
    assert SCORE_KEYS <= set(metrics["test"])
    assert set(metrics["test_splits"]) == {"test1", "test2"}
    assert SCORE_KEYS <= set(metrics["val"])
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    # Independent check: recompute the test scores from predictions and labels.
    data = load_data(tiny_survey)
    run = load_run(both_run)
    everything = ([], [])
    for split in ("test1", "test2"):
        predictions = [run.predictions(split, v).reshape(-1) for v in data.views]
        labels = [data.label_sections(split, v).reshape(-1) for v in data.views]
        expected = compute_scores(np.concatenate(predictions), np.concatenate(labels), 6)
        assert metrics["test_splits"][split]["miou"] == pytest.approx(expected["miou"])
        assert metrics["test_splits"][split]["confusion_matrix"] == expected["confusion_matrix"]
        everything[0].extend(predictions)
        everything[1].extend(labels)
    overall = compute_scores(np.concatenate(everything[0]), np.concatenate(everything[1]), 6)
    assert metrics["test"]["pixel_accuracy"] == pytest.approx(overall["pixel_accuracy"])


def test_store_shapes_and_observation_counts(both_run, tiny_survey):
    data = load_data(tiny_survey)
    run = load_run(both_run)
    assert ("epoch", "train", "inline") in run.available_stats()
    for view in data.views:
        space = data.space("train", view)
        height, width = space.section_shape
        for mode in ("epoch", "presentation"):
            stats = run.stats(mode, "train", view)
            assert stats.observations.shape == (space.num_pixels,)
            assert stats.meta["mode"] == mode and stats.meta["view"] == view
            assert stats.meta["section_shape"] == [height, width]
            per_section = stats.observations.reshape(space.num_sections, height, width)
            # Each training section is seen once per epoch (flip keeps every pixel); val never.
            assert (per_section[data.sections("train", view)] == 2).all()
            assert (per_section[data.sections("val", view)] == 0).all()
        epoch = run.stats("epoch", "train", view)
        assert epoch.confidence is not None
        assert run.stats("presentation", "train", view).confidence is None
        # The last epoch-mode observation is the final model's prediction that was saved.
        predictions = run.predictions("train", view).reshape(-1).astype(np.int64)
        observed = epoch.observations > 0
        assert np.array_equal(epoch.last_prediction[observed], predictions[observed])
        test = run.stats("epoch", "test1", view)
        assert test.observations.shape == (data.space("test1", view).num_pixels,)
        assert (test.observations == 2).all()


def test_track_none_writes_no_dynamics(tiny_survey, tmp_path):
    out = tmp_path / "none"
    result = _train_tiny(tiny_survey, out, "--epochs", 1, "--track", "none")
    assert result.code == 0, result.stderr
    assert not (out / "dynamics").exists()
    assert load_run(out).available_stats() == []


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--model", "foo-resnet18"], ["error: Expected `model`", "foo-resnet18"]),
        (["--data", "nope:x"], ["error:", "nope:x"]),
        (["--set", "train.epoch=3"], ["Expected config key", "train.epochs", "train.epoch"]),
        (["--device", "cuda"], ["Expected `--device` to be available", "--device cpu"]),
        (["--epochs", "0"], ["`train.epochs` to be an integer >= 1"]),
        (["--track", "sometimes"], ["`track.mode`"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_survey, tmp_path, args, fragments):
    if "--device" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "run"
    base = {"--data": tiny_survey, "--model": "tiny"}
    for flag, _value in zip(args[::2], args[1::2]):
        base.pop(flag, None)
    argv = ["train", "--out", out, *[x for kv in base.items() for x in kv], *args, *QUIET]
    assert_user_error(run_cli(argv), *fragments)
    assert not out.exists()


def test_existing_out_needs_force(tiny_survey, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("old")
    result = run_cli(["train", "--data", tiny_survey, "--out", out, "--model", "tiny", *QUIET])
    assert_user_error(result, "not to exist", "--force")
    assert [p.name for p in out.iterdir()] == ["config.yaml"]
    assert (out / "config.yaml").read_text() == "old"


def test_force_refuses_to_delete_a_directory_that_is_not_a_run(tiny_survey, tmp_path):
    (tmp_path / "precious.txt").write_text("keep")
    result = run_cli(
        ["train", "--data", tiny_survey, "--out", tmp_path, "--model", "tiny", "--force", *QUIET]
    )
    assert_user_error(result, "refusing to delete")
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_resume_without_checkpoint(tmp_path):
    (tmp_path / "config.yaml").write_text("data: {spec: 'synthetic:small'}\n")
    assert_user_error(run_cli(["train", "--out", tmp_path, "--resume"]), "checkpoints/last.pt")


def test_resume_rejects_new_configuration(tmp_path):
    assert_user_error(
        run_cli(["train", "--out", tmp_path, "--resume", "--lr", "0.1"]),
        "only --out, --epochs and --device with --resume",
    )


def test_the_best_entry_example_config_is_the_demo_s_method_and_trains(tiny_survey, tmp_path):
    from pathlib import Path

    from segforget.train.config import load_config
    from segforget.train.demo import DEMO_METHOD, DEMO_OPTIONS, DEMO_TRAIN

    example = Path(__file__).resolve().parents[2] / "examples" / "best-entry.yaml"
    config = load_config(example, ["data.spec=synthetic:small"]).validate()
    assert config.method.name == DEMO_METHOD
    assert config.method.options == DEMO_OPTIONS[DEMO_METHOD]
    assert config.train.ema == DEMO_TRAIN[DEMO_METHOD]["ema"]
    out = tmp_path / "best"
    result = _train_tiny(
        tiny_survey, out, "--config", example, "--epochs", 2, "--batch-size", 4,
        "--set", "method.options.warmup=1",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    run = load_run(out)
    assert run.config["method"]["options"]["warps"] == DEMO_OPTIONS[DEMO_METHOD]["warps"]
    assert run.config["train"]["ema"] == 0.9
    assert run.metrics["history"][0]["method"]["refreshes"] == 1
