"""Checkpoint/resume: an interrupted run resumed ends exactly like an uninterrupted one (CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import assert_same_run, train_interrupted_and_resumed
from segforget.train import Callback, load_run, resume, train


class Interrupt(Callback):
    """Stop the run right after the checkpoint of epoch ``after`` (1-based) is written."""

    def __init__(self, after: int) -> None:
        self.after = after

    def on_checkpoint(self, trainer, epoch, path) -> None:
        if epoch + 1 == self.after:
            raise KeyboardInterrupt


def test_resume_equals_uninterrupted_run(tiny_config, tmp_path):
    config = tiny_config
    config.train.epochs = 3
    config.track.mode = "both"
    config.track.test = True
    config.data.rotation = 5.0  # augmentation draws from the saved generator
    config.train.scheduler = "cosine"
    train(config, tmp_path / "full")

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", callbacks=[Interrupt(after=2)])
    assert not (tmp_path / "split" / "metrics.json").exists()
    state = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 2
    resume(tmp_path / "split")

    assert_same_run(tmp_path / "full", tmp_path / "split")
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "split" / "metrics.json").read_text())["epochs"] == 3


def test_resume_can_extend_a_finished_run(tiny_config, tmp_path):
    tiny_config.train.epochs = 1
    tiny_config.track.mode = "epoch"
    train(tiny_config, tmp_path / "run")
    metrics = resume(tmp_path / "run", epochs=2)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    stats = load_run(tmp_path / "run").stats("epoch", "train", "inline")
    assert stats.observations.max() == 2


def test_resume_with_anchor_equals_uninterrupted_run(tiny_config, tmp_path):
    """The anchor method's teacher (a running average) travels in the checkpoint."""
    tiny_config.train.epochs = 3
    tiny_config.method.name = "online"
    tiny_config.method.options = {"inner": "anchor", "warmup": 1, "k": 1, "weight": 2.0}
    full, _ = train_interrupted_and_resumed(tiny_config, tmp_path, after=2)
    # the history records the method's per-epoch summary: refreshes after the warm-up
    history = json.loads((full / "metrics.json").read_text())["history"]
    assert [h["method"]["refreshes"] for h in history] == [1, 2, 3]
    fractions = [h["method"]["region_fraction"] for h in history]
    assert all(0.0 <= f <= 1.0 for record in fractions for f in record.values())
