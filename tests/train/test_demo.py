"""The demo pipeline end to end on the tiny survey (the real demo uses the small preset)."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from helpers import assert_user_error, run_cli
from segforget.augment.methods import Online
from segforget.train import load_run
from segforget.train.demo import DEMO_EPOCHS, DEMO_OPTIONS, DEMO_TRAIN, demo_options, run_demo


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
    assert method_run.config["method"]["options"] == {**DEMO_OPTIONS["online"], "warmup": 1}
    # the method's run takes the demo's training settings (the weight average), the baseline not
    assert DEMO_TRAIN["online"] == {"ema": 0.9}
    assert method_run.config["train"]["ema"] == 0.9 and run.config["train"]["ema"] == 0.0
    assert method_run.config["train"]["lr"] == run.config["train"]["lr"]
    # --quick trains 2 epochs: the regions are refreshed after the first, so the second epoch
    # trains with them (with the default warm-up of 2 it would train as the baseline)
    first = method_run.metrics["history"][0]["method"]
    assert first["refreshes"] == 1 and sum(first["region_fraction"].values()) > 0
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


def test_demo_options_cut_the_online_warmup_only_for_a_short_run():
    assert Online.default_warmup == 2
    assert demo_options("online", DEMO_EPOCHS) == DEMO_OPTIONS["online"]
    assert "warmup" not in DEMO_OPTIONS["online"]
    assert demo_options("online", 2) == {**DEMO_OPTIONS["online"], "warmup": 1}
    assert demo_options("online", 3) == DEMO_OPTIONS["online"]
    assert demo_options("rotate", 2) == DEMO_OPTIONS.get("rotate", {})
    options = demo_options("online", 2)
    options["gain"] = 0.0  # a copy: the demo's defaults stay as they are
    assert DEMO_OPTIONS["online"]["gain"] == 2.0


def test_demo_options_leave_the_warp_out_when_the_data_lacks_its_class():
    names = ["upper_ns", "middle_ns", "lower_ns", "rijnland_chalk", "scruff", "zechstein"]
    assert DEMO_OPTIONS["online"]["warp_class"] == "zechstein"
    assert [w["class"] for w in DEMO_OPTIONS["online"]["warps"]] == ["rijnland_chalk"]
    assert demo_options("online", DEMO_EPOCHS, names) == DEMO_OPTIONS["online"]
    other = demo_options("online", DEMO_EPOCHS, ["background", "cell"])
    assert not {"warp", "warp_mode", "warp_class", "warps"} & set(other)
    assert other["inner"] == "focus" and other["rotate"] == 10.0
    # each warp on its own: the salt's without the chalk, the chalk's without the salt
    no_chalk = demo_options("online", DEMO_EPOCHS, [n for n in names if n != "rijnland_chalk"])
    assert no_chalk["warp_class"] == "zechstein" and "warps" not in no_chalk
    no_salt = demo_options("online", DEMO_EPOCHS, [n for n in names if n != "zechstein"])
    assert "warp" not in no_salt and no_salt["warps"] == DEMO_OPTIONS["online"]["warps"]
    no_salt["warps"][0]["pixels"] = 1.0  # a copy: the demo's defaults stay as they are
    assert DEMO_OPTIONS["online"]["warps"][0]["pixels"] == 10.0
