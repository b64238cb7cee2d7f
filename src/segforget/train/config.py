"""Training configuration: small dataclasses, a YAML file, and ``key=value`` overrides.

The resolved configuration is one :class:`RunConfig` with the sections ``data``, ``model``,
``train``, ``track``, ``method`` and ``log``. A YAML file holds the same nesting::

    data: {spec: "synthetic:small", flip: true}
    model: {name: light}
    train: {epochs: 8, batch_size: 8, lr: 0.001}
    track: {mode: epoch, test: true}

and ``--set train.epochs=3 --set track.mode=both`` overrides single keys (values are parsed as
YAML scalars, so ``3`` is an int and ``null`` is None). Unknown keys are errors that list the
valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segforget.models import DEFAULT_MODEL

__all__ = [
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "TrackConfig",
    "MethodConfig",
    "LogConfig",
    "RunConfig",
    "TRACK_MODES",
    "load_config",
    "apply_overrides",
    "config_keys",
]

TRACK_MODES = ("epoch", "presentation", "both", "none")


@dataclass
class DataConfig:
    """Which data and how training sections are augmented.

    Attributes:
        spec: ``f3:DIR`` | ``synthetic:PRESET[:SEED]`` | ``images:DIR`` (see segforget.data).
        val_fraction: share of the training sections held out for validation.
        views: views to train on (None: all views of the data, e.g. inline and crossline).
        flip: random horizontal flip of training sections.
        rotation: maximum random rotation in degrees (0: off).
        noise: standard deviation of additive Gaussian noise on the normalized image (0: off).
    """

    spec: str = ""
    val_fraction: float = 0.1
    views: list[str] | None = None
    flip: bool = True
    rotation: float = 0.0
    noise: float = 0.0


@dataclass
class ModelConfig:
    """Model by name (see segforget.models) and its optional smp options."""

    name: str = DEFAULT_MODEL
    encoder_weights: str | None = None
    encoder_depth: int | None = None
    decoder_channels: list[int] | None = None


@dataclass
class OptimConfig:
    """Optimisation (the F3 section benchmark's defaults where they make sense).

    Attributes:
        epochs: number of epochs (>= 1).
        batch_size: sections per training batch (>= 1); a batch holds one view.
        eval_batch_size: sections per batch in evaluation passes (None: 2 x batch_size).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        grad_clip: maximum gradient norm (None: no clipping).
        class_weights: ``none``, ``f3`` (the benchmark's weights, 6 classes) or a list of K floats.
        scheduler: ``none`` (constant) or ``cosine`` (cosine decay over ``epochs``).
        ema: decay of an exponential moving average of the weights, applied after every
            optimizer step (0: off; e.g. 0.99 averages over about the last 100 steps). When on,
            the averaged model is the run's model: every evaluation pass (epoch tracking,
            validation, test, predictions) and the checkpoints' ``model`` use it.
        seed: seed of model initialisation, data order, augmentation and the validation split.
        device: ``auto`` (cuda when available), ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch CPU threads (None: torch's default).
        checkpoint_async: write each epoch's checkpoint in a background thread while the next
            epoch trains (the state is copied to host memory first, which holds a second copy
            of the model and optimizer meanwhile); false writes it before the next epoch.
    """

    epochs: int = 10
    batch_size: int = 8
    eval_batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float | None = 1.0
    class_weights: str | list[float] = "none"
    scheduler: str = "none"
    ema: float = 0.0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    checkpoint_async: bool = True


@dataclass
class TrackConfig:
    """What the forgetting trackers record.

    Attributes:
        mode: ``epoch`` (clean eval-mode pass over the training sections after each epoch),
            ``presentation`` (on the training forward pass), ``both`` or ``none``.
        test: also track the test sections after each epoch (epoch-style pass; needs epoch mode).
        test_warmup: epochs after which the test sections are first observed (0: from the
            first epoch). A model still close to its random start flips its prediction almost
            everywhere: a warm-up leaves those flips out of the per-section switch counts that
            ``segforget select`` ranks, at the cost of per-pixel information (early flips help
            predict a test pixel's error).
        confidence: confidence/variability/AUM statistics (None: on in epoch mode only).
        history: keep every observation's correctness bit (None: on in epoch mode only).
    """

    mode: str = "epoch"
    test: bool = False
    test_warmup: int = 0
    confidence: bool | None = None
    history: bool | None = None

    @property
    def modes(self) -> tuple[str, ...]:
        """The recording modes to run, e.g. ``("epoch", "presentation")`` for ``both``."""
        if self.mode == "both":
            return ("epoch", "presentation")
        if self.mode == "none":
            return ()
        return (self.mode,)

    def confidence_for(self, mode: str) -> bool:
        """Whether trackers of ``mode`` record confidence statistics."""
        return (mode == "epoch") if self.confidence is None else bool(self.confidence)

    def history_for(self, mode: str) -> bool:
        """Whether trackers of ``mode`` keep the per-observation history."""
        return (mode == "epoch") if self.history is None else bool(self.history)


@dataclass
class MethodConfig:
    """The training method (segforget.augment): ``baseline`` or a forgetting-aware method."""

    name: str = "baseline"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LogConfig:
    """Logging: progress bars and optional TensorBoard (used only when installed)."""

    progress: bool = True
    tensorboard: bool = True


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": OptimConfig,
    "track": TrackConfig,
    "method": MethodConfig,
    "log": LogConfig,
}


@dataclass
class RunConfig:
    """The whole configuration of one training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from a nested mapping; unknown sections or keys raise ValueError."""
        config = cls()
        if not isinstance(values, Mapping):
            raise ValueError(
                "Expected the configuration to be a mapping of sections, "
                f"got {type(values).__name__}"
            )
        for section, entries in values.items():
            if section not in _SECTIONS:
                raise ValueError(
                    f"Expected config section to be one of {', '.join(_SECTIONS)}, got {section!r}"
                )
            if entries is None:
                continue
            if not isinstance(entries, Mapping):
                raise ValueError(
                    f"Expected config section `{section}` to be a mapping, got {entries!r}"
                )
            for key, value in entries.items():
                _set(config, f"{section}.{key}", value)
        return config

    def validate(self) -> RunConfig:
        """Check every value; returns self. Raises ValueError naming the key and the fix."""
        _validate(self)
        return self


def config_keys() -> list[str]:
    """All valid ``section.key`` names (``method.options.*`` takes any sub-key)."""
    keys = []
    for section, klass in _SECTIONS.items():
        keys.extend(f"{section}.{f.name}" for f in dataclasses.fields(klass))
    return keys


def _set(config: RunConfig, key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) >= 3 and parts[0] == "method" and parts[1] == "options":
        target = config.method.options
        for part in parts[2:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
        return
    if len(parts) != 2 or key not in config_keys():
        close = difflib.get_close_matches(key, config_keys(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"Expected config key to be one of {', '.join(config_keys())} "
            f"(or method.options.NAME), got {key!r}; {hint}".rstrip("; ")
        )
    section, name = parts
    if name == "options" and not isinstance(value, Mapping):
        raise ValueError(f"Expected `method.options` to be a mapping, got {value!r}")
    if isinstance(value, tuple):
        value = list(value)
    setattr(getattr(config, section), name, value)


def apply_overrides(config: RunConfig, overrides: Iterable[str]) -> RunConfig:
    """Apply ``key=value`` strings (values parsed as YAML scalars) to ``config`` in place.

    Raises:
        ValueError: malformed item (no ``=``) or unknown key (the message lists valid keys).
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"Expected `--set` to be KEY=VALUE (e.g. train.epochs=3), got {item!r}"
            )
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        _set(config, key.strip(), value)
    return config


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> RunConfig:
    """Defaults, then the YAML file (if any), then ``overrides``; not yet validated.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a YAML mapping of sections, or a key is unknown.
    """
    config = RunConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Expected `--config` to be a YAML file, got {str(path)!r}")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            problem = " ".join(str(exc).split())
            raise ValueError(
                f"Expected `--config` to be valid YAML (UTF-8), got {path}: {problem}"
            ) from None
        config = RunConfig.from_dict(values)
    return apply_overrides(config, overrides)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check(ok: bool, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"Expected `{key}` to be {expected}, got {value!r}")


def _validate(c: RunConfig) -> None:
    d, m, t, k = c.data, c.model, c.train, c.track
    _check(isinstance(d.spec, str) and bool(d.spec), "data.spec", "a data spec (--data)", d.spec)
    _check(
        _is_number(d.val_fraction) and 0 <= d.val_fraction < 1,
        "data.val_fraction",
        "in [0, 1)",
        d.val_fraction,
    )
    _check(
        d.views is None
        or (isinstance(d.views, list) and d.views and all(isinstance(v, str) for v in d.views)),
        "data.views",
        "null or a non-empty list of view names",
        d.views,
    )
    _check(isinstance(d.flip, bool), "data.flip", "true or false", d.flip)
    _check(
        _is_number(d.rotation) and 0 <= d.rotation <= 180,
        "data.rotation",
        "in [0, 180]",
        d.rotation,
    )
    _check(_is_number(d.noise) and d.noise >= 0, "data.noise", "a number >= 0", d.noise)
    _check(isinstance(m.name, str) and bool(m.name), "model.name", "a model name", m.name)
    _check(
        m.encoder_weights is None or isinstance(m.encoder_weights, str),
        "model.encoder_weights",
        "null or a weights name such as imagenet",
        m.encoder_weights,
    )
    _check(
        m.encoder_depth is None or (_is_int(m.encoder_depth) and 1 <= m.encoder_depth <= 5),
        "model.encoder_depth",
        "null or an integer in 1..5",
        m.encoder_depth,
    )
    _check(
        m.decoder_channels is None
        or (
            isinstance(m.decoder_channels, list)
            and all(_is_int(v) and v > 0 for v in m.decoder_channels)
        ),
        "model.decoder_channels",
        "null or a list of positive integers",
        m.decoder_channels,
    )
    _check(_is_int(t.epochs) and t.epochs >= 1, "train.epochs", "an integer >= 1", t.epochs)
    _check(
        _is_int(t.batch_size) and t.batch_size >= 1,
        "train.batch_size",
        "an integer >= 1",
        t.batch_size,
    )
    _check(
        t.eval_batch_size is None or (_is_int(t.eval_batch_size) and t.eval_batch_size >= 1),
        "train.eval_batch_size",
        "null or an integer >= 1",
        t.eval_batch_size,
    )
    _check(_is_number(t.lr) and t.lr >= 0, "train.lr", "a number >= 0", t.lr)
    _check(
        _is_number(t.weight_decay) and t.weight_decay >= 0,
        "train.weight_decay",
        "a number >= 0",
        t.weight_decay,
    )
    _check(
        t.grad_clip is None or (_is_number(t.grad_clip) and t.grad_clip > 0),
        "train.grad_clip",
        "null or a number > 0",
        t.grad_clip,
    )
    _check(
        t.class_weights in ("none", "f3")
        or (
            isinstance(t.class_weights, list)
            and t.class_weights
            and all(_is_number(w) and w >= 0 for w in t.class_weights)
        ),
        "train.class_weights",
        "none, f3 or a list of non-negative numbers (one per class)",
        t.class_weights,
    )
    _check(t.scheduler in ("none", "cosine"), "train.scheduler", "none or cosine", t.scheduler)
    _check(_is_number(t.ema) and 0 <= t.ema < 1, "train.ema", "a number in [0, 1)", t.ema)
    _check(_is_int(t.seed) and t.seed >= 0, "train.seed", "an integer >= 0", t.seed)
    _check(
        isinstance(t.device, str) and bool(t.device),
        "train.device",
        "auto, cpu, cuda or cuda:N",
        t.device,
    )
    _check(
        t.threads is None or (_is_int(t.threads) and t.threads >= 1),
        "train.threads",
        "null or an integer >= 1",
        t.threads,
    )
    _check(
        isinstance(t.checkpoint_async, bool),
        "train.checkpoint_async",
        "true or false",
        t.checkpoint_async,
    )
    _check(k.mode in TRACK_MODES, "track.mode", f"one of {', '.join(TRACK_MODES)}", k.mode)
    _check(isinstance(k.test, bool), "track.test", "true or false", k.test)
    _check(
        not k.test or "epoch" in k.modes,
        "track.test",
        "false unless track.mode is epoch or both (test sections are tracked by the epoch pass)",
        k.test,
    )
    _check(
        _is_int(k.test_warmup) and 0 <= k.test_warmup < max(t.epochs, 1),
        "track.test_warmup",
        "an integer in [0, train.epochs - 1] (the test sections need one observation)",
        k.test_warmup,
    )
    for name in ("confidence", "history"):
        value = getattr(k, name)
        _check(
            value is None or isinstance(value, bool), f"track.{name}", "null, true or false", value
        )
    _check(
        isinstance(c.method.name, str) and bool(c.method.name),
        "method.name",
        "a method name such as baseline",
        c.method.name,
    )
    _check(isinstance(c.method.options, dict), "method.options", "a mapping", c.method.options)
    _check(isinstance(c.log.progress, bool), "log.progress", "true or false", c.log.progress)
    _check(
        isinstance(c.log.tensorboard, bool), "log.tensorboard", "true or false", c.log.tensorboard
    )
