"""The TensorBoard logger, with a recording stand-in for torch's SummaryWriter (the package
is optional and not installed here)."""

from __future__ import annotations

import sys
import types

import numpy as np

from segforget.train import load_run, train


class _Recorder:
    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.scalars: list[tuple[str, float, int]] = []
        self.images: list[tuple[str, np.ndarray, int]] = []

    def add_scalar(self, tag, value, step) -> None:
        self.scalars.append((tag, float(value), step))

    def add_image(self, tag, image, step) -> None:
        self.images.append((tag, np.array(image), step))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_logger_writes_scalars_and_the_forgetting_map(tiny_config, tmp_path, monkeypatch):
    writers: list[_Recorder] = []

    def make(log_dir):
        writers.append(_Recorder(log_dir))
        return writers[-1]

    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = make
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    tiny_config.log.tensorboard = True
    tiny_config.track.mode = "epoch"
    tiny_config.train.epochs = 3
    train(tiny_config, tmp_path / "run")

    (writer,) = writers
    tags = {tag for tag, _, _ in writer.scalars}
    assert {"train/loss", "val/miou"} <= tags and any(t.startswith("forgotten/") for t in tags)
    run = load_run(tmp_path / "run")
    history = run.metrics["history"]
    losses = [value for tag, value, _ in writer.scalars if tag == "train/loss"]
    assert losses == [h["train_loss"] for h in history]
    # The last epoch's map: the forgetting events of the first training section, scaled to 1.
    tag, image, step = writer.images[-1]
    view = tag.split("_", 1)[1]
    assert step == 3 and tag.startswith("forgetting/epoch_")
    stats = run.stats("epoch", "train", view)
    height, width = stats.meta["section_shape"]
    section = stats.meta["train_sections"][0]
    events = stats.forgetting_events.reshape(-1, height, width)[section].astype(np.float32)
    np.testing.assert_allclose(image[0], events / max(events.max(), 1.0))
