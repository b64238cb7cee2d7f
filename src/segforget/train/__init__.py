"""Training with per-pixel forgetting tracking, checkpoint/resume, and the run directory.

- :func:`train` / :func:`resume`: train a model (the library behind ``segforget train``).
- :class:`RunConfig` and its sections; :func:`load_config`, :func:`apply_overrides`.
- :class:`Trainer` with named callback events; :class:`Callback`.
- :func:`load_run` -> :class:`Run`: read a finished run directory (metrics, stores, predictions).
- :mod:`segforget.train.lightning`: ``ForgettingCallback`` for PyTorch Lightning users.
"""

from segforget.train.callbacks import Callback, EpochTracking, PresentationTracking
from segforget.train.config import (
    TRACK_MODES,
    DataConfig,
    LogConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrackConfig,
    apply_overrides,
    config_keys,
    load_config,
)
from segforget.train.loop import Trainer, read_config, resolve_device, resume, train
from segforget.train.run import Run, load_run

__all__ = [
    "train",
    "resume",
    "Trainer",
    "Callback",
    "EpochTracking",
    "PresentationTracking",
    "RunConfig",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "TrackConfig",
    "MethodConfig",
    "LogConfig",
    "TRACK_MODES",
    "load_config",
    "apply_overrides",
    "config_keys",
    "read_config",
    "resolve_device",
    "Run",
    "load_run",
]
