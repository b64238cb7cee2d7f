"""Replacing and reusing outputs: ``--force`` deletes only what segforget wrote, ``demo`` asks
for ``--force`` before replacing runs, ``benchmark --resume`` reuses only runs trained with the
same settings, and ``--resume`` with ``--force`` is refused. Every refusal comes before any work.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from reliability_builders import QUIET, diff_snapshots, snapshot
from rich.console import Console

from helpers import CliResult, assert_user_error, run_cli
from segforget.train import load_run, read_config, train
from segforget.train.callbacks import Callback
from segforget.train.demo import run_demo


def _cli(argv: list) -> CliResult:
    """``run_cli`` that restores torch's thread count (``--threads 1`` changes it)."""
    threads = torch.get_num_threads()
    try:
        return run_cli(argv)
    finally:
        torch.set_num_threads(threads)


def _train_argv(survey: Path, out: Path) -> list:
    return ["train", "--data", f"f3:{survey}", "--model", "tiny", "--epochs", "1", "--out", out]


def _copy_run(finished_run: Path, target: Path) -> Path:
    shutil.copytree(finished_run, target)
    return target


# ---------------------------------------------------------------------------------- train --force
def _project_with_own_config(root: Path, finished_run: Path) -> Path:
    # A user's folder whose config.yaml is a segforget config for `--config` (no `run` facts).
    root.mkdir()
    (root / "config.yaml").write_text("data: {spec: 'synthetic:small'}\ntrain: {epochs: 3}\n")
    return root


def _project_with_run_config(root: Path, finished_run: Path) -> Path:
    # A config.yaml copied from a run into a project that holds the user's code too.
    root.mkdir()
    shutil.copy(finished_run / "config.yaml", root / "config.yaml")
    (root / "src").mkdir()
    (root / "src" / "main.py").write_text("print('mine')\n")
    return root


def _run_with_user_notes(root: Path, finished_run: Path) -> Path:
    _copy_run(finished_run, root)
    (root / "notes.txt").write_text("what I learned from this run\n")
    return root


def _only_run_names_with_foreign_config(root: Path, finished_run: Path) -> Path:
    # Only names a run has, but config.yaml is not one segforget train wrote.
    root.mkdir()
    (root / "config.yaml").write_text("name: my-project\nversion: 2\n")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "model.pt").write_bytes(b"mine")
    return root


@pytest.mark.parametrize(
    ("build", "fragments"),
    [
        (_project_with_own_config, ("without a config.yaml written by segforget train",)),
        (_project_with_run_config, ("other entries ['src']",)),
        (_run_with_user_notes, ("other entries ['notes.txt']",)),
        (_only_run_names_with_foreign_config, ("without a config.yaml written by segforget",)),
    ],
    ids=["own-config", "run-config-and-code", "run-and-notes", "foreign-config"],
)
def test_train_force_keeps_a_folder_that_is_not_a_run(
    build, fragments, tiny_survey, finished_run, tmp_path
):
    folder = build(tmp_path / "project", finished_run)
    before = snapshot(folder)
    result = _cli([*_train_argv(tiny_survey, folder), "--force", *QUIET])
    assert_user_error(result, "refusing to delete it", "choose another --out", *fragments)
    assert diff_snapshots(before, snapshot(folder)) == []


def test_train_force_refuses_a_file(tiny_survey, tmp_path):
    target = tmp_path / "config.yaml"
    target.write_text("mine\n")
    result = _cli([*_train_argv(tiny_survey, target), "--force", *QUIET])
    assert_user_error(result, "the file", "refusing to delete it")
    assert target.read_text() == "mine\n"


def test_train_force_replaces_a_run_and_what_later_commands_added(
    tiny_survey, finished_run, tmp_path
):
    run = _copy_run(finished_run, tmp_path / "run")
    (run / "analysis").mkdir()  # segforget analyze
    (run / "report.html").write_text("<html></html>")  # segforget report
    (run / "label_issues").mkdir()  # segforget label-issues
    (run / ".metrics.q1w2.tmp.json").write_text("{")  # left by a killed writer
    result = _cli([*_train_argv(tiny_survey, run), "--force", *QUIET])
    assert result.code == 0, result.stderr
    assert read_config(run).train.epochs == 1  # the finished run had 2
    assert not (run / "analysis").exists() and not (run / "report.html").exists()
    assert [path.name for path in tmp_path.iterdir()] == ["run"]  # the old run is gone


