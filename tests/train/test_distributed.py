"""Two CPU processes under torchrun (DDP, gloo): rank 0 writes a complete run, and the epoch-mode
tracker statistics equal a one-process pass of the same model weights."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from segforget.data import load_data
from segforget.dynamics import ForgettingTracker
from segforget.models import build_model
from segforget.train import load_run


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_two_processes_equal_one_process_with_the_same_weights(tiny_survey, tmp_path, ema):
    """With ``train.ema`` the checkpoint's model is the weight average, which every rank's
    evaluation passes must then have used."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "segforget",
        "train",
        "--data",
        tiny_survey,
        "--out",
        str(out),
        "--model",
        "tiny",
        "--epochs",
        "1",
        "--track",
        "epoch",
        "--set",
        "track.test=true",
        "--set",
        "train.eval_batch_size=1",
        "--set",
        "train.threads=1",
        "--set",
        "log.progress=false",
        "--set",
        "log.tensorboard=false",
        "--set",
        f"train.ema={ema}",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = load_run(out)
    assert run.config["run"]["world_size"] == 2

    data = load_data(tiny_survey)
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    model = build_model("tiny", in_channels=1, num_classes=data.num_classes)
    model.load_state_dict(state["model"])
    model.eval()
    torch.set_num_threads(1)
    checked = 0
    for mode, split, view in run.available_stats():
        tracker = ForgettingTracker(
            data.space(split, view).num_pixels, data.num_classes, confidence=True, history=True
        )
        dataset = data.dataset(split, view)
        with torch.no_grad():
            for item in dataset:
                logits = model(item["image"][None])
                tracker.update(logits, item["label"][None], item["pixel_index"][None])
        expected, got = tracker.compute(), run.stats(mode, split, view)
        for name in (
            "observations",
            "correct",
            "forgetting_events",
            "first_learned",
            "last_prediction",
            "confidence",
            "aum",
        ):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
        checked += 1
    assert checked == 6  # train, test1, test2 x inline, crossline
