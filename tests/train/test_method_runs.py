"""The geometric methods train end to end, and a seed gives the same run twice."""

from __future__ import annotations

import json

import pytest

from segforget.train import train


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("warp", {"pixels": 6.0, "p": 1.0}),
        ("warp", {"pixels": 6.0, "p": 1.0, "mode": "insert"}),
        (
            "online",
            {
                "inner": "focus",
                "k": 1,
                "warmup": 1,
                "warp": 6.0,
                "warp_p": 1.0,
                "warp_mode": "stretch",
            },
        ),
    ],
)
def test_warp_trains_and_repeats(tmp_path, tiny_config, name, options):
    tiny_config.method.name = name
    tiny_config.method.options = dict(options)
    first = train(tiny_config, tmp_path / "a")
    second = train(tiny_config, tmp_path / "b")
    assert 0.0 <= first["test"]["miou"] <= 1.0
    assert first["test"]["miou"] == second["test"]["miou"]
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["test"]["miou"] == first["test"]["miou"]
    if name == "online":  # regions after the warm-up epoch: the second epoch is warped there
        after_warmup = saved["history"][0]["method"]
        assert after_warmup["refreshes"] == 1
        assert sum(after_warmup["region_fraction"].values()) > 0