class _FailAtEpochEnd(Callback):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_epoch_end(self, trainer, epoch, record) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error", [RuntimeError("out of memory"), KeyboardInterrupt()], ids=["error", "ctrl-c"]
)
def test_train_force_puts_the_old_run_back_when_the_new_one_fails(error, finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    config = read_config(run)
    config.train.epochs = 1
    output = io.StringIO()
    with pytest.raises(type(error)):
        train(
            config,
            run,
            force=True,
            callbacks=[_FailAtEpochEnd(error)],
            console=Console(file=output, width=200),
        )
    assert diff_snapshots(before, snapshot(run)) == []
    assert [path.name for path in tmp_path.iterdir()] == ["run"]  # nothing left aside
    assert f"the previous run in {run} is kept" in output.getvalue()


def test_train_force_replaces_an_empty_folder(tiny_survey, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    result = _cli([*_train_argv(tiny_survey, out), "--force", *QUIET])
    assert result.code == 0, result.stderr
    assert (out / "metrics.json").is_file()


# ------------------------------------------------------------------------------ --resume --force
def test_train_refuses_resume_with_force(finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    result = _cli(["train", "--out", run, "--resume", "--force"])
    assert_user_error(result, "--resume", "--force", "got both")
    assert diff_snapshots(before, snapshot(run)) == []


def test_train_function_refuses_resume_with_force(finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path / "run")
    with pytest.raises(ValueError, match="got both; pass only one"):
        train(read_config(run), run, resume=True, force=True)


# ---------------------------------------------------------------------------------- demo
def test_demo_refuses_to_replace_a_run_without_force(finished_run, tmp_path):
    out = tmp_path / "demo"
    _copy_run(finished_run, out / "baseline")
    before = snapshot(out)
    result = _cli(["demo", "--out", out, "--quick"])
    assert_user_error(result, str(out / "baseline"), "exists", "pass --force to replace it")
    assert diff_snapshots(before, snapshot(out)) == []


def test_demo_refuses_before_the_baseline_trains_when_the_method_run_exists(finished_run, tmp_path):
    out = tmp_path / "demo"
    _copy_run(finished_run, out / "online")
    before = snapshot(out)
    result = _cli(["demo", "--out", out, "--quick", "--method", "online"])
    assert_user_error(result, str(out / "online"), "pass --force to replace it")
    assert diff_snapshots(before, snapshot(out)) == []  # no baseline trained


def test_demo_force_keeps_a_folder_that_is_not_a_run(tmp_path):
    out = tmp_path / "demo"
    (out / "baseline").mkdir(parents=True)
    (out / "baseline" / "thesis.tex").write_text("mine")
    before = snapshot(out)
    result = _cli(["demo", "--out", out, "--quick", "--force"])
    assert_user_error(result, "refusing to delete it", "thesis.tex")
    assert diff_snapshots(before, snapshot(out)) == []


def test_demo_force_replaces_an_earlier_demo(tiny_survey, finished_run, tmp_path):
    out = tmp_path / "demo"
    _copy_run(finished_run, out / "baseline")
    (out / "baseline" / "report.html").write_text("<html>old</html>")
    threads = torch.get_num_threads()
    try:
        result = run_demo(
            out,
            quick=True,
            method=None,
            spec=f"f3:{tiny_survey}",
            model="tiny",
            force=True,
            console=Console(file=io.StringIO()),
        )
    finally:
        torch.set_num_threads(threads)
    run = load_run(out / "baseline")
    assert run.config["track"]["mode"] == "both"  # the demo's run, not the copied one
    assert result["runs"] == [out / "baseline"]


# ---------------------------------------------------------------------------------- benchmark
def _benchmark_argv(survey: Path, out: Path, *extra) -> list:
    return [
        "benchmark",
        "--out",
        out,
        "--data",
        f"f3:{survey}",
        "--seeds",
        "1",
        "--methods",
        "baseline",
        "--model",
        "tiny",
        "--batch-size",
        "4",
        "--threads",
        "1",
        *extra,
    ]


@pytest.fixture(scope="module")
def one_epoch_benchmark(tiny_survey, tmp_path_factory) -> Path:
    """A finished benchmark: baseline, seed 0, 1 epoch of the tiny model on the CPU."""
    out = tmp_path_factory.mktemp("overwrite-benchmark") / "bench"
    result = _cli(_benchmark_argv(tiny_survey, out, "--epochs", "1", "--device", "cpu"))
    assert result.code == 0, result.stderr
    return out


def test_benchmark_resume_refuses_a_run_of_another_budget(
    tiny_survey, one_epoch_benchmark, tmp_path
):
    out = shutil.copytree(one_epoch_benchmark, tmp_path / "bench")
    before = snapshot(out)
    result = _cli(_benchmark_argv(tiny_survey, out, "--epochs", "2", "--resume"))
    assert_user_error(
        result,
        str(out / "runs" / "baseline" / "seed0"),
        "train.epochs (run 1, now 2)",
        "re-run without --resume into a new --out",
    )
    assert "training" not in result.stderr and "reused" not in result.stderr
    assert diff_snapshots(before, snapshot(out)) == []


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        (("--batch-size", "2"), "train.batch_size"),
        (("--views", "inline"), "data.views"),
        (("--options", '{"baseline": {"train": {"lr": 0.01}}}'), "train.lr"),
    ],
)
def test_benchmark_resume_names_every_setting_that_differs(
    extra, key, tiny_survey, one_epoch_benchmark, tmp_path
):
    out = shutil.copytree(one_epoch_benchmark, tmp_path / "bench")
    # a repeated option: the last value counts
    result = _cli(_benchmark_argv(tiny_survey, out, "--epochs", "1", "--resume", *extra))
    assert_user_error(result, key, "seed0")


def test_benchmark_resume_reuses_a_run_of_the_same_budget(
    tiny_survey, one_epoch_benchmark, tmp_path
):
    out = shutil.copytree(one_epoch_benchmark, tmp_path / "bench")
    metrics = (out / "runs" / "baseline" / "seed0" / "metrics.json").read_text()
    # Another --device is where the run trained, not what it learned: still reused.
    result = _cli(_benchmark_argv(tiny_survey, out, "--epochs", "1", "--resume"))
    assert result.code == 0, result.stderr
    assert "[1/1] baseline seed 0: reused" in result.stderr
    assert (out / "runs" / "baseline" / "seed0" / "metrics.json").read_text() == metrics
    assert json.loads((out / "benchmark.json").read_text())["settings"]["epochs"] == 1


def test_benchmark_resume_refuses_a_run_without_its_config(
    tiny_survey, one_epoch_benchmark, tmp_path
):
    out = shutil.copytree(one_epoch_benchmark, tmp_path / "bench")
    (out / "runs" / "baseline" / "seed0" / "config.yaml").unlink()
    result = _cli(_benchmark_argv(tiny_survey, out, "--epochs", "1", "--resume"))
    assert_user_error(result, "readable config.yaml", "seed0", "--force")


def test_benchmark_refuses_resume_with_force(tiny_survey, one_epoch_benchmark, tmp_path):
    out = shutil.copytree(one_epoch_benchmark, tmp_path / "bench")
    before = snapshot(out)
    result = _cli(_benchmark_argv(tiny_survey, out, "--epochs", "1", "--resume", "--force"))
    assert_user_error(result, "--resume", "--force", "got both")
    assert diff_snapshots(before, snapshot(out)) == []


def test_benchmark_unknown_model_fails_before_any_progress(tiny_survey, tmp_path):
    out = tmp_path / "bench"
    result = _cli(_benchmark_argv(tiny_survey, out, "--epochs", "1", "--model", "bogus"))
    # one line on stderr: the error, no "[1/1] baseline seed 0: training" before it
    assert_user_error(result, "model", "bogus")
    assert not out.exists()


def test_reuse_check_ignores_where_the_run_trained(one_epoch_benchmark):
    from segforget.augment.benchmark import _check_reusable

    run_dir = one_epoch_benchmark / "runs" / "baseline" / "seed0"
    config = read_config(run_dir)
    config.train.device, config.train.threads = "auto", None
    config.log.progress = True
    # `regions` names the seed's baseline run, however --out was spelled (relative, absolute)
    config.method.options["regions"] = "/elsewhere/runs/baseline/seed0"
    _check_reusable(run_dir, config)  # no error
    config.model.name = "light"
    with pytest.raises(ValueError, match=r"model\.name \(run 'tiny', now 'light'\)"):
        _check_reusable(run_dir, config)
