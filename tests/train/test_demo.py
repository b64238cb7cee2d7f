"""The demo pipeline end to end on the tiny survey (the real demo uses the small preset)."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from helpers import assert_user_error, run_cli
from segforget.train import load_run
from segforget.train.demo import DEMO_OPTIONS, run_demo


def test_demo_pipeline_on_tiny_data(tiny_survey, tmp_path):
    console = Console(file=io.StringIO(), width=200)
    result = run_demo(
        tmp_path / "demo",
        quick=True,
        method="online",
        spec=tiny_survey,
        model="tiny",
        console=console,
    )
    text = console.file.getvalue()
    assert "wall time:" in text
    run = load_run(tmp_path / "demo" / "baseline")
    assert ("epoch", "test1", "inline") in run.available_stats()  # test pool tracked
    epochs = run.config["train"]["epochs"]
    test_stats = run.stats("epoch", "test1", "inline")
    assert test_stats.meta["warmup_epochs"] == 0  # observed from the first epoch
    assert int(np.asarray(test_stats.observations).max()) == epochs
    assert ("presentation", "train", "inline") in run.available_stats()
    assert result["metrics"]["baseline"]["test"]["miou"] == run.metrics["test"]["miou"]
    method_run = load_run(tmp_path / "demo" / "online")
    assert method_run.config["method"]["name"] == "online"
    assert method_run.config["method"]["options"] == DEMO_OPTIONS["online"]
    assert DEMO_OPTIONS["online"]["inner"] == "focus"
    assert result["metrics"]["online"]["test"]["miou"] == method_run.metrics["test"]["miou"]
    assert result["report"].is_file()
    assert f"report: {result['report']}" in text
    html = result["report"].read_text()
    assert "baseline" in html and "online" in html


def test_demo_rejects_an_unknown_method(tmp_path):
    assert_user_error(
        run_cli(["demo", "--out", tmp_path / "d", "--method", "magic"]), "`--method`", "magic"
    )
    assert not (tmp_path / "d").exists()
