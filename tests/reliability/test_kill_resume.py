"""SIGKILL a training run mid-epoch or mid-checkpoint-write; --resume ends like an unbroken run.

The child process is ``segforget train`` started through a small wrapper that makes the kill
moment deterministic without any hook in the library: it wraps ``torch.optim.Adam.step`` (to
stop after the 2nd optimizer step of epoch 2), ``torch.save`` (to write half of epoch 2's
checkpoint to its temporary file) or the store writer (to stop before the 2nd dynamics store of
the finished run is renamed into place), then signals the test and sleeps; the test sends SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from reliability_builders import QUIET

from helpers import assert_same_run, run_cli
from segforget.io import is_temporary
from segforget.train import load_run

_WRAPPER = textwrap.dedent(
    """
    import io, os, sys, time
    from pathlib import Path
    import torch

    hold_at = os.environ["HOLD_AT"]  # "epoch", "checkpoint" or "store"
    ready = Path(os.environ["HOLD_SIGNAL"])
    state = {"checkpoints": 0, "steps": 0}

    def hold():
        ready.write_text("ready")
        while True:
            time.sleep(60)

    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        name = Path(f).name if isinstance(f, (str, os.PathLike)) else ""
        if hold_at == "checkpoint" and name.startswith(".last.") and state["checkpoints"] == 1:
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            with open(f, "wb") as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            hold()
        real_save(obj, f, *args, **kwargs)
        if name.startswith(".last."):
            state["checkpoints"] += 1

    torch.save = save
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        result = real_step(self, *args, **kwargs)
        if hold_at == "epoch" and state["checkpoints"] == 1:
            state["steps"] += 1
            if state["steps"] == 2:
                hold()
        return result

    torch.optim.Adam.step = step

    if hold_at == "store":
        import contextlib
        import segforget.dynamics._stats as stats_module

        real_directory = stats_module.atomic_directory

        @contextlib.contextmanager
        def directory(path, **kwargs):
            with real_directory(path, **kwargs) as tmp:
                yield tmp
                state["stores"] = state.get("stores", 0) + 1
                if state["stores"] == 2:  # written, not yet renamed into place
                    hold()

        stats_module.atomic_directory = directory
    from segforget.cli import main

    main(sys.argv[1:])
    """
)


def _argv(survey: Path, out: Path) -> list[str]:
    return [
        "train",
        "--data",
        f"f3:{survey}",
        "--out",
        str(out),
        "--model",
        "tiny",
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--lr",
        "0.01",
        "--track",
        "both",
        "--set",
        "track.test=true",
        "--set",
        "data.rotation=5",
        "--set",
        "train.scheduler=cosine",
        *QUIET,
    ]


def _run_in_process(argv: list) -> None:
    threads = torch.get_num_threads()
    try:
        result = run_cli(argv)
    finally:
        torch.set_num_threads(threads)
    assert result.code == 0, result.stderr


def _start_and_kill(survey: Path, out: Path, hold_at: str, tmp_path: Path) -> None:
    ready = tmp_path / f"ready-{hold_at}"
    env = {**os.environ, "HOLD_AT": hold_at, "HOLD_SIGNAL": str(ready)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRAPPER, *_argv(survey, out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the training run never reached the kill point"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def _assert_same_run(expected_dir: Path, actual_dir: Path) -> None:
    assert_same_run(expected_dir, actual_dir)
    expected = load_run(expected_dir)
    assert expected.metrics["epochs"] == 3
    assert len(expected.available_stats()) == 8  # epoch: train+2 test splits, presentation: train


@pytest.fixture(scope="module")
def unbroken_run(tiny_survey, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unbroken") / "run"
    _run_in_process(_argv(tiny_survey, out))
    return out


def test_sigkill_mid_epoch_then_resume_equals_unbroken_run(tiny_survey, unbroken_run, tmp_path):
    out = tmp_path / "run"
    _start_and_kill(tiny_survey, out, "epoch", tmp_path)
    assert not (out / "metrics.json").exists()
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1

    _run_in_process(["train", "--out", out, "--resume"])
    _assert_same_run(unbroken_run, out)


def test_sigkill_mid_checkpoint_write_then_resume_equals_unbroken_run(
    tiny_survey, unbroken_run, tmp_path
):
    out = tmp_path / "run"
    _start_and_kill(tiny_survey, out, "checkpoint", tmp_path)
    # The half-written checkpoint is a temporary beside an intact last.pt of epoch 1.
    leftovers = [p for p in (out / "checkpoints").iterdir() if p.name not in ("last.pt", "best.pt")]
    assert len(leftovers) == 1 and is_temporary(leftovers[0]), leftovers
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert not (out / "metrics.json").exists()

    _run_in_process(["train", "--out", out, "--resume"])
    _assert_same_run(unbroken_run, out)


@pytest.mark.slow
def test_sigkill_mid_store_write_then_resume_equals_unbroken_run(
    tiny_survey, unbroken_run, tmp_path
):
    # Slow variant (the two tests above cover resume): killed while the final stores are written.
    out = tmp_path / "run"
    _start_and_kill(tiny_survey, out, "store", tmp_path)
    assert not (out / "metrics.json").exists()
    assert any(is_temporary(p) for p in (out / "dynamics").rglob("*"))
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 3

    _run_in_process(["train", "--out", out, "--resume"])
    _assert_same_run(unbroken_run, out)
