"""Configuration: YAML + overrides, unknown keys and invalid values are errors that name the fix."""

from __future__ import annotations

import pytest

from segforget.train import RunConfig, apply_overrides, config_keys, load_config


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {spec: 'synthetic:small'}\ntrain: {epochs: 4, lr: 0.01}\n")
    config = load_config(path, ["train.epochs=7", "track.mode=both", "method.options.k=3"])
    assert config.data.spec == "synthetic:small"
    assert config.train.epochs == 7
    assert config.train.lr == 0.01
    assert config.track.mode == "both"
    assert config.method.options == {"k": 3}
    assert config.track.modes == ("epoch", "presentation")
    config.validate()


def test_round_trip_through_dict():
    config = RunConfig()
    config.data.spec = "synthetic:small"
    config.model.decoder_channels = [8, 8, 8]
    assert RunConfig.from_dict(config.to_dict()) == config


def test_confidence_and_history_default_on_in_epoch_mode_only():
    track = RunConfig().track
    assert track.confidence_for("epoch") and track.history_for("epoch")
    assert not track.confidence_for("presentation") and not track.history_for("presentation")


def test_unknown_key_lists_valid_keys():
    with pytest.raises(
        ValueError, match=r"Expected config key to be one of .*train\.epochs.*got 'train\.epoch'"
    ):
        apply_overrides(RunConfig(), ["train.epoch=3"])
    assert "train.epochs" in config_keys()
    with pytest.raises(ValueError, match=r"did you mean 'train\.epochs'\?"):
        apply_overrides(RunConfig(), ["train.epoch=3"])
    with pytest.raises(ValueError) as unrelated:
        apply_overrides(RunConfig(), ["zzz.qqq=3"])
    assert "did you mean" not in str(unrelated.value)


def test_unknown_section_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trian: {epochs: 3}\n")
    with pytest.raises(ValueError, match="Expected config section to be one of data, model"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected `--config` to be a YAML file"):
        load_config(tmp_path / "missing.yaml")


def test_malformed_override():
    with pytest.raises(ValueError, match="Expected `--set` to be KEY=VALUE"):
        apply_overrides(RunConfig(), ["train.epochs"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.epochs", "0", r"`train\.epochs` to be an integer >= 1, got 0"),
        ("train.batch_size", "0", r"`train\.batch_size` to be an integer >= 1"),
        ("train.lr", "-1", r"`train\.lr` to be a number >= 0"),
        ("train.epochs", "2.5", r"`train\.epochs` to be an integer >= 1"),
        ("track.mode", "sometimes", r"`track\.mode` to be one of epoch, presentation, both, none"),
        ("train.scheduler", "step", r"`train\.scheduler` to be none or cosine"),
        ("train.checkpoint_async", "1", r"`train\.checkpoint_async` to be true or false"),
        ("train.class_weights", "heavy", r"`train\.class_weights` to be none, f3 or a list"),
        ("data.val_fraction", "1.5", r"`data\.val_fraction` to be in \[0, 1\)"),
        ("model.encoder_depth", "9", r"`model\.encoder_depth` to be null or an integer in 1\.\.5"),
        ("track.test_warmup", "10", r"`track\.test_warmup` to be an integer in \[0, train\.epochs"),
        ("track.test_warmup", "-1", r"`track\.test_warmup` to be an integer in \[0, train\.epochs"),
    ],
)
def test_invalid_values(key, value, message):
    config = RunConfig()
    config.data.spec = "synthetic:small"
    apply_overrides(config, [f"{key}={value}"])
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_test_tracking_needs_epoch_mode():
    config = RunConfig()
    config.data.spec = "synthetic:small"
    apply_overrides(config, ["track.mode=presentation", "track.test=true"])
    with pytest.raises(ValueError, match=r"`track\.test` to be false unless track\.mode is epoch"):
        config.validate()


def test_missing_data_spec():
    with pytest.raises(ValueError, match=r"`data\.spec` to be a data spec \(--data\)"):
        RunConfig().validate()
