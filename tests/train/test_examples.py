"""The plain-loop example runs on tiny data and saves a store whose counts are what it did."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from segforget.data import load_data
from segforget.dynamics import ForgettingStats

EXAMPLE = Path(__file__).parents[2] / "examples" / "plain_loop.py"


def test_plain_loop_example(tiny_survey, tmp_path, capsys):
    source = EXAMPLE.read_text()
    body = source[source.index("def main") : source.index('if __name__ == "__main__"')]
    tracking_lines = [line for line in body.splitlines() if "tracker" in line]
    assert len(tracking_lines) <= 4  # the tracker is a handful of lines in the loop
    spec = importlib.util.spec_from_file_location("plain_loop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    store = tmp_path / "store"
    module.main(tiny_survey, str(store), epochs=2, model_name="tiny")
    stats = ForgettingStats.load(store)
    data = load_data(tiny_survey)
    space = data.space("train", "inline")
    height, width = space.section_shape
    per_section = stats.observations.reshape(space.num_sections, height, width)
    assert (per_section[data.sections("train", "inline")] == 2).all()
    assert (per_section[data.sections("val", "inline")] == 0).all()
    assert stats.confidence is not None
    assert "forgotten at least once" in capsys.readouterr().out
    assert np.isin(stats.forgetting_events, [0, 1]).all()  # at most one forgetting in 2 epochs
