"""Fixtures of the training tests: a tiny seeded survey on disk (F3 layout)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory):
    """A 6 x 10 x 24 training volume with two small test volumes, as an ``f3:DIR`` spec."""
    from segforget.data import generate_survey, write_survey

    survey = generate_survey(
        "small",
        seed=0,
        train_inlines=6,
        train_crosslines=10,
        samples=24,
        test1_inlines=3,
        test2_crosslines=4,
    )
    directory = tmp_path_factory.mktemp("survey") / "tiny"
    write_survey(directory, survey)
    return f"f3:{directory}"


@pytest.fixture
def tiny_config(tiny_survey):
    """A RunConfig that trains the tiny model for 2 epochs on the tiny survey, quietly."""
    from segforget.train import RunConfig

    config = RunConfig()
    config.data.spec = tiny_survey
    config.model.name = "tiny"
    config.train.epochs = 2
    config.train.batch_size = 4
    config.train.lr = 1e-2
    config.train.threads = 1
    config.log.progress = False
    config.log.tensorboard = False
    return config
