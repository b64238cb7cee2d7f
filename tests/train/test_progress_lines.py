"""The training console: one line per epoch, also when the console is narrow (log files)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from segforget.train import train
from segforget.viz.numbers import format_percent


def test_one_line_per_epoch_with_the_recorded_numbers(tiny_config, tmp_path):
    tiny_config.log.progress = True
    tiny_config.track.mode = "both"
    console = Console(file=io.StringIO(), width=40)
    metrics = train(tiny_config, tmp_path / "run", console=console)
    lines = [line for line in console.file.getvalue().splitlines() if line.startswith("epoch ")]
    history = metrics["history"]
    assert len(lines) == len(history) == tiny_config.train.epochs
    for line, record in zip(lines, history):
        assert line.startswith(f"epoch {record['epoch']}/{tiny_config.train.epochs}  ")
        assert f"loss {record['train_loss']:.4f}" in line
        assert re.search(r"  [0-9]+\.[0-9]s$", line)  # the epoch's wall time closes the line
        for key, summary in record["tracking"].items():
            mode, split, view = key.split("/")
            if split == "train" and "forgotten_fraction" in summary:
                shown = format_percent(summary["forgotten_fraction"])
                assert f"{mode}/{view} {shown}" in line
