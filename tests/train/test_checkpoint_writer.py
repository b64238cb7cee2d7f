"""The background checkpoint writer: same files as a plain save, snapshots independent of the
live state, errors handed to the caller, interrupted runs still leave their checkpoint."""

from __future__ import annotations

import threading

import pytest
import torch

from segforget.train import Callback, train
from segforget.train.checkpoint import (
    CheckpointWriter,
    host_copy,
    load_checkpoint,
    save_checkpoint,
)


def _state() -> dict:
    return {
        "epoch": 3,
        "model": {"w": torch.arange(6.0).view(2, 3), "b": torch.zeros(3, dtype=torch.int16)},
        "history": [{"epoch": 1, "loss": 0.5}],
        "pair": (torch.ones(2), 7),
    }


def _assert_equal(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_equal(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_equal(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("background", [True, False])
def test_writer_files_equal_a_plain_save(tmp_path, background):
    state = _state()
    save_checkpoint(tmp_path / "plain.pt", state)
    writer = CheckpointWriter(background=background)
    writer.save([(tmp_path / "a.pt", host_copy(state)), (tmp_path / "b.pt", {"epoch": 3})])
    writer.wait()
    _assert_equal(load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "plain.pt"))
    assert load_checkpoint(tmp_path / "b.pt") == {"epoch": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt", "plain.pt"]


def test_host_copy_does_not_follow_the_original():
    state = _state()
    snapshot = host_copy(state)
    state["model"]["w"].add_(100)
    state["history"].append({"epoch": 2})
    _assert_equal(snapshot, _state())
    moved = host_copy(state, copy=False)  # host tensors shared, containers rebuilt
    assert moved["model"]["w"].data_ptr() == state["model"]["w"].data_ptr()
    assert moved["history"] is not state["history"]


def test_save_waits_for_the_write_in_flight(tmp_path, monkeypatch):
    """At most one write in flight, files in order: the second save starts only after the
    first write has finished."""
    import segforget.train.checkpoint as checkpoint

    release = threading.Event()
    order = []
    real = checkpoint.save_checkpoint

    def slow_save(path, state):
        if state["epoch"] == 1:
            assert release.wait(10)
        real(path, state)
        order.append(state["epoch"])

    monkeypatch.setattr(checkpoint, "save_checkpoint", slow_save)
    writer = CheckpointWriter()
    writer.save([(tmp_path / "last.pt", {"epoch": 1})])
    assert order == []  # still writing: the caller went on
    threading.Timer(0.2, release.set).start()
    writer.save([(tmp_path / "last.pt", {"epoch": 2})])
    writer.wait()
    assert order == [1, 2]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


@pytest.mark.parametrize("background", [True, False])
def test_write_errors_reach_the_caller(tmp_path, background):
    (tmp_path / "file").write_text("not a directory")
    writer = CheckpointWriter(background=background)
    target = tmp_path / "file" / "last.pt"
    if background:
        writer.save([(target, {"epoch": 1})])
        with pytest.raises(OSError):
            writer.wait()
        writer.wait()  # reported once
    else:
        with pytest.raises(OSError):
            writer.save([(target, {"epoch": 1})])


class _Stop(Callback):
    def on_checkpoint(self, trainer, epoch, path) -> None:
        raise RuntimeError("stop here")


@pytest.mark.parametrize("checkpoint_async", [True, False])
def test_stopped_run_leaves_its_checkpoint(tiny_config, tmp_path, checkpoint_async):
    tiny_config.train.epochs = 2
    tiny_config.train.checkpoint_async = checkpoint_async
    with pytest.raises(RuntimeError, match="stop here"):
        train(tiny_config, tmp_path / "run", callbacks=[_Stop()])
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["epoch"] == 1
    assert not [p for p in (tmp_path / "run" / "checkpoints").iterdir() if "tmp" in p.name]


def test_async_and_sync_checkpoints_hold_the_same_state(tiny_config, tmp_path):
    tiny_config.train.epochs = 2
    tiny_config.track.mode = "both"
    states = []
    for checkpoint_async in (True, False):
        tiny_config.train.checkpoint_async = checkpoint_async
        out = tmp_path / str(checkpoint_async)
        train(tiny_config, out)
        states.append(load_checkpoint(out / "checkpoints" / "last.pt"))
    a, b = states
    a["config"]["train"].pop("checkpoint_async")
    b["config"]["train"].pop("checkpoint_async")
    for key in ("model", "optimizer", "trackers", "epoch"):
        _assert_equal(a[key], b[key])
