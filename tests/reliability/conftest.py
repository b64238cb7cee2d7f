"""Fixtures of the reliability tests: a tiny survey and one finished run, built once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from reliability_builders import QUIET, write_tiny_survey  # noqa: E402


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory) -> Path:
    """Directory of a tiny synthetic survey (use as ``f3:DIR``)."""
    return write_tiny_survey(tmp_path_factory.mktemp("reliability-survey") / "tiny")


@pytest.fixture(scope="session")
def finished_run(tiny_survey, tmp_path_factory) -> Path:
    """A finished 2-epoch run of the tiny model, epoch tracking of train and test splits."""
    from helpers import run_cli

    out = tmp_path_factory.mktemp("reliability-run") / "run"
    threads = torch.get_num_threads()
    try:
        result = run_cli(
            [
                "train",
                "--data",
                f"f3:{tiny_survey}",
                "--out",
                out,
                "--model",
                "tiny",
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--track",
                "epoch",
                "--set",
                "track.test=true",
                *QUIET,
            ]
        )
    finally:
        torch.set_num_threads(threads)
    assert result.code == 0, result.stderr
    return out
