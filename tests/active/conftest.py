"""A tiny F3-layout data set and one short tracked training run, shared by the run-level tests."""

from __future__ import annotations

import numpy as np
import pytest


def layered_volume(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three flat-ish units with distinct textures; (seismic float32, labels uint8)."""
    rng = np.random.default_rng(seed)
    inlines, crosslines, depth = shape
    z = np.arange(depth)[None, None, :]
    tilt = (np.arange(crosslines) // 7)[None, :, None]
    labels = ((z + tilt) >= depth // 3).astype(np.uint8) + ((z + tilt) >= 2 * depth // 3)
    labels = np.broadcast_to(labels, shape).astype(np.uint8)
    amplitude = np.array([0.5, 2.0, 1.0], dtype=np.float32)[labels]
    seismic = amplitude * np.sin(z * np.array([0.6, 1.7, 1.1])[labels]) + 0.3 * rng.normal(
        size=shape
    )
    return seismic.astype(np.float32), labels


@pytest.fixture(scope="session")
def tiny_f3(tmp_path_factory):
    from segforget.data.f3 import write_f3

    directory = tmp_path_factory.mktemp("tiny") / "f3"
    volumes = {
        "train": layered_volume((10, 20, 16), 0),
        "test1": layered_volume((4, 20, 16), 1),
        "test2": layered_volume((10, 6, 16), 2),
    }
    write_f3(directory, volumes, metadata={"class_names": ["top", "middle", "bottom"]})
    return directory


@pytest.fixture(scope="session")
def tiny_run(tiny_f3, tmp_path_factory):
    """A 3-epoch run of the tiny model with the test splits tracked after a 1-epoch warm-up
    (inline view only)."""
    from segforget.train import RunConfig, apply_overrides, train

    config = RunConfig()
    apply_overrides(
        config,
        [
            f"data.spec=f3:{tiny_f3}",
            "data.views=[inline]",
            "model.name=tiny",
            "train.epochs=3",
            "train.batch_size=4",
            "train.lr=0.01",
            "train.device=cpu",
            "train.threads=1",
            "track.test=true",
            "track.test_warmup=1",
            "log.progress=false",
            "log.tensorboard=false",
        ],
    )
    out = tmp_path_factory.mktemp("runs") / "run"
    train(config, out)
    return out
