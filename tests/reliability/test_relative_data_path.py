"""A run trained with a relative data folder keeps working from any other directory: the
saved spec is absolute."""

from __future__ import annotations

import shutil

import pytest
import yaml
from reliability_builders import QUIET

from helpers import run_cli
from segforget.data.spec import absolute_spec


def test_absolute_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_spec("f3:data/small") == f"f3:{tmp_path / 'data' / 'small'}"
    assert absolute_spec("images:/abs/x") == "images:/abs/x"
    assert absolute_spec("synthetic:small:3") == "synthetic:small:3"
    with pytest.raises(ValueError, match="spec"):
        absolute_spec("nope:x")


def test_relative_data_folder_is_saved_absolute(tiny_survey, tmp_path, monkeypatch):
    work = tmp_path / "work"
    shutil.copytree(tiny_survey, work / "data")
    monkeypatch.chdir(work)
    args = ["train", "--data", "f3:data", "--out", "run", "--model", "tiny", "--epochs", "1"]
    result = run_cli([*args, "--batch-size", "4", *QUIET])
    assert result.code == 0, result.stderr
    saved = yaml.safe_load((work / "run" / "config.yaml").read_text())
    assert saved["data"]["spec"] == f"f3:{work / 'data'}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    analysed = run_cli(["analyze", work / "run", "--no-figures", "--quiet"])
    assert analysed.code == 0, analysed.stderr
    # resuming from the other directory continues the same run (the spec did not change)
    resumed = run_cli(["train", "--out", work / "run", "--resume", "--epochs", "2"])
    assert resumed.code == 0, resumed.stderr
    assert "test mIoU" in resumed.stdout  # the headline numbers, as a fresh run prints them
